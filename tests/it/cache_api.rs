//! The `Cache` API on the memory store: get/set/delete/clear, TTLs, patterns, namespaces,
//! the disabled mode, error caching, statistics.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use querycache::{Cache, CacheConfig, EntryOptions, Error, Tag};

fn cache_with(
    f: impl FnOnce(querycache::CacheConfigBuilder) -> querycache::CacheConfigBuilder,
) -> Cache {
    f(Cache::builder()).build_cache().expect("valid config")
}

#[tokio::test]
async fn set_get_delete_clear() {
    let cache = Cache::new();
    cache
        .set("a", vec![1, 2, 3], EntryOptions::new())
        .await
        .unwrap();
    cache
        .set("b", "bee".to_string(), EntryOptions::new())
        .await
        .unwrap();
    assert_eq!(*cache.get::<Vec<i32>>("a").await.unwrap(), vec![1, 2, 3]);
    assert!(cache.delete("a").await);
    assert!(!cache.delete("a").await, "already gone");
    assert!(cache.get::<Vec<i32>>("a").await.is_none());
    assert!(cache.get::<String>("b").await.is_some());
    cache.clear().await;
    assert!(cache.get::<String>("b").await.is_none());
    assert_eq!(cache.stats().keys_count, 0);
}

#[tokio::test]
async fn entries_expire_after_their_ttl() {
    let cache = Cache::new();
    cache
        .set(
            "short",
            1_u8,
            EntryOptions::new().ttl(Duration::from_millis(300)),
        )
        .await
        .unwrap();
    cache
        .set("long", 2_u8, EntryOptions::new().ttl_secs(60))
        .await
        .unwrap();
    assert!(cache.get::<u8>("short").await.is_some());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(cache.get::<u8>("short").await.is_none(), "expired");
    assert!(cache.get::<u8>("long").await.is_some());
}

#[tokio::test]
async fn ttl_longer_than_max_is_clamped() {
    let cache = cache_with(|b| {
        b.max_ttl(Duration::from_secs(1))
            .default_ttl(Duration::from_secs(1))
    });
    cache
        .set("k", 1_u8, EntryOptions::new().ttl_secs(3600))
        .await
        .unwrap();
    assert!(cache.get::<u8>("k").await.is_some());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        cache.get::<u8>("k").await.is_none(),
        "a 1 h TTL must have been clamped to 1 s"
    );
}

#[tokio::test]
async fn namespace_policy_applies_when_the_call_sets_no_ttl() {
    let cache = cache_with(|b| b.namespace_ttl("flash", Duration::from_secs(1)));
    let ns = EntryOptions::new().namespace("flash");
    cache.set("policy", 1_u8, ns.clone()).await.unwrap();
    cache.set("explicit", 1_u8, ns.ttl_secs(60)).await.unwrap();
    cache
        .set("default", 1_u8, EntryOptions::new())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        cache.get::<u8>("policy").await.is_none(),
        "namespace TTL of 1 s"
    );
    assert!(
        cache.get::<u8>("explicit").await.is_some(),
        "the call's TTL wins"
    );
    assert!(cache.get::<u8>("default").await.is_some());
}

#[tokio::test]
async fn count_queries_use_the_count_ttl() {
    let cache = cache_with(|b| b.count_ttl(Duration::from_secs(1)));
    cache
        .set("count", 5_u64, EntryOptions::new().count_query())
        .await
        .unwrap();
    cache
        .set("list", vec![5_u64], EntryOptions::new())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(cache.get::<u64>("count").await.is_none());
    assert!(cache.get::<Vec<u64>>("list").await.is_some());
}

#[tokio::test]
async fn pattern_invalidation_removes_matching_keys_only() {
    let cache = Cache::new();
    for key in ["user:1", "user:2:songs", "users", "song:1"] {
        cache.set(key, 1_u8, EntryOptions::new()).await.unwrap();
    }
    assert_eq!(cache.invalidate_pattern("user:*").await.unwrap(), 2);
    assert!(cache.get::<u8>("user:1").await.is_none());
    assert!(cache.get::<u8>("user:2:songs").await.is_none());
    assert!(cache.get::<u8>("users").await.is_some());
    assert!(cache.get::<u8>("song:1").await.is_some());
    let err = cache.invalidate_pattern("user:[").await.unwrap_err();
    assert!(
        matches!(err, Error::Pattern { ref pattern, .. } if pattern == "user:["),
        "{err}"
    );
}

