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
//! * **A caller that stops waiting** (`tokio::time::timeout`, `select!`, an axum handler
//!   whose client went away, `JoinHandle::abort`) once a write or a COMMIT was sent does not
//!   stop it: the database runs it anyway, so the statement and the invalidation after it
//!   finish in the background, in that order ([`Health::writes_in_flight`](crate::Health::writes_in_flight)
//!   counts them meanwhile). Inside a transaction, a statement cut short runs to its end
//!   too and records what it wrote; the transaction's next statement, COMMIT or rollback
//!   waits for it. A savepoint's writes go to its parent before it is released. Reads
//!   finish the same way: dropped half-way, they would leave their connection between two
//!   messages of the protocol (sqlx's MySQL driver then never gives it back to the pool).
//! * **Raw transaction control** through the pool ([`CachedConnection`] runs each text on any
//!   of its connections): a text that is a whole transaction is invalidated when it returns;
//!   once a text may have left one open (`BEGIN; UPDATE ..`), writes are invalidated again
//!   when a later text ends a transaction, and cached reads given the connection bypass the
//!   cache until then.
//! * Writes the cache cannot see inside a transaction (a function called from a `SELECT`):
//!   [`CachedTransaction::invalidate_tags`] invalidates now and again after COMMIT.
//! * A statement whose SQL cannot be classified invalidates every model tag (`model:#all`),
//!   and says so at warn level: it fails safe, never silently.
//! * **Rows are pinned by each table's primary key** as the database's catalog gives it
//!   (`song_id`, `uuid`, `(tenant_id, id)`): the connection asks once, before the first
//!   statement it classifies, and again when a statement names a table the answer did not
//!   list (outside transactions only; see `orm::catalog`).
//! * **Several databases on one cache**: the connection learns its database once (one
//!   query, the first time it is needed). The cache's first database keeps plain keys and
//!   tags; each other one gets a namespace (`model:@…/songs`, keys `@…/module::fn:…`), so
//!   its cached reads hold its own rows and its writes invalidate its own entries only.
//!   [`CachedConnection::database`] names it instead (see the README's multi-database
//!   section).
//! * **Views and cascading foreign keys** come from the catalog too: a read of a view
//!   depends on its tables, a write reaches the views over what it writes and the tables
//!   its foreign keys' `CASCADE`/`SET NULL`/`SET DEFAULT` actions write.
//!
//! * **One query, cached where it is written**: [`CacheQueryExt::cached`]
//!   (`Entity::find_by_id(7).cached(&db).ttl(..).one()`), beside `#[cached_query]`, with the
//!   same observed dependencies, options and transaction rules; `.stream(&db)` on the
//!   wrappers (never cached); [`CachedConnection::invalidate_model`] and
//!   [`CachedConnection::invalidate_row`] for writes made elsewhere.
//!
//! Not seen: writes by other processes, statements sent through a plain `DatabaseConnection`
//! that was not wrapped, and writes the database makes on its own through triggers and
//! rules. Declare the last with
//! [`CacheConfigBuilder::table_also_writes`](crate::config::CacheConfigBuilder::table_also_writes)
//! (`CACHE_TABLE_DEPENDENCIES`): "a write to `songs` also writes `song_counts`".

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    ExecResult, IsolationLevel, QueryResult, Statement, TransactionError, TransactionOptions,
    TransactionSession, TransactionTrait,
};

mod cached_select;
mod database;
mod detach;
mod query_key;
mod raw;
mod replica;
mod statement;
mod stream;
mod typed_invalidation;

pub use cached_select::{CacheQueryExt, CachedQuery, QUERY_NAMESPACE, QueryConnection};

use statement::StatementText;

use super::TxState;
use crate::cache::databases::{self, CallDatabase, DatabaseId};
use crate::orm::write::PendingWrites;
use crate::{Cache, Tag};

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
    /// Raw transaction control seen through the pool ([`raw`]).
    raw: Arc<raw::RawTransactions>,
    /// The database's namespace in the cache, learnt once ([`database`]).
    database: Arc<DatabaseId>,
    /// Tells wrappers of databases that cannot be told apart from each other.
    wrapper: u64,
    /// The primary this connection is a read replica of ([`replica_of`](Self::replica_of)).
    replica: Option<Arc<replica::Replica>>,
}

impl CachedConnection {
    /// Wraps `db`; writes invalidate `cache`.
    ///
    /// One cache may serve several databases: the first database it meets keeps plain
    /// keys and tags (`model:songs`); each other one gets its own namespace, learnt with one
    /// query the first time it is needed (see [`database`](Self::database) and the README's
    /// multi-database section).
    pub fn new(db: DatabaseConnection, cache: Cache) -> Self {
        CachedConnection {
            inner: db,
            cache,
            raw: Arc::default(),
            database: Arc::default(),
            wrapper: crate::orm::identity::next_wrapper(),
            replica: None,
        }
    }

