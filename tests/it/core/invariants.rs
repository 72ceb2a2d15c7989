//! The invariants of DESIGN.md, one group of tests each, plus the stampede guarantees of
//! `get_or_compute`. Each test fails if its invariant breaks.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use querycache::orm::sea_orm::CachedConnection;
use querycache::{Cache, EntryOptions, Error, Key, Tag, config::InvalidationStrategy};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Unchanged, ColumnTrait, ConnectionTrait, DbBackend, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, Set, Statement, TransactionTrait,
};
use serde::{Deserialize, Serialize, Serializer};
use tokio::sync::{Barrier, Notify, oneshot};
use tokio::task::JoinSet;

use super::STORE;
use crate::support::fill;
use crate::support::stores::{self, TestCache};
use crate::support::{TestDb, new_song, song};

async fn cache_with(
    f: impl FnOnce(querycache::config::CacheBuilder) -> querycache::config::CacheBuilder,
) -> Option<TestCache> {
    stores::ready(STORE, f).await
}

pub(super) const COUNT_KEY: &str = "songs:count";

pub(super) fn song_key(id: i32) -> String {
    format!("songs:{id}")
}

pub(super) fn by_id_options(id: i32) -> EntryOptions {
    EntryOptions::new().tags([Tag::row("songs", id), Tag::bulk("songs")])
}

pub(super) fn count_options() -> EntryOptions {
    EntryOptions::new().tag(Tag::model("songs")).count_query()
}

/// Song `id`'s title through the cache, and whether the query ran.
async fn cached_title(cache: &Cache, db: &CachedConnection, id: i32) -> (String, bool) {
    let computed = AtomicBool::new(false);
    let title = cache
        .try_get_or_compute(&song_key(id), by_id_options(id), || async {
            computed.store(true, Ordering::SeqCst);
            let song = song::Entity::find_by_id(id).one(db).await?;
            Ok::<_, DbErr>(song.map(|s| s.title).unwrap_or_default())
        })
        .await
        .expect("by-id query");
    ((*title).clone(), computed.into_inner())
}

/// The number of songs through the cache, and whether the query ran.
async fn cached_count(cache: &Cache, db: &CachedConnection) -> (u64, bool) {
    let computed = AtomicBool::new(false);
    let count = cache
        .try_get_or_compute(COUNT_KEY, count_options(), || async {
            computed.store(true, Ordering::SeqCst);
            song::Entity::find().count(db).await
        })
        .await
        .expect("count query");
    (*count, computed.into_inner())
}

// --- 1. No stale read after a write returns ---------------------------------------------

