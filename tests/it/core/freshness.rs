//! Freshness at the edges of an entry's life, on every store: stale-while-revalidate, early
//! refresh (XFetch), fail-safe, soft and hard timeouts. Expiry may be softened; invalidation
//! may not — every test that serves stale also checks that an invalidated value is dead.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use querycache::{EntryOptions, FetchError, Tag};

use super::STORE;
use crate::support::stores::{self, TestCache};
use crate::support::until;

/// A cache whose time the test moves ([`TestCache::pass`]).
async fn cache() -> Option<TestCache> {
    stores::clocked(STORE, |b| b).await
}

fn tag() -> Tag {
    Tag::new("fresh:songs").unwrap()
}

/// A computation that counts its runs, takes `delay`, and returns `value`.
fn computing(
    runs: &Arc<AtomicU32>,
    delay: Duration,
    value: u32,
) -> impl FnOnce() -> std::pin::Pin<Box<dyn Future<Output = Result<u32, String>> + Send>> + Send + 'static
{
    let runs = Arc::clone(runs);
    move || {
        Box::pin(async move {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            Ok(value)
        })
    }
}

/// A computation that counts its runs and returns `value` only once `gate` opens (a test
/// proves "nobody waited for it" by opening the gate after the callers returned, not by
/// timing them).
fn gated(
    runs: &Arc<AtomicU32>,
    gate: &Arc<Semaphore>,
    value: u32,
) -> impl FnOnce() -> std::pin::Pin<Box<dyn Future<Output = Result<u32, String>> + Send>> + Send + 'static
{
    let (runs, gate) = (Arc::clone(runs), Arc::clone(gate));
    move || {
        Box::pin(async move {
            runs.fetch_add(1, Ordering::SeqCst);
            let _open = gate.acquire().await.map_err(|e| e.to_string())?;
            Ok(value)
        })
    }
}

/// A computation that counts its runs and fails.
fn failing(
    runs: &Arc<AtomicU32>,
) -> impl FnOnce() -> std::pin::Pin<Box<dyn Future<Output = Result<u32, String>> + Send>> + Send + 'static
{
    let runs = Arc::clone(runs);
    move || {
        Box::pin(async move {
            runs.fetch_add(1, Ordering::SeqCst);
            Err("database down".to_owned())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn swr_serves_stale_within_the_window_then_fresh_after_one_background_refresh() {
    let Some(cache) = cache().await else { return };
    let options = EntryOptions::new()
        .ttl(Duration::from_millis(300))
        .swr(Duration::from_secs(30))
        .tag(tag());
    let runs = Arc::new(AtomicU32::new(0));
    let first = cache
        .fetch("swr", options.clone(), computing(&runs, Duration::ZERO, 1))
        .await
        .unwrap();
    assert_eq!((*first, first.is_stale()), (1, false));
    cache.pass(Duration::from_millis(400)).await;
    // The refresh stores under the options of the caller that started it: a TTL that no
    // delay on a loaded machine outlasts before the check below sees the refreshed value.
    let options = options.ttl(Duration::from_secs(600));

    // 50 callers on the expired entry: every one gets the stale value at once, and the
    // refresh runs once, in the background. The refresh cannot finish before the gate
    // opens, and the gate opens only after every caller returned: a caller that waited for
    // the refresh would hang here until the deadline.
    let gate = Arc::new(Semaphore::new(0));
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (cache, options, runs, gate) = (
            cache.cache.clone(),
            options.clone(),
            runs.clone(),
            gate.clone(),
        );
        callers.spawn(async move { cache.fetch("swr", options, gated(&runs, &gate, 2)).await });
    }
    let mut stale = 0;
    let joined_all = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(joined) = callers.join_next().await {
            let fetched = joined.unwrap().unwrap();
            assert_eq!(*fetched, 1, "the stale value, never a wait for the new one");
            assert!(fetched.is_stale());
            stale += 1;
        }
    })
    .await;
    assert!(
        joined_all.is_ok(),
        "{stale} of 50 callers returned; the others waited for the refresh"
    );
    assert_eq!(stale, 50);
    gate.add_permits(Semaphore::MAX_PERMITS / 2);

    until(Duration::from_secs(10), "the refresh lands", async || {
        let fetched = cache
            .fetch("swr", options.clone(), computing(&runs, Duration::ZERO, 3))
            .await
            .unwrap();
        !fetched.is_stale() && *fetched == 2
    })
    .await;
    let stats = cache.stats();
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "one computation, one refresh: {stats:?}"
    );
    assert!(stats.stale_served >= 50, "{stats:?}");
    assert_eq!(stats.background_refreshes, 1, "{stats:?}");
    eprintln!(
        "swr on {STORE:?}: stale served {}, background refreshes {}",
        stats.stale_served, stats.background_refreshes
    );
}

