//! Counters and latency figures: [`CacheStats`], overall and per namespace. The recorder
//! also feeds the activity that [`analytics`](crate::Cache::analytics) reads (the timeline
//! and the most accessed keys).
//!
//! ## Exporting them
//!
//! The same figures go out three ways, under one set of names, all read when collected —
//! a lookup records nothing for any of them:
//!
//! | way | feature | how |
//! | --- | --- | --- |
//! | Prometheus / OpenMetrics text | `prometheus` | [`Cache::prometheus_text`](crate::Cache::prometheus_text), [`Cache::register_metrics`](crate::Cache::register_metrics) |
//! | the `metrics` facade | `metrics` | [`Cache::record_metrics`](crate::Cache::record_metrics) before each export, or [`Cache::spawn_metrics_reporter`](crate::Cache::spawn_metrics_reporter); counters are set to their absolute values |
//! | OpenTelemetry | `opentelemetry` | [`Cache::register_otel`](crate::Cache::register_otel): observable instruments on the app's `Meter` |
//!
//! | Prometheus and `metrics` name | OpenTelemetry instrument | kind | labels |
//! | --- | --- | --- | --- |
//! | `querycache_hits_total` | `querycache.hits` | counter | `namespace`, `tier` (`memory`, and `redis` with a Redis tier) |
//! | `querycache_misses_total`, `querycache_sets_total`, `querycache_computations_total` | `querycache.misses`, `.sets`, `.computations` | counter | `namespace` |
//! | `querycache_invalidations_total`, `querycache_errors_total`, `querycache_wasted_computations_total`, `querycache_replica_behind_total`, `querycache_bypassed_total`, `querycache_stale_served_total`, `querycache_background_refreshes_total`, `querycache_early_refreshes_total`, `querycache_refresh_errors_total`, `querycache_fail_safe_activations_total`, `querycache_soft_timeouts_total`, `querycache_hard_timeouts_total`, `querycache_lease_waits_total` | `querycache.invalidations`, ... (the same words) | counter | |
//! | `querycache_lease_wait_seconds_total` (a gauge through `metrics`, whose counters are integers) | `querycache.lease_wait` (`s`) | counter (seconds) | |
//! | `querycache_lookup_duration_seconds`: a histogram in the Prometheus text; through `metrics`, a gauge per quantile | `querycache.lookup_duration` (`s`), a gauge per quantile (there is no observable histogram) | histogram / gauge | `namespace`; `quantile` (`0.5`, `0.9`, `0.99`) for the gauges |
//! | `querycache_fallback_active`, `querycache_redis_connected` | `querycache.fallback_active`, `.redis_connected` | gauge (0 or 1) | |
//! | `querycache_memory_bytes`, `querycache_keys` | `querycache.memory` (`By`), `querycache.keys` | gauge | |
//!
//! OpenTelemetry's names follow its own style (dots, the unit beside the name, no
//! `_total`); its Prometheus translation (the collector's, the SDK exporters') turns them
//! into the names of the first column, so the Grafana dashboard in the repository
//! (`dashboards/grafana/querycache.json`) reads all three — except its latency panels, which
//! need the histogram's buckets (Prometheus text only).
//!
//! ## Spans
//!
//! Each cached read (`#[cached_query]`, [`get_or_compute`](crate::Cache::get_or_compute),
//! [`fetch`](crate::Cache::fetch), [`get`](crate::Cache::get), ...) records [`HIT_FIELD`]
//! (`cache.hit`) and [`TIER_FIELD`] (`cache.tier`) on the caller's current span, if that span
//! declares them (`cache.hit = tracing::field::Empty`). Work a read leaves running — a
//! stale-while-revalidate or early refresh, a computation past its soft or hard timeout,
//! warmers started by [`Cache::warm`](crate::Cache::warm), a write finishing after its
//! caller gave up, a detached invalidation — runs in the span of the call that started it
//! (under querycache's `querycache.compute`/`querycache.refresh` spans at debug level). The
//! store's long-lived tasks (the invalidation subscriber, the circuit breaker's probe, the
//! connections' drivers) belong to no caller and run in no span.

