//! Hostile input (issue 8, part 3) through the public API: keys through `#[cached_query]`,
//! pattern invalidation, and the songs app under malformed requests. The crate-private
//! parts (the payload decoder, key building, the Redis pattern translation) are
//! property-tested next to their code and fuzzed with cargo-fuzz (`fuzz/`,
//! `scripts/fuzz.sh`), both checking the invariants of `src/*/checks.rs`.
//!
//! The case counts are sized for CI; `PROPTEST_CASES=100000 cargo test --all-features
//! hostile` runs every property longer.

#[cfg(feature = "axum")]
mod cache_response;
#[cfg(feature = "axum")]
mod http_keys;
mod keys;
mod patterns;
#[cfg(all(feature = "axum", feature = "sea-orm"))]
mod raw_http;
#[cfg(all(feature = "axum", feature = "sea-orm", feature = "redis"))]
mod redis_growth;
#[cfg(feature = "axum")]
mod serve;
#[cfg(feature = "axum")]
mod single_flight;
#[cfg(all(feature = "axum", feature = "sea-orm"))]
mod songs_app;

// The library's own configuration, shared rather than copied.
#[path = "../../../src/test_support/proptest_config.rs"]
mod proptest_config;
pub(crate) use proptest_config::cases;

/// A runtime for the async part of a property (proptest's runner is synchronous).
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}
