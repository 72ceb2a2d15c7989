//! Which rows a write touches (and a query reads): primary-key values from `WHERE` clauses
//! and `VALUES` lists.
//!
//! Ids are only reported when the statement cannot touch any other row; every doubt
//! (`OR`, ranges, expressions, collations, upserts that may hit another unique key...) gives
//! [`Rows::Unknown`].

use super::dml::Target;
use super::lexer::Kind;
use super::parser::Parser;
use super::{Bound, MAX_DEPTH, Rows, TableName, row_id};

impl<'p> Parser<'p> {
    /// Rows written by an insert whose source starts at `i`: the primary-key values of a
    /// `VALUES` list, if every tuple gives one and no upsert clause can touch other rows.
    /// Otherwise, for a `top`-level insert of `n` tuples that can only insert (or skip) rows,
    /// [`Rows::Inserted`]`(n)`.
    pub(super) fn inserted_ids(
        &self,
        i: usize,
        e: usize,
        columns: Option<&[String]>,
        table: &TableName,
        top: bool,
    ) -> Rows {
        if !self.kw_any(i, e, &["VALUES", "VALUE"]) {
            return Rows::Unknown; // SELECT, DEFAULT VALUES, MySQL SET, ...
        }
        let pk = (self.env.pk)(table);
        // The position of each key column in the column list (all of them, or none).
        let at: Option<Vec<usize>> = columns.and_then(|c| {
            if pk.is_empty() {
                return None;
            }
            pk.iter().map(|k| c.iter().position(|c| c == k)).collect()
        });
        let mut ids = Some(Vec::new());
        let mut tuples = 0;
        let mut j = i + 1;
        loop {
            if !self.is_open(j, e) {
                return Rows::Unknown; // e.g. MySQL `ROW(...)`
            }
            let close = self.close_of(j);
            let items = self.split_commas(j + 1, close);
            if columns.is_some_and(|c| items.len() != c.len()) {
                return Rows::Unknown;
            }
            let id = at.as_ref().and_then(|at| {
                let parts: Option<Vec<String>> = at
                    .iter()
                    .map(|&at| items.get(at).and_then(|&(a, b)| self.value(a, b)))
                    .collect();
                parts.map(|parts| row_id(&parts))
            });
            match (&mut ids, id) {
                (Some(ids), Some(id)) => ids.push(id),
                (ids, _) => *ids = None,
            }
            tuples += 1;
            j = close + 1;
            if !self.punct(j, e, ",") {
                break;
            }
            j += 1;
        }
        match ids {
            Some(ids) if self.upsert_keeps_ids(j, e, &pk) => Rows::Ids(ids),
            _ if top && self.only_inserts(j, e) => Rows::Inserted(tuples),
            _ => Rows::Unknown,
        }
    }

    /// Whether what follows an insert's `VALUES` list (`s..e`) lets it only insert rows or
    /// skip them: nothing, `ON CONFLICT ... DO NOTHING`, then at most `RETURNING ...`.
    fn only_inserts(&self, s: usize, e: usize) -> bool {
        let mut i = s;
        if self.kw(i, e, "ON") && self.kw(i + 1, e, "CONFLICT") {
            let Some(action) = self.find_kw(i + 2, e, &["DO"]) else {
                return false;
            };
            if !self.kw(action + 1, e, "NOTHING") {
                return false;
            }
            i = action + 2;
        }
        i >= e || self.kw(i, e, "RETURNING")
    }

