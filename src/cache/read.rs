//! The read path behind every `get_or_compute` flavour and [`Cache::fetch`]: lookup, stale
//! answers (stale-while-revalidate, fail-safe, soft timeouts), early refresh, one
//! computation per key in the process and, through a Redis lease, across instances.
//!
//! Expiry is softened here, invalidation never: the stores only ever return entries whose
//! tags are still at the versions they were computed under, fresh or stale.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use super::{Cache, CacheValue, Looked};
use crate::flight::{self, Handoff, Leader, Role};
use crate::options::DEFAULT_FAIL_SAFE_THROTTLE;
use crate::stats::FreshnessCounters;
use crate::store::{Lease, Snapshot, Store};
use crate::{EntryOptions, Key};

/// What a read answered.
pub(crate) struct Served<T> {
    pub(crate) value: Arc<T>,
    /// Past its TTL (served within a stale window).
    pub(crate) stale: bool,
}

impl<T> Served<T> {
    fn fresh(value: Arc<T>) -> Self {
        Served {
            value,
            stale: false,
        }
    }

    fn stale(value: Arc<T>) -> Self {
        Served { value, stale: true }
    }
}

/// Why a read has no value: the computation's error, or its hard timeout (`X` is
/// [`TimedOut`](crate::TimedOut) where timeouts apply, `Infallible` where they cannot).
pub(crate) enum Failure<E, X> {
    Compute(E),
    TimedOut(X),
}

/// The freshness settings in force for one read: the entry's own, and its namespace's
/// stale-while-revalidate window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    swr: Duration,
    fail_safe: Duration,
    throttle: Duration,
    early: Option<f64>,
    pub(crate) soft: Option<Duration>,
    pub(crate) hard: Option<Duration>,
}

impl Plan {
    /// How long past its TTL an entry is kept, to be served stale.
    pub(crate) fn grace(&self) -> Duration {
        self.swr.max(self.fail_safe)
    }
}

/// Why a computation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A caller found nothing usable.
    Miss,
    /// A stale-while-revalidate or early refresh: skipped when another instance is at it.
    Refresh,
    /// A forced warming run: no lookup, no waiting.
    Warm,
}

/// One computation, with everything it needs to run on another task.
pub(crate) struct LeadJob<F, TF> {
    pub(crate) cache: Cache,
    pub(crate) key: Key,
    pub(crate) options: EntryOptions,
    pub(crate) plan: Plan,
    pub(crate) compute: F,
    pub(crate) ttl_of: TF,
    /// The flight this computation answers, finished with its value.
    pub(crate) leader: Option<Leader>,
    pub(crate) kind: Kind,
}

/// What driving a miss's computation came to.
pub(crate) enum Driven<T, E, X> {
    Done(Arc<T>),
    Failed(E),
    /// Past the soft timeout: the stale value handed to [`Runner::drive`] comes back to be
    /// served, and the computation goes on.
    SoftTimeout(Arc<T>),
    TimedOut(X),
}

/// How a read runs computations: only on the caller's task ([`Inline`], for computations
/// that borrow), or also on tasks of their own ([`Detach`], for computations that own
/// everything they need) — which is what background refreshes and soft timeouts take.
pub(crate) trait Runner<T, E, F, TF>: Copy {
    /// What a hard timeout produces.
    type Timeout;
    /// Whether computations may outlive the caller.
    const DETACHES: bool;

    /// Starts a refresh: [`Detach`] spawns it (`None`); [`Inline`] runs it and returns its
    /// outcome (`Ok(None)`: another instance is at it).
    fn refresh(
        self,
        job: LeadJob<F, TF>,
    ) -> impl Future<Output = Option<Result<Option<Arc<T>>, E>>>;

    /// Runs a miss's computation, under the plan's timeouts where they apply. `stale` is
    /// the value to serve should the soft timeout pass.
    fn drive(
        self,
        job: LeadJob<F, TF>,
        stale: Option<Arc<T>>,
    ) -> impl Future<Output = Driven<T, E, Self::Timeout>>;
}

/// Computations run on the caller's task (see [`Runner`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inline;

/// Computations may run on tasks of their own (see [`Runner`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Detach;

