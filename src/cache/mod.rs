//! [`Cache`]: the handle applications and generated code talk to.

mod absent;
pub(crate) mod bypass;
pub(crate) mod call;
mod compute;
pub(crate) mod databases;
mod events;
mod fetch;
mod fingerprint;
pub(crate) mod flight;
mod global;
mod invalidate;
pub(crate) mod observe;
pub(crate) mod options;
mod read;
#[cfg(feature = "axum")]
pub(crate) use read::Quick;
mod sync;

pub use bypass::{bypass, bypass_sync};
pub use fetch::{FetchError, Fetched, TimedOut};
pub use global::{global, install};
pub use options::{DEFAULT_NAMESPACE, EntryOptions};

use std::any::Any;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cache::flight::Flights;
use crate::config::{CacheBuilder, CacheConfig};
use crate::events::EventBus;
use crate::stats::{CacheStats, LookupOutcome, StatsRecorder};
use crate::store::Backend;
use crate::store::memory::MemoryStore;
use crate::store::{AnyValue, Lookup, Store, StoreError};
use crate::warm::Warming;
use crate::{Error, Key};

/// What a cached value must be: shareable across threads, and serializable (shared stores
/// keep values as JSON, and the memory store weighs them by their JSON size).
///
/// Implemented for every type that qualifies; there is nothing to implement by hand.
pub trait CacheValue: Serialize + DeserializeOwned + Send + Sync + 'static {}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> CacheValue for T {}

/// A query cache: cheap to clone (an `Arc`), `Send + Sync`, one per process or one per
/// test.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use querycache::{Cache, EntryOptions, Tag};
///
/// let cache = Cache::new();
/// let options = EntryOptions::new().ttl_secs(60).tag(Tag::model("songs"));
///
/// // The first call computes, the second is served from memory.
/// let count = cache.get_or_compute("songs:count", options.clone(), || async { 42_u64 }).await;
/// let again = cache.get_or_compute("songs:count", options, || async { 0_u64 }).await;
/// assert_eq!((*count, *again), (42, 42));
///
/// // A write to the songs table makes the entry a miss.
/// cache.invalidate_tags([Tag::model("songs")]).await;
/// assert!(cache.get::<u64>("songs:count").await.is_none());
/// # }
/// ```
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

/// A [`Cache`] that may have been dropped ([`Cache::downgrade`]).
#[derive(Clone)]
#[cfg_attr(
    not(any(feature = "metrics", feature = "opentelemetry")),
    allow(dead_code)
)]
pub(crate) struct WeakCache(std::sync::Weak<Inner>);

#[cfg_attr(
    not(any(feature = "metrics", feature = "opentelemetry")),
    allow(dead_code)
)]
impl WeakCache {
    /// The cache, while any handle to it is left.
    pub(crate) fn upgrade(&self) -> Option<Cache> {
        self.0.upgrade().map(|inner| Cache { inner })
    }
}

struct Inner {
    config: CacheConfig,
    store: Backend,
    stats: StatsRecorder,
    flights: Flights,
    warming: Warming,
    /// Keys whose computation failed recently, and since when (a reading of the memory
    /// tier's clock, `config.clock`): fail-safe throttling, and refresh errors logged once.
    failing: dashmap::DashMap<Key, u64>,
    /// Writes finishing in the background after their callers stopped waiting
    /// ([`Health::writes_in_flight`](crate::Health::writes_in_flight)).
    background_writes: std::sync::atomic::AtomicU64,
    /// The databases ORM connections met through this cache ([`databases`]).
    databases: databases::Databases,
    /// What the audit of undeclared dependencies found (`CACHE_AUDIT`).
    audit: crate::analytics::AuditLog,
    /// The change feeds started on this cache, for [`Cache::health`] (gone when their
    /// handles are dropped).
    feeds: parking_lot::Mutex<Vec<std::sync::Weak<crate::feed::Reporter>>>,
    /// The live invalidation stream ([`Cache::invalidation_events`]).
    events: Arc<EventBus>,
}

