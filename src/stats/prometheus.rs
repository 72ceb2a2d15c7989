//! Prometheus / OpenMetrics exposition of a cache's statistics (feature `prometheus`),
//! through prometheus-client: a [`Collector`] reads the statistics at scrape time, so the
//! lookup path pays nothing for it.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `querycache_hits_total` | counter | `namespace`, `tier` (`memory`, `redis`) |
//! | `querycache_misses_total`, `querycache_sets_total`, `querycache_computations_total` | counter | `namespace` |
//! | `querycache_invalidations_total`, `querycache_errors_total`, `querycache_wasted_computations_total`, `querycache_replica_behind_total`, `querycache_bypassed_total` | counter | |
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

use super::families::{self, GAUGES, HITS, LEASE_WAIT, LOOKUP_DURATION, PER_NAMESPACE, TOTALS};
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

        let mut hits =
            encoder.encode_descriptor(HITS.stem, HITS.help, None, MetricType::Counter)?;
        for (namespace, ns) in &stats.namespaces {
            for (tier, value) in families::tiers(&self.cache, ns) {
                let labels = [("namespace", namespace.as_str()), ("tier", tier)];
                counter(&mut hits.encode_family(&labels)?, value)?;
            }
        }
        for family in PER_NAMESPACE {
            let mut metric =
                encoder.encode_descriptor(family.stem, family.help, None, MetricType::Counter)?;
            for (namespace, ns) in &stats.namespaces {
                let labels = [("namespace", namespace.as_str())];
                counter(&mut metric.encode_family(&labels)?, (family.read)(ns))?;
            }
        }
        for family in TOTALS {
            let mut metric =
                encoder.encode_descriptor(family.stem, family.help, None, MetricType::Counter)?;
            counter(&mut metric, (family.read)(&stats))?;
        }
        encoder
            .encode_descriptor(
                LEASE_WAIT.stem,
                LEASE_WAIT.help,
                Some(&Unit::Seconds),
                MetricType::Counter,
            )?
            .encode_counter::<NoLabelSet, f64, f64>(&(LEASE_WAIT.read)(&stats), None)?;

        let mut latency = encoder.encode_descriptor(
            LOOKUP_DURATION.stem,
            LOOKUP_DURATION.help,
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

        for gauge in GAUGES {
            let unit = (gauge.unit == families::Unit::Bytes).then_some(Unit::Bytes);
            encoder
                .encode_descriptor(gauge.stem, gauge.help, unit.as_ref(), MetricType::Gauge)?
                .encode_gauge(&(gauge.read)(&self.cache, &stats))?;
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
