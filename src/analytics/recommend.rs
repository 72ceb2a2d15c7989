//! The rules behind [`Analytics::recommendations`](super::Analytics::recommendations).
//! Each is documented on [`Recommendation`]; thresholds are the constants below.

use serde::Serialize;

use crate::stats::CacheStats;

/// Below this many lookups the hit-rate rules stay silent.
pub(crate) const MIN_LOOKUPS: u64 = 100;
/// A hit rate above this is excellent.
pub(crate) const EXCELLENT_HIT_RATE: f64 = 0.8;
/// A hit rate below this is poor.
pub(crate) const POOR_HIT_RATE: f64 = 0.5;
/// A namespace needs this many lookups to be named the worst.
pub(crate) const MIN_NAMESPACE_LOOKUPS: u64 = 10;
/// Wasted computations above this share of computations are "many"...
pub(crate) const WASTED_SHARE: f64 = 0.1;
/// ...once there are at least this many.
pub(crate) const MIN_WASTED: u64 = 10;
/// Errors above this share of lookups are critical rather than a warning.
pub(crate) const CRITICAL_ERROR_SHARE: f64 = 0.05;

/// How urgent a [`Recommendation`] is.
///
/// ```
/// use querycache::analytics::RecommendationLevel;
///
/// assert_eq!(serde_json::to_string(&RecommendationLevel::Warning).unwrap(), "\"warning\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RecommendationLevel {
    /// Good news, or nothing to act on yet.
    Info,
    /// Worth a look: the cache works, but less well than it could.
    Warning,
    /// The cache is failing at its job (its store errs on a large share of lookups).
    Critical,
}

/// One piece of advice derived from a cache's statistics by fixed rules, in this order:
///
/// | rule | level | when |
/// | --- | --- | --- |
/// | not enough traffic yet | info | fewer than 100 lookups: the hit-rate rules wait |
/// | excellent | info | hit rate above 80% |
/// | poor hit rate | warning | hit rate below 50%; names the namespace with the lowest hit rate (of those with 10 lookups or more), and says whether invalidations outnumber sets (entries die of writes: use finer tags, e.g. `row = id`) or not (entries die of TTL or eviction: longer TTLs, a larger `CACHE_MEMORY_MAX_BYTES`) |
/// | writes racing reads | warning | more than 10% of computations (and at least 10) were wasted: their tags moved while they ran |
/// | store trouble | warning, critical above 5% of lookups | any store error (Redis failures, undecodable or mistyped entries): check [`Cache::health`](crate::Cache::health) |
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use querycache::{Cache, analytics::RecommendationLevel};
///
/// let cache = Cache::new();
/// let _ = cache.get::<u8>("nothing").await;
/// let advice = cache.analytics().recommendations;
/// assert_eq!(advice[0].level, RecommendationLevel::Info);
/// assert!(advice[0].message.starts_with("Not enough traffic yet"));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Recommendation {
    /// How urgent it is.
    pub level: RecommendationLevel,
    /// What was seen and what to do, in one or two sentences.
    pub message: String,
}

impl Recommendation {
    fn new(level: RecommendationLevel, message: String) -> Self {
        Recommendation { level, message }
    }
}

fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

/// Applies the rules to `stats`.
pub(crate) fn recommend(stats: &CacheStats) -> Vec<Recommendation> {
    use RecommendationLevel::{Critical, Info, Warning};
    let mut out = Vec::new();
    let lookups = stats.hits + stats.misses;
    if lookups < MIN_LOOKUPS {
        out.push(Recommendation::new(
            Info,
            format!(
                "Not enough traffic yet: {lookups} lookups so far; hit-rate advice starts at {MIN_LOOKUPS}."
            ),
        ));
    } else if stats.hit_rate > EXCELLENT_HIT_RATE {
        out.push(Recommendation::new(
            Info,
            format!(
                "Hit rate is excellent: {} of {lookups} lookups served from the cache.",
                percent(stats.hit_rate)
            ),
        ));
    } else if stats.hit_rate < POOR_HIT_RATE {
        out.push(Recommendation::new(Warning, poor_hit_rate(stats, lookups)));
    }
    if stats.wasted_computations >= MIN_WASTED
        && stats.wasted_computations as f64 > WASTED_SHARE * stats.computations as f64
    {
        out.push(Recommendation::new(
            Warning,
            format!(
                "{} of {} computations were wasted: their tags were invalidated while they ran, \
                 so writes are racing reads of the same data. Finer tags (row = id) or caching \
                 after bursts of writes settle would help.",
                stats.wasted_computations, stats.computations
            ),
        ));
    }
    if stats.errors > 0 {
        let share = stats.errors as f64 / lookups.max(1) as f64;
        let level = if share > CRITICAL_ERROR_SHARE {
            Critical
        } else {
            Warning
        };
        out.push(Recommendation::new(
            level,
            format!(
                "{} cache store errors ({} of lookups): the store is in trouble (Redis \
                 unreachable or slow, undecodable or mistyped entries). Queries are still \
                 answered; check the cache health and the logs.",
                stats.errors,
                percent(share)
            ),
        ));
    }
    out
}