/// An entry found valid (its tags unmoved), with its freshness.
pub(crate) struct Looked<T> {
    pub(crate) value: Arc<T>,
    pub(crate) timing: crate::store::Timing,
}

/// How long a value about to be stored is fresh, kept past that, and took to compute.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoreTiming {
    pub(crate) ttl: Duration,
    pub(crate) grace: Duration,
    pub(crate) delta: Duration,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("store", &self.inner.store.tier())
            .field("enabled", &self.inner.config.enabled)
            .finish_non_exhaustive()
    }
}

impl AsRef<Cache> for Cache {
    fn as_ref(&self) -> &Cache {
        self
    }
}

impl Default for Cache {
    fn default() -> Self {
        Self::new()
    }
}

impl Cache {
    /// A memory cache with the default configuration.
    ///
    /// ```
    /// let cache = querycache::Cache::new();
    /// assert!(cache.config().enabled());
    /// ```
    pub fn new() -> Self {
        Self::with_config(CacheConfig::default())
    }

    /// A cache with `config`.
    ///
    /// ```
    /// use querycache::{Cache, CacheConfig};
    ///
    /// let config = CacheConfig::builder().memory_max_bytes(64 << 20).build().unwrap();
    /// let cache = Cache::with_config(config);
    /// assert_eq!(cache.config().memory_max_bytes(), 64 << 20);
    /// ```
    pub fn with_config(config: CacheConfig) -> Self {
        let events = Arc::new(EventBus::new());
        let store = backend_for(&config, &events);
        Cache {
            inner: Arc::new(Inner {
                config,
                store,
                stats: StatsRecorder::new(),
                flights: Flights::default(),
                warming: Warming::default(),
                failing: dashmap::DashMap::new(),
                background_writes: std::sync::atomic::AtomicU64::new(0),
                databases: databases::Databases::default(),
                audit: crate::analytics::AuditLog::default(),
                feeds: parking_lot::Mutex::new(Vec::new()),
                events,
            }),
        }
    }

    /// A builder: the settings of [`CacheConfig`], then [`build`](CacheBuilder::build) makes
    /// the cache.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = querycache::Cache::builder()
    ///     .default_ttl(Duration::from_secs(300))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(cache.config().default_ttl(), Duration::from_secs(300));
    /// ```
    pub fn builder() -> CacheBuilder {
        CacheBuilder::from_config(CacheConfig::default())
    }

    /// A cache configured from the environment ([`CacheConfig::from_env`]).
    ///
    /// ```
    /// // With CACHE_DEFAULT_TTL=soon in the environment this would fail, naming the variable.
    /// let cache = querycache::Cache::from_env().unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable at fault.
    pub fn from_env() -> Result<Self, Error> {
        Ok(Self::with_config(CacheConfig::from_env()?))
    }

