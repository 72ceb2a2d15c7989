//! Read replicas that lag (issue 27, item 2): a computation that reads a PostgreSQL
//! streaming replica through a connection declared with `CachedConnection::replica_of`
//! stores its value only if the replica had replayed the primary's WAL as far as the
//! versions recorded before its statement stand for.
//!
//! A real streaming replica (`support::pg_server::PgServer::start_with_replica`:
//! `pg_basebackup -R`, hot standby), made to lag for sure with `pg_wal_replay_pause()`.
//! Each test returns early (passes) without PostgreSQL's binaries, unless
//! `QUERYCACHE_REQUIRE_SERVICES=1`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use querycache::orm::sea_orm::CachedConnection;
use querycache::{Cache, CacheConfig, EntryOptions, Tag};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

use crate::support::pg_server::PgServer;
use crate::support::until;

/// A primary with a database holding `songs (1, 'v1')`, and its replica, caught up.
struct Pair {
    primary: PgServer,
    replica: PgServer,
    db: String,
}

impl Pair {
    async fn start() -> Option<Pair> {
        tokio::task::spawn_blocking(|| {
            let (primary, replica) = PgServer::start_with_replica(&[])?;
            let db = primary.create_database();
            primary.psql(
                &db,
                "CREATE TABLE songs (id int PRIMARY KEY, title text NOT NULL);\n\
                 INSERT INTO songs VALUES (1, 'v1');",
            );
            replica.wait_replayed(&primary);
            Some(Pair {
                primary,
                replica,
                db,
            })
        })
        .await
        .expect("starting the servers panicked")
    }

    /// A cache with `replica_wait`, a connection to the primary and one to the replica
    /// (declared a replica of it when `declared`).
    async fn connections(
        &self,
        replica_wait: Duration,
        declared: bool,
    ) -> (Cache, CachedConnection, CachedConnection) {
        let config = CacheConfig::builder()
            .replica_wait(replica_wait)
            .build()
            .expect("config");
        let cache = Cache::with_config(config);
        let primary = CachedConnection::new(
            Database::connect(self.primary.url(&self.db))
                .await
                .expect("primary"),
            cache.clone(),
        );
        let replica = CachedConnection::new(
            Database::connect(self.replica.url(&self.db))
                .await
                .expect("replica"),
            cache.clone(),
        );
        if declared {
            let replica = replica.replica_of(&primary).expect("a PostgreSQL replica");
            return (cache, primary, replica);
        }
        // Undeclared, the replica would be another database in the cache (it listens on
        // another port), which the primary's writes never invalidate: named alike, they
        // share keys and tags, as a replica on the primary's port would.
        let name = |conn: CachedConnection| conn.database("songs").expect("a valid name");
        (cache, name(primary), name(replica))
    }

    /// Pauses the replica's replay, and waits until it is paused.
    async fn pause_replay(&self) {
        self.replica
            .psql("postgres", "SELECT pg_wal_replay_pause()");
        until(Duration::from_secs(10), "replay paused", async || {
            self.replica
                .psql("postgres", "SELECT pg_get_wal_replay_pause_state()")
                == "paused"
        })
        .await;
    }
}

/// The cached read of song 1's title through `conn`, counting its computations.
async fn title(cache: &Cache, conn: &CachedConnection, computed: &AtomicUsize) -> String {
    title_in("songs", cache, conn, computed).await
}

/// The cached read of row 1's title in `table` through `conn`, counting its computations.
async fn title_in(
    table: &str,
    cache: &Cache,
    conn: &CachedConnection,
    computed: &AtomicUsize,
) -> String {
    let value = cache
        .get_or_compute(&format!("{table}:1:title"), EntryOptions::new(), || async {
            computed.fetch_add(1, Ordering::SeqCst);
            let row = conn
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    format!("SELECT title FROM {table} WHERE id = 1"),
                ))
                .await
                .expect("the read")
                .expect("row 1");
            row.try_get::<String>("", "title").expect("title")
        })
        .await;
    (*value).clone()
}

