//! [`Cache`]: the handle applications and generated code talk to.

use std::any::Any;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::config::{CacheConfig, CacheConfigBuilder, InvalidationStrategy};
use crate::flight::{self, Flights, Handoff, Role};
use crate::stats::{CacheStats, Outcome, StatsRecorder};
use crate::store::memory::MemoryStore;
use crate::store::{AnyValue, EntryMeta, Lookup, PutOutcome, Store};
use crate::{EntryOptions, Error, Key, Tag};

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

struct Inner {
    config: CacheConfig,
    store: MemoryStore,
    stats: StatsRecorder,
    flights: Flights,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("store", &"memory")
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

const TIER: &str = "memory";

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
        let store = MemoryStore::new(config.memory_max_bytes);
        Cache {
            inner: Arc::new(Inner {
                config,
                store,
                stats: StatsRecorder::new(),
                flights: Flights::default(),
            }),
        }
    }

    /// A configuration builder whose [`build_cache`](CacheConfigBuilder::build_cache) makes
    /// the cache.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = querycache::Cache::builder()
    ///     .default_ttl(Duration::from_secs(300))
    ///     .build_cache()
    ///     .unwrap();
    /// assert_eq!(cache.config().default_ttl(), Duration::from_secs(300));
    /// ```
    pub fn builder() -> CacheConfigBuilder {
        CacheConfig::builder()
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
        // Direct reads have no namespace of their own.
        self.lookup::<T>(key, crate::options::DEFAULT_NAMESPACE)
            .await
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
        let value: AnyValue = Arc::new(value);
        match snapshot {
            Ok(snapshot) => {
                self.put(&key, value, snapshot, &options, weight).await;
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
        tracing::info!(tier = TIER, "Cache CLEARED");
    }

    /// The value under `key`, or the value of `compute` (run once per key at a time in the
    /// process: concurrent callers of a cold key wait for the first one's result).
    ///
    /// The versions of the entry's tags are read *before* `compute` starts, so a write that
    /// lands while it runs makes the stored value a miss for every later reader.
    pub async fn get_or_compute<T, F, Fut>(
        &self,
        key: &str,
        options: EntryOptions,
        compute: F,
    ) -> Arc<T>
    where
        T: CacheValue,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let result: Result<Arc<T>, std::convert::Infallible> = self
            .try_get_or_compute(key, options, || async { Ok(compute().await) })
            .await;
        match result {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// Like [`get_or_compute`](Self::get_or_compute) for a fallible computation. An error
    /// is returned to the caller that computed it and is not cached; callers waiting on the
    /// same key then compute in turn.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = querycache::Cache::new();
    /// let opts = querycache::EntryOptions::new();
    /// let err = cache.try_get_or_compute::<u32, _, _, _>("k", opts.clone(), || async { Err("db down") }).await;
    /// assert_eq!(err, Err("db down"));
    /// let ok = cache.try_get_or_compute::<u32, &str, _, _>("k", opts, || async { Ok(1) }).await;
    /// assert_eq!(*ok.unwrap(), 1);
    /// # }
    /// ```
    ///
    /// # Errors
    /// The computation's own error.
    pub async fn try_get_or_compute<T, E, F, Fut>(
        &self,
        key: &str,
        options: EntryOptions,
        compute: F,
    ) -> Result<Arc<T>, E>
    where
        T: CacheValue,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.compute_with(key, options, compute, |_: &T, ttl| ttl)
            .await
    }

    /// Like [`try_get_or_compute`](Self::try_get_or_compute), but errors are cached too, for
    /// [`EntryOptions::error_ttl`] (default `CACHE_ERROR_TTL`), so a failing query is not
    /// re-run by every caller. Returns the whole `Result` behind an `Arc`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use querycache::{Cache, EntryOptions};
    ///
    /// let cache = Cache::new();
    /// let options = EntryOptions::new().error_ttl(Duration::from_secs(30));
    /// let first = cache.get_or_compute_result::<u32, String, _, _>("k", options.clone(), || async { Err("down".into()) }).await;
    /// let again = cache.get_or_compute_result::<u32, String, _, _>("k", options, || async { Ok(1) }).await;
    /// assert_eq!(*again, Err("down".to_string()), "the error is cached for 30 s");
    /// # let _ = first;
    /// # }
    /// ```
    pub async fn get_or_compute_result<T, E, F, Fut>(
        &self,
        key: &str,
        options: EntryOptions,
        compute: F,
    ) -> Arc<Result<T, E>>
    where
        T: CacheValue,
        E: CacheValue,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let error_ttl = options.error_ttl.unwrap_or(self.inner.config.error_ttl);
        let result: Result<Arc<Result<T, E>>, std::convert::Infallible> = self
            .compute_with(
                key,
                options,
                || async { Ok(compute().await) },
                move |value: &Result<T, E>, ttl| {
                    if value.is_err() {
                        error_ttl.min(ttl)
                    } else {
                        ttl
                    }
                },
            )
            .await;
        match result {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// A lookup that never computes (reads inside a transaction).
    pub(crate) async fn read_only<T: CacheValue>(
        &self,
        key: &Key,
        options: &EntryOptions,
    ) -> Option<Arc<T>> {
        if !self.inner.config.enabled {
            self.inner.stats.bypassed();
            return None;
        }
        self.lookup::<T>(key.as_str(), options.namespace_name())
            .await
    }

    pub(crate) fn inner_stats_error(&self) {
        self.inner.stats.error();
    }

    /// Runs `compute` without reading or writing the cache, counted as a bypass.
    pub(crate) async fn bypass<T, Fut: Future<Output = T>>(&self, compute: Fut) -> T {
        self.inner.stats.bypassed();
        compute.await
    }

    async fn compute_with<T, E, F, Fut>(
        &self,
        key: &str,
        options: EntryOptions,
        compute: F,
        ttl_of: impl Fn(&T, Duration) -> Duration,
    ) -> Result<Arc<T>, E>
    where
        T: CacheValue,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if !self.inner.config.enabled {
            return self.bypass(compute()).await.map(Arc::new);
        }
        let namespace = options.namespace_name();
        if let Some(hit) = self.lookup::<T>(key, namespace).await {
            return Ok(hit);
        }
        let key = match Key::new(key) {
            Ok(key) => key,
            Err(error) => {
                tracing::warn!(%error, "cannot cache under this key; computing without the cache");
                self.inner.stats.error();
                return self.bypass(compute()).await.map(Arc::new);
            }
        };
        let mut compute = Some(compute);
        loop {
            match self.inner.flights.join(&key) {
                Role::Follower(rx) => {
                    if let Some(handoff) = flight::wait(rx).await
                        && (handoff.still_current)()
                        && let Ok(value) = handoff.value.downcast::<T>()
                    {
                        return Ok(value);
                    }
                    // The leader failed, was cancelled, or computed under versions that
                    // have moved since: look again, then lead if still nothing.
                    if let Lookup::Hit(found) = self.inner.store.lookup(key.as_str())
                        && let Ok(value) = found.value.downcast::<T>()
                    {
                        return Ok(value);
                    }
                }
                Role::Leader(leader) => {
                    // A leader that finished between our lookup and `join` may have stored
                    // it. Followers then look it up themselves (the hand-off says so).
                    if let Lookup::Hit(found) = self.inner.store.lookup(key.as_str())
                        && let Ok(value) = found.value.downcast::<T>()
                    {
                        leader.finish(Handoff {
                            value: value.clone(),
                            still_current: Arc::new(|| false),
                        });
                        return Ok(value);
                    }
                    let Some(compute) = compute.take() else {
                        // Unreachable: a caller leads at most once, since leading returns.
                        continue;
                    };
                    let (value, snapshot) = self
                        .lead(&key, &options, compute, &ttl_of)
                        .instrument(
                            tracing::debug_span!("querycache.compute", key = %key, namespace),
                        )
                        .await?;
                    let inner = Arc::clone(&self.inner);
                    leader.finish(Handoff {
                        value: value.clone(),
                        still_current: Arc::new(move || {
                            snapshot.as_ref().is_some_and(|s| inner.store.is_current(s))
                        }),
                    });
                    return Ok(value);
                }
            }
        }
    }

    /// The leader's part of a miss: snapshot, compute, store.
    async fn lead<T, E, F, Fut>(
        &self,
        key: &Key,
        options: &EntryOptions,
        compute: F,
        ttl_of: &impl Fn(&T, Duration) -> Duration,
    ) -> Result<(Arc<T>, Option<<MemoryStore as Store>::Snapshot>), E>
    where
        T: CacheValue,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let namespace = options.namespace_name();
        let deps = options.dependencies();
        // The snapshot is taken before the computation starts: that is what makes a
        // racing write's bump land *after* it, so the value is born stale and never served.
        let snapshot = self.inner.store.snapshot(&deps).await;
        self.inner.stats.computation(namespace);
        let started = Instant::now();
        let value = compute().await?;
        tracing::debug!(key = %key, elapsed_us = started.elapsed().as_micros() as u64, "computed");
        let snapshot = match snapshot {
            Ok(snapshot) => snapshot,
            Err(error) => {
                self.store_error("snapshot", key.as_str(), &error);
                return Ok((Arc::new(value), None));
            }
        };
        let weight = match weigh(key, &value, options) {
            Ok(weight) => weight,
            Err(error) => {
                tracing::warn!(key = %key, %error, "value cannot be serialized; not cached");
                self.inner.stats.error();
                return Ok((Arc::new(value), Some(snapshot)));
            }
        };
        let ttl = ttl_of(&value, self.resolve_ttl(options, key));
        let value = Arc::new(value);
        if !ttl.is_zero() {
            let mut options = options.clone();
            options.ttl = Some(ttl);
            self.put(key, value.clone(), snapshot.clone(), &options, weight)
                .await;
        }
        Ok((value, Some(snapshot)))
    }

    async fn put(
        &self,
        key: &Key,
        value: AnyValue,
        snapshot: <MemoryStore as Store>::Snapshot,
        options: &EntryOptions,
        weight: u64,
    ) {
        let namespace = options.namespace_name();
        let ttl = self.resolve_ttl(options, key);
        let meta = EntryMeta { ttl, weight };
        match self
            .inner
            .store
            .put(key.clone(), value, snapshot, meta)
            .await
        {
            Ok(PutOutcome::Stored) => {
                self.inner.stats.set(namespace);
                tracing::debug!(
                    tier = TIER, namespace, key = %key, ttl_secs = ttl.as_secs(),
                    "Cache SET: {namespace} {key} (TTL: {}s)", ttl.as_secs()
                );
            }
            Ok(PutOutcome::Outdated) => {
                self.inner.stats.wasted();
                tracing::debug!(tier = TIER, key = %key, "Cache SET skipped: its tags moved while it was computed");
            }
            Ok(PutOutcome::TooLarge) => {
                tracing::debug!(tier = TIER, key = %key, weight, "Cache SET skipped: larger than the store accepts");
            }
            Err(error) => self.store_error("put", key.as_str(), &error),
        }
    }

    /// The TTL for an entry: call, namespace policy, count default, global default — capped.
    fn resolve_ttl(&self, options: &EntryOptions, key: &Key) -> Duration {
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
                key = %key,
                requested_secs = ttl.as_secs(),
                max_secs = config.max_ttl.as_secs(),
                "TTL clamped to CACHE_MAX_TTL"
            );
            return config.max_ttl;
        }
        ttl
    }

    async fn lookup<T: CacheValue>(&self, key: &str, namespace: &str) -> Option<Arc<T>> {
        let started = Instant::now();
        let lookup = self.inner.store.get(key).await;
        let elapsed = started.elapsed();
        let found = match lookup {
            Ok(Lookup::Hit(found)) => match found.value.downcast::<T>() {
                Ok(value) => {
                    tracing::debug!(
                        tier = TIER,
                        key,
                        hit = true,
                        latency_ns = elapsed.as_nanos() as u64,
                        "Cache HIT: {key} (age: {}s)",
                        found.age.as_secs()
                    );
                    Some(value)
                }
                Err(other) => {
                    self.type_mismatch(key, &*other);
                    None
                }
            },
            Ok(_) => None,
            Err(error) => {
                self.store_error("get", key, &error);
                None
            }
        };
        let outcome = if found.is_some() {
            Outcome::Hit
        } else {
            tracing::debug!(
                tier = TIER,
                key,
                hit = false,
                latency_ns = elapsed.as_nanos() as u64,
                "Cache MISS: {key}"
            );
            Outcome::Miss
        };
        self.inner.stats.lookup(namespace, outcome, elapsed);
        found
    }

    fn type_mismatch(&self, key: &str, _found: &(dyn Any + Send + Sync)) {
        self.inner.stats.error();
        tracing::warn!(
            key,
            "entry holds a value of another type than requested (two queries share a key?); treated as a miss"
        );
    }

    fn store_error(&self, operation: &'static str, key: &str, error: &str) {
        self.inner.stats.error();
        tracing::warn!(
            tier = TIER,
            operation,
            key,
            error,
            "cache store failed; serving without it"
        );
    }

    /// Invalidates `tags`: every entry depending on one of them becomes a miss, in time
    /// independent of how many entries that is. Returns how many of the tags had a version
    /// (a tag nothing ever depended on has none and needs no work).
    ///
    /// Under `CACHE_INVALIDATION_STRATEGY=ttl` this does nothing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use querycache::{Cache, EntryOptions, Tag};
    ///
    /// let cache = Cache::new();
    /// cache.set("a", 1_u8, EntryOptions::new().tag(Tag::model("songs"))).await.unwrap();
    /// cache.set("b", 2_u8, EntryOptions::new().tag(Tag::model("users"))).await.unwrap();
    /// assert_eq!(cache.invalidate_tags([Tag::model("songs")]).await, 1);
    /// assert!(cache.get::<u8>("a").await.is_none());
    /// assert!(cache.get::<u8>("b").await.is_some());
    /// # }
    /// ```
    pub async fn invalidate_tags(&self, tags: impl IntoIterator<Item = Tag>) -> usize {
        let tags: Vec<Tag> = tags.into_iter().collect();
        if tags.is_empty() || self.inner.config.strategy == InvalidationStrategy::Ttl {
            return 0;
        }
        match self.inner.store.invalidate(&tags).await {
            Ok(n) => {
                self.inner.stats.invalidations(tags.len() as u64);
                tracing::debug!(tier = TIER, tags = ?tags, "Cache INVALIDATED: {} tags", tags.len());
                n
            }
            Err(error) => {
                self.store_error("invalidate", &format!("{tags:?}"), &error);
                0
            }
        }
    }

    /// Invalidation that comes from a write seen by an ORM integration: applied under the
    /// `smart` strategy only.
    pub(crate) async fn invalidate_written(&self, tags: Vec<Tag>) -> usize {
        if self.inner.config.strategy != InvalidationStrategy::Smart {
            return 0;
        }
        self.invalidate_tags(tags).await
    }

    /// Removes every key matching the glob `pattern` (`*`, `?`, `[abc]`; `user:*` matches
    /// `user:1:songs`). Returns how many were removed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use querycache::{Cache, EntryOptions};
    ///
    /// let cache = Cache::new();
    /// for key in ["user:1", "user:2", "song:1"] {
    ///     cache.set(key, 1_u8, EntryOptions::new()).await.unwrap();
    /// }
    /// assert_eq!(cache.invalidate_pattern("user:*").await.unwrap(), 2);
    /// assert!(cache.invalidate_pattern("[").await.is_err());
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::Pattern`] when `pattern` is not a valid glob.
    pub async fn invalidate_pattern(&self, pattern: &str) -> Result<usize, Error> {
        let glob = glob::Pattern::new(pattern).map_err(|e| Error::Pattern {
            pattern: pattern.to_owned(),
            reason: e.msg.to_owned(),
        })?;
        match self.inner.store.remove_matching(&glob).await {
            Ok(n) => {
                self.inner.stats.invalidations(n as u64);
                tracing::debug!(
                    tier = TIER,
                    pattern,
                    removed = n,
                    "Cache INVALIDATED: pattern {pattern}, {n} keys"
                );
                Ok(n)
            }
            Err(error) => {
                self.store_error("invalidate_pattern", pattern, &error);
                Ok(0)
            }
        }
    }

    /// Invalidates every entry of `namespace` (one tag bump, whatever its size).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use querycache::{Cache, EntryOptions};
    ///
    /// let cache = Cache::new();
    /// cache.set("x", 1_u8, EntryOptions::new().namespace("analytics_data")).await.unwrap();
    /// cache.invalidate_namespace("analytics_data").await;
    /// assert!(cache.get::<u8>("x").await.is_none());
    /// # }
    /// ```
    pub async fn invalidate_namespace(&self, namespace: &str) {
        let tag = Tag::namespace(namespace);
        match self
            .inner
            .store
            .invalidate(std::slice::from_ref(&tag))
            .await
        {
            Ok(_) => {
                self.inner.stats.invalidations(1);
                tracing::debug!(
                    tier = TIER,
                    namespace,
                    "Cache INVALIDATED: namespace {namespace}"
                );
            }
            Err(error) => self.store_error("invalidate_namespace", namespace, &error),
        }
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
        self.inner.stats.snapshot(usage.entries, usage.bytes)
    }

    /// Number of tags with a live version in the memory store (diagnostics).
    pub fn tag_versions_count(&self) -> usize {
        self.inner.store.tag_count()
    }
}

impl CacheConfigBuilder {
    /// Validates the configuration and makes a [`Cache`] with it.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting at fault.
    pub fn build_cache(self) -> Result<Cache, Error> {
        Ok(Cache::with_config(self.build()?))
    }
}

/// Estimated bytes an entry costs: its JSON size, its key, and bookkeeping.
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
    serde_json::to_writer(&mut counter, value)?;
    // Entry header, Arc headers, and one (pointer, version) pair per dependency.
    const OVERHEAD: u64 = 96;
    Ok(counter.0 + key.as_str().len() as u64 + OVERHEAD + 24 * (options.tags.len() as u64 + 2))
}