#[cfg(feature = "metrics")]
mod facade;
pub(crate) mod families;
#[cfg(feature = "opentelemetry")]
mod otel;
#[cfg(feature = "prometheus")]
mod prometheus;
mod span;
mod striped;
pub(crate) mod timeline;
pub(crate) mod top_keys;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::key::HitKey;
use hdrhistogram::Histogram;
use parking_lot::Mutex;

#[cfg(feature = "metrics")]
pub use facade::{MetricsReporter, describe_metrics};
#[cfg(feature = "prometheus")]
pub use prometheus::OPENMETRICS_CONTENT_TYPE;
pub use span::{HIT_FIELD, TIER_FIELD};
pub(crate) use timeline::Timeline;
pub(crate) use top_keys::TopKeys;

/// A point-in-time copy of a cache's statistics.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use querycache::{Cache, EntryOptions};
///
/// let cache = Cache::new();
/// cache.set("greeting", "hello".to_string(), EntryOptions::new()).await.unwrap();
/// let _ = cache.get::<String>("greeting").await;
/// let _ = cache.get::<String>("missing").await;
/// let stats = cache.stats();
/// assert_eq!((stats.hits, stats.misses, stats.sets), (1, 1, 1));
/// assert_eq!(stats.hit_rate, 0.5);
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that found nothing usable (absent, expired, or invalidated).
    pub misses: u64,
    /// `hits / (hits + misses)`, 0 when there were no lookups.
    pub hit_rate: f64,
    /// Hits answered by process memory (every hit of the memory store; the front tier of
    /// the tiered store).
    pub memory_hits: u64,
    /// Hits answered by Redis (the Redis store, and the tiered store's memory misses).
    pub redis_hits: u64,
    /// Values stored.
    pub sets: u64,
    /// Tags invalidated plus keys removed by `delete`, patterns and namespaces.
    pub invalidations: u64,
    /// Store failures and values that could not be used (never returned to callers).
    pub errors: u64,
    /// Computations run on a miss (one per key at a time, however many callers wait).
    pub computations: u64,
    /// Computed values not stored because a tag they depend on moved meanwhile.
    pub wasted_computations: u64,
    /// Computed values not stored because a read replica they read had not replayed the
    /// primary's writes their tags' versions stand for (see
    /// [`CachedConnection::replica_of`](crate::orm::sea_orm::CachedConnection::replica_of)).
    pub replica_behind: u64,
    /// Calls that went straight to the computation: cache disabled, or a read inside a
    /// transaction that wrote the table.
    pub bypassed: u64,
    /// Entries in the memory store (may include expired entries not yet reclaimed).
    pub keys_count: u64,
    /// Estimated bytes held by the memory store.
    pub memory_usage_bytes: u64,
    /// Mean time to answer a lookup (hit or miss), without the computation.
    pub avg_get_latency: Duration,
    /// 99th percentile of the same.
    pub p99_get_latency: Duration,
    /// Answers served stale: within a stale-while-revalidate window, past a soft timeout,
    /// or by fail-safe.
    pub stale_served: u64,
    /// Refreshes started in the background by a stale-while-revalidate hit (not counting
    /// one that found the entry already refreshed by another caller's).
    pub background_refreshes: u64,
    /// Refreshes started before expiry by early refresh (XFetch).
    pub early_refreshes: u64,
    /// Background and early refreshes whose computation failed (the stale value stayed).
    pub refresh_errors: u64,
    /// Failed (or hard-timed-out) computations answered with the last good value instead.
    pub fail_safe_activations: u64,
    /// Computations that passed their soft timeout while a stale value could be served.
    pub soft_timeouts: u64,
    /// Computations abandoned at their hard timeout.
    pub hard_timeouts: u64,
    /// Times this instance waited for another instance's computation (Redis lease held).
    pub lease_waits: u64,
    /// Total time spent in those waits.
    pub lease_wait_time: Duration,
    /// The longest of those waits.
    pub lease_wait_max: Duration,
    /// The same figures for each namespace seen.
    pub namespaces: BTreeMap<String, NamespaceStats>,
}