    /// Declares this connection a read replica of `primary` (a PostgreSQL streaming
    /// replica), so that what its cached computations read from a replica that lags is
    /// never cached as current.
    ///
    /// The replica shares the primary's database in the cache: its keys and tags are the
    /// primary's, and the primary's writes invalidate what was read here. Before each
    /// statement a computation sends through this connection, the primary's WAL position
    /// is read (`pg_current_wal_insert_lsn()`, after the versions of what the statement reads were
    /// recorded), and the replica must have replayed that far (`pg_last_wal_replay_lsn()`)
    /// within `CACHE_REPLICA_WAIT_MS` ([`CacheConfigBuilder::replica_wait`](crate::config::CacheBuilder::replica_wait),
    /// default 100 ms) for the computation's value to be stored; otherwise the value is
    /// answered to its caller only, and counted in [`CacheStats::replica_behind`](crate::stats::CacheStats::replica_behind).
    /// Every commit the primary made before the versions were read is covered, the
    /// application's own and those it never sent (psql, other services). Hits cost nothing
    /// more; each statement of a miss costs one query on the primary and at least one on
    /// the replica.
    ///
    /// Name the primary's database ([`database`](Self::database)) before declaring its
    /// replicas, if you name it. One connection (or pool) per replica server: the replay
    /// position is asked through the same connection the statement takes, and only one
    /// server's replay moves forward for sure.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// use querycache::{Cache, orm::sea_orm::CachedConnection};
    ///
    /// let cache = Cache::from_env()?;
    /// let primary = CachedConnection::new(sea_orm::Database::connect("postgres://app@primary/app").await?, cache.clone());
    /// let replica = CachedConnection::new(sea_orm::Database::connect("postgres://app@replica/app").await?, cache)
    ///     .replica_of(&primary)?;
    /// // Writes go through `primary`; cached reads may go through `replica`.
    /// # let _ = replica;
    /// # Ok(()) }
    /// ```
    ///
    /// A MySQL or SQLite connection is refused:
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sea_orm::DbErr> {
    /// use querycache::{Cache, Error, orm::sea_orm::CachedConnection};
    ///
    /// let cache = Cache::new();
    /// let a = CachedConnection::new(sea_orm::Database::connect("sqlite::memory:").await?, cache.clone());
    /// let b = CachedConnection::new(sea_orm::Database::connect("sqlite::memory:").await?, cache);
    /// let refused = b.replica_of(&a).unwrap_err();
    /// assert!(matches!(refused, Error::Replica { backend: "SQLite", .. }));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Replica`](crate::Error::Replica) unless both connections are PostgreSQL.
    pub fn replica_of(mut self, primary: &CachedConnection) -> Result<Self, crate::Error> {
        let backend = self.inner.get_database_backend();
        let primary_backend = primary.inner.get_database_backend();
        if backend != DbBackend::Postgres || primary_backend != DbBackend::Postgres {
            return Err(crate::Error::Replica {
                backend: backend_name(backend),
                primary: backend_name(primary_backend),
                reason: "only PostgreSQL streaming replicas are followed (their replay position \
                         tells what they have caught up on); read other replicas through a \
                         connection that is not declared one, uncached, or cache from the primary",
            });
        }
        self.database = Arc::clone(&primary.database);
        self.wrapper = primary.wrapper;
        self.replica = Some(Arc::new(replica::Replica {
            primary: primary
                .replica
                .as_ref()
                .map_or_else(|| primary.inner.clone(), |theirs| theirs.primary.clone()),
        }));
        Ok(self)
    }

    /// Names this connection's database in the cache: its keys start with `@<name>/` and
    /// its model tags read `model:@<name>/<table>`, whichever database the cache met first.
    /// For several processes sharing Redis (where start-up order may differ), and for
    /// databases the cache cannot tell apart itself (in-memory SQLite).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use querycache::{Cache, orm::sea_orm::CachedConnection};
    ///
    /// let cache = Cache::new();
    /// let tenant = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let tenant = CachedConnection::new(tenant, cache.clone()).database("tenant_42")?;
    /// assert_eq!(tenant.model_tag("songs").unwrap().as_str(), "model:@tenant_42/songs");
    /// assert!(CachedConnection::new(sea_orm::Database::connect("sqlite::memory:").await?, cache)
    ///     .database("tenant:42")
    ///     .is_err());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidName`](crate::Error::InvalidName) when `name` is empty, longer than
    /// 64 bytes, or holds anything but ASCII letters, digits, `_`, `-` and `.`.
    pub fn database(mut self, name: &str) -> Result<Self, crate::Error> {
        self.database = Arc::new(DatabaseId::settled(databases::named(name)?));
        Ok(self)
    }

    /// The table tag of `table` in this connection's database (`model:songs` for the
    /// cache's default database, `model:@…/songs` for another), for invalidating by hand;
    /// `None` until the connection has learnt its database (after its first cached call or
    /// write, or [`database`](Self::database)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sea_orm::DbErr> {
    /// use querycache::{Cache, Tag, orm::sea_orm::CachedConnection};
    /// use sea_orm::ConnectionTrait;
    ///
    /// let cache = Cache::new();
    /// let db = CachedConnection::new(sea_orm::Database::connect("sqlite::memory:").await?, cache);
    /// assert_eq!(db.model_tag("songs"), None, "not learnt yet");
    /// db.execute_unprepared("CREATE TABLE songs (id INTEGER PRIMARY KEY)").await?;
    /// db.execute_unprepared("INSERT INTO songs DEFAULT VALUES").await?;
    /// // The cache's first database: plain tags.
    /// assert_eq!(db.model_tag("songs"), Some(Tag::model("songs")));
    /// # Ok(()) }
    /// ```
    pub fn model_tag(&self, table: &str) -> Option<Tag> {
        self.database.get().map(|ns| ns.tag(Tag::model(table)))
    }

    /// How this connection learns its database.
    fn settle(&self) -> database::Settle {
        database::Settle {
            // A replica learns its database from its primary: the same database in the
            // cache, whichever server answers.
            inner: self
                .replica
                .as_ref()
                .map_or_else(|| self.inner.clone(), |replica| replica.primary.clone()),
            cache: self.cache.clone(),
            id: Arc::clone(&self.database),
            wrapper: self.wrapper,
        }
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
            inner: Arc::new(tx),
            released: Arc::default(),
            cache: self.cache.clone(),
            pending: Arc::new(PendingWrites::default()),
            database: Arc::clone(&self.database),
        }
    }

