//! The expansion's shape: the calls the main crate's `__private` expects, in order. What
//! they do at run time is tested in the main crate (`tests/it/macros.rs`), and the error
//! messages by its trybuild cases (`macros/tests/ui/`).

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
            "::querycache::__private::named_later(),",
            "::core::concat!(::core::module_path!(), \"::\", \"songs\"),",
            "\"songs\", );",
            "__qc_call.ttl_secs(5400u64);",
            "__qc_call.error_ttl_secs(300u64);",
            "__qc_call.connection(&db);",
            "__qc_call.key_template(::std::format!(\"songs:{}:{{x}}\", limit));",
            // A hit reads the named cache in place and returns before the tags are built;
            // the call gets its own handle of the cache only after it.
            "if let ::core::option::Option::Some(__qc_hit) = __qc_call.hit_in::<Result<Vec<Song>, DbErr>, _>(&(self.cache)) { return __qc_hit; }",
            "__qc_call.named(&(self.cache));",
            "use ::querycache::__private::probe_traits::*;",
            "__qc_call.model_row((&&::querycache::__private::ModelProbe::<song::Entity>::new()).__querycache_table(), &id);",
            "__qc_call.model((&&::querycache::__private::ModelProbe::<user::Entity>::new()).__querycache_table());",
            "__qc_call.tag(::std::format!(\"user:{}\", user_id));",
            "__qc_call.tag(::std::string::String::from(\"global\"));",
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
            // The quick check, through the one connection argument (no `cache = ..`).
            "let __qc_key = ::querycache::__private::key_hash(&__qc_site,",
            "&(::querycache::__private::key_argument(&a), ::querycache::__private::key_argument(&c),));",
            "::querycache::__private::quick_conn_hit::<u64, _>(&db, ::core::option::Option::None, &__qc_site, &__qc_key,)",
            "{ return __qc_hit; }",
            "::querycache::__private::global(),",
            "\"count\", );",
            "__qc_call.count_query();",
            "__qc_call.connection(&db);",
            // The call takes the hash the quick check took, and keeps its own hit check.
            "__qc_call.key_hashed(__qc_key);",
            "__qc_call.hit::<u64>()",
            "__qc_call.model(",
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
        &[
            "__qc_call.key_hashed(::querycache::__private::key_hash(",
            "&(), ));",
            "__qc_call.hit_ok::<std::io::Result<u64>>()",
            "__qc_call.run_result(",
        ],
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

#[test]
fn freshness_setters_and_owned_arguments() {
    let expanded = expand(
        Flavor::Query,
        quote!(
            swr = "5m",
            early_refresh = 1.5,
            fail_safe = "1h",
            fail_safe_throttle = 30,
            soft_timeout = "250ms",
            hard_timeout = 2
        ),
        quote! {
            async fn songs(db: &AppConnection, mut title: &str, limit: u32) -> Result<Vec<Song>, AppError> {
                load(db, title, limit).await
            }
        },
    );
    assert_in_order(
        &expanded,
        &[
            // `mut` moves from the argument to the binding inside the computation.
            "async fn songs(db: &AppConnection, title: &str, limit: u32)",
            "__qc_call.swr_secs(300u64);",
            "__qc_call.fail_safe_secs(3600u64);",
            "__qc_call.fail_safe_throttle_secs(30u64);",
            "__qc_call.early_refresh(1.5f64);",
            "__qc_call.soft_timeout_ms(250u64);",
            "__qc_call.hard_timeout_ms(2000u64);",
            "__qc_call.connection(&db);",
            "__qc_call.key_hashed(::querycache::__private::key_hash(",
            "let db = <AppConnection as ::std::borrow::ToOwned>::to_owned(db);",
            "let title = <str as ::std::borrow::ToOwned>::to_owned(title);",
            "__qc_call.run_fresh_result_timeout(::querycache::__private::typed::<Result<Vec<Song>, AppError>, _>(async move {",
            "let db: &AppConnection = ::std::borrow::Borrow::borrow(&db);",
            "let mut title: &str = ::std::borrow::Borrow::borrow(&title);",
            "load(db, title, limit).await",
        ],
    );
}

