//! Hostile input for key building, as property tests. `PROPTEST_CASES` raises the case
//! counts for a long run. The invariants and the argument type live in `checks`, which the
//! cargo-fuzz target `key` (`fuzz/`, issue 8) calls too, on `arbitrary` input: fuzzing
//! runs on the stable toolchain with `RUSTC_BOOTSTRAP=1` (`scripts/fuzz.sh`; about 1.8 million
//! executions in 10 minutes on this project's 2-core machine, no crash).

use proptest::prelude::*;
use serde::Serialize;

use super::checks::{Arg, Wrapper};
use super::*;
use crate::test_support::proptest_config::cases;

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::sample::select(vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            f64::EPSILON,
            5e-324,
            1e300,
            0.1,
        ]),
        any::<f64>(),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "a",
            "null",
            "NaN",
            "Infinity",
            "?null",
            "\"",
            "\\",
            "\0",
            "\n",
            "\u{85}",
            "é",
            "🎵",
            "[1]",
            "{\"a\":1}",
            "Nothing",
        ])
        .prop_map(str::to_owned),
        ".{0,12}",
    ]
}

fn arg() -> impl Strategy<Value = Arg> {
    let leaf = prop_oneof![
        prop::sample::select(vec![0, 1, -1, i64::MIN, i64::MAX]).prop_map(Arg::Int),
        any::<i64>().prop_map(Arg::Int),
        prop::sample::select(vec![0, u128::MAX, u128::from(u64::MAX) + 1]).prop_map(Arg::Big),
        prop::sample::select(vec![i128::MIN, i128::MAX, -1]).prop_map(Arg::Neg),
        float().prop_map(Arg::Float),
        float().prop_map(|f| Arg::Single(f as f32)),
        text().prop_map(Arg::Text),
        any::<char>().prop_map(Arg::Letter),
        any::<bool>().prop_map(Arg::Flag),
        Just(Arg::Nothing),
        Just(Arg::Unit(())),
        proptest::option::of(float()).prop_map(Arg::Maybe),
        proptest::option::of(proptest::option::of(prop::sample::select(vec![
            0,
            1,
            i32::MIN
        ])))
        .prop_map(Arg::MaybeMaybe),
        proptest::option::of(Just(())).prop_map(Arg::MaybeUnit),
        proptest::collection::vec(any::<u8>(), 0..4).prop_map(Arg::Bytes),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Arg::List),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Arg::Pair(Box::new(a), Box::new(b))),
            (text(), proptest::option::of(inner.clone())).prop_map(|(name, inner)| Arg::Record {
                name,
                inner: inner.map(Box::new),
            }),
            proptest::option::of(inner.clone())
                .prop_map(|a| Arg::Wrapped(Wrapper(a.map(Box::new)))),
            proptest::collection::btree_map(text(), inner.clone(), 0..3).prop_map(Arg::Map),
            proptest::collection::btree_map(any::<i64>(), inner, 0..3).prop_map(Arg::IntMap),
        ]
    })
}

/// Any text, with control characters, and lengths around the limits.
fn any_path() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_:]{1,40}",
        "\\PC{0,40}",
        ".{0,40}",
        (MAX_KEY_LEN - 40..MAX_KEY_LEN + 8).prop_map(|n| "p".repeat(n)),
        (0..3_usize, "[\u{0}-\u{1f}\u{7f}-\u{9f}]").prop_map(|(at, c)| {
            let mut path = "app::f".to_owned();
            path.insert_str(at, &c);
            path
        }),
    ]
}

fn key_of<A: Serialize + ?Sized>(args: &A) -> Key {
    Key::for_args("app::f", args).expect("a key")
}

