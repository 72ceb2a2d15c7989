//! OpenTelemetry (feature `opentelemetry`): `Cache::register_otel`'s observable instruments,
//! collected by an SDK meter provider into its in-memory exporter, report what
//! `Cache::stats` says at collection time.

use std::collections::BTreeMap;

use opentelemetry::metrics::MeterProvider;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use querycache::{Cache, EntryOptions, Tag};

/// One exported data point: its value, the kind of its instrument, its unit.
#[derive(Debug, Clone, PartialEq)]
struct Point {
    value: f64,
    kind: &'static str,
    unit: String,
}

/// `name{attr="v",...}` → point, from the last collection in `exported`.
fn points(exported: &[ResourceMetrics]) -> BTreeMap<String, Point> {
    fn key<'a>(
        name: &str,
        attributes: impl Iterator<Item = &'a opentelemetry::KeyValue>,
    ) -> String {
        let mut attributes: Vec<String> = attributes
            .map(|kv| format!("{}=\"{}\"", kv.key, kv.value))
            .collect();
        attributes.sort();
        if attributes.is_empty() {
            name.to_owned()
        } else {
            format!("{name}{{{}}}", attributes.join(","))
        }
    }
    let mut out = BTreeMap::new();
    let Some(last) = exported.last() else {
        return out;
    };
    for metric in last.scope_metrics().flat_map(|s| s.metrics()) {
        let (name, unit) = (metric.name(), metric.unit().to_owned());
        let mut put = |attributes: String, value: f64, kind: &'static str| {
            let point = Point {
                value,
                kind,
                unit: unit.clone(),
            };
            assert!(out.insert(attributes, point).is_none(), "{name} twice");
        };
        match metric.data() {
            AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                assert!(sum.is_monotonic(), "{name}");
                for p in sum.data_points() {
                    put(key(name, p.attributes()), p.value() as f64, "counter");
                }
            }
            AggregatedMetrics::F64(MetricData::Sum(sum)) => {
                assert!(sum.is_monotonic(), "{name}");
                for p in sum.data_points() {
                    put(key(name, p.attributes()), p.value(), "counter");
                }
            }
            AggregatedMetrics::U64(MetricData::Gauge(gauge)) => {
                for p in gauge.data_points() {
                    put(key(name, p.attributes()), p.value() as f64, "gauge");
                }
            }
            AggregatedMetrics::F64(MetricData::Gauge(gauge)) => {
                for p in gauge.data_points() {
                    put(key(name, p.attributes()), p.value(), "gauge");
                }
            }
            other => panic!("{name}: unexpected data {other:?}"),
        }
    }
    out
}

fn point<'a>(points: &'a BTreeMap<String, Point>, key: &str) -> &'a Point {
    points
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {:#?}", points.keys()))
}

#[tokio::test]
async fn observable_instruments_report_the_statistics_at_collection() {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    let cache = Cache::new();
    cache.register_otel(&provider.meter("querycache"));

    let songs = EntryOptions::new()
        .namespace("songs")
        .tag(Tag::model("songs"));
    for _ in 0..3 {
        cache
            .get_or_compute("songs:count", songs.clone(), || async { 3_u64 })
            .await;
    }
    cache.invalidate_tags([Tag::model("songs")]).await;
    cache
        .get_or_compute("songs:count", songs.clone(), || async { 4_u64 })
        .await;

    provider.force_flush().unwrap();
    let first = points(&exporter.get_finished_metrics().unwrap());
    let stats = cache.stats();
    let songs_stats = &stats.namespaces["songs"];
    assert_eq!((songs_stats.memory_hits, songs_stats.misses), (2, 2));
    let hits = point(
        &first,
        r#"querycache.hits{namespace="songs",tier="memory"}"#,
    );
    assert_eq!((hits.value, hits.kind), (2.0, "counter"));
    for (key, expected) in [
        (
            r#"querycache.misses{namespace="songs"}"#,
            songs_stats.misses,
        ),
        (r#"querycache.sets{namespace="songs"}"#, songs_stats.sets),
        (
            r#"querycache.computations{namespace="songs"}"#,
            songs_stats.computations,
        ),
        ("querycache.invalidations", stats.invalidations),
        ("querycache.errors", stats.errors),
        ("querycache.bypassed", stats.bypassed),
        ("querycache.wasted_computations", stats.wasted_computations),
        ("querycache.hard_timeouts", stats.hard_timeouts),
    ] {
        let p = point(&first, key);
        assert_eq!((p.value, p.kind), (expected as f64, "counter"), "{key}");
    }
    assert_eq!(point(&first, "querycache.invalidations").value, 1.0);
    let lease = point(&first, "querycache.lease_wait");
    assert_eq!(
        (lease.value, lease.kind, lease.unit.as_str()),
        (0.0, "counter", "s")
    );
    for (key, expected) in [
        ("querycache.keys", stats.keys_count),
        ("querycache.memory", stats.memory_usage_bytes),
        ("querycache.redis_connected", 0),
        ("querycache.fallback_active", 0),
    ] {
        let p = point(&first, key);
        assert_eq!((p.value, p.kind), (expected as f64, "gauge"), "{key}");
    }
    assert_eq!(point(&first, "querycache.memory").unit, "By");
    let p99 = point(
        &first,
        r#"querycache.lookup_duration{namespace="songs",quantile="0.99"}"#,
    );
    assert_eq!((p99.kind, p99.unit.as_str()), ("gauge", "s"));
    assert!(p99.value > 0.0 && p99.value < 1.0, "{p99:?}");
    assert!(
        !first.keys().any(|k| k.contains("redis\"")),
        "the memory store has no Redis tier: {first:#?}"
    );

    // The callbacks read the statistics at each collection: more hits, a higher count.
    for _ in 0..5 {
        cache
            .get_or_compute("songs:count", songs.clone(), || async { 4_u64 })
            .await;
    }
    provider.force_flush().unwrap();
    let second = points(&exporter.get_finished_metrics().unwrap());
    let hits = point(
        &second,
        r#"querycache.hits{namespace="songs",tier="memory"}"#,
    );
    assert_eq!(hits.value, 7.0);
    assert_eq!(cache.stats().namespaces["songs"].memory_hits, 7);

    // A dropped cache is observed no more (the instruments hold no handle to it).
    drop(cache);
    exporter.reset();
    provider.force_flush().unwrap();
    let after = points(&exporter.get_finished_metrics().unwrap());
    assert!(
        !after.keys().any(|k| k.contains("namespace=\"songs\"")),
        "{after:#?}"
    );
    provider.shutdown().unwrap();
}
