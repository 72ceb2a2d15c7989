//! What a SeaORM statement writes: its SQL and bound values handed to `orm::written`.

use querycache_sql::Bound;
use sea_orm::{QueryResult, Statement, Value};

use crate::orm::catalog::CatalogSlot;
use crate::orm::written;
use crate::tags::Tag;

/// The text and values of a statement, for classification, and the primary keys of its
/// database's tables as the connection knows them.
pub(super) struct StatementText<'a> {
    sql: &'a str,
    values: Option<&'a [Value]>,
    keys: &'a CatalogSlot,
}

impl<'a> StatementText<'a> {
    pub(super) fn of(stmt: &'a Statement, keys: &'a CatalogSlot) -> Self {
        StatementText {
            sql: &stmt.sql,
            values: stmt.values.as_ref().map(|v| v.0.as_slice()),
            keys,
        }
    }

    pub(super) fn unprepared(sql: &'a str, keys: &'a CatalogSlot) -> Self {
        StatementText {
            sql,
            values: None,
            keys,
        }
    }

    /// The tags this statement reads (see `orm::observed`); `Err` with the reason when it
    /// cannot be read. The flag: a table the keys' last answer did not list was named (ask
    /// the catalog again, then classify again).
    pub(super) fn read_tags(&self) -> (Result<Vec<Tag>, String>, bool) {
        let param = |i: usize| self.values.and_then(|v| v.get(i)).and_then(row_id);
        let view = self.keys.view();
        let tags = crate::orm::observed::read_tags(self.sql, &param, &view);
        (tags, view.missed())
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
        let returned_ids =
            |columns: &[String], _: bool| returned.and_then(|r| inserted_ids(r, columns));
        written::written_tags(self.sql, &param, &self.keys.view(), returned_ids)
    }

    /// [`written_tags`](Self::written_tags), narrowed by what MySQL answered a statement
    /// without `RETURNING` (`None`: it failed, or the database is another): a one-row insert
    /// that left the key to `AUTO_INCREMENT` wrote the row `last_insert_id` names, when the
    /// table's key is that column. Anything else stays a bulk write: a multi-row insert's
    /// ids need not be consecutive (`innodb_autoinc_lock_mode = 2`,
    /// `auto_increment_increment`).
    pub(super) fn written_tags_generated(&self, answer: Option<(u64, u64)>) -> Option<Vec<Tag>> {
        let param = |i: usize| self.values.and_then(|v| v.get(i)).and_then(row_id);
        let returned_ids = |columns: &[String], generated: bool| match answer {
            Some((id, 1)) if id != 0 && generated && columns.len() == 1 => {
                Some(vec![id.to_string()])
            }
            _ => None,
        };
        written::written_tags(self.sql, &param, &self.keys.view(), returned_ids)
    }
}

/// What MySQL answered a write, for [`StatementText::written_tags_generated`]: the id
/// `AUTO_INCREMENT` generated first (0: none) and the rows affected. Only MySQL's answer
/// carries an id the key can be read from: SQLite's `last_insert_rowid` is the rowid of
/// whatever the connection inserted last, and PostgreSQL reports none.
pub(super) fn generated(
    backend: sea_orm::DbBackend,
    result: &Result<sea_orm::ExecResult, sea_orm::DbErr>,
) -> Option<(u64, u64)> {
    let answer = result.as_ref().ok()?;
    (backend == sea_orm::DbBackend::MySql)
        .then(|| (answer.last_insert_id(), answer.rows_affected()))
}

/// The key values (`columns`) of the rows an `INSERT ... RETURNING` returned, if each can
/// be read, each row's rendered as [`querycache_sql::row_id`] renders them.
fn inserted_ids(rows: &[QueryResult], columns: &[String]) -> Option<Vec<String>> {
    if rows.is_empty() || columns.is_empty() {
        return None;
    }
    rows.iter()
        .map(|row| {
            let parts: Option<Vec<String>> = columns.iter().map(|c| returned_id(row, c)).collect();
            parts.map(|parts| querycache_sql::row_id(&parts))
        })
        .collect()
}

