//! What a SeaORM statement writes: its SQL and bound values handed to `orm::written`.

use sea_orm::{QueryResult, Statement, Value};

use crate::orm::written;
use crate::tags::Tag;

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
        let param = |i: usize| self.values.and_then(|v| v.get(i)).and_then(row_id);
        let returned_ids = || returned.and_then(inserted_ids);
        written::written_tags(self.sql, &param, returned_ids)
    }
}

/// The `id`s of the rows an `INSERT ... RETURNING` returned, if each can be read.
fn inserted_ids(rows: &[QueryResult]) -> Option<Vec<String>> {
    if rows.is_empty() {
        return None;
    }
    rows.iter().map(returned_id).collect()
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