impl<T, E, F, Fut, TF> Runner<T, E, F, TF> for Inline
where
    T: CacheValue,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    TF: Fn(&T, Duration) -> Duration,
{
    type Timeout = std::convert::Infallible;
    const DETACHES: bool = false;

    async fn refresh(self, job: LeadJob<F, TF>) -> Option<Result<Option<Arc<T>>, E>> {
        Some(job.run_refresh().await)
    }

    async fn drive(
        self,
        job: LeadJob<F, TF>,
        _stale: Option<Arc<T>>,
    ) -> Driven<T, E, Self::Timeout> {
        match job.run_miss().await {
            Ok(value) => Driven::Done(value),
            Err(error) => Driven::Failed(error),
        }
    }
}

impl<T, E, F, Fut, TF> Runner<T, E, F, TF> for Detach
where
    T: CacheValue,
    E: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    TF: Fn(&T, Duration) -> Duration + Send + Sync + 'static,
{
    type Timeout = crate::TimedOut;
    const DETACHES: bool = true;

    async fn refresh(self, job: LeadJob<F, TF>) -> Option<Result<Option<Arc<T>>, E>> {
        let (cache, key, hard) = (job.cache.clone(), job.key.clone(), job.plan.hard);
        tokio::spawn(async move {
            match bounded(hard, job.run_refresh()).await {
                Some(Ok(_)) => {}
                Some(Err(_)) => cache.refresh_failed(&key, "the computation returned an error"),
                None => {
                    FreshnessCounters::bump(&cache.inner.stats.fresh.hard_timeouts);
                    cache.refresh_failed(&key, "the computation passed its hard timeout");
                }
            }
        });
        None
    }

    async fn drive(
        self,
        job: LeadJob<F, TF>,
        stale: Option<Arc<T>>,
    ) -> Driven<T, E, Self::Timeout> {
        let plan = job.plan;
        let soft = plan.soft.zip(stale);
        if soft.is_none() && plan.hard.is_none() {
            return match job.run_miss().await {
                Ok(value) => Driven::Done(value),
                Err(error) => Driven::Failed(error),
            };
        }
        let (cache, key) = (job.cache.clone(), job.key.clone());
        let started = Instant::now();
        // On a task of its own, bounded by the hard timeout: past the soft timeout the
        // caller leaves with the stale value and the computation still lands.
        let mut task = tokio::spawn(bounded(plan.hard, job.run_miss()));
        let (joined, stale) = match soft {
            Some((soft, stale)) => match tokio::time::timeout(soft, &mut task).await {
                Ok(joined) => (joined, Some(stale)),
                Err(_) => {
                    FreshnessCounters::bump(&cache.inner.stats.fresh.soft_timeouts);
                    tracing::debug!(key = %key, soft_ms = soft.as_millis() as u64, "soft timeout: serving the stale value, the computation goes on");
                    return Driven::SoftTimeout(stale);
                }
            },
            None => (task.await, None),
        };
        match (joined, plan.hard, stale) {
            (Ok(Some(Ok(value))), _, _) => Driven::Done(value),
            (Ok(Some(Err(error))), _, _) => Driven::Failed(error),
            (Err(join), _, _) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            // Past the hard timeout; or (`Err`) the task was dropped because the runtime is
            // shutting down — abandoned either way. Only a call with a hard timeout ever
            // gets `TimedOut`: without one, the task was spawned for the soft timeout, which
            // needs a stale value, and that is the answer.
            (_, Some(after), _) => {
                FreshnessCounters::bump(&cache.inner.stats.fresh.hard_timeouts);
                tracing::warn!(key = %key, hard_ms = after.as_millis() as u64, "hard timeout: the computation was abandoned");
                Driven::TimedOut(crate::TimedOut::new(key.as_str(), after))
            }
            (_, None, Some(stale)) => Driven::SoftTimeout(stale),
            // Not reachable: a task is spawned only for a soft timeout (with a stale value)
            // or a hard one; answer as a timeout of the time spent.
            (_, None, None) => {
                Driven::TimedOut(crate::TimedOut::new(key.as_str(), started.elapsed()))
            }
        }
    }
}

/// `work`, given up (`None`) after `limit` if there is one.
async fn bounded<O>(limit: Option<Duration>, work: impl Future<Output = O>) -> Option<O> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, work).await.ok(),
        None => Some(work.await),
    }
}

