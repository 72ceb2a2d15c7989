//! The read path behind every `get_or_compute` flavour and [`Cache::fetch`]: lookup, stale
//! answers (stale-while-revalidate, fail-safe, soft timeouts), early refresh, one
//! computation per key in the process and, through a Redis lease, across instances.
//!
//! Expiry is softened here, invalidation never: the stores only ever return entries whose
//! tags are still at the versions they were computed under, fresh or stale.

mod lead;
mod runner;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) use runner::{Detach, Driven, Inline, Runner};

use super::{Cache, CacheValue, Looked};
use crate::cache::flight::{self, Ended, Handoff, Leader, Role};
use crate::cache::options::DEFAULT_FAIL_SAFE_THROTTLE;
use crate::key::HitKey;
use crate::stats::FreshnessCounters;
use crate::store::{ReadScope, Timing};
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

/// What [`Cache::memory_hit`] found.
pub(crate) enum Quick<T> {
    /// A fresh value.
    Hit(Arc<T>),
    /// A fresh value that drew an early refresh (XFetch).
    Early(Looked<T>),
    /// Nothing it can answer: look the key up the full way.
    Look,
}

/// Why a read has no value: the computation's error, or its hard timeout (`X` is
/// [`TimedOut`](crate::TimedOut) where timeouts apply, `Infallible` where they cannot).
pub(crate) enum ReadFailure<E, X> {
    Compute(E),
    TimedOut(X),
}

/// The freshness settings in force for one read: the entry's own, and its namespace's
/// stale-while-revalidate window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadPlan {
    swr: Duration,
    fail_safe: Duration,
    throttle: Duration,
    early: Option<f64>,
    pub(crate) soft: Option<Duration>,
    pub(crate) hard: Option<Duration>,
}

impl ReadPlan {
    /// How long past its TTL an entry is kept, to be served stale.
    pub(crate) fn grace(&self) -> Duration {
        self.swr.max(self.fail_safe)
    }
}

/// What a follower does once its round of the single flight is over.
enum Followed<T> {
    /// It has its answer.
    Served(Served<T>),
    /// The leader was cancelled, or its value predates a write: join the next round.
    Again,
    /// The leader's computation ended with nothing to hand over: compute here, now.
    Released,
}

/// Why a computation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A caller found nothing usable.
    Miss,
    /// A follower released by a leader that had nothing to hand over (see [`flight`]): it
    /// computes at once, alongside the others of its round, and takes no lease — the answer
    /// of that round was not one the store keeps.
    Released,
    /// A stale-while-revalidate or early refresh: skipped when another instance is at it.
    Refresh(Refreshing),
    /// A forced warming run: no lookup, no waiting.
    Warm,
}

/// Which refresh a [`Kind::Refresh`] computation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refreshing {
    /// Early refresh (XFetch), before expiry: the entry it refreshes is still fresh.
    Early,
    /// Stale-while-revalidate: skipped when the entry is fresh again by the time it runs
    /// (another caller's refresh landed between this caller's lookup and its flight).
    Background,
}

/// One computation, with everything it needs to run on another task.
pub(crate) struct LeadJob<F, TF> {
    pub(crate) cache: Cache,
    pub(crate) key: Key,
    pub(crate) options: EntryOptions,
    pub(crate) plan: ReadPlan,
    pub(crate) compute: F,
    pub(crate) ttl_of: TF,
    /// The flight this computation answers, finished with its value.
    pub(crate) leader: Option<Leader>,
    pub(crate) kind: Kind,
}

