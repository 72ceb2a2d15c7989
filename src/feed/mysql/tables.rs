//! Which rows a row event changed: each table's primary key read from
//! `information_schema` (a binlog's table map names the table and its column types, but
//! only MySQL's `binlog_row_metadata = FULL` names the key), and the key's values read from
//! the row images.
//!
//! InnoDB's foreign-key actions (`ON DELETE CASCADE`, `SET NULL`, ...) change rows the
//! binlog does not show: a replica's own InnoDB repeats them. So a table's entry also lists
//! the tables its updates and deletes can reach through such actions, transitively; a
//! change there counts as a write to each of those whole tables.
//!
//! Only integer keys are read. MySQL compares strings under their column's collation
//! (`'Abc' = 'abc '` under the default ones): a string key's bytes in the binlog need not be
//! the text a cached read was keyed by, so a write to such a table counts as a write to the
//! whole table. Keys of other types (dates, decimals, binary) likewise.

use std::collections::HashMap;
use std::sync::Arc;

use mysql_async::binlog::row::BinlogRow;
use mysql_async::binlog::value::BinlogValue;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};

/// The kinds of key columns whose values are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// A signed integer.
    Signed,
    /// An unsigned integer of this many bits (read back from a signed value when the
    /// binlog does not say the column is unsigned).
    Unsigned(u32),
    /// Anything else: not read.
    Other,
}

impl KeyKind {
    /// From `information_schema.columns`' `data_type` and `column_type`.
    pub(crate) fn of(data_type: &str, column_type: &str) -> KeyKind {
        let bits = match data_type.to_ascii_lowercase().as_str() {
            "tinyint" => 8,
            "smallint" => 16,
            "mediumint" => 24,
            "int" | "integer" => 32,
            "bigint" => 64,
            _ => return KeyKind::Other,
        };
        if column_type.to_ascii_lowercase().contains("unsigned") {
            KeyKind::Unsigned(bits)
        } else {
            KeyKind::Signed
        }
    }
}

/// A key column: where it is in the table, its name, and its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyColumn {
    /// 0-based position among the table's columns.
    pub(crate) ordinal: usize,
    pub(crate) name: String,
    pub(crate) kind: KeyKind,
}

/// A table's primary key (in key order), how many columns the table has, and the tables
/// its updates and deletes reach through foreign-key actions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct TableKey {
    pub(crate) key: Vec<KeyColumn>,
    pub(crate) columns: usize,
    /// `(schema, table)` of every table a foreign-key action may change when a row of this
    /// one is deleted, transitively.
    pub(crate) on_delete: Vec<(String, String)>,
    /// The same when a row of this one is updated.
    pub(crate) on_update: Vec<(String, String)>,
}

impl TableKey {
    /// The key columns' names, in key order.
    pub(crate) fn names(&self) -> Vec<&str> {
        self.key.iter().map(|c| c.name.as_str()).collect()
    }

    /// The key of `row` (an image of a row event on a table of `columns` columns), as
    /// text in key order; `None` when it cannot be read: no key, a key column of another
    /// kind than an integer, missing from the image or NULL, or a table whose shape is not
    /// the one the catalog gave.
    pub(crate) fn key_of(&self, columns: usize, row: &BinlogRow) -> Option<Vec<String>> {
        if self.key.is_empty() || columns != self.columns {
            return None;
        }
        let mut values = Vec::with_capacity(self.key.len());
        for column in &self.key {
            if column.kind == KeyKind::Other {
                return None;
            }
            let index = row.columns_ref().iter().position(|c| {
                let name = c.name_str();
                match name.strip_prefix('@') {
                    // No column names in the binlog: `@<position>`.
                    Some(position) => position.parse::<usize>().ok() == Some(column.ordinal),
                    None => name.eq_ignore_ascii_case(&column.name),
                }
            })?;
            let value = match row.as_ref(index)? {
                BinlogValue::Value(value) => render(value, column.kind)?,
                _ => return None,
            };
            values.push(value);
        }
        Some(values)
    }
}

