//! `GET /health`, `GET /metrics` and `GET /analytics` of the management router, and the
//! Prometheus route: read-only, no token (the admin token only shows `/analytics`' keys).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::extract::rejection::QueryRejection;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

use super::envelope::{ApiError, ApiResponse};
use super::management::Shared;
use crate::{
    Health,
    analytics::Analytics,
    stats::{CacheStats, NamespaceStats},
};

/// `GET /health`: [`Cache::health`](crate::Cache::health) as JSON. Status 503 while the
/// instance is starting ([`Health::ready`] is `false`: a tiered store not yet subscribed to
/// its invalidation channel), 200 afterwards, degraded or not — for a load balancer's
/// readiness check.
///
/// A degraded cache still answers every query (from process memory or the database), so
/// degradation is not a reason for a load balancer to take the instance out: if Redis went
/// down, every instance would go at once, and a cache outage would become an outage of the
/// application. The body says `"healthy": false` and why (`redis_connected`,
/// `fallback_active`, `error`). A monitor that should fail on degradation asks
/// `GET /health?strict=true`: 503 whenever `healthy` is `false`.
pub(crate) async fn health(
    State(shared): State<Shared>,
    query: Result<axum::extract::Query<HealthQuery>, QueryRejection>,
) -> Result<ApiResponse<Health>, ApiError> {
    let axum::extract::Query(query) = query?;
    let health = shared.cache.health().await;
    let up = if query.strict {
        health.healthy
    } else {
        health.ready
    };
    let status = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(ApiResponse::new(health).with_status(status))
}

/// The query string of `GET /health`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct HealthQuery {
    /// 503 whenever the store is not healthy, not only while starting.
    strict: bool,
}

/// `GET /metrics`: [`Cache::stats`](crate::Cache::stats) as JSON.
pub(crate) async fn metrics(State(shared): State<Shared>) -> ApiResponse<MetricsReport> {
    ApiResponse::new(MetricsReport::from(shared.cache.stats()))
}

/// `GET /analytics`: [`Cache::analytics`](crate::Cache::analytics) as JSON — with the key
/// texts of the top keys only for a request carrying the admin token, [redacted](Analytics::redacted)
/// for everyone else.
///
/// The route stays public: its figures are the same for everyone. Keys are not: they hold
/// request paths and queries (other users'), and any client can plant text in them. The
/// token is checked by the admin routes' own check, throttle included — a wrong or
/// malformed one counts as a failed attempt, and while admin requests are throttled the
/// token is not even looked at — but a request that fails it is not refused: it gets the
/// public view, as a request without `Authorization` does (a dashboard polling with a
/// mistyped token keeps working; `usage.keys_redacted` tells it the token did not count).
/// Without an admin token configured, everyone gets the public view.
pub(crate) async fn analytics(
    State(shared): State<Shared>,
    headers: HeaderMap,
) -> ApiResponse<Analytics> {
    let analytics = shared.cache.analytics();
    let admin = headers.contains_key(AUTHORIZATION)
        && shared.token.is_set()
        && shared.token.check(&headers).is_ok();
    ApiResponse::new(if admin {
        analytics
    } else {
        analytics.redacted()
    })
}

/// The `data` of `GET /metrics`. Times are in milliseconds (fractional).
#[derive(Debug, Serialize)]
pub(crate) struct MetricsReport {
    hits: u64,
    misses: u64,
    hit_rate: f64,
    sets: u64,
    invalidations: u64,
    errors: u64,
    avg_response_time_ms: f64,
    p99_response_time_ms: f64,
    memory_usage_bytes: u64,
    keys_count: u64,
    memory_hits: u64,
    redis_hits: u64,
    computations: u64,
    wasted_computations: u64,
    replica_behind: u64,
    bypassed: u64,
    freshness: FreshnessReport,
    namespaces: BTreeMap<String, NamespaceReport>,
}

/// What happened at the edges of entries' lives, in `GET /metrics` (see
/// [`CacheStats`]'s fields of the same names).
#[derive(Debug, Serialize)]
struct FreshnessReport {
    stale_served: u64,
    background_refreshes: u64,
    early_refreshes: u64,
    refresh_errors: u64,
    fail_safe_activations: u64,
    soft_timeouts: u64,
    hard_timeouts: u64,
    lease_waits: u64,
    lease_wait_total_ms: f64,
    lease_wait_max_ms: f64,
}

/// One namespace's figures in `GET /metrics`.
#[derive(Debug, Serialize)]
struct NamespaceReport {
    hits: u64,
    misses: u64,
    hit_rate: f64,
    sets: u64,
    computations: u64,
    avg_response_time_ms: f64,
    p99_response_time_ms: f64,
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

impl From<CacheStats> for MetricsReport {
    fn from(stats: CacheStats) -> Self {
        MetricsReport {
            hits: stats.hits,
            misses: stats.misses,
            hit_rate: stats.hit_rate,
            sets: stats.sets,
            invalidations: stats.invalidations,
            errors: stats.errors,
            avg_response_time_ms: millis(stats.avg_get_latency),
            p99_response_time_ms: millis(stats.p99_get_latency),
            memory_usage_bytes: stats.memory_usage_bytes,
            keys_count: stats.keys_count,
            memory_hits: stats.memory_hits,
            redis_hits: stats.redis_hits,
            computations: stats.computations,
            wasted_computations: stats.wasted_computations,
            replica_behind: stats.replica_behind,
            bypassed: stats.bypassed,
            freshness: FreshnessReport {
                stale_served: stats.stale_served,
                background_refreshes: stats.background_refreshes,
                early_refreshes: stats.early_refreshes,
                refresh_errors: stats.refresh_errors,
                fail_safe_activations: stats.fail_safe_activations,
                soft_timeouts: stats.soft_timeouts,
                hard_timeouts: stats.hard_timeouts,
                lease_waits: stats.lease_waits,
                lease_wait_total_ms: millis(stats.lease_wait_time),
                lease_wait_max_ms: millis(stats.lease_wait_max),
            },
            namespaces: stats
                .namespaces
                .into_iter()
                .map(|(name, ns)| (name, NamespaceReport::from(ns)))
                .collect(),
        }
    }
}

impl From<NamespaceStats> for NamespaceReport {
    fn from(ns: NamespaceStats) -> Self {
        NamespaceReport {
            hits: ns.hits,
            misses: ns.misses,
            hit_rate: ns.hit_rate,
            sets: ns.sets,
            computations: ns.computations,
            avg_response_time_ms: millis(ns.avg_get_latency),
            p99_response_time_ms: millis(ns.p99_get_latency),
        }
    }
}
