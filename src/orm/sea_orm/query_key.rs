//! The key of a per-query entry (`cached_select`): derived from the statement as built for
//! the connection's backend, the shape of the result, and the type it decodes into.

use std::fmt::Write as _;

use sea_orm::Statement;
use xxhash_rust::xxh3::Xxh3;

/// `<namespace>:<op>:<hash>`, the hash (xxh3, 128 bits) of the backend, `op` (`one`, `all`,
/// `count`: `one` sends `LIMIT 1`, `count` another statement), `item` (the Rust type the
/// rows decode into: the same SQL decoded as two types never shares an entry), the SQL text
/// and the bound values. The values are hashed in their `Debug` form, which names each
/// value's type and quotes text: deterministic across processes of one build, so instances
/// sharing Redis share entries.
pub(crate) fn key(namespace: &str, op: &str, item: &str, statement: &Statement) -> String {
    let mut hasher = Hashing(Xxh3::new());
    for part in [statement.db_backend.as_str(), op, item, &statement.sql] {
        hasher.0.update(part.as_bytes());
        hasher.0.update(&[0x1f]);
    }
    if let Some(values) = &statement.values {
        // Writing into a hasher cannot fail.
        let _ = write!(hasher, "{:?}", values.0);
    }
    format!("{namespace}:{op}:{:032x}", hasher.0.digest128())
}

/// A hasher fed by `write!`, without building the text.
struct Hashing(Xxh3);

impl std::fmt::Write for Hashing {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.update(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{DbBackend, Statement, Value};

    use super::key;

    fn stmt(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
        Statement::from_sql_and_values(backend, sql, values)
    }

    #[test]
    fn every_part_of_the_statement_and_the_shape_tells_keys_apart() {
        let sql = "SELECT * FROM songs WHERE id = ?";
        let base = key(
            "query",
            "one",
            "Song",
            &stmt(DbBackend::Sqlite, sql, vec![7.into()]),
        );
        assert!(base.starts_with("query:one:"), "{base}");
        let others = [
            key(
                "query",
                "one",
                "Song",
                &stmt(DbBackend::Sqlite, sql, vec![8.into()]),
            ),
            key(
                "query",
                "one",
                "Song",
                &stmt(DbBackend::Sqlite, sql, vec![7_i64.into()]),
            ),
            key(
                "query",
                "one",
                "Song",
                &stmt(DbBackend::Sqlite, sql, vec!["7".into()]),
            ),
            key(
                "query",
                "all",
                "Song",
                &stmt(DbBackend::Sqlite, sql, vec![7.into()]),
            ),
            key(
                "query",
                "one",
                "Card",
                &stmt(DbBackend::Sqlite, sql, vec![7.into()]),
            ),
            key(
                "query",
                "one",
                "Song",
                &stmt(DbBackend::Postgres, sql, vec![7.into()]),
            ),
            key(
                "other",
                "one",
                "Song",
                &stmt(DbBackend::Sqlite, sql, vec![7.into()]),
            ),
            key(
                "query",
                "one",
                "Song",
                &stmt(DbBackend::Sqlite, "SELECT 1", vec![7.into()]),
            ),
        ];
        for other in &others {
            assert_ne!(&base, other);
        }
        let again = key(
            "query",
            "one",
            "Song",
            &stmt(DbBackend::Sqlite, sql, vec![7.into()]),
        );
        assert_eq!(base, again, "deterministic");
    }
}
