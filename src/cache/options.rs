//! [`EntryOptions`]: the TTL, tags and namespace of an entry.

use std::sync::Arc;
use std::time::Duration;

use crate::Tag;

/// The namespace of entries that name none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// How an entry is stored: its TTL, the tags it depends on, its namespace.
///
/// The TTL is, from most to least specific: [`ttl`](Self::ttl), the namespace's policy
/// (`CACHE_TTL_<NAMESPACE>`), the count-query default for [`count_query`](Self::count_query),
/// then `CACHE_DEFAULT_TTL`; whatever it is, `CACHE_MAX_TTL` caps it.
///
/// ```
/// use std::time::Duration;
/// use querycache::{EntryOptions, Tag};
///
/// let options = EntryOptions::new()
///     .ttl(Duration::from_secs(600))
///     .tag(Tag::model("songs"))
///     .tag(Tag::new("user:7").unwrap())
///     .namespace("songs");
/// assert_eq!(options.tags_ref().len(), 2);
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct EntryOptions {
    pub(crate) ttl: Option<Duration>,
    pub(crate) error_ttl: Option<Duration>,
    pub(crate) tags: Vec<Tag>,
    pub(crate) namespace: Option<Arc<str>>,
    pub(crate) count_query: bool,
    /// `jitter_percent`: up to this percentage of the TTL is taken off at random.
    pub(crate) jitter: Option<u8>,
    /// What happens at the edges of the entry's life: stale-while-revalidate, early
    /// refresh, fail-safe, timeouts.
    pub(crate) fresh: Freshness,
    /// The `#[cached_query]` function computing the entry, for the audit of undeclared
    /// dependencies (`CACHE_AUDIT`).
    pub(crate) origin: Option<&'static str>,
}

/// The freshness settings of [`EntryOptions`]; see the methods that set them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Freshness {
    pub(crate) swr: Option<Duration>,
    pub(crate) early_refresh: Option<f64>,
    pub(crate) fail_safe: Option<Duration>,
    pub(crate) fail_safe_throttle: Option<Duration>,
    pub(crate) soft_timeout: Option<Duration>,
    pub(crate) hard_timeout: Option<Duration>,
}

impl Freshness {
    /// Early refresh with `beta`; a beta that is not a positive number turns it off.
    pub(crate) fn set_early_refresh(&mut self, beta: f64) {
        self.early_refresh = (beta.is_finite() && beta > 0.0).then_some(beta);
    }
}

/// How often a failing key is retried under fail-safe when no throttle is given.
pub(crate) const DEFAULT_FAIL_SAFE_THROTTLE: Duration = Duration::from_secs(10);

impl EntryOptions {
    /// No TTL of its own, no tags, the default namespace.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the entry's TTL (capped by `CACHE_MAX_TTL`). A zero TTL stores nothing.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Sets the TTL in seconds.
    pub fn ttl_secs(self, secs: u64) -> Self {
        self.ttl(Duration::from_secs(secs))
    }

    /// Adds a tag the entry depends on.
    pub fn tag(mut self, tag: Tag) -> Self {
        self.tags.push(tag);
        self
    }

    /// Adds several tags.
    pub fn tags(mut self, tags: impl IntoIterator<Item = Tag>) -> Self {
        self.tags.extend(tags);
        self
    }

    /// Puts the entry in a namespace: its TTL policy, its statistics, and
    /// [`Cache::invalidate_namespace`](crate::Cache::invalidate_namespace).
    pub fn namespace(mut self, namespace: impl AsRef<str>) -> Self {
        self.namespace = Some(Arc::from(namespace.as_ref()));
        self
    }

    /// With [`Cache::get_or_compute_result`](crate::Cache::get_or_compute_result): how long
    /// an `Err` stays cached (default `CACHE_ERROR_TTL`).
    pub fn error_ttl(mut self, ttl: Duration) -> Self {
        self.error_ttl = Some(ttl);
        self
    }

    /// Lets the entry expire up to `percent`% of its TTL early, at random (default
    /// `CACHE_JITTER_PERCENT`, 0), so that entries written together do not all expire — and
    /// get recomputed — together. Values above 100 count as 100. Only expiry moves:
    /// invalidation is unaffected.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use querycache::{Cache, EntryOptions};
    ///
    /// let cache = Cache::new();
    /// let options = EntryOptions::new().ttl_secs(600).jitter_percent(10); // 540 s to 600 s
    /// cache.set("k", 1_u8, options).await.unwrap();
    /// assert_eq!(cache.get::<u8>("k").await.as_deref(), Some(&1));
    /// # }
    /// ```
    pub fn jitter_percent(mut self, percent: u8) -> Self {
        self.jitter = Some(percent.min(100));
        self
    }

    /// **Stale-while-revalidate**: for `window` after the entry's TTL has passed, a caller
    /// gets the stale value at once, and the first one starts a refresh (the namespace's
    /// default is `CACHE_SWR_<NAMESPACE>`).
    ///
    /// With [`Cache::fetch`](crate::Cache::fetch), which owns its computation, the refresh
    /// runs in the background and every caller, the one that triggered it included, gets
    /// the stale value. The borrowing methods ([`Cache::get_or_compute`](crate::Cache::get_or_compute)
    /// & co.) cannot outlive their caller's computation: there the caller that triggers the
    /// refresh waits for it, the others get the stale value.
    ///
    /// **Invariant kept**: expiry is softened, invalidation is not. An entry whose tags
    /// were invalidated is dead, never stale: it is not served, within the window or not.
    /// A failed refresh keeps the stale value until the window ends (counted in
    /// [`CacheStats::refresh_errors`](crate::stats::CacheStats::refresh_errors), logged once).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use querycache::{Cache, EntryOptions};
    ///
    /// let cache = Cache::new();
    /// let options = EntryOptions::new().ttl_secs(60).swr(Duration::from_secs(30));
    /// let first = cache.fetch("k", options, || async { Ok::<_, String>(1_u32) }).await.unwrap();
    /// assert!(!first.is_stale());
    /// # }
    /// ```
    pub fn swr(mut self, window: Duration) -> Self {
        self.fresh.swr = Some(window);
        self
    }

