//! `Cache::invalidate_pattern` with hostile patterns: never a panic, an error naming the
//! pattern when it is not a glob, and on the memory store exactly the keys a reference
//! glob matcher picks are removed.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use querycache::{Cache, EntryOptions, Error};

use super::{cases, runtime};

/// A piece of a glob.
#[derive(Debug, Clone)]
enum Token {
    /// A character that stands for itself.
    Literal(char),
    /// `*`, `?` or `[` as a literal, written `[*]`, `[?]`, `[[]`.
    Escaped(char),
    /// `*`: any run of characters.
    Star,
    /// `?`: one character.
    One,
    /// `[..]` or `[!..]`: one character among (or not among) these.
    Class {
        negated: bool,
        items: Vec<(char, char)>,
    },
}

/// Characters of keys and literals: plain, punctuation the glob treats as literal,
/// multi-byte ones.
const PLAIN: &[char] = &['a', 'b', 'c', ':', '-', '!', ']', '/', 'é', '🎵'];
/// Characters a key may hold that are glob syntax.
const SPECIAL: &[char] = &['*', '?', '['];

fn token() -> impl Strategy<Value = Token> {
    let class_char = prop::sample::select(vec!['a', 'b', 'c', ':', 'é', '🎵']);
    prop_oneof![
        4 => prop::sample::select(PLAIN).prop_map(Token::Literal),
        1 => prop::sample::select(SPECIAL).prop_map(Token::Escaped),
        2 => Just(Token::Star),
        1 => Just(Token::One),
        1 => (
            any::<bool>(),
            proptest::collection::vec((class_char.clone(), class_char), 1..3),
        )
            .prop_map(|(negated, pairs)| Token::Class {
                negated,
                // A range low-high (or one character when both are equal).
                items: pairs.into_iter().map(|(a, b)| (a.min(b), a.max(b))).collect(),
            }),
    ]
}

/// A glob: tokens, with runs of `*` merged (`**` is a path-component wildcard to glob).
fn glob() -> impl Strategy<Value = Vec<Token>> {
    proptest::collection::vec(token(), 0..6).prop_map(|tokens| {
        let mut out: Vec<Token> = Vec::new();
        for token in tokens {
            if matches!(token, Token::Star) && matches!(out.last(), Some(Token::Star)) {
                continue;
            }
            out.push(token);
        }
        out
    })
}

fn render(tokens: &[Token]) -> String {
    let mut out = String::new();
    for token in tokens {
        match token {
            Token::Literal(c) => out.push(*c),
            Token::Escaped(c) => out.extend(['[', *c, ']']),
            Token::Star => out.push('*'),
            Token::One => out.push('?'),
            Token::Class { negated, items } => {
                out.push('[');
                if *negated {
                    out.push('!');
                }
                for &(low, high) in items {
                    out.push(low);
                    if high != low {
                        out.push('-');
                        out.push(high);
                    }
                }
                out.push(']');
            }
        }
    }
    out
}

/// The reference: whether `tokens` match all of `key`, by the glob rules as documented.
fn matches(tokens: &[Token], key: &[char]) -> bool {
    match tokens.split_first() {
        None => key.is_empty(),
        Some((Token::Star, rest)) => (0..=key.len()).any(|skip| matches(rest, &key[skip..])),
        Some((token, rest)) => {
            let Some((&c, key_rest)) = key.split_first() else {
                return false;
            };
            let one = match token {
                Token::Literal(l) | Token::Escaped(l) => c == *l,
                Token::One => true,
                Token::Class { negated, items } => {
                    items.iter().any(|&(low, high)| (low..=high).contains(&c)) != *negated
                }
                Token::Star => unreachable!("handled above"),
            };
            one && matches(rest, key_rest)
        }
    }
}

fn keys() -> impl Strategy<Value = BTreeSet<String>> {
    let key_char = prop::sample::select([PLAIN, SPECIAL].concat());
    proptest::collection::btree_set(
        proptest::collection::vec(key_char, 1..7).prop_map(|chars| chars.into_iter().collect()),
        1..40,
    )
}

