//! Everything but DML ("utility statements" in PostgreSQL's terms): DDL, `EXPLAIN`, `COPY`,
//! `PREPARE`, transaction control...

use super::lexer::Kind;
use super::parser::Parser;
use super::{Acc, Env, Rows, classify_text, no_param};

/// Objects whose `ALTER` changes no rows.
#[rustfmt::skip]
const ALTER_READ: &[&str] = &[
    "VIEW", "MATERIALIZED", "INDEX", "SEQUENCE", "FUNCTION", "PROCEDURE", "ROUTINE", "AGGREGATE",
    "OPERATOR", "TRIGGER", "EVENT", "POLICY", "STATISTICS", "COLLATION", "LANGUAGE", "ROLE",
    "USER", "GROUP", "DEFAULT", "DATABASE", "SYSTEM", "TABLESPACE", "PUBLICATION",
    "SUBSCRIPTION", "SERVER",
];

/// Objects whose `DROP` may drop tables that are not named.
const DROP_UNKNOWN: &[&str] = &["SCHEMA", "DATABASE", "OWNED", "EXTENSION", "SERVER"];

/// Words allowed after `BEGIN` / `START TRANSACTION` (anything else may be a compound block).
#[rustfmt::skip]
const TRANSACTION_WORDS: &[&str] = &[
    "TRANSACTION", "WORK", "DEFERRED", "IMMEDIATE", "EXCLUSIVE", "ISOLATION", "LEVEL", "READ",
    "WRITE", "ONLY", "COMMITTED", "UNCOMMITTED", "REPEATABLE", "SERIALIZABLE", "DEFERRABLE",
    "WITH", "CONSISTENT", "SNAPSHOT",
];

/// Keywords that start a statement (used after `EXPLAIN` options).
#[rustfmt::skip]
pub(super) const STATEMENT_START: &[&str] = &[
    "SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "MERGE", "VALUES", "TABLE", "REPLACE",
    "UPSERT", "EXECUTE", "DECLARE", "CREATE",
];

impl<'p> Parser<'p> {
    /// `TRUNCATE [TABLE] [ONLY] a [*], b ... [RESTART|CONTINUE IDENTITY] [RESTRICT]`.
    /// `CASCADE` empties other, unnamed tables: Unknown.
    pub(super) fn truncate(&self, s: usize, e: usize, acc: &mut Acc) {
        let mut i = s + 1;
        if self.kw(i, e, "TABLE") {
            i += 1;
        }
        let mut tables = Vec::new();
        loop {
            i = self.skip_only(i, e, acc);
            let Some((table, j)) = self.table_name(i, e) else {
                acc.fail();
                return;
            };
            tables.push(table);
            i = j + usize::from(self.op(j, e, "*"));
            if !self.punct(i, e, ",") {
                break;
            }
            i += 1;
        }
        if !self.only_words(i, e, &["RESTART", "CONTINUE", "IDENTITY", "RESTRICT"]) {
            acc.fail();
            return;
        }
        for table in tables {
            acc.add(table, Rows::Unknown);
        }
    }

    /// `DROP [TEMPORARY] TABLE | MATERIALIZED VIEW | FOREIGN TABLE ...` writes the tables;
    /// dropping a schema, database or owned objects, or anything with `CASCADE`, may drop
    /// tables not named; other objects (index, view, function...) hold no rows.
    pub(super) fn drop(&self, s: usize, e: usize, acc: &mut Acc) {
        let mut i = s + 1;
        if self.kw_any(i, e, &["TEMPORARY", "TEMP"]) {
            i += 1;
        }
        if self.kw(i, e, "TABLE") {
            self.dropped_tables(i + 1, e, acc);
        } else if (self.kw(i, e, "MATERIALIZED") && self.kw(i + 1, e, "VIEW"))
            || (self.kw(i, e, "FOREIGN") && self.kw(i + 1, e, "TABLE"))
        {
            self.dropped_tables(i + 2, e, acc);
        } else if self.kw_any(i, e, DROP_UNKNOWN) || self.find_kw(i, e, &["CASCADE"]).is_some() {
            acc.fail();
        }
    }

    pub(super) fn dropped_tables(&self, s: usize, e: usize, acc: &mut Acc) {
        let mut i = s;
        if self.kw(i, e, "IF") && self.kw(i + 1, e, "EXISTS") {
            i += 2;
        }
        loop {
            let Some((table, j)) = self.table_name(i, e) else {
                acc.fail();
                return;
            };
            acc.add(table, Rows::Unknown);
            i = j;
            if !self.punct(i, e, ",") {
                break;
            }
            i += 1;
        }
        // CASCADE here only drops views and constraints that depend on the tables.
        if !self.only_words(i, e, &["CASCADE", "RESTRICT", "PURGE"]) {
            acc.fail();
        }
    }