    /// A cache configured from the environment variables named with `prefix` in place of
    /// `CACHE_` ([`CacheConfig::from_env_prefixed`]: `MYAPP_CACHE_DEFAULT_TTL`,
    /// `MYAPP_CACHE_REDIS_URL`; `DATABASE_URL` stays bare).
    ///
    /// ```
    /// let cache = querycache::Cache::from_env_prefixed("MYAPP_CACHE_").unwrap();
    /// assert!(cache.config().enabled());
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] naming the prefixed variable at fault.
    pub fn from_env_prefixed(prefix: &str) -> Result<Self, Error> {
        Ok(Self::with_config(CacheConfig::from_env_prefixed(prefix)?))
    }

    /// A handle that does not keep the cache alive (for background tasks and metric
    /// callbacks that should end with it).
    #[cfg_attr(
        not(any(feature = "metrics", feature = "opentelemetry")),
        allow(dead_code)
    )]
    pub(crate) fn downgrade(&self) -> WeakCache {
        WeakCache(Arc::downgrade(&self.inner))
    }

    /// Whether `other` is this cache (a clone of the same handle), not another one.
    pub(crate) fn same_as(&self, other: &Cache) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The configuration in force.
    pub fn config(&self) -> &CacheConfig {
        &self.inner.config
    }

    /// The value under `key`, if present, unexpired, not invalidated, and of type `T`.
    ///
    /// A value stored under the same key with another type is a miss (and counts as an
    /// error): keys are not typed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use querycache::{Cache, EntryOptions};
    ///
    /// let cache = Cache::new();
    /// cache.set("k", 7_u32, EntryOptions::new()).await.unwrap();
    /// assert_eq!(cache.get::<u32>("k").await.as_deref(), Some(&7));
    /// assert!(cache.get::<String>("k").await.is_none(), "another type is a miss");
    /// # }
    /// ```
    pub async fn get<T: CacheValue>(&self, key: &str) -> Option<Arc<T>> {
        if !self.inner.config.enabled {
            return None;
        }
        if crate::cache::bypass::active() {
            self.trace_bypass(key);
            self.inner.stats.bypassed();
            return None;
        }
        // Direct reads have no namespace of their own. (Not through `lookup`: each async
        // layer a hit goes through moves its future, kilobytes, once more.)
        let namespace = crate::cache::options::DEFAULT_NAMESPACE;
        self.lookup_found::<T>(key, namespace, crate::store::read_scope(), false)
            .await
            .map(|looked| looked.value)
    }

    /// Stores `value` under `key` with `options`, tagged with the current versions of its
    /// tags.
    ///
    /// # Errors
    /// [`Error::InvalidName`] for an invalid key, [`Error::Encode`] when `value` cannot be
    /// serialized.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use querycache::{Cache, EntryOptions, Tag};
    ///
    /// let cache = Cache::new();
    /// let options = EntryOptions::new().ttl_secs(60).tag(Tag::new("user:1").unwrap());
    /// cache.set("user:1:profile", "Ada".to_string(), options).await.unwrap();
    /// assert!(cache.set("", 1_u8, EntryOptions::new()).await.is_err());
    /// # }
    /// ```
    pub async fn set<T: CacheValue>(
        &self,
        key: &str,
        value: T,
        options: EntryOptions,
    ) -> Result<(), Error> {
        let key = Key::new(key)?;
        let weight = weigh(&key, &value, &options).map_err(|source| Error::Encode {
            key: key.to_string(),
            source,
        })?;
        if !self.inner.config.enabled {
            return Ok(());
        }
        let deps = options.dependencies();
        let snapshot = self.inner.store.snapshot(&deps).await;
        let value = Arc::new(value);
        match snapshot {
            Ok(snapshot) => {
                let meta = crate::store::EntryMeta {
                    ttl: self.resolve_ttl(&options, &key),
                    grace: self.plan(&options).grace(),
                    delta: Duration::ZERO,
                    weight,
                };
                self.put(&key, value, snapshot, options.namespace_name(), meta)
                    .await;
            }
            Err(error) => self.store_error("snapshot", key.as_str(), &error),
        }
        Ok(())
    }

    /// Removes `key`; returns whether it was present. A computation of `key` already in
    /// flight will not store its result.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = querycache::Cache::new();
    /// cache.set("k", 1_u8, querycache::EntryOptions::new()).await.unwrap();
    /// assert!(cache.delete("k").await);
    /// assert!(!cache.delete("k").await);
    /// # }
    /// ```
    pub async fn delete(&self, key: &str) -> bool {
        match self.inner.store.remove(key).await {
            Ok(found) => {
                self.inner.stats.invalidations(u64::from(found));
                found
            }
            Err(error) => {
                self.store_error("delete", key, &error);
                false
            }
        }
    }

    /// Removes every entry. Computations in flight will not store their results.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = querycache::Cache::new();
    /// cache.set("k", 1_u8, querycache::EntryOptions::new()).await.unwrap();
    /// cache.clear().await;
    /// assert_eq!(cache.stats().keys_count, 0);
    /// # }
    /// ```
    pub async fn clear(&self) {
        if let Err(error) = self.inner.store.clear().await {
            self.store_error("clear", "*", &error);
        }
        self.inner.events.cleared();
        tracing::info!(tier = self.inner.store.tier(), "Cache CLEARED");
    }

    /// The TTL for an entry: call, namespace policy, count default, global default — capped,
    /// then shortened at random by up to the jitter percentage.
    fn resolve_ttl(&self, options: &EntryOptions, key: &Key) -> Duration {
        let ttl = self.capped_ttl(options, key);
        let percent = options.jitter.unwrap_or(self.inner.config.jitter_percent);
        jittered(ttl, percent, rand::random::<f64>())
    }

    /// The TTL `value` is stored with: `ttl`, or at most `CACHE_NEGATIVE_TTL` when the
    /// value says nothing was found (see [`absent`]).
    fn stored_ttl<T: Serialize>(&self, value: &T, ttl: Duration) -> Duration {
        let negative = self.inner.config.negative_ttl;
        if ttl > negative && absent::is_absent(value) {
            negative
        } else {
            ttl
        }
    }

    /// The TTL for an entry before jitter.
    fn capped_ttl(&self, options: &EntryOptions, key: &Key) -> Duration {
        let config = &self.inner.config;
        let ttl = options
            .ttl
            .or_else(|| config.ttl_for_namespace(options.namespace_name()))
            .unwrap_or(if options.count_query {
                config.count_ttl
            } else {
                config.default_ttl
            });
        if ttl > config.max_ttl {
            tracing::debug!(
                key = %crate::key::shown(&key),
                requested_secs = ttl.as_secs(),
                max_secs = config.max_ttl.as_secs(),
                "TTL clamped to CACHE_MAX_TTL"
            );
            return config.max_ttl;
        }
        ttl
    }

    async fn lookup<T: CacheValue>(&self, key: &str, namespace: &str) -> Option<Arc<T>> {
        self.lookup_found(key, namespace, crate::store::read_scope(), false)
            .await
            .map(|looked| looked.value)
    }

    /// A lookup that may also return an entry past its TTL (`stale_ok`), still valid.
    /// Counted as a hit when fresh, as a miss otherwise.
    async fn lookup_found<T: CacheValue>(
        &self,
        key: &str,
        namespace: &str,
        scope: crate::store::ReadScope,
        stale_ok: bool,
    ) -> Option<Looked<T>> {
        let started = Instant::now();
        let lookup = self.inner.store.get(key, &decode::<T>, scope).await;
        let elapsed = started.elapsed();
        let mut stale = None;
        let found = match lookup {
            Ok(Lookup::Hit(found)) if found.timing.is_stale() => {
                if stale_ok && let Ok(value) = found.value.downcast::<T>() {
                    stale = Some(Looked {
                        value,
                        timing: found.timing,
                    });
                }
                None
            }
            Ok(Lookup::Hit(found)) => match found.value.downcast::<T>() {
                Ok(value) => {
                    tracing::debug!(
                        tier = found.tier,
                        key = %crate::key::shown(key),
                        hit = true,
                        latency_ns = elapsed.as_nanos() as u64,
                        "Cache HIT: {} (age: {}s)",
                        crate::key::shown(key),
                        found.age.as_secs()
                    );
                    Some((value, found.tier, found.timing))
                }
                Err(other) => {
                    self.type_mismatch(key, &*other);
                    None
                }
            },
            Ok(Lookup::Undecodable(error)) => {
                self.inner.stats.error();
                tracing::warn!(
                    tier = self.inner.store.tier(),
                    key = %crate::key::shown(key),
                    %error,
                    "stored value cannot be decoded; treated as a miss and overwritten"
                );
                None
            }
            Ok(Lookup::Miss | Lookup::Expired | Lookup::Invalidated) => None,
            Err(error) => {
                self.store_error("get", key, &error);
                None
            }
        };
        let outcome = if let Some((_, tier, _)) = &found {
            LookupOutcome::Hit(tier)
        } else {
            tracing::debug!(
                tier = self.inner.store.tier(),
                key = %crate::key::shown(key),
                hit = false,
                latency_ns = elapsed.as_nanos() as u64,
                "Cache MISS: {}",
                crate::key::shown(key)
            );
            LookupOutcome::Miss
        };
        self.inner
            .stats
            .lookup(namespace, key, outcome, started, elapsed);
        found
            .map(|(value, _, timing)| Looked { value, timing })
            .or(stale)
    }

    fn type_mismatch(&self, key: &str, _found: &(dyn Any + Send + Sync)) {
        self.inner.stats.error();
        tracing::warn!(
            key = %crate::key::shown(key),
            "entry holds a value of another type than requested (two queries share a key?); treated as a miss"
        );
    }

    pub(crate) fn store_error(&self, operation: &'static str, key: &str, error: &StoreError) {
        self.inner.stats.error();
        tracing::warn!(
            tier = self.inner.store.tier(),
            operation,
            key = %crate::key::shown(key),
            %error,
            "cache store failed; serving without it"
        );
    }

    /// Current statistics.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = querycache::Cache::new();
    /// let _ = cache.get::<u8>("nothing").await;
    /// assert_eq!(cache.stats().misses, 1);
    /// # }
    /// ```
    pub fn stats(&self) -> CacheStats {
        let usage = self.inner.store.usage();
        let mut stats = self.inner.stats.snapshot(usage.entries, usage.bytes);
        stats.errors += usage.errors;
        stats
    }

    /// The state of the store: whether Redis answers (probed now, within the command
    /// timeout, unless the circuit breaker is open), whether process memory is standing in
    /// for it, and the last error; and the progress of cache warming.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let health = querycache::Cache::new().health().await;
    /// assert_eq!(health.store, querycache::config::StoreKind::Memory);
    /// assert!(health.healthy && health.fallback_available);
    /// # }
    /// ```
    pub async fn health(&self) -> crate::Health {
        match &self.inner.store {
            Backend::Memory(_) => crate::Health {
                ready: true,
                healthy: true,
                store: crate::config::StoreKind::Memory,
                redis_connected: false,
                fallback_available: true,
                fallback_active: false,
                invalidation_channel: None,
                invalidation_channel_losses: 0,
                pending_invalidations: 0,
                full_redis_invalidations: 0,
                degraded_refusals: 0,
                redis_epoch_rotations: 0,
                writes_in_flight: self.writes_in_flight(),
                error: None,
                warming: self.warming().status(),
                change_feeds: Vec::new(),
            }
            .with_feeds(self.feed_statuses()),
            #[cfg(feature = "redis")]
            Backend::Tiered(store) => {
                let h = store.health().await;
                // Starting: the channel has not come up yet, nor failed to, and no outage
                // explains it.
                let starting =
                    h.subscribed == Some(false) && !h.channel_settled && !h.fallback_active;
                crate::Health {
                    ready: !starting,
                    healthy: h.redis_connected && h.subscribed != Some(false),
                    store: self.inner.config.store_kind(),
                    redis_connected: h.redis_connected,
                    fallback_available: true,
                    fallback_active: h.fallback_active,
                    invalidation_channel: h.subscribed,
                    invalidation_channel_losses: h.channel_losses,
                    pending_invalidations: h.pending_invalidations,
                    full_redis_invalidations: h.full_bumps,
                    degraded_refusals: h.degraded_refusals,
                    redis_epoch_rotations: h.epoch_rotations,
                    writes_in_flight: self.writes_in_flight(),
                    error: h.error,
                    warming: self.warming().status(),
                    change_feeds: Vec::new(),
                }
                .with_feeds(self.feed_statuses())
            }
        }
    }

    /// Remembers a change feed started on this cache, for [`health`](Self::health).
    #[cfg_attr(
        not(any(
            feature = "feed-postgres",
            feature = "feed-sqlite",
            feature = "feed-mysql"
        )),
        allow(dead_code)
    )]
    pub(crate) fn register_feed(&self, reporter: &std::sync::Arc<crate::feed::Reporter>) {
        let mut feeds = self.inner.feeds.lock();
        feeds.retain(|feed| feed.strong_count() > 0);
        feeds.push(std::sync::Arc::downgrade(reporter));
    }

    /// The status of every change feed still running on this cache.
    fn feed_statuses(&self) -> Vec<crate::feed::FeedStatus> {
        self.inner
            .feeds
            .lock()
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .map(|reporter| reporter.status())
            .filter(|status| status.state != crate::feed::FeedState::Stopped)
            .collect()
    }

    /// `(redis_connected, fallback_active)` as last seen, without a probe: Redis counts as
    /// connected while the circuit breaker is closed (its last commands succeeded, or none
    /// has failed yet).
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) fn store_state(&self) -> (bool, bool) {
        match &self.inner.store {
            Backend::Memory(_) => (false, false),
            #[cfg(feature = "redis")]
            Backend::Tiered(store) => {
                let fallback = store.fallback_active();
                (!fallback, fallback)
            }
        }
    }

    /// The warmers and the progress of warming runs.
    pub(crate) fn warming(&self) -> &Warming {
        &self.inner.warming
    }

    /// The live statistics recorder (for the analytics and the metrics exposition).
    pub(crate) fn recorder(&self) -> &StatsRecorder {
        &self.inner.stats
    }

    /// What the audit of undeclared dependencies found (see `analytics::audit`).
    pub(crate) fn audit_log(&self) -> &crate::analytics::AuditLog {
        &self.inner.audit
    }

    /// Number of tags whose versions the memory store (or the tiered store's memory tier)
    /// keeps: those invalidated lately; a tag nothing invalidated has none (diagnostics).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use querycache::{Cache, Tag};
    ///
    /// let cache = Cache::new();
    /// assert_eq!(cache.tag_versions_count(), 0);
    /// cache.invalidate_tags([Tag::model("songs")]).await;
    /// assert_eq!(cache.tag_versions_count(), 1);
    /// # }
    /// ```
    pub fn tag_versions_count(&self) -> usize {
        Store::tag_count(&self.inner.store)
    }
}