fn poor_hit_rate(stats: &CacheStats, lookups: u64) -> String {
    let mut message = format!(
        "Hit rate is low: {} of {lookups} lookups. Check TTLs and invalidation volume.",
        percent(stats.hit_rate)
    );
    let worst = stats
        .namespaces
        .iter()
        .filter(|(_, ns)| ns.hits + ns.misses >= MIN_NAMESPACE_LOOKUPS)
        .min_by(|a, b| a.1.hit_rate.total_cmp(&b.1.hit_rate));
    if let Some((name, ns)) = worst {
        message.push_str(&format!(
            " Worst namespace: {name} ({} of {} lookups).",
            percent(ns.hit_rate),
            ns.hits + ns.misses
        ));
    }
    if stats.invalidations > stats.sets {
        message.push_str(&format!(
            " Invalidations ({}) outnumber sets ({}): entries are invalidated before they are \
             reused; finer tags (row = id) keep unrelated entries alive.",
            stats.invalidations, stats.sets
        ));
    } else {
        message.push_str(&format!(
            " Sets ({}) outnumber invalidations ({}): entries expire or are evicted before \
             they are reused; consider longer TTLs or a larger CACHE_MEMORY_MAX_BYTES.",
            stats.sets, stats.invalidations
        ));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::NamespaceStats;

    fn stats(hits: u64, misses: u64) -> CacheStats {
        CacheStats {
            hits,
            misses,
            hit_rate: crate::stats::rate(hits, misses),
            ..CacheStats::default()
        }
    }

    fn ns(hits: u64, misses: u64) -> NamespaceStats {
        NamespaceStats {
            hits,
            misses,
            hit_rate: crate::stats::rate(hits, misses),
            ..NamespaceStats::default()
        }
    }

    #[test]
    fn too_few_lookups_says_so_and_nothing_about_the_hit_rate() {
        let advice = recommend(&stats(1, 50));
        assert_eq!(advice.len(), 1);
        assert_eq!(advice[0].level, RecommendationLevel::Info);
        assert!(
            advice[0]
                .message
                .starts_with("Not enough traffic yet: 51 lookups")
        );
    }

    #[test]
    fn above_eighty_percent_is_excellent() {
        let advice = recommend(&stats(90, 10));
        assert_eq!(advice.len(), 1);
        assert_eq!(advice[0].level, RecommendationLevel::Info);
        assert!(advice[0].message.contains("excellent: 90% of 100"));
    }

    #[test]
    fn between_fifty_and_eighty_percent_says_nothing() {
        assert!(recommend(&stats(70, 30)).is_empty());
    }

    #[test]
    fn a_poor_hit_rate_names_the_worst_namespace_and_the_invalidation_volume() {
        let mut s = stats(30, 70);
        s.namespaces.insert("songs".into(), ns(20, 30));
        s.namespaces.insert("users".into(), ns(10, 40));
        s.namespaces.insert("rare".into(), ns(0, 3));
        s.sets = 70;
        s.invalidations = 200;
        let advice = recommend(&s);
        assert_eq!(advice.len(), 1);
        assert_eq!(advice[0].level, RecommendationLevel::Warning);
        let m = &advice[0].message;
        assert!(m.contains("Hit rate is low: 30% of 100"), "{m}");
        assert!(
            m.contains("Worst namespace: users (20% of 50 lookups)"),
            "{m}"
        );
        assert!(m.contains("Invalidations (200) outnumber sets (70)"), "{m}");

        s.invalidations = 5;
        let m = &recommend(&s)[0].message;
        assert!(m.contains("Sets (70) outnumber invalidations (5)"), "{m}");
        assert!(m.contains("longer TTLs"), "{m}");
    }

    #[test]
    fn many_wasted_computations_mean_writes_racing_reads() {
        let mut s = stats(90, 10);
        s.computations = 100;
        s.wasted_computations = 9;
        assert_eq!(recommend(&s).len(), 1, "9 wasted is not many");
        s.wasted_computations = 30;
        let advice = recommend(&s);
        assert_eq!(advice.len(), 2);
        assert_eq!(advice[1].level, RecommendationLevel::Warning);
        assert!(
            advice[1]
                .message
                .contains("30 of 100 computations were wasted")
        );
        assert!(advice[1].message.contains("writes are racing reads"));
    }

    #[test]
    fn errors_mean_store_trouble_critical_above_five_percent() {
        let mut s = stats(180, 20);
        s.errors = 2;
        let advice = recommend(&s);
        assert_eq!(advice[1].level, RecommendationLevel::Warning);
        assert!(
            advice[1]
                .message
                .contains("2 cache store errors (1% of lookups)")
        );
        s.errors = 40;
        assert_eq!(recommend(&s)[1].level, RecommendationLevel::Critical);
        // Errors with no lookups at all still say so.
        let mut quiet = stats(0, 0);
        quiet.errors = 1;
        assert_eq!(recommend(&quiet)[1].level, RecommendationLevel::Critical);
    }
}
