//! The metric families every exporter publishes — Prometheus text, the `metrics` facade,
//! OpenTelemetry — in one table, so that their names, help texts and values agree. Each
//! exporter spells a family's name its own way from its stem and unit:
//!
//! | exporter | a counter | a gauge with a unit |
//! | --- | --- | --- |
//! | Prometheus (prometheus-client) | `querycache_hits_total` | `querycache_memory_bytes` |
//! | `metrics` facade | `querycache_hits_total` | `querycache_memory_bytes` |
//! | OpenTelemetry | `querycache.hits` (→ `querycache_hits_total` through OTel's Prometheus translation) | `querycache.memory`, unit `By` (→ `querycache_memory_bytes`) |

#![cfg_attr(
    not(any(feature = "prometheus", feature = "metrics", feature = "opentelemetry")),
    allow(dead_code)
)]

use super::{CacheStats, NamespaceStats};
use crate::Cache;

/// The unit of a family, which each exporter appends to the name its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// A count: no suffix.
    Count,
    /// Seconds: `_seconds`, OTel `s`.
    Seconds,
    /// Bytes: `_bytes`, OTel `By`.
    Bytes,
}

impl Unit {
    /// The Prometheus name suffix (`_seconds`), empty for a count.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            Unit::Count => "",
            Unit::Seconds => "_seconds",
            Unit::Bytes => "_bytes",
        }
    }
}

/// A metric family: its name without prefix, unit or `_total`, its help text, and how to
/// read its value.
#[derive(Clone, Copy)]
pub(crate) struct Family<R> {
    pub(crate) stem: &'static str,
    pub(crate) help: &'static str,
    pub(crate) unit: Unit,
    pub(crate) read: R,
}

impl<R> Family<R> {
    /// The full Prometheus name (`querycache_hits_total`), as the `metrics` facade
    /// publishes it.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn prometheus_name(&self, counter: bool) -> String {
        let total = if counter { "_total" } else { "" };
        format!("{PREFIX}_{}{}{total}", self.stem, self.unit.suffix())
    }

    /// The OpenTelemetry instrument name (`querycache.hits`).
    #[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
    pub(crate) fn otel_name(&self) -> String {
        format!("{PREFIX}.{}", self.stem)
    }
}

/// The prefix of every name.
pub(crate) const PREFIX: &str = "querycache";

/// A counter of the whole cache, and one per namespace.
type Total = Family<fn(&CacheStats) -> u64>;
type PerNamespace = Family<fn(&NamespaceStats) -> u64>;

const fn count<R>(stem: &'static str, help: &'static str, read: R) -> Family<R> {
    Family {
        stem,
        help,
        unit: Unit::Count,
        read,
    }
}

/// Hits, labelled by namespace and tier ([`tiers`]).
pub(crate) const HITS: Family<()> = count(
    "hits",
    "Lookups answered from the cache, by namespace and by the tier that answered",
    (),
);

/// Counters labelled by namespace.
pub(crate) const PER_NAMESPACE: [PerNamespace; 3] = [
    count(
        "misses",
        "Lookups that found nothing usable (absent, expired or invalidated)",
        |n| n.misses,
    ),
    count("sets", "Values stored", |n| n.sets),
    count(
        "computations",
        "Computations run on a miss (one per key at a time)",
        |n| n.computations,
    ),
];

/// Counters of the whole cache.
pub(crate) const TOTALS: [Total; 13] = [
    count("invalidations", "Tags invalidated plus keys removed", |s| {
        s.invalidations
    }),
    count(
        "errors",
        "Store failures and unusable entries (never returned to callers)",
        |s| s.errors,
    ),
    count(
        "wasted_computations",
        "Computed values not stored because their tags moved meanwhile",
        |s| s.wasted_computations,
    ),
    count(
        "replica_behind",
        "Computed values not stored because the read replica they read lagged the primary",
        |s| s.replica_behind,
    ),
    count(
        "bypassed",
        "Calls that went straight to the computation",
        |s| s.bypassed,
    ),
    count(
        "stale_served",
        "Answers served past their TTL (swr window, soft timeout, fail-safe)",
        |s| s.stale_served,
    ),
    count(
        "background_refreshes",
        "Refreshes started by a stale-while-revalidate hit",
        |s| s.background_refreshes,
    ),
    count(
        "early_refreshes",
        "Refreshes started before expiry (XFetch)",
        |s| s.early_refreshes,
    ),
    count(
        "refresh_errors",
        "Refreshes whose computation failed (the stale value stayed)",
        |s| s.refresh_errors,
    ),
    count(
        "fail_safe_activations",
        "Failed computations answered with the last good value",
        |s| s.fail_safe_activations,
    ),
    count(
        "soft_timeouts",
        "Computations past their soft timeout while a stale value was served",
        |s| s.soft_timeouts,
    ),
    count(
        "hard_timeouts",
        "Computations abandoned at their hard timeout",
        |s| s.hard_timeouts,
    ),
    count(
        "lease_waits",
        "Waits for another instance's computation of the same key",
        |s| s.lease_waits,
    ),
];

/// The time spent in lease waits, a counter in seconds.
pub(crate) const LEASE_WAIT: Family<fn(&CacheStats) -> f64> = Family {
    stem: "lease_wait",
    help: "Time spent waiting for other instances' computations",
    unit: Unit::Seconds,
    read: |s| s.lease_wait_time.as_secs_f64(),
};

/// The lookup latency, per namespace: a histogram in the Prometheus text; quantile gauges
/// where the exporter has no collection-time histogram (`metrics`, OpenTelemetry).
pub(crate) const LOOKUP_DURATION: Family<()> = Family {
    stem: "lookup_duration",
    help: "Time to answer a lookup, hit or miss, without the computation",
    unit: Unit::Seconds,
    read: (),
};

/// The quantiles published where the latency cannot be a histogram.
#[cfg_attr(
    not(any(feature = "metrics", feature = "opentelemetry")),
    allow(dead_code)
)]
pub(crate) const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

/// A gauge, read from the cache (its store's state) and its statistics.
type Gauge = Family<fn(&Cache, &CacheStats) -> u64>;

/// The gauges.
pub(crate) const GAUGES: [Gauge; 4] = [
    count(
        "fallback_active",
        "1 while process memory serves in Redis's place (circuit breaker open)",
        |cache, _| u64::from(cache.store_state().1),
    ),
    count(
        "redis_connected",
        "1 while Redis answers (circuit breaker closed); 0 for the memory store",
        |cache, _| u64::from(cache.store_state().0),
    ),
    Family {
        stem: "memory",
        help: "Estimated bytes held in process memory",
        unit: Unit::Bytes,
        read: |_, stats| stats.memory_usage_bytes,
    },
    count("keys", "Entries held in process memory", |_, stats| {
        stats.keys_count
    }),
];

/// A namespace's hits by tier: `memory` always, `redis` when the cache has a Redis tier.
pub(crate) fn tiers(cache: &Cache, ns: &NamespaceStats) -> Vec<(&'static str, u64)> {
    let mut tiers = vec![("memory", ns.memory_hits)];
    if cache.config().store_kind() != crate::config::StoreKind::Memory {
        tiers.push(("redis", ns.redis_hits));
    }
    tiers
}
