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
}

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
    /// `CACHE_TTL_JITTER`, 0), so that entries written together do not all expire — and
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