#[tokio::test]
async fn no_read_that_starts_after_a_write_returned_sees_data_from_before_it() {
    const ROUNDS: usize = 60;
    let Some(t) = TestDb::on(STORE).await else {
        return;
    };
    let (cache, db) = (&t.cache, &t.db);
    let author = t.user("ann").await;
    let song = t.song(&author, "v0").await;
    let mut inserted: Vec<i32> = Vec::new();

    for i in 1..=ROUNDS {
        let before = format!("v{}", i - 1);
        let title = format!("v{i}");
        let expected_count = 1 + inserted.len() as u64;
        // Cached before the write (and really cached: the second read is a hit).
        assert_eq!(cached_title(cache, db, song.id).await.0, before);
        assert_eq!(cached_count(cache, db).await.0, expected_count);
        assert!(
            !cached_title(cache, db, song.id).await.1,
            "round {i}: premise: cached"
        );
        assert!(
            !cached_count(cache, db).await.1,
            "round {i}: premise: cached"
        );

        let how = match i % 6 {
            0 => {
                let am = song::ActiveModel {
                    id: Unchanged(song.id),
                    title: Set(title.clone()),
                    ..Default::default()
                };
                am.update(db).await.unwrap();
                "ActiveModel::update"
            }
            1 => {
                db.execute_raw(Statement::from_sql_and_values(
                    DbBackend::Sqlite,
                    "UPDATE songs SET title = ? WHERE id = ?",
                    [title.clone().into(), song.id.into()],
                ))
                .await
                .unwrap();
                "execute_raw"
            }
            2 => {
                song::Entity::update_many()
                    .col_expr(song::Column::Title, Expr::value(title.clone()))
                    .filter(song::Column::Title.eq(before.clone()))
                    .exec(db)
                    .await
                    .unwrap();
                "update_many"
            }
            3 => {
                db.execute_unprepared(&format!(
                    "UPDATE songs SET title = '{title}' WHERE id = {}",
                    song.id
                ))
                .await
                .unwrap();
                "execute_unprepared"
            }
            4 => {
                let tx = db.begin().await.unwrap();
                song::ActiveModel {
                    id: Unchanged(song.id),
                    title: Set(title.clone()),
                    ..Default::default()
                }
                .update(&tx)
                .await
                .unwrap();
                tx.commit().await.unwrap();
                "begin/commit"
            }
            _ => {
                let title = title.clone();
                let id = song.id;
                db.transaction::<_, (), DbErr>(|tx| {
                    Box::pin(async move {
                        let stmt = Statement::from_sql_and_values(
                            DbBackend::Sqlite,
                            "UPDATE songs SET title = ? WHERE id = ?",
                            [title.into(), id.into()],
                        );
                        tx.execute_raw(stmt).await.map(drop)
                    })
                })
                .await
                .unwrap();
                "transaction closure"
            }
        };
        match i % 3 {
            0 => {
                let new = new_song(&author, &format!("extra {i}"))
                    .insert(db)
                    .await
                    .unwrap();
                inserted.push(new.id);
            }
            1 if !inserted.is_empty() => {
                let id = inserted.pop().unwrap();
                song::Entity::delete_by_id(id).exec(db).await.unwrap();
            }
            _ => {}
        }

        let (read, computed) = cached_title(cache, db, song.id).await;
        assert_eq!(
            read, title,
            "round {i} ({how}): stale title read after the write returned"
        );
        assert!(
            computed,
            "round {i} ({how}): the by-id entry must have been invalidated"
        );
        let (count, _) = cached_count(cache, db).await;
        assert_eq!(
            count,
            1 + inserted.len() as u64,
            "round {i}: stale count read after the write returned"
        );
    }
}

// --- 2. No stale set (the readers/writers race is in `stale_set_race`) -----------------

/// Song `id` whose title is "old"; a reader that has read it and waits for `release`.
struct Parked {
    t: Arc<TestDb>,
    id: i32,
    release: Arc<Notify>,
    leader: tokio::task::JoinHandle<Result<String, DbErr>>,
}

impl Parked {
    async fn new() -> Option<Parked> {
        let t = Arc::new(TestDb::on(STORE).await?);
        let author = t.user("ann").await;
        let id = t.song(&author, "old").await.id;
        let release = Arc::new(Notify::new());
        let (has_read, read) = oneshot::channel();
        let leader = tokio::spawn({
            let (cache, db, release) = (t.cache.clone(), t.db.clone(), Arc::clone(&release));
            async move {
                cache
                    .try_get_or_compute(&song_key(id), by_id_options(id), || async move {
                        let song = song::Entity::find_by_id(id).one(&db).await?;
                        let _ = has_read.send(());
                        release.notified().await;
                        Ok(song.map(|s| s.title).unwrap_or_default())
                    })
                    .await
                    .map(|title| (*title).clone())
            }
        });
        read.await.expect("the reader read the row");
        Some(Parked {
            t,
            id,
            release,
            leader,
        })
    }

    /// Writes "new" through the wrapper: committed and invalidated when it returns.
    async fn write(&self) {
        song::ActiveModel {
            id: Unchanged(self.id),
            title: Set("new".into()),
            ..Default::default()
        }
        .update(&self.t.db)
        .await
        .expect("update");
    }
}

