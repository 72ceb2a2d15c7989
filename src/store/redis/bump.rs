//! The bump: a fresh token for each tag that has a version (invalidation in O(tags)), and
//! the invalidation message published once Redis holds it.
//!
//! Single server: the [`BUMP`] script, which publishes too; on a full Redis, the
//! [`BUMP_FULL`] script, which deletes the versions instead. Cluster: `SET ... XX KEEPTTL`
//! per tag in parallel (on a full Redis, `DEL`), then `PUBLISH` (two round trips).

use futures_util::future::try_join_all;
use redis::AsyncCommands;

use super::{Conn, RedisStore, Watched, fresh_token};
use crate::Tag;
use crate::store::StoreError;

/// The bump: a fresh token for each existing version, which keeps its lifetime (the entries
/// that recorded the old token set it; a snapshot or a put extends it again when needed).
pub(super) const BUMP: &str = r"
local n = 0
for i, k in ipairs(KEYS) do
  if redis.call('SET', k, ARGV[i + 2], 'XX', 'KEEPTTL') then
    n = n + 1
  end
end
if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return n
";

/// The bump of a full Redis (`maxmemory` reached under `noeviction`, where the plain bump's
/// `SET`s are refused with its `PUBLISH`): the versions are deleted instead — a lost
/// version comes back as a fresh token no entry has, so every entry that recorded it is
/// dead, as a bump makes it — and the message is published. `allow-oom` lets the script
/// run when full; it only deletes and publishes, which free memory or need none (Redis 7's
/// script flags: older servers refuse the script, and the write then waits for the
/// replay as any failed invalidation does).
pub(super) const BUMP_FULL: &str = r"#!lua flags=allow-oom
local n = redis.call('DEL', unpack(KEYS))
if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return n
";

impl RedisStore {
    /// Gives each tag that has a version a fresh one, and publishes `message` (if not
    /// empty) on the invalidation channel — in the same script on a single server, after
    /// every version moved on a cluster — so that no instance can hear of the bump before
    /// Redis holds it. Returns how many tags had a version.
    pub(crate) async fn bump(&self, tags: &[Tag], message: &[u8]) -> Result<usize, StoreError> {
        match self.conn().await? {
            Conn::Single(mut conn) => {
                let mut invocation = self.bump.prepare_invoke();
                invocation.arg(self.channel()).arg(message);
                for tag in tags {
                    invocation.key(self.version_key(tag)).arg(fresh_token());
                }
                match invocation.invoke_async(&mut conn).await {
                    Ok(moved) => Ok(moved),
                    Err(error) if is_out_of_memory(&error) && !tags.is_empty() => {
                        self.bump_full(&mut conn, tags, message, error).await
                    }
                    Err(error) => Err(error.into()),
                }
            }
            Conn::Cluster(mut conn) => {
                let moved = try_join_all(tags.iter().map(|tag| {
                    let mut conn = conn.clone();
                    let key = self.version_key(tag);
                    async move {
                        let reply: Option<String> = redis::cmd("SET")
                            .arg(key)
                            .arg(fresh_token())
                            .arg("XX")
                            .arg("KEEPTTL")
                            .query_async(&mut conn)
                            .await?;
                        Ok::<_, redis::RedisError>(reply.is_some())
                    }
                }))
                .await;
                let moved = match moved {
                    Ok(moved) => moved.into_iter().filter(|&m| m).count(),
                    // Full: delete the versions instead (see `BUMP_FULL`), key by key.
                    Err(error) if is_out_of_memory(&error) => {
                        let deleted = try_join_all(tags.iter().map(|tag| {
                            let mut conn = conn.clone();
                            let key = self.version_key(tag);
                            async move { conn.del::<_, usize>(key).await }
                        }))
                        .await
                        .map_err(|source| StoreError::Full {
                            refused: error,
                            source,
                        })?;
                        self.counted_full_bump(tags.len());
                        deleted.into_iter().sum()
                    }
                    Err(error) => return Err(error.into()),
                };
                if !message.is_empty() {
                    let _receivers: u64 = conn.publish(self.channel(), message).await?;
                }
                Ok(moved)
            }
        }
    }

    /// [`bump`](Self::bump) on a full Redis (`refused`: the plain bump's error): deletes
    /// the versions and publishes `message` ([`BUMP_FULL`]). Counted, and logged at warn
    /// level: a full Redis also refuses every entry, so the cache works uncached.
    async fn bump_full(
        &self,
        conn: &mut Watched,
        tags: &[Tag],
        message: &[u8],
        refused: redis::RedisError,
    ) -> Result<usize, StoreError> {
        let mut invocation = self.bump_full.prepare_invoke();
        invocation.arg(self.channel()).arg(message);
        for tag in tags {
            invocation.key(self.version_key(tag));
        }
        let deleted: usize = invocation
            .invoke_async(conn)
            .await
            .map_err(|source| StoreError::Full { refused, source })?;
        self.counted_full_bump(tags.len());
        Ok(deleted)
    }

    /// Counts an invalidation made on a full Redis, and says so at warn level.
    fn counted_full_bump(&self, tags: usize) {
        self.full_bumps
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(
            tier = "redis",
            tags,
            "Redis is full (maxmemory under noeviction): invalidation made by deleting the \
             tags' versions, and published; nothing can be stored until Redis has room"
        );
    }

    /// How many invalidations found Redis full and deleted versions instead of bumping
    /// them ([`bump_full`](Self::bump_full)).
    pub(crate) fn full_bumps(&self) -> u64 {
        self.full_bumps.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Whether Redis refused a command because it is full (`maxmemory` under `noeviction`).
fn is_out_of_memory(error: &redis::RedisError) -> bool {
    error.code() == Some("OOM") || error.to_string().contains("OOM command not allowed")
}