    /// Whether the upsert clauses in `s..e` (if any) only touch the inserted keys: `DO NOTHING`,
    /// or `ON CONFLICT (pk) DO UPDATE` that does not assign the key. A conflict on another
    /// unique column, or MySQL's `ON DUPLICATE KEY UPDATE` (any unique key), updates a row
    /// whose id is not in the statement.
    pub(super) fn upsert_keeps_ids(&self, s: usize, e: usize, pk: &[String]) -> bool {
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
                    on_pk = self.column_list(j + 1, close).is_some_and(|mut c| {
                        let mut key = pk.to_vec();
                        c.sort_unstable();
                        key.sort_unstable();
                        !key.is_empty() && c == key
                    });
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
                    if !on_pk || pk.iter().any(|k| self.assigns_column(set, end, k)) {
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
    pub(super) fn where_rows(&self, from: usize, e: usize, target: &Target, pk: &[String]) -> Rows {
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

    /// Ids the condition `s..e` restricts the key to. A one-column key: the condition itself
    /// is `key = X` or `key IN (...)`, or it is a conjunction one of whose terms is. A key of
    /// several columns: every column is pinned to one value by a term of the conjunction
    /// (`a = X AND b = Y`), and the id is the [`row_id`] of the values, in key order. An
    /// empty key (not known) pins nothing.
    pub(super) fn narrow(
        &self,
        s: usize,
        e: usize,
        target: &Target,
        pk: &[String],
        depth: usize,
    ) -> Option<Vec<String>> {
        match pk {
            [] => None,
            [column] => self.narrow_column(s, e, target, column, depth),
            columns => {
                let mut terms = Vec::new();
                self.flat_conjuncts(s, e, 0, &mut terms)?;
                let parts: Option<Vec<String>> = columns
                    .iter()
                    .map(|column| {
                        terms.iter().find_map(|&(a, b)| {
                            self.key_values(a, b, target, column)
                                .and_then(|values| <[String; 1]>::try_from(values).ok())
                                .map(|[value]| value)
                        })
                    })
                    .collect();
                parts.map(|parts| vec![row_id(&parts)])
            }
        }
    }

    /// The terms of the conjunction `s..e`, parenthesised conjunctions flattened.
    fn flat_conjuncts(
        &self,
        s: usize,
        e: usize,
        depth: usize,
        out: &mut Vec<(usize, usize)>,
    ) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let (s, e) = self.strip_parens(s, e);
        let terms = self.conjuncts(s, e)?;
        if terms.len() == 1 {
            out.push((s, e));
            return Some(());
        }
        for (a, b) in terms {
            // A term that is not itself a conjunction (an `OR`) pins nothing, and does not
            // widen the conjunction: skip it.
            let _ = self.flat_conjuncts(a, b, depth + 1, out);
        }
        Some(())
    }

    /// [`narrow`](Self::narrow) for a one-column key.
    fn narrow_column(
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
            .find_map(|(a, b)| self.narrow_column(a, b, target, pk, depth + 1))
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

    /// `key = X`, `X = key` or `key IN (X, ...)`, exactly; the key and each value may be
    /// parenthesised, as a one-column row value is (`(key) IN ((X), (Y))`, SeaORM's loader
    /// on PostgreSQL): a parenthesised single expression is that expression.
    pub(super) fn key_values(
        &self,
        s: usize,
        e: usize,
        target: &Target,
        pk: &str,
    ) -> Option<Vec<String>> {
        let is_key = |a: usize, b: usize| {
            let (a, b) = self.strip_parens(a, b);
            self.is_key(a, b, target, pk)
        };
        let value = |a: usize, b: usize| {
            let (a, b) = self.strip_parens(a, b);
            self.value(a, b)
        };
        if let Some(eq) = self.find_eq(s, e) {
            if is_key(s, eq) {
                return value(eq + 1, e)
                    .map(|v| vec![v])
                    .or_else(|| self.any_of_array(eq + 1, e));
            }
            if is_key(eq + 1, e) {
                return value(s, eq).map(|v| vec![v]);
            }
            return None;
        }
        let at = self.find_kw(s, e, &["IN"])?;
        let open = at + 1;
        if !is_key(s, at) || !self.is_open(open, e) || self.close_of(open) + 1 != e {
            return None;
        }
        self.split_commas(open + 1, e - 1)
            .into_iter()
            .map(|(a, b)| value(a, b))
            .collect()
    }

    /// `ANY($n)` (or `SOME($n)`), the placeholder bound to a non-empty array of ids
    /// ([`Bound::List`]): those ids (PostgreSQL's `key = ANY($1)`, Diesel's `eq_any`).
    fn any_of_array(&self, s: usize, e: usize) -> Option<Vec<String>> {
        if !self.kw_any(s, e, &["ANY", "SOME"]) {
            return None;
        }
        let open = s + 1;
        if !self.is_open(open, e) || self.close_of(open) + 1 != e {
            return None;
        }
        let (a, b) = self.strip_parens(open, e);
        if b != a + 1 {
            return None;
        }
        let index = match self.tok(a, b)?.kind {
            Kind::Param(Some(index)) => index,
            _ => return None,
        };
        let Bound::List(items) = (self.env.param)(index)? else {
            return None;
        };
        if items.is_empty() {
            return None;
        }
        items.iter().map(bound_id).collect()
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
            ([], _) => target.bare,
            ([q], Some(alias)) => q == alias,
            ([q], None) => *q == table.name,
            ([schema, q], None) => table.schema.as_ref() == Some(schema) && *q == table.name,
            _ => false,
        }
    }

    /// A usable row id in `s..e`: an integer literal (optionally negative), an exactly
    /// decoded string literal, or a placeholder bound to an integer or to text (string
    /// literals and bound text under the same rule, [`string_id`]).
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
            Kind::Param(Some(index)) => bound_id(&(self.env.param)(index)?),
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

/// A bound value as a row id: an integer, or text under [`string_id`]'s rule; never an
/// array.
fn bound_id(bound: &Bound) -> Option<String> {
    match bound {
        Bound::Integer(n) => Some(n.to_string()),
        Bound::Text(text) => string_id(text),
        Bound::List(_) => None,
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

/// Text (a string literal or a bound string) as a row id, or None when the write must be a
/// bulk write because the text may select a row whose key is written differently.
///
/// The key's type is not known here, and compared with an integer key:
///
/// * SQLite applies numeric affinity: text that reads as a number (`'05'`, `' 5'`, `'+5'`,
///   `'5.0'`, `'5e0'`, surrounding spaces allowed) becomes that number;
/// * MySQL converts the text's *leading* number (`'5abc'` is 5, `'0x5'` is 0) and compares
///   as double-precision floats, so beyond 2^53 neighbouring integers compare equal; text
///   with no leading number is 0 (querycache's `orm::written` adds row 0 for such ids);
/// * PostgreSQL refuses text for an integer parameter or casts it strictly.
///
/// So text that starts like a number (a digit, a sign, a point or whitespace) is only an id
/// when it is the canonical decimal of an integer of at most 15 digits (`5`, `-5`), exactly
/// as `Display` renders the same integer; any trailing whitespace is refused too (MySQL's PAD
/// SPACE collations ignore it for text keys). Other text (`abc`, a slug, a UUID starting
/// with a letter) is the id it spells. A UUID starting with a digit is a bulk write: less
/// precise, never wrong.
pub(super) fn string_id(text: &str) -> Option<String> {
    /// The longest integer a double represents exactly (2^53 has 16 digits).
    const EXACT_DIGITS: usize = 15;
    if let Some(uuid) = uuid_id(text) {
        return uuid;
    }
    let first = text.chars().next()?;
    if text.ends_with(char::is_whitespace) {
        return None;
    }
    if first.is_ascii_digit() || matches!(first, '+' | '-' | '.') || first.is_whitespace() {
        let digits = text.strip_prefix('-').unwrap_or(text);
        let canonical = integer_id(digits).is_some_and(|c| c == digits)
            && text != "-0"
            && digits.len() <= EXACT_DIGITS;
        return canonical.then(|| text.to_string());
    }
    Some(text.to_string())
}

/// Text that spells a UUID (32 hex digits, hyphens anywhere, optionally in braces, as
/// PostgreSQL's `uuid` input reads it) as a row id: `Some(Some(id))` with the id in
/// canonical form (lower case, hyphenated 8-4-4-4-12), so that a UUID bound as a typed value,
/// as text or written as a literal renders alike whatever its spelling; `Some(None)` when
/// it must be a bulk write; `None` when the text is no UUID.
///
/// A UUID that starts with a decimal digit is only an id in the hyphenated form, and when
/// its leading digits are not followed by an `e` (MySQL reads the leading number of text
/// compared with an integer key: `'12345678-…'` is 12345678, which querycache's
/// `orm::written` adds as a row; `'1234e567…'` is a float).
fn uuid_id(text: &str) -> Option<Option<String>> {
    let inner = match text.strip_prefix('{') {
        Some(rest) => rest.strip_suffix('}')?,
        None => text,
    };
    let hex: String = inner.chars().filter(|&c| c != '-').collect();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    let canonical = format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        let hyphenated = text.eq_ignore_ascii_case(&canonical);
        let after_digits = text.trim_start_matches(|c: char| c.is_ascii_digit());
        if !hyphenated || after_digits.starts_with(['e', 'E']) {
            return Some(None);
        }
    }
    Some(Some(canonical))
}

/// Text that some backend reads as a number other than itself (or as several): never an id.
/// Test vectors for callers' tests (querycache's among them), not an API.
pub const NUMERIC_LOOKING_TEXT: &[&str] = &[
    "05",
    " 5",
    "+5",
    "5.0",
    "5 ",
    "5e0",
    "5abc",
    "0x5",
    ".5",
    "-05",
    "-0",
    "",
    "\u{a0}5",
    "1234567890123456",
    "9007199254740993",
];