/// Statistics of one namespace. See [`CacheStats`].
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct NamespaceStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that found nothing usable.
    pub misses: u64,
    /// `hits / (hits + misses)`.
    pub hit_rate: f64,
    /// Hits answered by process memory.
    pub memory_hits: u64,
    /// Hits answered by Redis.
    pub redis_hits: u64,
    /// Values stored.
    pub sets: u64,
    /// Computations run.
    pub computations: u64,
    /// Mean lookup time.
    pub avg_get_latency: Duration,
    /// 99th percentile lookup time.
    pub p99_get_latency: Duration,
}

/// Lookup latencies in nanoseconds, 1 ns to 60 s, 2 significant digits. Memory-tier hits
/// are timed one in [`HIT_SAMPLE_EVERY`] (timing one costs two reads of the precise clock,
/// more than the hit itself); the figures and the histogram's shape come from the timed
/// lookups, scaled to the count of lookups that the hit and miss counters keep.
pub(crate) struct Latency {
    histogram: Mutex<Histogram<u64>>,
}

/// One memory-tier hit in this many is timed, per thread.
pub(crate) const HIT_SAMPLE_EVERY: u32 = 64;

/// Whether this thread times its next memory-tier hit; the first one on each thread is.
#[inline]
pub(crate) fn time_this_hit() -> bool {
    thread_local! {
        static HITS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }
    HITS.with(|hits| {
        let n = hits.get();
        hits.set(if n + 1 >= HIT_SAMPLE_EVERY { 0 } else { n + 1 });
        n == 0
    })
}

impl Latency {
    fn new() -> Self {
        // Invariant: 1 ns .. 60 s at 2 significant figures is within hdrhistogram's limits
        // (low >= 1, high >= 2 * low, sigfig <= 5), so construction cannot fail.
        #[allow(clippy::expect_used)]
        let histogram = Histogram::new_with_bounds(1, 60_000_000_000, 2)
            .expect("constant histogram bounds are valid");
        Latency {
            histogram: Mutex::new(histogram),
        }
    }

    /// A timed lookup (every lookup past the memory tier, one memory-tier hit in
    /// [`HIT_SAMPLE_EVERY`]; the others are counted by the hit and miss counters alone).
    fn record(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.histogram.lock().saturating_record(nanos);
    }

    fn figures(&self) -> (Duration, Duration) {
        let h = self.histogram.lock();
        if h.is_empty() {
            return (Duration::ZERO, Duration::ZERO);
        }
        (
            Duration::from_nanos(h.mean() as u64),
            Duration::from_nanos(h.value_at_quantile(0.99)),
        )
    }

    /// The latency at each of `quantiles` (0 to 1), in seconds; 0 before any lookup was
    /// timed.
    #[cfg_attr(
        not(any(feature = "metrics", feature = "opentelemetry")),
        allow(dead_code)
    )]
    fn quantiles(&self, quantiles: &[f64]) -> Vec<f64> {
        let h = self.histogram.lock();
        quantiles
            .iter()
            .map(|&q| {
                if h.is_empty() {
                    0.0
                } else {
                    h.value_at_quantile(q) as f64 / 1e9
                }
            })
            .collect()
    }

    /// The recorded latencies as `(sum in seconds, count, count per bucket)`, the buckets
    /// being `bounds` (upper bounds in seconds, ascending) and a last one for the rest.
    /// The sum is the histogram's mean times its count (hdrhistogram keeps no exact sum).
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    fn buckets(&self, bounds: &[f64], lookups: u64) -> (f64, u64, Vec<u64>) {
        let h = self.histogram.lock();
        let mut timed = vec![0_u64; bounds.len() + 1];
        for value in h.iter_recorded() {
            let seconds = h.highest_equivalent(value.value_iterated_to()) as f64 / 1e9;
            let slot = bounds
                .iter()
                .position(|bound| seconds <= *bound)
                .unwrap_or(bounds.len());
            timed[slot] += value.count_at_value();
        }
        let samples = h.len();
        let count = lookups.max(samples);
        // Scaled to the count through the cumulative sums, so the buckets add up to it.
        let mut counts = Vec::with_capacity(timed.len());
        let (mut cumulative, mut previous) = (0_u64, 0_u64);
        for bucket in timed {
            cumulative += bucket;
            let scaled = if samples == 0 {
                0
            } else {
                (u128::from(cumulative) * u128::from(count) / u128::from(samples)) as u64
            };
            counts.push(scaled - previous);
            previous = scaled;
        }
        if let Some(last) = counts.last_mut() {
            *last += count - previous;
        }
        (h.mean() * count as f64 / 1e9, count, counts)
    }
}

