//! Tag fingerprints: one number that moves whenever any of a set of tags is invalidated.
//!
//! HTTP deep ETags ([`crate::http::CacheResponse`]) are derived from them: a client's ETag
//! stays valid exactly as long as the versions of the tags behind the response.

use super::Cache;
use crate::config::InvalidationStrategy;
use crate::store::Store;
use crate::{EntryOptions, Tag};

impl Cache {
    /// A hash of the *current versions* of `tags`: it changes whenever one of them is
    /// invalidated, or the cache is cleared, and only then (and, rarely, when a version is
    /// lost and re-created: a spurious change, never a missed one).
    ///
    /// The versions are read the way an entry's snapshot reads them: atomic loads in the
    /// memory store; on a Redis-backed store, the Redis versions in one round trip, so that
    /// every instance sharing the server computes the same fingerprint — or, while Redis
    /// does not answer, this process's versions (a different fingerprint, never an equal
    /// one). As for entries, `model:#all` (bumped by writes that could not be classified)
    /// is added when any tag is a model tag. The order of `tags` does not matter.
    ///
    /// `None` when the cache is disabled (`CACHE_ENABLED=false`), under
    /// `CACHE_INVALIDATION_STRATEGY=ttl` (nothing is ever invalidated there, so a fingerprint
    /// would never move), or when the store cannot answer.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use querycache::{Cache, Tag};
    ///
    /// let cache = Cache::new();
    /// let tags = [Tag::row("songs", 7), Tag::bulk("songs")];
    /// let before = cache.tag_fingerprint(&tags).await.unwrap();
    ///
    /// cache.invalidate_tags([Tag::row("songs", 8)]).await; // another row
    /// assert_eq!(cache.tag_fingerprint(&tags).await, Some(before));
    ///
    /// cache.invalidate_tags([Tag::row("songs", 7)]).await; // this row
    /// assert_ne!(cache.tag_fingerprint(&tags).await, Some(before));
    ///
    /// let off = Cache::builder().enabled(false).build().unwrap();
    /// assert_eq!(off.tag_fingerprint(&tags).await, None);
    /// # }
    /// ```
    pub async fn tag_fingerprint(&self, tags: &[Tag]) -> Option<u64> {
        let mut deps = tags.to_vec();
        if deps.iter().any(Tag::is_model) {
            deps.push(Tag::all_models());
        }
        deps.sort();
        deps.dedup();
        self.fingerprint_of(&deps).await
    }

    /// The fingerprint of everything an entry stored with `options` depends on: its tags,
    /// its namespace's tag, and `model:#all` for model tags.
    /// Inside a computation: the fingerprint of the snapshot it runs under (what
    /// [`entry_fingerprint`](Self::entry_fingerprint) answered when the snapshot was taken).
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn computation_fingerprint(&self) -> Option<u64> {
        if self.inner.config.strategy == InvalidationStrategy::Ttl {
            return None;
        }
        crate::store::computation_fingerprint()
    }

    /// Inside a computation that has observed reads so far: the fingerprint of the snapshot
    /// it runs under joined to that of the versions it observed (see
    /// `Observation::fingerprint`); `None` when it observed none (its deep ETag is then
    /// [`computation_fingerprint`](Self::computation_fingerprint)'s), or outside one.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) async fn observed_fingerprint(&self) -> Option<u64> {
        if self.inner.config.strategy == InvalidationStrategy::Ttl {
            return None;
        }
        let observed = crate::store::observation()?.fingerprint().await?;
        let declared = crate::store::computation_fingerprint()?;
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(&declared.to_le_bytes());
        hasher.update(&observed.to_le_bytes());
        Some(hasher.digest())
    }

    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) async fn entry_fingerprint(&self, options: &EntryOptions) -> Option<u64> {
        self.fingerprint_of(&options.dependencies()).await
    }

    async fn fingerprint_of(&self, deps: &[Tag]) -> Option<u64> {
        let config = &self.inner.config;
        if !config.enabled || config.strategy == InvalidationStrategy::Ttl {
            return None;
        }
        match self.inner.store.fingerprint(deps).await {
            Ok(fingerprint) => Some(fingerprint),
            Err(error) => {
                self.store_error("fingerprint", &format!("{deps:?}"), &error);
                None
            }
        }
    }
}
