//! Issue 23, item 6: what the change feed's second bump of the application's own writes
//! costs. A write through the ORM invalidates its rows when it returns; the logical feed
//! then sees the same commit and bumps the same tags again a few milliseconds later, so a
//! read of that row in between recomputes an entry that the second bump throws away.
//!
//! The songs workload of question 6 (BENCHMARKS.md): 2 tasks, 95 % reads and 5 % writes over
//! 10 000 songs with Zipf-distributed ids (s = 1), here against a real PostgreSQL (a private
//! server with `wal_level = logical`): reads are `#[cached_query]` by-id reads (observed row
//! tags), writes are `UPDATE songs ... WHERE id = ?` through the `CachedConnection`. The same
//! run with the feed off and on; the difference in misses, as a share of reads, is the cost.
//!
//! Run: `cargo bench --bench feed_own_writes --features feed-postgres,sea-orm` (about 40 s;
//! `cargo test --benches`, as CI runs every bench once, does 2 s per mode).

mod support {
    #![allow(dead_code)]
    #[path = "../../tests/it/support/pg_server.rs"]
    pub mod pg_server;
    #[path = "../../tests/it/support/ports.rs"]
    pub mod ports;
    #[path = "../../tests/it/support/services.rs"]
    pub mod services;
}

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use querycache::feed::{ChangeFeed, FeedState};
use querycache::orm::sea_orm::CachedConnection;
use querycache::{Cache, cached_query};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, Database, DbBackend, DbErr, Statement};
use support::pg_server::PgServer;

const SONGS: u32 = 10_000;

/// One song's title, read by id through the cached connection (nothing declared: the read
/// depends on the row it pinned).
#[cached_query(ttl = "1h")]
async fn title(db: &CachedConnection, id: i32) -> Result<Option<String>, DbErr> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT title FROM songs WHERE id = $1",
            [id.into()],
        ))
        .await?;
    Ok(row.and_then(|r| r.try_get_by_index::<String>(0).ok()))
}

/// Zipf(s = 1) over `1..=SONGS`.
struct Zipf(Vec<f64>);

impl Zipf {
    fn new() -> Zipf {
        let mut total = 0.0;
        Zipf(
            (1..=SONGS)
                .map(|rank| {
                    total += 1.0 / f64::from(rank);
                    total
                })
                .collect(),
        )
    }

    fn sample(&self, rng: &mut StdRng) -> i32 {
        let draw = rng.random::<f64>() * self.0.last().copied().unwrap_or(1.0);
        let rank = self.0.partition_point(|&c| c < draw);
        i32::try_from(rank + 1).unwrap_or(1)
    }
}

struct Outcome {
    reads: u64,
    writes: u64,
    misses: u64,
}

async fn run(server: &PgServer, feed_on: bool, for_how_long: Duration) -> Outcome {
    let name = server.create_database();
    server.psql(
        &name,
        &format!(
            "CREATE TABLE songs (id int PRIMARY KEY, title text NOT NULL);
             INSERT INTO songs SELECT g, 'song ' || g FROM generate_series(1, {SONGS}) g;"
        ),
    );
    let url = server.url(&name);
    let cache = Cache::new();
    let pool = Database::connect(&url).await.expect("connect");
    let db = CachedConnection::new(pool, cache.clone());
    let feed = if feed_on {
        let feed = ChangeFeed::logical(&url)
            .start(&cache)
            .await
            .expect("start the feed");
        let deadline = Instant::now() + Duration::from_secs(20);
        while feed.status().state != FeedState::Following {
            assert!(
                Instant::now() < deadline,
                "the feed did not start following"
            );
            tokio::task::yield_now().await;
        }
        Some(feed)
    } else {
        None
    };
    // Every song read once: the misses measured are the ones writes cause, not cold ones.
    for id in 1..=i32::try_from(SONGS).unwrap_or(i32::MAX) {
        title(&db, id).await.expect("warm-up read");
    }
    let zipf = Arc::new(Zipf::new());
    let (reads, writes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let before = cache.stats();
    let end = Instant::now() + for_how_long;
    let tasks: Vec<_> = (0..2_u64)
        .map(|seed| {
            let (db, zipf, reads, writes) =
                (db.clone(), zipf.clone(), reads.clone(), writes.clone());
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed);
                let mut n = 0_u64;
                while Instant::now() < end {
                    let id = zipf.sample(&mut rng);
                    if rng.random::<f64>() < 0.05 {
                        n += 1;
                        db.execute_unprepared(&format!(
                            "UPDATE songs SET title = 'take {seed}-{n}' WHERE id = {id}"
                        ))
                        .await
                        .expect("update");
                        writes.fetch_add(1, Ordering::Relaxed);
                    } else {
                        title(&db, id).await.expect("read");
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("workload task");
    }
    let after = cache.stats();
    if let Some(feed) = feed {
        feed.stop().await;
    }
    Outcome {
        reads: reads.load(Ordering::Relaxed),
        writes: writes.load(Ordering::Relaxed),
        misses: after.misses - before.misses,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` (CI) does not: then run briefly,
    // as criterion's test mode does.
    let test_mode = !std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let Some(server) = PgServer::start() else {
        return;
    };
    let each = if test_mode {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(10)
    };
    runtime.block_on(async {
        let off = run(&server, false, each).await;
        let on = run(&server, true, each).await;
        let rate = |o: &Outcome| o.misses as f64 / o.reads.max(1) as f64 * 100.0;
        println!("feed_own_writes: {each:?} per mode, 2 tasks, 95 % reads, Zipf over {SONGS} songs");
        for (label, o) in [("feed off", &off), ("feed on (logical)", &on)] {
            println!(
                "  {label:<18} reads {:>7}  writes {:>5}  misses {:>6}  miss rate {:>5.2} %",
                o.reads,
                o.writes,
                o.misses,
                rate(o)
            );
        }
        // Misses per write: what each write costs in recomputations, with and without the
        // second bump.
        let per_write = |o: &Outcome| o.misses as f64 / o.writes.max(1) as f64;
        println!(
            "  extra misses from the second bump: {:+.2} points of reads ({:.2} -> {:.2} misses per write)",
            rate(&on) - rate(&off),
            per_write(&off),
            per_write(&on)
        );
        assert!(off.reads > 0 && on.reads > 0, "the workload ran");
    });
}
