//! SeaORM 2.0 integration: a connection wrapper that sees every statement.
//!
//! Wrap the `DatabaseConnection` once, at start-up, and use the wrapper wherever SeaORM
//! takes a connection:
//!
//! ```no_run
//! # async fn demo() -> Result<(), sea_orm::DbErr> {
//! use querycache::{Cache, orm::sea_orm::CachedConnection};
//!
//! let db = sea_orm::Database::connect("sqlite::memory:").await?;
//! let db = CachedConnection::new(db, Cache::new());
//! // song::ActiveModel { .. }.insert(&db).await?, Song::update_many().exec(&db).await?,
//! // db.execute_unprepared("DELETE FROM songs").await?, db.begin().await? ... all invalidate.
//! # Ok(()) }
//! ```
//!
//! What it sees, and what it does:
//!
//! * **Every statement**, whatever produced it: ActiveModel `insert`/`update`/`save`/`delete`,
//!   `Entity::insert_many`, `update_many`, `delete_many`, `delete_by_id`, raw
//!   `execute`/`execute_unprepared`/`query_*`. With `RETURNING` (the default on SQLite and
//!   PostgreSQL) inserts and updates arrive as queries, so queries are classified too.
//!   ActiveModel hooks are not used: they miss bulk and raw writes, and run before COMMIT.
//! * **Outside a transaction**, a write's tags are invalidated as soon as the statement
//!   returns, before the caller sees the result.
//! * **Inside a transaction** ([`CachedTransaction`]), tags are recorded and invalidated only
//!   after the outermost COMMIT returns; a rollback (or dropping the transaction) discards
//!   them; a nested transaction (a SAVEPOINT) hands its tags to its parent when it commits.
//!   Cached reads that take the transaction as their connection bypass the cache for the
//!   tables it wrote, and never store what they compute (the transaction's snapshot may be
//!   older than other readers').
//! * A statement whose SQL cannot be classified invalidates every model tag (`model:#all`),
//!   and says so at warn level: it fails safe, never silently.
//!
//! Not seen: writes by other processes or by database triggers (declare those dependencies
//! with `tags`/`models` on the reading query), and statements sent through a plain
//! `DatabaseConnection` that was not wrapped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    ExecResult, IsolationLevel, QueryResult, Statement, TransactionError, TransactionOptions,
    TransactionSession, TransactionTrait, Value,
};

use super::TxState;
use super::sql::{self, Effect, Rows, TableName};
use crate::Cache;
use crate::tags::{Tag, table_key, write_tags};
use crate::write::PendingWrites;

/// A SeaORM connection whose writes invalidate the cache. Cheap to clone.
///
/// Implements [`ConnectionTrait`] and [`TransactionTrait`], so it goes wherever SeaORM
/// wants a connection. Its transactions are [`CachedTransaction`]s.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm::DbErr> {
/// use querycache::{Cache, Tag, EntryOptions, orm::sea_orm::CachedConnection};
/// use sea_orm::ConnectionTrait;
///
/// let cache = Cache::new();
/// let db = CachedConnection::new(sea_orm::Database::connect("sqlite::memory:").await?, cache.clone());
/// db.execute_unprepared("CREATE TABLE songs (id INTEGER PRIMARY KEY, title TEXT)").await?;
///
/// cache.set("songs:count", 0_u64, EntryOptions::new().tag(Tag::model("songs"))).await.unwrap();
/// db.execute_unprepared("INSERT INTO songs (title) VALUES ('Blue')").await?;
/// assert!(cache.get::<u64>("songs:count").await.is_none(), "the insert invalidated it");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CachedConnection {
    inner: DatabaseConnection,
    cache: Cache,
}

impl CachedConnection {
    /// Wraps `db`; writes invalidate `cache`.
    pub fn new(db: DatabaseConnection, cache: Cache) -> Self {
        CachedConnection { inner: db, cache }
    }

