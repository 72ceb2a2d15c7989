//! Change feeds (`querycache::feed`): writes the application never sent — `psql` in a
//! separate process, here — reach the cache through the database's own change stream.
//!
//! PostgreSQL tests run on a private server of their own (`support::pg_server`, with
//! `wal_level = logical`), so that they may create slots and publications, end backends and
//! restart the server; the SQLite test writes the file from a separate `python3` process.

#[cfg(feature = "feed-mysql")]
mod binlog;
mod logical;
mod sqlite;
mod startup;
mod triggers;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use querycache::feed::{ChangeFeedHandle, FeedState};
use querycache::orm::sea_orm::CachedConnection;
use querycache::{Cache, cached_query};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, QueryOrder, Statement};

use crate::support::mariadb_server::MariadbServer;
use crate::support::pg_server::PgServer;
use crate::support::redis::RedisServer;
use crate::support::stores::{self, Kind};
use crate::support::{TestDb, song, until, user};

/// How long a test waits for an outside write to show: generous, for a loaded machine
/// (the bound itself is measured by `benches/feed_bound.rs`, not here).
pub const SEEN: Duration = Duration::from_secs(20);

/// A song's card: its title and its author's name (a join), nothing declared.
#[cached_query(ttl = "1h")]
pub async fn card(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
    id: i32,
) -> Result<Option<(String, String)>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    let found = song::Entity::find_by_id(id)
        .find_also_related(user::Entity)
        .one(db)
        .await?;
    Ok(found.map(|(song, author)| (song.title, author.map(|a| a.name).unwrap_or_default())))
}

/// Every song title, nothing declared.
#[cached_query(ttl = "1h")]
pub async fn titles(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
) -> Result<Vec<String>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    let songs = song::Entity::find()
        .order_by_asc(song::Column::Id)
        .all(db)
        .await?;
    Ok(songs.into_iter().map(|s| s.title).collect())
}

/// One text column of `sql` (raw SQL, nothing declared), first row.
#[cached_query(ttl = "1h")]
pub async fn scalar(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
    sql: String,
) -> Result<Option<String>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?;
    Ok(row.and_then(|r| r.try_get_by_index::<Option<String>>(0).ok().flatten()))
}

/// A private server (PostgreSQL by default, or MariaDB), a database on it migrated with
/// the songs schema, and a cache on `kind` in front of it. Fields drop in order:
/// connections, database, then servers.
pub struct Followed<S = PgServer> {
    pub t: TestDb,
    pub server: Arc<S>,
    pub redis: Option<RedisServer>,
    pub kind: Kind,
}

impl Followed<MariadbServer> {
    /// On a private MariaDB server of its own, binlog on in row format (`None`: a server is
    /// missing and the test skips).
    pub async fn mariadb(kind: Kind) -> Option<Followed<MariadbServer>> {
        let server = Arc::new(start_mariadb(&[]).await?);
        let tc = stores::cache_with(kind, |b| b)?;
        let t = TestDb::mysql_at(server.url("mysql"), tc.cache.clone()).await?;
        Some(Followed {
            t,
            server,
            redis: tc.server,
            kind,
        })
    }

    /// Runs `sql` in a separate `mariadb` client process on the database.
    pub fn sql(&self, sql: &str) -> String {
        let (server, db, sql) = (self.server.clone(), self.name(), sql.to_owned());
        tokio::task::block_in_place(move || server.sql(Some(&db), &sql))
    }
}

/// Starts a private MariaDB server with extra `mariadbd` options off the runtime's threads.
pub async fn start_mariadb(args: &[&str]) -> Option<MariadbServer> {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        MariadbServer::start_with(&args)
    })
    .await
    .expect("start a private MariaDB")
}

impl Followed<PgServer> {
    /// Runs `sql` in a separate `psql` process on the database.
    pub fn psql(&self, sql: &str) -> String {
        let (server, db, sql) = (self.server.clone(), self.name(), sql.to_owned());
        tokio::task::block_in_place(move || server.psql(&db, &sql))
    }

    /// `None`: a server is missing and the test skips.
    pub async fn new(kind: Kind) -> Option<Followed> {
        let server = Arc::new(start_server(&[]).await?);
        Self::on(server, kind).await
    }

    /// On an already started `server`.
    pub async fn on(server: Arc<PgServer>, kind: Kind) -> Option<Followed> {
        let tc = stores::cache_with(kind, |b| b)?;
        let t = TestDb::postgres_at(server.url("postgres"), tc.cache.clone()).await?;
        Some(Followed {
            t,
            server,
            redis: tc.server,
            kind,
        })
    }
}

impl<S> Followed<S> {
    /// Another instance: a cache of its own on the same store (the same Redis, if any) and
    /// a connection of its own to the same database.
    pub async fn instance(&self) -> (Cache, CachedConnection) {
        let cache = match &self.redis {
            Some(redis) => Cache::builder()
                .redis_url(redis.url())
                .store(if self.kind == Kind::Redis {
                    querycache::config::StoreKind::Redis
                } else {
                    querycache::config::StoreKind::Tiered
                })
                .build()
                .unwrap(),
            None => Cache::new(),
        };
        let db = CachedConnection::new(self.t.another_pool().await, cache.clone());
        (cache, db)
    }

    /// The database's URL.
    pub fn url(&self) -> String {
        self.t.diesel_url()
    }

    /// The database's name on the server.
    pub fn name(&self) -> String {
        self.url().rsplit('/').next().unwrap_or_default().to_owned()
    }
}

/// Starts a private server with `settings` (see `PgServer::start_with`) off the runtime's
/// threads.
pub async fn start_server(settings: &[(&str, &str)]) -> Option<PgServer> {
    let settings: Vec<(String, String)> = settings
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let pairs: Vec<(&str, &str)> = settings
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        PgServer::start_with(&pairs)
    })
    .await
    .expect("start a private PostgreSQL")
}

/// Waits until `feed` reports `state`.
pub async fn reaches(feed: &ChangeFeedHandle, state: FeedState) {
    until(SEEN, &format!("the feed reaches {state:?}"), async || {
        feed.status().state == state
    })
    .await;
}

/// `f()` until it returns `want`, within [`SEEN`].
pub async fn shows<T: PartialEq + std::fmt::Debug>(
    what: &str,
    want: T,
    mut f: impl AsyncFnMut() -> T,
) {
    let mut last = None;
    let waited = tokio::time::timeout(SEEN, async {
        loop {
            let got = f().await;
            if got == want {
                return;
            }
            last = Some(got);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "{what}: still {last:?} after {SEEN:?}, want {want:?}"
    );
}
