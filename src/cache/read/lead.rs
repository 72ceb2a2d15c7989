//! A computation's part of a read: the lease across instances, the snapshot, the
//! computation itself, storing its value, and handing it to the callers waiting here.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use super::{Kind, LeadJob, Refreshing};
use crate::cache::flight::Handoff;
use crate::cache::observe::Observation;
use crate::cache::{Cache, CacheValue, StoreTiming};
use crate::stats::FreshnessCounters;
use crate::store::{Lease, Snapshot, Storable, Store};
use crate::{EntryOptions, Key};

impl<F, TF> LeadJob<F, TF> {
    /// A miss: the lease (or the value of the instance holding it), then the computation.
    pub(crate) async fn run_miss<T, E, Fut>(self) -> Result<Arc<T>, E>
    where
        T: CacheValue,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        TF: Fn(&T, Duration) -> Duration,
    {
        let lease = match self.cache.lease_for_miss::<T>(&self.key, self.kind).await {
            Acquired::Answered(value) => {
                if let Some(leader) = self.leader {
                    leader.finish(Handoff {
                        value: value.clone(),
                        still_current: Arc::new(|| false),
                    });
                }
                return Ok(value);
            }
            Acquired::Compute(lease) => lease,
        };
        self.compute_under(lease).await
    }

    /// A refresh: computed unless another instance holds the lease (`Ok(None)`).
    pub(crate) async fn run_refresh<T, E, Fut>(self) -> Result<Option<Arc<T>>, E>
    where
        T: CacheValue,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        TF: Fn(&T, Duration) -> Duration,
    {
        // A stale-while-revalidate refresh (an early one is counted when it starts): the
        // caller saw the entry stale, but a refresh that finished after its lookup and
        // before its flight began may have stored a fresh one since. Then that is the
        // answer, and nothing is computed twice.
        if self.kind == Kind::Refresh(Refreshing::Background) {
            if let Some(value) = self.cache.peek::<T>(&self.key).await {
                tracing::debug!(key = %crate::key::shown(&self.key), "already refreshed");
                if let Some(leader) = self.leader {
                    leader.finish(Handoff {
                        value: value.clone(),
                        still_current: Arc::new(|| false),
                    });
                }
                return Ok(Some(value));
            }
            FreshnessCounters::bump(&self.cache.inner.stats.fresh.background_refreshes);
        }
        let ttl = self.cache.inner.config.lease_ttl;
        let lease = if ttl.is_zero() {
            None
        } else {
            match self
                .cache
                .inner
                .store
                .take_lease(self.key.as_str(), ttl)
                .await
            {
                Lease::Taken(token) => Some(token),
                Lease::Unshared => None,
                Lease::Held => {
                    tracing::debug!(key = %crate::key::shown(&self.key), "another instance is refreshing this key");
                    return Ok(None);
                }
            }
        };
        self.compute_under(lease).await.map(Some)
    }

    /// Snapshot, compute, store; then the lease goes back and the followers get the value.
    async fn compute_under<T, E, Fut>(self, lease: Option<String>) -> Result<Arc<T>, E>
    where
        T: CacheValue,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        TF: Fn(&T, Duration) -> Duration,
    {
        let LeadJob {
            cache,
            key,
            options,
            plan,
            compute,
            ttl_of,
            leader,
            kind,
        } = self;
        let span = match kind {
            Kind::Miss | Kind::Released => {
                tracing::debug_span!("querycache.compute", key = %crate::key::shown(&key), namespace = options.namespace_name())
            }
            Kind::Refresh(_) | Kind::Warm => {
                tracing::debug_span!("querycache.refresh", key = %crate::key::shown(&key), namespace = options.namespace_name())
            }
        };
        let lease = LeaseGuard {
            cache: cache.clone(),
            key: key.clone(),
            token: lease,
        };
        let result = cache
            .lead(&key, &options, plan.grace(), compute, &ttl_of)
            .instrument(span)
            .await;
        lease.release().await;
        let (value, snapshot) = match result {
            Ok(done) => done,
            Err(error) => {
                // Nothing to hand over: the followers compute now, together.
                if let Some(leader) = leader {
                    leader.release();
                }
                return Err(error);
            }
        };
        cache.inner.failing.remove(&key);
        if let Some(leader) = leader {
            match snapshot {
                Some(snapshot) => {
                    let inner = Arc::clone(&cache.inner);
                    leader.finish(Handoff {
                        value: value.clone(),
                        still_current: Arc::new(move || inner.store.is_current(&snapshot)),
                    });
                }
                // Not stored (a value the store refuses, a snapshot the store could not
                // give): its freshness cannot be checked, so it is not handed over.
                None => leader.release(),
            }
        }
        Ok(value)
    }
}