#[test]
fn freshness_run_methods() {
    let run_of = |args: proc_macro2::TokenStream, item: proc_macro2::TokenStream| {
        let expanded = expand(Flavor::Query, args, item);
        let start = expanded.find("__qc_call.run").expect("a run call");
        let end = start + expanded[start..].find('(').expect("its arguments");
        expanded[start + "__qc_call.".len()..end].to_owned()
    };
    let plain = quote!(
        async fn f(x: u32) -> u32 {
            x
        }
    );
    let result = quote!(
        async fn f(x: u32) -> Result<u32, E> {
            Ok(x)
        }
    );
    assert_eq!(run_of(quote!(swr = 1), plain.clone()), "run_fresh");
    assert_eq!(run_of(quote!(soft_timeout = 1), plain.clone()), "run_fresh");
    assert_eq!(
        run_of(quote!(early_refresh = 1), result.clone()),
        "run_fresh_result"
    );
    assert_eq!(
        run_of(quote!(hard_timeout = 1), result.clone()),
        "run_fresh_result_timeout"
    );
    assert_eq!(
        run_of(quote!(cache_errors, swr = 1), result.clone()),
        "run_fresh_result_caching_errors"
    );
    assert_eq!(
        run_of(quote!(error_ttl = 5, hard_timeout = 1), result.clone()),
        "run_fresh_result_caching_errors_timeout"
    );
    // Fail-safe alone needs no background computation.
    assert_eq!(run_of(quote!(fail_safe = 60), result.clone()), "run_result");
    // Arguments that cannot be owned: the foreground path, as without the options.
    assert_eq!(
        run_of(
            quote!(swr = 60),
            quote!(
                async fn f(buffer: &mut Vec<u8>) -> u32 {
                    1
                }
            )
        ),
        "run"
    );
    assert_eq!(
        run_of(
            quote!(swr = 60),
            quote!(
                async fn f(&self) -> u32 {
                    1
                }
            )
        ),
        "run"
    );
    // A plain fn keeps its synchronous paths.
    assert_eq!(
        run_of(
            quote!(swr = 60, fail_safe = 60),
            quote!(
                fn f(x: &str) -> Result<u32, E> {
                    Ok(1)
                }
            )
        ),
        "run_result_sync"
    );
}

#[test]
fn freshness_values() {
    use crate::fresh::{beta, parse_duration_ms};

    assert_eq!(parse_duration_ms("250ms"), Ok(250));
    assert_eq!(parse_duration_ms("2s"), Ok(2_000));
    assert_eq!(parse_duration_ms("1m30s"), Ok(90_000));
    assert_eq!(
        parse_duration_ms("0ms"),
        Ok(0),
        "zero is rejected by the caller"
    );
    for bad in [
        "", "ms", "1s500ms", "500ms1s", "1.5s", "250 ms", "-1ms", "1w",
    ] {
        assert!(parse_duration_ms(bad).is_err(), "{bad:?} parsed");
    }

    let parse = |tokens: proc_macro2::TokenStream| beta(&syn::parse2(tokens).unwrap());
    assert_eq!(parse(quote!(1.0)).ok(), Some(1.0));
    assert_eq!(parse(quote!(2)).ok(), Some(2.0));
    assert_eq!(parse(quote!(0.25f64)).ok(), Some(0.25));
    assert_eq!(parse(quote!(100)).ok(), Some(100.0));
    for bad in [
        quote!(0),
        quote!(0.0),
        quote!(-1),
        quote!(100.5),
        quote!(1e400),
        quote!("1"),
        quote!(BETA),
        quote!(1.0 + 1.0),
    ] {
        assert!(parse(bad.clone()).is_err(), "{bad} parsed");
    }
}

#[test]
fn freshness_errors() {
    let errors_of = |args: proc_macro2::TokenStream, item: proc_macro2::TokenStream| {
        expand(Flavor::Query, args, item)
    };
    let expanded = errors_of(
        quote!(
            fail_safe_throttle = 5,
            soft_timeout = "2s",
            hard_timeout = "1s"
        ),
        quote!(
            fn f(x: u32) -> u32 {
                x
            }
        ),
    );
    for message in [
        "so it needs `fail_safe`",
        "`hard_timeout` (1s) must be longer than `soft_timeout` (2s)",
        "`soft_timeout` needs an `async fn`",
        "`hard_timeout` needs an `async fn`",
        "the function must return `Result<T, E>`",
    ] {
        assert!(
            expanded.contains(&message.replace(' ', "")),
            "{message}: {expanded}"
        );
    }
    let expanded = errors_of(
        quote!(cache_errors, fail_safe = 60),
        quote!(
            async fn f(x: u32) -> Result<u32, E> {
                Ok(x)
            }
        ),
    );
    assert!(
        expanded.contains("`fail_safe`cannotbecombinedwith`cache_errors`"),
        "{expanded}"
    );
}