#[test]
fn any_pattern_is_removed_by_or_refused_with_its_name() {
    let runtime = runtime();
    let pattern = prop_oneof![
        "\\PC{0,30}",
        ".{0,30}",
        "[\\[\\]!*?a:\\\\^-]{0,12}",
        (0..3000_usize).prop_map(|n| "[".repeat(n)),
    ];
    let mut runner = TestRunner::new(cases(1000));
    runner
        .run(&pattern, |pattern| {
            runtime.block_on(async {
                let cache = Cache::new();
                cache
                    .set("user:1", 1_u8, EntryOptions::new())
                    .await
                    .expect("stored");
                match cache.invalidate_pattern(&pattern).await {
                    Ok(removed) => prop_assert!(removed <= 1),
                    Err(error) => {
                        prop_assert!(matches!(error, Error::Pattern { .. }), "{}", error);
                        prop_assert!(
                            error.to_string().contains(&format!("{pattern:?}")),
                            "{} names {:?}",
                            error,
                            pattern
                        );
                        prop_assert!(cache.get::<u8>("user:1").await.is_some(), "kept");
                    }
                }
                Ok(())
            })
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}

/// Stores `keys` in `cache` (emptied first), removes `pattern`, and checks that exactly
/// the keys the reference matches are gone.
async fn removes_exactly_its_matches(
    cache: &Cache,
    tokens: &[Token],
    keys: &BTreeSet<String>,
) -> Result<(), TestCaseError> {
    let pattern = render(tokens);
    cache.clear().await;
    for key in keys {
        cache
            .set(key, 1_u8, EntryOptions::new())
            .await
            .expect("stored");
    }
    let removed = cache
        .invalidate_pattern(&pattern)
        .await
        .unwrap_or_else(|e| panic!("{pattern:?} is a glob: {e}"));
    let mut expected = 0;
    for key in keys {
        let chars: Vec<char> = key.chars().collect();
        let matched = matches(tokens, &chars);
        expected += usize::from(matched);
        let kept = cache.get::<u8>(key).await.is_some();
        prop_assert_eq!(kept, !matched, "{:?} against {:?}", key, pattern);
    }
    prop_assert_eq!(removed, expected, "{:?}", pattern);
    Ok(())
}

#[test]
fn a_glob_removes_exactly_the_keys_it_matches() {
    let runtime = runtime();
    let cache = Cache::new();
    let mut runner = TestRunner::new(cases(512));
    runner
        .run(&(glob(), keys()), |(tokens, keys)| {
            runtime.block_on(removes_exactly_its_matches(&cache, &tokens, &keys))
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}

/// The same on Redis, where SCAN's `MATCH` has rules of its own (`[^a]` for glob's `[!a]`,
/// `\` as an escape, `?` for one byte): the store must remove what glob matches, as the
/// memory store does.
#[cfg(feature = "redis")]
#[test]
fn a_glob_removes_the_same_keys_on_redis() {
    use crate::support::stores::{Kind, cache_with};

    let runtime = runtime();
    let Some(cache) = runtime.block_on(async { cache_with(Kind::Redis, |b| b) }) else {
        return;
    };
    let mut runner = TestRunner::new(cases(64));
    runner
        .run(&(glob(), keys()), |(tokens, keys)| {
            runtime.block_on(removes_exactly_its_matches(&cache, &tokens, &keys))
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
    // The divergences, spelled out.
    runtime.block_on(async {
        let keys: BTreeSet<String> = ["user:1", "user:2", "user:!", "user:^", "u\\x", "é", "ab"]
            .map(str::to_owned)
            .into();
        for pattern in ["user:[!1]", "user:[^1]", "u\\*", "?", "??"] {
            let tokens = parse_simple(pattern);
            removes_exactly_its_matches(&cache, &tokens, &keys)
                .await
                .unwrap_or_else(|failure| panic!("{pattern}: {failure}"));
        }
    });
}

/// The tokens of a glob written with literals, `*`, `?` and `[!..]`/`[..]` of single
/// characters only (enough for the fixed cases above).
#[cfg(feature = "redis")]
fn parse_simple(pattern: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '*' => Token::Star,
            '?' => Token::One,
            '[' => {
                let mut inner: Vec<char> = chars.by_ref().take_while(|&c| c != ']').collect();
                let negated = inner.first() == Some(&'!');
                if negated {
                    inner.remove(0);
                }
                Token::Class {
                    negated,
                    items: inner.into_iter().map(|c| (c, c)).collect(),
                }
            }
            c => Token::Literal(c),
        });
    }
    tokens
}