    /// Wraps `db`; writes invalidate the [global](crate::global) cache.
    pub fn with_global_cache(db: DatabaseConnection) -> Self {
        Self::new(db, crate::global().clone())
    }

    /// The wrapped connection. Writes made through it directly are *not* seen.
    pub fn inner(&self) -> &DatabaseConnection {
        &self.inner
    }

    /// The cache this connection invalidates.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Unwraps the connection.
    pub fn into_inner(self) -> DatabaseConnection {
        self.inner
    }

    fn wrap(&self, tx: DatabaseTransaction) -> CachedTransaction {
        CachedTransaction {
            inner: tx,
            cache: self.cache.clone(),
            pending: Arc::new(PendingWrites::default()),
        }
    }
}

/// A transaction begun on a [`CachedConnection`] (or nested in another one). Its writes
/// are invalidated when the outermost transaction commits, and forgotten on rollback.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm::DbErr> {
/// use querycache::{Cache, Tag, EntryOptions, orm::sea_orm::CachedConnection};
/// use sea_orm::{ConnectionTrait, TransactionTrait};
///
/// let cache = Cache::new();
/// let db = CachedConnection::new(sea_orm::Database::connect("sqlite::memory:").await?, cache.clone());
/// db.execute_unprepared("CREATE TABLE songs (id INTEGER PRIMARY KEY, title TEXT)").await?;
/// cache.set("n", 0_u64, EntryOptions::new().tag(Tag::model("songs"))).await.unwrap();
///
/// let tx = db.begin().await?;
/// tx.execute_unprepared("INSERT INTO songs (title) VALUES ('Blue')").await?;
/// assert!(cache.get::<u64>("n").await.is_some(), "not committed yet");
/// tx.commit().await?;
/// assert!(cache.get::<u64>("n").await.is_none(), "committed: invalidated");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct CachedTransaction {
    inner: DatabaseTransaction,
    cache: Cache,
    /// This level's writes; a savepoint's link to its parent's.
    pending: Arc<PendingWrites>,
}

impl CachedTransaction {
    /// Commits; for the outermost transaction, then invalidates every tag its writes touched.
    /// If COMMIT itself fails, the tags are invalidated anyway: whether it took effect is
    /// not known, and an extra invalidation costs only a recomputation.
    ///
    /// # Errors
    /// The database's error.
    pub async fn commit(self) -> Result<(), DbErr> {
        let CachedTransaction {
            inner,
            cache,
            pending,
        } = self;
        let result = inner.commit().await;
        match pending.parent() {
            Some(parent) => {
                if result.is_ok() {
                    pending.merge_into(parent);
                }
            }
            None => {
                let tags = pending.take();
                if !tags.is_empty() {
                    cache.invalidate_written(tags).await;
                }
            }
        }
        result
    }

    /// Rolls back; the transaction's writes invalidate nothing.
    ///
    /// # Errors
    /// The database's error.
    pub async fn rollback(self) -> Result<(), DbErr> {
        self.inner.rollback().await
    }

    /// The wrapped SeaORM transaction. Writes made through it directly are *not* seen.
    pub fn inner(&self) -> &DatabaseTransaction {
        &self.inner
    }

    fn nest(&self, tx: DatabaseTransaction) -> CachedTransaction {
        CachedTransaction {
            inner: tx,
            cache: self.cache.clone(),
            pending: Arc::new(PendingWrites::child(Arc::clone(&self.pending))),
        }
    }

    pub(crate) fn pending(&self) -> &Arc<PendingWrites> {
        &self.pending
    }
}

/// The text and values of a statement, for classification.
struct StatementText<'a> {
    sql: &'a str,
    values: Option<&'a [Value]>,
}

impl<'a> StatementText<'a> {
    fn of(stmt: &'a Statement) -> Self {
        StatementText {
            sql: &stmt.sql,
            values: stmt.values.as_ref().map(|v| v.0.as_slice()),
        }
    }