#[derive(Default)]
struct Counters {
    /// Striped: bumped on every lookup (see [`striped`]).
    lookups: striped::LookupCounters,
    sets: AtomicU64,
    computations: AtomicU64,
}

impl NamespaceRecorder {
    /// The namespace's lookup latencies as `(sum in seconds, count, count per bucket)`, the
    /// buckets being `bounds` (upper bounds in seconds, ascending) and a last one for the
    /// rest; scaled to every lookup (see [`Latency`]).
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) fn latency_buckets(&self, bounds: &[f64]) -> (f64, u64, Vec<u64>) {
        let lookups = self.counters.lookups.read().total();
        self.latency.buckets(bounds, lookups)
    }

    /// The namespace's lookup latency at each of `quantiles`, in seconds.
    #[cfg_attr(
        not(any(feature = "metrics", feature = "opentelemetry")),
        allow(dead_code)
    )]
    pub(crate) fn latency_quantiles(&self, quantiles: &[f64]) -> Vec<f64> {
        self.latency.quantiles(quantiles)
    }
}

pub(crate) struct NamespaceRecorder {
    name: Arc<str>,
    counters: Counters,
    pub(crate) latency: Latency,
}

/// The live recorder behind [`CacheStats`].
pub(crate) struct StatsRecorder {
    /// Unique in the process: names this recorder in each thread's namespace cache.
    id: u64,
    /// Values stored, in every namespace (lookups are counted per namespace only).
    sets: AtomicU64,
    /// Computations run, in every namespace.
    computations: AtomicU64,
    invalidations: AtomicU64,
    errors: AtomicU64,
    wasted: AtomicU64,
    replica_behind: AtomicU64,
    bypassed: AtomicU64,
    pub(crate) latency: Latency,
    namespaces: DashMap<Arc<str>, Arc<NamespaceRecorder>>,
    /// Lookups, sets and invalidations per 10 s, for the last 15 minutes.
    pub(crate) timeline: Timeline,
    /// The most accessed keys (sampled).
    pub(crate) top_keys: TopKeys,
    pub(crate) fresh: FreshnessCounters,
}

/// A thread's last namespace recorder, and whose it is ([`StatsRecorder::last_namespace`]):
/// plain values, so that reading it checks no borrow flag and no destructor registration.
#[derive(Clone, Copy)]
struct LastNamespace {
    /// The id of the [`StatsRecorder`] it belongs to (`u64::MAX`: none yet).
    stats: u64,
    /// Borrowed from that recorder's map, which keeps it alive.
    ns: *const NamespaceRecorder,
    /// The address of the `'static` name the caller gave when it was found (null: none):
    /// the same address and length is the same name, without comparing its bytes.
    given: *const u8,
}

thread_local! {
    static LAST_NAMESPACE: Cell<LastNamespace> = const {
        Cell::new(LastNamespace {
            stats: u64::MAX,
            ns: std::ptr::null(),
            given: std::ptr::null(),
        })
    };
}

/// A namespace's name as a lookup gives it: a `'static` one (a `#[cached_query]`
/// function's, a literal) is recognised by its address on the hit path.
#[derive(Clone, Copy)]
pub(crate) enum NamespaceName<'a> {
    Static(&'static str),
    Borrowed(&'a str),
}

impl<'a> NamespaceName<'a> {
    /// The name.
    #[inline]
    pub(crate) fn as_str(self) -> &'a str {
        match self {
            NamespaceName::Static(name) => name,
            NamespaceName::Borrowed(name) => name,
        }
    }
}