/// An integer key value as the ORM integrations render a bound id.
fn render(value: &Value, kind: KeyKind) -> Option<String> {
    match (value, kind) {
        (Value::UInt(u), _) => Some(u.to_string()),
        (Value::Int(i), KeyKind::Unsigned(bits)) if *i < 0 => {
            // The binlog without signedness metadata: the column's bits, read as unsigned.
            let mask = if bits >= 64 {
                u64::MAX
            } else {
                (1_u64 << bits) - 1
            };
            Some(((*i as u64) & mask).to_string())
        }
        (Value::Int(i), _) => Some(i.to_string()),
        _ => None,
    }
}

/// The keys of the tables met so far, read once each (and again after DDL).
#[derive(Default)]
pub(crate) struct Keys {
    tables: HashMap<(String, String), Arc<TableKey>>,
}

/// The columns of one table with their place in its primary key.
const COLUMNS: &str = "SELECT c.column_name, c.data_type, c.column_type, s.seq_in_index \
     FROM information_schema.columns c \
     LEFT JOIN information_schema.statistics s \
       ON s.table_schema = c.table_schema AND s.table_name = c.table_name \
      AND s.column_name = c.column_name AND s.index_name = 'PRIMARY' \
     WHERE c.table_schema = ? AND c.table_name = ? \
     ORDER BY c.ordinal_position";

impl Keys {
    /// Forgets every table's key (after DDL, which may have changed any).
    pub(crate) fn clear(&mut self) {
        self.tables.clear();
    }

    /// The key of `schema`.`table`, read from `conn` unless known and of `columns`
    /// columns (a table altered since it was read is read again).
    pub(crate) async fn get(
        &mut self,
        conn: &mut Conn,
        schema: &str,
        table: &str,
        columns: usize,
    ) -> Result<Arc<TableKey>, mysql_async::Error> {
        let name = (schema.to_owned(), table.to_owned());
        if let Some(key) = self.tables.get(&name)
            && key.columns == columns
        {
            return Ok(key.clone());
        }
        type Column = (String, String, String, Option<u64>);
        let rows: Vec<Column> = conn.exec(COLUMNS, (schema, table)).await?;
        let mut key = table_key(rows);
        key.on_delete = cascades(conn, schema, table, Op::Delete).await?;
        key.on_update = cascades(conn, schema, table, Op::Update).await?;
        let key = Arc::new(key);
        self.tables.insert(name, key.clone());
        Ok(key)
    }
}

/// The foreign keys that reference a table, with their actions.
const REFERENCING: &str = "SELECT constraint_schema, table_name, delete_rule, update_rule \
     FROM information_schema.referential_constraints \
     WHERE unique_constraint_schema = ? AND referenced_table_name = ?";

/// A change to a referenced row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Delete,
    Update,
}

/// What a foreign key's rule does to the referencing rows: nothing (`RESTRICT`,
/// `NO ACTION`), delete them (`CASCADE` on delete) or update them (the other actions).
fn action(op: Op, delete_rule: &str, update_rule: &str) -> Option<Op> {
    let rule = match op {
        Op::Delete => delete_rule,
        Op::Update => update_rule,
    };
    match rule.to_ascii_uppercase().as_str() {
        "CASCADE" => Some(op),
        "SET NULL" | "SET DEFAULT" => Some(Op::Update),
        _ => None,
    }
}

/// The tables that foreign-key actions change when a row of `schema`.`table` is deleted or
/// updated (`op`), transitively (a cascaded delete cascades on).
async fn cascades(
    conn: &mut Conn,
    schema: &str,
    table: &str,
    op: Op,
) -> Result<Vec<(String, String)>, mysql_async::Error> {
    let mut seen: Vec<((String, String), Op)> = Vec::new();
    let mut next = vec![((schema.to_owned(), table.to_owned()), op)];
    while let Some(((schema, table), op)) = next.pop() {
        type Fk = (String, String, String, String);
        let children: Vec<Fk> = conn
            .exec(REFERENCING, (schema.as_str(), table.as_str()))
            .await?;
        for (child_schema, child, delete_rule, update_rule) in children {
            if let Some(child_op) = action(op, &delete_rule, &update_rule) {
                let reached = ((child_schema, child), child_op);
                if !seen.contains(&reached) {
                    seen.push(reached.clone());
                    next.push(reached);
                }
            }
        }
    }
    let mut tables: Vec<(String, String)> = seen.into_iter().map(|(t, _)| t).collect();
    tables.sort();
    tables.dedup();
    Ok(tables)
}

