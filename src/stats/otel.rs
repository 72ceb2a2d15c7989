//! OpenTelemetry metrics (feature `opentelemetry`): observable instruments on the
//! application's `Meter`, whose callbacks read a cache's statistics when the SDK collects —
//! a hit pays nothing for them.
//!
//! The names are the Prometheus exposition's, spelled the OpenTelemetry way: `querycache.` and
//! the family (`querycache.hits`), the unit as the instrument's unit (`s`, `By`), no `_total`.
//! OpenTelemetry's Prometheus translation (the collector's and the SDK exporters') turns them
//! back into the exposition's names — `querycache.hits` (a monotonic sum) into
//! `querycache_hits_total`, `querycache.memory` (unit `By`) into `querycache_memory_bytes` —
//! so one dashboard serves both.
//!
//! The names are in [`stats`](crate::stats)'s table.

use opentelemetry::KeyValue;
use opentelemetry::metrics::{AsyncInstrument, Meter};

use super::CacheStats;
use super::families::{
    self, Family, GAUGES, HITS, LEASE_WAIT, LOOKUP_DURATION, PER_NAMESPACE, QUANTILES, TOTALS, Unit,
};
use crate::Cache;
use crate::cache::WeakCache;

/// The OpenTelemetry unit of a family (`None` for a count).
fn unit(unit: Unit) -> Option<&'static str> {
    match unit {
        Unit::Count => None,
        Unit::Seconds => Some("s"),
        Unit::Bytes => Some("By"),
    }
}

/// A callback's reading: the cache, while it lives, and its statistics now.
fn read(cache: &WeakCache) -> Option<(Cache, CacheStats)> {
    let cache = cache.upgrade()?;
    let stats = cache.stats();
    Some((cache, stats))
}

/// The `namespace` attribute.
fn namespace(name: &str) -> KeyValue {
    KeyValue::new("namespace", name.to_owned())
}

/// Observes a u64 counter of `family` with `observe`.
fn u64_counter<R>(
    meter: &Meter,
    family: &Family<R>,
    cache: WeakCache,
    observe: impl Fn(&Cache, &CacheStats, &dyn AsyncInstrument<u64>) + Send + Sync + 'static,
) {
    let mut builder = meter
        .u64_observable_counter(family.otel_name())
        .with_description(family.help);
    if let Some(unit) = unit(family.unit) {
        builder = builder.with_unit(unit);
    }
    builder
        .with_callback(move |instrument| {
            if let Some((cache, stats)) = read(&cache) {
                observe(&cache, &stats, instrument);
            }
        })
        .build();
}

impl Cache {
    /// Creates observable OpenTelemetry instruments for this cache's statistics on `meter`
    /// (feature `opentelemetry`; the instruments are listed in [`stats`](crate::stats)). Their callbacks read [`stats`](Self::stats) when the SDK
    /// collects, so the read path records nothing; they observe nothing once the cache is
    /// dropped (they hold no handle that keeps it alive). Call it once per cache and meter
    /// provider: OpenTelemetry cannot unregister a callback, and a second call would report
    /// every value twice.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use opentelemetry::metrics::MeterProvider;
    /// use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    /// use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
    /// use querycache::{Cache, EntryOptions};
    ///
    /// let exporter = InMemoryMetricExporter::default();
    /// let provider = SdkMeterProvider::builder()
    ///     .with_reader(PeriodicReader::builder(exporter.clone()).build())
    ///     .build();
    /// let cache = Cache::new();
    /// cache.register_otel(&provider.meter("querycache"));
    ///
    /// let _ = cache.get::<u8>("nothing").await;
    /// provider.force_flush().unwrap();
    /// let exported = exporter.get_finished_metrics().unwrap();
    /// let misses = exported.iter().flat_map(|r| r.scope_metrics()).flat_map(|s| s.metrics())
    ///     .find(|m| m.name() == "querycache.misses")
    ///     .unwrap();
    /// let AggregatedMetrics::U64(MetricData::Sum(sum)) = misses.data() else { panic!() };
    /// assert_eq!(sum.data_points().map(|p| p.value()).sum::<u64>(), 1);
    /// # }
    /// ```
    pub fn register_otel(&self, meter: &Meter) {
        let weak = self.downgrade();
        u64_counter(meter, &HITS, weak.clone(), |cache, stats, instrument| {
            for (name, ns) in &stats.namespaces {
                for (tier, value) in families::tiers(cache, ns) {
                    instrument.observe(value, &[namespace(name), KeyValue::new("tier", tier)]);
                }
            }
        });
        for family in PER_NAMESPACE {
            u64_counter(meter, &family, weak.clone(), move |_, stats, instrument| {
                for (name, ns) in &stats.namespaces {
                    instrument.observe((family.read)(ns), &[namespace(name)]);
                }
            });
        }
        for family in TOTALS {
            u64_counter(meter, &family, weak.clone(), move |_, stats, instrument| {
                instrument.observe((family.read)(stats), &[]);
            });
        }
        let cache = weak.clone();
        meter
            .f64_observable_counter(LEASE_WAIT.otel_name())
            .with_description(LEASE_WAIT.help)
            .with_unit("s")
            .with_callback(move |instrument| {
                if let Some((_, stats)) = read(&cache) {
                    instrument.observe((LEASE_WAIT.read)(&stats), &[]);
                }
            })
            .build();
        let cache = weak.clone();
        meter
            .f64_observable_gauge(LOOKUP_DURATION.otel_name())
            .with_description(LOOKUP_DURATION.help)
            .with_unit("s")
            .with_callback(move |instrument| {
                let Some(cache) = cache.upgrade() else { return };
                for (name, recorder) in cache.recorder().namespace_recorders() {
                    let values = recorder.latency_quantiles(&QUANTILES);
                    for (quantile, seconds) in QUANTILES.iter().zip(values) {
                        let quantile = KeyValue::new("quantile", quantile.to_string());
                        instrument.observe(seconds, &[namespace(&name), quantile]);
                    }
                }
            })
            .build();
        for gauge in GAUGES {
            let cache = weak.clone();
            let mut builder = meter
                .u64_observable_gauge(gauge.otel_name())
                .with_description(gauge.help);
            if let Some(unit) = unit(gauge.unit) {
                builder = builder.with_unit(unit);
            }
            builder
                .with_callback(move |instrument| {
                    if let Some((cache, stats)) = read(&cache) {
                        instrument.observe((gauge.read)(&cache, &stats), &[]);
                    }
                })
                .build();
        }
    }
}
