//! The read path: lookups, one computation per key, storing under the snapshot taken
//! before the computation.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::observe::Observation;
use super::read::{Inline, ReadFailure};
use super::{Cache, CacheValue, StoreTiming, decode, encode, weigh};
use crate::runtime::Bridge;
use crate::store::{
    AnyValue, EntryMeta, Lookup, PutOutcome, Snapshot, Storable, Store, StoreError,
};
use crate::{EntryOptions, Key};

impl Cache {
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
        let ttl_of = self.error_ttl_policy(&options);
        let result: Result<Arc<Result<T, E>>, std::convert::Infallible> = self
            .compute_with(key, options, || async { Ok(compute().await) }, ttl_of)
            .await;
        match result {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// The TTL of a cached `Result`: an `Err` lives at most the error TTL of `options`
    /// (default `CACHE_ERROR_TTL`).
    pub(crate) fn error_ttl_policy<T, E>(
        &self,
        options: &EntryOptions,
    ) -> impl Fn(&Result<T, E>, Duration) -> Duration + use<T, E> {
        let error_ttl = options.error_ttl.unwrap_or(self.inner.config.error_ttl);
        move |value, ttl| {
            if value.is_err() {
                error_ttl.min(ttl)
            } else {
                ttl
            }
        }
    }

    /// A lookup that never computes (reads inside a transaction).
    pub(crate) async fn read_only<T: CacheValue>(
        &self,
        key: &Key,
        options: &EntryOptions,
    ) -> Option<Arc<T>> {
        if !self.inner.config.enabled || crate::cache::bypass::active() {
            self.trace_bypass(key.as_str());
            self.inner.stats.bypassed();
            return None;
        }
        self.lookup::<T>(key.as_str(), options.namespace_name())
            .await
    }

    /// A key that cannot be used: said, counted as an error and a bypass; the caller then
    /// computes without the cache.
    pub(super) fn unusable_key(&self, error: &crate::Error) {
        tracing::warn!(%error, "cannot cache under this key; computing without the cache");
        self.inner.stats.error();
        self.inner.stats.bypassed();
    }

    /// Says (at debug level) that a read of `key` goes around the cache: the cache is
    /// disabled, or the read is inside a [`bypass`](crate::bypass) scope.
    pub(crate) fn trace_bypass(&self, key: &str) {
        tracing::debug!(
            key = %crate::key::shown(key),
            enabled = self.inner.config.enabled,
            "Cache BYPASS: {}",
            crate::key::shown(key)
        );
    }

    /// Counts a call that went around the cache.
    pub(crate) fn count_bypass(&self) {
        self.inner.stats.bypassed();
    }

    pub(crate) fn inner_stats_error(&self) {
        self.inner.stats.error();
    }

    /// Runs `compute` without reading or writing the cache, counted as a bypass.
    pub(crate) async fn bypass<T, Fut: Future<Output = T>>(&self, compute: Fut) -> T {
        self.inner.stats.bypassed();
        compute.await
    }

    /// The read path behind every borrowing `get_or_compute` flavour (see
    /// [`read`](Self::read)): `ttl_of(&value, resolved_ttl)` picks the stored value's TTL
    /// (cached errors, and the HTTP layer's error answers, live shorter).
    pub(crate) async fn compute_with<T, E, F, Fut>(
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
        match self
            .read(key, options, compute, ttl_of, Inline, |_: &E| true)
            .await
        {
            Ok(served) => Ok(served.value),
            Err(ReadFailure::Compute(error)) => Err(error),
            Err(ReadFailure::TimedOut(never)) => match never {},
        }
    }

    /// After a computation: stores `value` under `snapshot` (unless the snapshot could not
    /// be read, the value cannot be serialized or `ttl` is zero).
    pub(super) async fn settle<T: CacheValue>(
        &self,
        key: &Key,
        value: T,
        snapshot: Result<Snapshot, StoreError>,
        options: &EntryOptions,
        timing: StoreTiming,
    ) -> (Arc<T>, Option<Snapshot>) {
        let snapshot = match snapshot {
            Ok(snapshot) => snapshot,
            Err(error) => {
                self.store_error("snapshot", key.as_str(), &error);
                return (Arc::new(value), None);
            }
        };
        // Only the memory store needs the weight; a store that keeps bytes serializes the
        // value once, when it stores it (and counts a failure there).
        let weight = if self.inner.store.weighs_entries() {
            match weigh(key, &value, options) {
                Ok(weight) => weight,
                Err(error) => {
                    tracing::warn!(key = %crate::key::shown(&key), %error, "value cannot be serialized; not cached");
                    self.inner.stats.error();
                    return (Arc::new(value), Some(snapshot));
                }
            }
        } else {
            0
        };
        let value = Arc::new(value);
        if !timing.ttl.is_zero() {
            let meta = EntryMeta {
                ttl: timing.ttl,
                grace: timing.grace,
                delta: timing.delta,
                weight,
            };
            self.put(
                key,
                value.clone(),
                snapshot.clone(),
                options.namespace_name(),
                meta,
            )
            .await;
        }
        (value, Some(snapshot))
    }

    /// After a computation that must not be cached (it sent a locking read, see
    /// [`mark_uncacheable`](crate::store::mark_uncacheable)): its value goes to its caller
    /// only, and whatever is stored under `key` is removed — an entry stored before the
    /// computation started locking (by an earlier version of the code) would otherwise
    /// still answer later calls without taking the lock.
    pub(super) async fn unstorable<T>(&self, key: &Key, value: T) -> (Arc<T>, Option<Snapshot>) {
        tracing::debug!(
            key = %crate::key::shown(&key),
            "Cache SET skipped: the computation sent a locking read (FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE); never cached"
        );
        if let Err(error) = self.inner.store.remove(key.as_str()).await {
            self.store_error("remove", key.as_str(), &error);
        }
        (Arc::new(value), None)
    }

    /// [`compute_with`](Self::compute_with) for a synchronous computation on a thread of a
    /// current-thread runtime (see [`Bridge::Detached`]): each cache operation runs on
    /// querycache's runtime, the computation on this thread, and there is no single-flight
    /// wait. Tag versions still guard the store: a value computed across a write is born
    /// stale.
    pub(crate) fn compute_detached<T, E>(
        &self,
        key: &str,
        options: EntryOptions,
        compute: impl FnOnce() -> Result<T, E>,
        ttl_of: impl Fn(&T, Duration) -> Duration,
    ) -> Result<Arc<T>, E>
    where
        T: CacheValue,
    {
        let bridge = Bridge::Detached;
        if !self.inner.config.enabled || crate::cache::bypass::active() {
            self.trace_bypass(key);
            self.inner.stats.bypassed();
            return compute().map(Arc::new);
        }
        if let Some(observation) = crate::store::observation() {
            // Inside another entry's computation: see `Cache::nested_hit`, `Cache::nested`.
            let (cache, key_text, inner_options) = (self.clone(), key.to_owned(), options.clone());
            let hit = bridge.wait(async move {
                cache
                    .nested_hit::<T>(&key_text, &inner_options, &observation)
                    .await
            });
            if let Some(value) = hit {
                return Ok(value);
            }
            self.note_nested(key);
            return compute().map(Arc::new);
        }
        let key = match Key::new(key) {
            Ok(key) => key,
            Err(error) => {
                self.unusable_key(&error);
                return compute().map(Arc::new);
            }
        };
        if !crate::warm::refreshing() {
            let (cache, lookup_key) = (self.clone(), key.clone());
            let namespace = options.namespace_name().to_owned();
            let scope = crate::store::read_scope();
            let hit = bridge.wait(async move {
                cache
                    .lookup_found::<T>(lookup_key.as_str(), &namespace, scope, false)
                    .await
                    .map(|looked| looked.value)
            });
            if let Some(hit) = hit {
                return Ok(hit);
            }
        }
        let (cache, deps) = (self.clone(), options.dependencies());
        let snapshot = bridge.wait(async move { cache.inner.store.snapshot(&deps).await });
        self.inner.stats.computation(options.namespace_name());
        let started = std::time::Instant::now();
        let observation =
            Observation::new(self.clone(), options.dependencies(), options.origin, &key);
        let (value, storable) = crate::store::computing_sync(Some(observation.clone()), compute);
        let value = value?;
        let Some(snapshot) = observation.settle(&key, !options.tags.is_empty(), snapshot) else {
            return Ok(Arc::new(value));
        };
        if storable == Storable::No {
            let cache = self.clone();
            let (value, _) = bridge.wait(async move { cache.unstorable(&key, value).await });
            return Ok(value);
        }
        let timing = StoreTiming {
            ttl: self.stored_ttl(&value, ttl_of(&value, self.resolve_ttl(&options, &key))),
            grace: self.plan(&options).grace(),
            delta: started.elapsed(),
        };
        let cache = self.clone();
        let (value, _) =
            bridge.wait(async move { cache.settle(&key, value, snapshot, &options, timing).await });
        Ok(value)
    }

    /// A lookup that counts nothing (the miss was counted already): fresh entries only.
    pub(super) async fn peek<T: CacheValue>(&self, key: &Key) -> Option<Arc<T>> {
        let scope = crate::store::read_scope();
        match self
            .inner
            .store
            .get(key.as_str(), &decode::<T>, scope)
            .await
        {
            Ok(Lookup::Hit(found)) if !found.timing.is_stale() => found.value.downcast::<T>().ok(),
            _ => None,
        }
    }

    pub(super) async fn put<T: CacheValue>(
        &self,
        key: &Key,
        value: Arc<T>,
        snapshot: Snapshot,
        namespace: &str,
        meta: EntryMeta,
    ) {
        let ttl = meta.ttl;
        let weight = meta.weight;
        let encode = || encode(&*value);
        let any: AnyValue = value.clone();
        match self
            .inner
            .store
            .put(key.clone(), any, &encode, snapshot, meta)
            .await
        {
            Ok(PutOutcome::Stored) => {
                self.inner.stats.set(namespace);
                tracing::debug!(
                    tier = self.inner.store.tier(), namespace, key = %crate::key::shown(&key), ttl_secs = ttl.as_secs(),
                    "Cache SET: {namespace} {} (TTL: {}s)", crate::key::shown(&key), ttl.as_secs()
                );
            }
            Ok(PutOutcome::Outdated) => {
                self.inner.stats.wasted();
                tracing::debug!(tier = self.inner.store.tier(), key = %crate::key::shown(&key), "Cache SET skipped: its tags moved while it was computed");
            }
            Ok(PutOutcome::Unavailable) => {
                tracing::debug!(tier = self.inner.store.tier(), key = %crate::key::shown(&key), "Cache SET skipped: store unreachable");
            }
            Ok(PutOutcome::TooLarge) => {
                tracing::debug!(tier = self.inner.store.tier(), key = %crate::key::shown(&key), weight, "Cache SET skipped: larger than the store accepts");
            }
            Err(error) => self.store_error("put", key.as_str(), &error),
        }
    }
}
