//! The `Cache` API on every store (memory, Redis, tiered): get/set/delete/clear, TTLs, patterns, namespaces,
//! the disabled mode, error caching, statistics.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use querycache::{EntryOptions, Error, Tag};

use super::STORE;
use crate::support::stores::{self, TestCache};

async fn cache_with(
    f: impl FnOnce(querycache::config::CacheBuilder) -> querycache::config::CacheBuilder,
) -> Option<TestCache> {
    stores::ready(STORE, f).await
}

/// A cache whose time the test moves ([`TestCache::pass`]).
async fn clocked(
    f: impl FnOnce(querycache::config::CacheBuilder) -> querycache::config::CacheBuilder,
) -> Option<TestCache> {
    stores::clocked(STORE, f).await
}

#[tokio::test]
async fn set_get_delete_clear() {
    let Some(cache) = cache_with(|b| b).await else {
        return;
    };
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
    let Some(cache) = clocked(|b| b).await else {
        return;
    };
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
    cache.pass(Duration::from_millis(600)).await;
    assert!(cache.get::<u8>("short").await.is_none(), "expired");
    assert!(cache.get::<u8>("long").await.is_some());
}

#[tokio::test]
async fn ttl_longer_than_max_is_clamped() {
    let Some(cache) = clocked(|b| {
        b.max_ttl(Duration::from_secs(1))
            .default_ttl(Duration::from_secs(1))
    })
    .await
    else {
        return;
    };
    cache
        .set("k", 1_u8, EntryOptions::new().ttl_secs(3600))
        .await
        .unwrap();
    assert!(cache.get::<u8>("k").await.is_some());
    cache.pass(Duration::from_millis(1500)).await;
    assert!(
        cache.get::<u8>("k").await.is_none(),
        "a 1 h TTL must have been clamped to 1 s"
    );
}

#[tokio::test]
async fn namespace_policy_applies_when_the_call_sets_no_ttl() {
    let Some(cache) = clocked(|b| b.namespace_ttl("flash", Duration::from_secs(1))).await else {
        return;
    };
    let ns = EntryOptions::new().namespace("flash");
    cache.set("policy", 1_u8, ns.clone()).await.unwrap();
    cache.set("explicit", 1_u8, ns.ttl_secs(60)).await.unwrap();
    cache
        .set("default", 1_u8, EntryOptions::new())
        .await
        .unwrap();
    cache.pass(Duration::from_millis(1500)).await;
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
    let Some(cache) = clocked(|b| b.count_ttl(Duration::from_secs(1))).await else {
        return;
    };
    cache
        .set("count", 5_u64, EntryOptions::new().count_query())
        .await
        .unwrap();
    cache
        .set("list", vec![5_u64], EntryOptions::new())
        .await
        .unwrap();
    cache.pass(Duration::from_millis(1500)).await;
    assert!(cache.get::<u64>("count").await.is_none());
    assert!(cache.get::<Vec<u64>>("list").await.is_some());
}

#[tokio::test]
async fn pattern_invalidation_removes_matching_keys_only() {
    let Some(cache) = cache_with(|b| b).await else {
        return;
    };
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
    let Some(cache) = cache_with(|b| b).await else {
        return;
    };
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
    let Some(cache) = cache_with(|b| b).await else {
        return;
    };
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
    let Some(cache) = cache_with(|b| b).await else {
        return;
    };
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
    // Redis: a tag nothing depends on has no version to bump. The memory store versions
    // every tag it is given (it keeps versions only of the tags invalidated lately).
    assert_eq!(
        cache.invalidate_tags([Tag::new("nobody").unwrap()]).await,
        usize::from(super::STORE == stores::Kind::Memory)
    );
}

#[tokio::test]
async fn ttl_strategy_ignores_tag_invalidations() {
    let Some(cache) =
        cache_with(|b| b.invalidation_strategy(querycache::config::InvalidationStrategy::Ttl))
            .await
    else {
        return;
    };
    cache
        .set("k", 1, EntryOptions::new().tag(Tag::model("songs")))
        .await
        .unwrap();
    assert_eq!(cache.invalidate_tags([Tag::model("songs")]).await, 0);
    assert!(cache.get::<i32>("k").await.is_some());
}

#[tokio::test]
async fn disabled_cache_runs_every_call_through() {
    let Some(cache) = cache_with(|b| b.enabled(false)).await else {
        return;
    };
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
async fn errors_are_not_cached_unless_asked() {
    let Some(cache) = clocked(|b| b).await else {
        return;
    };
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
    cache.pass(Duration::from_millis(700)).await;
    let _ = cache.get_or_compute_result("cached", options, fail).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "for error_ttl only");
}

#[tokio::test]
async fn a_value_of_another_type_is_a_miss_not_a_panic() {
    let Some(cache) = cache_with(|b| b).await else {
        return;
    };
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
    let Some(cache) = cache_with(|b| b).await else {
        return;
    };
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
    let Some(cache) = cache_with(|b| b).await else {
        return;
    };
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
    if STORE == stores::Kind::Redis {
        // Entries live in Redis; process memory holds none.
        assert_eq!((stats.keys_count, stats.memory_usage_bytes), (0, 0));
    } else {
        assert_eq!(stats.keys_count, 1);
        assert!(stats.memory_usage_bytes > 0);
    }
    assert!(stats.p99_get_latency >= stats.avg_get_latency / 2);
    let songs = &stats.namespaces["songs"];
    assert_eq!((songs.hits, songs.misses, songs.sets), (3, 1, 1));
    assert!(songs.avg_get_latency > Duration::ZERO);
}

#[tokio::test(flavor = "current_thread")]
async fn a_waiter_that_started_after_a_write_never_gets_the_older_value() {
    // The leader computes under the old version; a write lands and returns; a caller that
    // starts only then joins the leader's flight. It must not be handed the old value.
    let Some(cache) = cache_with(|b| b).await else {
        return;
    };
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
    // The leader takes its snapshot (a round trip on Redis) and waits.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while cache.stats().computations == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the leader never started"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
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
    // The follower misses (a round trip on Redis) and waits on the leader.
    while cache.stats().misses < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the follower never missed"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::task::yield_now().await;
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