/// The key column `column` of a returned row, rendered as the classifier renders a bound
/// value of its type. Each integer width is tried: PostgreSQL decodes strictly by column
/// type (`SERIAL` is `int4`, which does not decode as `i64`), while SQLite hands every
/// integer back as `i64`. Text goes through the classifier's rule (text that reads as
/// another number is no id; a UUID's spelling is made canonical). A returned PostgreSQL
/// `uuid` cannot be read without sea-query's `with-uuid` feature: the insert is then a bulk
/// write (an insert that gives its UUID keys in the text is pinned by them).
fn returned_id(row: &QueryResult, column: &str) -> Option<String> {
    let bound = row
        .try_get::<i64>("", column)
        .map(|id| Bound::Integer(id.into()))
        .or_else(|_| {
            row.try_get::<i32>("", column)
                .map(|id| Bound::Integer(id.into()))
        })
        .or_else(|_| {
            row.try_get::<i16>("", column)
                .map(|id| Bound::Integer(id.into()))
        })
        .or_else(|_| row.try_get::<String>("", column).map(Bound::Text))
        .ok()?;
    bound_id(bound)
}

/// A bound value as the classifier renders it as an id (`None`: no id).
fn bound_id(bound: Bound) -> Option<String> {
    let sql = "DELETE FROM t WHERE k = ?";
    let param = |_: usize| Some(bound.clone());
    match querycache_sql::classify(sql, &param, &|_| vec!["k".to_owned()]) {
        querycache_sql::Effect::Writes(writes) => match writes.into_iter().next()?.rows {
            querycache_sql::Rows::Ids(mut ids) if ids.len() == 1 => ids.pop(),
            _ => None,
        },
        _ => None,
    }
}

/// A bound value as a row id: integers of every width, text (which the classifier
/// takes as an id only where no database reads it as another number: `"05"` is a bulk
/// write), and UUIDs — whose variant exists only with sea-query's `with-uuid` feature, so it
/// is read from its `Debug` form, `Uuid(Some(67e55044-…))`, as the text of the UUID (which
/// the classifier renders canonically, as it renders a UUID bound as text or written as a
/// literal). Other types make the write a bulk write: less precise, never wrong.
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
        other => return uuid_of(other),
    })
}

/// A `Value::Uuid`, by its `Debug` form (see [`row_id`]).
fn uuid_of(value: &Value) -> Option<Bound> {
    let debug = format!("{value:?}");
    let uuid = debug.strip_prefix("Uuid(Some(")?.strip_suffix("))")?;
    let is_uuid = uuid.len() == 36 && uuid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    is_uuid.then(|| Bound::Text(uuid.to_owned()))
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
        let uuid =
            sea_orm::prelude::Uuid::parse_str("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11").unwrap();
        assert_eq!(
            row_id(&Value::Uuid(Some(uuid))),
            Some(Bound::Text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into()))
        );
    }

    /// Text bound for an integer key is read as a number by SQLite and MySQL: `"05"`
    /// updates row 5, so it must not narrow the write to a row `05` no reader depends on.
    #[test]
    fn an_id_bound_as_non_canonical_text_is_a_bulk_write() {
        let sql = r#"UPDATE "songs" SET "title" = ? WHERE "songs"."id" = ?"#;
        for &id in querycache_sql::NUMERIC_LOOKING_TEXT {
            let values = sea_orm::Values(vec!["x".into(), id.into()]);
            let stmt = Statement::from_sql_and_values(sea_orm::DbBackend::Sqlite, sql, values);
            let tags = StatementText::of(&stmt, &CatalogSlot::default())
                .written_tags()
                .unwrap();
            assert!(tags.contains(&Tag::bulk("songs")), "{id:?}: {tags:?}");
        }
        for (id, tag) in [("5", "model:songs:5"), ("ab-1", "model:songs:ab-1")] {
            let values = sea_orm::Values(vec!["x".into(), id.into()]);
            let stmt = Statement::from_sql_and_values(sea_orm::DbBackend::Sqlite, sql, values);
            let tags = StatementText::of(&stmt, &CatalogSlot::default())
                .written_tags()
                .unwrap();
            assert!(tags.iter().any(|t| t.as_str() == tag), "{id:?}: {tags:?}");
            assert!(!tags.contains(&Tag::bulk("songs")), "{id:?}: {tags:?}");
        }
    }
}
