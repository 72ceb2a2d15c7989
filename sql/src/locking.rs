//! Locking reads: does a statement take row locks (`SELECT .. FOR UPDATE`)?
//!
//! A locking read's point is its side effect — the lock — so its result must never come from
//! the cache, nor be stored where a later call (inside a transaction) would find it instead
//! of taking the lock. The ORM integrations ask [`locks`] about each statement a cached
//! computation sends and mark the computation uncacheable when it is one.
//!
//! Recognised, at any parenthesis depth, on word tokens only (never inside a string, a quoted
//! name or a comment): PostgreSQL's `FOR UPDATE`, `FOR NO KEY UPDATE`, `FOR SHARE`, `FOR KEY
//! SHARE` (MySQL 8 shares `FOR UPDATE` / `FOR SHARE`), and MySQL's `LOCK IN SHARE MODE`. As
//! everywhere in the classifier, the text is lexed under the three dialects' rules and the
//! answers are unioned; a text that cannot be lexed to its end counts as locking (fail safe:
//! at worst a read is not cached).

use super::lexer::{self, Dialect, Kind, Token};

/// Whether `sql` contains a locking clause: PostgreSQL's `FOR UPDATE`, `FOR NO KEY UPDATE`,
/// `FOR SHARE`, `FOR KEY SHARE` (MySQL 8 shares `FOR UPDATE` / `FOR SHARE`), or MySQL's `LOCK
/// IN SHARE MODE`, at any parenthesis depth, on word tokens only (never inside a string, a
/// quoted name or a comment), under any of the three dialects' lexings. A text that holds
/// `for` or `lock` (in any case, anywhere) and cannot be lexed to its end counts as locking
/// (fail safe: at worst a read is not cached).
///
/// ```
/// use querycache_sql::locks;
///
/// assert!(locks("SELECT * FROM songs WHERE id = $1 FOR UPDATE SKIP LOCKED"));
/// assert!(!locks("SELECT 'FOR UPDATE' FROM songs"));
/// assert!(locks("SELECT 'for"));
/// ```
pub fn locks(sql: &str) -> bool {
    // Cheap pre-filter: every locking clause has a `FOR` or a `LOCK` word, in any case.
    if !mentions_lock_word(sql) {
        return false;
    }
    [Dialect::Postgres, Dialect::MySql, Dialect::Sqlite]
        .into_iter()
        .any(|dialect| {
            let lexed = lexer::lex(sql, dialect);
            !lexed.complete || has_locking_clause(&lexed.tokens)
        })
}

/// Whether the bytes `for` or `lock` occur anywhere, ignoring ASCII case.
fn mentions_lock_word(sql: &str) -> bool {
    sql.as_bytes()
        .windows(3)
        .any(|w| w.eq_ignore_ascii_case(b"for") || w.eq_ignore_ascii_case(b"loc"))
}

fn has_locking_clause(tokens: &[Token<'_>]) -> bool {
    let word = |i: usize, expected: &str| {
        tokens
            .get(i)
            .is_some_and(|t| t.kind == Kind::Word && t.text.eq_ignore_ascii_case(expected))
    };
    (0..tokens.len()).any(|i| {
        (word(i, "for")
            && (word(i + 1, "update")
                || word(i + 1, "share")
                || (word(i + 1, "no") && word(i + 2, "key") && word(i + 3, "update"))
                || (word(i + 1, "key") && word(i + 2, "share"))))
            || (word(i, "lock") && word(i + 1, "in") && word(i + 2, "share") && word(i + 3, "mode"))
    })
}