    fn unprepared(sql: &'a str) -> Self {
        StatementText { sql, values: None }
    }

    /// The tags this statement's writes touch; `None` for a read.
    fn written_tags(&self) -> Option<Vec<Tag>> {
        self.written_tags_returning(None)
    }

    /// Like [`written_tags`](Self::written_tags), given the rows a query returned: a plain
    /// `INSERT ... RETURNING` names the ids of the rows it created, so it touches those
    /// rows (by-id entries of other rows stay) rather than the whole table in bulk.
    fn written_tags_returning(&self, returned: Option<&[QueryResult]>) -> Option<Vec<Tag>> {
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
        rows.iter()
            .map(|row| {
                row.try_get::<i64>("", "id")
                    .map(|id| id.to_string())
                    .or_else(|_| row.try_get::<String>("", "id"))
                    .ok()
            })
            .collect()
    }
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

/// Called by `#[cached_query]` code with each connection argument.
pub(crate) fn transaction_state<C: ?Sized>(conn: &C) -> TxState {
    if let Some(tx) = downcast_ref::<C, CachedTransaction>(conn) {
        return TxState::Tracked(Arc::clone(tx.pending()));
    }
    if downcast_ref::<C, DatabaseTransaction>(conn).is_some() {
        return TxState::Untracked;
    }
    TxState::None
}

/// `conn` as a `&T`, when `C` is `T`, `&T` or `&mut T`.
fn downcast_ref<'a, C: ?Sized, T: 'static>(conn: &'a C) -> Option<&'a T> {
    let id = typeid::of::<C>();
    if id == std::any::TypeId::of::<T>() {
        // SAFETY: `C` and `T` have the same `TypeId` (lifetimes erased, and `T` has no
        // lifetime parameters), so they are the same type and the cast is an identity.
        return Some(unsafe { &*(conn as *const C as *const T) });
    }
    if id == std::any::TypeId::of::<&'static T>() {
        // SAFETY: `C` is `&'x T` for some `'x` outliving `'a`; reading the reference out
        // of `conn` yields a `&T` valid for `'a`.
        return Some(unsafe { *(conn as *const C as *const &'a T) });
    }
    if id == std::any::TypeId::of::<&'static mut T>() {
        // SAFETY: as above, `C` is `&'x mut T`; a shared reborrow of it for `'a` is sound
        // since `conn: &'a C` already prevents mutation through it for `'a`.
        return Some(unsafe { &**(conn as *const C as *const &'a mut T) });
    }
    None
}

type Callback<'c, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>;

async fn run_in<F, T, E>(tx: CachedTransaction, callback: F) -> Result<T, TransactionError<E>>
where
    F: for<'c> FnOnce(&'c CachedTransaction) -> Callback<'c, T, E> + Send,
    T: Send,
    E: std::fmt::Display + std::fmt::Debug + Send,
{
    let result = callback(&tx).await;
    match result {
        Ok(value) => {
            tx.commit().await.map_err(TransactionError::Connection)?;
            Ok(value)
        }
        Err(error) => {
            tx.rollback().await.map_err(TransactionError::Connection)?;
            Err(TransactionError::Transaction(error))
        }
    }
}

macro_rules! connection_impl {
    ($ty:ty, |$this:ident, $tags:ident| $after:expr) => {
        #[async_trait::async_trait]
        impl ConnectionTrait for $ty {
            fn get_database_backend(&self) -> DbBackend {
                self.inner.get_database_backend()
            }

            async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
                let result = self.inner.execute_raw(stmt.clone()).await;
                // Invalidate even when the statement failed: a multi-statement text may
                // have written part of its work before the error.
                if let Some($tags) = StatementText::of(&stmt).written_tags() {
                    let $this = self;
                    $after;
                }
                result
            }

            async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
                let result = self.inner.execute_unprepared(sql).await;
                if let Some($tags) = StatementText::unprepared(sql).written_tags() {
                    let $this = self;
                    $after;
                }
                result
            }

            async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
                let result = self.inner.query_one_raw(stmt.clone()).await;
                let returned = result
                    .as_ref()
                    .ok()
                    .and_then(Option::as_ref)
                    .map(std::slice::from_ref);
                if let Some($tags) = StatementText::of(&stmt).written_tags_returning(returned) {
                    let $this = self;
                    $after;
                }
                result
            }

            async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
                let result = self.inner.query_all_raw(stmt.clone()).await;
                let returned = result.as_ref().ok().map(Vec::as_slice);
                if let Some($tags) = StatementText::of(&stmt).written_tags_returning(returned) {
                    let $this = self;
                    $after;
                }
                result
            }

            fn support_returning(&self) -> bool {
                self.inner.support_returning()
            }

            fn is_mock_connection(&self) -> bool {
                self.inner.is_mock_connection()
            }
        }
    };
}

// Outside a transaction, a statement has committed when it returns: invalidate now, before
// the caller sees the result. Inside one, record; `commit` invalidates.
connection_impl!(CachedConnection, |this, tags| this
    .cache
    .invalidate_written(tags)
    .await);
connection_impl!(CachedTransaction, |this, tags| this.pending.record(&tags));

#[async_trait::async_trait]
impl TransactionTrait for CachedConnection {
    type Transaction = CachedTransaction;

