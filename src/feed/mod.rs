//! Change feeds: writes the application never sent (other services, `psql`, cron jobs,
//! migrations, triggers) reach the cache through the database's own record of commits.
//!
//! The ORM integrations invalidate every write the application sends, synchronously: a
//! request that wrote reads its own write. A change feed adds everything else, within a
//! measured bound (README, "Guarantees"):
//!
//! | [`FeedMode`] | database | how | needs |
//! | --- | --- | --- | --- |
//! | [`Logical`](FeedMode::Logical) | PostgreSQL | logical replication (`pgoutput`): a publication and a replication slot; row tags from every changed primary key | `wal_level = logical`, the `REPLICATION` attribute (or superuser), feature `feed-postgres` |
//! | [`Triggers`](FeedMode::Triggers) | PostgreSQL | statement-level triggers with transition tables that `NOTIFY` the changed keys, received with sqlx's `PgListener` | the right to create a function and triggers on the tables, feature `feed-postgres` |
//! | [`DataVersion`](FeedMode::DataVersion) | SQLite | `PRAGMA data_version` polled every [`interval`](ChangeFeed::interval): any commit by another connection bumps every model tag | feature `feed-sqlite` |
//! | [`Binlog`](FeedMode::Binlog) | MySQL, MariaDB | the binary log in row format, read as a replica reads it (see [`mysql`]); row tags from every changed integer primary key | `log_bin`, `binlog_format = ROW`, `REPLICATION SLAVE`, feature `feed-mysql` |
//!
//! # Nothing missed
//!
//! A feed applies a transaction's invalidations before it acknowledges it, so a consumer
//! that stops resumes where it stopped. When it cannot prove that it did (the slot was
//! dropped or recreated, it was away longer than [`max_gap`](ChangeFeed::max_gap), the stream
//! broke inside a transaction, a `LISTEN` connection was lost, the SQLite probe connection
//! was replaced), it invalidates every model tag (`model:#all`) before it goes on: fail
//! safe, counted in [`FeedStatus::gaps`] and logged at warn level.
//!
//! # One consumer per deployment
//!
//! With a store shared through Redis, one instance consumes the logical feed (it holds a
//! lease in Redis, renewed while it streams; another instance takes over within the
//! lease's time when it dies) and its invalidations reach every instance through the
//! invalidation channel, like any other. Its slot is persistent, and the position it
//! applied is recorded in Redis beside the entries. With the memory store every process
//! consumes the feed itself, through a temporary slot of its own that PostgreSQL drops when
//! the process goes away (a memory cache starts empty, so there is nothing to resume).
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> Result<(), querycache::Error> {
//! use querycache::Cache;
//! use querycache::feed::ChangeFeed;
//!
//! let cache = Cache::new();
//! let feed = ChangeFeed::logical("postgres://app@db/app").start(&cache).await?;
//! // ... serve; every commit from anywhere invalidates what it changed.
//! println!("{:?}", feed.status());
//! # Ok(()) }
//! ```

#[cfg(any(feature = "feed-postgres", feature = "feed-mysql"))]
mod apply;
mod config;
mod handle;
#[cfg(feature = "feed-mysql")]
pub mod mysql;
#[cfg(feature = "feed-postgres")]
pub mod postgres;
#[cfg(any(
    feature = "feed-postgres",
    feature = "feed-sqlite",
    feature = "feed-mysql"
))]
mod shared;
#[cfg(feature = "feed-sqlite")]
mod sqlite;
#[cfg(any(feature = "feed-postgres", feature = "feed-mysql"))]
mod url;

#[cfg(any(feature = "feed-postgres", feature = "feed-mysql"))]
pub(crate) use apply::Changes;
pub use config::{ChangeFeed, FeedMode};
pub(crate) use handle::Reporter;
pub use handle::{ChangeFeedHandle, FeedState, FeedStatus};

impl ChangeFeed {
    /// Starts following the database on `cache`. The server is checked first: what it
    /// lacks (the `REPLICATION` privilege, `wal_level = logical`, a publication) comes
    /// back as an error that says so. Then the feed runs in a task of its own until its
    /// handle is dropped or [stopped](ChangeFeedHandle::stop), reconnecting by itself.
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() -> Result<(), querycache::Error> {
    /// let cache = querycache::Cache::new();
    /// let feed = querycache::feed::ChangeFeed::logical("postgres://app@db/app")
    ///     .slot("app_cache")
    ///     .start(&cache)
    ///     .await?;
    /// # drop(feed); Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for settings that cannot work (naming the
    /// variable), [`Error::ChangeFeed`](crate::Error::ChangeFeed) when the database cannot
    /// be followed, saying what is missing.
    pub async fn start(self, cache: &crate::Cache) -> Result<ChangeFeedHandle, crate::Error> {
        self.validate_to_start()?;
        match self.mode {
            #[cfg(feature = "feed-postgres")]
            FeedMode::Logical => postgres::logical::start(self, cache).await,
            #[cfg(feature = "feed-postgres")]
            FeedMode::Triggers => postgres::listen::start(self, cache).await,
            #[cfg(feature = "feed-sqlite")]
            FeedMode::DataVersion => sqlite::start(self, cache).await,
            #[cfg(feature = "feed-mysql")]
            FeedMode::Binlog => mysql::binlog::start(self, cache).await,
            _ => {
                let _ = cache;
                Err(crate::Error::config(
                    config::MODE_VAR,
                    self.mode,
                    "no feed to start (off, or not built in)",
                ))
            }
        }
    }
}

impl crate::Cache {
    /// Starts the change feed this cache was configured with
    /// ([`CacheBuilder::change_feed`](crate::config::CacheBuilder::change_feed), or
    /// `CACHE_CHANGE_FEED` through [`Cache::from_env`](crate::Cache::from_env)); `None` when
    /// none is. See [`ChangeFeed::start`].
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), querycache::Error> {
    /// let cache = querycache::Cache::new();
    /// assert!(cache.start_change_feed().await?.is_none());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`ChangeFeed::start`].
    pub async fn start_change_feed(&self) -> Result<Option<ChangeFeedHandle>, crate::Error> {
        match self.config().change_feed() {
            Some(feed) => feed.clone().start(self).await.map(Some),
            None => Ok(None),
        }
    }
}
