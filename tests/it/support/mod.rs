//! Test fixtures: a freshly migrated database per test, seeded rows, a cache of its own.

#![allow(dead_code)]

#[path = "../../../examples/support/schema.rs"]
pub mod schema;

pub mod chromium;
#[cfg(feature = "diesel")]
pub mod diesel;
#[cfg(feature = "axum")]
pub mod http;
pub mod mariadb_server;
pub mod netns;
pub mod pg_server;
pub mod ports;
pub mod proxy;
pub mod redis;
pub mod services;
#[cfg(all(feature = "axum", feature = "sea-orm"))]
pub mod songs;
pub mod stores;
pub mod throwaway;

use std::time::Duration;

use querycache::Cache;
use querycache::orm::sea_orm::CachedConnection;
use sea_orm::{
    ActiveModelTrait, ConnectOptions, Database, DatabaseConnection, DbBackend, Set, Statement,
    Value,
};

pub use schema::{song, user};

/// Polls `check` every millisecond until it holds; panics with `what` after `limit`.
/// Returns how long it took.
pub async fn until(limit: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let started = std::time::Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Runs `work` until it finishes or `after` has passed, whichever is first; then drops it.
/// `None`: it was cut short, as a timeout, `select!` or a dropped request cuts a write.
/// `Duration::ZERO` cuts right after the first poll. (Tokio's own timers tick by the
/// millisecond, and a SQLite write takes less: the deadline comes from a blocking thread's
/// sleep instead, so the cut falls at any point. `work` is polled first, so it has always
/// started.)
pub async fn cut_after<T>(
    after: Duration,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    if after.is_zero() {
        // Cut right after the first poll: the statement was just handed to the driver.
        let mut work = std::pin::pin!(work);
        return std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match work.as_mut().poll(cx) {
                std::task::Poll::Ready(done) => Some(done),
                std::task::Poll::Pending => None,
            })
        })
        .await;
    }
    let deadline = tokio::task::spawn_blocking(move || std::thread::sleep(after));
    tokio::select! {
        biased;
        done = work => Some(done),
        _ = deadline => None,
    }
}

/// Waits until a tiered cache hears the other instances' invalidations.
pub async fn subscribed(cache: &Cache) {
    until(
        Duration::from_secs(10),
        "invalidation channel subscribed",
        async || cache.health().await.invalidation_channel == Some(true),
    )
    .await;
}

/// Stores `n` entries `list:<i>` tagged `model:songs`.
pub async fn fill(cache: &Cache, n: usize) {
    let options = querycache::EntryOptions::new().tag(querycache::Tag::model("songs"));
    for i in 0..n {
        cache
            .set(&format!("list:{i}"), i as u64, options.clone())
            .await
            .unwrap();
    }
}

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// A SQLite file of the test's own.
    Sqlite,
    /// A database of the test's own on the shared PostgreSQL server (see [`throwaway`]).
    Postgres,
    /// A database of the test's own on the shared MariaDB (or MySQL) server (see
    /// [`throwaway`]).
    MySql,
}

impl Db {
    /// The SeaORM backend of this database.
    pub fn backend(self) -> DbBackend {
        match self {
            Db::Sqlite => DbBackend::Sqlite,
            Db::Postgres => DbBackend::Postgres,
            Db::MySql => DbBackend::MySql,
        }
    }

    /// `sql` as written with `?` placeholders, in this database's placeholder style (`$1`,
    /// `$2`, ... on PostgreSQL). The text must not contain `?` anywhere else.
    pub fn sql(self, sql: &str) -> String {
        match self {
            Db::Sqlite | Db::MySql => sql.to_owned(),
            Db::Postgres => {
                let mut out = String::with_capacity(sql.len() + 8);
                let mut n = 0;
                for ch in sql.chars() {
                    if ch == '?' {
                        n += 1;
                        out.push_str(&format!("${n}"));
                    } else {
                        out.push(ch);
                    }
                }
                out
            }
        }
    }