/// `ttl` shortened by `percent`% of itself times `unit` (a random number in `[0, 1)`):
/// from `ttl` down to `ttl × (1 − percent/100)`, never below a millisecond.
fn jittered(ttl: Duration, percent: u8, unit: f64) -> Duration {
    if percent == 0 || ttl.is_zero() {
        return ttl;
    }
    let cut = f64::from(percent.min(100)) / 100.0 * unit.clamp(0.0, 1.0);
    ttl.mul_f64(1.0 - cut).max(Duration::from_millis(1))
}

/// Decodes a stored body into `T`, for stores that keep bytes.
#[cfg(feature = "redis")]
pub(crate) fn decode<T: CacheValue>(
    format: crate::store::BodyFormat,
    bytes: &[u8],
) -> Result<AnyValue, StoreError> {
    crate::store::codec::body::decode::<T>(format, bytes)
        .map(|value| Arc::new(value) as AnyValue)
        .map_err(StoreError::Decode)
}

/// Without the `redis` feature no store keeps bytes, and nothing is decoded (the type
/// parameter keeps the signature of the build with Redis).
#[cfg(not(feature = "redis"))]
#[allow(clippy::extra_unused_type_parameters)]
pub(crate) fn decode<T: CacheValue>(
    format: crate::store::BodyFormat,
    _bytes: &[u8],
) -> Result<AnyValue, StoreError> {
    match format {}
}

