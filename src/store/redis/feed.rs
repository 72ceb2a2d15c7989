//! What the instances sharing this Redis know of a change feed (see `crate::feed`): who
//! consumes it (a lease, so that one instance per deployment holds the database's slot) and
//! how far its changes were applied (the position, so that a successor can tell whether it
//! resumes where the last consumer stopped).

use std::time::Duration;

use super::RedisStore;
use crate::store::StoreError;

/// Takes the lease when it is free, or renews it when `ARGV[1]` holds it: 1 if the caller
/// holds it afterwards, 0 if another does.
const TAKE_OR_RENEW: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
";

impl RedisStore {
    fn feed_lease_key(&self, name: &str) -> String {
        format!("{}@feed-lease:{name}", self.prefix)
    }

    fn feed_position_key(&self, name: &str) -> String {
        format!("{}@feed:{name}", self.prefix)
    }

    /// Takes or renews the consumer lease of the feed `name` for `ttl` under `token`:
    /// whether `token` holds it now.
    pub(crate) async fn feed_lease(
        &self,
        name: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let ttl_ms = u64::try_from(ttl.as_millis())
            .unwrap_or(u64::MAX / 4)
            .max(1);
        let mut conn = self.conn().await?;
        let held: u64 = redis::Script::new(TAKE_OR_RENEW)
            .key(self.feed_lease_key(name))
            .arg(token)
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await?;
        Ok(held == 1)
    }

    /// Gives the consumer lease of `name` back if `token` still holds it.
    pub(crate) async fn feed_release(&self, name: &str, token: &str) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        self.release
            .key(self.feed_lease_key(name))
            .arg(token)
            .invoke_async::<u64>(&mut conn)
            .await?;
        Ok(())
    }

    /// The position recorded for the feed `name`, as its consumer wrote it.
    pub(crate) async fn feed_position(&self, name: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn().await?;
        Ok(redis::cmd("GET")
            .arg(self.feed_position_key(name))
            .query_async(&mut conn)
            .await?)
    }

    /// Records `position` for the feed `name` (no expiry).
    pub(crate) async fn set_feed_position(
        &self,
        name: &str,
        position: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let () = redis::cmd("SET")
            .arg(self.feed_position_key(name))
            .arg(position)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }
}
