//! [`Cache::fetch`]: the read path for computations that own what they need, with every
//! freshness setting honoured — background refreshes, soft and hard timeouts — and answers
//! that say whether they are stale.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::read::{Detach, ReadFailure};
use super::{Cache, CacheValue};
use crate::EntryOptions;

/// A value read through [`Cache::fetch`], and whether it is stale: past its TTL, served
/// within a stale-while-revalidate window, past a soft timeout or by fail-safe (never an
/// invalidated value).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let cache = querycache::Cache::new();
/// let options = querycache::EntryOptions::new().ttl_secs(60);
/// let fetched = cache.fetch("k", options, || async { Ok::<_, String>(7_u32) }).await.unwrap();
/// assert_eq!(**fetched.value(), 7);
/// assert!(!fetched.is_stale());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Fetched<T> {
    value: Arc<T>,
    stale: bool,
}

impl<T> Fetched<T> {
    /// The value.
    pub fn value(&self) -> &Arc<T> {
        &self.value
    }

    /// The value, owned.
    pub fn into_value(self) -> Arc<T> {
        self.value
    }

    /// Whether the value is past its TTL (see the type's docs).
    pub fn is_stale(&self) -> bool {
        self.stale
    }
}

impl<T> std::ops::Deref for Fetched<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

/// Why [`Cache::fetch`] has no value: the computation's own error, or its hard timeout
/// (when no fail-safe value could stand in).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use querycache::{Cache, EntryOptions, FetchError};
///
/// let cache = Cache::new();
/// let failed = cache
///     .fetch::<u32, _, _, _>("k", EntryOptions::new(), || async { Err("db down") })
///     .await;
/// assert!(matches!(failed, Err(FetchError::Failed("db down"))));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError<E> {
    /// The computation failed.
    #[error("{0}")]
    Failed(E),
    /// The computation passed its hard timeout and was abandoned.
    #[error(transparent)]
    TimedOut(TimedOut),
}

/// A computation abandoned at its [hard timeout](EntryOptions::hard_timeout).
///
/// Functions under `#[cached_query(hard_timeout = ..)]` return it through their error
/// type, which implements `From<TimedOut>`.
///
/// ```
/// let timeout = querycache::TimedOut::new("songs:popular", std::time::Duration::from_secs(2));
/// assert_eq!(timeout.key(), "songs:popular");
/// assert_eq!(
///     timeout.to_string(),
///     "computing `songs:popular` exceeded its hard timeout of 2s; gave up"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("computing `{key}` exceeded its hard timeout of {after:?}; gave up")]
pub struct TimedOut {
    key: String,
    after: Duration,
}

impl TimedOut {
    /// A timeout of the computation of `key` after `after`.
    pub fn new(key: &str, after: Duration) -> Self {
        TimedOut {
            key: key.to_owned(),
            after,
        }
    }

    /// The key whose computation timed out.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The hard timeout it passed.
    pub fn after(&self) -> Duration {
        self.after
    }
}

impl Cache {
    /// The value under `key`, or the value of `compute` — with every freshness setting of
    /// `options` honoured, since the computation owns what it needs and may outlive this
    /// call:
    ///
    /// * within the [`swr`](EntryOptions::swr) window, the stale value at once, and one
    ///   refresh in the background;
    /// * [`early_refresh`](EntryOptions::early_refresh) before expiry, in the background;
    /// * past the [`soft_timeout`](EntryOptions::soft_timeout), the stale value while the
    ///   computation finishes in the background; past the
    ///   [`hard_timeout`](EntryOptions::hard_timeout), [`FetchError::TimedOut`];
    /// * on an error, the [`fail_safe`](EntryOptions::fail_safe) value if there is one.
    ///
    /// As everywhere: one computation per key at a time in the process, and — with Redis —
    /// across instances, through a lease. An invalidated value is never served, stale or
    /// not.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use querycache::{Cache, EntryOptions};
    ///
    /// let cache = Cache::new();
    /// let options = EntryOptions::new()
    ///     .ttl_secs(60)
    ///     .swr(Duration::from_secs(30))
    ///     .hard_timeout(Duration::from_secs(2));
    /// let songs = cache
    ///     .fetch("songs:top", options, || async {
    ///         Ok::<_, std::io::Error>(vec!["Hey Jude".to_owned()])
    ///     })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(songs.len(), 1);
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`FetchError::Failed`] with the computation's error, or [`FetchError::TimedOut`],
    /// when no fail-safe value stands in.
    pub async fn fetch<T, E, F, Fut>(
        &self,
        key: &str,
        options: EntryOptions,
        compute: F,
    ) -> Result<Fetched<T>, FetchError<E>>
    where
        T: CacheValue,
        E: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.fetch_with(key, options, compute, |_: &T, ttl| ttl, |_: &E| true)
            .await
    }

    /// [`fetch`](Self::fetch) with a policy for the stored value's TTL, `ttl_of(&value,
    /// resolved_ttl)` (the HTTP layer's error answers live shorter), and a say on which
    /// errors are failures: `fails(&error)` is `false` for an error that is an answer of its
    /// own (the HTTP layer's 4xx), which a [fail-safe](EntryOptions::fail_safe) value never
    /// replaces.
    pub(crate) async fn fetch_with<T, E, F, Fut>(
        &self,
        key: &str,
        options: EntryOptions,
        compute: F,
        ttl_of: impl Fn(&T, Duration) -> Duration + Send + Sync + 'static,
        fails: impl Fn(&E) -> bool + Send + Sync,
    ) -> Result<Fetched<T>, FetchError<E>>
    where
        T: CacheValue,
        E: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        match self
            .read(key, options, compute, ttl_of, Detach, fails)
            .await
        {
            Ok(served) => Ok(Fetched {
                value: served.value,
                stale: served.stale,
            }),
            Err(ReadFailure::Compute(error)) => Err(FetchError::Failed(error)),
            Err(ReadFailure::TimedOut(timeout)) => Err(FetchError::TimedOut(timeout)),
        }
    }
}