impl Cache {
    /// The freshness settings in force for `options`.
    pub(crate) fn plan(&self, options: &EntryOptions) -> Plan {
        let fresh = &options.fresh;
        Plan {
            swr: fresh
                .swr
                .or_else(|| {
                    self.inner
                        .config
                        .swr_for_namespace(options.namespace_name())
                })
                .unwrap_or_default(),
            fail_safe: fresh.fail_safe.unwrap_or_default(),
            throttle: fresh
                .fail_safe_throttle
                .unwrap_or(DEFAULT_FAIL_SAFE_THROTTLE),
            early: fresh.early_refresh,
            soft: fresh.soft_timeout,
            hard: fresh.hard_timeout,
        }
    }

    /// The read path. See the module docs. `fails(&error)` says whether a computation's
    /// error is a failure a [fail-safe](EntryOptions::fail_safe) value may stand in for;
    /// other errors are answers of their own, returned as they are (the HTTP layer's 4xx).
    pub(crate) async fn read<T, E, F, Fut, TF, R>(
        &self,
        key: &str,
        options: EntryOptions,
        compute: F,
        ttl_of: TF,
        runner: R,
        fails: impl Fn(&E) -> bool,
    ) -> Result<Served<T>, Failure<E, R::Timeout>>
    where
        T: CacheValue,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        TF: Fn(&T, Duration) -> Duration,
        R: Runner<T, E, F, TF>,
    {
        if !self.inner.config.enabled {
            return match self.bypass(compute()).await {
                Ok(value) => Ok(Served::fresh(Arc::new(value))),
                Err(error) => Err(Failure::Compute(error)),
            };
        }
        let plan = self.plan(&options);
        let forced = crate::warm::refreshing();
        let found = if forced {
            None
        } else {
            let scope = crate::store::read_scope();
            let stale_ok = !plan.grace().is_zero();
            self.lookup_found::<T>(key, options.namespace_name(), scope, stale_ok)
                .await
        };
        let key = match Key::new(key) {
            Ok(key) => key,
            Err(error) => {
                // Without a usable key there is no entry either: compute uncached.
                self.unusable_key(&error);
                return compute()
                    .await
                    .map(|value| Served::fresh(Arc::new(value)))
                    .map_err(Failure::Compute);
            }
        };
        let mut fallback = None;
        match found {
            // A fresh hit, perhaps refreshed early (XFetch).
            Some(Looked { value, timing }) if !timing.is_stale() => {
                let early = plan.early.is_some_and(|beta| {
                    xfetch(timing.delta, beta, timing.fresh_left, rand::random::<f64>())
                });
                if !early || self.inner.flights.busy(&key) {
                    return Ok(Served::fresh(value));
                }
                tracing::debug!(key = %key, fresh_left_ms = timing.fresh_left.as_millis() as u64, "early refresh");
                let job = self.job(&key, options, plan, compute, ttl_of, Kind::Refresh);
                let counter = &self.inner.stats.fresh.early_refreshes;
                return Ok(match self.start_refresh(job, counter, runner).await {
                    Some(refreshed) => Served::fresh(refreshed),
                    None => Served::fresh(value),
                });
            }
            // Stale (never invalidated: the store validated its tags), within the swr
            // window: served at once, refreshed once.
            Some(Looked { value, timing }) if timing.stale_for < plan.swr => {
                FreshnessCounters::bump(&self.inner.stats.fresh.stale_served);
                tracing::debug!(key = %key, stale_ms = timing.stale_for.as_millis() as u64, "Cache STALE: served within the swr window");
                if self.inner.flights.busy(&key) {
                    return Ok(Served::stale(value));
                }
                let job = self.job(&key, options, plan, compute, ttl_of, Kind::Refresh);
                let counter = &self.inner.stats.fresh.background_refreshes;
                return Ok(match self.start_refresh(job, counter, runner).await {
                    // Refreshed in the foreground (a computation that borrows).
                    Some(refreshed) => Served::fresh(refreshed),
                    None => Served::stale(value),
                });
            }
            Some(Looked { value, timing }) if timing.stale_for < plan.fail_safe => {
                fallback = Some(value);
            }
            _ => {}
        }
        if let Some(value) = &fallback
            && self.failing_within(&key, plan.throttle)
        {
            return Ok(self.fail_safe(&key, Arc::clone(value)));
        }
        let kind = if forced { Kind::Warm } else { Kind::Miss };
        let mut pending = Some((options, compute, ttl_of));
        loop {
            let leader = if forced {
                None
            } else {
                match self.inner.flights.join(&key) {
                    Role::Follower(rx) => {
                        if let Some(served) =
                            self.follow(&key, rx, &plan, &fallback, R::DETACHES).await
                        {
                            return Ok(served);
                        }
                        continue;
                    }
                    Role::Leader(leader) => {
                        // A leader that finished between our lookup and `join` may have
                        // stored it. Followers then look it up themselves.
                        if let Some(value) = self.peek::<T>(&key).await {
                            leader.finish(Handoff {
                                value: value.clone(),
                                still_current: Arc::new(|| false),
                            });
                            return Ok(Served::fresh(value));
                        }
                        Some(leader)
                    }
                }
            };
            let Some((options, compute, ttl_of)) = pending.take() else {
                // Unreachable: a caller leads at most once, since leading returns.
                continue;
            };
            let mut job = self.job(&key, options, plan, compute, ttl_of, kind);
            job.leader = leader;
            return match R::drive(runner, job, fallback.clone()).await {
                Driven::Done(value) => Ok(Served::fresh(value)),
                Driven::SoftTimeout(stale) => {
                    FreshnessCounters::bump(&self.inner.stats.fresh.stale_served);
                    Ok(Served::stale(stale))
                }
                Driven::Failed(error) => match fallback {
                    Some(value) if fails(&error) => {
                        self.mark_failing(&key);
                        Ok(self.fail_safe(&key, value))
                    }
                    _ => Err(Failure::Compute(error)),
                },
                Driven::TimedOut(timeout) => match fallback {
                    Some(value) => {
                        self.mark_failing(&key);
                        Ok(self.fail_safe(&key, value))
                    }
                    None => Err(Failure::TimedOut(timeout)),
                },
            };
        }
    }

