//! The snapshot: the current versions of an entry's tags, read before its computation, a
//! missing one created with a fresh token (never a counter: a lost version comes back as a
//! token no entry has), plus the removal marker (and on a single server the store epoch).
//!
//! Single server: the [`SNAPSHOT`] script, one round trip. Cluster: per version key
//! `SET key token NX GET PX ttl` and `PEXPIRE key ttl GT` pipelined to its slot's master,
//! every key in parallel (one round trip).

use futures_util::future::try_join_all;

use super::{Conn, RedisStore, fresh_token};
use crate::Tag;
use crate::store::StoreError;

/// The snapshot: the versions of KEYS, a missing one created with the fresh token given
/// for it. A version it creates, or finds about to expire, is given `ARGV[1]` (the
/// provisional lifetime: long enough for a computation to finish and store its entry, which
/// then extends it); one that lives longer is left alone. So a read that stores nothing —
/// a request its handler rejects, an answer that is not cached — leaves nothing behind for
/// long.
pub(super) const SNAPSHOT: &str = r"
local out = {}
local keep = tonumber(ARGV[1])
for i, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if not v then
    v = ARGV[i + 1]
    redis.call('SET', k, v, 'PX', keep)
  elseif redis.call('PTTL', k) < keep then
    redis.call('PEXPIRE', k, keep)
  end
  out[i] = v
end
return out
";

/// How long a version key created by a snapshot lives unless an entry that records it is
/// stored (which extends it to the entry's lifetime): long enough for a computation to
/// finish, short enough that reads which store nothing — requests their handler rejects,
/// answers that are not cached — leave nothing behind for long. A computation that takes
/// longer finds its version gone and does not store its value (safe, only a miss).
pub(crate) const PROVISIONAL_VERSION_TTL_MS: u64 = 5 * 60 * 1000;

/// The versions an entry is computed under: `(version key, token)` pairs.
#[derive(Debug, Clone)]
pub(crate) struct RedisSnapshot {
    pub(crate) versions: std::sync::Arc<[(String, String)]>,
    /// The removal marker when the snapshot was taken.
    pub(crate) removals: String,
}

impl RedisSnapshot {
    /// This snapshot and `later` (of other tags, taken after it): both's versions, this
    /// one's removal marker.
    pub(crate) fn joined(&self, later: &RedisSnapshot) -> RedisSnapshot {
        RedisSnapshot {
            versions: self
                .versions
                .iter()
                .chain(later.versions.iter())
                .cloned()
                .collect(),
            removals: self.removals.clone(),
        }
    }

    /// A hash of the versions (not of the removal marker: removing keys changes no data).
    /// The same on every instance that shares the server.
    pub(crate) fn fingerprint(&self) -> u64 {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        // A domain of its own: a Redis fingerprint never equals a memory one.
        hasher.update(b"querycache:redis\0");
        for (version_key, token) in self.versions.iter() {
            hasher.update(version_key.as_bytes());
            hasher.update(b"\0");
            hasher.update(token.as_bytes());
            hasher.update(b"\0");
        }
        hasher.digest()
    }
}

impl RedisStore {
    /// Current versions of `tags`, created where missing, and the removal marker.
    pub(crate) async fn take_snapshot(&self, tags: &[Tag]) -> Result<RedisSnapshot, StoreError> {
        // The removal marker travels as one more version, split off at the end. The epoch
        // is one more version too, just before it: every entry records it (see `epoch`).
        let keys: Vec<String> = tags
            .iter()
            .map(|t| self.version_key(t))
            .chain(std::iter::once(self.epoch_key()))
            .chain(std::iter::once(self.removals_key()))
            .collect();
        let tokens = match self.conn().await? {
            Conn::Single(mut conn) => {
                self.incarnation_checked(&mut conn).await?;
                let mut invocation = self.snapshot.prepare_invoke();
                invocation.arg(PROVISIONAL_VERSION_TTL_MS);
                for key in &keys {
                    invocation.key(key).arg(fresh_token());
                }
                let tokens: Vec<String> = invocation.invoke_async(&mut conn).await?;
                tokens
            }
            Conn::Cluster(mut conn) => {
                self.cluster_incarnation_checked(&mut conn).await?;
                // One pipeline per tag (both commands on its key, so on its slot); the tags
                // in parallel. `SET NX GET` answers the current token, or nil when it set
                // the fresh one; the PEXPIRE ... GT gives an existing version the
                // provisional lifetime if it had less (see `SNAPSHOT`).
                try_join_all(keys.iter().map(|key| {
                    let mut conn = conn.clone();
                    let token = fresh_token();
                    async move {
                        let (old, _): (Option<String>, i64) = redis::pipe()
                            .cmd("SET")
                            .arg(key)
                            .arg(&token)
                            .arg("NX")
                            .arg("GET")
                            .arg("PX")
                            .arg(PROVISIONAL_VERSION_TTL_MS)
                            .cmd("PEXPIRE")
                            .arg(key)
                            .arg(PROVISIONAL_VERSION_TTL_MS)
                            .arg("GT")
                            .query_async(&mut conn)
                            .await?;
                        Ok::<_, redis::RedisError>(old.unwrap_or(token))
                    }
                }))
                .await?
            }
        };
        let mut tokens = tokens;
        let returned = tokens.len();
        let (true, Some(removals)) = (returned == keys.len(), tokens.pop()) else {
            return Err(StoreError::ReplyLength {
                command: "snapshot",
                got: returned,
                asked: keys.len(),
            });
        };
        Ok(RedisSnapshot {
            versions: keys.into_iter().zip(tokens).collect(),
            removals,
        })
    }
}
