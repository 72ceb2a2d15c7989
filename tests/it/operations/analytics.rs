//! `Cache::analytics` after real traffic: top keys, timeline, turnover, namespaces,
//! recommendations.

use std::time::{SystemTime, UNIX_EPOCH};

use querycache::{Cache, EntryOptions, Tag, analytics::RecommendationLevel};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `n` lookups of `key` in `namespace`, after the first one computed it.
async fn read(cache: &Cache, key: &str, namespace: &str, n: usize) {
    let options = EntryOptions::new().namespace(namespace);
    for _ in 0..n {
        cache
            .get_or_compute(key, options.clone(), || async { 1_u32 })
            .await;
    }
}

#[tokio::test]
async fn top_keys_rank_the_most_accessed_keys_with_their_hits_and_misses() {
    let cache = Cache::new();
    // Interleaved, so that sampling sees every key throughout.
    for _ in 0..80 {
        read(&cache, "song:hot", "songs", 20).await;
        read(&cache, "song:warm", "songs", 8).await;
        read(&cache, "user:cold", "users", 2).await;
    }
    for i in 0..100 {
        read(&cache, &format!("once:{i}"), "songs", 1).await;
    }
    let usage = cache.analytics().usage;
    let top: Vec<&str> = usage.top_keys.iter().map(|k| k.key.as_str()).collect();
    assert_eq!(&top[..3], ["song:hot", "song:warm", "user:cold"], "{top:?}");
    assert!(usage.top_keys.len() <= querycache::analytics::TOP_KEYS);

    // 1600 lookups of the hot key, one of them a miss; sampled 1 in 16 and scaled back.
    let hot = &usage.top_keys[0];
    assert_eq!(hot.namespace, "songs");
    assert!((1100..=2100).contains(&hot.hits), "{hot:?}");
    assert!(hot.misses <= 16, "{hot:?}");
    assert!(hot.hit_rate > 0.98, "{hot:?}");
    assert_eq!(usage.top_keys[2].namespace, "users");
    assert_eq!(usage.keys_count, 103);
    assert!(usage.memory_usage_bytes > 0);
}

#[tokio::test]
async fn the_timeline_has_fifteen_minutes_of_aligned_buckets_holding_the_traffic() {
    let cache = Cache::new();
    let before = now_ms();
    read(&cache, "a", "songs", 30).await; // 1 miss, 29 hits
    let _ = cache.get::<u32>("absent").await; // 1 miss
    cache.invalidate_tags([Tag::model("songs")]).await;
    let analytics = cache.analytics();
    let after = now_ms();

    let timeline = &analytics.timeline;
    assert_eq!(timeline.len(), 90);
    for pair in timeline.windows(2) {
        assert_eq!(pair[1].start_ms - pair[0].start_ms, 10_000, "oldest first");
    }
    let last = timeline.last().unwrap();
    assert_eq!(last.start_ms % 10_000, 0, "aligned on 10 s");
    assert!(last.start_ms <= after && after < last.start_ms + 10_000 + 1_000);
    assert!(timeline[0].start_ms + 15 * 60 * 1000 > before);

    // The traffic may straddle a bucket boundary: count it over the whole timeline.
    let hits: u64 = timeline.iter().map(|b| b.hits).sum();
    let misses: u64 = timeline.iter().map(|b| b.misses).sum();
    let sets: u64 = timeline.iter().map(|b| b.sets).sum();
    let invalidations: u64 = timeline.iter().map(|b| b.invalidations).sum();
    assert_eq!((hits, misses, sets, invalidations), (29, 2, 1, 1));
    let busy: Vec<_> = timeline.iter().filter(|b| b.hits + b.misses > 0).collect();
    assert!(busy.len() <= 2);
    for bucket in &busy {
        let rate = bucket.hit_rate.expect("a rate where there were lookups");
        assert!((rate - bucket.hits as f64 / (bucket.hits + bucket.misses) as f64).abs() < 1e-9);
    }
    assert!(
        timeline
            .iter()
            .filter(|b| b.hits + b.misses == 0)
            .all(|b| b.hit_rate.is_none())
    );
    let json = serde_json::to_value(&analytics).unwrap();
    assert_eq!(json["timeline"].as_array().unwrap().len(), 90);
    assert!(json["timeline"][0]["hit_rate"].is_null());
}

