//! The default database of every cache on a prefix, claimed once (`SET NX`, then `GET`):
//! the same commands on a single server and on a cluster (see `cache::databases`).

use super::RedisStore;
use crate::store::StoreError;

impl RedisStore {
    /// The key recording which database is the default one of every cache on this prefix:
    /// `<prefix>@default-database` (outside `<prefix>:*`, so `clear` keeps it: processes
    /// running on would otherwise disagree with one started after the clear).
    fn default_database_key(&self) -> String {
        format!("{}@default-database", self.prefix)
    }

    /// Claims `candidate` (a database's namespace hash) as the default database of every
    /// cache on this prefix unless one is recorded already (`SET NX`, no expiry), and
    /// returns the one recorded: every process sharing the store agrees on it, whatever
    /// order each meets its databases in.
    pub(crate) async fn claim_default_database(
        &self,
        candidate: &str,
    ) -> Result<String, StoreError> {
        let key = self.default_database_key();
        let mut conn = self.conn().await?;
        let _: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(candidate)
            .arg("NX")
            .query_async(&mut conn)
            .await?;
        let recorded: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut conn).await?;
        recorded.ok_or(StoreError::Vanished { key })
    }
}