    /// A statement for this database: `sql` written with `?` placeholders (see [`Db::sql`]),
    /// bound to `values`.
    pub fn statement(self, sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
        Statement::from_sql_and_values(self.backend(), self.sql(sql), values)
    }

    /// An unbound statement for this database.
    pub fn text(self, sql: &str) -> Statement {
        Statement::from_string(self.backend(), sql)
    }
}

/// The pool every test database is opened with.
fn pool_options(url: String) -> ConnectOptions {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(8)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false)
        // A throwaway SQLite file needs no fsync (as the private PostgreSQL servers run
        // with `synchronous_commit = off`): beside a busy build's disk writes, a commit's
        // fsync took seconds, and latency bounds measured the disk, not the cache.
        .map_sqlx_sqlite_opts(|sqlite| {
            sqlite
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Off)
                .busy_timeout(Duration::from_secs(30))
        });
    options
}

/// A throwaway database, migrated, wrapped so that writes invalidate `cache`: a SQLite file
/// in its own temporary directory (deleted on drop), or a PostgreSQL database of its own
/// (dropped on drop).
pub struct TestDb {
    /// The connection the code under test uses.
    pub db: CachedConnection,
    /// The cache it invalidates.
    pub cache: Cache,
    /// The same database, unwrapped: writes through it are invisible to the cache
    /// (stands for "another process").
    pub raw: DatabaseConnection,
    /// Which database this is.
    pub kind: Db,
    _dir: Option<tempfile::TempDir>,
    /// The private redis-server of a Redis-backed cache, stopped on drop.
    _server: Option<redis::RedisServer>,
    /// The server's database (PostgreSQL or MariaDB), dropped after the connections above.
    _database: Option<throwaway::ThrowawayDb>,
}

impl TestDb {
    /// A fresh SQLite database and a fresh default cache.
    pub async fn new() -> TestDb {
        Self::with_cache(Cache::new()).await
    }

    /// A fresh SQLite database and a fresh cache on the store `kind` (`None`: no
    /// redis-server here, and the test may skip).
    pub async fn on(kind: stores::Kind) -> Option<TestDb> {
        Self::on_store(Db::Sqlite, kind).await
    }

    /// A fresh `db` database and a fresh cache on the store `kind` (`None`: the store's or
    /// the database's server is not here, and the test may skip).
    pub async fn on_store(db: Db, kind: stores::Kind) -> Option<TestDb> {
        let test_cache = stores::cache_with(kind, |b| b)?;
        let mut db = Self::create(db, test_cache.cache.clone()).await?;
        db._server = test_cache.server;
        Some(db)
    }

    /// A fresh `db` database and a fresh default cache (`None`: no PostgreSQL here, and the
    /// test may skip).
    pub async fn fresh(db: Db) -> Option<TestDb> {
        Self::create(db, Cache::new()).await
    }

    /// A fresh `db` database invalidating `cache` (`None`: no PostgreSQL here, and the test
    /// may skip).
    pub async fn create(db: Db, cache: Cache) -> Option<TestDb> {
        match db {
            Db::Sqlite => Some(Self::with_cache(cache).await),
            Db::Postgres => Self::server_in(throwaway::ThrowawayDb::create().await?, cache).await,
            Db::MySql => Self::server_in(throwaway::ThrowawayDb::mysql().await?, cache).await,
        }
    }

    /// A fresh PostgreSQL database on the server of the maintenance database `admin_url`
    /// (a private server, see `pg_server`), invalidating `cache`.
    pub async fn postgres_at(admin_url: String, cache: Cache) -> Option<TestDb> {
        Self::server_in(throwaway::PgDatabase::create_at(admin_url).await?, cache).await
    }

    /// A fresh MariaDB database on the server of the maintenance URL `admin_url` (a
    /// private server, see `mariadb_server`), invalidating `cache`.
    pub async fn mysql_at(admin_url: String, cache: Cache) -> Option<TestDb> {
        Self::server_in(throwaway::ThrowawayDb::mysql_at(admin_url).await?, cache).await
    }

