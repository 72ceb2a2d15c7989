//! `Cache::prometheus_text`: parsed line by line after traffic, on the memory store and on
//! the tiered store against a private redis-server.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use querycache::{Cache, EntryOptions, Tag, config::StoreKind};

use crate::support::redis::RedisServer;
use crate::support::{subscribed, until};

/// The exposition, parsed: metric families (name → type) and samples (series → value).
#[derive(Debug, Default)]
struct Exposition {
    types: BTreeMap<String, String>,
    helps: BTreeSet<String>,
    samples: BTreeMap<String, f64>,
}

impl Exposition {
    /// Parses `text`, asserting every line is a HELP, TYPE or UNIT line, a sample of a
    /// declared family, or the final `# EOF`.
    fn parse(text: &str) -> Self {
        let mut out = Exposition::default();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.last(), Some(&"# EOF"), "ends with # EOF");
        for line in &lines[..lines.len() - 1] {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').expect("HELP name text");
                assert!(!help.is_empty(), "{line}");
                out.helps.insert(name.to_owned());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE name type");
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                out.types.insert(name.to_owned(), kind.to_owned());
            } else if line.starts_with("# UNIT ") {
            } else {
                assert!(!line.starts_with('#'), "unexpected comment: {line}");
                let (series, value) = line.rsplit_once(' ').expect("series value");
                let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
                let name = series.split('{').next().unwrap();
                assert!(name.starts_with("querycache_"), "{line}");
                let family = out
                    .types
                    .keys()
                    .find(|f| {
                        name == f.as_str()
                            || ["_total", "_bucket", "_sum", "_count"]
                                .iter()
                                .any(|s| name.strip_suffix(s) == Some(f.as_str()))
                    })
                    .unwrap_or_else(|| panic!("sample of an undeclared family: {line}"));
                assert!(out.helps.contains(family), "{family} has a HELP line");
                if series.contains('{') {
                    assert!(series.ends_with('}'), "{line}");
                }
                assert!(
                    out.samples.insert(series.to_owned(), value).is_none(),
                    "{line} twice"
                );
            }
        }
        out
    }

    fn value(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("no sample {series} in {:#?}", self.samples.keys()))
    }
}

