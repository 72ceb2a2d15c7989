//! The write path: invalidation by tags, patterns and namespaces.

use std::sync::atomic::Ordering;

use super::Cache;
use crate::config::InvalidationStrategy;
use crate::store::Store;
use crate::{Error, Tag};

impl Cache {
    /// Invalidates `tags`: every entry depending on one of them becomes a miss, in time
    /// independent of how many entries that is. Returns how many of the tags were given a
    /// new version: every tag with the memory store (which keeps versions only for the
    /// tags invalidated lately, whatever depends on them); with Redis, only the tags that
    /// had one (a tag nothing ever depended on has none and needs no work).
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
                self.inner.events.tags(&tags);
                tracing::debug!(tier = self.inner.store.tier(), tags = ?tags, "Cache INVALIDATED: {} tags", tags.len());
                n
            }
            Err(error) => {
                self.store_error("invalidate", &format!("{tags:?}"), &error);
                0
            }
        }
    }

    /// Invalidation that comes from a write seen by an ORM integration, of tags whose table
    /// dependencies were already added (see `invalidate_written_in`): applied under the
    /// `smart` strategy only.
    pub(crate) async fn invalidate_written_expanded(&self, tags: Vec<Tag>) -> usize {
        if self.inner.config.strategy != InvalidationStrategy::Smart {
            return 0;
        }
        self.invalidate_tags(tags).await
    }

    /// Invalidation from a change feed (`crate::feed`): like a write seen by an ORM
    /// integration (applied under the `smart` strategy only), but the store's error is
    /// returned, not logged: a feed acknowledges a transaction only once it was applied.
    #[cfg_attr(
        not(any(
            feature = "feed-postgres",
            feature = "feed-sqlite",
            feature = "feed-mysql"
        )),
        allow(dead_code)
    )]
    pub(crate) async fn invalidate_feed(
        &self,
        tags: Vec<Tag>,
    ) -> Result<usize, crate::store::StoreError> {
        if tags.is_empty() || self.inner.config.strategy != InvalidationStrategy::Smart {
            return Ok(0);
        }
        let n = self.inner.store.invalidate(&tags).await?;
        self.inner.stats.invalidations(tags.len() as u64);
        self.inner.events.tags(&tags);
        tracing::debug!(tier = self.inner.store.tier(), tags = ?tags, "Cache INVALIDATED by the change feed: {} tags", tags.len());
        Ok(n)
    }

    /// [`invalidate_written_expanded`](Self::invalidate_written_expanded) from code that cannot wait: a `Drop`
    /// (perhaps on an async worker) for writes whose outcome is unknown (a cancelled
    /// statement or COMMIT, a connection dropped inside a transaction). The memory tier, if
    /// there is one, is bumped before this returns; the full invalidation (Redis, the
    /// channel) runs in the background on querycache's own runtime. An extra invalidation
    /// only costs a recomputation. `tags` already hold their table dependencies (see
    /// `invalidate_written_detached_in`).
    #[cfg_attr(not(feature = "diesel"), allow(dead_code))]
    pub(crate) fn invalidate_written_detached_expanded(&self, tags: Vec<Tag>) {
        if tags.is_empty() || self.inner.config.strategy != InvalidationStrategy::Smart {
            return;
        }
        if let Some(memory) = self.inner.store.memory_to_bump() {
            memory.bump(&tags);
        }
        tracing::debug!(tags = ?tags, "Cache INVALIDATED (detached): {} tags", tags.len());
        let cache = self.clone();
        crate::runtime::spawn_detached(async move {
            cache.invalidate_written_expanded(tags).await;
        });
    }

    /// A write's `tags` plus `model:<t>` and `model:<t>#bulk` of every table `t` a table
    /// they name is declared to also write (triggers and the like, which no statement text
    /// shows). Used for invalidation, and by transactions to know which tables they wrote.
    #[cfg_attr(not(any(feature = "sea-orm", feature = "diesel")), allow(dead_code))]
    pub(crate) fn with_table_dependencies(&self, tags: Vec<Tag>) -> Vec<Tag> {
        self.inner.config.table_dependencies.expand(tags)
    }

    /// Removes every key matching the glob `pattern` (`*`, `?`, `[abc]`, `[a-z]`, `[!abc]`;
    /// `[*]` for a literal `*`; `user:*` matches `user:1:songs`). Returns how many were
    /// removed. The rules are the [`glob`](https://docs.rs/glob) crate's on every store: on
    /// Redis, SCAN finds the candidates and querycache matches them (Redis' own `MATCH`
    /// reads `[^a]`, `\` and `?` differently).
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
    /// assert!(cache.invalidate_pattern(&"*".repeat(5000)).await.is_err(), "longer than any key");
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::Pattern`] when `pattern` is not a valid glob, or is longer than
    /// [`MAX_KEY_LEN`](crate::key::MAX_KEY_LEN) bytes.
    pub async fn invalidate_pattern(&self, pattern: &str) -> Result<usize, Error> {
        // No key is longer than `MAX_KEY_LEN`: a longer pattern is a mistake or an attack (a
        // compiled pattern is kept by the memory store's removal log, and sent to every
        // instance).
        if pattern.len() > crate::key::MAX_KEY_LEN {
            return Err(Error::Pattern {
                pattern: format!("{}…", pattern.chars().take(64).collect::<String>()),
                reason: format!(
                    "is {} bytes long; the limit is {} (the longest key)",
                    pattern.len(),
                    crate::key::MAX_KEY_LEN
                ),
            });
        }
        let glob = glob::Pattern::new(pattern).map_err(|e| Error::Pattern {
            pattern: pattern.to_owned(),
            reason: e.msg.to_owned(),
        })?;
        match self.inner.store.remove_matching(&glob, pattern).await {
            Ok(n) => {
                self.inner.stats.invalidations(n as u64);
                self.inner.events.cleared();
                tracing::debug!(
                    tier = self.inner.store.tier(),
                    pattern = %crate::key::shown(pattern),
                    removed = n,
                    "Cache INVALIDATED: pattern {}, {n} keys",
                    crate::key::shown(pattern)
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
                self.inner.events.tags(std::slice::from_ref(&tag));
                tracing::debug!(
                    tier = self.inner.store.tier(),
                    namespace,
                    "Cache INVALIDATED: namespace {namespace}"
                );
            }
            Err(error) => self.store_error("invalidate_namespace", namespace, &error),
        }
    }

    /// Counts a write finishing in the background until the returned guard is dropped.
    #[cfg(feature = "sea-orm")]
    pub(crate) fn background_write(&self) -> BackgroundWrite {
        self.inner.background_writes.fetch_add(1, Ordering::Relaxed);
        BackgroundWrite(self.clone())
    }

    /// How many writes are finishing in the background.
    pub(crate) fn writes_in_flight(&self) -> u64 {
        self.inner.background_writes.load(Ordering::Relaxed)
    }
}

/// A write finishing in the background, counted in [`Health::writes_in_flight`](crate::Health::writes_in_flight)
/// while this lives.
#[cfg(feature = "sea-orm")]
pub(crate) struct BackgroundWrite(Cache);

#[cfg(feature = "sea-orm")]
impl Drop for BackgroundWrite {
    fn drop(&mut self) {
        self.0
            .inner
            .background_writes
            .fetch_sub(1, Ordering::Relaxed);
    }
}