#[tokio::test]
async fn pattern_invalidation_stops_a_computation_in_flight_from_storing() {
    let cache = Cache::new();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let c = cache.clone();
    let task = tokio::spawn(async move {
        c.get_or_compute("user:9", EntryOptions::new(), || async move {
            started_tx.send(()).ok();
            go_rx.await.ok();
            "old".to_string()
        })
        .await
    });
    started_rx.await.unwrap();
    cache.invalidate_pattern("user:*").await.unwrap();
    go_tx.send(()).unwrap();
    assert_eq!(
        *task.await.unwrap(),
        "old",
        "the caller still gets its value"
    );
    assert!(
        cache.get::<String>("user:9").await.is_none(),
        "but it was not stored"
    );
    assert_eq!(cache.stats().wasted_computations, 1);
}

#[tokio::test]
async fn namespace_invalidation_is_one_bump() {
    let cache = Cache::new();
    for i in 0..1000 {
        cache
            .set(
                &format!("a:{i}"),
                i,
                EntryOptions::new().namespace("analytics_data"),
            )
            .await
            .unwrap();
    }
    cache
        .set("other", 1, EntryOptions::new().namespace("user_sites"))
        .await
        .unwrap();
    cache.invalidate_namespace("analytics_data").await;
    assert!(cache.get::<i32>("a:0").await.is_none());
    assert!(cache.get::<i32>("a:999").await.is_none());
    assert!(cache.get::<i32>("other").await.is_some());
    assert_eq!(cache.stats().invalidations, 1);
}

#[tokio::test]
async fn tags_invalidate_their_dependents_only() {
    let cache = Cache::new();
    let user7 = Tag::new("user:7").unwrap();
    let user8 = Tag::new("user:8").unwrap();
    cache
        .set("seven", 7, EntryOptions::new().tag(user7.clone()))
        .await
        .unwrap();
    cache
        .set("eight", 8, EntryOptions::new().tag(user8))
        .await
        .unwrap();
    assert_eq!(cache.invalidate_tags([user7]).await, 1);
    assert!(cache.get::<i32>("seven").await.is_none());
    assert!(cache.get::<i32>("eight").await.is_some());
    // A tag nothing depends on has no version to bump.
    assert_eq!(
        cache.invalidate_tags([Tag::new("nobody").unwrap()]).await,
        0
    );
}

#[tokio::test]
async fn ttl_strategy_ignores_tag_invalidations() {
    let cache = cache_with(|b| b.invalidation_strategy(querycache::InvalidationStrategy::Ttl));
    cache
        .set("k", 1, EntryOptions::new().tag(Tag::model("songs")))
        .await
        .unwrap();
    assert_eq!(cache.invalidate_tags([Tag::model("songs")]).await, 0);
    assert!(cache.get::<i32>("k").await.is_some());
}

#[tokio::test]
async fn disabled_cache_runs_every_call_through() {
    let cache = cache_with(|b| b.enabled(false));
    let runs = AtomicUsize::new(0);
    for _ in 0..3 {
        let value = cache
            .get_or_compute("k", EntryOptions::new(), || async {
                runs.fetch_add(1, Ordering::SeqCst);
                5_u8
            })
            .await;
        assert_eq!(*value, 5);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    cache.set("k", 1_u8, EntryOptions::new()).await.unwrap();
    assert!(cache.get::<u8>("k").await.is_none());
    let stats = cache.stats();
    assert_eq!((stats.bypassed, stats.sets, stats.hits), (3, 0, 0));
}

#[tokio::test]
async fn disabled_from_the_environment() {
    let config = CacheConfig::from_vars([("CACHE_ENABLED", "false")]).unwrap();
    assert!(!Cache::with_config(config).config().enabled());
}

#[tokio::test]
async fn errors_are_not_cached_unless_asked() {
    let cache = Cache::new();
    let runs = AtomicUsize::new(0);
    let fail = || async {
        runs.fetch_add(1, Ordering::SeqCst);
        Err::<u8, String>("boom".into())
    };
    assert!(
        cache
            .try_get_or_compute("plain", EntryOptions::new(), fail)
            .await
            .is_err()
    );
    assert!(
        cache
            .try_get_or_compute("plain", EntryOptions::new(), fail)
            .await
            .is_err()
    );
    assert_eq!(
        runs.swap(0, Ordering::SeqCst),
        2,
        "plain mode never caches an error"
    );

    let options = EntryOptions::new().error_ttl(Duration::from_millis(400));
    for _ in 0..3 {
        let result = cache
            .get_or_compute_result("cached", options.clone(), fail)
            .await;
        assert_eq!(*result, Err("boom".to_string()));
    }
    assert_eq!(runs.swap(0, Ordering::SeqCst), 1, "the error is cached");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let _ = cache.get_or_compute_result("cached", options, fail).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "for error_ttl only");
}

