//! The statement walker: token helpers, statement dispatch, nested writes and `WITH`.
//!
//! Positions are token indices. Every method works on a half-open range `i..e` whose
//! parentheses balance, uses the precomputed [`Parser::close`] table to step over whole groups,
//! and never reads past `e`.

use super::lexer::{Kind, Token};
use super::{Acc, Env, MAX_DEPTH, Rows, TableName};

/// Statements that write nothing a cached query reads (`CREATE` has its own handler).
#[rustfmt::skip]
const READ_ONLY: &[&str] = &[
    // transaction control (`BEGIN` / `START` have their own handler)
    "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE",
    // settings and introspection
    "SET", "SHOW", "PRAGMA", "RESET", "DISCARD", "USE", "HELP",
    // maintenance that keeps the data as it is
    "VACUUM", "ANALYZE", "ANALYSE", "REINDEX", "CHECKPOINT", "CLUSTER", "OPTIMIZE", "CHECKSUM",
    "FLUSH", "ATTACH", "DETACH",
    // cursors, prepared statements, locks, privileges, notifications, comments
    "FETCH", "MOVE", "CLOSE", "DEALLOCATE", "LOCK", "UNLOCK", "GRANT", "REVOKE", "LISTEN",
    "UNLISTEN", "NOTIFY", "COMMENT", "SECURITY",
];

/// Statements MySQL, MariaDB (including its compound statements) and SQLite accept. In an
/// alternate lexing any other leading word is a syntax error there, so nothing runs.
#[rustfmt::skip]
const ALTERNATE_STATEMENTS: &[&str] = &[
    "ALTER", "ANALYZE", "ATTACH", "BEGIN", "BINLOG", "CACHE", "CALL", "CASE", "CHANGE", "CHECK",
    "CHECKSUM", "CLONE", "COMMIT", "CREATE", "DEALLOCATE", "DECLARE", "DELETE", "DESC",
    "DESCRIBE", "DETACH", "DO", "DROP", "END", "EXECUTE", "EXPLAIN", "FLUSH", "FOR", "GET",
    "GRANT", "HANDLER", "HELP", "IF", "IMPORT", "INSERT", "INSTALL", "KILL", "LOAD", "LOCK",
    "LOOP", "OPTIMIZE", "PRAGMA", "PREPARE", "PURGE", "REINDEX", "RELEASE", "RENAME", "REPAIR",
    "REPEAT", "REPLACE", "RESET", "RESIGNAL", "RESTART", "REVOKE", "ROLLBACK", "SAVEPOINT",
    "SELECT", "SET", "SHOW", "SHUTDOWN", "SIGNAL", "START", "STOP", "TABLE", "TRUNCATE",
    "UNINSTALL", "UNLOCK", "UPDATE", "USE", "VACUUM", "VALUES", "WHILE", "WITH", "XA",
];

/// Walks the tokens of one lexing and records what its statements write.
pub(super) struct Parser<'p> {
    pub(super) toks: &'p [Token<'p>],
    /// For each `(` in `toks`, the index of its `)`.
    pub(super) close: &'p [usize],
    pub(super) env: &'p Env<'p>,
    /// An alternate lexing (MySQL or SQLite rules): a statement that does not start with one
    /// of their statement keywords is a syntax error there (nothing runs), not an unknown
    /// statement.
    pub(super) lenient: bool,
}

impl<'p> Parser<'p> {
    pub(super) fn tok(&self, i: usize, e: usize) -> Option<&'p Token<'p>> {
        if i < e { self.toks.get(i) } else { None }
    }

    pub(super) fn kw(&self, i: usize, e: usize, keyword: &str) -> bool {
        self.tok(i, e)
            .is_some_and(|t| t.kind == Kind::Word && t.text.eq_ignore_ascii_case(keyword))
    }

    pub(super) fn kw_any(&self, i: usize, e: usize, keywords: &[&str]) -> bool {
        keywords.iter().any(|k| self.kw(i, e, k))
    }

    pub(super) fn punct(&self, i: usize, e: usize, p: &str) -> bool {
        self.tok(i, e)
            .is_some_and(|t| t.kind == Kind::Punct && t.text == p)
    }

    pub(super) fn op(&self, i: usize, e: usize, o: &str) -> bool {
        self.tok(i, e)
            .is_some_and(|t| t.kind == Kind::Op && t.text == o)
    }

    pub(super) fn is_open(&self, i: usize, e: usize) -> bool {
        self.punct(i, e, "(")
    }

    /// The `)` matching the `(` at `open`.
    pub(super) fn close_of(&self, open: usize) -> usize {
        self.close
            .get(open)
            .copied()
            .filter(|&c| c > open)
            .unwrap_or(open)
    }

    /// The position after the parenthesised group at `i`, or `i` if there is none there.
    pub(super) fn skip_group(&self, i: usize, e: usize) -> usize {
        if self.is_open(i, e) {
            self.close_of(i) + 1
        } else {
            i
        }
    }