#[tokio::test]
async fn a_value_read_before_a_write_committed_is_never_served_after_it() {
    let Some(p) = Parked::new().await else {
        return;
    };
    p.write().await;
    p.release.notify_one();
    let old = p.leader.await.unwrap().unwrap();
    assert_eq!(
        old, "old",
        "its own caller started before the write: allowed"
    );

    let (cache, db) = (&p.t.cache, &p.t.db);
    assert!(
        cache.get::<String>(&song_key(p.id)).await.is_none(),
        "the value was computed under a snapshot the write outdated: it must not be served"
    );
    assert_eq!(cache.stats().wasted_computations, 1);
    let (fresh, computed) = cached_title(cache, db, p.id).await;
    assert!(computed);
    assert_eq!(fresh, "new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_starts_after_a_write_does_not_get_a_computation_begun_before_it() {
    let Some(p) = Parked::new().await else {
        return;
    };
    p.write().await;

    // The write has returned: this read must see it, even though a computation of the
    // same key that began before the write is still in flight.
    let mut late = tokio::spawn({
        let (cache, db, id) = (p.t.cache.clone(), p.t.db.clone(), p.id);
        async move { cached_title(&cache, &db, id).await.0 }
    });
    // A correct cache lets it compute on its own; give it time to, then release the
    // old computation (if it is waiting on it, this is what it would receive).
    let early = tokio::select! {
        title = &mut late => Some(title.unwrap()),
        () = tokio::time::sleep(Duration::from_millis(500)) => None,
    };
    p.release.notify_one();
    assert_eq!(p.leader.await.unwrap().unwrap(), "old");
    let late = match early {
        Some(title) => title,
        None => late.await.unwrap(),
    };
    assert_eq!(
        late, "new",
        "a read that started after the write returned got the value of a computation that \
         read the row before the write"
    );
}

// --- 3. O(1) invalidation ---------------------------------------------------------------

#[tokio::test]
async fn invalidating_a_tag_with_one_dependent_entry_bumps_one_version() {
    let Some(cache) = cache_with(|b| b).await else {
        return;
    };
    fill(&cache, 1).await;
    assert_eq!(cache.get::<u64>("list:0").await.as_deref(), Some(&0));
    assert_eq!(cache.invalidate_tags([Tag::model("songs")]).await, 1);
    assert!(cache.get::<u64>("list:0").await.is_none());
}

// --- 5. Cache failure never fails the caller ----------------------------------------------

/// A value whose serialization always fails.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Unserializable(u32);

impl Serialize for Unserializable {
    fn serialize<S: Serializer>(&self, _serializer: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "this value refuses to be serialized",
        ))
    }
}

#[tokio::test]
async fn a_value_that_cannot_be_serialized_is_returned_but_not_cached() {
    let Some(cache) = cache_with(|b| b).await else {
        return;
    };
    let computed = AtomicUsize::new(0);
    for round in 1..=2 {
        let errors = cache.stats().errors;
        let value = cache
            .get_or_compute("odd", EntryOptions::new(), || async {
                computed.fetch_add(1, Ordering::SeqCst);
                Unserializable(7)
            })
            .await;
        assert_eq!(*value, Unserializable(7), "the caller gets its value");
        assert_eq!(
            computed.load(Ordering::SeqCst),
            round,
            "not cached: computed again"
        );
        assert_eq!(cache.stats().errors, errors + 1);
    }
    assert!(cache.get::<Unserializable>("odd").await.is_none());
    assert_eq!(cache.stats().sets, 0);

    let err = cache
        .set("odd", Unserializable(1), EntryOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Encode { key, .. } if key == "odd"),
        "{err}"
    );
}

/// A cached function whose key argument has no JSON form (map keys must be strings).
#[querycache::cached_query(models = [song::Entity], namespace = "songs", cache = cache)]
async fn search(
    #[cache_skip] cache: &Cache,
    #[cache_skip] computed: &AtomicUsize,
    filter: &HashMap<(i32, i32), i32>,
) -> Result<u64, DbErr> {
    computed.fetch_add(1, Ordering::SeqCst);
    Ok(42)
}

