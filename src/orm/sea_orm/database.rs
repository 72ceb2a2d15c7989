//! Which database a [`CachedConnection`](super::CachedConnection) talks to, learnt once: so
//! that one cache can serve several databases (see `cache::databases` for the rule).
//!
//! SeaORM does not show a pool's connect options to a crate built without its sqlx
//! features, so the connection asks the database itself, with one query the first time a
//! cached call or a write needs the answer (`orm::identity`). An in-memory SQLite database
//! has no file: it cannot be told apart from another one (name it with
//! [`CachedConnection::database`](super::CachedConnection::database)).

use std::sync::Arc;

use sea_orm::{DatabaseConnection, DbBackend, DbErr, Statement};

use crate::Cache;
use crate::cache::databases::{DatabaseId, Fingerprint, Namespace, SettleDatabase, Settling};
use crate::orm::catalog::Catalog;
use crate::orm::identity::Dialect;

/// What a [`CachedConnection`](super::CachedConnection) needs to settle its database.
#[derive(Debug, Clone)]
pub(super) struct Settle {
    pub(super) inner: DatabaseConnection,
    pub(super) cache: Cache,
    pub(super) id: Arc<DatabaseId>,
    pub(super) wrapper: u64,
}

impl Settle {
    /// The namespace of the connection's database, asking the database the first time;
    /// `None` when the query failed (asked again next time).
    pub(super) async fn namespace(&self) -> Option<Namespace> {
        if let Some(namespace) = self.id.get() {
            return Some(namespace.clone());
        }
        match fingerprint(&self.inner, self.wrapper).await {
            Ok(fingerprint) => {
                let namespace = self.cache.database_namespace(fingerprint).await?;
                Some(self.id.settle(namespace).clone())
            }
            Err(error) => {
                tracing::warn!(
                    %error,
                    "cannot learn which database this connection talks to; its cached calls \
                     run uncached and its writes invalidate the written tables in every database until \
                     it can"
                );
                None
            }
        }
    }
}

impl Settle {
    /// Asks the catalog for the primary keys and relations of the database's tables, when
    /// they were never asked for or a table the last answer did not list was named since
    /// (see `orm::catalog`). A failure is logged and answers nothing: every key is then
    /// guessed, and every write invalidates every model tag.
    pub(super) async fn learn_keys(&self) {
        if !self.id.catalog.wanted() {
            return;
        }
        let keys = match primary_keys(&self.inner).await {
            Ok(keys) => keys,
            Err(error) => {
                tracing::warn!(
                    %error,
                    "cannot read this database's catalog; rows are pinned by a column named \
                     `id` only, and every write invalidates every cached entry"
                );
                Catalog::default()
            }
        };
        self.id.catalog.install(keys);
    }
}

/// Asks the catalog for the primary keys and relations of the database's tables.
async fn primary_keys(db: &DatabaseConnection) -> Result<Catalog, DbErr> {
    use sea_orm::ConnectionTrait;

    if db.is_mock_connection() {
        return Ok(Catalog::empty());
    }
    let backend = db.get_database_backend();
    let Some(dialect) = dialect_of(backend) else {
        return Ok(Catalog::default());
    };
    let rows = db
        .query_all_raw(Statement::from_string(backend, dialect.catalog_sql()))
        .await?;
    let mut lines = Vec::with_capacity(rows.len());
    for row in rows {
        let line: Option<String> = row.try_get_by_index(0)?;
        lines.extend(line);
    }
    Ok(Catalog::from_rows(dialect, lines))
}

impl SettleDatabase for Settle {
    fn settle(&self) -> Settling {
        let this = self.clone();
        Box::pin(async move { this.namespace().await })
    }
}

/// Asks the database who it is.
async fn fingerprint(db: &DatabaseConnection, wrapper: u64) -> Result<Fingerprint, DbErr> {
    use sea_orm::ConnectionTrait;

    if db.is_mock_connection() {
        return Ok(Fingerprint::Anonymous {
            kind: "mock",
            wrapper,
        });
    }
    let backend = db.get_database_backend();
    let Some(dialect) = dialect_of(backend) else {
        return Ok(Fingerprint::Anonymous {
            kind: "unknown backend",
            wrapper,
        });
    };
    let row = db
        .query_one_raw(Statement::from_string(backend, dialect.identity_sql()))
        .await?;
    let answer: Option<String> = match row {
        Some(row) => row.try_get_by_index(0)?,
        None => None,
    };
    Ok(dialect.fingerprint(answer, wrapper))
}

/// The dialect querycache speaks to a SeaORM backend (`None`: one it does not know).
pub(super) fn dialect_of(backend: DbBackend) -> Option<Dialect> {
    match backend {
        DbBackend::Postgres => Some(Dialect::Postgres),
        DbBackend::MySql => Some(Dialect::MySql),
        DbBackend::Sqlite => Some(Dialect::Sqlite),
        _ => None,
    }
}