/// The race, on two caches at once: one reads the replica through a declared connection,
/// the other through an undeclared one. While the replica's replay is paused, a write on
/// the primary invalidates both; each recomputes from the replica and gets the pre-write
/// row. The undeclared one caches it, and serves it as a hit once the replica has caught
/// up: the stale read this feature exists to prevent. The declared one answers it uncached
/// (counted), and caches the new row once the replica has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_replica_never_has_its_pre_write_rows_cached() {
    let Some(pair) = Pair::start().await else {
        return;
    };
    let (cache, primary, replica) = pair.connections(Duration::ZERO, true).await;
    let (plain_cache, plain_primary, plain_replica) = pair.connections(Duration::ZERO, false).await;
    let (computed, plain_computed) = (AtomicUsize::new(0), AtomicUsize::new(0));

    // Caught up: both cache what they read, and hit.
    for _ in 0..2 {
        assert_eq!(title(&cache, &replica, &computed).await, "v1");
        assert_eq!(
            title(&plain_cache, &plain_replica, &plain_computed).await,
            "v1"
        );
    }
    assert_eq!(computed.load(Ordering::SeqCst), 1, "the second read hit");
    assert_eq!(plain_computed.load(Ordering::SeqCst), 1);

    pair.pause_replay().await;
    for conn in [&primary, &plain_primary] {
        conn.execute_unprepared("UPDATE songs SET title = 'v2' WHERE id = 1")
            .await
            .expect("the write");
    }

    // The writes invalidated what was read through the replica (it shares the primary's
    // database in the cache): both recompute, and the paused replica answers 'v1'.
    assert_eq!(title(&cache, &replica, &computed).await, "v1");
    assert_eq!(computed.load(Ordering::SeqCst), 2);
    assert_eq!(
        cache.stats().replica_behind,
        1,
        "the declared replica's lag was seen"
    );
    assert_eq!(
        title(&plain_cache, &plain_replica, &plain_computed).await,
        "v1"
    );
    assert_eq!(plain_computed.load(Ordering::SeqCst), 2);
    assert_eq!(plain_cache.stats().replica_behind, 0);
    // Not stored: the next read computes again (and still sees the paused replica).
    assert_eq!(title(&cache, &replica, &computed).await, "v1");
    assert_eq!(computed.load(Ordering::SeqCst), 3);

    pair.replica
        .psql("postgres", "SELECT pg_wal_replay_resume()");
    tokio::task::block_in_place(|| pair.replica.wait_replayed(&pair.primary));

    // The replica has the write now.
    assert_eq!(title(&cache, &replica, &computed).await, "v2");
    assert_eq!(title(&cache, &replica, &computed).await, "v2");
    assert_eq!(
        computed.load(Ordering::SeqCst),
        4,
        "caught up: stored, then a hit"
    );
    assert_eq!(cache.stats().replica_behind, 2);
    // Undeclared, the pre-write row was cached under the post-write versions.
    assert_eq!(
        title(&plain_cache, &plain_replica, &plain_computed).await,
        "v1",
        "the race the declaration closes is real: an undeclared replica's stale row is served as a hit"
    );
    assert_eq!(plain_computed.load(Ordering::SeqCst), 2);
}

/// With `CACHE_REPLICA_WAIT_MS`, a computation waits for the replica to replay the
/// primary's position, and then stores what it read: the write, not the row before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_the_replay_stores_the_written_row() {
    let Some(pair) = Pair::start().await else {
        return;
    };
    let (cache, primary, replica) = pair.connections(Duration::from_secs(30), true).await;
    let computed = AtomicUsize::new(0);
    assert_eq!(title(&cache, &replica, &computed).await, "v1");

    pair.pause_replay().await;
    primary
        .execute_unprepared("UPDATE songs SET title = 'v2' WHERE id = 1")
        .await
        .expect("the write");
    let written_at = pair.replica.psql("postgres", "SELECT clock_timestamp()");

    // Resumes the replay once the computation is seen asking the replica how far it got.
    let pair = Arc::new(pair);
    let resumer = {
        let pair = Arc::clone(&pair);
        tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            let waiting = format!(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_last_wal_replay_lsn%' \
                 AND pid <> pg_backend_pid() AND query_start > '{written_at}'"
            );
            while pair.replica.psql("postgres", &waiting) == "0" {
                assert!(
                    Instant::now() < deadline,
                    "the computation was not seen waiting for the replica within 20 s"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            pair.replica
                .psql("postgres", "SELECT pg_wal_replay_resume()");
        })
    };
    assert_eq!(
        title(&cache, &replica, &computed).await,
        "v2",
        "the statement ran once the replica had the write"
    );
    resumer.await.expect("the resumer");
    assert_eq!(title(&cache, &replica, &computed).await, "v2");
    assert_eq!(
        computed.load(Ordering::SeqCst),
        2,
        "stored: the last read hit"
    );
    assert_eq!(cache.stats().replica_behind, 0);
}

/// A write the application never sent (psql on the primary) is covered too: the
/// primary's position counts every commit. Here it is invalidated by hand, as a change
/// feed would after the commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_from_outside_the_application_is_covered_too() {
    let Some(pair) = Pair::start().await else {
        return;
    };
    let (cache, _primary, replica) = pair.connections(Duration::ZERO, true).await;
    let computed = AtomicUsize::new(0);
    assert_eq!(title(&cache, &replica, &computed).await, "v1");
    pair.pause_replay().await;
    pair.primary
        .psql(&pair.db, "UPDATE songs SET title = 'v3' WHERE id = 1");
    cache
        .invalidate_tags([Tag::model("songs"), Tag::row("songs", 1)])
        .await;
    assert_eq!(title(&cache, &replica, &computed).await, "v1");
    assert_eq!(cache.stats().replica_behind, 1);
    assert_eq!(title(&cache, &replica, &computed).await, "v1");
    assert_eq!(computed.load(Ordering::SeqCst), 3, "never stored");
}

/// A connection declared a replica of a server that is not in recovery (a replica
/// promoted since, or the primary itself) reads current rows: its values are stored as
/// usual, and nothing is counted. On the shared server, in a throwaway database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_not_in_recovery_is_read_as_current() {
    let Some(t) = crate::support::TestDb::fresh(crate::support::Db::Postgres).await else {
        return;
    };
    t.raw
        .execute_unprepared(
            "CREATE TABLE songs_not_replicated (id int PRIMARY KEY, title text NOT NULL); \
             INSERT INTO songs_not_replicated VALUES (1, 'v1')",
        )
        .await
        .expect("the schema");
    let replica = CachedConnection::new(t.another_pool().await, t.cache.clone())
        .replica_of(&t.db)
        .expect("a PostgreSQL connection");
    let computed = AtomicUsize::new(0);
    for _ in 0..2 {
        let title = title_in("songs_not_replicated", &t.cache, &replica, &computed).await;
        assert_eq!(title, "v1");
    }
    assert_eq!(computed.load(Ordering::SeqCst), 1, "stored, then a hit");
    assert_eq!(t.cache.stats().replica_behind, 0);
}
