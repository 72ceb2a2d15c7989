//! What does a SQL statement write, and what does it read?
//!
//! querycache's ORM integrations see the text (and bound parameters) of every statement they
//! send and ask [`classify`] which tables — and, where the statement pins them down, which
//! rows — to invalidate. While a cached query computes, they ask [`reads`] the converse of
//! each statement it sends: which tables (and, where pinned, which rows) it read, so that the
//! cached result depends on exactly those. Two more questions are asked of the same lexer:
//! does a read take row locks ([`locks`]), and where does a text begin, end or split a
//! transaction ([`transaction_walk`]). This crate answers them from the text alone: it
//! depends on nothing but the standard library, and knows nothing of caches, tags or ORMs.
//!
//! ```
//! use querycache_sql::{Bound, Effect, ReadEffect, Rows, TableName, TableRead, TableWrite, classify, reads};
//!
//! // `$1` is bound to 7; every table's primary key is `id`.
//! let param = |i: usize| (i == 0).then_some(Bound::Integer(7));
//! let primary_key = |_: &TableName| vec!["id".to_owned()];
//! let songs = TableName { schema: None, name: "songs".into() };
//! let effect = classify("DELETE FROM songs WHERE id = $1", &param, &primary_key);
//! assert_eq!(
//!     effect,
//!     Effect::Writes(vec![TableWrite { table: songs.clone(), rows: Rows::Ids(vec!["7".into()]) }])
//! );
//! assert_eq!(classify("SELECT * FROM songs", &param, &primary_key), Effect::Read);
//! // Cannot be read: the caller invalidates everything.
//! assert_eq!(classify("CALL refresh_all()", &param, &primary_key), Effect::Unknown);
//!
//! // The same rows, read: a read's row and a write's row render identically.
//! assert_eq!(
//!     reads("SELECT title FROM songs WHERE id = $1", &param, &primary_key),
//!     ReadEffect::Reads(vec![TableRead { table: songs, rows: Rows::Ids(vec!["7".into()]) }])
//! );
//! ```
//!
//! The rule throughout is **fail safe**: a statement that might write and that this crate
//! cannot read is [`Effect::Unknown`] (the caller then invalidates everything), and a write it
//! cannot narrow to primary-key values is [`Rows::Unknown`]; likewise a statement whose reads
//! are not known — or that calls a function not known to be a side-effect-free built-in — is
//! [`ReadEffect::Unknown`], and a read not narrowed to ids is of the whole table. Reporting
//! too much costs cache hits; reporting too little serves stale data. So the parser is deliberately shallow — it
//! recognises the shapes ORMs generate plus the common hand-written forms, and gives up
//! (upwards) on everything else:
//!
//! * Dialects are not guessed. The text is tokenized under PostgreSQL, MySQL and SQLite rules
//!   (see `lexer`) and the writes found under each are unioned, so a write hidden from one
//!   lexing by, say, a MySQL `#` comment or a backslash-escaped quote is still seen.
//! * Writes nested in queries (data-modifying CTEs) are found at any parenthesis depth.
//! * Row ids are only taken from a `WHERE` whose top level is a conjunction containing
//!   `pk = X`, `pk IN (X, ...)` (the key and values may be parenthesised, as a one-column row
//!   value is: `(pk) IN ((X), (Y))`) or `pk = ANY($n)` with an array of ids bound
//!   ([`Bound::List`]); for a key of several columns, one value for each column; and from
//!   `INSERT ... VALUES` with literal or bound keys. Text that spells a UUID is rendered
//!   canonically (lower case, hyphenated), whatever its spelling.
//!   A text key (a string literal or a bound string) is only taken as written when no
//!   backend can read it as another number (see [`Bound::Text`]): `'05'`, `' 5'`, `'5.0'`
//!   and `'5abc'` all make the write a bulk write.
//! * A single `INSERT ... VALUES` whose keys the text does not give (generated ids) reports
//!   how many rows it inserts ([`Rows::Inserted`]), so that a caller seeing the rows it
//!   returned can narrow the write to their ids — when every inserted row came back.
//!
//! Every loop advances through a token array with a precomputed table of matching
//! parentheses, and recursion is capped (32 levels of sub-statements, `PREPARE` texts or
//! parenthesised conditions), so any input — however large, deep or malformed — classifies in
//! time linear in its length, without panicking. The crate has no `unsafe` code.
//!
//! Layout: `lexer` (tokens, per dialect); this file (public types, the driver from text to
//! statements, the accumulated effect); `parser` (token helpers, statement dispatch, nested
//! writes, `WITH`); `dml` (targets of INSERT / UPDATE / DELETE / MERGE); `rows` (which rows
//! they touch — or a query reads); `utility` (DDL, EXPLAIN, COPY, PREPARE, transactions...);
//! `reads` ([`reads`]: tables and rows a statement reads, built-in functions); `locking`
//! ([`locks`]); `control` ([`transaction_walk`]). Tests: `tests/it/`, one file per concern,
//! through the public API; fuzzing: the `classify` and `reads` targets of querycache's
//! `fuzz/`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod control;
mod dml;
mod lexer;
mod locking;
mod parser;
mod reads;
mod rows;
mod utility;

