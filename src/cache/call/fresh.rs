//! The freshness options of `#[cached_query]` (`swr`, `early_refresh`, `fail_safe`,
//! `fail_safe_throttle`, `soft_timeout`, `hard_timeout`), and the run methods of the calls
//! whose computation may outlive its caller.
//!
//! Every option travels in the call's [`EntryOptions`](crate::EntryOptions); the borrowed
//! run methods of [`Call`] (`run`, `run_result`, ...) honour `swr`, `early_refresh` and
//! `fail_safe` with the refreshing caller waiting for its own computation. The `run_fresh*` methods here
//! hand the cache a computation that owns everything it uses (`Send + 'static`), so that a
//! refresh can run in the background and a timed-out computation can finish after its
//! caller has moved on. The macro uses them for async fns with `swr`, `early_refresh`,
//! `soft_timeout` or `hard_timeout` whose arguments can all be owned.
//!
//! Which method applies is the macro's choice, and part of the contract: a
//! [`FetchError::TimedOut`] can only come from a call with a hard timeout, which the macro
//! runs through a `_timeout` method (the others have no error to turn it into).

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use super::{Call, CallPlan, relayed};
use crate::{CacheValue, FetchError, Fetched, TimedOut};

/// The error type of a function with `hard_timeout`: a caller that gives up waiting gets
/// `E::from(TimedOut)`. A trait of its own for the message when the conversion is missing.
#[diagnostic::on_unimplemented(
    message = "with `hard_timeout`, the error type `{Self}` must implement `From<querycache::TimedOut>`",
    label = "`{Self}` cannot hold a `querycache::TimedOut`",
    note = "a caller that stops waiting gets `E::from(querycache::TimedOut)`: implement `From<querycache::TimedOut>` for `{Self}` (for example with a variant holding it)"
)]
pub trait TimeoutError: From<TimedOut> {}

impl<E: From<TimedOut>> TimeoutError for E {}

impl Call {
    /// `swr = ..`: an expired entry is served, and recomputed, for this long past its TTL.
    pub fn swr_secs(&mut self, secs: u64) {
        self.options = std::mem::take(&mut self.options).swr(Duration::from_secs(secs));
    }

    /// `early_refresh = ..`: XFetch's beta (finite, positive: checked by the macro).
    pub fn early_refresh(&mut self, beta: f64) {
        self.options = std::mem::take(&mut self.options).early_refresh(beta);
    }

    /// `fail_safe = ..`: when a recomputation fails, the last good value is served for up to
    /// this long past its TTL.
    pub fn fail_safe_secs(&mut self, secs: u64) {
        self.options = std::mem::take(&mut self.options).fail_safe(Duration::from_secs(secs));
    }

    /// `fail_safe_throttle = ..`: after a failure, how long the last good value is served
    /// before the computation is tried again.
    pub fn fail_safe_throttle_secs(&mut self, secs: u64) {
        self.options =
            std::mem::take(&mut self.options).fail_safe_throttle(Duration::from_secs(secs));
    }

    /// `soft_timeout = ..`: after this long, a stale value (if any) is served while the
    /// computation goes on in the background.
    pub fn soft_timeout_ms(&mut self, ms: u64) {
        self.options = std::mem::take(&mut self.options).soft_timeout(Duration::from_millis(ms));
    }

    /// `hard_timeout = ..`: after this long, the caller stops waiting (stale value, else a
    /// [`TimedOut`] error). Only with a `_timeout` run method.
    pub fn hard_timeout_ms(&mut self, ms: u64) {
        self.options = std::mem::take(&mut self.options).hard_timeout(Duration::from_millis(ms));
    }

    /// [`run`](Call::run) with a computation that owns its arguments, so the cache may run
    /// it in the background. Without a hard timeout.
    pub async fn run_fresh<T, Fut>(mut self, future: Fut) -> T
    where
        T: CacheValue + Clone,
        Fut: Future<Output = T> + Send + 'static,
    {
        self.settle_database().await;
        match self.plan() {
            CallPlan::Bypass => self.cache().bypass(future).await,
            CallPlan::ReadOnly(key) => match self.cache().read_only::<T>(&key, &self.options).await
            {
                Some(hit) => (*hit).clone(),
                None => future.await,
            },
            CallPlan::Cache(key) => {
                let (cache, relays) = (self.cache().clone(), std::mem::take(&mut self.relays));
                let fetched = cache
                    .fetch_with(
                        key.as_str(),
                        self.options,
                        move || relayed(relays, async move { Ok::<T, Infallible>(future.await) }),
                        |_: &T, ttl| ttl,
                        |_: &Infallible| true,
                    )
                    .await;
                match fetched {
                    Ok(fetched) => value_of(fetched),
                    Err(FetchError::Failed(never)) => match never {},
                    Err(FetchError::TimedOut(timed_out)) => no_hard_timeout(&timed_out),
                }
            }
        }
    }