    /// `ALTER TABLE t ...` writes t (and a table named later, as in MySQL's `EXCHANGE
    /// PARTITION p WITH TABLE t2`); altering views, indexes, roles... writes nothing; other
    /// objects (types, domains, schemas...) may change stored values: Unknown.
    pub(super) fn alter(&self, s: usize, e: usize, acc: &mut Acc) {
        let mut i = s + 1;
        while self.kw_any(i, e, &["ONLINE", "OFFLINE", "IGNORE"]) {
            i += 1;
        }
        if self.kw(i, e, "FOREIGN") && self.kw(i + 1, e, "TABLE") {
            i += 1;
        }
        if !self.kw(i, e, "TABLE") {
            if !self.kw_any(i, e, ALTER_READ) {
                acc.fail();
            }
            return;
        }
        let mut j = i + 1;
        if self.kw(j, e, "IF") && self.kw(j + 1, e, "EXISTS") {
            j += 2;
        }
        let j = self.skip_only(j, e, acc);
        let Some((table, mut j)) = self.table_name(j, e) else {
            acc.fail();
            return;
        };
        acc.add(table, Rows::Unknown);
        while j < e {
            if self.kw(j, e, "TABLE")
                && let Some((other, _)) = self.table_name(j + 1, e)
            {
                acc.add(other, Rows::Unknown);
            }
            j = self.next(j, e);
        }
    }

    /// `CREATE ...` makes new objects and writes no existing rows — except `CREATE OR
    /// REPLACE TABLE` (MariaDB) and `CREATE OR REPLACE VIEW`, which change what an existing
    /// name reads as.
    pub(super) fn create(&self, s: usize, e: usize, acc: &mut Acc) {
        if !(self.kw(s + 1, e, "OR") && self.kw(s + 2, e, "REPLACE")) {
            return;
        }
        let mut i = s + 3;
        while i < e && !self.kw(i, e, "AS") && !self.is_open(i, e) {
            if self.kw_any(i, e, &["TABLE", "VIEW"]) {
                let mut j = i + 1;
                if self.kw(j, e, "IF") && self.kw(j + 1, e, "NOT") && self.kw(j + 2, e, "EXISTS") {
                    j += 3;
                }
                match self.table_name(j, e) {
                    Some((table, _)) => acc.add(table, Rows::Unknown),
                    None => acc.fail(),
                }
                return;
            }
            i += 1;
        }
    }

    /// `EXPLAIN` / `DESCRIBE` run their statement only with `ANALYZE` (PostgreSQL, MySQL);
    /// `EXPLAIN QUERY PLAN` (SQLite) and plain `EXPLAIN` do not.
    pub(super) fn explain(&self, s: usize, e: usize, depth: usize, acc: &mut Acc) {
        let mut i = s + 1;
        let mut analyze = false;
        if self.is_open(i, e) {
            // `(ANALYZE [boolean], BUFFERS, ...)`
            let close = self.close_of(i);
            let mut j = i + 1;
            while j < close {
                if self.kw_any(j, close, &["ANALYZE", "ANALYSE"]) {
                    let off = self.kw_any(j + 1, close, &["FALSE", "OFF"])
                        || self
                            .tok(j + 1, close)
                            .is_some_and(|t| t.kind == Kind::Number && t.text == "0");
                    analyze = !off;
                }
                j = self.next(j, close);
            }
            i = close + 1;
        }
        while i < e && !self.kw_any(i, e, STATEMENT_START) && !self.is_open(i, e) {
            analyze |= self.kw_any(i, e, &["ANALYZE", "ANALYSE"]);
            i += 1;
        }
        if !analyze {
            return;
        }
        if i >= e {
            acc.fail();
            return;
        }
        self.statement(i, e, depth + 1, acc);
    }

    /// `COPY t FROM ...` writes t; `COPY t TO` reads; `COPY (query) TO` runs the query, which
    /// may be a write with `RETURNING`.
    pub(super) fn copy(&self, s: usize, e: usize, depth: usize, acc: &mut Acc) {
        let mut i = s + 1;
        if self.is_open(i, e) {
            let close = self.close_of(i);
            self.statement(i + 1, close, depth + 1, acc);
            if !self.kw(close + 1, e, "TO") {
                acc.fail();
            }
            return;
        }
        if self.kw(i, e, "BINARY") {
            i += 1;
        }
        let Some((table, j)) = self.table_name(i, e) else {
            acc.fail();
            return;
        };
        let j = self.skip_group(j, e); // column list
        if self.kw(j, e, "FROM") {
            acc.add(table, Rows::Unknown);
        } else if !self.kw(j, e, "TO") {
            acc.fail();
        }
    }