/// Encodes `value` exactly for stores that keep bytes (JSON, or RON where JSON would lose
/// something), checked to read back as a `T`; an error when it cannot be, and the value is
/// not stored.
#[cfg(feature = "redis")]
pub(crate) fn encode<T: CacheValue>(value: &T) -> Result<crate::store::Body, StoreError> {
    crate::store::codec::body::encode_checked(value).map_err(StoreError::Encode)
}

/// Without the `redis` feature no store keeps bytes, and nothing is encoded.
#[cfg(not(feature = "redis"))]
pub(crate) fn encode<T: CacheValue>(_value: &T) -> Result<crate::store::Body, StoreError> {
    Err(StoreError::NoByteStore)
}

/// The store `config` asks for ([`CacheConfig::store_kind`]): Redis-backed when
/// `REDIS_URL` is set (and the `redis` feature is on), process memory otherwise.
#[cfg_attr(not(feature = "redis"), allow(unused_variables))] // only the tiered store publishes
fn backend_for(config: &CacheConfig, events: &Arc<EventBus>) -> Backend {
    // Only the tiered store hears invalidations from other instances.
    #[cfg(not(feature = "redis"))]
    let _ = events;
    let memory = MemoryStore::new(config.memory_max_bytes).with_clock(config.clock.clone());
    #[cfg(feature = "redis")]
    if let kind @ (crate::config::StoreKind::Redis | crate::config::StoreKind::Tiered) =
        config.store_kind()
    {
        let compress_above = config
            .compression_enabled
            .then_some(config.compression_threshold);
        let store = match (&config.redis_client, &config.redis_url) {
            (Some(client), _) => crate::store::redis::RedisStore::with_client(
                client,
                &config.key_prefix,
                config.redis_timeout,
                compress_above,
                config.max_ttl,
            ),
            (None, Some(url)) => crate::store::redis::RedisStore::new(
                url,
                config.cluster_mode,
                &config.key_prefix,
                config.redis_timeout,
                compress_above,
                config.max_ttl,
            ),
            (None, None) => Err(Error::config(
                "CACHE_STORE",
                kind,
                "needs REDIS_URL (or CacheBuilder::redis_client)",
            )),
        };
        match store {
            Ok(redis) => {
                return Backend::Tiered(Box::new(crate::store::tiered::TieredStore::new(
                    memory,
                    redis,
                    kind,
                    config,
                    Arc::clone(events),
                )));
            }
            // `CacheConfig::build` validated the URL; this is belt and braces.
            Err(error) => {
                tracing::error!(%error, "Redis store unavailable; using the memory store")
            }
        }
    }
    Backend::Memory(memory)
}