#[tokio::test]
async fn the_text_parses_and_counts_the_traffic_per_namespace() {
    let cache = Cache::new();
    let songs = EntryOptions::new()
        .namespace("songs")
        .tag(Tag::model("songs"));
    for _ in 0..5 {
        cache
            .get_or_compute("songs:count", songs.clone(), || async { 3_u64 })
            .await;
    }
    let users = EntryOptions::new().namespace("users");
    cache
        .get_or_compute("user:1", users.clone(), || async { 1_u8 })
        .await;
    cache.invalidate_tags([Tag::model("songs")]).await;
    let _ = cache.get::<u64>("songs:count").await; // a direct read: a miss, namespace "default"

    let text = cache.prometheus_text();
    let m = Exposition::parse(&text);
    for (family, kind) in [
        ("querycache_hits", "counter"),
        ("querycache_misses", "counter"),
        ("querycache_sets", "counter"),
        ("querycache_invalidations", "counter"),
        ("querycache_errors", "counter"),
        ("querycache_computations", "counter"),
        ("querycache_wasted_computations", "counter"),
        ("querycache_replica_behind", "counter"),
        ("querycache_bypassed", "counter"),
        ("querycache_fallback_active", "gauge"),
        ("querycache_redis_connected", "gauge"),
        ("querycache_lookup_duration_seconds", "histogram"),
        ("querycache_memory_bytes", "gauge"),
        ("querycache_keys", "gauge"),
    ] {
        assert_eq!(
            m.types.get(family).map(String::as_str),
            Some(kind),
            "{family}"
        );
    }
    assert_eq!(
        m.value(r#"querycache_hits_total{namespace="songs",tier="memory"}"#),
        4.0
    );
    assert_eq!(
        m.value(r#"querycache_misses_total{namespace="songs"}"#),
        1.0
    );
    assert_eq!(
        m.value(r#"querycache_hits_total{namespace="users",tier="memory"}"#),
        0.0
    );
    assert_eq!(
        m.value(r#"querycache_misses_total{namespace="users"}"#),
        1.0
    );
    assert_eq!(
        m.value(r#"querycache_misses_total{namespace="default"}"#),
        1.0
    );
    assert!(
        !text.contains(r#"tier="redis""#),
        "the memory store has no Redis tier"
    );
    assert_eq!(m.value(r#"querycache_sets_total{namespace="songs"}"#), 1.0);
    assert_eq!(
        m.value(r#"querycache_computations_total{namespace="users"}"#),
        1.0
    );
    assert_eq!(m.value("querycache_invalidations_total"), 1.0);
    assert_eq!(m.value("querycache_errors_total"), 0.0);
    assert_eq!(m.value("querycache_fallback_active"), 0.0);
    assert_eq!(m.value("querycache_redis_connected"), 0.0);
    let keys = cache.stats().keys_count;
    assert!(keys >= 1);
    assert_eq!(m.value("querycache_keys"), keys as f64);
    assert_eq!(
        m.value("querycache_memory_bytes"),
        cache.stats().memory_usage_bytes as f64
    );

    // The histogram: cumulative buckets ending in +Inf, which equals the count.
    let ns = r#"namespace="songs""#;
    let count = m.value(&format!("querycache_lookup_duration_seconds_count{{{ns}}}"));
    assert_eq!(count, 5.0);
    let sum = m.value(&format!("querycache_lookup_duration_seconds_sum{{{ns}}}"));
    assert!(sum > 0.0 && sum < 5.0, "{sum}");
    let buckets: Vec<(f64, f64)> = m
        .samples
        .iter()
        .filter_map(|(series, value)| {
            let labels = series.strip_prefix("querycache_lookup_duration_seconds_bucket{")?;
            labels.contains(ns).then_some(())?;
            let le = labels.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, *value))
        })
        .collect();
    assert!(buckets.len() > 10, "{buckets:?}");
    let mut sorted = buckets.clone();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(
        sorted.windows(2).all(|w| w[0].1 <= w[1].1),
        "cumulative: {sorted:?}"
    );
    assert_eq!(sorted.last().unwrap(), &(f64::INFINITY, 5.0));
}

#[tokio::test]
async fn register_metrics_adds_the_cache_to_an_application_registry() {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::registry::Registry;

    let cache = Cache::new();
    let mut registry = Registry::with_prefix("querycache");
    let requests: Counter = Counter::default();
    registry.register("app_requests", "Requests served", requests.clone());
    cache.register_metrics(&mut registry);
    requests.inc();
    let _ = cache.get::<u8>("k").await;
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let m = Exposition::parse(&text);
    assert_eq!(m.value("querycache_app_requests_total"), 1.0);
    assert_eq!(
        m.value(r#"querycache_misses_total{namespace="default"}"#),
        1.0
    );
}

fn tiered(server: &RedisServer) -> Cache {
    Cache::builder()
        .redis_url(server.url())
        .store(StoreKind::Tiered)
        .key_prefix("qcmetrics")
        .redis_timeout(Duration::from_millis(200))
        .breaker_cooldown(Duration::from_millis(100))
        .build()
        .expect("valid config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiered_cache_labels_hits_by_tier_and_reports_the_breaker() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let writer = tiered(&server);
    let reader = tiered(&server);
    subscribed(&writer).await;
    subscribed(&reader).await;
    let options = EntryOptions::new().namespace("songs");
    writer
        .get_or_compute("songs:count", options.clone(), || async { 3_u64 })
        .await;
    // The reader's memory tier is empty: Redis answers, then its memory tier.
    for _ in 0..2 {
        let v = reader
            .get_or_compute("songs:count", options.clone(), || async { 0_u64 })
            .await;
        assert_eq!(*v, 3);
    }
    let m = Exposition::parse(&reader.prometheus_text());
    assert_eq!(
        m.value(r#"querycache_hits_total{namespace="songs",tier="redis"}"#),
        1.0
    );
    assert_eq!(
        m.value(r#"querycache_hits_total{namespace="songs",tier="memory"}"#),
        1.0
    );
    assert_eq!(
        m.value(r#"querycache_misses_total{namespace="songs"}"#),
        0.0
    );
    assert_eq!(m.value("querycache_redis_connected"), 1.0);
    assert_eq!(m.value("querycache_fallback_active"), 0.0);
    let w = Exposition::parse(&writer.prometheus_text());
    assert_eq!(w.value(r#"querycache_sets_total{namespace="songs"}"#), 1.0);
    assert_eq!(
        w.value(r#"querycache_misses_total{namespace="songs"}"#),
        1.0
    );

    // Redis goes away: the breaker opens on the next failures, and the gauges say so.
    server.kill();
    until(Duration::from_secs(10), "fallback active", async || {
        let _ = reader.get::<u64>("other").await;
        Exposition::parse(&reader.prometheus_text()).value("querycache_fallback_active") == 1.0
    })
    .await;
    let m = Exposition::parse(&reader.prometheus_text());
    assert_eq!(m.value("querycache_redis_connected"), 0.0);
    assert!(m.value("querycache_errors_total") >= 1.0);
}

#[tokio::test]
async fn freshness_counters_are_exposed() {
    let clock = querycache::testing::ManualClock::new();
    let cache = Cache::builder().clock(clock.clone()).build().unwrap();
    let options = EntryOptions::new()
        .ttl(std::time::Duration::from_millis(100))
        .fail_safe(std::time::Duration::from_secs(60));
    cache
        .fetch("fs", options.clone(), || async { Ok::<_, String>(1_u8) })
        .await
        .unwrap();
    clock.advance(std::time::Duration::from_millis(200));
    let served = cache
        .fetch("fs", options, || async { Err::<u8, _>("down".to_owned()) })
        .await
        .unwrap();
    assert!(served.is_stale());
    let m = Exposition::parse(&cache.prometheus_text());
    for family in [
        "querycache_stale_served",
        "querycache_background_refreshes",
        "querycache_early_refreshes",
        "querycache_refresh_errors",
        "querycache_fail_safe_activations",
        "querycache_soft_timeouts",
        "querycache_hard_timeouts",
        "querycache_lease_waits",
        "querycache_lease_wait_seconds",
    ] {
        assert_eq!(
            m.types.get(family).map(String::as_str),
            Some("counter"),
            "{family}"
        );
    }
    assert_eq!(m.value("querycache_fail_safe_activations_total"), 1.0);
    assert_eq!(m.value("querycache_stale_served_total"), 1.0);
    assert_eq!(m.value("querycache_lease_wait_seconds_total"), 0.0);
}
