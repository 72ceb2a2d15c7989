//! Prometheus / OpenMetrics exposition of a cache's statistics (feature `prometheus`),
//! through prometheus-client: a [`Collector`] reads the statistics at scrape time, so the
//! lookup path pays nothing for it.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `querycache_hits_total` | counter | `namespace`, `tier` (`memory`, `redis`) |
//! | `querycache_misses_total`, `querycache_sets_total`, `querycache_computations_total` | counter | `namespace` |
//! | `querycache_invalidations_total`, `querycache_errors_total`, `querycache_wasted_computations_total`, `querycache_bypassed_total` | counter | |
//! | `querycache_stale_served_total`, `querycache_background_refreshes_total`, `querycache_early_refreshes_total`, `querycache_refresh_errors_total`, `querycache_fail_safe_activations_total`, `querycache_soft_timeouts_total`, `querycache_hard_timeouts_total`, `querycache_lease_waits_total` | counter | |
//! | `querycache_lease_wait_seconds_total` | counter | |
//! | `querycache_lookup_duration_seconds` | histogram | `namespace` |
//! | `querycache_fallback_active`, `querycache_redis_connected` | gauge (0 or 1) | |
//! | `querycache_memory_bytes`, `querycache_keys` | gauge | |

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::Cache;

/// The `Content-Type` of [`Cache::prometheus_text`]'s output (OpenMetrics text 1.0, which
/// Prometheus scrapes natively).
///
/// ```
/// assert!(querycache::stats::OPENMETRICS_CONTENT_TYPE.starts_with("application/openmetrics-text"));
/// ```
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the lookup-latency histogram's buckets, in seconds (1 µs to 1 s; a
/// memory hit takes well under a microsecond, a Redis round trip a fraction of a
/// millisecond).
const LATENCY_BUCKETS: &[f64] = &[
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
];

/// Reads one figure of a namespace's statistics.
type NamespaceFigure = fn(&crate::stats::NamespaceStats) -> u64;

/// Reads a cache's statistics at each scrape.
#[derive(Debug)]
struct CacheCollector {
    cache: Cache,
}

fn counter(metric: &mut MetricEncoder<'_>, value: u64) -> fmt::Result {
    metric.encode_counter::<NoLabelSet, u64, f64>(&value, None)
}

