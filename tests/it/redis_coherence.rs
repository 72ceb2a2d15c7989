//! Redis coherence under faults (issue 19): each test injects one fault the way it was
//! reproduced, and checks that no instance serves a value that a write which had already
//! returned invalidated.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use querycache::{Cache, EntryOptions, Tag, config::StoreKind};

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
        .build()
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

/// Item 2: a full Redis (`maxmemory` reached under `noeviction`) refuses the bump script
/// whole, its `PUBLISH` with it. The invalidation must still reach the other instances
/// (the versions are deleted instead, and the message published), and show in health.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_redis_still_carries_invalidations_to_other_instances() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (a, b) = (instance(server.url(), true), instance(server.url(), true));
    crate::support::subscribed(&a).await;
    crate::support::subscribed(&b).await;
    let db = Db::default();
    db.set(2);
    assert_eq!(db.read(&a, "k").await, 2);
    assert_eq!(db.read(&a, "k").await, 2, "A serves 2 from its memory tier");
    // Redis is full: nothing that needs memory is accepted any more.
    let _: () = server.query(
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory-policy")
            .arg("noeviction"),
    );
    let _: () = server.query(redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg("1"));
    let refused: redis::RedisResult<()> = server
        .client()
        .get_connection()
        .and_then(|mut c| redis::cmd("SET").arg("probe").arg("x").query(&mut c));
    assert!(refused.is_err(), "the server is full");

    db.set(3);
    b.invalidate_tags([Tag::model("songs")]).await;
    assert_eq!(
        b.health().await.full_redis_invalidations,
        1,
        "B's invalidation found Redis full"
    );
    until(
        Duration::from_secs(10),
        "A hears B's write although Redis is full",
        async || db.read(&a, "k").await == 3,
    )
    .await;
    // Nothing was stored meanwhile: every read recomputes, none serves 2.
    for _ in 0..3 {
        assert_eq!(db.read(&a, "k").await, 3);
    }
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

// ---------------------------------------------------------------------------------------
// Heartbeat (issue 19, item 5): a subscription whose flow goes silent (a NAT, load balancer
// or proxy that forgot it, without a reset) is noticed within the heartbeat deadline and
// handled as a channel loss: the memory tier is dropped and bypassed, so the instance stops
// serving what another instance's write made stale.
// ---------------------------------------------------------------------------------------

mod heartbeat {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use querycache::{Cache, EntryOptions, Tag, config::StoreKind};

    use crate::support::proxy::Proxy;
    use crate::support::redis::RedisServer;
    use crate::support::{subscribed, until};

    const HEARTBEAT: Duration = Duration::from_millis(250);
    /// Three heartbeats: the subscriber's deadline.
    const DEADLINE: Duration = Duration::from_millis(750);
    /// Scheduling, the retry of the subscription, a slow CI machine.
    const MARGIN: Duration = Duration::from_secs(3);

    fn instance(url: String) -> Cache {
        Cache::builder()
            .redis_url(url)
            .store(StoreKind::Tiered)
            .key_prefix("qccoherence")
            .redis_timeout(Duration::from_millis(2000))
            .channel_heartbeat(HEARTBEAT)
            .breaker_cooldown(Duration::from_millis(100))
            .build()
            .expect("valid config")
    }

    fn options() -> EntryOptions {
        EntryOptions::new().ttl_secs(60).tag(Tag::model("songs"))
    }

    /// A's value, computed from the "database" when A has to compute.
    async fn read(cache: &Cache, database: &Arc<AtomicU64>) -> u64 {
        let database = Arc::clone(database);
        *cache
            .get_or_compute("songs:count", options(), || async move {
                database.load(Ordering::SeqCst)
            })
            .await
    }

    /// A (through `proxy`) and B (direct) on `server`, both subscribed; A has cached 2
    /// and serves it from its memory tier.
    async fn two_instances(
        server: &RedisServer,
        proxy: &Proxy,
        database: &Arc<AtomicU64>,
    ) -> (Cache, Cache) {
        let (a, b) = (instance(proxy.url()), instance(server.url()));
        subscribed(&a).await;
        subscribed(&b).await;
        database.store(2, Ordering::SeqCst);
        assert_eq!(read(&a, database).await, 2);
        let memory_hits = a.stats().memory_hits;
        assert_eq!(a.get::<u64>("songs:count").await.as_deref(), Some(&2));
        assert_eq!(
            a.stats().memory_hits,
            memory_hits + 1,
            "premise: A serves 2 from memory"
        );
        (a, b)
    }

