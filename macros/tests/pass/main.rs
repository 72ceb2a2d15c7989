//! The cases of `#[cached_query]`, `#[cache_model_query]`, `#[cache_count_query]`,
//! `#[cache_skip]` and `#[derive(CacheModel)]` that must compile without a warning (each
//! module denies them) and run: every option, receiver, argument form and attribute the
//! macros accept. Their compile-fail counterparts are `tests/ui.rs`.
//!
//! They are an ordinary test binary, not trybuild pass cases: trybuild would build
//! querycache a second time for them (`cargo build` in its own target directory), where a
//! test binary reuses the suite's build.

mod entities;

pub mod arguments;
pub mod attributes;
pub mod freshness;
pub mod methods;
pub mod model_macros;
pub mod options;
pub mod plain_fn;

#[test]
fn arguments_key_connections_and_skipped_arguments() {
    arguments::main();
}

#[test]
fn attributes_signatures_and_docs_are_kept() {
    attributes::main();
}

#[test]
fn freshness_options() {
    freshness::main();
}

#[test]
fn methods_every_receiver() {
    methods::main();
}

#[test]
fn model_and_count_macros() {
    model_macros::main();
}

#[test]
fn options() {
    options::main();
}

#[test]
fn plain_functions_run() {
    plain_fn::main();
}
