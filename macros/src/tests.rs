//! The expansion's shape: the calls the main crate's `__private` expects, in order. What
//! they do at run time is tested in the main crate (`tests/it/macros.rs`), and the error
//! messages by its trybuild cases (`tests/ui/`).

use quote::quote;

use crate::attr::Flavor;

/// The expansion without whitespace, to compare with fragments written by hand.
fn expand(
    flavor: Flavor,
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> String {
    let expanded = crate::cached(flavor, args, item).to_string();
    expanded.split_whitespace().collect()
}

/// Asserts that `fragments` appear in `expanded`, in this order.
fn assert_in_order(expanded: &str, fragments: &[&str]) {
    let mut rest = expanded;
    for fragment in fragments {
        let fragment: String = fragment.split_whitespace().collect();
        match rest.find(&fragment) {
            Some(at) => rest = &rest[at + fragment.len()..],
            None => panic!("`{fragment}` missing (or out of order) in:\n{expanded}"),
        }
    }
}

#[test]
fn every_option_in_contract_order() {
    let expanded = expand(
        Flavor::Query,
        quote!(
            cache = self.cache,
            error_ttl = "5m",
            key = "songs:{limit}:{{x}}",
            tags = ["user:{user_id}", "global"],
            row = id,
            models = [song::Entity, user::Entity],
            ttl = "1h30m",
            namespace = "songs"
        ),
        quote! {
            /// Docs.
            pub async fn songs(&self, db: &DatabaseConnection, id: i32, user_id: i64, limit: u64)
                -> Result<Vec<Song>, DbErr>
            {
                load(db).await
            }
        },
    );
    assert_in_order(
        &expanded,
        &[
            "#[doc = r\" Docs.\"]",
            "pub async fn songs(&self, db: &DatabaseConnection, id: i32, user_id: i64, limit: u64) -> Result<Vec<Song>, DbErr> {",
            "let mut __qc_call = ::querycache::__private::Call::new(",
            "::querycache::__private::cache_of(&(self.cache)),",
            "::core::concat!(::core::module_path!(), \"::\", \"songs\"),",
            "\"songs\", );",
            "__qc_call.ttl_secs(5400u64);",
            "__qc_call.error_ttl_secs(300u64);",
            "use ::querycache::__private::probe_traits::*;",
            "__qc_call.model_row((&&::querycache::__private::ModelProbe::<song::Entity>::new()).__querycache_table(), &id);",
            "__qc_call.model((&&::querycache::__private::ModelProbe::<user::Entity>::new()).__querycache_table());",
            "__qc_call.tag(::std::format!(\"user:{}\", user_id));",
            "__qc_call.tag(::std::string::String::from(\"global\"));",
            "__qc_call.connection(&db);",
            "__qc_call.key_template(::std::format!(\"songs:{}:{{x}}\", limit));",
            "__qc_call.run_result_caching_errors(::querycache::__private::typed::<Result<Vec<Song>, DbErr>, _>(async move { load(db).await }))",
            ".await",
        ],
    );
    assert!(
        !expanded.contains("key_args"),
        "an explicit key replaces the default one"
    );
}

#[test]
fn default_key_and_modes() {
    let expanded = expand(
        Flavor::Count,
        quote!(song::Entity),
        quote! {
            async fn count(db: &impl ConnectionTrait, a: u8, #[cache_skip] b: Ctx, c: &str) -> u64 {
                1
            }
        },
    );
    assert_in_order(
        &expanded,
        &[
            "async fn count(db: &impl ConnectionTrait, a: u8, b: Ctx, c: &str) -> u64",
            "::querycache::__private::global(),",
            "\"count\", );",
            "__qc_call.count_query();",
            "__qc_call.model(",
            "__qc_call.connection(&db);",
            "__qc_call.key_args(&((&a).__querycache_key_argument_must_implement_serialize(), (&c).__querycache_key_argument_must_implement_serialize(),));",
            "__qc_call.run(::querycache::__private::typed::<u64, _>(async move { 1 }))",
        ],
    );
    assert!(
        !expanded.contains("cache_skip"),
        "#[cache_skip] is stripped"
    );

    let expanded = expand(
        Flavor::Query,
        quote!(),
        quote!(
            async fn answer() -> std::io::Result<u64> {
                Ok(42)
            }
        ),
    );
    assert_in_order(
        &expanded,
        &["__qc_call.key_args(&());", "__qc_call.run_result("],
    );
    assert!(!expanded.contains("probe_traits"), "no models, no import");
}

#[test]
fn errors_keep_the_function() {
    let expanded = expand(
        Flavor::Query,
        quote!(ttl = 0, colour = 1),
        quote!(
            unsafe fn song(#[cache_skip] x: u8) -> u8 {
                x
            }
        ),
    );
    for message in [
        "`ttl` must be at least 1 second",
        "unknown option `colour`",
        "does not support `unsafe fn`",
    ] {
        assert!(
            expanded.contains(&message.replace(' ', "")),
            "{message}: {expanded}"
        );
    }
    assert_in_order(&expanded, &["unsafe fn song(x: u8) -> u8 { x }"]);
}