/// Counters of what happens at the edges of entries' lives (see [`CacheStats`]).
#[derive(Default)]
pub(crate) struct FreshnessCounters {
    pub(crate) stale_served: AtomicU64,
    pub(crate) background_refreshes: AtomicU64,
    pub(crate) early_refreshes: AtomicU64,
    pub(crate) refresh_errors: AtomicU64,
    pub(crate) fail_safe_activations: AtomicU64,
    pub(crate) soft_timeouts: AtomicU64,
    pub(crate) hard_timeouts: AtomicU64,
    lease_waits: AtomicU64,
    lease_wait_us: AtomicU64,
    lease_wait_max_us: AtomicU64,
}

impl FreshnessCounters {
    /// Adds one to `counter`.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    /// A wait for another instance's computation, of `waited`.
    pub(crate) fn lease_wait(&self, waited: Duration) {
        let us = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        self.lease_waits.fetch_add(1, Relaxed);
        self.lease_wait_us.fetch_add(us, Relaxed);
        self.lease_wait_max_us.fetch_max(us, Relaxed);
    }
}

/// What a lookup found, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LookupOutcome {
    /// Answered by the named tier (`memory` or `redis`).
    Hit(&'static str),
    Miss,
}

impl StatsRecorder {
    pub(crate) fn new() -> Self {
        static IDS: AtomicU64 = AtomicU64::new(0);
        StatsRecorder {
            id: IDS.fetch_add(1, Relaxed),
            sets: AtomicU64::new(0),
            computations: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            wasted: AtomicU64::new(0),
            replica_behind: AtomicU64::new(0),
            bypassed: AtomicU64::new(0),
            latency: Latency::new(),
            namespaces: DashMap::new(),
            timeline: Timeline::new(),
            top_keys: TopKeys::new(),
            fresh: FreshnessCounters::default(),
        }
    }

    /// What `f` makes of the recorder of `namespace` (created on first use).
    #[inline]
    fn with_namespace<R>(&self, namespace: &str, f: impl FnOnce(&NamespaceRecorder) -> R) -> R {
        match self.last_namespace(NamespaceName::Borrowed(namespace)) {
            Some(ns) => f(ns),
            None => f(&self.namespace(NamespaceName::Borrowed(namespace))),
        }
    }

    /// This thread's last recorder when it is `namespace`'s of these statistics: most
    /// threads count into one namespace over and over, and skip the map (hashing the name,
    /// a shard lock, an `Arc` clone: a write to a line every thread counting shares).
    #[inline]
    fn last_namespace(&self, namespace: NamespaceName<'_>) -> Option<&NamespaceRecorder> {
        let last = LAST_NAMESPACE.with(Cell::get);
        if last.stats != self.id {
            return None;
        }
        // SAFETY: `last.ns` was taken (by `namespace` below) from the map of the recorder
        // whose id is `last.stats`, which is `self`: ids are never reused, and a recorder's
        // map never drops a namespace's `Arc` while the recorder lives, which `&self`
        // proves. So it points to a live `NamespaceRecorder`, shared (`Sync`), for at
        // least the lifetime of `&self`.
        let ns = unsafe { &*last.ns };
        let same = match namespace {
            // A `'static` name's bytes never change: the name found at this address, of
            // this length, is the same name.
            NamespaceName::Static(name)
                if std::ptr::eq(name.as_ptr(), last.given) && name.len() == ns.name.len() =>
            {
                true
            }
            NamespaceName::Static(name) => {
                let same = *ns.name == *name;
                if same {
                    // Recognised by its address from now on.
                    LAST_NAMESPACE.with(|last| {
                        last.set(LastNamespace {
                            given: name.as_ptr(),
                            ..last.get()
                        });
                    });
                }
                same
            }
            NamespaceName::Borrowed(name) => *ns.name == *name,
        };
        same.then_some(ns)
    }

