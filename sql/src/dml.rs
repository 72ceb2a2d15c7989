//! `INSERT`, `UPDATE`, `DELETE` and `MERGE`: their target tables (see `rows` for which rows).

use super::parser::Parser;
use super::{Acc, Rows, TableName};

/// Words that end a table reference instead of aliasing it.
#[rustfmt::skip]
pub(super) const NOT_ALIAS: &[&str] = &[
    "ON", "USING", "JOIN", "INNER", "LEFT", "RIGHT", "FULL", "CROSS", "NATURAL", "OUTER",
    "STRAIGHT_JOIN", "LATERAL", "WHERE", "SET", "ORDER", "LIMIT", "GROUP", "HAVING", "WINDOW",
    "RETURNING", "UNION", "FOR", "WITH", "USE", "FORCE", "IGNORE", "PARTITION", "TABLESAMPLE",
    "INDEXED", "NOT", "INTERSECT", "EXCEPT", "MINUS", "OFFSET", "FETCH", "APPLY", "QUALIFY",
];

/// MySQL's `INSERT` modifiers.
const INSERT_MODIFIERS: &[&str] = &["LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "IGNORE"];

/// A statement's target table and the alias it may be referred to by.
pub(super) struct Target {
    pub(super) table: TableName,
    pub(super) alias: Option<String>,
    /// An unqualified column may be the target's (the statement names no other table).
    pub(super) bare: bool,
}

/// Where an update's table references start, where its `SET` is, and whether it is SQLite's
/// `UPDATE OR REPLACE` (which deletes rows conflicting on any unique key).
pub(super) struct UpdateHead {
    pub(super) refs: usize,
    pub(super) set: usize,
    pub(super) or_replace: bool,
}

/// What precedes an insert's source: the table, its column list, where the source (`VALUES`,
/// a query, `DEFAULT VALUES`, MySQL's `SET`) starts, and whether rows conflicting on any
/// unique key are replaced.
pub(super) struct InsertHead {
    pub(super) table: TableName,
    pub(super) columns: Option<Vec<String>>,
    pub(super) source: usize,
    pub(super) replace: bool,
}

impl<'p> Parser<'p> {
    /// `INSERT` / `REPLACE` / `UPSERT`, with MySQL modifiers and SQLite `OR <action>`.
    pub(super) fn insert(&self, s: usize, e: usize, depth: usize, acc: &mut Acc) {
        let Some(head) = self.insert_head(s, e) else {
            acc.fail();
            return;
        };
        let rows = if head.replace {
            Rows::Unknown
        } else {
            // Only the statement itself returns its inserted rows (not a CTE's, not
            // EXPLAIN's), and an UPSERT may update rows it does not insert.
            let top = depth == 0 && self.kw(s, e, "INSERT");
            let columns = head.columns.as_deref();
            self.inserted_ids(head.source, e, columns, &head.table, top)
        };
        acc.add(head.table, rows);
        self.scan_nested(s + 1, e, depth, acc);
    }

    /// The head of the `INSERT` / `REPLACE` / `UPSERT` at `s`; None if it cannot be read
    /// (or is Oracle's multi-table insert).
    pub(super) fn insert_head(&self, s: usize, e: usize) -> Option<InsertHead> {
        // REPLACE deletes rows conflicting on *any* unique key, whatever their ids.
        let mut replace = self.kw(s, e, "REPLACE");
        let mut i = s + 1;
        if self.kw_any(i, e, &["ALL", "FIRST"]) {
            return None; // Oracle's multi-table insert
        }
        while self.kw_any(i, e, INSERT_MODIFIERS) {
            i += 1;
        }
        match self.conflict_action(i, e) {
            Some(action_replaces) => {
                replace |= action_replaces;
                i += 2;
            }
            None if self.kw(i, e, "OR") => return None,
            None => {}
        }
        if self.kw(i, e, "INTO") {
            i += 1;
        }
        let (table, mut i) = self.table_name(i, e)?;
        if self.kw(i, e, "AS") {
            i += 2; // PostgreSQL target alias
        }
        if self.kw(i, e, "PARTITION") {
            i = self.skip_group(i + 1, e); // MySQL partition list
        }
        let mut columns = None;
        // `INSERT INTO t (SELECT ...)` has no column list.
        if self.is_open(i, e) && !self.kw_any(i + 1, e, &["SELECT", "WITH", "VALUES", "TABLE"]) {
            let close = self.close_of(i);
            columns = self.column_list(i + 1, close);
            i = close + 1;
        }
        if self.kw(i, e, "OVERRIDING") {
            i += 3; // OVERRIDING { SYSTEM | USER } VALUE
        }
        Some(InsertHead {
            table,
            columns,
            source: i,
            replace,
        })
    }

    /// The head of the `UPDATE` at `s` (MySQL modifiers, SQLite's `OR <action>`, the table
    /// references, `SET`); None if it cannot be read.
    pub(super) fn update_head(&self, s: usize, e: usize) -> Option<UpdateHead> {
        let mut i = s + 1;
        while self.kw_any(i, e, &["LOW_PRIORITY", "IGNORE"]) {
            i += 1;
        }
        let mut or_replace = false;
        match self.conflict_action(i, e) {
            Some(replaces) => {
                or_replace = replaces;
                i += 2;
            }
            None if self.kw(i, e, "OR") => return None,
            None => {}
        }
        let set = self.find_kw(i, e, &["SET"])?;
        Some(UpdateHead {
            refs: i,
            set,
            or_replace,
        })
    }

    /// SQLite's `OR REPLACE | IGNORE | ABORT | FAIL | ROLLBACK` at `i`: Some(true) for
    /// REPLACE, Some(false) for the others, None if absent or malformed.
    pub(super) fn conflict_action(&self, i: usize, e: usize) -> Option<bool> {
        if !self.kw(i, e, "OR") {
            return None;
        }
        if self.kw(i + 1, e, "REPLACE") {
            return Some(true);
        }
        self.kw_any(i + 1, e, &["IGNORE", "ABORT", "FAIL", "ROLLBACK"])
            .then_some(false)
    }

    /// Column names of an insert's column list, None unless each is a plain name.
    pub(super) fn column_list(&self, s: usize, e: usize) -> Option<Vec<String>> {
        self.split_commas(s, e)
            .into_iter()
            .map(|(a, b)| {
                if b == a + 1 {
                    self.name_part(a, e)
                } else {
                    None
                }
            })
            .collect()
    }

    /// `UPDATE [modifiers] target SET ... [FROM ...] [WHERE ...] [RETURNING ...]`.
    pub(super) fn update(&self, s: usize, e: usize, depth: usize, acc: &mut Acc) {
        let Some(head) = self.update_head(s, e) else {
            acc.fail();
            return;
        };
        let (i, set, or_replace) = (head.refs, head.set, head.or_replace);
        match self.single_target(i, set, acc) {
            Some(target) => {
                let set_end = self
                    .find_kw(set + 1, e, &["WHERE", "RETURNING", "ORDER", "LIMIT"])
                    .unwrap_or(e);
                let pk = (self.env.pk)(&target.table);
                // Assigning the key moves a row to an id the WHERE clause does not name.
                let assigns_key = pk.iter().any(|k| self.assigns_column(set + 1, set_end, k));
                let rows = if or_replace || assigns_key {
                    Rows::Unknown
                } else {
                    self.where_rows(set_end, e, &target, &pk)
                };
                acc.add(target.table, rows);
            }
            // MySQL multi-table update: every table named before SET may be written.
            None => self.add_refs(i, set, acc),
        }
        self.scan_nested(s + 1, e, depth, acc);
    }

    /// `DELETE FROM target [USING ...] [WHERE ...]`, and MySQL's multi-table forms
    /// `DELETE t1, t2 FROM refs ...` and `DELETE FROM t1, t2 USING refs ...`.
    pub(super) fn delete(&self, s: usize, e: usize, depth: usize, acc: &mut Acc) {
        let mut i = s + 1;
        while self.kw_any(i, e, &["LOW_PRIORITY", "QUICK", "IGNORE"]) {
            i += 1;
        }
        if self.kw(i, e, "FROM") {
            i += 1;
            let clauses = ["USING", "WHERE", "RETURNING", "ORDER", "LIMIT"];
            let list_end = self.find_kw(i, e, &clauses).unwrap_or(e);
            let using = self.kw(list_end, e, "USING");
            let using_end = if using {
                let clauses = ["WHERE", "RETURNING", "ORDER", "LIMIT"];
                self.find_kw(list_end + 1, e, &clauses).unwrap_or(e)
            } else {
                list_end
            };
            match self.single_target(i, list_end, acc) {
                Some(target) => {
                    let pk = (self.env.pk)(&target.table);
                    let rows = self.where_rows(using_end, e, &target, &pk);
                    let name = (target.table.schema.is_none() && target.alias.is_none())
                        .then(|| target.table.name.clone());
                    acc.add(target.table, rows);
                    if using {
                        // In MySQL the target may be an alias declared in USING.
                        let Some(refs) = self.table_refs(list_end + 1, using_end, acc) else {
                            acc.fail();
                            return;
                        };
                        for (table, alias) in refs {
                            if name.is_some() && alias == name {
                                acc.add(table, Rows::Unknown);
                            }
                        }
                    }
                }
                None => {
                    self.add_refs(i, list_end, acc);
                    if using {
                        self.add_refs(list_end + 1, using_end, acc);
                    }
                }
            }
        } else {
            // `DELETE t1, t2 FROM refs`: the targets are names or aliases from refs.
            let Some(from) = self.find_kw(i, e, &["FROM"]) else {
                acc.fail();
                return;
            };
            let refs_end = self
                .find_kw(from + 1, e, &["WHERE", "ORDER", "LIMIT"])
                .unwrap_or(e);
            self.add_refs(from + 1, refs_end, acc);
        }
        self.scan_nested(s + 1, e, depth, acc);
    }

    /// `[ONLY] name [*] [[AS] alias] [INDEXED BY x | NOT INDEXED]` filling exactly `i..end`.
    pub(super) fn single_target(&self, i: usize, end: usize, acc: &mut Acc) -> Option<Target> {
        let i = self.skip_only(i, end, acc);
        let (table, mut j) = self.table_name(i, end)?;
        if self.op(j, end, "*") {
            j += 1; // PostgreSQL: include descendant tables
        }
        let mut alias = None;
        if self.kw(j, end, "AS") {
            alias = Some(self.name_part(j + 1, end)?);
            j += 2;
        } else if !self.kw_any(j, end, &["INDEXED", "NOT"])
            && let Some(name) = self.name_part(j, end)
        {
            alias = Some(name);
            j += 1;
        }
        if self.kw(j, end, "INDEXED") && self.kw(j + 1, end, "BY") {
            j += 3;
        } else if self.kw(j, end, "NOT") && self.kw(j + 1, end, "INDEXED") {
            j += 2;
        }
        (j == end).then_some(Target {
            table,
            alias,
            bare: true,
        })
    }

    /// Reports every table in the table references `s..e` with unknown rows.
    pub(super) fn add_refs(&self, s: usize, e: usize, acc: &mut Acc) {
        match self.table_refs(s, e, acc) {
            Some(refs) if !refs.is_empty() => {
                for (table, _) in refs {
                    acc.add(table, Rows::Unknown);
                }
            }
            _ => acc.fail(),
        }
    }

    /// Tables (with aliases) of a `FROM`-style list: `a [AS x], b JOIN c ON ... JOIN d USING
    /// (...)`. Derived tables and table functions are skipped; None for a parenthesised join,
    /// which may hide a target.
    pub(super) fn table_refs(
        &self,
        s: usize,
        e: usize,
        acc: &mut Acc,
    ) -> Option<Vec<(TableName, Option<String>)>> {
        let mut refs = Vec::new();
        let mut i = s;
        while i < e {
            if self.kw(i, e, "LATERAL") {
                i += 1;
            }
            i = self.skip_only(i, e, acc);
            if self.is_open(i, e) {
                if !self.kw_any(i + 1, e, &["SELECT", "WITH", "VALUES", "TABLE"]) {
                    return None;
                }
                i = self.close_of(i) + 1;
            } else {
                let (table, j) = self.table_name(i, e)?;
                i = j;
                if self.is_open(i, e) {
                    i = self.close_of(i) + 1; // a table function
                } else {
                    let mut alias = None;
                    if self.kw(i, e, "AS") {
                        alias = self.name_part(i + 1, e);
                    } else if !self.kw_any(i, e, NOT_ALIAS) {
                        alias = self.name_part(i, e);
                    }
                    refs.push((table, alias));
                }
            }
            while i < e && !self.punct(i, e, ",") && !self.kw_any(i, e, &["JOIN", "STRAIGHT_JOIN"])
            {
                i = self.next(i, e);
            }
            i += 1;
        }
        Some(refs)
    }

    /// `MERGE [INTO] [ONLY] target ...`: the target, rows unknown.
    pub(super) fn merge(&self, s: usize, e: usize, depth: usize, acc: &mut Acc) {
        let mut i = s + 1;
        if self.kw(i, e, "INTO") {
            i += 1;
        }
        let i = self.skip_only(i, e, acc);
        let Some((table, _)) = self.table_name(i, e) else {
            acc.fail();
            return;
        };
        acc.add(table, Rows::Unknown);
        self.scan_nested(s + 1, e, depth, acc);
    }
}
