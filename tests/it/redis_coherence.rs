//! Coherence when Redis comes back as another incarnation of itself (issue 19, item 1): a
//! server restarted from a snapshot holds entries invalidated since, under the very tag
//! versions they recorded. The store epoch must kill every one of them.
//!
//! Each test runs its own redis-server (never the shared one), saves a snapshot and
//! restarts it from that snapshot.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use querycache::{Cache, EntryOptions, StoreKind, Tag};

use crate::support::redis::RedisServer;
use crate::support::{subscribed, until};

fn instance(server: &RedisServer, kind: StoreKind) -> Cache {
    Cache::builder()
        .redis_url(server.url())
        .store(kind)
        .key_prefix("qccoherence")
        .redis_timeout(Duration::from_millis(2000))
        .breaker_cooldown(Duration::from_millis(100))
        .build_cache()
        .expect("valid config")
}

fn song_options() -> EntryOptions {
    EntryOptions::new().ttl_secs(600).tag(Tag::model("songs"))
}

/// What a read of song 1 answers: the cached value, or "NEW" computed now.
async fn read(cache: &Cache) -> String {
    let value = cache
        .get_or_compute("song:1", song_options(), || async { "NEW".to_owned() })
        .await;
    (*value).clone()
}

/// The reproduction: cache "OLD", SAVE, invalidate (the next read computes "NEW"), restart
/// Redis from the snapshot. No read after the restart may answer "OLD".
async fn a_restart_from_a_snapshot_resurrects_nothing(kind: StoreKind) {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let cache = instance(&server, kind);
    if kind == StoreKind::Tiered {
        subscribed(&cache).await;
    }
    let old = cache
        .get_or_compute("song:1", song_options(), || async { "OLD".to_owned() })
        .await;
    assert_eq!(*old, "OLD");
    assert_eq!(
        cache
            .get::<String>("song:1")
            .await
            .as_deref()
            .map(String::as_str),
        Some("OLD"),
        "premise: OLD is cached"
    );
    let () = server.query(&redis::cmd("SAVE"));
    cache.invalidate_tags([Tag::model("songs")]).await;
    assert_eq!(read(&cache).await, "NEW", "the write is seen at once");
    assert_eq!(read(&cache).await, "NEW");
    let rotations = cache.health().await.redis_epoch_rotations;

    // Readers run through the restart: every answer is checked.
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let reader = {
        let (cache, stop, reads) = (cache.clone(), Arc::clone(&stop), Arc::clone(&reads));
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let got = cache.get::<String>("song:1").await;
                assert_ne!(
                    got.as_deref().map(String::as_str),
                    Some("OLD"),
                    "an invalidated entry came back from the snapshot"
                );
                reads.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    server.restart();
    let dbsize: u64 = server.query(&redis::cmd("DBSIZE"));
    assert!(dbsize > 0, "premise: the server loaded the snapshot");
    until(
        Duration::from_secs(15),
        "the cache answers from Redis again",
        async || {
            let h = cache.health().await;
            h.healthy && h.redis_connected && !h.fallback_active
        },
    )
    .await;
    // Every read after the restart says NEW (recomputed, then cached again).
    let hits = cache.stats().redis_hits + cache.stats().memory_hits;
    until(
        Duration::from_secs(15),
        "NEW served from the cache",
        async || {
            assert_eq!(read(&cache).await, "NEW", "a read after the restart");
            cache.stats().redis_hits + cache.stats().memory_hits > hits + 2
        },
    )
    .await;
    let reads_before = reads.load(Ordering::Relaxed);
    until(Duration::from_secs(15), "the reader goes on", async || {
        reads.load(Ordering::Relaxed) > reads_before + 20
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    reader.await.expect("the reader saw no OLD");
    assert_eq!(
        cache.health().await.redis_epoch_rotations,
        rotations + 1,
        "one rotation for the new incarnation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiered_a_restart_from_a_snapshot_resurrects_no_invalidated_entry() {
    a_restart_from_a_snapshot_resurrects_nothing(StoreKind::Tiered).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_restart_from_a_snapshot_resurrects_no_invalidated_entry() {
    a_restart_from_a_snapshot_resurrects_nothing(StoreKind::Redis).await;
}

/// Two instances check the same incarnation: the epoch rotates once per `run_id`, not once
/// per instance nor per check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_epoch_rotates_once_per_incarnation() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let (a, b) = (
        instance(&server, StoreKind::Redis),
        instance(&server, StoreKind::Redis),
    );
    let rotations =
        async || a.health().await.redis_epoch_rotations + b.health().await.redis_epoch_rotations;
    read(&a).await;
    read(&b).await;
    assert_eq!(
        rotations().await,
        0,
        "a new store records its run_id, no rotation"
    );
    assert!(
        server
            .query::<Option<String>>(redis::cmd("GET").arg("qccoherence:epoch-run"))
            .is_some(),
        "the run_id is recorded"
    );
    let () = server.query(&redis::cmd("SAVE"));
    for round in 0..3 {
        server.restart();
        until(Duration::from_secs(15), "both instances back", async || {
            read(&a).await;
            read(&b).await;
            a.health().await.healthy && b.health().await.healthy
        })
        .await;
        // More reads on both: each instance has checked this incarnation.
        for _ in 0..5 {
            read(&a).await;
            read(&b).await;
        }
        assert_eq!(
            rotations().await,
            round + 1,
            "round {round}: one rotation per incarnation, whoever checks first"
        );
        let () = server.query(&redis::cmd("SAVE"));
    }
}