impl Collector for CacheCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let stats = self.cache.stats();
        let recorder = self.cache.recorder();
        let (redis_connected, fallback_active) = self.cache.store_state();
        let has_redis = self.cache.config().store_kind() != crate::config::StoreKind::Memory;

        let mut hits = encoder.encode_descriptor(
            "hits",
            "Lookups answered from the cache, by namespace and by the tier that answered",
            None,
            MetricType::Counter,
        )?;
        for (namespace, ns) in &stats.namespaces {
            let mut tiers = vec![("memory", ns.memory_hits)];
            if has_redis {
                tiers.push(("redis", ns.redis_hits));
            }
            for (tier, value) in tiers {
                let labels = [("namespace", namespace.as_str()), ("tier", tier)];
                counter(&mut hits.encode_family(&labels)?, value)?;
            }
        }
        let per_namespace: [(&str, &str, NamespaceFigure); 3] = [
            (
                "misses",
                "Lookups that found nothing usable (absent, expired or invalidated)",
                |n| n.misses,
            ),
            ("sets", "Values stored", |n| n.sets),
            (
                "computations",
                "Computations run on a miss (one per key at a time)",
                |n| n.computations,
            ),
        ];
        for (name, help, value) in per_namespace {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (namespace, ns) in &stats.namespaces {
                let labels = [("namespace", namespace.as_str())];
                counter(&mut metric.encode_family(&labels)?, value(ns))?;
            }
        }
        let totals = [
            (
                "invalidations",
                "Tags invalidated plus keys removed",
                stats.invalidations,
            ),
            (
                "errors",
                "Store failures and unusable entries (never returned to callers)",
                stats.errors,
            ),
            (
                "wasted_computations",
                "Computed values not stored because their tags moved meanwhile",
                stats.wasted_computations,
            ),
            (
                "bypassed",
                "Calls that went straight to the computation",
                stats.bypassed,
            ),
            (
                "stale_served",
                "Answers served past their TTL (swr window, soft timeout, fail-safe)",
                stats.stale_served,
            ),
            (
                "background_refreshes",
                "Refreshes started by a stale-while-revalidate hit",
                stats.background_refreshes,
            ),
            (
                "early_refreshes",
                "Refreshes started before expiry (XFetch)",
                stats.early_refreshes,
            ),
            (
                "refresh_errors",
                "Refreshes whose computation failed (the stale value stayed)",
                stats.refresh_errors,
            ),
            (
                "fail_safe_activations",
                "Failed computations answered with the last good value",
                stats.fail_safe_activations,
            ),
            (
                "soft_timeouts",
                "Computations past their soft timeout while a stale value was served",
                stats.soft_timeouts,
            ),
            (
                "hard_timeouts",
                "Computations abandoned at their hard timeout",
                stats.hard_timeouts,
            ),
            (
                "lease_waits",
                "Waits for another instance's computation of the same key",
                stats.lease_waits,
            ),
        ];
        for (name, help, value) in totals {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            counter(&mut metric, value)?;
        }
        encoder
            .encode_descriptor(
                "lease_wait",
                "Time spent waiting for other instances' computations",
                Some(&Unit::Seconds),
                MetricType::Counter,
            )?
            .encode_counter::<NoLabelSet, f64, f64>(&stats.lease_wait_time.as_secs_f64(), None)?;

        let mut latency = encoder.encode_descriptor(
            "lookup_duration",
            "Time to answer a lookup, hit or miss, without the computation",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (namespace, ns) in recorder.namespace_recorders() {
            let (sum, count, counts) = ns.latency_buckets(LATENCY_BUCKETS);
            let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .zip(counts)
                .collect();
            let labels = [("namespace", namespace.as_str())];
            latency
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }

        let gauges: [(&str, &str, Option<Unit>, u64); 4] = [
            (
                "fallback_active",
                "1 while process memory serves in Redis's place (circuit breaker open)",
                None,
                u64::from(fallback_active),
            ),
            (
                "redis_connected",
                "1 while Redis answers (circuit breaker closed); 0 for the memory store",
                None,
                u64::from(redis_connected),
            ),
            (
                "memory",
                "Estimated bytes held in process memory",
                Some(Unit::Bytes),
                stats.memory_usage_bytes,
            ),
            (
                "keys",
                "Entries held in process memory",
                None,
                stats.keys_count,
            ),
        ];
        for (name, help, unit, value) in gauges {
            encoder
                .encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?
                .encode_gauge(&value)?;
        }
        Ok(())
    }
}

impl Cache {
    /// Registers this cache's metrics (see the table in the module docs, prefixed by the
    /// registry's prefix) in `registry`, for an application that exposes its own metrics
    /// too. The values are read at each scrape.
    ///
    /// ```
    /// use prometheus_client::registry::Registry;
    ///
    /// let cache = querycache::Cache::new();
    /// let mut registry = Registry::with_prefix("querycache");
    /// cache.register_metrics(&mut registry);
    /// let mut text = String::new();
    /// prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    /// assert!(text.contains("# TYPE querycache_keys gauge"));
    /// ```
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register_collector(Box::new(CacheCollector {
            cache: self.clone(),
        }));
    }

    /// This cache's metrics in the OpenMetrics text format (serve it with
    /// [`OPENMETRICS_CONTENT_TYPE`]), every name prefixed `querycache_`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use querycache::{Cache, EntryOptions};
    ///
    /// let cache = Cache::new();
    /// let options = EntryOptions::new().namespace("songs");
    /// cache.get_or_compute("songs:count", options.clone(), || async { 3_u64 }).await;
    /// cache.get_or_compute("songs:count", options, || async { 3_u64 }).await;
    /// let text = cache.prometheus_text();
    /// assert!(text.contains(r#"querycache_hits_total{namespace="songs",tier="memory"} 1"#));
    /// assert!(text.contains(r#"querycache_misses_total{namespace="songs"} 1"#));
    /// assert!(text.ends_with("# EOF\n"));
    /// # }
    /// ```
    pub fn prometheus_text(&self) -> String {
        let mut registry = Registry::with_prefix("querycache");
        self.register_metrics(&mut registry);
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &registry) {
            // Writing to a String cannot fail; a collector error would be ours.
            tracing::error!(%error, "encoding the cache metrics failed");
        }
        text
    }
}
