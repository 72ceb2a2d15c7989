//! How a read runs computations: on the caller's task, or on tasks of their own.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use super::LeadJob;
use crate::cache::CacheValue;
use crate::stats::FreshnessCounters;

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
        // Outside a tokio runtime (another executor), there is nowhere to run it but here.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Some(job.run_refresh().await);
        };
        let (cache, key, hard) = (job.cache.clone(), job.key.clone(), job.plan.hard);
        // In the caller's span: the refresh's events and spans are its children.
        let refresh = async move {
            match bounded(hard, job.run_refresh()).await {
                Some(Ok(_)) => {}
                Some(Err(_)) => cache.refresh_failed(&key, "the computation returned an error"),
                None => {
                    FreshnessCounters::bump(&cache.inner.stats.fresh.hard_timeouts);
                    cache.refresh_failed(&key, "the computation passed its hard timeout");
                }
            }
        };
        runtime.spawn(refresh.in_current_span());
        None
    }

    async fn drive(
        self,
        job: LeadJob<F, TF>,
        stale: Option<Arc<T>>,
    ) -> Driven<T, E, Self::Timeout> {
        let plan = job.plan;
        let soft = plan.soft.zip(stale);
        // Timeouts need tokio's timer and a task to detach: outside a tokio runtime (another
        // executor) the computation runs here, unbounded.
        let runtime = tokio::runtime::Handle::try_current().ok();
        let (Some(runtime), false) = (runtime, soft.is_none() && plan.hard.is_none()) else {
            return match job.run_miss().await {
                Ok(value) => Driven::Done(value),
                Err(error) => Driven::Failed(error),
            };
        };
        let (cache, key) = (job.cache.clone(), job.key.clone());
        let started = Instant::now();
        // On a task of its own, bounded by the hard timeout: past the soft timeout the
        // caller leaves with the stale value and the computation still lands.
        let mut task = runtime.spawn(bounded(plan.hard, job.run_miss()).in_current_span());
        let (joined, stale) = match soft {
            Some((soft, stale)) => match tokio::time::timeout(soft, &mut task).await {
                Ok(joined) => (joined, Some(stale)),
                Err(_) => {
                    FreshnessCounters::bump(&cache.inner.stats.fresh.soft_timeouts);
                    tracing::debug!(key = %crate::key::shown(&key), soft_ms = soft.as_millis() as u64, "soft timeout: serving the stale value, the computation goes on");
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
                tracing::warn!(key = %crate::key::shown(&key), hard_ms = after.as_millis() as u64, "hard timeout: the computation was abandoned");
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
