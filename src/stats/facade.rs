//! The [`metrics`](https://docs.rs/metrics) facade (feature `metrics`): a cache's statistics
//! published to whatever recorder the application installed (metrics-exporter-prometheus,
//! StatsD, Datadog, ...), under the names of the Prometheus exposition.
//!
//! The facade has no collection-time callback, and the hit path records nothing: a cache
//! publishes what [`Cache::stats`] reads when asked, by [`Cache::record_metrics`] or by the
//! background task of [`Cache::spawn_metrics_reporter`]. Counters are set to their
//! absolute values (`Counter::absolute`), gauges to theirs.
//!
//! The names are in [`stats`](crate::stats)'s table.

use std::sync::Arc;
use std::time::Duration;

use super::families::{
    self, GAUGES, HITS, LEASE_WAIT, LOOKUP_DURATION, PER_NAMESPACE, QUANTILES, TOTALS, Unit,
};
use crate::Cache;

/// The facade's unit of a family.
fn unit(unit: Unit) -> ::metrics::Unit {
    match unit {
        Unit::Count => ::metrics::Unit::Count,
        Unit::Seconds => ::metrics::Unit::Seconds,
        Unit::Bytes => ::metrics::Unit::Bytes,
    }
}

/// Describes every metric a cache publishes (unit and help text) to the installed
/// recorder. [`Cache::record_metrics`] calls it each time, so a recorder installed late
/// still learns them; call it yourself to have them before the first recording.
///
/// ```
/// use metrics_util::debugging::DebuggingRecorder;
///
/// let recorder = DebuggingRecorder::new();
/// let snapshotter = recorder.snapshotter();
/// metrics::with_local_recorder(&recorder, querycache::stats::describe_metrics);
/// // Descriptions register no values.
/// assert!(snapshotter.snapshot().into_vec().is_empty());
/// ```
pub fn describe_metrics() {
    ::metrics::describe_counter!(HITS.prometheus_name(true), unit(HITS.unit), HITS.help);
    for family in PER_NAMESPACE {
        let name = family.prometheus_name(true);
        ::metrics::describe_counter!(name, unit(family.unit), family.help);
    }
    for family in TOTALS {
        let name = family.prometheus_name(true);
        ::metrics::describe_counter!(name, unit(family.unit), family.help);
    }
    let lease = LEASE_WAIT.prometheus_name(true);
    ::metrics::describe_gauge!(lease, unit(LEASE_WAIT.unit), LEASE_WAIT.help);
    let lookup = LOOKUP_DURATION.prometheus_name(false);
    ::metrics::describe_gauge!(lookup, unit(LOOKUP_DURATION.unit), LOOKUP_DURATION.help);
    for gauge in GAUGES {
        let name = gauge.prometheus_name(false);
        ::metrics::describe_gauge!(name, unit(gauge.unit), gauge.help);
    }
}

impl Cache {
    /// Publishes this cache's statistics to the `metrics` recorder in force (feature
    /// `metrics`): every counter at its absolute value, every gauge at its current value,
    /// under the names of the Prometheus exposition (the table is in
    /// [`stats`](crate::stats)). The hit path records nothing; call this
    /// before each export, or let [`spawn_metrics_reporter`](Self::spawn_metrics_reporter)
    /// call it periodically.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    /// use querycache::{Cache, EntryOptions};
    ///
    /// let cache = Cache::new();
    /// let options = EntryOptions::new().namespace("songs");
    /// cache.get_or_compute("songs:count", options.clone(), || async { 3_u64 }).await;
    /// cache.get_or_compute("songs:count", options, || async { 3_u64 }).await;
    ///
    /// let recorder = DebuggingRecorder::new();
    /// let snapshotter = recorder.snapshotter();
    /// metrics::with_local_recorder(&recorder, || cache.record_metrics());
    /// let hits = snapshotter.snapshot().into_vec().into_iter().find_map(|(key, _, _, value)| {
    ///     let key = key.key();
    ///     let memory = key.labels().any(|l| l.key() == "tier" && l.value() == "memory");
    ///     (key.name() == "querycache_hits_total" && memory).then_some(value)
    /// });
    /// assert_eq!(hits, Some(DebugValue::Counter(1)));
    /// # }
    /// ```
    pub fn record_metrics(&self) {
        describe_metrics();
        let stats = self.stats();
        let hits = HITS.prometheus_name(true);
        for (namespace, ns) in &stats.namespaces {
            for (tier, value) in families::tiers(self, ns) {
                let labels = [("namespace", namespace.clone()), ("tier", tier.to_owned())];
                ::metrics::counter!(hits.clone(), &labels).absolute(value);
            }
            for family in PER_NAMESPACE {
                let labels = [("namespace", namespace.clone())];
                ::metrics::counter!(family.prometheus_name(true), &labels)
                    .absolute((family.read)(ns));
            }
        }
        for family in TOTALS {
            ::metrics::counter!(family.prometheus_name(true)).absolute((family.read)(&stats));
        }
        ::metrics::gauge!(LEASE_WAIT.prometheus_name(true)).set((LEASE_WAIT.read)(&stats));
        let lookup = LOOKUP_DURATION.prometheus_name(false);
        for (namespace, recorder) in self.recorder().namespace_recorders() {
            let values = recorder.latency_quantiles(&QUANTILES);
            for (quantile, seconds) in QUANTILES.iter().zip(values) {
                let labels = [
                    ("namespace", namespace.clone()),
                    ("quantile", quantile.to_string()),
                ];
                ::metrics::gauge!(lookup.clone(), &labels).set(seconds);
            }
        }
        for gauge in GAUGES {
            let value = (gauge.read)(self, &stats);
            ::metrics::gauge!(gauge.prometheus_name(false)).set(value as f64);
        }
    }

    /// Calls [`record_metrics`](Self::record_metrics) every `interval` (the first time at
    /// once) on a background task, until [`MetricsReporter::stop`] or until the last handle
    /// to the cache is dropped. Dropping the returned [`MetricsReporter`] leaves the task
    /// running. It runs on querycache's own runtime, so it needs no tokio runtime of the
    /// caller's; an `interval` of zero is taken as one millisecond.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = querycache::Cache::new();
    /// // With a recorder installed (`metrics::set_global_recorder`, or an exporter's
    /// // `install`), the statistics are published every 10 s.
    /// let reporter = cache.spawn_metrics_reporter(Duration::from_secs(10));
    /// reporter.stop();
    /// ```
    pub fn spawn_metrics_reporter(&self, interval: Duration) -> MetricsReporter {
        let stop = Arc::new(tokio::sync::Notify::new());
        let stopped = Arc::clone(&stop);
        let cache = self.downgrade();
        let interval = interval.max(Duration::from_millis(1));
        crate::runtime::spawn_detached(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stopped.notified() => return,
                    _ = ticks.tick() => {}
                }
                match cache.upgrade() {
                    Some(cache) => cache.record_metrics(),
                    None => return,
                }
            }
        });
        MetricsReporter { stop }
    }
}

/// The background task of [`Cache::spawn_metrics_reporter`].
#[derive(Debug)]
pub struct MetricsReporter {
    stop: Arc<tokio::sync::Notify>,
}

impl MetricsReporter {
    /// Stops the task (after the recording in progress, if any).
    ///
    /// ```
    /// let cache = querycache::Cache::new();
    /// cache.spawn_metrics_reporter(std::time::Duration::from_secs(60)).stop();
    /// ```
    pub fn stop(self) {
        self.stop.notify_one();
    }
}