    /// A follower's wait for the leader of `key`: its value, the stale fallback past the
    /// soft timeout or while the key fails, or `None` to try again.
    async fn follow<T: CacheValue>(
        &self,
        key: &Key,
        rx: tokio::sync::watch::Receiver<Option<Handoff>>,
        plan: &Plan,
        fallback: &Option<Arc<T>>,
        detaches: bool,
    ) -> Option<Served<T>> {
        let handoff = match (plan.soft, fallback) {
            (Some(soft), Some(stale)) if detaches => {
                match tokio::time::timeout(soft, flight::wait(rx)).await {
                    Ok(handoff) => handoff,
                    Err(_) => {
                        FreshnessCounters::bump(&self.inner.stats.fresh.stale_served);
                        return Some(Served::stale(Arc::clone(stale)));
                    }
                }
            }
            _ => flight::wait(rx).await,
        };
        if let Some(handoff) = handoff
            && (handoff.still_current)()
            && let Ok(value) = handoff.value.downcast::<T>()
        {
            return Some(Served::fresh(value));
        }
        // The leader failed, was cancelled, or computed under versions that have moved
        // since: look again, then lead if still nothing.
        if let Some(value) = self.peek::<T>(key).await {
            return Some(Served::fresh(value));
        }
        match fallback {
            Some(value) if self.failing_within(key, plan.throttle) => {
                Some(self.fail_safe(key, Arc::clone(value)))
            }
            _ => None,
        }
    }

