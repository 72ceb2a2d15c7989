//! Invariant 2 (no stale set) under load: readers race writers on one database, on SQLite
//! and on PostgreSQL, for the store of this suite (`super::STORE`). The deterministic
//! stale-set tests (a reader parked across a write) are in `invariants`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Unchanged, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, Set, TransactionTrait,
};
use tokio::task::JoinSet;

use super::STORE;
use super::invariants::{COUNT_KEY, by_id_options, count_options, song_key};
use crate::support::{Db, TestDb, new_song, song};

/// What readers and writers share in the race.
struct Race {
    /// The highest content version whose write has returned.
    version: AtomicU64,
    /// Songs inserted by writes that have returned.
    inserted: AtomicU64,
    writers_done: AtomicBool,
    reads: AtomicU64,
    writes: AtomicU64,
    computations: AtomicU64,
    stale: Mutex<Vec<String>>,
}

impl Race {
    fn stale(&self, what: String) {
        self.stale.lock().push(what);
    }
}

/// Widens the window between reading the database and handing the value to the cache.
async fn widen(n: u64) {
    if n.is_multiple_of(3) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    } else {
        for _ in 0..(n % 4) + 1 {
            tokio::task::yield_now().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_stale_value_is_served_while_readers_race_writers() {
    let Some(t) = TestDb::on(STORE).await else {
        return;
    };
    readers_race_writers(t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_stale_value_is_served_while_readers_race_writers_on_postgres() {
    let Some(t) = TestDb::on_store(Db::Postgres, STORE).await else {
        return;
    };
    readers_race_writers(t).await;
}

/// Readers of a by-id entry and a count race writers of every kind (ActiveModel, raw SQL,
/// `update_many`, transactions, inserts) on `t`; no read may return a value older than a
/// write that had returned before the read began.
async fn readers_race_writers(t: TestDb) {
    const READERS: usize = 6;
    const MIN_ROUNDS: u64 = 300; // per reader, two reads per round: >= 3,600 reads
    const UPDATES: u64 = 600;
    const INSERTS: u64 = 400;

    let t = Arc::new(t);
    let author = t.user("ann").await;
    let song = t.song(&author, "race").await;
    let id = song.id;
    song::ActiveModel {
        id: Unchanged(id),
        content: Set("0".into()),
        ..Default::default()
    }
    .update(&t.db)
    .await
    .unwrap();
    let race = Arc::new(Race {
        version: AtomicU64::new(0),
        inserted: AtomicU64::new(0),
        writers_done: AtomicBool::new(false),
        reads: AtomicU64::new(0),
        writes: AtomicU64::new(0),
        computations: AtomicU64::new(0),
        stale: Mutex::new(Vec::new()),
    });
    let started = Instant::now();
    let hits_before = t.cache.stats().hits;

    let mut readers = JoinSet::new();
    for _ in 0..READERS {
        let (t, race) = (Arc::clone(&t), Arc::clone(&race));
        readers.spawn(async move {
            let mut rounds = 0_u64;
            while rounds < MIN_ROUNDS || !race.writers_done.load(Ordering::SeqCst) {
                rounds += 1;
                // The floor is read before the read starts: every write that had returned
                // by then must be visible to it.
                let floor = race.version.load(Ordering::SeqCst);
                let version = t
                    .cache
                    .try_get_or_compute(&song_key(id), by_id_options(id), || async {
                        let n = race.computations.fetch_add(1, Ordering::SeqCst);
                        let song = song::Entity::find_by_id(id).one(&t.db).await?;
                        widen(n).await;
                        let content = song.map(|s| s.content).unwrap_or_default();
                        Ok::<u64, DbErr>(content.parse().unwrap_or(0))
                    })
                    .await
                    .expect("by-id read");
                if *version < floor {
                    race.stale(format!(
                        "by-id read {version} after version {floor} returned"
                    ));
                }

                let floor = 1 + race.inserted.load(Ordering::SeqCst);
                let count = t
                    .cache
                    .try_get_or_compute(COUNT_KEY, count_options(), || async {
                        let n = race.computations.fetch_add(1, Ordering::SeqCst);
                        let count = song::Entity::find().count(&t.db).await?;
                        widen(n).await;
                        Ok::<u64, DbErr>(count)
                    })
                    .await
                    .expect("count read");
                if *count < floor {
                    race.stale(format!("count read {count} after {floor} songs existed"));
                }
                race.reads.fetch_add(2, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        });
    }

    let mut writers = JoinSet::new();
    {
        // Versions are written by one task, so they reach the database in order.
        let (t, race) = (Arc::clone(&t), Arc::clone(&race));
        writers.spawn(async move {
            for v in 1..=UPDATES {
                let content = v.to_string();
                match v % 4 {
                    0 => song::ActiveModel {
                        id: Unchanged(id),
                        content: Set(content),
                        ..Default::default()
                    }
                    .update(&t.db)
                    .await
                    .map(drop),
                    1 => {
                        t.db.execute_raw(t.statement(
                            "UPDATE songs SET content = ? WHERE id = ?",
                            [content.into(), id.into()],
                        ))
                        .await
                        .map(drop)
                    }
                    2 => song::Entity::update_many()
                        .col_expr(song::Column::Content, Expr::value(content))
                        .filter(song::Column::Title.eq("race"))
                        .exec(&t.db)
                        .await
                        .map(drop),
                    _ => {
                        let tx = t.db.begin().await.unwrap();
                        tx.execute_raw(t.statement(
                            "UPDATE songs SET content = ? WHERE id = ?",
                            [content.into(), id.into()],
                        ))
                        .await
                        .unwrap();
                        tx.commit().await
                    }
                }
                .expect("update");
                race.version.fetch_max(v, Ordering::SeqCst);
                race.writes.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    {
        let (t, race) = (Arc::clone(&t), Arc::clone(&race));
        writers.spawn(async move {
            for i in 0..INSERTS {
                let title = format!("extra {i}");
                let added = match i % 3 {
                    0 => new_song(&author, &title).insert(&t.db).await.map(|_| 1),
                    1 => song::Entity::insert_many([
                        new_song(&author, &title),
                        new_song(&author, &format!("{title}b")),
                    ])
                    .exec(&t.db)
                    .await
                    .map(|_| 2),
                    _ => t
                        .db
                        .execute_unprepared(&format!(
                            "INSERT INTO songs (title, artist, author_id) VALUES ('{title}', 'x', {})",
                            author.id
                        ))
                        .await
                        .map(|_| 1),
                }
                .expect("insert");
                race.inserted.fetch_add(added, Ordering::SeqCst);
                race.writes.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    let outcome = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(done) = writers.join_next().await {
            done.expect("writer task");
        }
        race.writers_done.store(true, Ordering::SeqCst);
        while let Some(done) = readers.join_next().await {
            done.expect("reader task");
        }
    })
    .await;
    assert!(
        outcome.is_ok(),
        "the race did not finish within two minutes"
    );

    let stats = t.cache.stats();
    let reads = race.reads.load(Ordering::SeqCst);
    let stale = race.stale.lock().clone();
    println!(
        "race: {reads} reads, {} writes in {:.2?}; {} hits, {} computations ({} counted by \
         the cache), {} wasted, {} stale",
        race.writes.load(Ordering::SeqCst),
        started.elapsed(),
        stats.hits - hits_before,
        race.computations.load(Ordering::SeqCst),
        stats.computations,
        stats.wasted_computations,
        stale.len(),
    );
    assert!(reads >= 3_000, "only {reads} reads ran");
    assert!(
        stale.is_empty(),
        "{} stale reads, first ones: {:?}",
        stale.len(),
        &stale[..stale.len().min(10)]
    );
}