#[tokio::test]
async fn swr_never_serves_an_invalidated_value() {
    let Some(cache) = cache().await else { return };
    let options = EntryOptions::new()
        .ttl(Duration::from_millis(200))
        .swr(Duration::from_secs(30))
        .tag(tag());
    let runs = Arc::new(AtomicU32::new(0));
    cache
        .fetch("dead", options.clone(), computing(&runs, Duration::ZERO, 1))
        .await
        .unwrap();
    cache.pass(Duration::from_millis(300)).await;
    // Within the window, but its tag moved: dead, not stale.
    cache.invalidate_tags([tag()]).await;
    let fetched = cache
        .fetch("dead", options.clone(), computing(&runs, Duration::ZERO, 2))
        .await
        .unwrap();
    assert_eq!((*fetched, fetched.is_stale()), (2, false), "a miss");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    // The same through the borrowing API.
    cache.pass(Duration::from_millis(300)).await;
    cache.invalidate_tags([tag()]).await;
    let value = cache
        .get_or_compute("dead", options, || async { 3_u32 })
        .await;
    assert_eq!(*value, 3);
    assert_eq!(cache.stats().stale_served, 0);
}

#[tokio::test]
async fn a_plain_get_never_returns_a_stale_value() {
    let Some(cache) = cache().await else { return };
    let options = EntryOptions::new()
        .ttl(Duration::from_millis(200))
        .swr(Duration::from_secs(30));
    cache.set("plain", 1_u32, options).await.unwrap();
    assert_eq!(cache.get::<u32>("plain").await.as_deref(), Some(&1));
    cache.pass(Duration::from_millis(300)).await;
    assert!(cache.get::<u32>("plain").await.is_none(), "past its TTL");
}