/// A lease held while computing: given back when the computation ends, or — should the
/// computation be cancelled (hard timeout, caller gone) — by a task spawned on drop. Only a
/// holder that dies outright leaves it to expire.
struct LeaseGuard {
    cache: Cache,
    key: Key,
    token: Option<String>,
}

impl LeaseGuard {
    async fn release(mut self) {
        if let Some(token) = self.token.take() {
            self.cache
                .inner
                .store
                .release_lease(self.key.as_str(), &token)
                .await;
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let Some(token) = self.token.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (cache, key) = (self.cache.clone(), self.key.clone());
            let release = async move {
                cache.inner.store.release_lease(key.as_str(), &token).await;
            };
            runtime.spawn(tracing::Instrument::in_current_span(release));
        }
    }
}

/// What asking for a miss's lease came to.
enum Acquired<T> {
    /// Compute, under this lease if any.
    Compute(Option<String>),
    /// The holder's value arrived while waiting.
    Answered(Arc<T>),
}

impl Cache {
    /// The lease of a missing key: taken, or waited for (boundedly) while another instance
    /// computes. A forced warming run never waits.
    async fn lease_for_miss<T: CacheValue>(&self, key: &Key, kind: Kind) -> Acquired<T> {
        let ttl = self.inner.config.lease_ttl;
        if ttl.is_zero() || kind == Kind::Released {
            return Acquired::Compute(None);
        }
        match self.inner.store.take_lease(key.as_str(), ttl).await {
            Lease::Taken(token) => Acquired::Compute(Some(token)),
            Lease::Unshared => Acquired::Compute(None),
            Lease::Held if kind == Kind::Warm => Acquired::Compute(None),
            Lease::Held => self.wait_for_lease_holder(key, ttl).await,
        }
    }

    /// Another instance computes `key`: poll for its value (5 ms, doubling up to 50 ms)
    /// until it lands, the lease frees up (its holder failed, or died and the lease
    /// expired: take it), or the lease's TTL has passed (compute here). Never waits longer.
    async fn wait_for_lease_holder<T: CacheValue>(&self, key: &Key, ttl: Duration) -> Acquired<T> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(5);
        tracing::debug!(key = %crate::key::shown(&key), "another instance holds the computation lease; waiting for its value");
        let outcome = loop {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
            if let Some(value) = self.peek::<T>(key).await {
                break Acquired::Answered(value);
            }
            match self.inner.store.take_lease(key.as_str(), ttl).await {
                Lease::Taken(token) => break Acquired::Compute(Some(token)),
                Lease::Unshared => break Acquired::Compute(None),
                Lease::Held if started.elapsed() >= ttl => {
                    tracing::warn!(key = %crate::key::shown(&key), waited_ms = started.elapsed().as_millis() as u64, "the instance holding the lease did not answer in time; computing here");
                    break Acquired::Compute(None);
                }
                Lease::Held => {}
            }
        };
        self.inner.stats.fresh.lease_wait(started.elapsed());
        outcome
    }

    /// Snapshot, compute, store (under the snapshot taken first). Returns the value and the
    /// snapshot it was stored under.
    async fn lead<T, E, F, Fut>(
        &self,
        key: &Key,
        options: &EntryOptions,
        grace: Duration,
        compute: F,
        ttl_of: &impl Fn(&T, Duration) -> Duration,
    ) -> Result<(Arc<T>, Option<Snapshot>), E>
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
        // The HTTP layer derives a deep ETag from the same snapshot (no second read).
        let fingerprint = snapshot.as_ref().ok().map(|s| s.fingerprint(&deps));
        let observation = Observation::new(self.clone(), deps, options.origin, key);
        let (value, storable) =
            crate::store::computing(fingerprint, Some(observation.clone()), compute()).await;
        let value = value?;
        let Some(snapshot) = observation.settle(key, !options.tags.is_empty(), snapshot) else {
            return Ok((Arc::new(value), None));
        };
        let delta = started.elapsed();
        tracing::debug!(key = %crate::key::shown(&key), elapsed_us = delta.as_micros() as u64, "computed");
        if storable == Storable::No {
            return Ok(self.unstorable(key, value).await);
        }
        let ttl = self.stored_ttl(&value, ttl_of(&value, self.resolve_ttl(options, key)));
        let timing = StoreTiming { ttl, grace, delta };
        Ok(self.settle(key, value, snapshot, options, timing).await)
    }
}