    /// **Early refresh** (XFetch, Vattani, Chierichetti and Lowenstein, VLDB 2015): a hit
    /// recomputes the entry before it expires with a probability that grows as expiry
    /// nears, in proportion to how long the entry's last computation took and to `beta`
    /// (1.0 is the paper's choice; larger refreshes earlier). A hot key is then refreshed
    /// by one of its many readers before anyone sees it expire; a cold key is not
    /// refreshed at all. At most one refresh per key runs at a time.
    ///
    /// **Invariant kept**: only the moment of recomputation moves; the refreshed value is
    /// stored under a snapshot taken before it was computed, as on any miss.
    ///
    /// ```
    /// let options = querycache::EntryOptions::new().ttl_secs(60).early_refresh(1.0);
    /// ```
    pub fn early_refresh(mut self, beta: f64) -> Self {
        self.fresh.set_early_refresh(beta);
        self
    }

    /// **Fail-safe**: when the computation fails (or passes its hard timeout), serve the
    /// last good value instead, if it is no older than `max_stale` past its TTL and was not
    /// invalidated; the answer is marked stale ([`Fetched::is_stale`](crate::Fetched::is_stale),
    /// `X-Cache: STALE` in the HTTP layer). The key is then retried at most once per
    /// [`fail_safe_throttle`](Self::fail_safe_throttle) (default 10 s): callers in between
    /// get the stale value without running the computation.
    ///
    /// **Invariant kept**: an invalidated value is never a fail-safe answer.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use querycache::{Cache, EntryOptions};
    ///
    /// let cache = Cache::new();
    /// let options = EntryOptions::new().ttl_secs(60).fail_safe(Duration::from_secs(3600));
    /// let value = cache.try_get_or_compute("k", options, || async { Ok::<_, String>(1_u8) }).await;
    /// assert_eq!(value.as_deref(), Ok(&1));
    /// # }
    /// ```
    pub fn fail_safe(mut self, max_stale: Duration) -> Self {
        self.fresh.fail_safe = Some(max_stale);
        self
    }

    /// With [`fail_safe`](Self::fail_safe): how often a failing key's computation is tried
    /// again (default 10 s).
    pub fn fail_safe_throttle(mut self, every: Duration) -> Self {
        self.fresh.fail_safe_throttle = Some(every);
        self
    }

    /// **Soft timeout**: when the computation takes longer than `after` and a stale value
    /// may be served (within the [`swr`](Self::swr) or [`fail_safe`](Self::fail_safe)
    /// window, not invalidated), serve it and let the computation finish in the background,
    /// where it updates the cache. Without such a value, keep waiting (up to the hard
    /// timeout). Honoured by [`Cache::fetch`](crate::Cache::fetch) under a tokio runtime,
    /// where its computation can be detached; the borrowing methods, and `fetch` polled by
    /// another executor, ignore it.
    ///
    /// ```
    /// let options = querycache::EntryOptions::new()
    ///     .swr(std::time::Duration::from_secs(60))
    ///     .soft_timeout(std::time::Duration::from_millis(200));
    /// ```
    pub fn soft_timeout(mut self, after: Duration) -> Self {
        self.fresh.soft_timeout = Some(after);
        self
    }

    /// **Hard timeout**: give up on a computation after `after`: it is cancelled, and the
    /// caller gets [`FetchError::TimedOut`](crate::FetchError::TimedOut) (or the fail-safe
    /// value, when there is one). Honoured by [`Cache::fetch`](crate::Cache::fetch) under a
    /// tokio runtime (it needs tokio's timer); the borrowing methods, which have no error of
    /// their own to return, ignore it.
    ///
    /// ```
    /// let options = querycache::EntryOptions::new().hard_timeout(std::time::Duration::from_secs(2));
    /// ```
    pub fn hard_timeout(mut self, after: Duration) -> Self {
        self.fresh.hard_timeout = Some(after);
        self
    }

    /// Marks the entry as a count query: without a TTL of its own or of its namespace, it
    /// gets `CACHE_COUNT_TTL` rather than `CACHE_DEFAULT_TTL`.
    pub fn count_query(mut self) -> Self {
        self.count_query = true;
        self
    }

    /// The tags given so far.
    pub fn tags_ref(&self) -> &[Tag] {
        &self.tags
    }

    /// The namespace, or [`DEFAULT_NAMESPACE`].
    pub fn namespace_name(&self) -> &str {
        self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
    }

    /// The tags an entry stored with these options depends on: the given ones, its
    /// namespace's, and `model:#all` when any of them is a model tag.
    pub(crate) fn dependencies(&self) -> Vec<Tag> {
        let mut deps = Vec::with_capacity(self.tags.len() + 2);
        deps.extend(self.tags.iter().cloned());
        deps.push(Tag::namespace(self.namespace_name()));
        if self.tags.iter().any(Tag::is_model) {
            deps.push(Tag::all_models());
        }
        deps.sort();
        deps.dedup();
        deps
    }
}
