//! What a SeaORM statement writes: its SQL and bound values handed to `orm::written`.

use querycache_sql::Bound;
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

    /// The tags this statement reads (see `orm::observed`); `Err` with the reason when it
    /// cannot be read.
    pub(super) fn read_tags(&self) -> Result<Vec<Tag>, String> {
        let param = |i: usize| self.values.and_then(|v| v.get(i)).and_then(row_id);
        crate::orm::observed::read_tags(self.sql, &param)
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

/// A bound value as a row id: integers of every width, and text (which the classifier
/// takes as an id only where no database reads it as another number: `"05"` is a bulk
/// write). Other types — UUIDs among them, whose variant exists only with a sea-query
/// feature — make the write a bulk write: less precise, never wrong.
fn row_id(value: &Value) -> Option<Bound> {
    Some(match value {
        Value::TinyInt(Some(v)) => Bound::Integer((*v).into()),
        Value::SmallInt(Some(v)) => Bound::Integer((*v).into()),
        Value::Int(Some(v)) => Bound::Integer((*v).into()),
        Value::BigInt(Some(v)) => Bound::Integer((*v).into()),
        Value::TinyUnsigned(Some(v)) => Bound::Integer((*v).into()),
        Value::SmallUnsigned(Some(v)) => Bound::Integer((*v).into()),
        Value::Unsigned(Some(v)) => Bound::Integer((*v).into()),
        Value::BigUnsigned(Some(v)) => Bound::Integer((*v).into()),
        Value::String(Some(v)) => Bound::Text(v.clone()),
        Value::Char(Some(v)) => Bound::Text(v.to_string()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_values_keep_their_type() {
        assert_eq!(row_id(&Value::Int(Some(7))), Some(Bound::Integer(7)));
        assert_eq!(
            row_id(&Value::BigUnsigned(Some(u64::MAX))),
            Some(Bound::Integer(u64::MAX.into()))
        );
        assert_eq!(
            row_id(&Value::String(Some("ab".into()))),
            Some(Bound::Text("ab".into()))
        );
        assert_eq!(row_id(&Value::Int(None)), None);
        assert_eq!(row_id(&Value::Double(Some(1.5))), None);
    }

    /// Text bound for an integer key is read as a number by SQLite and MySQL: `"05"`
    /// updates row 5, so it must not narrow the write to a row `05` no reader depends on.
    #[test]
    fn an_id_bound_as_non_canonical_text_is_a_bulk_write() {
        let sql = r#"UPDATE "songs" SET "title" = ? WHERE "songs"."id" = ?"#;
        for &id in querycache_sql::NUMERIC_LOOKING_TEXT {
            let values = sea_orm::Values(vec!["x".into(), id.into()]);
            let stmt = Statement::from_sql_and_values(sea_orm::DbBackend::Sqlite, sql, values);
            let tags = StatementText::of(&stmt).written_tags().unwrap();
            assert!(tags.contains(&Tag::bulk("songs")), "{id:?}: {tags:?}");
        }
        for (id, tag) in [("5", "model:songs:5"), ("ab-1", "model:songs:ab-1")] {
            let values = sea_orm::Values(vec!["x".into(), id.into()]);
            let stmt = Statement::from_sql_and_values(sea_orm::DbBackend::Sqlite, sql, values);
            let tags = StatementText::of(&stmt).written_tags().unwrap();
            assert!(tags.iter().any(|t| t.as_str() == tag), "{id:?}: {tags:?}");
            assert!(!tags.contains(&Tag::bulk("songs")), "{id:?}: {tags:?}");
        }
    }
}
