//! Coherence of tiered instances sharing one Redis, under network faults a redis-server
//! cannot make by itself (through the TCP fault proxy of `support::proxy`).
//!
//! Each test runs its own redis-server (never the shared one).

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

    use querycache::{Cache, EntryOptions, StoreKind, Tag};

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
            .build_cache()
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