    /// The recorder of `namespace` from the map (created on first use), remembered as this
    /// thread's last.
    #[cold]
    #[inline(never)]
    fn namespace(&self, namespace: NamespaceName<'_>) -> Arc<NamespaceRecorder> {
        let name = namespace.as_str();
        let ns = match self.namespaces.get(name) {
            Some(ns) => Arc::clone(ns.value()),
            None => Arc::clone(
                self.namespaces
                    .entry(Arc::from(name))
                    .or_insert_with(|| {
                        Arc::new(NamespaceRecorder {
                            name: Arc::from(name),
                            counters: Counters::default(),
                            latency: Latency::new(),
                        })
                    })
                    .value(),
            ),
        };
        let given = match namespace {
            NamespaceName::Static(name) => name.as_ptr(),
            NamespaceName::Borrowed(_) => std::ptr::null(),
        };
        LAST_NAMESPACE.with(|last| {
            last.set(LastNamespace {
                stats: self.id,
                ns: Arc::as_ptr(&ns),
                given,
            });
        });
        ns
    }

    /// A lookup of `key` that started at `started` and took `elapsed`.
    pub(crate) fn lookup(
        &self,
        namespace: &str,
        key: &str,
        outcome: LookupOutcome,
        started: Instant,
        elapsed: Duration,
    ) {
        self.count_lookup(
            NamespaceName::Borrowed(namespace),
            HitKey::Text(key),
            outcome,
            crate::clock::of_instant(started),
            Some(elapsed),
        );
    }

    /// A fresh memory-tier hit on `key` at `at` (a reading of [`clock::now`](crate::clock::now)),
    /// timed when `elapsed` is given (see [`Latency`]).
    #[inline]
    pub(crate) fn memory_hit(
        &self,
        namespace: NamespaceName<'_>,
        key: HitKey<'_>,
        at: u64,
        elapsed: Option<Duration>,
    ) {
        self.count_lookup(namespace, key, LookupOutcome::Hit("memory"), at, elapsed);
    }

    /// Counts a lookup. The hit path's work is inline and writes only lines of this
    /// thread's stripe; what is rare (a namespace not the thread's last, a timed lookup, a
    /// sampled key) is out of line, so the common case stays a short run of loads and
    /// stores, inlined into the hit's own function (no call, no second frame).
    #[inline(always)]
    fn count_lookup(
        &self,
        namespace: NamespaceName<'_>,
        key: HitKey<'_>,
        outcome: LookupOutcome,
        started: u64,
        elapsed: Option<Duration>,
    ) {
        span::record(outcome);
        let stripe = crate::stripes::stripe();
        match self.last_namespace(namespace) {
            Some(ns) => ns.counters.lookups.count_in(outcome, stripe),
            None => self.count_in_namespace(namespace, outcome, stripe),
        }
        if let Some(elapsed) = elapsed {
            self.record_latency(namespace.as_str(), elapsed);
        }
        let hit = outcome != LookupOutcome::Miss;
        self.timeline.lookup_at(started, hit, stripe);
        self.top_keys.record(key, namespace.as_str(), hit);
    }

    /// [`count_lookup`](Self::count_lookup) in a namespace that is not this thread's last.
    #[cold]
    #[inline(never)]
    fn count_in_namespace(
        &self,
        namespace: NamespaceName<'_>,
        outcome: LookupOutcome,
        stripe: (usize, bool),
    ) {
        self.namespace(namespace)
            .counters
            .lookups
            .count_in(outcome, stripe);
    }

    /// A timed lookup, in the namespace's latency and the cache's.
    #[cold]
    #[inline(never)]
    fn record_latency(&self, namespace: &str, elapsed: Duration) {
        self.with_namespace(namespace, |ns| ns.latency.record(elapsed));
        self.latency.record(elapsed);
    }

    pub(crate) fn set(&self, namespace: &str) {
        self.timeline.set(Instant::now());
        self.sets.fetch_add(1, Relaxed);
        self.with_namespace(namespace, |ns| ns.counters.sets.fetch_add(1, Relaxed));
    }

