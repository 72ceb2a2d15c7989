//! [`Analytics`]: what [`Cache::analytics`] reports — efficiency, usage (the most
//! accessed keys, turnover), a timeline of the last 15 minutes, per-namespace figures, and
//! recommendations.

mod audit;
mod recommend;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

pub(crate) use audit::AuditLog;
pub use audit::{AuditFinding, MAX_FINDINGS};
pub use recommend::{Recommendation, RecommendationLevel};

use crate::stats::timeline::{self, Timeline};
use crate::{Cache, stats::CacheStats};

/// How many keys [`Usage::top_keys`] lists at most.
pub const TOP_KEYS: usize = 20;
/// What [`Analytics::redacted`] puts in place of each top key's text.
pub const REDACTED_KEY: &str = "<redacted>";
/// The window [`Turnover`] rates are computed over.
pub const TURNOVER_WINDOW: Duration = Duration::from_secs(5 * 60);

/// A cache's analytics, for dashboards and management endpoints. Serializes to JSON as is.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use querycache::{Cache, EntryOptions};
///
/// let cache = Cache::new();
/// let options = EntryOptions::new().namespace("songs");
/// for _ in 0..3 {
///     cache.get_or_compute("songs:count", options.clone(), || async { 42_u64 }).await;
/// }
/// let analytics = cache.analytics();
/// assert!((analytics.efficiency.hit_rate - 2.0 / 3.0).abs() < 1e-9);
/// assert_eq!(analytics.namespaces["songs"].hits, 2);
/// assert_eq!(analytics.timeline.len(), 90, "15 minutes of 10 s buckets");
/// assert_eq!(analytics.timeline.last().unwrap().hits, 2);
/// let json = serde_json::to_value(&analytics).unwrap();
/// assert!(json["efficiency"]["efficiency_score"].is_number());
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Analytics {
    /// When these figures were read, unix milliseconds.
    pub generated_at_ms: u64,
    /// How well the cache does its job.
    pub efficiency: Efficiency,
    /// What is in it and how it is used.
    pub usage: Usage,
    /// Lookups, sets and invalidations per 10-second bucket over the last 15 minutes,
    /// oldest first (90 buckets, the last one in progress).
    pub timeline: Vec<TimelineBucket>,
    /// Figures per namespace.
    pub namespaces: BTreeMap<String, NamespaceAnalytics>,
    /// Advice from the rules documented on [`Recommendation`].
    pub recommendations: Vec<Recommendation>,
}

/// Hit rate, lookup latency, and one score. See [`Analytics`].
///
/// ```
/// let efficiency = querycache::Cache::new().analytics().efficiency;
/// assert_eq!((efficiency.hit_rate, efficiency.efficiency_score), (0.0, 0.0));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Efficiency {
    /// `hits / (hits + misses)`, 0..1 (0 before any lookup).
    pub hit_rate: f64,
    /// Lookups so far (hits and misses).
    pub lookups: u64,
    /// Mean time to answer a lookup, without the computation, in milliseconds.
    pub avg_response_time_ms: f64,
    /// 99th percentile of the same.
    pub p99_response_time_ms: f64,
    /// Computations whose value was not stored because its tags moved meanwhile.
    pub wasted_computations: u64,
    /// Store failures and unusable entries.
    pub errors: u64,
    /// 0..100, one decimal: `100 × hit_rate × (1 − wasted_computations / computations) ×
    /// (1 − min(1, errors / lookups))`. A cache that answers every lookup, wastes no
    /// computation and never errs scores 100; each shortfall scales it down in proportion.
    /// 0 before any lookup.
    pub efficiency_score: f64,
}

/// The most accessed keys, turnover and size. See [`Analytics`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use querycache::{Cache, EntryOptions};
///
/// let cache = Cache::new();
/// cache.set("k", 1_u8, EntryOptions::new()).await.unwrap();
/// let usage = cache.analytics().usage;
/// assert_eq!(usage.keys_count, 1);
/// assert!(usage.turnover.sets_per_minute > 0.0);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Usage {
    /// Up to [`TOP_KEYS`] keys, most accessed first. Approximate: one lookup in 16 is
    /// sampled (counts are scaled back up) into a Space-Saving sketch of 256 counters, so
    /// a key accessed a handful of times may be missing, and counts are multiples of 16.
    pub top_keys: Vec<TopKey>,
    /// Whether the text of [`top_keys`](Self::top_keys) was replaced by [`REDACTED_KEY`]
    /// ([`Analytics::redacted`]: the public view of the management router).
    pub keys_redacted: bool,
    /// Sets and invalidations per minute, recently.
    pub turnover: Turnover,
    /// Entries in process memory (may include expired entries not yet reclaimed).
    pub keys_count: u64,
    /// Estimated bytes held in process memory.
    pub memory_usage_bytes: u64,
}

