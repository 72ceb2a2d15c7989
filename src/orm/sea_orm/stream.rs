//! [`StreamTrait`] for [`CachedConnection`] and [`CachedTransaction`]: `.stream(&db)` works
//! on the wrappers as on SeaORM's own connections. Streams are never cached; inside a cached
//! computation a streamed read is observed like any other read (the entry depends on what
//! it reads, and a locking read or a read in a transaction is not stored).
//!
//! A stream is for reads. Through a [`CachedConnection`] a statement that writes is refused
//! (with [`DbErr::Custom`]): when a streamed write takes effect is not known, so it could
//! not be invalidated after it. Through a [`CachedTransaction`] it is recorded as the
//! transaction's write, invalidated when the outermost transaction commits.

use std::future::Future;
use std::pin::Pin;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement,
    StreamTrait,
};

use super::statement::StatementText;
use super::{CachedConnection, CachedTransaction};

/// The future `stream_raw` returns.
type Streaming<'a, S> = Pin<Box<dyn Future<Output = Result<S, DbErr>> + 'a + Send>>;

impl CachedConnection {
    /// The database backend. Inherent, as on SeaORM's `DatabaseConnection`, so that
    /// `db.get_database_backend()` is not ambiguous where both [`ConnectionTrait`] and
    /// [`StreamTrait`] are in scope (`use sea_orm::*`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sea_orm::DbErr> {
    /// use querycache::{Cache, orm::sea_orm::CachedConnection};
    /// use sea_orm::{ConnectionTrait, StreamTrait};
    ///
    /// let db = CachedConnection::new(sea_orm::Database::connect("sqlite::memory:").await?, Cache::new());
    /// assert_eq!(db.get_database_backend(), sea_orm::DbBackend::Sqlite);
    /// # Ok(()) }
    /// ```
    pub fn get_database_backend(&self) -> DbBackend {
        ConnectionTrait::get_database_backend(&self.inner)
    }
}

impl CachedTransaction {
    /// The database backend; inherent for the same reason as
    /// [`CachedConnection::get_database_backend`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sea_orm::DbErr> {
    /// use querycache::{Cache, orm::sea_orm::CachedConnection};
    /// use sea_orm::{ConnectionTrait, StreamTrait, TransactionTrait};
    ///
    /// let db = CachedConnection::new(sea_orm::Database::connect("sqlite::memory:").await?, Cache::new());
    /// let tx = db.begin().await?;
    /// assert_eq!(tx.get_database_backend(), sea_orm::DbBackend::Sqlite);
    /// # tx.commit().await }
    /// ```
    pub fn get_database_backend(&self) -> DbBackend {
        ConnectionTrait::get_database_backend(&*self.inner)
    }
}

/// Streams the rows of a read, observed as a read inside a cached computation (never
/// cached itself). A statement that writes (or controls a transaction) is refused with
/// [`DbErr::Custom`]: when a streamed write takes effect is not known, so it could not be
/// invalidated after it.
///
/// ```
/// # mod song {
/// #     use sea_orm::entity::prelude::*;
/// #     #[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
/// #     #[sea_orm(table_name = "songs")]
/// #     pub struct Model { #[sea_orm(primary_key)] pub id: i32, pub title: String }
/// #     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// #     pub enum Relation {}
/// #     impl ActiveModelBehavior for ActiveModel {}
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm::DbErr> {
/// use futures_util::TryStreamExt;
/// use querycache::{Cache, orm::sea_orm::CachedConnection};
/// use sea_orm::{ConnectionTrait, EntityTrait};
///
/// let db = CachedConnection::new(sea_orm::Database::connect("sqlite::memory:").await?, Cache::new());
/// db.execute_unprepared("CREATE TABLE songs (id INTEGER PRIMARY KEY, title TEXT NOT NULL)").await?;
/// db.execute_unprepared("INSERT INTO songs (title) VALUES ('Blue'), ('Green')").await?;
/// let songs: Vec<song::Model> = song::Entity::find().stream(&db).await?.try_collect().await?;
/// assert_eq!(songs.len(), 2);
/// # Ok(()) }
/// ```
impl StreamTrait for CachedConnection {
    type Stream<'a> = <DatabaseConnection as StreamTrait>::Stream<'a>;

    fn get_database_backend(&self) -> DbBackend {
        ConnectionTrait::get_database_backend(&self.inner)
    }

    fn stream_raw<'a>(&'a self, stmt: Statement) -> Streaming<'a, Self::Stream<'a>> {
        Box::pin(async move {
            crate::orm::note_locking_read(&stmt.sql);
            self.learn_keys().await;
            let keys = &self.database.catalog;
            if Self::classify(&StatementText::of(&stmt, keys), &stmt.sql).is_some() {
                return Err(DbErr::Custom(format!(
                    "querycache: a statement that writes (or controls a transaction) cannot be \
                     streamed through a CachedConnection, which could not invalidate after it; \
                     use execute or query_all: {}",
                    stmt.sql.chars().take(120).collect::<String>()
                )));
            }
            self.observe(&StatementText::of(&stmt, keys), &stmt.sql)
                .await;
            self.inner.stream_raw(stmt).await
        })
    }
}

/// Streams the rows of a read in the transaction (inside a cached computation, the value is
/// then not stored, as for any read in a transaction). A statement that writes is recorded
/// as the transaction's write, invalidated when the outermost transaction commits.
impl StreamTrait for CachedTransaction {
    type Stream<'a> = <DatabaseTransaction as StreamTrait>::Stream<'a>;

    fn get_database_backend(&self) -> DbBackend {
        ConnectionTrait::get_database_backend(&*self.inner)
    }

    fn stream_raw<'a>(&'a self, stmt: Statement) -> Streaming<'a, Self::Stream<'a>> {
        Box::pin(async move {
            crate::orm::note_locking_read(&stmt.sql);
            match StatementText::of(&stmt, &self.database.catalog).written_tags() {
                // It may run as soon as it is sent: recorded first.
                Some(tags) => self.record(tags),
                None => crate::orm::note_read_in_transaction(&stmt.sql),
            }
            self.inner.stream_raw(stmt).await
        })
    }
}