    /// B writes: the database moves to 3 and the tag is invalidated.
    async fn write_through_b(b: &Cache, database: &Arc<AtomicU64>) {
        database.store(3, Ordering::SeqCst);
        b.invalidate_tags([Tag::model("songs")]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn heartbeat_a_silently_dropped_subscription_is_a_channel_loss() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        let proxy = Proxy::start(server.port());
        let database = Arc::new(AtomicU64::new(0));
        let (a, b) = two_instances(&server, &proxy, &database).await;
        let losses = a.health().await.invalidation_channel_losses;

        // Only the subscription's flow goes silent: A's commands still reach Redis.
        proxy.silence_subscribers();
        let silenced = Instant::now();
        write_through_b(&b, &database).await;

        until(
            DEADLINE + MARGIN,
            "A notices its silent subscription",
            async || {
                let health = a.health().await;
                health.invalidation_channel == Some(false)
                    && health.invalidation_channel_losses > losses
            },
        )
        .await;
        println!(
            "silent subscription noticed {:?} after the silence (deadline {DEADLINE:?})",
            silenced.elapsed()
        );
        assert!(proxy.dropped() > 0, "premise: the silence was hit");
        // The memory tier is gone and bypassed: A reads Redis, which knows B's write.
        assert_eq!(a.get::<u64>("songs:count").await.as_deref(), None);
        assert_eq!(read(&a, &database).await, 3);
        assert_eq!(read(&a, &database).await, 3);
        let health = a.health().await;
        assert!(!health.fallback_active, "A's commands were never cut");
        assert_eq!(
            health.invalidation_channel,
            Some(false),
            "the flow is still silent"
        );

        // The flow back: A subscribes again and hears B's writes again.
        proxy.speak_to_subscribers();
        subscribed(&a).await;
        assert_eq!(read(&a, &database).await, 3);
        database.store(4, Ordering::SeqCst);
        b.invalidate_tags([Tag::model("songs")]).await;
        until(Duration::from_secs(5), "A hears B again", async || {
            read(&a, &database).await == 4
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn heartbeat_a_fully_silent_network_never_serves_the_old_value() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        let proxy = Proxy::start(server.port());
        let database = Arc::new(AtomicU64::new(0));
        let (a, b) = two_instances(&server, &proxy, &database).await;
        let losses = a.health().await.invalidation_channel_losses;

        // Everything between A and Redis goes silent: its commands time out too (and open
        // its breaker), but the memory tier must not be the fallback that serves 2.
        proxy.silence();
        let silenced = Instant::now();
        write_through_b(&b, &database).await;

        until(
            DEADLINE + MARGIN,
            "A notices its silent subscription",
            async || {
                let health = a.health().await;
                health.invalidation_channel == Some(false)
                    && health.invalidation_channel_losses > losses
            },
        )
        .await;
        println!(
            "silent network noticed {:?} after the silence (deadline {DEADLINE:?})",
            silenced.elapsed()
        );
        for _ in 0..3 {
            assert_ne!(a.get::<u64>("songs:count").await.as_deref(), Some(&2));
            assert_eq!(read(&a, &database).await, 3);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn heartbeat_a_quiet_but_live_channel_is_not_a_loss() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        let proxy = Proxy::start(server.port());
        let database = Arc::new(AtomicU64::new(0));
        let (a, _b) = two_instances(&server, &proxy, &database).await;
        let losses = a.health().await.invalidation_channel_losses;
        // No invalidation at all for many deadlines: the pings alone keep the channel up
        // (an observation window, not a wait for a condition).
        let watched = Instant::now();
        while watched.elapsed() < DEADLINE * 4 {
            let health = a.health().await;
            assert_eq!(health.invalidation_channel, Some(true));
            assert_eq!(health.invalidation_channel_losses, losses);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(a.get::<u64>("songs:count").await.as_deref(), Some(&2));
    }
}

// ---------------------------------------------------------------------------------------
// Coherence when Redis comes back as another incarnation of itself (issue 19, item 1): a
// server restarted from a snapshot holds entries invalidated since, under the very tag
// versions they recorded. The store epoch must kill every one of them.
//
// Each test runs its own redis-server (never the shared one), saves a snapshot and
// restarts it from that snapshot.
// ---------------------------------------------------------------------------------------

mod epoch {

    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::Duration;

    use querycache::{Cache, EntryOptions, Tag, config::StoreKind};

    use crate::support::redis::RedisServer;
    use crate::support::{subscribed, until};

    fn instance(server: &RedisServer, kind: StoreKind) -> Cache {
        Cache::builder()
            .redis_url(server.url())
            .store(kind)
            .key_prefix("qccoherence")
            .redis_timeout(Duration::from_millis(2000))
            .breaker_cooldown(Duration::from_millis(100))
            .build()
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
        let rotations = async || {
            a.health().await.redis_epoch_rotations + b.health().await.redis_epoch_rotations
        };
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
}
