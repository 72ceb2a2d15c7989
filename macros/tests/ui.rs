//! The compile-time checks of `#[cached_query]`, `#[cache_model_query]`,
//! `#[cache_count_query]`, `#[cache_skip]` and `#[derive(CacheModel)]`: every misuse has a
//! compile-fail case with the message it must give (`ui/fail/`). What must compile and run
//! is `tests/pass/`, an ordinary test binary (trybuild runs only `cargo check` when it has
//! no pass case).
//!
//! They live here, not in querycache's own test binary, because trybuild builds its cases
//! against the dev-dependencies of the crate that runs it: these few (querycache with its
//! SeaORM integration, SeaORM's entity macros, serde) instead of querycache's whole test
//! stack, which took CI minutes to build a second time.
//!
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test -p querycache-macros
//! --test ui`, then read them.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/fail/*.rs");
}