    /// A fresh database of a server (PostgreSQL or MariaDB), migrated, invalidating `cache`.
    async fn server_in(database: throwaway::ThrowawayDb, cache: Cache) -> Option<TestDb> {
        let raw = Database::connect(pool_options(database.url().to_owned()))
            .await
            .unwrap_or_else(|err| panic!("open {}: {err}", database.name()));
        schema::migrate(&raw).await.expect("migrate");
        let db = CachedConnection::new(raw.clone(), cache.clone());
        Some(TestDb {
            db,
            cache,
            raw,
            kind: match database.server() {
                throwaway::Server::Postgres => Db::Postgres,
                throwaway::Server::MySql => Db::MySql,
            },
            _dir: None,
            _server: None,
            _database: Some(database),
        })
    }

    /// A fresh SQLite database invalidating `cache`.
    pub async fn with_cache(cache: Cache) -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("test.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let raw = Database::connect(pool_options(url))
            .await
            .expect("open sqlite");
        // WAL lets readers run while a writer holds the lock, as a server database would.
        sea_orm::ConnectionTrait::execute_unprepared(&raw, "PRAGMA journal_mode=WAL;")
            .await
            .expect("pragmas");
        schema::migrate(&raw).await.expect("migrate");
        let db = CachedConnection::new(raw.clone(), cache.clone());
        TestDb {
            db,
            cache,
            raw,
            kind: Db::Sqlite,
            _dir: Some(dir),
            _server: None,
            _database: None,
        }
    }

    /// The URL of the private redis-server behind a Redis-backed cache.
    pub fn redis_url(&self) -> Option<String> {
        self._server.as_ref().map(redis::RedisServer::url)
    }

    /// The same database as Diesel names it: the SQLite file's path, or the server's URL.
    pub fn diesel_url(&self) -> String {
        match (&self._dir, &self._database) {
            (_, Some(database)) => database.url().to_owned(),
            (Some(dir), None) => dir.path().join("test.db").display().to_string(),
            (None, None) => unreachable!("a TestDb is a SQLite file or a server's database"),
        }
    }

    /// The database's name on its server (the last segment of [`diesel_url`](Self::diesel_url)).
    pub fn server_database_name(&self) -> String {
        self.diesel_url()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// Another pool on the same database, as SeaORM opens it.
    pub async fn another_pool(&self) -> DatabaseConnection {
        self.pool_of(8).await
    }

    /// Another pool on the same database, of at most `connections` connections.
    pub async fn pool_of(&self, connections: u32) -> DatabaseConnection {
        let url = match self.kind {
            Db::Sqlite => format!("sqlite://{}?mode=rwc", self.diesel_url()),
            Db::Postgres | Db::MySql => self.diesel_url(),
        };
        let mut options = pool_options(url);
        options.max_connections(connections);
        Database::connect(options)
            .await
            .expect("another pool on the test database")
    }

    /// A statement for this database (see [`Db::statement`]).
    pub fn statement(&self, sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
        self.kind.statement(sql, values)
    }

    /// Inserts a user through the cached connection.
    pub async fn user(&self, name: &str) -> user::Model {
        user::ActiveModel {
            name: Set(name.to_owned()),
            email: Set(format!("{name}@example.test")),
            created_at: Set(chrono::Utc::now()),
            ..Default::default()
        }
        .insert(&self.db)
        .await
        .expect("insert user")
    }

    /// Inserts a song by `author` through the cached connection.
    pub async fn song(&self, author: &user::Model, title: &str) -> song::Model {
        new_song(author, title)
            .insert(&self.db)
            .await
            .expect("insert song")
    }
}

/// A new song by `author` (not inserted): artist "`title` artist", lyrics "lyrics of `title`".
pub fn new_song(author: &user::Model, title: &str) -> song::ActiveModel {
    let now = chrono::Utc::now();
    song::ActiveModel {
        title: Set(title.to_owned()),
        artist: Set(format!("{title} artist")),
        author_id: Set(author.id),
        content: Set(format!("lyrics of {title}")),
        archived: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
}