    async fn begin(&self) -> Result<CachedTransaction, DbErr> {
        Ok(self.wrap(self.inner.begin().await?))
    }

    async fn begin_with_config(
        &self,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<CachedTransaction, DbErr> {
        Ok(self.wrap(
            self.inner
                .begin_with_config(isolation_level, access_mode)
                .await?,
        ))
    }

    async fn begin_with_options(
        &self,
        options: TransactionOptions,
    ) -> Result<CachedTransaction, DbErr> {
        Ok(self.wrap(self.inner.begin_with_options(options).await?))
    }

    async fn transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c CachedTransaction,
            ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        let tx = self.begin().await.map_err(TransactionError::Connection)?;
        run_in(tx, callback).await
    }

    async fn transaction_with_config<F, T, E>(
        &self,
        callback: F,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c CachedTransaction,
            ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        let tx = self
            .begin_with_config(isolation_level, access_mode)
            .await
            .map_err(TransactionError::Connection)?;
        run_in(tx, callback).await
    }
}

#[async_trait::async_trait]
impl TransactionTrait for CachedTransaction {
    type Transaction = CachedTransaction;

    async fn begin(&self) -> Result<CachedTransaction, DbErr> {
        Ok(self.nest(TransactionTrait::begin(&self.inner).await?))
    }

    async fn begin_with_config(
        &self,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<CachedTransaction, DbErr> {
        Ok(self.nest(
            self.inner
                .begin_with_config(isolation_level, access_mode)
                .await?,
        ))
    }

    async fn begin_with_options(
        &self,
        options: TransactionOptions,
    ) -> Result<CachedTransaction, DbErr> {
        Ok(self.nest(self.inner.begin_with_options(options).await?))
    }

    async fn transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c CachedTransaction,
            ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        let tx = TransactionTrait::begin(self)
            .await
            .map_err(TransactionError::Connection)?;
        run_in(tx, callback).await
    }

    async fn transaction_with_config<F, T, E>(
        &self,
        callback: F,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c CachedTransaction,
            ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        let tx = self
            .begin_with_config(isolation_level, access_mode)
            .await
            .map_err(TransactionError::Connection)?;
        run_in(tx, callback).await
    }
}

#[async_trait::async_trait]
impl TransactionSession for CachedTransaction {
    async fn commit(self) -> Result<(), DbErr> {
        CachedTransaction::commit(self).await
    }

    async fn rollback(self) -> Result<(), DbErr> {
        CachedTransaction::rollback(self).await
    }
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
