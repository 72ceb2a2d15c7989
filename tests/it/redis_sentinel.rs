//! Redis Sentinel (`redis+sentinel://` URLs): the store finds the master the Sentinels name,
//! follows a failover to the promoted replica, and serves nothing a promoted replica may
//! have missed. Each test runs its own master, replica and three Sentinels.

use std::time::{Duration, Instant};

use querycache::{Cache, EntryOptions, Tag, config::StoreKind};

use crate::support::redis::{RedisSentinels, SENTINEL_SERVICE};
use crate::support::{subscribed, until};

fn instance(set: &RedisSentinels, kind: StoreKind) -> Cache {
    Cache::builder()
        .redis_url(set.url())
        .store(kind)
        .key_prefix("qcsentinel")
        .redis_timeout(Duration::from_millis(200))
        .breaker_cooldown(Duration::from_millis(100))
        .build()
        .expect("a valid Sentinel URL")
}

/// Starts a Sentinel set off the test's runtime threads (it takes a few seconds).
async fn sentinels() -> Option<RedisSentinels> {
    tokio::task::spawn_blocking(RedisSentinels::start)
        .await
        .expect("the Sentinel set's start panicked")
}

/// The master is found through the Sentinels; when it dies, the store follows the
/// failover to the promoted replica without a caller error, and rotates the store epoch
/// there (the replica may have missed the old master's last writes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_url_finds_the_master_and_follows_a_failover() {
    let Some(mut set) = sentinels().await else {
        return;
    };
    let cache = instance(&set, StoreKind::Tiered);
    subscribed(&cache).await;
    let options = EntryOptions::new().tag(Tag::row("songs", 1));
    let first = cache
        .get_or_compute("song:1", options.clone(), || async { "v1".to_string() })
        .await;
    assert_eq!(*first, "v1");
    let stored: bool = set
        .master()
        .query(redis::cmd("EXISTS").arg("qcsentinel:e:song:1"));
    assert!(stored, "the entry is on the master the Sentinels name");
    let rotations = cache.health().await.redis_epoch_rotations;

    let killed = Instant::now();
    set.master_mut().kill();
    // Callers never see an error meanwhile: the memory fallback serves.
    let during = cache
        .get_or_compute("song:1", options.clone(), || async { "v1".to_string() })
        .await;
    assert_eq!(*during, "v1");
    let set = tokio::task::spawn_blocking(move || {
        set.wait_for_failover();
        set
    })
    .await
    .expect("the failover");
    let failed_over = killed.elapsed();
    until(
        Duration::from_secs(20),
        "healthy on the new master",
        async || {
            let h = cache.health().await;
            h.healthy && h.redis_connected
        },
    )
    .await;
    println!(
        "Sentinel failover: the Sentinels promoted the replica {:.2} s after the master was killed; the cache was healthy on it {:.2} s after the kill",
        failed_over.as_secs_f64(),
        killed.elapsed().as_secs_f64()
    );
    // The new master is another server: the first operation on it checks its incarnation
    // and rotates the epoch (health may turn green before any operation ran), so nothing
    // stored before is served, though the replica holds a copy of the entry.
    let after = cache
        .get_or_compute("song:1", options, || async { "v2".to_string() })
        .await;
    assert_eq!(*after, "v2", "the entry from before the failover is dead");
    assert!(
        cache.health().await.redis_epoch_rotations > rotations,
        "{:?}",
        cache.health().await
    );
    let stored: bool = set
        .replica()
        .query(redis::cmd("EXISTS").arg("qcsentinel:e:song:1"));
    assert!(stored, "stored on the promoted replica");
    assert_eq!(set.named_master_port(), Some(set.replica().port()));
}

/// Two instances, a failover between a read and a write: the write made while the master
/// was gone reaches the other instance once both follow the new master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_during_the_failover_reaches_the_other_instance_on_the_new_master() {
    let Some(mut set) = sentinels().await else {
        return;
    };
    let writer = instance(&set, StoreKind::Tiered);
    let reader = instance(&set, StoreKind::Tiered);
    subscribed(&writer).await;
    subscribed(&reader).await;
    let tag = Tag::row("songs", 2);
    let options = EntryOptions::new().tag(tag.clone());
    let read = |value: &'static str| {
        reader.get_or_compute("song:2", options.clone(), move || async move {
            value.to_string()
        })
    };
    assert_eq!(*read("v1").await, "v1");
    set.master_mut().kill();
    writer.invalidate_tags([tag]).await;
    let set = tokio::task::spawn_blocking(move || {
        set.wait_for_failover();
        set
    })
    .await
    .expect("the failover");
    until(
        Duration::from_secs(20),
        "both healthy on the new master",
        async || writer.health().await.healthy && reader.health().await.healthy,
    )
    .await;
    assert_eq!(writer.health().await.pending_invalidations, 0);
    assert_eq!(*read("v2").await, "v2", "the reader does not serve v1");
    assert_eq!(set.named_master_port(), Some(set.replica().port()));
}

#[test]
fn a_bad_sentinel_url_is_a_configuration_error_naming_redis_url() {
    for (url, says) in [
        ("redis+sentinel://127.0.0.1:26379", "names no service"),
        ("redis+sentinel://127.0.0.1:port/m", "is not host[:port]"),
        ("redis+sentinel://127.0.0.1/m/x", "is not a number"),
    ] {
        let error = Cache::builder()
            .redis_url(url)
            .build()
            .expect_err(url)
            .to_string();
        assert!(
            error.contains("REDIS_URL") && error.contains(says),
            "{url}: {error}"
        );
    }
    let error = Cache::builder()
        .redis_url(format!("redis+sentinel://127.0.0.1/{SENTINEL_SERVICE}"))
        .cluster_mode(true)
        .build()
        .expect_err("Sentinel and cluster mode")
        .to_string();
    assert!(error.contains("CACHE_CLUSTER_MODE"), "{error}");
}

/// No Sentinel answering: the cache works uncached from memory, and health names each
/// Sentinel and what went wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sentinel_answering_degrades_and_health_says_why() {
    let cache = Cache::builder()
        .redis_url("redis+sentinel://127.0.0.1:1,127.0.0.1:2/qcmaster")
        .store(StoreKind::Tiered)
        .redis_timeout(Duration::from_millis(100))
        .build()
        .expect("valid");
    let value = cache
        .get_or_compute("k", EntryOptions::new(), || async { 7_u32 })
        .await;
    assert_eq!(*value, 7);
    until(Duration::from_secs(10), "degraded", async || {
        cache.health().await.fallback_active
    })
    .await;
    let error = cache.health().await.error.unwrap_or_default();
    assert!(
        error.contains("qcmaster") || error.contains("Sentinel"),
        "{error}"
    );
}
