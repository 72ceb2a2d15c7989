//! Test fixtures: a freshly migrated database per test, seeded rows, a cache of its own.

#![allow(dead_code)]

#[path = "../../../examples/support/schema.rs"]
pub mod schema;

pub mod redis;
pub mod stores;

use std::time::Duration;

use querycache::Cache;
use querycache::orm::sea_orm::CachedConnection;
use sea_orm::{ActiveModelTrait, ConnectOptions, Database, DatabaseConnection, Set};

pub use schema::{song, user};

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

/// A throwaway SQLite database (a file in its own temporary directory, deleted on drop),
/// migrated, wrapped so that writes invalidate `cache`.
pub struct TestDb {
    /// The connection the code under test uses.
    pub db: CachedConnection,
    /// The cache it invalidates.
    pub cache: Cache,
    /// The same database, unwrapped: writes through it are invisible to the cache
    /// (stands for "another process").
    pub raw: DatabaseConnection,
    _dir: tempfile::TempDir,
    /// The private redis-server of a Redis-backed cache, stopped on drop.
    _server: Option<redis::RedisServer>,
}

impl TestDb {
    /// A fresh database and a fresh default cache.
    pub async fn new() -> TestDb {
        Self::with_cache(Cache::new()).await
    }

    /// A fresh database and a fresh cache on the store `kind` (`None`: no redis-server
    /// here, and the test may skip).
    pub async fn on(kind: stores::Kind) -> Option<TestDb> {
        let test_cache = stores::cache_with(kind, |b| b)?;
        let mut db = Self::with_cache(test_cache.cache.clone()).await;
        db._server = test_cache.server;
        Some(db)
    }

    /// A fresh database invalidating `cache`.
    pub async fn with_cache(cache: Cache) -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("test.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let mut options = ConnectOptions::new(url);
        options
            .max_connections(8)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .sqlx_logging(false);
        let raw = Database::connect(options).await.expect("open sqlite");
        // WAL lets readers run while a writer holds the lock, as a server database would.
        sea_orm::ConnectionTrait::execute_unprepared(
            &raw,
            "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=30000;",
        )
        .await
        .expect("pragmas");
        schema::migrate(&raw).await.expect("migrate");
        let db = CachedConnection::new(raw.clone(), cache.clone());
        TestDb {
            db,
            cache,
            raw,
            _dir: dir,
            _server: None,
        }
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
        .insert(&self.db)
        .await
        .expect("insert song")
    }
}

// TEMPORARY until the PostgreSQL harness lands (branch pg-suite).
pub mod diesel;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}
pub mod postgres {
    pub struct PgDatabase;
    impl PgDatabase {
        pub async fn create() -> Option<PgDatabase> {
            None
        }
        pub fn url(&self) -> &str {
            ""
        }
    }
}