#[tokio::test]
async fn a_value_of_another_type_is_a_miss_not_a_panic() {
    let cache = Cache::new();
    cache
        .set("k", "text".to_string(), EntryOptions::new())
        .await
        .unwrap();
    assert!(cache.get::<u64>("k").await.is_none());
    assert_eq!(cache.stats().errors, 1);
    let value = cache
        .get_or_compute("k", EntryOptions::new(), || async { 9_u64 })
        .await;
    assert_eq!(*value, 9);
}

#[tokio::test]
async fn invalid_keys_and_tags_are_clear_errors() {
    let cache = Cache::new();
    let err = cache.set("", 1_u8, EntryOptions::new()).await.unwrap_err();
    assert!(err.to_string().contains("key"), "{err}");
    let err = Tag::new("bad\ntag").unwrap_err();
    assert!(err.to_string().contains("control character"), "{err}");
    // An invalid key given to get_or_compute still gets the caller its value.
    let value = cache
        .get_or_compute("", EntryOptions::new(), || async { 3_u8 })
        .await;
    assert_eq!(*value, 3);
}

#[tokio::test]
async fn stats_count_hits_misses_sets_and_latency_per_namespace() {
    let cache = Cache::new();
    let options = EntryOptions::new().namespace("songs");
    for _ in 0..4 {
        cache
            .get_or_compute("s:1", options.clone(), || async { 1_u32 })
            .await;
    }
    let stats = cache.stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.sets, stats.computations),
        (3, 1, 1, 1)
    );
    assert!((stats.hit_rate - 0.75).abs() < 1e-9);
    assert_eq!(stats.keys_count, 1);
    assert!(stats.memory_usage_bytes > 0);
    assert!(stats.p99_get_latency >= stats.avg_get_latency / 2);
    let songs = &stats.namespaces["songs"];
    assert_eq!((songs.hits, songs.misses, songs.sets), (3, 1, 1));
    assert!(songs.avg_get_latency > Duration::ZERO);
}

#[tokio::test]
async fn memory_budget_is_respected() {
    let cache = cache_with(|b| b.memory_max_bytes(256 * 1024));
    let payload = "x".repeat(1000);
    for i in 0..2000 {
        cache
            .set(&format!("k{i}"), payload.clone(), EntryOptions::new())
            .await
            .unwrap();
    }
    let stats = cache.stats();
    assert!(
        stats.memory_usage_bytes <= 256 * 1024,
        "{}",
        stats.memory_usage_bytes
    );
    assert!(
        stats.keys_count < 2000 && stats.keys_count > 50,
        "{}",
        stats.keys_count
    );
}

#[tokio::test]
async fn hits_share_one_allocation() {
    let cache = Cache::new();
    let a = cache
        .get_or_compute("k", EntryOptions::new(), || async { vec![0_u8; 64] })
        .await;
    let b = cache.get::<Vec<u8>>("k").await.unwrap();
    assert!(
        Arc::ptr_eq(&a, &b),
        "a hit hands back the stored Arc, not a decoded copy"
    );
}

