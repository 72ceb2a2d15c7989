//! What a statement writes: its SQL classified (see `orm::sql`) and turned into tags.

use sea_orm::{QueryResult, Statement, Value};

use crate::orm::sql::{self, Effect, Rows, TableName};
use crate::tags::{Tag, table_key, write_tags};

/// The text and values of a statement, for classification.
pub(super) struct StatementText<'a> {
    sql: &'a str,
    values: Option<&'a [Value]>,
}

impl<'a> StatementText<'a> {
    pub(super) fn of(stmt: &'a Statement) -> Self {
        StatementText {
            sql: &stmt.sql,
            values: stmt.values.as_ref().map(|v| v.0.as_slice()),
        }
    }

    pub(super) fn unprepared(sql: &'a str) -> Self {
        StatementText { sql, values: None }
    }

    /// The tags this statement's writes touch; `None` for a read.
    pub(super) fn written_tags(&self) -> Option<Vec<Tag>> {
        self.written_tags_returning(None)
    }

    /// Like [`written_tags`](Self::written_tags), given the rows a query returned: a plain
    /// `INSERT ... RETURNING` names the ids of the rows it created, so it touches those
    /// rows (by-id entries of other rows stay) rather than the whole table in bulk.
    pub(super) fn written_tags_returning(
        &self,
        returned: Option<&[QueryResult]>,
    ) -> Option<Vec<Tag>> {
        if is_plain_read(self.sql) {
            return None;
        }
        let returned_ids = returned.and_then(|rows| self.inserted_ids(rows));
        let param = |i: usize| self.values.and_then(|v| v.get(i)).and_then(row_id);
        let primary_key = |_: &TableName| "id".to_owned();
        match sql::classify(self.sql, &param, &primary_key) {
            Effect::Read => None,
            Effect::Writes(writes) => Some(
                writes
                    .iter()
                    .flat_map(|w| {
                        let table = table_key(w.table.schema.as_deref(), &w.table.name);
                        match (&w.rows, &returned_ids) {
                            (Rows::Ids(ids), _) => write_tags(&table, Some(ids)),
                            (Rows::Unknown, Some(ids)) if writes.len() == 1 => {
                                write_tags(&table, Some(ids))
                            }
                            (Rows::Unknown, _) => write_tags(&table, None),
                        }
                    })
                    .collect(),
            ),
            Effect::Unknown => {
                let head: String = self.sql.chars().take(120).collect();
                tracing::warn!(
                    sql = %head,
                    "statement not understood; invalidating every model tag to stay safe"
                );
                Some(vec![Tag::all_models()])
            }
        }
    }
}

impl StatementText<'_> {
    /// The `id`s of the rows a plain single-statement `INSERT ... RETURNING` created, or
    /// `None` when the statement is anything else (an upsert may update a row it does not
    /// name; an UPDATE may move a row to another id) or an id cannot be read.
    fn inserted_ids(&self, rows: &[QueryResult]) -> Option<Vec<String>> {
        let sql = self.sql.trim_start();
        let upper = sql.get(..6)?;
        if !upper.eq_ignore_ascii_case("insert")
            || sql.trim_end().trim_end_matches(';').contains(';')
            || contains_ignore_case(sql, "on conflict")
            || contains_ignore_case(sql, "on duplicate")
            || contains_ignore_case(sql, " or replace")
            || rows.is_empty()
        {
            return None;
        }
        rows.iter().map(returned_id).collect()
    }
}

/// The `id` column of a returned row, rendered as `Display` renders it in `row = id`.
/// Each integer width is tried: PostgreSQL decodes strictly by column type (`SERIAL` is
/// `int4`, which does not decode as `i64`), while SQLite hands every integer back as `i64`.
fn returned_id(row: &QueryResult) -> Option<String> {
    row.try_get::<i64>("", "id")
        .map(|id| id.to_string())
        .or_else(|_| row.try_get::<i32>("", "id").map(|id| id.to_string()))
        .or_else(|_| row.try_get::<i16>("", "id").map(|id| id.to_string()))
        .or_else(|_| row.try_get::<String>("", "id"))
        .ok()
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// A fast pass for the common case: a SELECT in which no word that could write appears
/// as a whole word (`updated_at` does not count as `update`). Anything else goes through the
/// full classifier; a false "maybe" costs time, never correctness.
fn is_plain_read(sql: &str) -> bool {
    let bytes = sql.trim_start().as_bytes();
    if !bytes
        .get(..6)
        .is_some_and(|h| h.eq_ignore_ascii_case(b"select"))
    {
        return false;
    }
    const WRITE_WORDS: [&[u8]; 9] = [
        b"insert",
        b"update",
        b"delete",
        b"replace",
        b"truncate",
        b"merge",
        b"copy",
        b"drop",
        b"alter",
    ];
    // Several statements: the ones after the first may be anything (CALL, DO ...).
    if bytes
        .iter()
        .position(|&b| b == b';')
        .is_some_and(|at| bytes[at + 1..].iter().any(|b| !b.is_ascii_whitespace()))
    {
        return false;
    }
    let is_word_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if !is_word_byte(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_word_byte(bytes[i]) {
            i += 1;
        }
        let word = &bytes[start..i];
        if WRITE_WORDS.iter().any(|w| w.eq_ignore_ascii_case(word)) {
            return false;
        }
    }
    true
}

/// A bound value rendered the way `Display` renders the same id in `row = id`.
fn row_id(value: &Value) -> Option<String> {
    Some(match value {
        Value::TinyInt(Some(v)) => v.to_string(),
        Value::SmallInt(Some(v)) => v.to_string(),
        Value::Int(Some(v)) => v.to_string(),
        Value::BigInt(Some(v)) => v.to_string(),
        Value::TinyUnsigned(Some(v)) => v.to_string(),
        Value::SmallUnsigned(Some(v)) => v.to_string(),
        Value::Unsigned(Some(v)) => v.to_string(),
        Value::BigUnsigned(Some(v)) => v.to_string(),
        Value::String(Some(v)) => v.clone(),
        Value::Char(Some(v)) => v.to_string(),
        // Other types (UUIDs among them, whose variant exists only with a sea-query
        // feature) make the write a bulk write: less precise, never wrong.
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_read_prefilter() {
        assert!(is_plain_read(
            r#"SELECT "songs"."id" FROM "songs" WHERE "songs"."id" = ?"#
        ));
        assert!(!is_plain_read("SELECT 1; DELETE FROM songs"));
        assert!(!is_plain_read(
            "WITH x AS (DELETE FROM a RETURNING *) SELECT * FROM x"
        ));
        assert!(!is_plain_read("UPDATE songs SET title = 'x'"));
        assert!(is_plain_read(r#"SELECT "songs"."updated_at" FROM "songs""#));
        assert!(!is_plain_read("SELECT 1 FROM t; UPDATE t SET a = 1"));
        assert!(!is_plain_read("select * from t for update"));
        assert!(!is_plain_read("SELECT 1; CALL archive_all()"));
        assert!(is_plain_read("SELECT 1;  "));
    }

    #[test]
    fn row_ids_render_like_display() {
        assert_eq!(row_id(&Value::Int(Some(7))).as_deref(), Some("7"));
        assert_eq!(
            row_id(&Value::String(Some("ab".into()))).as_deref(),
            Some("ab")
        );
        assert_eq!(row_id(&Value::Int(None)), None);
        assert_eq!(row_id(&Value::Double(Some(1.5))), None);
    }
}
