//! The change feed's shared state through the tiered store (see `store::redis::feed`):
//! every call goes through the breaker and the Redis timeout like any other, and answers an
//! error while Redis cannot.

use std::time::Duration;

use super::TieredStore;
use crate::store::StoreError;

impl TieredStore {
    fn out(&self) -> StoreError {
        StoreError::Out {
            last_error: self.inner.last_error.lock().clone(),
        }
    }

    /// See `RedisStore::feed_lease`.
    pub(crate) async fn feed_lease(
        &self,
        name: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let s = &self.inner;
        s.call("feed lease", s.redis.feed_lease(name, token, ttl))
            .await
            .map_err(|()| self.out())
    }

    /// See `RedisStore::feed_release`.
    pub(crate) async fn feed_release(&self, name: &str, token: &str) -> Result<(), StoreError> {
        let s = &self.inner;
        s.call("feed lease", s.redis.feed_release(name, token))
            .await
            .map_err(|()| self.out())
    }

    /// See `RedisStore::feed_position`.
    pub(crate) async fn feed_position(&self, name: &str) -> Result<Option<String>, StoreError> {
        let s = &self.inner;
        s.call("feed position", s.redis.feed_position(name))
            .await
            .map_err(|()| self.out())
    }

    /// See `RedisStore::set_feed_position`.
    pub(crate) async fn set_feed_position(
        &self,
        name: &str,
        position: &str,
    ) -> Result<(), StoreError> {
        let s = &self.inner;
        s.call("feed position", s.redis.set_feed_position(name, position))
            .await
            .map_err(|()| self.out())
    }
}