    pub(crate) fn computation(&self, namespace: &str) {
        self.computations.fetch_add(1, Relaxed);
        self.with_namespace(namespace, |ns| {
            ns.counters.computations.fetch_add(1, Relaxed)
        });
    }

    pub(crate) fn invalidations(&self, n: u64) {
        if n > 0 {
            self.timeline.invalidations(Instant::now(), n);
        }
        self.invalidations.fetch_add(n, Relaxed);
    }

    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Relaxed);
    }

    pub(crate) fn wasted(&self) {
        self.wasted.fetch_add(1, Relaxed);
    }

    #[cfg(feature = "sea-orm")]
    pub(crate) fn replica_behind(&self) {
        self.replica_behind.fetch_add(1, Relaxed);
    }

    pub(crate) fn bypassed(&self) {
        self.bypassed.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self, keys_count: u64, memory_usage_bytes: u64) -> CacheStats {
        let (avg, p99) = self.latency.figures();
        // Every lookup is counted in its namespace: the totals are their sums.
        let mut totals = striped::Lookups::default();
        let namespaces = self
            .namespaces
            .iter()
            .map(|entry| {
                let ns = entry.value();
                let (avg, p99) = ns.latency.figures();
                let lookups = ns.counters.lookups.read();
                totals.add(lookups);
                let striped::Lookups {
                    memory_hits,
                    redis_hits,
                    misses,
                } = lookups;
                let hits = memory_hits + redis_hits;
                let stats = NamespaceStats {
                    hits,
                    misses,
                    hit_rate: rate(hits, misses),
                    memory_hits,
                    redis_hits,
                    sets: ns.counters.sets.load(Relaxed),
                    computations: ns.counters.computations.load(Relaxed),
                    avg_get_latency: avg,
                    p99_get_latency: p99,
                };
                (entry.key().to_string(), stats)
            })
            .collect();
        let striped::Lookups {
            memory_hits,
            redis_hits,
            misses,
        } = totals;
        let hits = memory_hits + redis_hits;
        CacheStats {
            hits,
            misses,
            hit_rate: rate(hits, misses),
            memory_hits,
            redis_hits,
            sets: self.sets.load(Relaxed),
            invalidations: self.invalidations.load(Relaxed),
            errors: self.errors.load(Relaxed),
            computations: self.computations.load(Relaxed),
            wasted_computations: self.wasted.load(Relaxed),
            replica_behind: self.replica_behind.load(Relaxed),
            bypassed: self.bypassed.load(Relaxed),
            keys_count,
            memory_usage_bytes,
            avg_get_latency: avg,
            p99_get_latency: p99,
            stale_served: self.fresh.stale_served.load(Relaxed),
            background_refreshes: self.fresh.background_refreshes.load(Relaxed),
            early_refreshes: self.fresh.early_refreshes.load(Relaxed),
            refresh_errors: self.fresh.refresh_errors.load(Relaxed),
            fail_safe_activations: self.fresh.fail_safe_activations.load(Relaxed),
            soft_timeouts: self.fresh.soft_timeouts.load(Relaxed),
            hard_timeouts: self.fresh.hard_timeouts.load(Relaxed),
            lease_waits: self.fresh.lease_waits.load(Relaxed),
            lease_wait_time: Duration::from_micros(self.fresh.lease_wait_us.load(Relaxed)),
            lease_wait_max: Duration::from_micros(self.fresh.lease_wait_max_us.load(Relaxed)),
            namespaces,
        }
    }

    /// The latency histogram of each namespace seen, for exposition.
    #[cfg_attr(
        not(any(feature = "prometheus", feature = "metrics", feature = "opentelemetry")),
        allow(dead_code)
    )]
    pub(crate) fn namespace_recorders(&self) -> Vec<(String, Arc<NamespaceRecorder>)> {
        self.namespaces
            .iter()
            .map(|entry| (entry.key().to_string(), Arc::clone(entry.value())))
            .collect()
    }
}

pub(crate) fn rate(hits: u64, misses: u64) -> f64 {
    let total = hits + misses;
    if total == 0 {
        0.0
    } else {
        hits as f64 / total as f64
    }
}
