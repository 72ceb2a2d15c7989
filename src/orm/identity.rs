//! The query a connection sends once to learn which database it talks to, and the
//! fingerprint its answer makes (see `cache::databases`). SeaORM and Diesel send the same
//! query and make the same fingerprint, so that both agree on a database they share.
#![cfg_attr(not(any(feature = "sea-orm", feature = "diesel")), allow(dead_code))]

use std::sync::atomic::{AtomicU64, Ordering};

use crate::cache::databases::Fingerprint;

/// Tells connection wrappers of anonymous databases apart (see [`Fingerprint::Anonymous`]).
pub(crate) fn next_wrapper() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The SQL dialects querycache can ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Postgres,
    MySql,
    Sqlite,
}

impl Dialect {
    /// One text column: PostgreSQL its database name, port and cluster's system
    /// identifier (the same whatever address or socket a client connects through, and
    /// shared by its physical replicas on the same port; a SeaORM replica declared with
    /// `replica_of` asks its primary instead); MySQL its database, the
    /// server's host name and port; SQLite the file of its `main` database (empty in
    /// memory). Read-only.
    pub(crate) fn identity_sql(self) -> &'static str {
        match self {
            Dialect::Postgres => {
                "SELECT current_database() || '|' || current_setting('port') || '|' \
                 || (SELECT system_identifier::text FROM pg_control_system()) AS identity"
            }
            Dialect::MySql => {
                "SELECT CONCAT(COALESCE(DATABASE(), ''), '|', @@hostname, '|', @@port) AS identity"
            }
            Dialect::Sqlite => {
                "SELECT COALESCE(file, '') AS identity FROM pragma_database_list \
                 WHERE name = 'main'"
            }
        }
    }

    /// The database's name, for messages (`PostgreSQL`, `MySQL`, `SQLite`).
    #[cfg(feature = "sea-orm")]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "PostgreSQL",
            Dialect::MySql => "MySQL",
            Dialect::Sqlite => "SQLite",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Dialect::Postgres => "Postgres",
            Dialect::MySql => "MySql",
            Dialect::Sqlite => "Sqlite",
        }
    }

    /// The fingerprint of the database that answered `answer` to
    /// [`identity_sql`](Self::identity_sql) (`None` or empty: SQLite in memory, which
    /// cannot be told apart; `wrapper` tells connection wrappers apart).
    pub(crate) fn fingerprint(self, answer: Option<String>, wrapper: u64) -> Fingerprint {
        match answer {
            Some(text) if !text.is_empty() => {
                Fingerprint::Known(format!("{}|{text}", self.label()))
            }
            _ => Fingerprint::Anonymous {
                kind: "in-memory SQLite",
                wrapper,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_make_fingerprints_by_dialect() {
        assert_eq!(
            Dialect::Postgres.fingerprint(Some("app|127.0.0.1|5432|main".into()), 1),
            Fingerprint::Known("Postgres|app|127.0.0.1|5432|main".into())
        );
        assert_ne!(
            Dialect::Sqlite.fingerprint(Some("/tmp/a.db".into()), 1),
            Dialect::MySql.fingerprint(Some("/tmp/a.db".into()), 1)
        );
        assert!(matches!(
            Dialect::Sqlite.fingerprint(Some(String::new()), 7),
            Fingerprint::Anonymous { wrapper: 7, .. }
        ));
    }
}
