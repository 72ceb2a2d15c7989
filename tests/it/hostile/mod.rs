//! Hostile input (issue 8, part 3): property tests in place of fuzzing — the project builds
//! on stable Rust and cargo-fuzz needs nightly. The crate-private parts (the payload
//! decoder, key building) are property-tested next to their code (`src/codec/props.rs`,
//! `src/key/props.rs`); what the public API shows is tested here: keys through
//! `#[cached_query]`, pattern invalidation, and the songs app under malformed requests.
//!
//! The case counts are sized for CI; `PROPTEST_CASES=100000 cargo test --all-features
//! hostile` runs every property longer.

#[cfg(feature = "axum")]
mod cache_response;
mod keys;
mod patterns;
#[cfg(all(feature = "axum", feature = "sea-orm"))]
mod raw_http;
#[cfg(all(feature = "axum", feature = "sea-orm"))]
mod songs_app;

// The library's own configuration, shared rather than copied.
#[path = "../../../src/proptest_config.rs"]
mod proptest_config;
pub(crate) use proptest_config::cases;