#[test]
fn config_errors_name_variable_and_value() {
    let err = CacheConfig::from_vars([("CACHE_MAX_TTL", "ten")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration: CACHE_MAX_TTL=\"ten\": expected a whole number of seconds"
    );
    let err = CacheConfig::from_vars([("CACHE_DEFAULT_TTL", "7200"), ("CACHE_MAX_TTL", "3600")])
        .unwrap_err();
    assert!(
        err.to_string().contains("CACHE_DEFAULT_TTL") && err.to_string().contains("CACHE_MAX_TTL"),
        "{err}"
    );
    let err = CacheConfig::from_vars([("REDIS_URL", "no-such-scheme://127.0.0.1:1")]).unwrap_err();
    assert!(err.to_string().contains("REDIS_URL"), "{err}");
}

/// Captures what `tracing` prints while a test runs on the current thread.
fn capture_logs() -> (
    Arc<std::sync::Mutex<Vec<u8>>>,
    tracing::subscriber::DefaultGuard,
) {
    #[derive(Clone)]
    struct Sink(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Sink(buf.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    (buf, tracing::subscriber::set_default(subscriber))
}

#[tokio::test(flavor = "current_thread")]
async fn tracing_events_in_the_briefs_words() {
    let (logs, _guard) = capture_logs();
    let cache = cache_with(|b| {
        b.max_ttl(Duration::from_secs(60))
            .default_ttl(Duration::from_secs(60))
    });
    let options = EntryOptions::new()
        .namespace("songs")
        .ttl_secs(7200)
        .tag(Tag::model("songs"));
    cache
        .get_or_compute("songs:1", options.clone(), || async { 1_u8 })
        .await;
    cache
        .get_or_compute("songs:1", options, || async { 1_u8 })
        .await;
    cache
        .invalidate_tags([Tag::model("songs"), Tag::bulk("songs")])
        .await;
    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("TTL clamped to CACHE_MAX_TTL"), "{logs}");
    assert!(logs.contains("requested_secs=7200"), "{logs}");
    assert!(
        logs.contains("Cache SET: songs songs:1 (TTL: 60s)"),
        "{logs}"
    );
    assert!(logs.contains("Cache MISS: songs:1"), "{logs}");
    assert!(logs.contains("Cache HIT: songs:1 (age: 0s)"), "{logs}");
    assert!(logs.contains("Cache INVALIDATED: 2 tags"), "{logs}");
}

#[tokio::test]
async fn the_global_cache_is_the_installed_one() {
    // The only test in this binary that touches the global cache.
    let cache = Cache::new();
    querycache::install(cache.clone()).expect("first install");
    assert!(matches!(
        querycache::install(Cache::new()),
        Err(Error::AlreadyInstalled)
    ));
    cache
        .set("global:probe", 1_u8, EntryOptions::new())
        .await
        .unwrap();
    assert!(
        querycache::global()
            .get::<u8>("global:probe")
            .await
            .is_some()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_waiter_that_started_after_a_write_never_gets_the_older_value() {
    // The leader computes under the old version; a write lands and returns; a caller that
    // starts only then joins the leader's flight. It must not be handed the old value.
    let cache = Cache::new();
    let options = EntryOptions::new().tag(Tag::model("songs"));
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let leader = {
        let (cache, options) = (cache.clone(), options.clone());
        tokio::spawn(async move {
            cache
                .get_or_compute("count", options, || async move {
                    release_rx.await.ok();
                    "before the write".to_string()
                })
                .await
        })
    };
    tokio::task::yield_now().await; // the leader takes its snapshot and waits
    assert_eq!(cache.stats().computations, 1);

    cache.invalidate_tags([Tag::model("songs")]).await; // the write returned

    let follower = {
        let (cache, options) = (cache.clone(), options.clone());
        tokio::spawn(async move {
            cache
                .get_or_compute("count", options, || async { "after the write".to_string() })
                .await
        })
    };
    tokio::task::yield_now().await; // the follower misses and waits on the leader
    assert_eq!(cache.stats().misses, 2, "both callers missed");
    release_tx.send(()).unwrap();

    assert_eq!(
        *leader.await.unwrap(),
        "before the write",
        "the leader started before the write"
    );
    assert_eq!(*follower.await.unwrap(), "after the write");
    let stats = cache.stats();
    assert_eq!(stats.computations, 2, "the follower computed for itself");
    assert_eq!(stats.wasted_computations, 1);
    assert_eq!(
        *cache.get::<String>("count").await.unwrap(),
        "after the write"
    );
}