use std::collections::{HashMap, HashSet};

pub use control::{Control, Step, Walk, transaction_walk};
use lexer::{Dialect, Kind, Token};
pub use locking::locks;
use parser::Parser;
pub use reads::{ReadEffect, TableRead, UnknownRead, reads, view_reads};
#[doc(hidden)]
pub use rows::NUMERIC_LOOKING_TEXT;

/// A table named in SQL, unquoted. `schema` is None when the name is unqualified.
///
/// Unquoted names are folded to ASCII lower case (as PostgreSQL does); quoted names keep
/// their case.
///
/// ```
/// use querycache_sql::{Effect, TableName, classify};
///
/// let effect = classify(r#"TRUNCATE App."Songs""#, &|_| None, &|_| vec!["id".to_owned()]);
/// let Effect::Writes(writes) = effect else { panic!("{effect:?}") };
/// assert_eq!(
///     writes[0].table,
///     TableName { schema: Some("app".into()), name: "Songs".into() }
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableName {
    /// The qualifier (`app` in `app.songs`, `main` in SQLite's `main.songs`), as written.
    pub schema: Option<String>,
    /// The table's own name.
    pub name: String,
}

/// A bound parameter's value, as far as row ids go (see [`classify`]).
///
/// ```
/// use querycache_sql::{Bound, Effect, Rows, classify};
///
/// let sql = "UPDATE songs SET title = 'x' WHERE id = ?";
/// let rows = |bound: Bound| match classify(sql, &|_| Some(bound.clone()), &|_| vec!["id".into()]) {
///     Effect::Writes(writes) => writes[0].rows.clone(),
///     other => panic!("{other:?}"),
/// };
/// assert_eq!(rows(Bound::Integer(5)), Rows::Ids(vec!["5".into()]));
/// assert_eq!(rows(Bound::Text("ab-1".into())), Rows::Ids(vec!["ab-1".into()]));
/// // SQLite and MySQL read '05' as 5 when it meets an integer key: not an id.
/// assert_eq!(rows(Bound::Text("05".into())), Rows::Unknown);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    /// An integer of any width.
    Integer(i128),
    /// Text. Compared with an integer key, SQLite and MySQL convert it to a number, so it is
    /// an id only when no backend can read it as another number: text that starts with a
    /// digit, a sign, a point or whitespace, or ends with whitespace, must be the canonical
    /// decimal of an integer of at most 15 digits; other text (`abc`, a slug) is the id it
    /// spells. String literals follow the same rule. Text that spells a UUID (32 hex digits,
    /// hyphens anywhere, optionally in braces) is rendered canonically, lower case and
    /// hyphenated 8-4-4-4-12, so that a UUID bound typed (as text), bound as text or written
    /// as a literal renders alike; one starting with a digit only when hyphenated and not
    /// followed by an `e` (MySQL would read its leading number as a float).
    Text(String),
    /// An array of values (PostgreSQL's `key = ANY($1)`, as Diesel sends `eq_any`): the ids
    /// of its elements when every one is an id under the rules above, else no id at all.
    List(Vec<Bound>),
}

/// The id of one row, from the values of its key columns in key order (each rendered as
/// [`Rows::Ids`] renders ids): the value itself for a one-column key, and for a key of
/// several columns a JSON array of strings, `["t1","7"]` (`"` and `\` escaped with a
/// backslash), which no two different lists of values share.
///
/// ```
/// use querycache_sql::{row_id, row_id_parts};
///
/// assert_eq!(row_id(&["7".into()]), "7");
/// let id = row_id(&["t\"1".into(), "7".into()]);
/// assert_eq!(id, r#"["t\"1","7"]"#);
/// assert_eq!(row_id_parts(&id), Some(vec!["t\"1".to_owned(), "7".to_owned()]));
/// assert_eq!(row_id_parts("7"), None);
/// ```
pub fn row_id(parts: &[String]) -> String {
    if let [one] = parts {
        return one.clone();
    }
    let mut id = String::from("[");
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            id.push(',');
        }
        id.push('"');
        for c in part.chars() {
            if matches!(c, '"' | '\\') {
                id.push('\\');
            }
            id.push(c);
        }
        id.push('"');
    }
    id.push(']');
    id
}