    /// The position after the token (or whole parenthesised group) at `i`.
    pub(super) fn next(&self, i: usize, e: usize) -> usize {
        if self.is_open(i, e) {
            self.close_of(i) + 1
        } else {
            i + 1
        }
    }

    /// First position in `s..e`, outside parentheses, holding one of `keywords`.
    pub(super) fn find_kw(&self, s: usize, e: usize, keywords: &[&str]) -> Option<usize> {
        let mut i = s;
        while i < e {
            if self.kw_any(i, e, keywords) {
                return Some(i);
            }
            i = self.next(i, e);
        }
        None
    }

    /// First `=` (or SQLite's `==`) outside parentheses in `s..e`.
    pub(super) fn find_eq(&self, s: usize, e: usize) -> Option<usize> {
        let mut i = s;
        while i < e {
            if self.op(i, e, "=") || self.op(i, e, "==") {
                return Some(i);
            }
            i = self.next(i, e);
        }
        None
    }

    /// The pieces of `s..e` between top-level commas (none for an empty range).
    pub(super) fn split_commas(&self, s: usize, e: usize) -> Vec<(usize, usize)> {
        self.split_at(s, e, ",")
    }

    /// The pieces of `s..e` between top-level `separator`s (none for an empty range).
    pub(super) fn split_at(&self, s: usize, e: usize, separator: &str) -> Vec<(usize, usize)> {
        let mut parts = Vec::new();
        if s >= e {
            return parts;
        }
        let mut start = s;
        let mut i = s;
        while i < e {
            if self.punct(i, e, separator) {
                parts.push((start, i));
                start = i + 1;
            }
            i = self.next(i, e);
        }
        parts.push((start, e));
        parts
    }

    /// An identifier at `i`: unquoted ones fold to lower case, quoted ones are kept.
    pub(super) fn name_part(&self, i: usize, e: usize) -> Option<String> {
        let t = self.tok(i, e)?;
        match t.kind {
            Kind::Word => Some(t.text.to_ascii_lowercase()),
            Kind::Quoted => Some(t.text.to_string()),
            _ => None,
        }
    }

    /// `name`, `schema.name` or `catalog.schema.name` at `i`, and the position after it.
    pub(super) fn table_name(&self, i: usize, e: usize) -> Option<(TableName, usize)> {
        let mut parts = vec![self.name_part(i, e)?];
        let mut j = i + 1;
        while parts.len() < 3 && self.punct(j, e, ".") {
            let Some(part) = self.name_part(j + 1, e) else {
                break;
            };
            parts.push(part);
            j += 2;
        }
        let name = parts.pop()?;
        let schema = parts.pop();
        Some((TableName { schema, name }, j))
    }

    /// Skips PostgreSQL's `ONLY` before a table name. MySQL and SQLite have no such keyword
    /// and read `only` as the table itself (`UPDATE only o SET ...`), so that table is
    /// reported too.
    pub(super) fn skip_only(&self, i: usize, e: usize, acc: &mut Acc) -> usize {
        if self.kw(i, e, "ONLY") && self.name_part(i + 1, e).is_some() {
            let only = TableName {
                schema: None,
                name: "only".into(),
            };
            acc.add(only, Rows::Unknown);
            i + 1
        } else {
            i
        }
    }

    /// Whether `s..e` consists of `words` only.
    pub(super) fn only_words(&self, s: usize, e: usize, words: &[&str]) -> bool {
        (s..e).all(|i| self.kw_any(i, e, words))
    }

    /// Whether the statement `s..e` at nesting `depth` is to be read: it is not empty, nothing
    /// failed yet, and the nesting limit is not passed (which fails `acc`).
    pub(super) fn enter(&self, s: usize, e: usize, depth: usize, acc: &mut Acc) -> bool {
        if s >= e || acc.unknown {
            return false;
        }
        if depth > MAX_DEPTH {
            acc.fail();
            return false;
        }
        true
    }

    /// Classifies the statement `s..e` (without its `;`).
    pub(super) fn statement(&self, s: usize, e: usize, depth: usize, acc: &mut Acc) {
        if !self.enter(s, e, depth, acc) {
            return;
        }
        if self.is_open(s, e) {
            self.scan_nested(s, e, depth, acc); // `(SELECT ...) UNION (SELECT ...)`
            return;
        }
        let Some(verb) = self.verb(s, e, acc) else {
            return;
        };
        match verb.as_str() {
            "SELECT" | "VALUES" | "TABLE" | "DECLARE" => self.scan_nested(s + 1, e, depth, acc),
            "WITH" => self.with(s, e, depth, acc),
            "INSERT" | "REPLACE" | "UPSERT" => self.insert(s, e, depth, acc),
            "UPDATE" => self.update(s, e, depth, acc),
            "DELETE" => self.delete(s, e, depth, acc),
            "MERGE" => self.merge(s, e, depth, acc),
            "TRUNCATE" => self.truncate(s, e, acc),
            "DROP" => self.drop(s, e, acc),
            "ALTER" => self.alter(s, e, acc),
            "CREATE" => self.create(s, e, acc),
            "EXPLAIN" | "DESCRIBE" | "DESC" => self.explain(s, e, depth, acc),
            "COPY" => self.copy(s, e, depth, acc),
            "PREPARE" => self.prepare(s, e, depth, acc),
            "REFRESH" => self.refresh(s, e, acc),
            "RENAME" => self.rename(s, e, acc),
            "LOAD" => self.load(s, e, acc),
            "BEGIN" | "START" => self.begin(s, e, acc),
            v if READ_ONLY.contains(&v) => {}
            _ => acc.fail(), // CALL, DO, EXECUTE, and anything not known
        }
    }

