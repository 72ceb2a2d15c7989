//! The unit tests' proptest configuration: a case count sized for CI, which
//! `PROPTEST_CASES` overrides for long runs (`PROPTEST_CASES=100000 cargo test --lib props`).

use proptest::test_runner::Config;

/// `default_cases` cases, or `PROPTEST_CASES` when it is set to a number.
pub(crate) fn cases(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        // Failures are reported with their minimal input; no regression files are written
        // next to the sources.
        failure_persistence: None,
        ..Config::default()
    }
}