/// The values of a [`row_id`] of several columns; `None` for anything else.
pub fn row_id_parts(id: &str) -> Option<Vec<String>> {
    let mut chars = id.strip_prefix('[')?.strip_suffix(']')?.chars();
    let mut parts = Vec::new();
    loop {
        if chars.next()? != '"' {
            return None;
        }
        let mut part = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => part.push(chars.next()?),
                c => part.push(c),
            }
        }
        parts.push(part);
        match chars.next() {
            None => return (parts.len() > 1).then_some(parts),
            Some(',') => {}
            Some(_) => return None,
        }
    }
}

/// Which rows of a table a write touches.
///
/// ```
/// use querycache_sql::{Bound, Effect, Rows, classify};
///
/// let rows = |sql: &str| match classify(sql, &|_| None::<Bound>, &|_| vec!["id".into()]) {
///     Effect::Writes(writes) => writes[0].rows.clone(),
///     other => panic!("{other:?}"),
/// };
/// assert_eq!(rows("DELETE FROM t WHERE id IN (1, 2)"), Rows::Ids(vec!["1".into(), "2".into()]));
/// assert_eq!(rows("INSERT INTO t (title) VALUES ('a'), ('b')"), Rows::Inserted(2));
/// assert_eq!(rows("UPDATE t SET a = 1 WHERE a > 3"), Rows::Unknown);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rows {
    /// Only rows whose primary key is one of these values (rendered as strings: integers in
    /// canonical decimal, text unescaped — and only text no backend reads as another
    /// number).
    Ids(Vec<String>),
    /// The rows created by the text's only statement, a top-level `INSERT ... VALUES` with
    /// this many tuples whose keys the text does not give (generated ids), and no other rows:
    /// no `REPLACE`, no `ON CONFLICT DO UPDATE`, no `ON DUPLICATE KEY UPDATE` (`DO NOTHING`
    /// and `OR IGNORE` only skip rows). A caller that saw the ids of exactly this many
    /// returned rows may narrow the write to them; otherwise it is [`Rows::Unknown`].
    Inserted(usize),
    /// Rows not known (bulk write, or a WHERE clause this crate does not reduce to ids).
    Unknown,
}

/// One table a statement writes, and which of its rows.
///
/// ```
/// use querycache_sql::{Effect, Rows, TableName, TableWrite, classify};
///
/// let effect = classify("UPDATE songs SET plays = plays + 1", &|_| None, &|_| vec!["id".into()]);
/// let expected = TableWrite {
///     table: TableName { schema: None, name: "songs".into() },
///     rows: Rows::Unknown,
/// };
/// assert_eq!(effect, Effect::Writes(vec![expected]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableWrite {
    /// The table written.
    pub table: TableName,
    /// The rows written.
    pub rows: Rows,
}

/// What executing a SQL text does to the data a cached query can read.
///
/// ```
/// use querycache_sql::{Effect, classify};
///
/// let effect = |sql: &str| classify(sql, &|_| None, &|_| vec!["id".into()]);
/// assert_eq!(effect("BEGIN; SELECT 1; COMMIT"), Effect::Read);
/// assert!(matches!(effect("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d"), Effect::Writes(_)));
/// assert_eq!(effect("SELECT 'unterminated"), Effect::Unknown);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Writes nothing (SELECT without data-modifying CTE, PRAGMA reads, SHOW, EXPLAIN without
    /// ANALYZE, BEGIN/COMMIT/ROLLBACK/SAVEPOINT/RELEASE, SET, empty text, comments only,
    /// CREATE TABLE/INDEX/VIEW, VACUUM, ANALYZE...).
    Read,
    /// Writes exactly these tables (deduplicated, in order of appearance; if the same table
    /// appears twice, merge: Ids lists are concatenated+deduped, and Unknown wins over Ids).
    Writes(Vec<TableWrite>),
    /// May write, but what is not known (CALL, DO, EXECUTE, an unrecognised leading keyword,
    /// unterminated literals or comments, unbalanced parentheses, a write keyword whose target
    /// cannot be read, TRUNCATE ... CASCADE...).
    Unknown,
}

