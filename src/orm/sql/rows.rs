//! Which rows a write touches: primary-key values from `WHERE` clauses and `VALUES` lists.
//!
//! Ids are only reported when the statement cannot touch any other row; every doubt
//! (`OR`, ranges, expressions, collations, upserts that may hit another unique key...) gives
//! [`Rows::Unknown`].

use super::dml::Target;
use super::lexer::Kind;
use super::parser::Parser;
use super::{MAX_DEPTH, Rows, TableName};

impl<'p> Parser<'p> {
    /// Rows written by an insert whose source starts at `i`: the primary-key values of a
    /// `VALUES` list, if every tuple gives one and no upsert clause can touch other rows.
    pub(super) fn inserted_ids(
        &self,
        i: usize,
        e: usize,
        columns: Option<&[String]>,
        table: &TableName,
    ) -> Rows {
        if !self.kw_any(i, e, &["VALUES", "VALUE"]) {
            return Rows::Unknown; // SELECT, DEFAULT VALUES, MySQL SET, ...
        }
        let Some(columns) = columns else {
            return Rows::Unknown;
        };
        let pk = (self.env.pk)(table);
        let Some(at) = columns.iter().position(|c| *c == pk) else {
            return Rows::Unknown;
        };
        let mut ids = Vec::new();
        let mut j = i + 1;
        loop {
            if !self.is_open(j, e) {
                return Rows::Unknown; // e.g. MySQL `ROW(...)`
            }
            let close = self.close_of(j);
            let items = self.split_commas(j + 1, close);
            if items.len() != columns.len() {
                return Rows::Unknown;
            }
            match items.get(at).and_then(|&(a, b)| self.value(a, b)) {
                Some(id) => ids.push(id),
                None => return Rows::Unknown,
            }
            j = close + 1;
            if !self.punct(j, e, ",") {
                break;
            }
            j += 1;
        }
        if self.upsert_keeps_ids(j, e, &pk) {
            Rows::Ids(ids)
        } else {
            Rows::Unknown
        }
    }

    /// Whether the upsert clauses in `s..e` (if any) only touch the inserted keys: `DO NOTHING`,
    /// or `ON CONFLICT (pk) DO UPDATE` that does not assign the key. A conflict on another
    /// unique column, or MySQL's `ON DUPLICATE KEY UPDATE` (any unique key), updates a row
    /// whose id is not in the statement.
    pub(super) fn upsert_keeps_ids(&self, s: usize, e: usize, pk: &str) -> bool {
        let mut i = s;
        while i < e {
            if self.kw(i, e, "ON") && self.kw(i + 1, e, "DUPLICATE") {
                return false;
            }
            if self.kw(i, e, "ON") && self.kw(i + 1, e, "CONFLICT") {
                let mut j = i + 2;
                let mut on_pk = false;
                if self.is_open(j, e) {
                    let close = self.close_of(j);
                    on_pk = self.column_list(j + 1, close).is_some_and(|c| c == [pk]);
                    j = close + 1;
                }
                let Some(action) = self.find_kw(j, e, &["DO"]) else {
                    return false;
                };
                if self.kw(action + 1, e, "UPDATE") {
                    let set = action + 2 + usize::from(self.kw(action + 2, e, "SET"));
                    let end = self
                        .find_kw(set, e, &["WHERE", "RETURNING", "ON"])
                        .unwrap_or(e);
                    if !on_pk || self.assigns_column(set, end, pk) {
                        return false;
                    }
                } else if !self.kw(action + 1, e, "NOTHING") {
                    return false;
                }
                i = action + 1;
                continue;
            }
            i = self.next(i, e);
        }
        true
    }

    /// Rows selected by the `WHERE` clause found from `from` on (up to RETURNING / ORDER BY /
    /// LIMIT): ids if it pins the primary key, else unknown.
    pub(super) fn where_rows(&self, from: usize, e: usize, target: &Target, pk: &str) -> Rows {
        let Some(at) = self.find_kw(from, e, &["WHERE"]) else {
            return Rows::Unknown;
        };
        let end = self
            .find_kw(at + 1, e, &["RETURNING", "ORDER", "LIMIT"])
            .unwrap_or(e);
        match self.narrow(at + 1, end, target, pk, 0) {
            Some(ids) => Rows::Ids(ids),
            None => Rows::Unknown,
        }
    }

