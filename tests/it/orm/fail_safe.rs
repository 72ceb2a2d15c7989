//! Fail-safe against a real database (`super::DB`) that goes down: its connection pool is
//! closed under the cached query, which then fails for real; the last good value is served,
//! bounded and marked stale, and the query recovers on a new pool.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use querycache::testing::ManualClock;
use querycache::{EntryOptions, FetchError, Tag};
use sea_orm::{DatabaseConnection, DbErr, EntityTrait, PaginatorTrait};

use super::DB;
use crate::support::{TestDb, song};

/// The song count, read through whatever pool `pool` holds at the time of the call.
async fn count_songs(
    cache: &querycache::Cache,
    pool: &Arc<Mutex<DatabaseConnection>>,
    options: EntryOptions,
) -> Result<querycache::Fetched<u64>, FetchError<DbErr>> {
    let db = pool.lock().clone();
    cache
        .fetch("songs:count", options, move || async move {
            song::Entity::find().count(&db).await
        })
        .await
}

#[tokio::test]
async fn a_closed_pool_serves_the_last_good_count_then_recovers() {
    // The cache's time moves when the test says (the throttle, the TTL), not as it waits.
    let clock = ManualClock::new();
    let cache = querycache::Cache::builder()
        .clock(clock.clone())
        .build()
        .unwrap();
    let Some(t) = TestDb::create(DB, cache).await else {
        return;
    };
    let author = t.user("ada").await;
    t.song(&author, "one").await;
    t.song(&author, "two").await;
    let options = EntryOptions::new()
        .ttl(Duration::from_millis(200))
        .fail_safe(Duration::from_secs(60))
        .fail_safe_throttle(Duration::from_millis(300))
        .tag(Tag::model("songs"));
    let pool = Arc::new(Mutex::new(t.raw.clone()));

    let counted = count_songs(&t.cache, &pool, options.clone()).await.unwrap();
    assert_eq!((*counted, counted.is_stale()), (2, false));

    // The database goes away: a pool of its own, closed.
    let doomed = t.another_pool().await;
    doomed.close_by_ref().await.expect("close the pool");
    *pool.lock() = doomed.clone();
    let direct = song::Entity::find().count(&doomed).await;
    assert!(direct.is_err(), "the query really fails now: {direct:?}");

    clock.advance(Duration::from_millis(300));
    let mut stale_served = 0;
    for _ in 0..5 {
        let served = count_songs(&t.cache, &pool, options.clone()).await.unwrap();
        assert_eq!(
            (*served, served.is_stale()),
            (2, true),
            "the last good count"
        );
        stale_served += 1;
    }
    let stats = t.cache.stats();
    assert_eq!(stats.fail_safe_activations, 5, "{stats:?}");
    assert_eq!(
        stats.computations, 2,
        "one failure, then throttled: {stats:?}"
    );

    // Back up: a new pool; past the throttle the query runs again.
    *pool.lock() = t.raw.clone();
    clock.advance(Duration::from_millis(350));
    let back = count_songs(&t.cache, &pool, options.clone()).await.unwrap();
    assert_eq!((*back, back.is_stale()), (2, false), "recovered");

    // A write invalidates the count: with the database down again, the old count is not
    // a fail-safe answer — the error comes through.
    t.song(&author, "three").await;
    *pool.lock() = doomed;
    let failed = count_songs(&t.cache, &pool, options).await;
    assert!(matches!(failed, Err(FetchError::Failed(_))), "{failed:?}");
    eprintln!(
        "fail-safe on {DB:?}: {stale_served} stale answers while the pool was closed, \
         {} fail-safe activations",
        t.cache.stats().fail_safe_activations
    );
}