    /// Starts a refresh of `job.key` unless one is running here already (counted in
    /// `counter` when it starts): in the background, or (a computation that borrows) here,
    /// returning its value.
    async fn start_refresh<T, E, F, TF, R>(
        &self,
        mut job: LeadJob<F, TF>,
        counter: &std::sync::atomic::AtomicU64,
        runner: R,
    ) -> Option<Arc<T>>
    where
        T: CacheValue,
        R: Runner<T, E, F, TF>,
    {
        let Role::Leader(leader) = self.inner.flights.join(&job.key) else {
            return None;
        };
        FreshnessCounters::bump(counter);
        job.leader = Some(leader);
        let key = job.key.clone();
        match R::refresh(runner, job).await {
            None | Some(Ok(None)) => None,
            Some(Ok(Some(value))) => Some(value),
            Some(Err(_)) => {
                self.refresh_failed(&key, "the computation returned an error");
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn job<F, TF>(
        &self,
        key: &Key,
        options: EntryOptions,
        plan: Plan,
        compute: F,
        ttl_of: TF,
        kind: Kind,
    ) -> LeadJob<F, TF> {
        LeadJob {
            cache: self.clone(),
            key: key.clone(),
            options,
            plan,
            compute,
            ttl_of,
            leader: None,
            kind,
        }
    }

    /// A fail-safe answer: the last good value, counted and said.
    fn fail_safe<T>(&self, key: &Key, value: Arc<T>) -> Served<T> {
        let fresh = &self.inner.stats.fresh;
        FreshnessCounters::bump(&fresh.fail_safe_activations);
        FreshnessCounters::bump(&fresh.stale_served);
        tracing::debug!(key = %key, "fail-safe: serving the last good value");
        Served::stale(value)
    }

    /// Whether `key`'s computation failed less than `throttle` ago.
    fn failing_within(&self, key: &Key, throttle: Duration) -> bool {
        self.inner
            .failing
            .get(key)
            .is_some_and(|since| since.elapsed() < throttle)
    }

    /// Records that `key`'s computation failed now; whether it was not failing before (so
    /// the failure is worth a warning).
    fn mark_failing(&self, key: &Key) -> bool {
        let failing = &self.inner.failing;
        // Bounded: keys that failed long ago are forgotten first.
        if failing.len() >= MAX_FAILING_KEYS {
            failing.retain(|_, since| since.elapsed() < Duration::from_secs(60));
            if failing.len() >= MAX_FAILING_KEYS {
                failing.clear();
            }
        }
        let first = failing.insert(key.clone(), Instant::now()).is_none();
        if first {
            tracing::warn!(key = %key, "computation failed; serving the last good value (fail-safe)");
        }
        first
    }

    /// A background or early refresh failed: the stale value stays; counted, and logged
    /// once per failing spell of the key.
    pub(crate) fn refresh_failed(&self, key: &Key, why: &str) {
        FreshnessCounters::bump(&self.inner.stats.fresh.refresh_errors);
        let failing = &self.inner.failing;
        if failing.insert(key.clone(), Instant::now()).is_none() {
            tracing::warn!(key = %key, why, "refresh failed; the stale value is served until its window ends");
        } else {
            tracing::debug!(key = %key, why, "refresh failed again");
        }
    }
}

/// Keys remembered as failing, at most.
const MAX_FAILING_KEYS: usize = 10_000;

/// XFetch: whether to recompute now, `fresh_left` before expiry, an entry whose
/// computation took `delta` — `delta × beta × −ln(u) ≥ fresh_left`, `u` uniform in (0, 1].
pub(crate) fn xfetch(delta: Duration, beta: f64, fresh_left: Duration, u: f64) -> bool {
    if delta.is_zero() {
        return false;
    }
    let u = u.clamp(f64::MIN_POSITIVE, 1.0);
    delta.as_secs_f64() * beta * -u.ln() >= fresh_left.as_secs_f64()
}

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
                    tracing::debug!(key = %self.key, "another instance is refreshing this key");
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
            Kind::Miss => {
                tracing::debug_span!("querycache.compute", key = %key, namespace = options.namespace_name())
            }
            Kind::Refresh | Kind::Warm => {
                tracing::debug_span!("querycache.refresh", key = %key, namespace = options.namespace_name())
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
        let (value, snapshot) = result?;
        cache.inner.failing.remove(&key);
        if let Some(leader) = leader {
            let inner = Arc::clone(&cache.inner);
            leader.finish(Handoff {
                value: value.clone(),
                still_current: Arc::new(move || {
                    snapshot.as_ref().is_some_and(|s| inner.store.is_current(s))
                }),
            });
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
            runtime.spawn(async move {
                cache.inner.store.release_lease(key.as_str(), &token).await;
            });
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
        if ttl.is_zero() {
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
        tracing::debug!(key = %key, "another instance holds the computation lease; waiting for its value");
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
                    tracing::warn!(key = %key, waited_ms = started.elapsed().as_millis() as u64, "the instance holding the lease did not answer in time; computing here");
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
        let value = crate::store::computing(fingerprint, compute()).await?;
        let delta = started.elapsed();
        tracing::debug!(key = %key, elapsed_us = delta.as_micros() as u64, "computed");
        let ttl = ttl_of(&value, self.resolve_ttl(options, key));
        let timing = super::StoreTiming { ttl, grace, delta };
        Ok(self.settle(key, value, snapshot, options, timing).await)
    }
}