    /// `PREPARE name [(types)] AS statement` (PostgreSQL) and `PREPARE name FROM 'text'`
    /// (MySQL) are classified as their statement, whose parameters are not known yet.
    /// `PREPARE TRANSACTION` writes nothing.
    pub(super) fn prepare(&self, s: usize, e: usize, depth: usize, acc: &mut Acc) {
        if self.kw(s + 1, e, "TRANSACTION") {
            return;
        }
        if self.name_part(s + 1, e).is_none() {
            acc.fail();
            return;
        }
        let i = self.skip_group(s + 2, e); // parameter types
        let env = Env {
            param: &no_param,
            pk: self.env.pk,
        };
        if self.kw(i, e, "AS") {
            let inner = Parser {
                toks: self.toks,
                close: self.close,
                env: &env,
                lenient: self.lenient,
            };
            inner.statement(i + 1, e, depth + 1, acc);
            return;
        }
        match self.tok(i + 1, e) {
            Some(t)
                if self.kw(i, e, "FROM") && i + 2 == e && t.kind == (Kind::Str { exact: true }) =>
            {
                classify_text(&t.text, &env, depth + 1, acc);
            }
            _ => acc.fail(),
        }
    }

    /// `REFRESH MATERIALIZED VIEW [CONCURRENTLY] v` rewrites v.
    pub(super) fn refresh(&self, s: usize, e: usize, acc: &mut Acc) {
        let mut i = s + 1;
        if !(self.kw(i, e, "MATERIALIZED") && self.kw(i + 1, e, "VIEW")) {
            acc.fail();
            return;
        }
        i += 2;
        if self.kw(i, e, "CONCURRENTLY") {
            i += 1;
        }
        match self.table_name(i, e) {
            Some((table, _)) => acc.add(table, Rows::Unknown),
            None => acc.fail(),
        }
    }

    /// MySQL `RENAME TABLE a TO b, ...`: both names change contents.
    pub(super) fn rename(&self, s: usize, e: usize, acc: &mut Acc) {
        if self.kw(s + 1, e, "USER") {
            return;
        }
        if !self.kw(s + 1, e, "TABLE") {
            acc.fail();
            return;
        }
        let mut i = s + 2;
        loop {
            let Some((from, j)) = self.table_name(i, e) else {
                acc.fail();
                return;
            };
            let Some((to, k)) = self.table_name(j + 1, e).filter(|_| self.kw(j, e, "TO")) else {
                acc.fail();
                return;
            };
            acc.add(from, Rows::Unknown);
            acc.add(to, Rows::Unknown);
            i = k;
            if !self.punct(i, e, ",") {
                break;
            }
            i += 1;
        }
        if i != e {
            acc.fail();
        }
    }

    /// MySQL `LOAD DATA | XML ... INTO TABLE t`. PostgreSQL's `LOAD 'library'` runs code.
    pub(super) fn load(&self, s: usize, e: usize, acc: &mut Acc) {
        if self.kw_any(s + 1, e, &["DATA", "XML"]) {
            let mut i = s + 2;
            while i < e {
                if self.kw(i, e, "INTO") && self.kw(i + 1, e, "TABLE") {
                    if let Some((table, _)) = self.table_name(i + 2, e) {
                        acc.add(table, Rows::Unknown);
                        return;
                    }
                    break;
                }
                i = self.next(i, e);
            }
        }
        acc.fail();
    }

    /// `BEGIN` / `START TRANSACTION` with transaction modes only; anything else (MariaDB's
    /// `BEGIN NOT ATOMIC ... END` block) may run statements.
    pub(super) fn begin(&self, s: usize, e: usize, acc: &mut Acc) {
        if self.kw(s, e, "START") && !self.kw(s + 1, e, "TRANSACTION") {
            acc.fail();
            return;
        }
        for i in s + 1..e {
            let ok = self.punct(i, e, ",")
                || self.kw_any(i, e, TRANSACTION_WORDS)
                || (self.kw(i, e, "NOT") && self.kw(i + 1, e, "DEFERRABLE"));
            if !ok {
                acc.fail();
                return;
            }
        }
    }
}