    /// Learns the database before a transaction begins, so that the transaction knows it
    /// (and the primary keys of its tables).
    async fn begin_settled(&self) {
        if self.database.get().is_none() {
            self.settle().namespace().await;
        }
        self.learn_keys().await;
    }

    /// Asks the catalog for the primary keys of the database's tables when needed (see
    /// `orm::catalog`): before this connection classifies a statement.
    async fn learn_keys(&self) {
        if self.database.catalog.wanted() {
            self.settle().learn_keys().await;
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
    /// Shared with the statements finishing in the background (see [`Lent`]); owned again
    /// by `commit` and `rollback` once they are done.
    inner: Arc<DatabaseTransaction>,
    /// Signalled each time a [`Lent`] copy is given back.
    released: Arc<tokio::sync::Notify>,
    cache: Cache,
    /// This level's writes; a savepoint's link to its parent's.
    pending: Arc<PendingWrites>,
    /// The connection's database (settled when the transaction began, unless that failed).
    database: Arc<DatabaseId>,
}

impl CachedTransaction {
    /// Commits; for the outermost transaction, then invalidates every tag its writes touched.
    /// If COMMIT itself fails, the tags are invalidated anyway: whether it took effect is
    /// not known, and an extra invalidation costs only a recomputation.
    ///
    /// Cancellation-safe: if the caller stops waiting once COMMIT was sent (a timeout, a
    /// dropped request), the COMMIT and the invalidation after it finish in the background
    /// ([`Health::writes_in_flight`](crate::Health::writes_in_flight) counts them). A nested
    /// transaction's writes are handed to its parent before its savepoint is released, so a
    /// release cut short loses nothing either (if the savepoint was in fact rolled back, the
    /// parent's COMMIT invalidates a little more than needed).
    ///
    /// # Errors
    /// The database's error.
    pub async fn commit(self) -> Result<(), DbErr> {
        let CachedTransaction {
            inner,
            released,
            cache,
            pending,
            database,
        } = self;
        if let Some(parent) = pending.parent() {
            let inner = owned(inner, &released).await;
            pending.merge_into(parent);
            return inner.commit().await;
        }
        let background = cache.clone();
        detach::Detached::new(&background, async move {
            let inner = owned(inner, &released).await;
            let result = inner.commit().await;
            let tags = pending.take();
            if !tags.is_empty() {
                cache.invalidate_written_in(database.get(), tags).await;
            }
            let explicit = pending.take_explicit();
            if !explicit.is_empty() {
                cache
                    .invalidate_tags(databases::tags_in(database.get(), explicit))
                    .await;
            }
            result
        })
        .await
    }

    /// Invalidates `tags` on behalf of this transaction: now, and again once the outermost
    /// transaction has committed (a rollback drops the second time). For writes the cache
    /// cannot see, made inside the transaction: a database function called from a `SELECT`,
    /// a trigger on another table. Invalidating only now would not do: until COMMIT, other
    /// connections still read the old rows and may cache them again.
    ///
    /// Model tags among `tags` also make this transaction's own cached reads of their tables
    /// bypass the cache, as its ORM writes do. Returns what [`Cache::invalidate_tags`] returns
    /// for the first time.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sea_orm::DbErr> {
    /// use querycache::{Cache, Tag, EntryOptions, orm::sea_orm::CachedConnection};
    /// use sea_orm::TransactionTrait;
    ///
    /// let cache = Cache::new();
    /// let db = CachedConnection::new(sea_orm::Database::connect("sqlite::memory:").await?, cache.clone());
    /// let tx = db.begin().await?;
    /// // ... `SELECT archive_all()`, which writes songs behind the statement's back ...
    /// tx.invalidate_tags([Tag::model("songs")]).await;
    /// // Another connection caches the songs as they were before the commit...
    /// cache.set("songs", 1_u8, EntryOptions::new().tag(Tag::model("songs"))).await.unwrap();
    /// tx.commit().await?;
    /// // ...and the commit invalidates them again.
    /// assert!(cache.get::<u8>("songs").await.is_none());
    /// # Ok(()) }
    /// ```
    pub async fn invalidate_tags(&self, tags: impl IntoIterator<Item = Tag>) -> usize {
        let tags: Vec<Tag> = tags.into_iter().collect();
        self.pending.record_explicit(&tags);
        self.cache
            .invalidate_tags(databases::tags_in(self.database.get(), tags))
            .await
    }

    /// Rolls back; the transaction's writes invalidate nothing — unless the database
    /// committed them before (a raw `COMMIT` sent through the transaction, or one of MySQL's
    /// implicit commits such as DDL): then they are invalidated again.
    ///
    /// # Errors
    /// The database's error.
    pub async fn rollback(self) -> Result<(), DbErr> {
        let CachedTransaction {
            inner,
            released,
            cache,
            pending,
            database,
        } = self;
        let result = owned(inner, &released).await.rollback().await;
        if pending.committed_early() {
            invalidate_recorded(&cache, &database, &pending).await;
        }
        result
    }

    /// The wrapped SeaORM transaction. Writes made through it directly are *not* seen.
    pub fn inner(&self) -> &DatabaseTransaction {
        &self.inner
    }

    fn nest(&self, tx: DatabaseTransaction) -> CachedTransaction {
        CachedTransaction {
            inner: Arc::new(tx),
            released: Arc::default(),
            cache: self.cache.clone(),
            pending: Arc::new(PendingWrites::child(Arc::clone(&self.pending))),
            database: Arc::clone(&self.database),
        }
    }

    pub(crate) fn pending(&self) -> &Arc<PendingWrites> {
        &self.pending
    }

    /// A copy of this transaction for a statement to finish with in the background.
    fn lend(&self) -> Lent {
        Lent {
            copy: CachedTransaction {
                inner: Arc::clone(&self.inner),
                released: Arc::clone(&self.released),
                cache: self.cache.clone(),
                pending: Arc::clone(&self.pending),
                database: Arc::clone(&self.database),
            },
            _given_back: GivenBack(Arc::clone(&self.released)),
        }
    }

    /// Runs a statement of this transaction (`run`, on a [`Lent`] copy) to its end, even if
    /// the caller stops waiting: a statement dropped half-way leaves the connection between
    /// two messages of the protocol (sqlx's MySQL driver then waits forever for an answer to
    /// a command it never finished sending, and the pool loses the connection), and a write
    /// the database runs must be recorded with what it really wrote. The next statement,
    /// `commit` or `rollback` waits for it, as the connection would.
    async fn to_the_end<T, W>(&self, run: impl FnOnce(Lent) -> W) -> Result<T, DbErr>
    where
        T: Send + 'static,
        W: Future<Output = Result<T, DbErr>> + Send + 'static,
    {
        detach::Detached::new(&self.cache, run(self.lend())).await
    }
}

/// A transaction's copy held by a statement finishing in the background; given back (and
/// `commit` or `rollback`, waiting to own the transaction, told) when dropped.
struct Lent {
    copy: CachedTransaction,
    /// Dropped after `copy` (fields drop in declaration order): tells once the copy is gone.
    _given_back: GivenBack,
}

impl std::ops::Deref for Lent {
    type Target = CachedTransaction;

    fn deref(&self) -> &CachedTransaction {
        &self.copy
    }
}

struct GivenBack(Arc<tokio::sync::Notify>);

impl Drop for GivenBack {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

/// The transaction `inner`, once no statement finishing in the background holds it.
async fn owned(
    mut inner: Arc<DatabaseTransaction>,
    released: &tokio::sync::Notify,
) -> DatabaseTransaction {
    loop {
        match Arc::try_unwrap(inner) {
            Ok(tx) => return tx,
            Err(shared) => {
                inner = shared;
                // A copy given back since the check left a permit: no wake-up is lost.
                released.notified().await;
            }
        }
    }
}

/// Called by `#[cached_query]` code with each connection argument: its database.
pub(crate) fn database_of<C: ?Sized>(conn: &C) -> Option<CallDatabase> {
    if let Some(db) = downcast_ref::<C, CachedConnection>(conn) {
        let settle = db
            .database
            .get()
            .is_none()
            .then(|| Arc::new(db.settle()) as Arc<dyn databases::SettleDatabase>);
        return Some(CallDatabase {
            id: Arc::clone(&db.database),
            settle,
        });
    }
    if let Some(tx) = downcast_ref::<C, CachedTransaction>(conn) {
        return Some(CallDatabase {
            id: Arc::clone(&tx.database),
            settle: None,
        });
    }
    None
}

/// The cache a `CachedConnection` or `CachedTransaction` argument invalidates.
pub(crate) fn cache_of<C: ?Sized>(conn: &C) -> Option<Cache> {
    if let Some(db) = downcast_ref::<C, CachedConnection>(conn) {
        return Some(db.cache.clone());
    }
    downcast_ref::<C, CachedTransaction>(conn).map(|tx| tx.cache.clone())
}

/// [`crate::orm::quick_read`] on SeaORM's types: the same answers as [`transaction_state`],
/// [`database_of`] and [`cache_of`] give a call, without their clones.
pub(crate) fn quick_read<C: ?Sized>(conn: &C) -> Option<Option<&Cache>> {
    if let Some(db) = downcast_ref::<C, CachedConnection>(conn) {
        if db.raw.may_be_open() {
            return None;
        }
        return match db.database.get() {
            Some(namespace) if namespace.key_prefix().is_none() => Some(Some(&db.cache)),
            _ => None,
        };
    }
    if downcast_ref::<C, CachedTransaction>(conn).is_some()
        || downcast_ref::<C, DatabaseTransaction>(conn).is_some()
    {
        return None;
    }
    Some(None)
}

/// Called by `#[cached_query]` code with each connection argument.
pub(crate) fn transaction_state<C: ?Sized>(conn: &C) -> TxState {
    if let Some(db) = downcast_ref::<C, CachedConnection>(conn) {
        // A raw transaction may be open on one of the pool's connections (`raw`).
        return if db.raw.may_be_open() {
            TxState::Untracked
        } else {
            TxState::None
        };
    }
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

/// The rows a query returned, for narrowing an `INSERT ... RETURNING` to them.
/// How errors name a SeaORM backend.
fn backend_name(backend: DbBackend) -> &'static str {
    database::dialect_of(backend).map_or("other", crate::orm::identity::Dialect::name)
}

fn returned_one(result: &Result<Option<QueryResult>, DbErr>) -> Option<&[QueryResult]> {
    result
        .as_ref()
        .ok()
        .and_then(Option::as_ref)
        .map(std::slice::from_ref)
}

fn returned_all(result: &Result<Vec<QueryResult>, DbErr>) -> Option<&[QueryResult]> {
    result.as_ref().ok().map(Vec::as_slice)
}

impl CachedConnection {
    /// Runs `statement` (a write: `tags` is what it writes, before any narrowing by the rows
    /// it returns; or a text with transaction control: `plan`) and then invalidates what it
    /// wrote. Both run to the end even if the caller stops waiting ([`detach`]): the database
    /// runs a statement it was sent anyway.
    ///
    /// Invalidates even when the statement failed: a multi-statement text may have written
    /// part of its work before the error, and a failed COMMIT's outcome is unknown.
    async fn write<T, R>(
        &self,
        tags: Vec<Tag>,
        plan: Option<raw::Plan>,
        statement: impl Future<Output = Result<T, DbErr>> + Send + 'static,
        narrow: R,
    ) -> Result<T, DbErr>
    where
        T: Send + 'static,
        R: FnOnce(&Result<T, DbErr>) -> Option<Vec<Tag>> + Send + 'static,
    {
        let (cache, raw, settle) = (self.cache.clone(), Arc::clone(&self.raw), self.settle());
        detach::Detached::new(&self.cache, async move {
            let result = statement.await;
            let mut tags = narrow(&result).unwrap_or(tags);
            tags.extend(raw.after(plan.as_ref(), &tags));
            if !tags.is_empty() {
                let namespace = settle.namespace().await;
                cache.invalidate_written_in(namespace.as_ref(), tags).await;
            }
            result
        })
        .await
    }

    /// Runs `statement`, which writes nothing the cache tracks, to its end even if the caller
    /// stops waiting ([`detach`]): dropped half-way, it would leave its pooled connection
    /// between two messages of the protocol (sqlx's MySQL driver then waits forever for an
    /// answer, and the pool loses the connection).
    async fn read<T: Send + 'static>(
        &self,
        statement: impl Future<Output = Result<T, DbErr>> + Send + 'static,
    ) -> Result<T, DbErr> {
        detach::Detached::new(&self.cache, statement).await
    }

    /// Inside an entry's computation, before a read is sent: reports what it reads (see
    /// `cache::observe`), in this connection's database.
    async fn observe(&self, text: &StatementText<'_>, sql: &str) {
        let Some(observation) = crate::store::observation() else {
            return;
        };
        let (mut tags, missed) = text.read_tags();
        if missed {
            // A table the catalog's last answer did not list (created since): ask again.
            self.settle().learn_keys().await;
            tags = text.read_tags().0;
        }
        match tags {
            Ok(tags) if tags.is_empty() => {}
            Ok(tags) => {
                let namespace = self.settle().namespace().await;
                let tags = databases::read_tags_in(namespace.as_ref(), tags);
                observation.audit(&tags, sql);
                observation.before_read(tags).await;
                if let Some(replica) = &self.replica {
                    replica.check(&self.inner, &observation).await;
                }
            }
            Err(why) => {
                observation
                    .unreadable(crate::orm::observed::unreadable(&why, sql))
                    .await
            }
        }
    }

    /// What a text writes and its transaction control; `None` for a plain read, which
    /// needs no bookkeeping.
    fn classify(text: &StatementText<'_>, sql: &str) -> Option<(Vec<Tag>, Option<raw::Plan>)> {
        // The catalog was asked before (`learn_keys`); a table its answer does not list
        // (created since, perhaps by this very text) is taken to have a guessed key and no
        // relation here, and asked about before the next statement.
        let tags = text.written_tags();
        let plan = raw::Plan::of(sql);
        if tags.is_none() && plan.is_none() {
            return None;
        }
        Some((tags.unwrap_or_default(), plan))
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for CachedConnection {
    fn get_database_backend(&self) -> DbBackend {
        self.inner.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        super::note_locking_read(&stmt.sql);
        self.learn_keys().await;
        let keys = &self.database.catalog;
        let Some((tags, plan)) = Self::classify(&StatementText::of(&stmt, keys), &stmt.sql) else {
            let inner = self.inner.clone();
            return self
                .read(async move { inner.execute_raw(stmt).await })
                .await;
        };
        let inner = self.inner.clone();
        // MySQL answers a write with the id AUTO_INCREMENT generated (see `generated`).
        let backend = self.inner.get_database_backend();
        let narrow_by = (backend == DbBackend::MySql).then(|| stmt.clone());
        let database = Arc::clone(&self.database);
        self.write(
            tags,
            plan,
            async move { inner.execute_raw(stmt).await },
            move |result| {
                StatementText::of(narrow_by.as_ref()?, &database.catalog)
                    .written_tags_generated(statement::generated(backend, result))
            },
        )
        .await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        super::note_locking_read(sql);
        self.learn_keys().await;
        let keys = &self.database.catalog;
        let Some((tags, plan)) = Self::classify(&StatementText::unprepared(sql, keys), sql) else {
            let (inner, sql) = (self.inner.clone(), sql.to_owned());
            return self
                .read(async move { inner.execute_unprepared(&sql).await })
                .await;
        };
        let (inner, sql) = (self.inner.clone(), sql.to_owned());
        let backend = self.inner.get_database_backend();
        let narrow_by = (backend == DbBackend::MySql).then(|| sql.clone());
        let database = Arc::clone(&self.database);
        self.write(
            tags,
            plan,
            async move { inner.execute_unprepared(&sql).await },
            move |result| {
                StatementText::unprepared(narrow_by.as_deref()?, &database.catalog)
                    .written_tags_generated(statement::generated(backend, result))
            },
        )
        .await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        super::note_locking_read(&stmt.sql);
        self.learn_keys().await;
        let keys = &self.database.catalog;
        let Some((tags, plan)) = Self::classify(&StatementText::of(&stmt, keys), &stmt.sql) else {
            self.observe(&StatementText::of(&stmt, keys), &stmt.sql)
                .await;
            let inner = self.inner.clone();
            return self
                .read(async move { inner.query_one_raw(stmt).await })
                .await;
        };
        let inner = self.inner.clone();
        let narrow_by = stmt.clone();
        let database = Arc::clone(&self.database);
        self.write(
            tags,
            plan,
            async move { inner.query_one_raw(stmt).await },
            move |result| {
                StatementText::of(&narrow_by, &database.catalog)
                    .written_tags_returning(returned_one(result))
            },
        )
        .await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        super::note_locking_read(&stmt.sql);
        self.learn_keys().await;
        let keys = &self.database.catalog;
        let Some((tags, plan)) = Self::classify(&StatementText::of(&stmt, keys), &stmt.sql) else {
            self.observe(&StatementText::of(&stmt, keys), &stmt.sql)
                .await;
            let inner = self.inner.clone();
            return self
                .read(async move { inner.query_all_raw(stmt).await })
                .await;
        };
        let inner = self.inner.clone();
        let narrow_by = stmt.clone();
        let database = Arc::clone(&self.database);
        self.write(
            tags,
            plan,
            async move { inner.query_all_raw(stmt).await },
            move |result| {
                StatementText::of(&narrow_by, &database.catalog)
                    .written_tags_returning(returned_all(result))
            },
        )
        .await
    }

    fn support_returning(&self) -> bool {
        self.inner.support_returning()
    }

    fn is_mock_connection(&self) -> bool {
        self.inner.is_mock_connection()
    }
}

impl CachedTransaction {
    /// Runs `statement`, the text `sql`. When the database commits the transaction before or
    /// while running it (a raw `COMMIT`, MySQL's implicit commits: DDL, `LOCK TABLES`...),
    /// what the transaction has written so far is committed: it is invalidated once the
    /// statement has returned, and from then on each write as it is made (on MySQL what
    /// follows runs outside any transaction), and again at the end, whether `commit` or
    /// `rollback`. The transaction is marked before the statement is sent: if the caller
    /// stops waiting, its end still invalidates everything.
    /// `early` is [`ends_early`](Self::ends_early) of the statement's text, asked before it
    /// is moved into `statement`.
    async fn statement<T>(
        &self,
        early: bool,
        statement: impl Future<Output = Result<T, DbErr>>,
    ) -> Result<T, DbErr> {
        if !early {
            return statement.await;
        }
        self.pending.mark_committed_early();
        tracing::debug!(
            "a statement that commits the open transaction, sent inside one: its writes are \
             invalidated now, and each later write at once"
        );
        let result = statement.await;
        invalidate_recorded(&self.cache, &self.database, &self.pending).await;
        result
    }

    /// Whether the database commits (or ends) the open transaction before, or while,
    /// running `sql`: transaction control in the text, a text whose control the dialects
    /// read differently, or on MySQL a statement with an implicit commit.
    fn ends_early(&self, sql: &str) -> bool {
        let Some(walk) = querycache_sql::transaction_walk(sql) else {
            return false;
        };
        let mysql = self.inner.get_database_backend() == DbBackend::MySql;
        if walk.implicit_commits_only() {
            // DDL: PostgreSQL and SQLite run it inside the transaction.
            return mysql;
        }
        walk.doubtful
            || walk.steps.iter().any(|step| match step {
                querycache_sql::Step::Control(control) => match control {
                    querycache_sql::Control::ImplicitCommit => mysql,
                    querycache_sql::Control::Neutral
                    | querycache_sql::Control::Savepoint(_)
                    | querycache_sql::Control::Release(_)
                    | querycache_sql::Control::RollbackTo(_) => false,
                    _ => true,
                },
                querycache_sql::Step::Statements(_) => false,
            })
    }

    /// Runs `stmt`, a statement whose result is not rows.
    async fn execute_now(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        super::note_locking_read(&stmt.sql);
        let early = self.ends_early(&stmt.sql);
        self.statement(early, async {
            let Some(tags) = StatementText::of(&stmt, &self.database.catalog).written_tags() else {
                return self.inner.execute_raw(stmt).await;
            };
            // MySQL answers a write with the id AUTO_INCREMENT generated (see `generated`).
            let backend = self.inner.get_database_backend();
            let narrow_by = (backend == DbBackend::MySql).then(|| stmt.clone());
            let narrow = |result: &_| {
                StatementText::of(narrow_by.as_ref()?, &self.database.catalog)
                    .written_tags_generated(statement::generated(backend, result))
            };
            self.write(tags, self.inner.execute_raw(stmt), narrow).await
        })
        .await
    }

    /// Runs `sql`, a text sent unprepared.
    async fn execute_unprepared_now(&self, sql: &str) -> Result<ExecResult, DbErr> {
        super::note_locking_read(sql);
        self.statement(self.ends_early(sql), async {
            let text = StatementText::unprepared(sql, &self.database.catalog);
            let Some(tags) = text.written_tags() else {
                return self.inner.execute_unprepared(sql).await;
            };
            let backend = self.inner.get_database_backend();
            let narrow =
                |result: &_| text.written_tags_generated(statement::generated(backend, result));
            self.write(tags, self.inner.execute_unprepared(sql), narrow)
                .await
        })
        .await
    }

    /// Runs `stmt`, a query that returns rows, with `run`: a read, or a write whose tags
    /// are narrowed to the rows it returns (`returned`).
    async fn query<T, F>(
        &self,
        stmt: Statement,
        run: impl Fn(Statement) -> F,
        returned: fn(&Result<T, DbErr>) -> Option<&[QueryResult]>,
    ) -> Result<T, DbErr>
    where
        F: Future<Output = Result<T, DbErr>>,
    {
        super::note_locking_read(&stmt.sql);
        let early = self.ends_early(&stmt.sql);
        self.statement(early, async {
            let Some(tags) = StatementText::of(&stmt, &self.database.catalog).written_tags() else {
                super::note_read_in_transaction(&stmt.sql);
                return run(stmt).await;
            };
            let text = StatementText::of(&stmt, &self.database.catalog);
            let narrow = |result: &_| text.written_tags_returning(returned(result));
            self.write(tags, run(stmt.clone()), narrow).await
        })
        .await
    }

    /// Runs `statement` (a write: `tags` is what it writes, before any narrowing by the rows
    /// it returns) and records what it wrote, for the outermost COMMIT to invalidate. If the
    /// caller stops waiting, the statement may still run in the transaction: `tags` are
    /// recorded then, when the future is dropped. In a transaction the database committed
    /// early (see [`statement`](Self::statement)), the write is also invalidated at once.
    async fn write<T>(
        &self,
        tags: Vec<Tag>,
        statement: impl Future<Output = Result<T, DbErr>>,
        narrow: impl FnOnce(&Result<T, DbErr>) -> Option<Vec<Tag>>,
    ) -> Result<T, DbErr> {
        let mut unfinished = RecordOnDrop {
            transaction: self,
            tags: Some(tags),
        };
        let result = statement.await;
        let tags = narrow(&result).or_else(|| unfinished.tags.take());
        let now = if self.pending.committed_early() {
            tags.clone()
        } else {
            None
        };
        unfinished.tags = tags;
        drop(unfinished);
        if let Some(tags) = now {
            self.cache
                .invalidate_written_in(self.database.get(), tags)
                .await;
        }
        result
    }

    /// Records `tags` as written by this transaction, with the tables they are declared to
    /// also write, so that reads in the transaction bypass the cache for those too.
    fn record(&self, tags: Vec<Tag>) {
        self.pending
            .record(&self.cache.with_table_dependencies(tags));
    }
}

/// Invalidates everything a transaction has recorded (`pending` and the levels enclosing
/// it), leaving it in place: the transaction's end invalidates it again.
async fn invalidate_recorded(cache: &Cache, database: &DatabaseId, pending: &PendingWrites) {
    let (written, explicit) = pending.tags_up();
    if !written.is_empty() {
        cache.invalidate_written_in(database.get(), written).await;
    }
    if !explicit.is_empty() {
        cache
            .invalidate_tags(databases::tags_in(database.get(), explicit))
            .await;
    }
}

/// Records a transaction's write when dropped: when the statement finished, or when the
/// caller stopped waiting for it (it may have run).
struct RecordOnDrop<'t> {
    transaction: &'t CachedTransaction,
    tags: Option<Vec<Tag>>,
}

impl Drop for RecordOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(tags) = self.tags.take() {
            self.transaction.record(tags);
        }
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for CachedTransaction {
    fn get_database_backend(&self) -> DbBackend {
        self.inner.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.to_the_end(|tx| async move { tx.execute_now(stmt).await })
            .await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let sql = sql.to_owned();
        self.to_the_end(|tx| async move { tx.execute_unprepared_now(&sql).await })
            .await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.to_the_end(|tx| async move {
            tx.query(stmt, |stmt| tx.inner.query_one_raw(stmt), returned_one)
                .await
        })
        .await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.to_the_end(|tx| async move {
            tx.query(stmt, |stmt| tx.inner.query_all_raw(stmt), returned_all)
                .await
        })
        .await
    }

    fn support_returning(&self) -> bool {
        self.inner.support_returning()
    }

    fn is_mock_connection(&self) -> bool {
        self.inner.is_mock_connection()
    }
}

#[async_trait::async_trait]
impl TransactionTrait for CachedConnection {
    type Transaction = CachedTransaction;

    async fn begin(&self) -> Result<CachedTransaction, DbErr> {
        self.begin_settled().await;
        Ok(self.wrap(self.inner.begin().await?))
    }

    async fn begin_with_config(
        &self,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<CachedTransaction, DbErr> {
        self.begin_settled().await;
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
        self.begin_settled().await;
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
        Ok(self.nest(TransactionTrait::begin(&*self.inner).await?))
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
