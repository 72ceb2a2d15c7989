//! The `metrics` facade (feature `metrics`): what `Cache::record_metrics` publishes, read
//! back from metrics-util's `DebuggingRecorder`, equals `Cache::stats`, under the names of
//! the Prometheus exposition; the reporter task publishes without being asked.

use std::collections::BTreeMap;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use querycache::{Cache, EntryOptions, Tag};

use crate::support::until;

/// A published series: its name and its labels, sorted (`name{a="1",b="2"}`).
fn series(key: &metrics::Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}=\"{}\"", l.key(), l.value()))
        .collect();
    labels.sort();
    if labels.is_empty() {
        key.name().to_owned()
    } else {
        format!("{}{{{}}}", key.name(), labels.join(","))
    }
}

/// Everything the recorder holds: series → value (counters and gauges as f64), and the
/// names that have a description.
fn read(snapshotter: &Snapshotter) -> (BTreeMap<String, f64>, Vec<String>) {
    let mut values = BTreeMap::new();
    let mut described = Vec::new();
    for (key, _unit, description, value) in snapshotter.snapshot().into_vec() {
        let value = match value {
            DebugValue::Counter(v) => v as f64,
            DebugValue::Gauge(v) => v.0,
            DebugValue::Histogram(_) => panic!("no histogram is published: {key:?}"),
        };
        if description.is_some() {
            described.push(key.key().name().to_owned());
        }
        values.insert(series(key.key()), value);
    }
    (values, described)
}

/// Misses, hits and an invalidation in two namespaces.
async fn traffic(cache: &Cache) {
    let songs = EntryOptions::new()
        .namespace("songs")
        .tag(Tag::model("songs"));
    for _ in 0..4 {
        cache
            .get_or_compute("songs:count", songs.clone(), || async { 3_u64 })
            .await;
    }
    cache.invalidate_tags([Tag::model("songs")]).await;
    cache
        .get_or_compute("songs:count", songs, || async { 4_u64 })
        .await;
    let users = EntryOptions::new().namespace("users");
    cache
        .get_or_compute("user:1", users, || async { 1_u8 })
        .await;
}

fn value(values: &BTreeMap<String, f64>, series: &str) -> f64 {
    *values
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {:#?}", values.keys()))
}

#[tokio::test]
async fn recorded_values_equal_the_statistics() {
    let cache = Cache::new();
    traffic(&cache).await;
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || cache.record_metrics());
    let (values, described) = read(&snapshotter);
    let stats = cache.stats();

    for (name, ns) in &stats.namespaces {
        let labelled = |family: &str| format!("{family}{{namespace=\"{name}\"}}");
        assert_eq!(
            value(
                &values,
                &format!("querycache_hits_total{{namespace=\"{name}\",tier=\"memory\"}}")
            ),
            ns.memory_hits as f64
        );
        assert_eq!(
            value(&values, &labelled("querycache_misses_total")),
            ns.misses as f64
        );
        assert_eq!(
            value(&values, &labelled("querycache_sets_total")),
            ns.sets as f64
        );
        assert_eq!(
            value(&values, &labelled("querycache_computations_total")),
            ns.computations as f64
        );
        for quantile in ["0.5", "0.9", "0.99"] {
            let latency = value(
                &values,
                &format!(
                    "querycache_lookup_duration_seconds{{namespace=\"{name}\",quantile=\"{quantile}\"}}"
                ),
            );
            assert!((0.0..1.0).contains(&latency), "{quantile}: {latency}");
        }
    }
    let songs = &stats.namespaces["songs"];
    assert_eq!((songs.memory_hits, songs.misses, songs.sets), (3, 2, 2));
    assert!(
        !values.keys().any(|s| s.contains("tier=\"redis\"")),
        "the memory store has no Redis tier"
    );
    for (series, expected) in [
        ("querycache_invalidations_total", stats.invalidations),
        ("querycache_errors_total", stats.errors),
        ("querycache_bypassed_total", stats.bypassed),
        ("querycache_stale_served_total", stats.stale_served),
        ("querycache_lease_waits_total", stats.lease_waits),
        ("querycache_keys", stats.keys_count),
        ("querycache_memory_bytes", stats.memory_usage_bytes),
        ("querycache_redis_connected", 0),
        ("querycache_fallback_active", 0),
    ] {
        assert_eq!(value(&values, series), expected as f64, "{series}");
    }
    assert_eq!(stats.invalidations, 1);
    assert!(stats.keys_count >= 2 && stats.memory_usage_bytes > 0);
    assert_eq!(value(&values, "querycache_lease_wait_seconds_total"), 0.0);
    for name in [
        "querycache_hits_total",
        "querycache_misses_total",
        "querycache_invalidations_total",
        "querycache_lookup_duration_seconds",
        "querycache_memory_bytes",
    ] {
        assert!(described.iter().any(|d| d == name), "{name} is described");
    }

    // Counters are absolute: recording again after more traffic publishes the new totals.
    let songs = EntryOptions::new().namespace("songs");
    cache
        .get_or_compute("songs:count", songs, || async { 5_u64 })
        .await;
    metrics::with_local_recorder(&recorder, || cache.record_metrics());
    let (values, _) = read(&snapshotter);
    assert_eq!(
        value(
            &values,
            "querycache_hits_total{namespace=\"songs\",tier=\"memory\"}"
        ),
        4.0
    );
}

/// Every name the facade publishes is a family of the Prometheus exposition (counters with
/// their `_total`), so one dashboard reads both.
#[cfg(feature = "prometheus")]
#[tokio::test]
async fn names_are_the_prometheus_exposition_names() {
    let cache = Cache::new();
    traffic(&cache).await;
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || cache.record_metrics());
    let (values, _) = read(&snapshotter);
    let text = cache.prometheus_text();
    let mut names: Vec<&str> = values
        .keys()
        .map(|s| s.split('{').next().unwrap())
        .collect();
    names.dedup();
    assert!(names.len() >= 20, "{names:?}");
    for name in names {
        let family = name.strip_suffix("_total").unwrap_or(name);
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{name} is not in the Prometheus exposition:\n{text}"
        );
    }
}

#[tokio::test]
async fn the_reporter_publishes_periodically_until_stopped() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // The reporter runs on querycache's own runtime: only a global recorder reaches it. No
    // other test installs one.
    if recorder.install().is_err() {
        panic!("a global metrics recorder was already installed");
    }
    let cache = Cache::new();
    let options = EntryOptions::new().namespace("reporter");
    cache
        .get_or_compute("reporter:1", options.clone(), || async { 1_u8 })
        .await;
    let reporter = cache.spawn_metrics_reporter(Duration::from_millis(5));
    let misses = "querycache_misses_total{namespace=\"reporter\"}";
    until(Duration::from_secs(10), "the first report", async || {
        read(&snapshotter).0.get(misses) == Some(&1.0)
    })
    .await;
    // More traffic, no call: the next report carries it.
    cache
        .get_or_compute("reporter:1", options.clone(), || async { 1_u8 })
        .await;
    let hits = "querycache_hits_total{namespace=\"reporter\",tier=\"memory\"}";
    until(Duration::from_secs(10), "a later report", async || {
        read(&snapshotter).0.get(hits) == Some(&1.0)
    })
    .await;
    reporter.stop();
}
