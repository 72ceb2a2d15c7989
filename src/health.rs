//! [`Health`]: what [`Cache::health`](crate::Cache::health) reports.

use crate::{config::StoreKind, warm::WarmStatus};

/// The state of a cache's store, for health endpoints and dashboards.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let health = querycache::Cache::new().health().await;
/// assert!(health.healthy);
/// assert!(!health.redis_connected, "the memory store has no Redis");
/// assert!(!health.fallback_active);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Health {
    /// `false` only while the instance is starting: a tiered store that has not yet
    /// subscribed to its invalidation channel for the first time (its memory tier is not
    /// used until then) and knows of no Redis outage. The management router's `GET /health`
    /// answers 503 while it is `false`, for a load balancer's readiness check; a degraded
    /// store (Redis down: memory serves) is ready, since it answers every query correctly.
    pub ready: bool,
    /// `true` when the store works as configured: always for the memory store; for the
    /// Redis and tiered stores, when Redis answers (and, tiered, the invalidation channel
    /// is subscribed). `false` means degraded, never failing: callers still get answers.
    pub healthy: bool,
    /// The store in use.
    pub store: StoreKind,
    /// Whether Redis answered a probe just now (always `false` for the memory store).
    pub redis_connected: bool,
    /// Whether process memory can serve when Redis cannot (always `true`).
    pub fallback_available: bool,
    /// Whether process memory is serving in Redis's place right now (the circuit breaker is
    /// open).
    pub fallback_active: bool,
    /// Tiered store: whether this instance hears other instances' invalidations. While it
    /// does not, the memory tier is bypassed. `None` for the other stores.
    pub invalidation_channel: Option<bool>,
    /// Tiered store: how many times this instance has lost the invalidation channel since
    /// it started (each loss drops the memory tier when the channel is back). A number that
    /// keeps growing means the subscription connection is being cut. `0` for the other
    /// stores.
    pub invalidation_channel_losses: u64,
    /// Invalidations made during a Redis outage, waiting to be replayed to Redis.
    pub pending_invalidations: usize,
    /// Redis and tiered stores: invalidations this instance made while Redis was full
    /// (`maxmemory` reached under `noeviction`), by deleting the tags' versions rather than
    /// bumping them, and published as usual. Nothing is stored while Redis is full (the
    /// cache works uncached, `error` says why); `0` otherwise, and for the memory store.
    pub full_redis_invalidations: u64,
    /// Redis and tiered stores: lookups during Redis outages that found an entry in process
    /// memory older than `CACHE_DEGRADED_MAX_AGE_MS` and went to the database instead (it
    /// may have missed another instance's write). `0` for the memory store.
    pub degraded_refusals: u64,
    /// Redis and tiered stores: how many times this instance found Redis to be a new
    /// incarnation (a restart that loaded a snapshot or an AOF, a promoted replica; on a
    /// cluster, a new set of masters) and rotated the store epoch, which kills every entry
    /// stored before (the first incarnation recorded on a new or cleared store is not
    /// counted). `0` for the memory store.
    pub redis_epoch_rotations: u64,
    /// Statements through the SeaORM integration whose callers stopped waiting (a timeout, a
    /// client that went away) and that are finishing in the background: writes, each
    /// followed by its invalidation, and reads, run to their end so that their connection
    /// is not left half-way through the protocol. Normally `0`; a number that stays up
    /// means the database is slow to answer them.
    pub writes_in_flight: u64,
    /// The last Redis error since the store was last healthy, if any.
    pub error: Option<String>,
    /// The current or last cache warming run ([`Cache::warm`](crate::Cache::warm)):
    /// state, warmers done out of the total, entries so far, last error, times.
    pub warming: WarmStatus,
    /// The change feeds running on this cache ([`crate::feed`]): what each is doing, the
    /// transactions it applied, its gaps. A feed that is neither following nor standing by
    /// (connecting after an error: `last_error` says which) makes `healthy` `false`, since
    /// writes from outside the application are not seen meanwhile.
    pub change_feeds: Vec<crate::feed::FeedStatus>,
}

impl Health {
    /// This report with the change feeds' `statuses`: a feed that is not following nor
    /// standing by makes it unhealthy.
    pub(crate) fn with_feeds(mut self, statuses: Vec<crate::feed::FeedStatus>) -> Self {
        use crate::feed::FeedState;
        if statuses
            .iter()
            .any(|s| !matches!(s.state, FeedState::Following | FeedState::Standby))
        {
            self.healthy = false;
        }
        self.change_feeds = statuses;
        self
    }
}
