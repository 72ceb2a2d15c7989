//! The lookup: the entry under a key, served only if the snapshot in its header is still
//! current.
//!
//! Single server: the hinted pipeline when the entry's version keys are known
//! ([`hints`]), else the get script ([`GET_BODY`] after
//! [`CURRENT_FN`](super::CURRENT_FN)), which unlinks an outdated entry on the spot — one
//! round trip for a hit either way. Cluster: `GET` and `PTTL` of the entry, then one
//! `MGET` of its versions compared here (two round trips for a hit), and a best-effort
//! `UNLINK` of an outdated entry.

use std::time::Duration;

use redis::AsyncCommands;

use super::{Conn, RedisStore, hints, versions_current};
use crate::store::{StoreError, codec};

pub(super) const GET_BODY: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return false end
local state = current(v)
if state == 1 then return {1, v, redis.call('PTTL', KEYS[1])} end
if state == 0 then
  redis.call('UNLINK', KEYS[1])
  return {0, ''}
end
return {2, v}
";

/// What a lookup in Redis found.
#[derive(Debug)]
pub(crate) enum RawLookup {
    /// No entry.
    Miss,
    /// An entry whose tags moved (already unlinked).
    Invalidated,
    /// A current entry: its framed bytes, and how long it has left to live.
    Hit(Vec<u8>, Option<Duration>),
    /// Bytes that are not a payload of this format version.
    Garbage,
}

impl RedisStore {
    /// The entry under `key`, validated against its tags' current versions: on a single
    /// server by one pipeline when the entry's version keys are known ([`hints`]), else
    /// (or when the pipeline cannot decide) by the script — one round trip for a hit
    /// either way; on a cluster by the store (two, see the module docs). A hit says how
    /// long the entry has left in Redis when it can, always with `with_ttl` on a single
    /// server (one more command in the pipeline).
    pub(crate) async fn lookup(&self, key: &str, with_ttl: bool) -> Result<RawLookup, StoreError> {
        let entry = self.entry_key(key);
        // What a hit needs is awaited here; the rest (the script, a cluster) is boxed, so
        // that a hit's future carries none of it.
        match self.conn().await? {
            Conn::Single(mut conn) => {
                let generation = self.incarnation_checked(&mut conn).await?;
                if let Some(hint) = self.hints.get(key) {
                    match hints::lookup(&mut conn, &entry, &hint, with_ttl).await? {
                        hints::Hinted::Decided(found) => {
                            return Ok(self.checked(found, generation));
                        }
                        hints::Hinted::AskScript => {}
                    }
                }
                Box::pin(self.lookup_by_script(key, entry, conn, generation)).await
            }
            Conn::Cluster(mut conn) => {
                let generation = self.cluster_incarnation_checked(&mut conn).await?;
                let found = Box::pin(lookup_on_cluster(entry, conn)).await?;
                Ok(self.checked(found, generation))
            }
        }
    }

    /// `found`, unless it is a hit answered after the incarnation flag was reset: it may
    /// come from a new incarnation not checked yet (see `epoch`), and is then a miss.
    fn checked(&self, found: RawLookup, generation: u64) -> RawLookup {
        match found {
            RawLookup::Hit(..) if !self.incarnation.still(generation) => {
                tracing::debug!("a Redis hit answered across a reconnection: dropped");
                RawLookup::Miss
            }
            found => found,
        }
    }

    /// The lookup by the get script (no hint, or one the pipeline could not decide with),
    /// which learns the hint of a hit.
    async fn lookup_by_script(
        &self,
        key: &str,
        entry: String,
        mut conn: super::epoch::Watched,
        generation: u64,
    ) -> Result<RawLookup, StoreError> {
        let reply: Option<Vec<redis::Value>> = self.get.key(entry).invoke_async(&mut conn).await?;
        let found = self.checked(parse_lookup(reply), generation);
        if let RawLookup::Hit(bytes, _) = &found {
            self.hints.learn_from(key, bytes);
        }
        Ok(found)
    }
}

/// The lookup on a cluster: see the module docs.
async fn lookup_on_cluster(
    entry: String,
    mut conn: super::WatchedCluster,
) -> Result<RawLookup, StoreError> {
    let (bytes, pttl): (Option<Vec<u8>>, i64) = redis::pipe()
        .get(&entry)
        .pttl(&entry)
        .query_async(&mut conn)
        .await?;
    let Some(bytes) = bytes else {
        return Ok(RawLookup::Miss);
    };
    let current = match codec::header(&bytes) {
        Ok(header) => versions_current(&mut conn, &header.versions).await?,
        Err(_) => return Ok(RawLookup::Garbage),
    };
    if current {
        let ttl = u64::try_from(pttl).ok().map(Duration::from_millis);
        return Ok(RawLookup::Hit(bytes, ttl));
    }
    // Best effort, and not atomic with the check: should another instance store a fresh
    // entry in between, it is unlinked too — a later miss, never a stale hit.
    if let Err(error) = conn.unlink::<_, u64>(&entry).await {
        tracing::debug!(%error, "unlinking an outdated entry failed");
    }
    Ok(RawLookup::Invalidated)
}

/// Reads the get script's reply: nil, `{0, ''}`, `{1, payload, pttl}` or `{2, payload}`.
fn parse_lookup(reply: Option<Vec<redis::Value>>) -> RawLookup {
    use redis::Value;
    let Some(items) = reply else {
        return RawLookup::Miss;
    };
    let mut items = items.into_iter();
    match (items.next(), items.next(), items.next()) {
        // The payload is moved out of the reply, not copied.
        (Some(Value::Int(1)), Some(Value::BulkString(bytes)), pttl) => {
            let ttl = match pttl {
                Some(Value::Int(ms)) => u64::try_from(ms).ok().map(Duration::from_millis),
                _ => None,
            };
            RawLookup::Hit(bytes, ttl)
        }
        (Some(Value::Int(0)), ..) => RawLookup::Invalidated,
        _ => RawLookup::Garbage,
    }
}
