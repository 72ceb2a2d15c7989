//! Redis coherence under faults (issue 19): each test injects one fault the way it was
//! reproduced, and checks that no instance serves a value that a write which had already
//! returned invalidated.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use querycache::{Cache, EntryOptions, StoreKind, Tag};

use crate::support::proxy::Proxy;
use crate::support::redis::RedisServer;
use crate::support::until;

/// A cache on `url`, on the Redis store (`tiered`: with a memory tier).
fn instance(url: String, tiered: bool) -> Cache {
    Cache::builder()
        .redis_url(url)
        .store(if tiered {
            StoreKind::Tiered
        } else {
            StoreKind::Redis
        })
        .redis_timeout(Duration::from_millis(2000))
        .breaker_cooldown(Duration::from_millis(50))
        .build_cache()
        .expect("valid test configuration")
}

fn songs() -> EntryOptions {
    EntryOptions::new()
        .tag(Tag::model("songs"))
        .ttl(Duration::from_secs(600))
}

/// The "database": one number, read by every computation.
#[derive(Clone, Default)]
struct Db(Arc<AtomicU64>);

impl Db {
    fn set(&self, value: u64) {
        self.0.store(value, Ordering::SeqCst);
    }
    fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    /// `cache`'s value of `key`, computed from this database on a miss.
    async fn read(&self, cache: &Cache, key: &str) -> u64 {
        let db = self.clone();
        *cache
            .get_or_compute(key, songs(), || async move { db.get() })
            .await
    }
}

/// Whether the breaker of `cache`'s store is closed again (Redis in use).
async fn redis_in_use(cache: &Cache) -> bool {
    let health = cache.health().await;
    health.redis_connected && !health.fallback_active && health.pending_invalidations == 0
}

/// Item 4: the replay after an outage must not lose an invalidation made while it is in
/// flight. Writer W reaches Redis through a proxy; the outage (`refuse`) defers W's
/// invalidation (`outage_op`: a tag bump, or a clear); the replay's replies are then held
/// back, and in that window another instance R stores a value computed before W's second
/// write, which W makes (deferred too) before the replay has answered. After the breaker
/// closes, W must read the second write's value.
async fn a_write_during_the_replay_is_not_lost(tiered: bool, clear: bool) {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let proxy = Proxy::start(server.port());
    let (w, r) = (
        instance(proxy.url(), tiered),
        instance(server.url(), tiered),
    );
    if tiered {
        crate::support::subscribed(&w).await;
        crate::support::subscribed(&r).await;
    }
    let db = Db::default();
    db.set(1);
    assert_eq!(db.read(&w, "k").await, 1);

    // The outage: W's first write cannot reach Redis and waits for the replay.
    proxy.refuse();
    db.set(2);
    if clear {
        w.clear().await;
    } else {
        w.invalidate_tags([Tag::model("songs")]).await;
    }
    assert!(w.health().await.fallback_active, "W's breaker opened");

    // Redis is back for W, slowly: the replay's bump (or clear) runs at once, its answer
    // takes seconds.
    proxy.delay_replies(Duration::from_millis(1500));
    proxy.accept();
    until(
        Duration::from_secs(20),
        "the replay reached Redis (R no longer finds the old entry)",
        async || r.get::<u64>("k").await.is_none(),
    )
    .await;
    // R caches the value of the first write...
    assert_eq!(db.read(&r, "k").await, 2);
    // ...and W's second write comes while the replay has not answered: deferred too.
    db.set(3);
    w.invalidate_tags([Tag::model("songs")]).await;

    proxy.delay_replies(Duration::ZERO);
    until(Duration::from_secs(30), "W's breaker closed", async || {
        redis_in_use(&w).await
    })
    .await;
    assert_eq!(
        db.read(&w, "k").await,
        3,
        "the writer must read its own second write (the database holds 3)"
    );
    assert_eq!(db.read(&r, "k").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_invalidated_again_during_its_replay_stays_invalidated_on_redis() {
    a_write_during_the_replay_is_not_lost(false, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_invalidated_again_during_its_replay_stays_invalidated_on_tiered() {
    a_write_during_the_replay_is_not_lost(true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_during_a_replayed_clear_is_not_swallowed_on_redis() {
    a_write_during_the_replay_is_not_lost(false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_during_a_replayed_clear_is_not_swallowed_on_tiered() {
    a_write_during_the_replay_is_not_lost(true, true).await;
}

/// Item 3: a caller that starts after another instance's write has returned, and joins a
/// leader's computation that predates the write, must not be handed the leader's value:
/// on the Redis store nothing moves this instance's memory versions when another instance
/// writes, so only Redis can vouch for the value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_joining_after_another_instances_write_does_not_get_the_older_value() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (a, b) = (instance(server.url(), false), instance(server.url(), false));
    let db = Db::default();
    db.set(1);
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let leader = {
        let (a, db) = (a.clone(), db.clone());
        tokio::spawn(async move {
            *a.get_or_compute("count", songs(), || async move {
                let value = db.get();
                release_rx.await.ok();
                value
            })
            .await
        })
    };
    until(
        Duration::from_secs(10),
        "the leader started computing",
        async || a.stats().computations == 1,
    )
    .await;
    // Another instance writes, and its invalidation returns.
    db.set(2);
    b.invalidate_tags([Tag::model("songs")]).await;
    let follower = {
        let (a, db) = (a.clone(), db.clone());
        tokio::spawn(async move { db.read(&a, "count").await })
    };
    until(
        Duration::from_secs(10),
        "the follower missed and joined the flight",
        async || a.stats().misses >= 2,
    )
    .await;
    release_tx.send(()).unwrap();
    assert_eq!(
        leader.await.unwrap(),
        1,
        "the leader started before the write"
    );
    assert_eq!(
        follower.await.unwrap(),
        2,
        "the follower started after the write: the database holds 2"
    );
    assert_eq!(db.read(&a, "count").await, 2);
}

/// Item 6: what the memory tier held when the channel was lost must not be served when
/// the breaker opens later (memory then becomes the fallback).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_held_through_a_channel_outage_is_not_served_when_the_breaker_opens() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let proxy = Proxy::start(server.port());
    let (a, b) = (instance(proxy.url(), true), instance(server.url(), true));
    crate::support::subscribed(&a).await;
    let db = Db::default();
    db.set(1);
    assert_eq!(db.read(&a, "k").await, 1);
    assert_eq!(db.read(&a, "k").await, 1, "a memory-tier hit");
    // The channel goes (A's connections are cut once; commands reconnect at once, the
    // subscription is lost for a moment), and another instance writes meanwhile.
    let losses = a.health().await.invalidation_channel_losses;
    proxy.cut();
    until(
        Duration::from_secs(10),
        "A noticed the channel loss",
        async || a.health().await.invalidation_channel_losses > losses,
    )
    .await;
    db.set(2);
    b.invalidate_tags([Tag::model("songs")]).await;
    // Then Redis goes away entirely: A's breaker opens, memory is A's only store.
    server.kill();
    until(Duration::from_secs(20), "A's breaker opened", async || {
        let _ = db.read(&a, "probe").await;
        a.health().await.fallback_active
    })
    .await;
    assert_eq!(
        db.read(&a, "k").await,
        2,
        "memory from before the channel loss must not be served: the database holds 2"
    );
}