    /// The leading keyword of the statement at `s` (upper case), or None when it does not
    /// run: a statement an alternate lexing makes of text that is no statement there (e.g.
    /// `RETURN x` from a PostgreSQL function body read as MySQL) is a syntax error in that
    /// dialect; in the primary lexing, a statement without a keyword fails `acc`.
    pub(super) fn verb(&self, s: usize, e: usize, acc: &mut Acc) -> Option<String> {
        let verb = match self.tok(s, e) {
            Some(t) if t.kind == Kind::Word && is_keyword_shaped(&t.text) => {
                t.text.to_ascii_uppercase()
            }
            _ => {
                if !self.lenient {
                    acc.fail();
                }
                return None;
            }
        };
        (!self.lenient || ALTERNATE_STATEMENTS.contains(&verb.as_str())).then_some(verb)
    }

    /// Finds writes nested anywhere in a query: a parenthesis opening `INSERT`, `UPDATE`,
    /// `DELETE`, `MERGE` or `WITH` is classified as a statement of its own (PostgreSQL only
    /// allows them as CTE bodies, but where they stand does not matter here).
    pub(super) fn scan_nested(&self, s: usize, e: usize, depth: usize, acc: &mut Acc) {
        let mut i = s;
        while i < e && !acc.unknown {
            if self.is_open(i, e) && self.opens_write(i + 1, e) {
                let close = self.close_of(i);
                self.statement(i + 1, close, depth + 1, acc);
                i = close + 1;
            } else {
                i += 1;
            }
        }
    }

    pub(super) fn opens_write(&self, i: usize, e: usize) -> bool {
        // `INSERT(` is MySQL's string function, not a statement.
        self.kw_any(i, e, &["WITH", "UPDATE", "DELETE", "MERGE"])
            || (self.kw(i, e, "INSERT") && !self.is_open(i + 1, e))
    }

    /// `WITH [RECURSIVE] name [(cols)] AS [NOT] [MATERIALIZED] (body) [SEARCH|CYCLE ...], ...
    /// main-statement`: every body and the main statement are classified.
    pub(super) fn with(&self, s: usize, e: usize, depth: usize, acc: &mut Acc) {
        let Some(with) = self.parse_with(s, e) else {
            acc.fail();
            return;
        };
        for cte in &with.ctes {
            self.statement(cte.body.0, cte.body.1, depth + 1, acc);
        }
        self.statement(with.main, e, depth + 1, acc);
    }

    /// The parts of the `WITH` clause at `s` (see [`Parser::with`]); None if malformed or
    /// without a main statement.
    pub(super) fn parse_with(&self, s: usize, e: usize) -> Option<With> {
        let mut i = s + 1;
        let recursive = self.kw(i, e, "RECURSIVE");
        i += usize::from(recursive);
        let mut ctes = Vec::new();
        loop {
            let name = self.name_part(i, e)?;
            i = self.skip_group(i + 1, e); // column names
            if !self.kw(i, e, "AS") {
                return None;
            }
            i += 1;
            if self.kw(i, e, "NOT") {
                i += 1;
            }
            if self.kw(i, e, "MATERIALIZED") {
                i += 1;
            }
            if !self.is_open(i, e) {
                return None;
            }
            let close = self.close_of(i);
            ctes.push(Cte {
                name,
                body: (i + 1, close),
            });
            i = close + 1;
            if self.kw_any(i, e, &["SEARCH", "CYCLE"]) {
                let main = [
                    "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "VALUES", "TABLE",
                ];
                while i < e
                    && !self.punct(i, e, ",")
                    && !self.is_open(i, e)
                    && !self.kw_any(i, e, &main)
                {
                    i += 1;
                }
            }
            if !self.punct(i, e, ",") {
                break;
            }
            i += 1;
        }
        (i < e).then_some(With {
            recursive,
            ctes,
            main: i,
        })
    }
}

/// A `WITH` clause: its common table expressions, and where its main statement starts.
pub(super) struct With {
    /// `WITH RECURSIVE`: each body sees its own name (and, in PostgreSQL, every other).
    pub(super) recursive: bool,
    pub(super) ctes: Vec<Cte>,
    pub(super) main: usize,
}

/// One common table expression: its name and the range of its body (inside the parentheses).
pub(super) struct Cte {
    pub(super) name: String,
    pub(super) body: (usize, usize),
}

/// Whether a word can be a statement keyword (letters and `_` only).
fn is_keyword_shaped(word: &str) -> bool {
    word.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_')
}