/// The key the catalog's rows (name, data type, column type, place in the primary key)
/// describe.
fn table_key(rows: Vec<(String, String, String, Option<u64>)>) -> TableKey {
    let columns = rows.len();
    let mut key: Vec<(u64, KeyColumn)> = rows
        .into_iter()
        .enumerate()
        .filter_map(|(ordinal, (name, data_type, column_type, seq))| {
            let kind = KeyKind::of(&data_type, &column_type);
            seq.map(|seq| {
                (
                    seq,
                    KeyColumn {
                        ordinal,
                        name,
                        kind,
                    },
                )
            })
        })
        .collect();
    key.sort_by_key(|(seq, _)| *seq);
    TableKey {
        key: key.into_iter().map(|(_, c)| c).collect(),
        columns,
        on_delete: Vec::new(),
        on_update: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(
        name: &str,
        data: &str,
        ty: &str,
        seq: Option<u64>,
    ) -> (String, String, String, Option<u64>) {
        (name.into(), data.into(), ty.into(), seq)
    }

    #[test]
    fn keys_come_in_key_order_with_their_kinds() {
        let key = table_key(vec![
            col("title", "varchar", "varchar(200)", None),
            col("user_id", "int", "int(10) unsigned", Some(2)),
            col("org", "bigint", "bigint(20)", Some(1)),
        ]);
        assert_eq!(key.columns, 3);
        assert_eq!(key.names(), ["org", "user_id"]);
        assert_eq!(key.key[0].ordinal, 2);
        assert_eq!(key.key[0].kind, KeyKind::Signed);
        assert_eq!(key.key[1].kind, KeyKind::Unsigned(32));
        assert_eq!(KeyKind::of("char", "char(36)"), KeyKind::Other);
        assert_eq!(
            KeyKind::of("MEDIUMINT", "mediumint(8) unsigned"),
            KeyKind::Unsigned(24)
        );
    }

    #[test]
    fn foreign_key_rules_become_actions() {
        assert_eq!(action(Op::Delete, "CASCADE", "RESTRICT"), Some(Op::Delete));
        assert_eq!(action(Op::Update, "CASCADE", "RESTRICT"), None);
        assert_eq!(action(Op::Delete, "SET NULL", "CASCADE"), Some(Op::Update));
        assert_eq!(action(Op::Update, "RESTRICT", "cascade"), Some(Op::Update));
        assert_eq!(action(Op::Delete, "NO ACTION", "CASCADE"), None);
    }

    #[test]
    fn integers_render_as_bound_ids_and_unsigned_ones_are_read_back() {
        assert_eq!(
            render(&Value::Int(7), KeyKind::Signed).as_deref(),
            Some("7")
        );
        assert_eq!(
            render(&Value::Int(-7), KeyKind::Signed).as_deref(),
            Some("-7")
        );
        assert_eq!(
            render(&Value::Int(-1), KeyKind::Unsigned(32)).as_deref(),
            Some("4294967295")
        );
        assert_eq!(
            render(&Value::Int(-1), KeyKind::Unsigned(64)).as_deref(),
            Some("18446744073709551615")
        );
        assert_eq!(
            render(&Value::UInt(9), KeyKind::Unsigned(8)).as_deref(),
            Some("9")
        );
        assert_eq!(render(&Value::NULL, KeyKind::Signed), None);
        assert_eq!(render(&Value::Bytes(b"7".to_vec()), KeyKind::Signed), None);
    }
}