/// Estimated bytes an entry costs: its JSON size, its key, and bookkeeping. Never an
/// error (the `Result` is kept for the callers' shape).
fn weigh<T: Serialize>(
    key: &Key,
    value: &T,
    options: &EntryOptions,
) -> Result<u64, serde_json::Error> {
    struct Counter(u64);
    impl io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // serde_json refuses some values the Redis body keeps exactly as RON (a map keyed by
    // tuples): those weigh their RON size. A value RON refuses too cannot be stored
    // anywhere but in this process's memory, and is not cached: the Redis-backed stores
    // could not share it, and a memory-only cache would behave differently from them.
    #[cfg(feature = "redis")]
    if let Err(json_refused) = serde_json::to_writer(&mut counter, value) {
        counter.0 = ron::to_string(value).map_err(|_| json_refused)?.len() as u64;
    }
    #[cfg(not(feature = "redis"))]
    serde_json::to_writer(&mut counter, value)?;
    // The entry's own tags, its namespace's and, for model tags, `model:#all`.
    Ok(crate::store::entry_weight(
        usize::try_from(counter.0).unwrap_or(usize::MAX),
        key.as_str().len(),
        options.tags.len() + 2,
    ))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::jittered;

    #[test]
    fn jitter_shortens_within_its_percentage() {
        let ttl = Duration::from_secs(100);
        assert_eq!(jittered(ttl, 0, 0.99), ttl);
        assert_eq!(jittered(ttl, 20, 0.0), ttl);
        assert_eq!(jittered(ttl, 20, 0.5), Duration::from_secs(90));
        assert!(jittered(ttl, 20, 0.999_999) > Duration::from_secs(80));
        assert_eq!(
            jittered(ttl, 100, 1.0),
            Duration::from_millis(1),
            "never zero"
        );
        assert_eq!(jittered(Duration::ZERO, 50, 0.5), Duration::ZERO);
    }
}
