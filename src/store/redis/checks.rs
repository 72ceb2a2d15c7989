//! Pattern invalidation's invariants on hostile patterns and keys, shared by the property
//! tests below and the cargo-fuzz target `pattern` (through `querycache::__fuzz`): they
//! panic on a violation, which both harnesses report with the input.
//!
//! The memory store removes the keys `glob::Pattern::matches` accepts; the Redis store
//! SCANs with a `MATCH` pattern of its own ([`scan_matcher`]) and filters what it finds
//! with the same glob ([`entry_matches`]). The two agree when SCAN finds every key the
//! glob matches: [`redis_match`] is Redis' matcher, ported, to check that here.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use super::remove::{clear_matcher, entries_prefix, entry_matches, escape_glob, scan_matcher};

/// Redis' `stringmatchlen` (`src/util.c`), case-sensitive as SCAN's `MATCH` is: `*`, `?`,
/// `[..]` / `[^..]` with ranges and `\\` escapes inside, and `\\` escaping one byte.
pub(crate) fn redis_match(pattern: &[u8], string: &[u8]) -> bool {
    let mut skip_longer = false;
    redis_match_at(pattern, string, &mut skip_longer, 0)
}

fn redis_match_at(
    mut p: &[u8],
    mut s: &[u8],
    skip_longer_matches: &mut bool,
    nesting: usize,
) -> bool {
    // Redis' own guard against abusive patterns.
    if nesting > 1000 {
        return false;
    }
    while !p.is_empty() && !s.is_empty() {
        match p[0] {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                while !s.is_empty() {
                    if redis_match_at(&p[1..], s, skip_longer_matches, nesting + 1) {
                        return true;
                    }
                    if *skip_longer_matches {
                        return false;
                    }
                    s = &s[1..];
                }
                *skip_longer_matches = true;
                return false;
            }
            b'?' => {
                s = &s[1..];
                p = &p[1..];
            }
            b'[' => {
                p = &p[1..];
                let not = p.first() == Some(&b'^');
                if not {
                    p = &p[1..];
                }
                let mut matched = false;
                loop {
                    if p.first() == Some(&b'\\') && p.len() >= 2 {
                        p = &p[1..];
                        if p[0] == s[0] {
                            matched = true;
                        }
                    } else if matches!(p.first(), None | Some(b']')) {
                        // The class ends (or, unclosed, the pattern does).
                        break;
                    } else if p.len() >= 3 && p[1] == b'-' {
                        let (low, high) = (p[0].min(p[2]), p[0].max(p[2]));
                        p = &p[2..];
                        if (low..=high).contains(&s[0]) {
                            matched = true;
                        }
                    } else if p[0] == s[0] {
                        matched = true;
                    }
                    p = &p[1..];
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s = &s[1..];
                // Past the closing `]` (an unclosed class ends the pattern).
                if !p.is_empty() {
                    p = &p[1..];
                }
            }
            byte => {
                let literal = if byte == b'\\' && p.len() >= 2 {
                    p = &p[1..];
                    p[0]
                } else {
                    byte
                };
                if literal != s[0] {
                    return false;
                }
                s = &s[1..];
                p = &p[1..];
            }
        }
        if s.is_empty() {
            while p.first() == Some(&b'*') {
                p = &p[1..];
            }
            break;
        }
    }
    p.is_empty() && s.is_empty()
}

/// For a store prefix, a glob and an entry's key: `glob::Pattern::new` never panics; when
/// the glob is valid, the Redis store removes the entry (SCAN's `MATCH` finds it and the
/// filter keeps it) exactly when the memory store does (`glob.matches(key)`); the escaped
/// prefix matches itself literally; a clear finds every entry under the prefix.
pub(crate) fn pattern_stores_agree(prefix: &str, pattern: &str, key: &str) {
    let stored = format!("{}{key}", entries_prefix(prefix));
    assert!(
        redis_match(escape_glob(&stored).as_bytes(), stored.as_bytes()),
        "an escaped literal does not match itself: {stored:?}"
    );
    assert!(
        redis_match(clear_matcher(prefix).as_bytes(), stored.as_bytes()),
        "a clear misses {stored:?}"
    );
    let Ok(glob) = glob::Pattern::new(pattern) else {
        return;
    };
    let memory = glob.matches(key);
    let entries = entries_prefix(prefix);
    let matcher = scan_matcher(&entries, pattern);
    let scanned = redis_match(matcher.as_bytes(), stored.as_bytes());
    let redis = scanned && entry_matches(&entries, &glob, &stored);
    assert_eq!(
        redis, memory,
        "pattern {pattern:?}, key {key:?}, prefix {prefix:?}: SCAN MATCH {matcher:?} \
         finds it: {scanned}; the memory store removes it: {memory}"
    );
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::test_support::proptest_config::cases;

    #[test]
    fn the_ported_matcher_reads_patterns_as_redis_does() {
        for (pattern, string, expected) in [
            // As in Redis: the empty string is matched by nothing but the empty pattern
            // (SCAN and KEYS shortcut a lone `*`; entries' keys are never empty).
            ("*", "", false),
            ("", "", true),
            ("a*", "abc", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a[^b]c", "abc", false),
            ("a[^b]c", "axc", true),
            ("a[!b]c", "a!c", true),
            ("[a-c]", "b", true),
            ("[c-a]", "b", true),
            ("a\\*", "a*", true),
            ("a\\*", "ab", false),
            ("[\\]]", "]", true),
            ("[abc", "c", true),
            ("h*llo", "heeeello", true),
            ("h*llo*", "hllo", true),
        ] {
            assert_eq!(
                redis_match(pattern.as_bytes(), string.as_bytes()),
                expected,
                "{pattern:?} against {string:?}"
            );
        }
    }

    #[test]
    fn patterns_that_read_differently_in_redis_still_agree() {
        for (pattern, key) in [
            ("user:[!1]", "user:2"),
            ("user:[^1]", "user:^"),
            ("u\\*", "u\\x"),
            ("a]b*", "a]bc"),
            ("?", "é"),
            ("[[]*", "[x"),
            ("**", "a/b"),
            ("x*", "x"),
        ] {
            pattern_stores_agree("qc", pattern, key);
            pattern_stores_agree("app*[1]\\", pattern, key);
        }
    }

    /// Characters of patterns and keys: glob syntax, Redis syntax, multi-byte text.
    fn text() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop::sample::select(vec![
                'a', 'b', ':', '*', '?', '[', ']', '!', '^', '-', '\\', '/', 'é', '🎵',
            ]),
            0..8,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        #![proptest_config(cases(2000))]

        #[test]
        fn memory_and_redis_remove_the_same_keys(
            prefix in prop_oneof![Just("qc".to_owned()), text()],
            pattern in text(),
            key in text(),
        ) {
            pattern_stores_agree(&prefix, &pattern, &key);
            // The pattern's own text as a key, where literal runs match themselves.
            pattern_stores_agree(&prefix, &pattern, &pattern);
        }
    }
}