/// One of the most accessed keys. See [`Usage::top_keys`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let cache = querycache::Cache::new();
/// for _ in 0..1000 {
///     let _ = cache.get::<u8>("popular").await;
/// }
/// let top = &cache.analytics().usage.top_keys[0];
/// assert_eq!(top.key, "popular");
/// assert!(top.misses > 500 && top.hits == 0);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TopKey {
    /// The key.
    pub key: String,
    /// The namespace of its lookups (`default` for direct [`Cache::get`] calls).
    pub namespace: String,
    /// Estimated lookups, the ranking figure: an upper bound (a key that took over the
    /// counter of a rarer one inherits its count).
    pub estimated_accesses: u64,
    /// Estimated hits since the key was monitored.
    pub hits: u64,
    /// Estimated misses since the key was monitored.
    pub misses: u64,
    /// `hits / (hits + misses)`.
    pub hit_rate: f64,
}

/// Sets and invalidations per minute over the last [`TURNOVER_WINDOW`] (or since the cache
/// was made, if that is shorter). See [`Usage::turnover`].
///
/// ```
/// let turnover = querycache::Cache::new().analytics().usage.turnover;
/// assert_eq!(turnover.invalidations_per_minute, 0.0);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Turnover {
    /// Values stored per minute.
    pub sets_per_minute: f64,
    /// Invalidations per minute (tags invalidated plus keys removed).
    pub invalidations_per_minute: f64,
    /// The window the rates are over, in seconds.
    pub window_secs: u64,
}

/// One 10-second bucket of [`Analytics::timeline`].
///
/// ```
/// let timeline = querycache::Cache::new().analytics().timeline;
/// assert_eq!(timeline[1].start_ms - timeline[0].start_ms, 10_000);
/// assert_eq!(timeline[0].hit_rate, None, "no lookups");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TimelineBucket {
    /// Start of the bucket, unix milliseconds (a multiple of 10 000).
    pub start_ms: u64,
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that found nothing usable.
    pub misses: u64,
    /// `hits / (hits + misses)`; `None` (JSON `null`: a gap in a chart, not a drop to 0)
    /// when there was no lookup.
    pub hit_rate: Option<f64>,
    /// Values stored.
    pub sets: u64,
    /// Invalidations.
    pub invalidations: u64,
}

/// Figures of one namespace. See [`Analytics::namespaces`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use querycache::{Cache, EntryOptions};
///
/// let cache = Cache::new();
/// let opts = EntryOptions::new().namespace("users");
/// cache.get_or_compute("user:1", opts, || async { 1_u8 }).await;
/// let users = &cache.analytics().namespaces["users"];
/// assert_eq!((users.hits, users.misses, users.sets), (0, 1, 1));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct NamespaceAnalytics {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that found nothing usable.
    pub misses: u64,
    /// `hits / (hits + misses)`.
    pub hit_rate: f64,
    /// Values stored.
    pub sets: u64,
    /// Computations run.
    pub computations: u64,
    /// Mean lookup time in milliseconds.
    pub avg_response_time_ms: f64,
    /// 99th percentile lookup time in milliseconds.
    pub p99_response_time_ms: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The score documented on [`Efficiency::efficiency_score`].
fn efficiency_score(stats: &CacheStats) -> f64 {
    let lookups = stats.hits + stats.misses;
    if lookups == 0 {
        return 0.0;
    }
    let wasted = if stats.computations == 0 {
        0.0
    } else {
        (stats.wasted_computations as f64 / stats.computations as f64).min(1.0)
    };
    let errors = (stats.errors as f64 / lookups as f64).min(1.0);
    let score = 100.0 * stats.hit_rate * (1.0 - wasted) * (1.0 - errors);
    (score * 10.0).round() / 10.0
}

impl Cache {
    /// Analytics: efficiency, the most accessed keys, turnover, a 15-minute timeline, per
    /// namespace figures and recommendations. Cheap enough for a dashboard polling every
    /// few seconds (it copies counters; it does not touch the store).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = querycache::Cache::new();
    /// let _ = cache.get::<u8>("k").await;
    /// let analytics = cache.analytics();
    /// assert_eq!(analytics.efficiency.lookups, 1);
    /// assert_eq!(analytics.namespaces["default"].misses, 1);
    /// # }
    /// ```
    pub fn analytics(&self) -> Analytics {
        let stats = self.stats();
        let recorder = self.recorder();
        let now = Instant::now();
        let timeline: Vec<TimelineBucket> = recorder
            .timeline
            .read(now)
            .into_iter()
            .map(|b| TimelineBucket {
                start_ms: b.start_ms,
                hits: b.hits,
                misses: b.misses,
                hit_rate: (b.hits + b.misses > 0).then(|| crate::stats::rate(b.hits, b.misses)),
                sets: b.sets,
                invalidations: b.invalidations,
            })
            .collect();
        let turnover = turnover(&recorder.timeline, &timeline, now);
        let top_keys = recorder
            .top_keys
            .top(TOP_KEYS)
            .into_iter()
            .map(|k| TopKey {
                hit_rate: crate::stats::rate(k.hits, k.misses),
                key: k.key,
                namespace: k.namespace,
                estimated_accesses: k.estimated_accesses,
                hits: k.hits,
                misses: k.misses,
            })
            .collect();
        let namespaces = stats
            .namespaces
            .iter()
            .map(|(name, ns)| {
                let figures = NamespaceAnalytics {
                    hits: ns.hits,
                    misses: ns.misses,
                    hit_rate: ns.hit_rate,
                    sets: ns.sets,
                    computations: ns.computations,
                    avg_response_time_ms: ms(ns.avg_get_latency),
                    p99_response_time_ms: ms(ns.p99_get_latency),
                };
                (name.clone(), figures)
            })
            .collect();
        Analytics {
            generated_at_ms: recorder.timeline.unix_ms(now),
            efficiency: Efficiency {
                hit_rate: stats.hit_rate,
                lookups: stats.hits + stats.misses,
                avg_response_time_ms: ms(stats.avg_get_latency),
                p99_response_time_ms: ms(stats.p99_get_latency),
                wasted_computations: stats.wasted_computations,
                errors: stats.errors,
                efficiency_score: efficiency_score(&stats),
            },
            usage: Usage {
                top_keys,
                keys_redacted: false,
                turnover,
                keys_count: stats.keys_count,
                memory_usage_bytes: stats.memory_usage_bytes,
            },
            timeline,
            namespaces,
            recommendations: recommend::recommend(&stats),
        }
    }
}