/// Classify `sql`. `param(i)` returns the bound value of the i-th placeholder (0-based), or
/// None if it is not usable as an id (NULL, float, blob...).
/// `primary_key(table)` returns the primary-key columns of a table, in key order (empty when
/// not known: nothing is narrowed to rows). A key of several columns pins a row only where
/// every column is pinned to one value (`a = 1 AND b = 2`); its id is their [`row_id`].
///
/// Placeholders are `?` (numbered in order of appearance), `?NNN` and `$N` (number N is index
/// N-1). If one text mixes styles, no placeholder is used as an id.
///
/// ```
/// use querycache_sql::{Bound, Effect, Rows, TableName, classify};
///
/// let param = |i: usize| Some(Bound::Text(format!("slug-{i}")));
/// let primary_key = |table: &TableName| match table.name.as_str() {
///     "posts" => vec!["slug".to_owned()],
///     _ => vec!["id".to_owned()],
/// };
/// let effect = classify("UPDATE posts SET body = ? WHERE slug = ?", &param, &primary_key);
/// let Effect::Writes(writes) = effect else { panic!("{effect:?}") };
/// assert_eq!(writes[0].rows, Rows::Ids(vec!["slug-1".into()]));
/// ```
pub fn classify(
    sql: &str,
    param: &dyn Fn(usize) -> Option<Bound>,
    primary_key: &dyn Fn(&TableName) -> Vec<String>,
) -> Effect {
    let env = Env {
        param,
        pk: primary_key,
    };
    let mut acc = Acc::default();
    classify_text(sql, &env, 0, &mut acc);
    acc.finish()
}

/// Nesting limit (sub-statements, `PREPARE` texts, parenthesised conditions). Deeper input is
/// `Unknown` (or, for conditions, not narrowed to ids) rather than a stack overflow.
const MAX_DEPTH: usize = 32;

/// The caller's callbacks.
struct Env<'p> {
    param: &'p dyn Fn(usize) -> Option<Bound>,
    pk: &'p dyn Fn(&TableName) -> Vec<String>,
}

/// Parameters of a prepared statement's body are bound later, by `EXECUTE`: none is known.
fn no_param(_: usize) -> Option<Bound> {
    None
}

// ---------------------------------------------------------------------------------------------
// Driver: lexings, statements, accumulated effect
// ---------------------------------------------------------------------------------------------

fn classify_text(sql: &str, env: &Env<'_>, depth: usize, acc: &mut Acc) {
    if depth > MAX_DEPTH {
        acc.fail();
        return;
    }
    each_statement(sql, env, acc, &|parser, s, e, acc| {
        parser.statement(s, e, depth, acc);
    });
}

/// Hands each top-level statement of each lexing of `sql` to `visit`, which records what it
/// finds in `acc`: the driver [`classify`] and [`reads`] share.
fn each_statement(
    sql: &str,
    env: &Env<'_>,
    acc: &mut Acc,
    visit: &dyn Fn(&Parser<'_>, usize, usize, &mut Acc),
) {
    // The primary lexing (PostgreSQL rules, which also read SQLite/MySQL quoting) must
    // succeed: an unterminated literal or comment may hide anything.
    let primary = lexer::lex(sql, Dialect::Postgres);
    if !primary.complete {
        acc.fail();
        return;
    }
    visit_tokens(&primary.tokens, env, false, acc, visit);
    // The other dialects only matter where they tokenize differently.
    for dialect in [Dialect::MySql, Dialect::Sqlite] {
        if acc.unknown {
            return;
        }
        let alternate = lexer::lex(sql, dialect);
        let tokens = runnable_prefix(&alternate.tokens, alternate.complete);
        if tokens != primary.tokens.as_slice() {
            visit_tokens(tokens, env, true, acc, visit);
        }
    }
}

/// The statements of an alternate lexing that would run. Text that ends inside a literal or
/// whose parentheses do not balance is a syntax error in that dialect, and MySQL and SQLite
/// stop at the first failing statement: only the complete statements before it run.
fn runnable_prefix<'t, 'a>(tokens: &'t [Token<'a>], complete: bool) -> &'t [Token<'a>] {
    let mut depth = 0usize;
    let mut end = 0; // after the last top-level `;`
    for (i, token) in tokens.iter().enumerate() {
        if token.kind == Kind::Punct {
            match token.text.as_ref() {
                "(" => depth += 1,
                ")" if depth == 0 => return tokens.get(..end).unwrap_or(&[]),
                ")" => depth -= 1,
                ";" if depth == 0 => end = i + 1,
                _ => {}
            }
        }
    }
    if complete && depth == 0 {
        tokens
    } else {
        tokens.get(..end).unwrap_or(&[])
    }
}