#[tokio::test]
async fn swr_with_a_borrowing_computation_refreshes_in_the_foreground() {
    let Some(cache) = cache().await else { return };
    let options = EntryOptions::new()
        .ttl(Duration::from_millis(200))
        .swr(Duration::from_secs(30));
    let local = String::from("borrowed");
    let first = cache
        .get_or_compute("fg", options.clone(), || async { local.len() })
        .await;
    assert_eq!(*first, 8);
    cache.pass(Duration::from_millis(300)).await;
    // This caller triggers the refresh and, its computation borrowing `local`, waits for it.
    let refreshed = cache
        .get_or_compute("fg", options, || async { local.len() + 1 })
        .await;
    assert_eq!(*refreshed, 9);
    assert_eq!(cache.stats().background_refreshes, 1);
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_stale_value_and_is_counted() {
    let Some(cache) = cache().await else { return };
    let options = EntryOptions::new()
        .ttl(Duration::from_millis(200))
        .swr(Duration::from_secs(30));
    let runs = Arc::new(AtomicU32::new(0));
    cache
        .fetch(
            "flaky",
            options.clone(),
            computing(&runs, Duration::ZERO, 1),
        )
        .await
        .unwrap();
    cache.pass(Duration::from_millis(300)).await;
    let stale = cache
        .fetch("flaky", options.clone(), failing(&runs))
        .await
        .unwrap();
    assert_eq!((*stale, stale.is_stale()), (1, true));
    until(
        Duration::from_secs(5),
        "the refresh error is counted",
        async || cache.stats().refresh_errors == 1,
    )
    .await;
    let still = cache.fetch("flaky", options, failing(&runs)).await.unwrap();
    assert_eq!(
        (*still, still.is_stale()),
        (1, true),
        "still stale, still served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn early_refresh_keeps_a_hot_key_from_ever_missing_and_leaves_cold_keys_alone() {
    let Some(cache) = cache().await else { return };
    // A 1 s TTL, a 50 ms computation, beta 3: a key read every 5 ms (of the cache's time)
    // is refreshed long before it expires; a key read once is not refreshed at all.
    let options = |key: &str| {
        EntryOptions::new()
            .ttl(Duration::from_secs(1))
            .early_refresh(3.0)
            .namespace(key)
    };
    let hot_runs = Arc::new(AtomicU32::new(0));
    let cold_runs = Arc::new(AtomicU32::new(0));
    let delta = Duration::from_millis(50);
    cache
        .fetch("cold", options("cold"), computing(&cold_runs, delta, 7))
        .await
        .unwrap();
    let mut reads = 0;
    let mut refreshes = 0;
    // 3.5 s in steps of 5 ms. A refresh takes 50 ms of real time, which a manual clock
    // does not see go by: the cache's time moves on once the refresh has landed.
    for step in 1..=700_u32 {
        let fetched = cache
            .fetch("hot", options("hot"), computing(&hot_runs, delta, step))
            .await
            .unwrap();
        assert!(!fetched.is_stale());
        reads += 1;
        if cache.stats().early_refreshes > refreshes {
            refreshes = cache.stats().early_refreshes;
            until(
                Duration::from_secs(10),
                "the early refresh lands",
                async || cache.get::<u32>("hot").await.as_deref() == Some(&step),
            )
            .await;
        }
        cache.pass(Duration::from_millis(5)).await;
    }
    let stats = cache.stats();
    let hot = &stats.namespaces["hot"];
    assert_eq!(hot.misses, 1, "only the first read missed: {hot:?}");
    assert!(
        hot_runs.load(Ordering::SeqCst) >= 4,
        "refreshed about once a TTL over 3.5 s: {} runs",
        hot_runs.load(Ordering::SeqCst)
    );
    assert!(stats.early_refreshes >= 3, "{stats:?}");
    // The cold key expired without being refreshed: the next read misses.
    assert_eq!(cold_runs.load(Ordering::SeqCst), 1);
    cache
        .fetch("cold", options("cold"), computing(&cold_runs, delta, 8))
        .await
        .unwrap();
    assert_eq!(cold_runs.load(Ordering::SeqCst), 2);
    assert_eq!(cache.stats().namespaces["cold"].misses, 2);
    eprintln!(
        "early refresh on {STORE:?}: {reads} reads of the hot key, {} computations, 1 miss",
        hot_runs.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn fail_safe_serves_the_bounded_last_good_value_throttles_retries_and_recovers() {
    let Some(cache) = cache().await else { return };
    let options = EntryOptions::new()
        .ttl(Duration::from_millis(200))
        .fail_safe(Duration::from_secs(60))
        .fail_safe_throttle(Duration::from_millis(500))
        .tag(tag());
    let runs = Arc::new(AtomicU32::new(0));
    cache
        .fetch("fs", options.clone(), computing(&runs, Duration::ZERO, 1))
        .await
        .unwrap();
    cache.pass(Duration::from_millis(300)).await;

    // The database fails: the last good value, marked stale.
    let served = cache
        .fetch("fs", options.clone(), failing(&runs))
        .await
        .unwrap();
    assert_eq!((*served, served.is_stale()), (1, true));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    // Within the throttle: not retried.
    for _ in 0..5 {
        let served = cache
            .fetch("fs", options.clone(), failing(&runs))
            .await
            .unwrap();
        assert_eq!((*served, served.is_stale()), (1, true));
    }
    assert_eq!(runs.load(Ordering::SeqCst), 2, "throttled: no retry");
    // The borrowing API serves it too.
    let borrowed = cache
        .try_get_or_compute("fs", options.clone(), || async {
            Err::<u32, _>("still down")
        })
        .await;
    assert_eq!(borrowed.as_deref(), Ok(&1));
    let stats = cache.stats();
    assert!(stats.fail_safe_activations >= 7, "{stats:?}");

    // Past the throttle the key is tried again; the database is back.
    cache.pass(Duration::from_millis(600)).await;
    let back = cache
        .fetch("fs", options.clone(), computing(&runs, Duration::ZERO, 2))
        .await
        .unwrap();
    assert_eq!((*back, back.is_stale()), (2, false), "recovered");

    // An invalidated value is never a fail-safe answer: the error comes through.
    cache.invalidate_tags([tag()]).await;
    let failed = cache.fetch("fs", options, failing(&runs)).await;
    assert!(
        matches!(failed, Err(FetchError::Failed(ref e)) if e == "database down"),
        "{failed:?}"
    );
    eprintln!(
        "fail-safe on {STORE:?}: stale served {}, fail-safe activations {}",
        cache.stats().stale_served,
        cache.stats().fail_safe_activations
    );
}

#[tokio::test]
async fn fail_safe_is_bounded_by_its_max_staleness() {
    let Some(cache) = cache().await else { return };
    let options = EntryOptions::new()
        .ttl(Duration::from_millis(100))
        .fail_safe(Duration::from_millis(300));
    let runs = Arc::new(AtomicU32::new(0));
    cache
        .fetch(
            "bounded",
            options.clone(),
            computing(&runs, Duration::ZERO, 1),
        )
        .await
        .unwrap();
    cache.pass(Duration::from_millis(600)).await;
    let failed = cache.fetch("bounded", options, failing(&runs)).await;
    assert!(matches!(failed, Err(FetchError::Failed(_))), "{failed:?}");
    assert_eq!(cache.stats().fail_safe_activations, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_soft_timeout_serves_stale_and_the_background_computation_lands() {
    let Some(cache) = cache().await else { return };
    let options = EntryOptions::new()
        .ttl(Duration::from_millis(200))
        .fail_safe(Duration::from_secs(60))
        .soft_timeout(Duration::from_millis(100));
    let runs = Arc::new(AtomicU32::new(0));
    cache
        .fetch("soft", options.clone(), computing(&runs, Duration::ZERO, 1))
        .await
        .unwrap();
    cache.pass(Duration::from_millis(300)).await;
    // The computation stores under this call's options: a TTL that no delay on a loaded
    // machine outlasts before the check below sees the value land.
    let options = options.ttl(Duration::from_secs(600));
    // The computation cannot finish before the gate opens, and the gate opens only after
    // the caller returned: a caller that outlived its soft timeout would hang until the
    // deadline.
    let gate = Arc::new(Semaphore::new(0));
    let served = tokio::time::timeout(
        Duration::from_secs(30),
        cache.fetch("soft", options.clone(), gated(&runs, &gate, 2)),
    )
    .await
    .expect("left at the soft timeout, without waiting for the computation")
    .unwrap();
    assert_eq!((*served, served.is_stale()), (1, true));
    gate.add_permits(Semaphore::MAX_PERMITS / 2);
    // The computation goes on and lands, without another run.
    until(
        Duration::from_secs(10),
        "the slow computation lands",
        async || cache.get::<u32>("soft").await.as_deref() == Some(&2),
    )
    .await;
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(cache.stats().soft_timeouts, 1);
}

#[tokio::test]
async fn a_hard_timeout_gives_up_with_a_clear_error() {
    let Some(cache) = cache().await else { return };
    let options = EntryOptions::new().hard_timeout(Duration::from_millis(100));
    let runs = Arc::new(AtomicU32::new(0));
    let failed = cache
        .fetch(
            "hard",
            options.clone(),
            computing(&runs, Duration::from_secs(5), 1),
        )
        .await;
    let Err(FetchError::TimedOut(timeout)) = failed else {
        panic!("expected a timeout, got {failed:?}");
    };
    assert_eq!(timeout.key(), "hard");
    assert_eq!(
        timeout.to_string(),
        "computing `hard` exceeded its hard timeout of 100ms; gave up"
    );
    assert_eq!(cache.stats().hard_timeouts, 1);
    assert!(cache.get::<u32>("hard").await.is_none(), "nothing stored");
    // The next caller computes again (and in time, here).
    let fetched = cache
        .fetch("hard", options, computing(&runs, Duration::ZERO, 2))
        .await
        .unwrap();
    assert_eq!(*fetched, 2);
}

#[tokio::test]
async fn namespaces_carry_a_default_swr_window() {
    let Some(cache) =
        stores::clocked(STORE, |b| b.namespace_swr("feeds", Duration::from_secs(30))).await
    else {
        return;
    };
    let options = EntryOptions::new()
        .ttl(Duration::from_millis(200))
        .namespace("feeds");
    let runs = Arc::new(AtomicU32::new(0));
    cache
        .fetch("feed", options.clone(), computing(&runs, Duration::ZERO, 1))
        .await
        .unwrap();
    cache.pass(Duration::from_millis(300)).await;
    let served = cache
        .fetch("feed", options, computing(&runs, Duration::ZERO, 2))
        .await
        .unwrap();
    assert_eq!((*served, served.is_stale()), (1, true));
}