#[tokio::test]
async fn a_call_whose_key_arguments_cannot_be_serialized_runs_uncached() {
    let Some(cache) = cache_with(|b| b).await else {
        return;
    };
    let computed = AtomicUsize::new(0);
    // JSON map keys must be strings: this argument has no key.
    let mut filter = HashMap::new();
    filter.insert((1, 2), 3);
    assert!(matches!(
        Key::for_args("invariants::search", &(&filter,)),
        Err(Error::Encode { .. })
    ));
    let cache: Cache = cache.cache.clone();

    for round in 1..=2 {
        let errors = cache.stats().errors;
        let value = search(&cache, &computed, &filter).await;
        assert_eq!(value.unwrap(), 42);
        assert_eq!(
            computed.load(Ordering::SeqCst),
            round,
            "uncached: runs every time"
        );
        assert_eq!(cache.stats().errors, errors + 1);
    }
    assert_eq!(cache.stats().sets, 0);
    assert_eq!(cache.stats().bypassed, 2);
}

#[tokio::test]
async fn get_or_compute_with_an_invalid_key_runs_uncached() {
    let Some(cache) = cache_with(|b| b).await else {
        return;
    };
    let computed = AtomicUsize::new(0);
    for (round, key) in ["", "bad\nkey"].into_iter().enumerate() {
        let value = cache
            .get_or_compute(key, EntryOptions::new(), || async {
                computed.fetch_add(1, Ordering::SeqCst);
                5_u8
            })
            .await;
        assert_eq!(*value, 5);
        assert_eq!(computed.load(Ordering::SeqCst), round + 1);
    }
    assert_eq!(cache.stats().sets, 0);
    assert!(cache.stats().errors >= 2);
}

#[tokio::test]
async fn a_value_of_another_type_under_a_key_is_a_miss_and_is_overwritten() {
    let Some(cache) = cache_with(|b| b).await else {
        return;
    };
    cache
        .set("shared", "a string".to_owned(), EntryOptions::new())
        .await
        .unwrap();
    let errors = cache.stats().errors;

    assert!(
        cache.get::<u64>("shared").await.is_none(),
        "a mismatch is a miss"
    );
    assert_eq!(cache.stats().errors, errors + 1, "and is counted");
    assert_eq!(
        cache
            .get::<String>("shared")
            .await
            .as_deref()
            .map(String::as_str),
        Some("a string")
    );

    let computed = AtomicUsize::new(0);
    let value = cache
        .get_or_compute("shared", EntryOptions::new(), || async {
            computed.fetch_add(1, Ordering::SeqCst);
            7_u64
        })
        .await;
    assert_eq!((*value, computed.load(Ordering::SeqCst)), (7, 1));
    assert_eq!(
        cache.get::<u64>("shared").await.as_deref(),
        Some(&7),
        "the computed value replaced the undecodable one"
    );
}

// --- Stampedes -----------------------------------------------------------------------------

const CALLERS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stampede_of_200_callers_on_a_cold_key_runs_one_computation() {
    let Some(t) = TestDb::on(STORE).await.map(Arc::new) else {
        return;
    };
    let author = t.user("ann").await;
    for title in ["a", "b", "c"] {
        t.song(&author, title).await;
    }
    let computations = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(CALLERS));
    let mut callers = JoinSet::new();
    for _ in 0..CALLERS {
        let (t, computations, barrier) = (t.clone(), computations.clone(), barrier.clone());
        callers.spawn(async move {
            barrier.wait().await;
            t.cache
                .try_get_or_compute(COUNT_KEY, count_options(), || async {
                    computations.fetch_add(1, Ordering::SeqCst);
                    let count = song::Entity::find().count(&t.db).await?;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<u64, DbErr>(count)
                })
                .await
                .map(|count| *count)
        });
    }
    let results = tokio::time::timeout(Duration::from_secs(60), callers.join_all())
        .await
        .expect("no caller may hang");

    assert_eq!(results.len(), CALLERS);
    assert!(results.iter().all(|r| matches!(r, Ok(3))), "{results:?}");
    assert_eq!(computations.load(Ordering::SeqCst), 1);
    assert_eq!(t.cache.stats().computations, 1);
}