    /// [`run_result`](Call::run_result) with a computation that owns its arguments. Errors
    /// are not cached (`fail_safe` may answer one with the last good value). Without a hard
    /// timeout: see [`run_fresh_result_timeout`](Self::run_fresh_result_timeout).
    pub async fn run_fresh_result<T, E, Fut>(self, future: Fut) -> Result<T, E>
    where
        T: CacheValue + Clone,
        E: Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.fetch_owned(future, |timed_out| no_hard_timeout(&timed_out))
            .await
    }

    /// [`run_fresh_result`](Self::run_fresh_result) with a hard timeout: a caller that
    /// gives up without a stale value to serve gets `E::from(TimedOut)`.
    pub async fn run_fresh_result_timeout<T, E, Fut>(self, future: Fut) -> Result<T, E>
    where
        T: CacheValue + Clone,
        E: TimeoutError + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.fetch_owned(future, E::from).await
    }

    /// The two above, and `cached_select`: `on_timeout` turns a hard timeout into the error.
    pub(crate) async fn fetch_owned<T, E, Fut>(
        mut self,
        future: Fut,
        on_timeout: impl FnOnce(TimedOut) -> E,
    ) -> Result<T, E>
    where
        T: CacheValue + Clone,
        E: Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.settle_database().await;
        match self.plan() {
            // Outside the cache nothing runs in the background: the caller waits.
            CallPlan::Bypass => self.cache().bypass(future).await,
            CallPlan::ReadOnly(key) => match self.cache().read_only::<T>(&key, &self.options).await
            {
                Some(hit) => Ok((*hit).clone()),
                None => future.await,
            },
            CallPlan::Cache(key) => {
                let (cache, relays) = (self.cache().clone(), std::mem::take(&mut self.relays));
                let fetched = cache
                    .fetch_with(
                        key.as_str(),
                        self.options,
                        move || relayed(relays, future),
                        |_: &T, ttl| ttl,
                        |_: &E| true,
                    )
                    .await;
                match fetched {
                    Ok(fetched) => Ok(value_of(fetched)),
                    Err(FetchError::Failed(error)) => Err(error),
                    Err(FetchError::TimedOut(timed_out)) => Err(on_timeout(timed_out)),
                }
            }
        }
    }

    /// [`run_result_caching_errors`](Call::run_result_caching_errors) with a computation
    /// that owns its arguments: the whole `Result` is the cached value, an `Err` living the
    /// error TTL. Without a hard timeout.
    pub async fn run_fresh_result_caching_errors<T, E, Fut>(mut self, future: Fut) -> Result<T, E>
    where
        T: CacheValue + Clone,
        E: CacheValue + Clone,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        match self.fetch_result(future).await {
            Ok(result) => result,
            Err(timed_out) => no_hard_timeout(&timed_out),
        }
    }

    /// [`run_fresh_result_caching_errors`](Self::run_fresh_result_caching_errors) with a
    /// hard timeout: a caller that gives up without a stale value to serve gets
    /// `E::from(TimedOut)`, which is not cached.
    pub async fn run_fresh_result_caching_errors_timeout<T, E, Fut>(
        mut self,
        future: Fut,
    ) -> Result<T, E>
    where
        T: CacheValue + Clone,
        E: CacheValue + Clone + TimeoutError,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.fetch_result(future)
            .await
            .unwrap_or_else(|timed_out| Err(E::from(timed_out)))
    }

    /// The `_caching_errors` methods' common part: the `Result` itself, or the hard
    /// timeout that cut it short.
    async fn fetch_result<T, E, Fut>(&mut self, future: Fut) -> Result<Result<T, E>, TimedOut>
    where
        T: CacheValue + Clone,
        E: CacheValue + Clone,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.settle_database().await;
        match self.plan() {
            CallPlan::Bypass => Ok(self.cache().bypass(future).await),
            CallPlan::ReadOnly(key) => {
                match self
                    .cache()
                    .read_only::<Result<T, E>>(&key, &self.options)
                    .await
                {
                    Some(hit) => Ok((*hit).clone()),
                    None => Ok(future.await),
                }
            }
            CallPlan::Cache(key) => {
                let ttl_of = self.cache().error_ttl_policy(&self.options);
                let (cache, relays) = (self.cache().clone(), std::mem::take(&mut self.relays));
                let fetched = cache
                    .fetch_with(
                        key.as_str(),
                        std::mem::take(&mut self.options),
                        move || relayed(relays, async move { Ok::<_, Infallible>(future.await) }),
                        ttl_of,
                        |_: &Infallible| true,
                    )
                    .await;
                match fetched {
                    Ok(fetched) => Ok(value_of(fetched)),
                    Err(FetchError::Failed(never)) => match never {},
                    Err(FetchError::TimedOut(timed_out)) => Err(timed_out),
                }
            }
        }
    }
}

/// The fetched value, cloned out of its `Arc` unless this was the last reference.
fn value_of<T: Clone>(fetched: Fetched<T>) -> T {
    std::sync::Arc::unwrap_or_clone(fetched.into_value())
}

/// A [`TimedOut`] from a call without a hard timeout: the cache broke its contract (it times
/// out only calls that set one), and there is no error to return it as.
#[allow(clippy::panic)]
fn no_hard_timeout(timed_out: &TimedOut) -> ! {
    panic!("querycache: {timed_out}, but this call set no hard timeout")
}
