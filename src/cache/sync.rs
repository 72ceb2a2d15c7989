//! The synchronous face of the cache, for code that is not async: Diesel's sync API,
//! workers, CLIs. Each method waits for its async counterpart through the bridge of
//! `crate::runtime`: it works outside any tokio runtime (querycache then drives its Redis
//! connections on a small runtime of its own), on a multi-thread runtime (through
//! `block_in_place`), and on a current-thread runtime (the operation runs on querycache's
//! runtime while the thread waits; `try_get_or_compute_blocking` then skips waiting for a
//! concurrent computation of the same key).

use std::sync::Arc;

use super::{Cache, CacheValue};
use crate::runtime::Bridge;
use crate::{EntryOptions, Error, Tag};

impl Cache {
    /// [`get`](Cache::get), waiting for it.
    ///
    /// ```
    /// use querycache::{Cache, EntryOptions};
    ///
    /// let cache = Cache::new();
    /// cache.set_blocking("k", 7_u32, EntryOptions::new()).unwrap();
    /// assert_eq!(cache.get_blocking::<u32>("k").as_deref(), Some(&7));
    /// ```
    pub fn get_blocking<T: CacheValue>(&self, key: &str) -> Option<Arc<T>> {
        // Read here: the lookup may move to another thread, outside this one's scope.
        if crate::cache::bypass::active() {
            self.trace_bypass(key);
            self.count_bypass();
            return None;
        }
        let (cache, key) = (self.clone(), key.to_owned());
        Bridge::current().wait(async move { cache.get::<T>(&key).await })
    }

    /// [`set`](Cache::set), waiting for it.
    ///
    /// ```
    /// use querycache::{Cache, EntryOptions, Tag};
    ///
    /// let cache = Cache::new();
    /// cache.set_blocking("songs:count", 3_u64, EntryOptions::new().tag(Tag::model("songs"))).unwrap();
    /// assert!(cache.set_blocking("", 1_u8, EntryOptions::new()).is_err());
    /// ```
    ///
    /// # Errors
    /// As [`set`](Cache::set): an invalid key, a value that cannot be serialized.
    pub fn set_blocking<T: CacheValue>(
        &self,
        key: &str,
        value: T,
        options: EntryOptions,
    ) -> Result<(), Error> {
        let (cache, key) = (self.clone(), key.to_owned());
        Bridge::current().wait(async move { cache.set(&key, value, options).await })
    }

    /// [`invalidate_tags`](Cache::invalidate_tags), waiting for it.
    ///
    /// ```
    /// use querycache::{Cache, EntryOptions, Tag};
    ///
    /// let cache = Cache::new();
    /// cache.set_blocking("a", 1_u8, EntryOptions::new().tag(Tag::model("songs"))).unwrap();
    /// cache.invalidate_tags_blocking([Tag::model("songs")]);
    /// assert!(cache.get_blocking::<u8>("a").is_none());
    /// ```
    pub fn invalidate_tags_blocking(&self, tags: impl IntoIterator<Item = Tag>) -> usize {
        let (cache, tags): (_, Vec<Tag>) = (self.clone(), tags.into_iter().collect());
        Bridge::current().wait(async move { cache.invalidate_tags(tags).await })
    }

    /// [`try_get_or_compute`](Cache::try_get_or_compute) with a synchronous computation,
    /// which runs on the calling thread (it may borrow a connection).
    ///
    /// ```
    /// use querycache::{Cache, EntryOptions};
    ///
    /// let cache = Cache::new();
    /// let first = cache.try_get_or_compute_blocking("k", EntryOptions::new(), || Ok::<_, String>(1_u32));
    /// let again = cache.try_get_or_compute_blocking("k", EntryOptions::new(), || Ok::<_, String>(2_u32));
    /// assert_eq!((*first.unwrap(), *again.unwrap()), (1, 1));
    /// ```
    ///
    /// # Errors
    /// The computation's own error (not cached).
    pub fn try_get_or_compute_blocking<T, E>(
        &self,
        key: &str,
        options: EntryOptions,
        compute: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E>
    where
        T: CacheValue,
    {
        match Bridge::current() {
            Bridge::Here(here) => {
                here.wait(self.try_get_or_compute(key, options, || async move { compute() }))
            }
            Bridge::Detached => self.compute_detached(key, options, compute, |_: &T, ttl| ttl),
        }
    }
}