/// A failed computation hands nothing over: the callers that waited for it are released
/// together and compute at once, each getting its own answer — no one queues behind
/// another's failure (issue 20: identical requests whose answer is not stored ran one
/// after another). Each failure still reaches only the caller that ran it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_computations_release_their_waiters_together() {
    const FAILURES: usize = 3;
    /// How long a failing computation other than the first waits for company: what each
    /// would cost if they ran one after another.
    const PATIENCE: Duration = Duration::from_secs(5);
    let Some(t) = TestDb::on(STORE).await.map(Arc::new) else {
        return;
    };
    let author = t.user("ann").await;
    t.song(&author, "a").await;
    let computations = Arc::new(AtomicUsize::new(0));
    let running = Arc::new(AtomicUsize::new(0));
    let most_at_once = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(CALLERS));
    let mut callers = JoinSet::new();
    for _ in 0..CALLERS {
        let (t, computations, barrier) = (t.clone(), computations.clone(), barrier.clone());
        let (running, most_at_once) = (running.clone(), most_at_once.clone());
        callers.spawn(async move {
            barrier.wait().await;
            t.cache
                .try_get_or_compute(COUNT_KEY, count_options(), || async {
                    let n = computations.fetch_add(1, Ordering::SeqCst);
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most_at_once.fetch_max(now, Ordering::SeqCst);
                    let count = song::Entity::find().count(&t.db).await;
                    if n == 0 {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    } else if n < FAILURES {
                        // Released together, the others are computing beside this one.
                        let deadline = std::time::Instant::now() + PATIENCE;
                        while most_at_once.load(Ordering::SeqCst) < 2
                            && std::time::Instant::now() < deadline
                        {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                    running.fetch_sub(1, Ordering::SeqCst);
                    if n < FAILURES {
                        return Err(DbErr::Custom(format!("failure {n}")));
                    }
                    count
                })
                .await
                .map(|count| *count)
        });
    }
    let results = tokio::time::timeout(Duration::from_secs(60), callers.join_all())
        .await
        .expect("no caller may hang after a failed computation");

    let failed = results.iter().filter(|r| r.is_err()).count();
    assert_eq!(
        failed, FAILURES,
        "each failure is returned to the one caller that ran it"
    );
    assert!(
        results
            .iter()
            .filter(|r| r.is_ok())
            .all(|r| matches!(r, Ok(1)))
    );
    assert!(
        most_at_once.load(Ordering::SeqCst) >= 2,
        "the waiters of the failed computation ran one after another"
    );
    assert!(computations.load(Ordering::SeqCst) <= CALLERS);
    assert_eq!(t.cache.get::<u64>(COUNT_KEY).await.as_deref(), Some(&1));
}

#[tokio::test]
async fn manual_strategy_does_not_weaken_explicit_invalidation() {
    // The strategy only gates ORM-driven invalidation; invariant 2 still holds for
    // explicit invalidations racing a computation.
    let cache = Cache::builder()
        .invalidation_strategy(InvalidationStrategy::Manual)
        .build()
        .unwrap();
    let tag = Tag::new("user:1").unwrap();
    let value = cache
        .get_or_compute("k", EntryOptions::new().tag(tag.clone()), || {
            let cache = cache.clone();
            let tag = tag.clone();
            async move {
                cache.invalidate_tags([tag]).await;
                1_u8
            }
        })
        .await;
    assert_eq!(*value, 1);
    assert!(
        cache.get::<u8>("k").await.is_none(),
        "born stale: not stored"
    );
}
