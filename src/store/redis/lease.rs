//! Computation leases: `SET NX PX` on the lease key of a missing key, taken by the instance
//! that computes it, given back by compare-and-delete ([`RELEASE`]). The same commands on a
//! single server and on a cluster; only the lease key differs.

use std::time::Duration;

use super::{Conn, RedisStore};
use crate::store::StoreError;

/// The release: deletes the lease (`KEYS[1]`) only if the holder's token (`ARGV[1]`) still
/// holds it.
pub(super) const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

impl RedisStore {
    /// The lease key of `key`: `<prefix>:l:<key>` on a cluster; on a single server
    /// `<prefix>:l:<run_id, 12 characters>:<key>`, so that a lease restored with an older
    /// snapshot (a restart from RDB/AOF, a promoted replica), whose holder gave it back long
    /// ago, holds no caller up for its TTL: each incarnation has leases of its own.
    async fn lease_key(&self, conn: &mut Conn, key: &str) -> Result<String, StoreError> {
        match conn {
            Conn::Single(watched) => {
                self.incarnation_checked(watched).await?;
                match self.incarnation.run_id() {
                    Some(run_id) => {
                        let run = run_id.get(..12).unwrap_or(&run_id);
                        Ok(format!("{}:l:{run}:{key}", self.prefix))
                    }
                    None => Ok(format!("{}:l:{key}", self.prefix)),
                }
            }
            Conn::Cluster(_) => Ok(format!("{}:l:{key}", self.prefix)),
        }
    }

    /// Takes the computation lease of `key` for `ttl` under `token` (`SET NX PX`): whether
    /// it was free. Whoever holds it computes the key; the lease expires by itself if its
    /// holder dies.
    pub(crate) async fn take_lease(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let ttl_ms = u64::try_from(ttl.as_millis())
            .unwrap_or(u64::MAX / 4)
            .max(1);
        let mut conn = self.conn().await?;
        let lease = self.lease_key(&mut conn, key).await?;
        let taken: Option<String> = redis::cmd("SET")
            .arg(lease)
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut conn)
            .await?;
        Ok(taken.is_some())
    }

    /// Gives the lease of `key` back, if `token` still holds it (it may have expired and
    /// been taken by another instance since).
    pub(crate) async fn release_lease(&self, key: &str, token: &str) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let lease = self.lease_key(&mut conn, key).await?;
        self.release
            .key(lease)
            .arg(token)
            .invoke_async::<u64>(&mut conn)
            .await?;
        Ok(())
    }
}