/// Hands each top-level `;`-separated statement of `toks` to `visit`. `lenient` marks an
/// alternate lexing (see [`Parser::lenient`]).
fn visit_tokens(
    toks: &[Token<'_>],
    env: &Env<'_>,
    lenient: bool,
    acc: &mut Acc,
    visit: &dyn Fn(&Parser<'_>, usize, usize, &mut Acc),
) {
    let Some(close) = match_parens(toks) else {
        acc.fail();
        return;
    };
    let parser = Parser {
        toks,
        close: &close,
        env,
        lenient,
    };
    let mut statements = 0;
    for (start, end) in parser.split_at(0, toks.len(), ";") {
        if acc.unknown {
            break;
        }
        statements += usize::from(start < end);
        visit(&parser, start, end, acc);
    }
    // The rows several statements return are not those of any one INSERT.
    acc.several |= statements > 1;
}

/// For each `(`, the index of its `)`; None if the parentheses do not balance.
fn match_parens(toks: &[Token<'_>]) -> Option<Vec<usize>> {
    let mut close = vec![0; toks.len()];
    let mut open = Vec::new();
    for (i, token) in toks.iter().enumerate() {
        if token.kind != Kind::Punct {
            continue;
        }
        match token.text.as_ref() {
            "(" => open.push(i),
            ")" => {
                let at = open.pop()?;
                if let Some(slot) = close.get_mut(at) {
                    *slot = i;
                }
            }
            _ => {}
        }
    }
    open.is_empty().then_some(close)
}

/// The effect found so far. Deduplication goes through hash maps so that a statement naming
/// thousands of tables or ids stays linear.
#[derive(Default)]
struct Acc {
    unknown: bool,
    /// Why the reads are unknown, when a reason was given ([`reads`] only).
    why: Option<UnknownRead>,
    /// Some lexing found more than one statement in the text.
    several: bool,
    writes: Vec<(TableName, RowSet)>,
    index: HashMap<TableName, usize>,
}

enum RowSet {
    Unknown,
    Ids(Vec<String>, HashSet<String>),
    Inserted(usize),
}

impl Acc {
    fn fail(&mut self) {
        self.unknown = true;
    }

    /// Merges what one statement (in one lexing) writes into `table`. The same top-level
    /// INSERT seen by two lexings stays [`Rows::Inserted`]; any other pair of writes to one
    /// table is no longer "only the inserted rows".
    fn add(&mut self, table: TableName, rows: Rows) {
        let Some(&slot) = self.index.get(&table) else {
            self.index.insert(table.clone(), self.writes.len());
            let set = match rows {
                Rows::Unknown => RowSet::Unknown,
                Rows::Inserted(n) => RowSet::Inserted(n),
                Rows::Ids(ids) => {
                    let mut set = RowSet::Ids(Vec::new(), HashSet::new());
                    set.extend(ids);
                    set
                }
            };
            self.writes.push((table, set));
            return;
        };
        let Some((_, set)) = self.writes.get_mut(slot) else {
            return;
        };
        match (&*set, rows) {
            (RowSet::Ids(..), Rows::Ids(ids)) => set.extend(ids),
            (RowSet::Inserted(a), Rows::Inserted(b)) if *a == b => {}
            _ => *set = RowSet::Unknown,
        }
    }

    fn finish(self) -> Effect {
        if self.unknown {
            return Effect::Unknown;
        }
        if self.writes.is_empty() {
            return Effect::Read;
        }
        let several = self.several;
        let writes = self.writes.into_iter().map(|(table, set)| TableWrite {
            table,
            rows: match set {
                RowSet::Unknown => Rows::Unknown,
                RowSet::Ids(list, _) => Rows::Ids(list),
                RowSet::Inserted(_) if several => Rows::Unknown,
                RowSet::Inserted(n) => Rows::Inserted(n),
            },
        });
        Effect::Writes(writes.collect())
    }
}

impl RowSet {
    /// Adds `ids` to an id list (keeping the first occurrence of each).
    fn extend(&mut self, ids: Vec<String>) {
        if let RowSet::Ids(list, seen) = self {
            for id in ids {
                if seen.insert(id.clone()) {
                    list.push(id);
                }
            }
        }
    }
}