#[tokio::test]
async fn efficiency_namespaces_and_turnover_reflect_the_traffic() {
    let cache = Cache::new();
    read(&cache, "song:1", "songs", 10).await; // 1 miss, 9 hits
    read(&cache, "user:1", "users", 2).await; // 1 miss, 1 hit
    for i in 0..4 {
        cache
            .set(&format!("k{i}"), i, EntryOptions::new())
            .await
            .unwrap();
    }
    for _ in 0..3 {
        cache.invalidate_tags([Tag::model("songs")]).await;
    }
    let analytics = cache.analytics();
    let efficiency = &analytics.efficiency;
    assert_eq!(efficiency.lookups, 12);
    assert!((efficiency.hit_rate - 10.0 / 12.0).abs() < 1e-9);
    assert!(
        (efficiency.efficiency_score - 83.3).abs() < 1e-9,
        "{efficiency:?}"
    );
    assert!(efficiency.avg_response_time_ms > 0.0);
    assert!(efficiency.p99_response_time_ms >= efficiency.avg_response_time_ms * 0.5);

    let songs = &analytics.namespaces["songs"];
    assert_eq!(
        (songs.hits, songs.misses, songs.sets, songs.computations),
        (9, 1, 1, 1)
    );
    assert!((songs.hit_rate - 0.9).abs() < 1e-9);
    assert!(songs.avg_response_time_ms > 0.0);
    let users = &analytics.namespaces["users"];
    assert_eq!((users.hits, users.misses), (1, 1));

    // 6 sets and 3 invalidations within a window of a second or so (the minimum).
    let turnover = &analytics.usage.turnover;
    assert!(turnover.window_secs >= 1 && turnover.window_secs <= 300);
    let ratio = turnover.sets_per_minute / turnover.invalidations_per_minute;
    assert!((ratio - 2.0).abs() < 1e-9, "{turnover:?}");
    assert!(turnover.sets_per_minute >= 6.0 * 60.0 / turnover.window_secs as f64 - 1e-9);
}

#[tokio::test]
async fn recommendations_follow_the_traffic() {
    let cache = Cache::new();
    let advice = cache.analytics().recommendations;
    assert_eq!(advice.len(), 1);
    assert!(
        advice[0]
            .message
            .contains("Not enough traffic yet: 0 lookups")
    );

    // A healthy cache: 200 lookups, 1 miss.
    read(&cache, "chart", "charts", 200).await;
    let advice = cache.analytics().recommendations;
    assert_eq!(advice.len(), 1, "{advice:?}");
    assert_eq!(advice[0].level, RecommendationLevel::Info);
    assert!(advice[0].message.contains("excellent"), "{advice:?}");

    // Now a namespace whose entries are invalidated after every read.
    let options = EntryOptions::new()
        .namespace("reports")
        .tag(Tag::model("reports"));
    for _ in 0..500 {
        cache
            .get_or_compute("report", options.clone(), || async { 7_u8 })
            .await;
        cache.invalidate_tags([Tag::model("reports")]).await;
        cache.invalidate_tags([Tag::model("audit")]).await;
    }
    let advice = cache.analytics().recommendations;
    let low = advice
        .iter()
        .find(|r| r.message.starts_with("Hit rate is low"))
        .unwrap_or_else(|| panic!("{advice:?}"));
    assert_eq!(low.level, RecommendationLevel::Warning);
    assert!(
        low.message
            .contains("Worst namespace: reports (0% of 500 lookups)"),
        "{}",
        low.message
    );
    assert!(
        low.message
            .contains("Invalidations (1000) outnumber sets (501)"),
        "{}",
        low.message
    );
    assert!(advice.iter().all(|r| !r.message.contains("excellent")));
}
