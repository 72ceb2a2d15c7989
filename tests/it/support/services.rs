//! What a test does when a service it needs (redis-server, PostgreSQL) is not there: say why
//! on stderr and return early — unless `QUERYCACHE_REQUIRE_SERVICES=1` (CI), where a missing
//! service is a failure. Shared by the Redis and PostgreSQL harnesses so both behave alike.

/// The environment variable that turns "service missing, skip" into a failure.
pub const REQUIRE_SERVICES_VAR: &str = "QUERYCACHE_REQUIRE_SERVICES";

/// Whether missing services are a failure rather than a reason to skip
/// (`QUERYCACHE_REQUIRE_SERVICES=1`).
pub fn require_services() -> bool {
    std::env::var(REQUIRE_SERVICES_VAR).is_ok_and(|value| value == "1")
}

/// A service is missing for `reason`: `None` after a note on stderr (the test returns
/// early), or a panic with the reason when services are required.
pub fn unavailable<T>(reason: impl std::fmt::Display) -> Option<T> {
    if require_services() {
        panic!("{reason}, and {REQUIRE_SERVICES_VAR}=1")
    }
    eprintln!("skipping: {reason} (set {REQUIRE_SERVICES_VAR}=1 to make this a failure)");
    None
}