impl Analytics {
    /// These analytics without anything a client sent: each top key's text (for a cached
    /// HTTP answer, the request's path and a hash of its query and credentials) is replaced
    /// by [`REDACTED_KEY`]; its namespace and counts stay. [`Usage::keys_redacted`] says so.
    /// The management router's `GET /analytics` answers this unless the request carries
    /// the admin token: keys may hold other users' paths, and any client can plant text in
    /// them.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use querycache::{Cache, EntryOptions, analytics::REDACTED_KEY};
    ///
    /// let cache = Cache::new();
    /// let options = EntryOptions::new().namespace("http");
    /// for _ in 0..100 {
    ///     cache.get_or_compute("http:/users/42/secret-plans", options.clone(), || async { 1_u8 }).await;
    /// }
    /// let public = cache.analytics().redacted();
    /// assert!(public.usage.keys_redacted);
    /// let top = &public.usage.top_keys[0];
    /// assert_eq!((top.key.as_str(), top.namespace.as_str()), (REDACTED_KEY, "http"));
    /// assert!(top.hits > 0);
    /// assert!(!serde_json::to_string(&public).unwrap().contains("secret-plans"));
    /// # }
    /// ```
    #[must_use]
    pub fn redacted(mut self) -> Analytics {
        for top in &mut self.usage.top_keys {
            REDACTED_KEY.clone_into(&mut top.key);
        }
        self.usage.keys_redacted = true;
        self
    }
}

/// Rates over the buckets that overlap the last [`TURNOVER_WINDOW`] (or the cache's life,
/// if shorter); the window runs from the start of its first bucket (or the cache's
/// creation, if later) to now.
fn turnover(ring: &Timeline, buckets: &[TimelineBucket], now: Instant) -> Turnover {
    let now_ms = ring.unix_ms(now);
    let window = TURNOVER_WINDOW.min(ring.age(now));
    let from_ms = now_ms.saturating_sub(u64::try_from(window.as_millis()).unwrap_or(u64::MAX));
    let bucket_ms = u64::try_from(timeline::BUCKET.as_millis()).unwrap_or(10_000);
    let recent = buckets.iter().filter(|b| b.start_ms + bucket_ms > from_ms);
    let (mut sets, mut invalidations, mut start) = (0, 0, now_ms);
    for b in recent {
        sets += b.sets;
        invalidations += b.invalidations;
        start = start.min(b.start_ms);
    }
    // Not before the cache was made (its first bucket may have started earlier), and at
    // least one second, so a cache a few microseconds old does not report millions.
    let created_ms = now_ms.saturating_sub(u64::try_from(ring.age(now).as_millis()).unwrap_or(0));
    let span_secs = (now_ms.saturating_sub(start.max(created_ms)) as f64 / 1000.0).max(1.0);
    Turnover {
        sets_per_minute: sets as f64 * 60.0 / span_secs,
        invalidations_per_minute: invalidations as f64 * 60.0 / span_secs,
        window_secs: span_secs.ceil() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_score_scales_the_hit_rate_down_for_waste_and_errors() {
        let mut s = CacheStats {
            hits: 80,
            misses: 20,
            hit_rate: 0.8,
            ..CacheStats::default()
        };
        assert_eq!(efficiency_score(&s), 80.0);
        s.computations = 20;
        s.wasted_computations = 5;
        assert_eq!(efficiency_score(&s), 60.0);
        s.errors = 10;
        assert_eq!(efficiency_score(&s), 54.0);
        s.errors = 1_000;
        assert_eq!(efficiency_score(&s), 0.0);
        assert_eq!(efficiency_score(&CacheStats::default()), 0.0);
    }
}