    /// Ids the condition `s..e` restricts the key to: the condition itself is `key = X` or
    /// `key IN (...)`, or it is a conjunction one of whose terms is.
    pub(super) fn narrow(
        &self,
        s: usize,
        e: usize,
        target: &Target,
        pk: &str,
        depth: usize,
    ) -> Option<Vec<String>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let (s, e) = self.strip_parens(s, e);
        let terms = self.conjuncts(s, e)?;
        if terms.len() == 1 {
            return self.key_values(s, e, target, pk);
        }
        terms
            .into_iter()
            .find_map(|(a, b)| self.narrow(a, b, target, pk, depth + 1))
    }

    /// Removes parentheses around the whole of `s..e`.
    pub(super) fn strip_parens(&self, mut s: usize, mut e: usize) -> (usize, usize) {
        while s < e && self.is_open(s, e) && self.close_of(s) + 1 == e {
            s += 1;
            e -= 1;
        }
        (s, e)
    }

    /// The terms of a top-level `AND` chain, or None if something binds looser than AND
    /// (`OR`, `XOR`, MySQL's `||`, `:=`). `BETWEEN x AND y` and `CASE ... END` keep their
    /// `AND`s.
    pub(super) fn conjuncts(&self, s: usize, e: usize) -> Option<Vec<(usize, usize)>> {
        if s >= e {
            return None;
        }
        let mut terms = Vec::new();
        let (mut start, mut between, mut case) = (s, 0usize, 0usize);
        let mut i = s;
        while i < e {
            let looser = self.kw_any(i, e, &["OR", "XOR"])
                || self.tok(i, e).is_some_and(|t| {
                    t.kind == Kind::Op && (t.text.contains("||") || t.text.contains(":="))
                });
            if looser && case == 0 {
                return None;
            }
            if self.kw(i, e, "CASE") {
                case += 1;
            } else if self.kw(i, e, "END") {
                case = case.saturating_sub(1);
            } else if case == 0 && self.kw(i, e, "BETWEEN") {
                between += 1;
            } else if case == 0 && self.kw(i, e, "AND") {
                if between > 0 {
                    between -= 1;
                } else {
                    terms.push((start, i));
                    start = i + 1;
                }
            }
            i = self.next(i, e);
        }
        terms.push((start, e));
        Some(terms)
    }

    /// `key = X`, `X = key` or `key IN (X, ...)`, exactly.
    pub(super) fn key_values(
        &self,
        s: usize,
        e: usize,
        target: &Target,
        pk: &str,
    ) -> Option<Vec<String>> {
        if let Some(eq) = self.find_eq(s, e) {
            if self.is_key(s, eq, target, pk) {
                return self.value(eq + 1, e).map(|v| vec![v]);
            }
            if self.is_key(eq + 1, e, target, pk) {
                return self.value(s, eq).map(|v| vec![v]);
            }
            return None;
        }
        let at = self.find_kw(s, e, &["IN"])?;
        let open = at + 1;
        if !self.is_key(s, at, target, pk) || !self.is_open(open, e) || self.close_of(open) + 1 != e
        {
            return None;
        }
        self.split_commas(open + 1, e - 1)
            .into_iter()
            .map(|(a, b)| self.value(a, b))
            .collect()
    }

    /// Whether `s..e` is the target's key column: `id`, `t.id` (`alias.id` when aliased) or
    /// `schema.t.id`.
    pub(super) fn is_key(&self, s: usize, e: usize, target: &Target, pk: &str) -> bool {
        let mut parts = Vec::new();
        let mut i = s;
        while i < e && parts.len() < 3 {
            let Some(part) = self.name_part(i, e) else {
                return false;
            };
            parts.push(part);
            i += 1;
            if i < e {
                if !self.punct(i, e, ".") {
                    return false;
                }
                i += 1;
            }
        }
        if i != e || self.punct(e.saturating_sub(1), e, ".") || parts.pop().as_deref() != Some(pk) {
            return false;
        }
        let table = &target.table;
        match (parts.as_slice(), &target.alias) {
            ([], _) => true,
            ([q], Some(alias)) => q == alias,
            ([q], None) => *q == table.name,
            ([schema, q], None) => table.schema.as_ref() == Some(schema) && *q == table.name,
            _ => false,
        }
    }

    /// A usable row id in `s..e`: an integer literal (optionally negative), an exactly
    /// decoded string literal, or a placeholder whose value the caller renders.
    pub(super) fn value(&self, s: usize, e: usize) -> Option<String> {
        let t = self.tok(s, e)?;
        if e == s + 2 && self.op(s, e, "-") {
            let n = self.tok(s + 1, e).filter(|t| t.kind == Kind::Number)?;
            let n = integer_id(&n.text)?;
            return Some(if n == "0" { n } else { format!("-{n}") });
        }
        if e != s + 1 {
            return None;
        }
        match t.kind {
            Kind::Number => integer_id(&t.text),
            Kind::Str { exact: true } => string_id(&t.text),
            Kind::Param(Some(index)) => (self.env.param)(index),
            _ => None,
        }
    }

    /// Whether an assignment in the `SET` list `s..e` targets `column` (`column = ...`,
    /// `t.column = ...`, `(a, column) = ...`).
    pub(super) fn assigns_column(&self, s: usize, e: usize, column: &str) -> bool {
        self.split_commas(s, e).into_iter().any(|(a, b)| {
            let eq = self.find_eq(a, b).unwrap_or(a);
            (a..eq).any(|i| self.name_part(i, eq).is_some_and(|n| n == column))
        })
    }
}

/// An integer literal as a row id: decimal digits only, leading zeros dropped.
fn integer_id(text: &str) -> Option<String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = text.trim_start_matches('0');
    Some(if digits.is_empty() { "0" } else { digits }.to_string())
}

/// A string literal as a row id. Compared with an integer key, a database converts a
/// numeric-looking string (`'07'`, `' 7'`, `'7.0'`), so such a string is only the id it spells
/// in canonical form; trailing spaces may be ignored by MySQL's PAD SPACE collations.
fn string_id(text: &str) -> Option<String> {
    let first = text.chars().next()?;
    if text.ends_with(char::is_whitespace) {
        return None;
    }
    if first.is_ascii_digit() || matches!(first, '+' | '-' | '.') || first.is_whitespace() {
        let digits = text.strip_prefix('-').unwrap_or(text);
        let canonical = integer_id(digits).is_some_and(|c| c == digits) && text != "-0";
        return canonical.then(|| text.to_string());
    }
    Some(text.to_string())
}