proptest! {
    #![proptest_config(cases(1000))]

    /// Arguments serde_json writes unambiguously keep serde_json's exact text (the keys of
    /// ordinary arguments did not change); the others get a text of their own.
    #[test]
    fn ordinary_arguments_keep_serde_jsons_text(args in arg()) {
        checks::keeps_serde_jsons_text(&args);
    }

    /// Keys of a batch of arguments: equal arguments share a key, distinct ones never do.
    #[test]
    fn distinct_arguments_never_share_a_key(batch in proptest::collection::vec(arg(), 2..24)) {
        let batch: Vec<(&Arg,)> = batch.iter().map(|args| (args,)).collect();
        checks::distinct_arguments_never_share_a_key(&batch);
    }

    /// The same with tuples of edge values: the shape of the macro's default key.
    #[test]
    fn distinct_tuples_never_share_a_key(
        batch in proptest::collection::vec(
            (
                proptest::option::of(float()),
                prop::sample::select(vec![i64::MIN, -1, 0, 1, i64::MAX]),
                text(),
                proptest::option::of(proptest::option::of(Just(()))),
                proptest::collection::vec(proptest::option::of(float().prop_map(|f| f as f32)), 0..2),
            ),
            2..32,
        )
    ) {
        checks::distinct_arguments_never_share_a_key(&batch);
    }

    /// Any path, any arguments: a key within `MAX_KEY_LEN` (far below Redis' 512 MB) with
    /// no control character, shaped `path:<32 hex digits>`; or an error for a bad path.
    #[test]
    fn argument_keys_fit_and_are_clean(path in any_path(), args in arg()) {
        checks::argument_key_fits_and_is_clean(&path, &(&args,));
    }

    /// `Key::new` (and so every `key = ".."` template once formatted) accepts exactly the
    /// non-empty texts of at most `MAX_KEY_LEN` bytes without control characters.
    #[test]
    fn key_new_accepts_exactly_valid_text(text in prop_oneof![any_path(), "\\PC{0,8}:[\0-\u{a0}]{0,3}"]) {
        checks::key_new_accepts_exactly_valid_text(&text);
    }

    /// A template with one placeholder (`key = "songs:{title}:v1"`) gives distinct keys
    /// for distinct values, whatever they hold.
    #[test]
    fn one_placeholder_templates_are_injective(a in text(), b in text()) {
        checks::one_placeholder_templates_are_injective(&a, &b);
    }

    /// The allocation-free key text is the plain formatted one, on the stack or not.
    #[test]
    fn args_key_text_is_path_and_hex(path in "\\PC{0,300}", hash in any::<u128>()) {
        let text = with_args_key(&path, hash, str::to_owned);
        prop_assert_eq!(text, format!("{path}:{hash:032x}"));
    }
}

#[test]
fn non_finite_floats_and_nested_nones_get_keys_of_their_own() {
    // Before: all four were `[null]`, one key, and one entry served for all four calls.
    let keys = [
        key_of(&(None::<f64>,)),
        key_of(&(Some(f64::NAN),)),
        key_of(&(Some(f64::INFINITY),)),
        key_of(&(Some(f64::NEG_INFINITY),)),
        key_of(&(Some(None::<f64>),)),
    ];
    for (i, a) in keys.iter().enumerate() {
        for b in &keys[i + 1..] {
            assert_ne!(a, b);
        }
    }
    // Ordinary arguments keep their keys (hashes of serde_json's text).
    let hash = xxhash_rust::xxh3::xxh3_128(br#"[1.5,null,"x"]"#);
    assert_eq!(
        key_of(&(1.5, None::<u8>, "x")).as_str(),
        format!("app::f:{hash:032x}")
    );
}

#[test]
fn the_templates_own_separators_are_the_users_to_choose() {
    // Two placeholders with a separator the values may contain are ambiguous: a template
    // is formatted text, and `a:b` + `c` reads like `a` + `b:c`. Documented on the macro's
    // `key` option; the default key (a hash of the arguments) has no such ambiguity.
    let template = |a: &str, b: &str| Key::new(format!("songs:{a}:{b}")).unwrap();
    assert_eq!(template("x:y", "z"), template("x", "y:z"));
    assert_ne!(key_of(&("x:y", "z")), key_of(&("x", "y:z")));
}
