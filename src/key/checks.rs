//! Key building's invariants on hostile arguments, shared by the property tests (`props`)
//! and the cargo-fuzz target `key` (through `querycache::__fuzz`): they panic on a
//! violation, which both harnesses report with the input. [`Arg`] is the argument of any
//! shape both generate (proptest by strategies, the fuzzer through `arbitrary`).
#![allow(missing_docs, clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

use serde::Serialize;

use super::*;

/// An argument of any shape serde knows: scalars at their extremes, floats that are not
/// numbers, text that looks like the encoding's own tokens, options of options, nested
/// lists, tuples, structs and maps.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
pub enum Arg {
    Int(i64),
    Big(u128),
    Neg(i128),
    Float(f64),
    Single(f32),
    Text(String),
    Letter(char),
    Flag(bool),
    Nothing,
    Unit(()),
    Maybe(Option<f64>),
    MaybeMaybe(Option<Option<i32>>),
    MaybeUnit(Option<()>),
    Bytes(Vec<u8>),
    List(Vec<Arg>),
    Pair(Box<Arg>, Box<Arg>),
    Record {
        name: String,
        inner: Option<Box<Arg>>,
    },
    Wrapped(Wrapper),
    Map(BTreeMap<String, Arg>),
    IntMap(BTreeMap<i64, Arg>),
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
pub struct Wrapper(pub Option<Box<Arg>>);

/// Whether `arg` holds something serde_json writes as an ambiguous `null`: a float that is
/// not finite, or a `Some` around a `None` or a `()`.
pub(crate) fn has_ambiguous_null(arg: &Arg) -> bool {
    match arg {
        Arg::Float(f) | Arg::Maybe(Some(f)) => !f.is_finite(),
        Arg::Single(f) => !f.is_finite(),
        Arg::MaybeMaybe(Some(None)) | Arg::MaybeUnit(Some(())) => true,
        Arg::List(items) => items.iter().any(has_ambiguous_null),
        Arg::Pair(a, b) => has_ambiguous_null(a) || has_ambiguous_null(b),
        Arg::Record { inner, .. } | Arg::Wrapped(Wrapper(inner)) => {
            inner.as_deref().is_some_and(has_ambiguous_null)
        }
        Arg::Map(map) => map.values().any(has_ambiguous_null),
        Arg::IntMap(map) => map.values().any(has_ambiguous_null),
        _ => false,
    }
}

/// A value's identity: its `Debug` text (shortest round-trip floats, `-0.0` apart from
/// `0.0`, every NaN alike, strings escaped).
pub(crate) fn identity<T: Debug + ?Sized>(value: &T) -> String {
    format!("{value:?}")
}

/// Whether `value` is a valid name of at most `max` bytes, from first principles.
pub(crate) fn valid(value: &str, max: usize) -> bool {
    !value.is_empty() && value.len() <= max && !value.chars().any(char::is_control)
}

/// Arguments serde_json writes unambiguously keep serde_json's exact text (the keys of
/// ordinary arguments did not change); the others get a text of their own.
pub(crate) fn keeps_serde_jsons_text(args: &Arg) {
    let mut ours = Vec::new();
    json::write(&mut ours, &(args,)).expect("writes");
    let theirs = serde_json::to_vec(&(args,)).expect("serde_json writes");
    if has_ambiguous_null(args) {
        assert_ne!(ours, theirs, "an ambiguous null keeps serde_json's text");
    } else {
        assert_eq!(ours, theirs, "an ordinary argument changed its text");
    }
}

/// Keys (under `app::f`) of a batch of arguments: equal arguments (by [`identity`]) share
/// a key, distinct ones never do.
pub(crate) fn distinct_arguments_never_share_a_key<T: Serialize + Debug>(batch: &[T]) {
    let mut seen: HashMap<Key, String> = HashMap::new();
    let mut keys: HashMap<String, Key> = HashMap::new();
    for args in batch {
        let key = Key::for_args("app::f", args).expect("a key");
        let id = identity(args);
        if let Some(other) = seen.insert(key.clone(), id.clone()) {
            assert_eq!(other, id, "one key for two arguments");
        }
        if let Some(other) = keys.insert(id, key.clone()) {
            assert_eq!(other, key, "two keys for one argument");
        }
    }
}

/// Any path, any arguments: a key within `MAX_KEY_LEN` (far below Redis' 512 MB) with no
/// control character, shaped `path:<32 hex digits>`; or an invalid-name error for a bad
/// path.
pub(crate) fn argument_key_fits_and_is_clean<A: Serialize + ?Sized>(path: &str, args: &A) {
    match Key::for_args(path, args) {
        Ok(key) => {
            assert!(valid(path, MAX_KEY_LEN - 33), "accepted {path:?}");
            let text = key.as_str();
            assert!(text.len() <= MAX_KEY_LEN);
            assert!(!text.chars().any(char::is_control));
            let hex = text.strip_prefix(path).and_then(|t| t.strip_prefix(':'));
            assert!(
                hex.is_some_and(|h| h.len() == 32
                    && h.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))),
                "{text}"
            );
        }
        Err(error) => {
            assert!(!valid(path, MAX_KEY_LEN - 33), "refused {path:?}: {error}");
            assert!(matches!(error, Error::InvalidName { .. }), "{error}");
        }
    }
}

/// `Key::new` (and so every `key = ".."` template once formatted) accepts exactly the
/// non-empty texts of at most `MAX_KEY_LEN` bytes without control characters, as they are.
pub(crate) fn key_new_accepts_exactly_valid_text(text: &str) {
    match Key::new(text) {
        Ok(key) => {
            assert!(valid(text, MAX_KEY_LEN), "accepted {text:?}");
            assert_eq!(key.as_str(), text);
        }
        Err(error) => {
            assert!(!valid(text, MAX_KEY_LEN), "refused {text:?}");
            assert!(error.to_string().contains("key"), "{error}");
        }
    }
}

/// A template with one placeholder (`key = "songs:{title}:v1"`) gives distinct keys for
/// distinct values, whatever they hold.
pub(crate) fn one_placeholder_templates_are_injective(a: &str, b: &str) {
    let (ka, kb) = (
        Key::new(format!("songs:{a}:v1")),
        Key::new(format!("songs:{b}:v1")),
    );
    if let (Ok(ka), Ok(kb)) = (&ka, &kb) {
        assert_eq!(ka == kb, a == b);
    }
    assert_eq!(
        ka.is_ok(),
        !a.chars().any(char::is_control) && a.len() + "songs::v1".len() <= MAX_KEY_LEN
    );
}