impl Cache {
    /// The freshness settings in force for `options`.
    pub(crate) fn plan(&self, options: &EntryOptions) -> ReadPlan {
        let fresh = &options.fresh;
        ReadPlan {
            swr: fresh
                .swr
                .or_else(|| {
                    let config = &self.inner.config;
                    // Most configurations have none: no hashing of the namespace then.
                    if config.namespace_swr.is_empty() {
                        return None;
                    }
                    config.swr_for_namespace(options.namespace_name())
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
    ) -> Result<Served<T>, ReadFailure<E, R::Timeout>>
    where
        T: CacheValue,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        TF: Fn(&T, Duration) -> Duration,
        R: Runner<T, E, F, TF>,
    {
        if !self.inner.config.enabled || crate::cache::bypass::active() {
            self.trace_bypass(key);
            return match self.bypass(compute()).await {
                Ok(value) => Ok(Served::fresh(Arc::new(value))),
                Err(error) => Err(ReadFailure::Compute(error)),
            };
        }
        let plan = self.plan(&options);
        let found = match self.memory_hit::<T>(key, &options) {
            Quick::Hit(value) => return Ok(Served::fresh(value)),
            Quick::Early(looked) => Some(looked),
            Quick::Look if let Some(observation) = crate::store::observation() => {
                if let Some(value) = self.nested_hit::<T>(key, &options, &observation).await {
                    return Ok(Served::fresh(value));
                }
                return Box::pin(self.nested(key, compute()))
                    .await
                    .map(|value| Served::fresh(Arc::new(value)))
                    .map_err(ReadFailure::Compute);
            }
            Quick::Look => match self.hit(key, &options, &plan).await {
                Ok(value) => return Ok(Served::fresh(value)),
                Err(found) => found,
            },
        };
        // Boxed: the rest of the read path makes a large future, which a hit — the common
        // case, returned above — should not have to carry (and copy) through every caller.
        Box::pin(self.read_found(key, options, plan, found, compute, ttl_of, runner, fails)).await
    }

    /// Inside another entry's computation (a cached function calling another), a fresh
    /// entry under `key` whose dependencies the outer computation takes on: the versions it
    /// was computed under join the outer snapshot (memory store); or, from a shared store,
    /// its tags' versions are read first and the entry looked up again, used only if it is
    /// still valid and depends on nothing whose versions were not read (a write in between
    /// makes the outer value outdated, never served). `None`: compute it in the outer scope
    /// ([`nested`](Self::nested)).
    pub(crate) async fn nested_hit<T: CacheValue>(
        &self,
        key: &str,
        options: &EntryOptions,
        observation: &crate::cache::observe::Observation,
    ) -> Option<Arc<T>> {
        if crate::warm::refreshing() {
            return None;
        }
        let (value, deps) = self.inner_lookup::<T>(key, options).await?;
        match deps {
            crate::store::Deps::Versions(versions) => {
                observation.contribute(versions).await;
                Some(value)
            }
            crate::store::Deps::Tags(tags) => {
                observation.before_read(tags).await;
                let (value, deps) = self.inner_lookup::<T>(key, options).await?;
                match deps {
                    crate::store::Deps::Tags(tags) if observation.knows(&tags).await => Some(value),
                    _ => None,
                }
            }
        }
    }

    /// A lookup inside another entry's computation: a fresh entry of type `T` and what it
    /// depends on, counted as a hit; `None` (not counted: the caller computes in its scope,
    /// counted as a bypass) otherwise.
    async fn inner_lookup<T: CacheValue>(
        &self,
        key: &str,
        options: &EntryOptions,
    ) -> Option<(Arc<T>, crate::store::Deps)> {
        use crate::store::{Lookup, Store};

        let started = Instant::now();
        let lookup = self
            .inner
            .store
            .get(key, &super::decode::<T>, ReadScope::InComputation)
            .await;
        let Ok(Lookup::Hit(found)) = lookup else {
            return None;
        };
        if found.timing.is_stale() {
            return None;
        }
        let deps = found.deps?;
        let value = found.value.downcast::<T>().ok()?;
        let elapsed = started.elapsed();
        tracing::debug!(
            tier = found.tier,
            key = %crate::key::shown(key),
            hit = true,
            latency_ns = elapsed.as_nanos() as u64,
            "Cache HIT inside another entry's computation: {} (its dependencies join that entry's)",
            crate::key::shown(key),
        );
        self.inner.stats.lookup(
            options.namespace_name(),
            key,
            crate::stats::LookupOutcome::Hit(found.tier),
            started,
            elapsed,
        );
        Some((value, deps))
    }

    /// A read inside another entry's computation (a cached function calling another) that
    /// found no usable entry ([`nested_hit`](Self::nested_hit)): it is computed right here,
    /// in that computation's scope, so that every statement it sends is observed as the
    /// outer entry's own read, and the outer entry depends on everything it depends on. It
    /// is not stored: a follower's wait or a stale value would hand the outer computation a
    /// value whose reads it never saw.
    async fn nested<T>(&self, key: &str, compute: impl Future<Output = T>) -> T {
        self.note_nested(key);
        compute.await
    }

    /// Says and counts (as a bypass) a read computed inside another entry's computation.
    pub(crate) fn note_nested(&self, key: &str) {
        tracing::debug!(key = %crate::key::shown(key), "inside another entry's computation: computed in its scope, its reads that entry's dependencies");
        self.inner.stats.bypassed();
    }

    /// The hit path's first step: a fresh, valid entry of the memory tier (the memory
    /// store, or the tiered store's memory tier while it is trusted), found synchronously
    /// and without allocating. `Quick::Look` sends the caller to the full lookup (nothing
    /// fresh in memory, a lookup inside a computation, a warming run, another type).
    pub(crate) fn memory_hit<T: CacheValue>(&self, key: &str, options: &EntryOptions) -> Quick<T> {
        let early = options.fresh.early_refresh;
        let hit = self.memory_hit_with(
            HitKey::Text(key),
            crate::stats::NamespaceName::Borrowed(options.namespace_name()),
            early.is_some(),
            |held| held.shared::<T>(),
        );
        match hit {
            None => Quick::Look,
            Some((value, timing)) => {
                let timing = timing.timing();
                let early = early.is_some_and(|beta| {
                    xfetch(timing.delta, beta, timing.fresh_left, rand::random::<f64>())
                });
                if early {
                    Quick::Early(Looked { value, timing })
                } else {
                    Quick::Hit(value)
                }
            }
        }
    }

    /// The memory-tier hit of [`memory_hit`](Self::memory_hit), counted in `namespace`:
    /// what `take` makes of the stored value (`None`: another type, looked up the full way,
    /// which reports it), and the entry's timing (its `delta` zero unless `timed`: it is
    /// read from the entry's cold part).
    pub(crate) fn memory_hit_with<R>(
        &self,
        key: HitKey<'_>,
        namespace: crate::stats::NamespaceName<'_>,
        timed: bool,
        take: impl FnOnce(crate::store::Held<'_>) -> Option<R>,
    ) -> Option<(R, HitTiming)> {
        let inner = &*self.inner;
        if !inner.config.enabled || crate::cache::bypass::active() {
            return None;
        }
        let memory = inner.store.memory_tier()?;
        if crate::warm::refreshing() || crate::store::read_scope() != ReadScope::Caller {
            return None;
        }
        let latency_from = crate::stats::time_this_hit().then(Instant::now);
        let debug = tracing::enabled!(tracing::Level::DEBUG);
        let hit = memory.fresh(key.id(), debug || timed, take)?;
        inner.stats.memory_hit(
            namespace,
            key,
            inner.config.clock.monotonic(hit.at),
            latency_from.map(|started| started.elapsed()),
        );
        let timing = HitTiming {
            fresh_left_ns: hit.fresh_left_ns,
            delta: hit
                .detail
                .as_ref()
                .map_or(Duration::ZERO, |detail| detail.delta),
        };
        if debug && let Some(detail) = &hit.detail {
            let age = Duration::from_nanos(hit.at.saturating_sub(detail.stored_at));
            key.with_text(|key| {
                tracing::debug!(
                    tier = "memory",
                    key = %crate::key::shown(key),
                    hit = true,
                    "Cache HIT: {} (age: {}s)",
                    crate::key::shown(key),
                    age.as_secs()
                );
            });
        }
        Some((hit.value, timing))
    }

    /// The hit path: the lookup, and the value of a fresh entry that early refresh leaves
    /// alone; otherwise what the lookup found (a stale entry, a fresh one drawn for an
    /// early refresh, or nothing), for [`read_found`](Self::read_found).
    async fn hit<T: CacheValue>(
        &self,
        key: &str,
        options: &EntryOptions,
        plan: &ReadPlan,
    ) -> Result<Arc<T>, Option<Looked<T>>> {
        if crate::warm::refreshing() {
            return Err(None);
        }
        let scope = crate::store::read_scope();
        let stale_ok = !plan.grace().is_zero();
        match self
            .lookup_found::<T>(key, options.namespace_name(), scope, stale_ok)
            .await
        {
            Some(Looked { value, timing }) if !timing.is_stale() => {
                let early = plan.early.is_some_and(|beta| {
                    xfetch(timing.delta, beta, timing.fresh_left, rand::random::<f64>())
                });
                if early {
                    Err(Some(Looked { value, timing }))
                } else {
                    Ok(value)
                }
            }
            other => Err(other),
        }
    }

    /// The read path past the lookup (see [`read`](Self::read)).
    #[allow(clippy::too_many_arguments)]
    async fn read_found<T, E, F, Fut, TF, R>(
        &self,
        key: &str,
        options: EntryOptions,
        plan: ReadPlan,
        found: Option<Looked<T>>,
        compute: F,
        ttl_of: TF,
        runner: R,
        fails: impl Fn(&E) -> bool,
    ) -> Result<Served<T>, ReadFailure<E, R::Timeout>>
    where
        T: CacheValue,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        TF: Fn(&T, Duration) -> Duration,
        R: Runner<T, E, F, TF>,
    {
        let forced = crate::warm::refreshing();
        let key = match Key::new(key) {
            Ok(key) => key,
            Err(error) => {
                // Without a usable key there is no entry either: compute uncached.
                self.unusable_key(&error);
                return compute()
                    .await
                    .map(|value| Served::fresh(Arc::new(value)))
                    .map_err(ReadFailure::Compute);
            }
        };
        let mut fallback = None;
        match found {
            // A fresh hit that drew an early refresh (XFetch).
            Some(Looked { value, timing }) if !timing.is_stale() => {
                if self.inner.flights.busy(&key) {
                    return Ok(Served::fresh(value));
                }
                tracing::debug!(key = %crate::key::shown(&key), fresh_left_ms = timing.fresh_left.as_millis() as u64, "early refresh");
                let kind = Kind::Refresh(Refreshing::Early);
                let job = self.job(&key, options, plan, compute, ttl_of, kind);
                return Ok(match self.start_refresh(job, runner).await {
                    Some(refreshed) => Served::fresh(refreshed),
                    None => Served::fresh(value),
                });
            }
            // Stale (never invalidated: the store validated its tags), within the swr
            // window: served at once, refreshed once.
            Some(Looked { value, timing }) if timing.stale_for < plan.swr => {
                FreshnessCounters::bump(&self.inner.stats.fresh.stale_served);
                tracing::debug!(key = %crate::key::shown(&key), stale_ms = timing.stale_for.as_millis() as u64, "Cache STALE: served within the swr window");
                if self.inner.flights.busy(&key) {
                    return Ok(Served::stale(value));
                }
                let kind = Kind::Refresh(Refreshing::Background);
                let job = self.job(&key, options, plan, compute, ttl_of, kind);
                return Ok(match self.start_refresh(job, runner).await {
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
        let mut kind = if forced { Kind::Warm } else { Kind::Miss };
        let mut pending = Some((options, compute, ttl_of));
        loop {
            let leader = if forced {
                None
            } else {
                match self.inner.flights.join(&key) {
                    Role::Follower(rx) => {
                        match self.follow(&key, rx, &plan, &fallback, R::DETACHES).await {
                            Followed::Served(served) => return Ok(served),
                            Followed::Again => continue,
                            Followed::Released => {
                                kind = Kind::Released;
                                None
                            }
                        }
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
                    Some(value) if fails(&error) => Ok(self.failed_over(&key, value)),
                    _ => Err(ReadFailure::Compute(error)),
                },
                Driven::TimedOut(timeout) => match fallback {
                    Some(value) => Ok(self.failed_over(&key, value)),
                    None => Err(ReadFailure::TimedOut(timeout)),
                },
            };
        }
    }

    /// A follower's wait for the leader of `key`: its value, the stale fallback past the
    /// soft timeout or while the key fails, or `None` to try again.
    async fn follow<T: CacheValue>(
        &self,
        key: &Key,
        rx: tokio::sync::watch::Receiver<Option<Ended>>,
        plan: &ReadPlan,
        fallback: &Option<Arc<T>>,
        detaches: bool,
    ) -> Followed<T> {
        let ended = match (plan.soft, fallback) {
            (Some(soft), Some(stale))
                if detaches && tokio::runtime::Handle::try_current().is_ok() =>
            {
                match tokio::time::timeout(soft, flight::wait(rx)).await {
                    Ok(ended) => ended,
                    Err(_) => {
                        FreshnessCounters::bump(&self.inner.stats.fresh.stale_served);
                        return Followed::Served(Served::stale(Arc::clone(stale)));
                    }
                }
            }
            _ => flight::wait(rx).await,
        };
        let released = match ended {
            Some(Ended::Value(handoff)) => {
                if (handoff.still_current)()
                    && let Ok(value) = handoff.value.downcast::<T>()
                {
                    return Followed::Served(Served::fresh(value));
                }
                false
            }
            Some(Ended::Released) => true,
            None => false,
        };
        // The leader had nothing to hand over, was cancelled, or computed under versions
        // that have moved since: look again, then compute if still nothing.
        if let Some(value) = self.peek::<T>(key).await {
            return Followed::Served(Served::fresh(value));
        }
        match fallback {
            Some(value) if self.failing_within(key, plan.throttle) => {
                Followed::Served(self.fail_safe(key, Arc::clone(value)))
            }
            // With a last good value to fall back on, the next round keeps its single
            // leader (whose failure, if it fails, marks the key failing for the others).
            None if released => Followed::Released,
            _ => Followed::Again,
        }
    }

    /// Starts a refresh of `job.key` unless one is running here already (counted in
    /// `counter` when it starts): in the background, or (a computation that borrows) here,
    /// returning its value.
    async fn start_refresh<T, E, F, TF, R>(
        &self,
        mut job: LeadJob<F, TF>,
        runner: R,
    ) -> Option<Arc<T>>
    where
        T: CacheValue,
        R: Runner<T, E, F, TF>,
    {
        let Role::Leader(leader) = self.inner.flights.join(&job.key) else {
            return None;
        };
        // A background refresh is counted when it computes (`run_refresh`).
        if job.kind == Kind::Refresh(Refreshing::Early) {
            FreshnessCounters::bump(&self.inner.stats.fresh.early_refreshes);
        }
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
        plan: ReadPlan,
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
        tracing::debug!(key = %crate::key::shown(&key), "fail-safe: serving the last good value");
        Served::stale(value)
    }

    /// Whether `key`'s computation failed less than `throttle` ago (by the memory tier's
    /// clock, which a test may advance).
    fn failing_within(&self, key: &Key, throttle: Duration) -> bool {
        let now = self.inner.config.clock.now();
        self.inner
            .failing
            .get(key)
            .is_some_and(|since| now.saturating_sub(*since) < crate::clock::nanos(throttle))
    }

    /// A failed computation answered by fail-safe: the key is marked failing (retried at
    /// most once per throttle), and the last good value served.
    fn failed_over<T>(&self, key: &Key, value: Arc<T>) -> Served<T> {
        if self.mark_failing(key) {
            tracing::warn!(key = %crate::key::shown(&key), "computation failed; serving the last good value (fail-safe)");
        }
        self.fail_safe(key, value)
    }

    /// Records that `key`'s computation failed now; whether it was not failing before (so
    /// the failure is worth a warning, once per failing spell).
    fn mark_failing(&self, key: &Key) -> bool {
        let failing = &self.inner.failing;
        let now = self.inner.config.clock.now();
        // Bounded: keys that failed long ago are forgotten first.
        if failing.len() >= MAX_FAILING_KEYS {
            let minute = crate::clock::nanos(Duration::from_secs(60));
            failing.retain(|_, since| now.saturating_sub(*since) < minute);
            if failing.len() >= MAX_FAILING_KEYS {
                failing.clear();
            }
        }
        failing.insert(key.clone(), now).is_none()
    }

    /// A background or early refresh failed: the stale value stays; counted, and logged
    /// once per failing spell of the key.
    pub(crate) fn refresh_failed(&self, key: &Key, why: &str) {
        FreshnessCounters::bump(&self.inner.stats.fresh.refresh_errors);
        if self.mark_failing(key) {
            tracing::warn!(key = %crate::key::shown(&key), why, "refresh failed; the stale value is served until its window ends");
        } else {
            tracing::debug!(key = %crate::key::shown(&key), why, "refresh failed again");
        }
    }
}

/// Keys remembered as failing, at most.
const MAX_FAILING_KEYS: usize = 10_000;

/// A memory-tier hit's [`Timing`], as found: made a `Timing` (whose `Duration`s take a
/// division each) only by a caller that reads it.
pub(crate) struct HitTiming {
    fresh_left_ns: u64,
    delta: Duration,
}

impl HitTiming {
    /// The hit's timing: fresh for `fresh_left_ns` more, its computation's `delta`.
    pub(crate) fn timing(&self) -> Timing {
        Timing {
            fresh_left: Duration::from_nanos(self.fresh_left_ns),
            stale_for: Duration::ZERO,
            delta: self.delta,
        }
    }
}

/// XFetch: whether to recompute now, `fresh_left` before expiry, an entry whose
/// computation took `delta` — `delta × beta × −ln(u) ≥ fresh_left`, `u` uniform in (0, 1].
pub(crate) fn xfetch(delta: Duration, beta: f64, fresh_left: Duration, u: f64) -> bool {
    if delta.is_zero() {
        return false;
    }
    let u = u.clamp(f64::MIN_POSITIVE, 1.0);
    delta.as_secs_f64() * beta * -u.ln() >= fresh_left.as_secs_f64()
}
