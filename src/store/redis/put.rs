//! The put: an entry stored only if the snapshot it was computed under is still current
//! (a value computed while a write committed is never parked), and the version keys it
//! records made to live at least as long as it.
//!
//! Single server: the put script ([`PUT_BODY`] after [`CURRENT_FN`](super::CURRENT_FN)),
//! one round trip. Cluster: `MGET` the versions, `SET` the entry if they all still equal the
//! snapshot, then `PEXPIRE ... GT` per version in parallel (three round trips).

use std::time::Duration;

use futures_util::future::try_join_all;

use super::{Conn, RedisSnapshot, RedisStore, versions_current};
use crate::clock::now_ms;
use crate::store::{EntryMeta, PutOutcome, StoreError, codec};

/// The put: the entry is stored only under a current snapshot, and every version key it
/// records is made to live at least as long as the entry (`ARGV[4]`: the entry's lifetime
/// plus a margin) — a version created by a snapshot lives only a few minutes otherwise.
pub(super) const PUT_BODY: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end
local keys = {}
if current(ARGV[1], keys) ~= 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local want = tonumber(ARGV[4])
for _, k in ipairs(keys) do
  if redis.call('PTTL', k) < want then redis.call('PEXPIRE', k, want) end
end
return 1
";

/// How much longer than the entries that record it a version key lives.
const VERSION_MARGIN_MS: u64 = 60 * 1000;

impl RedisStore {
    /// Stores `body` under `key` unless `snapshot` is outdated.
    /// The entry lives in Redis for its TTL plus its grace period (it may be served stale
    /// then); its header says when the TTL passes.
    pub(crate) async fn store(
        &self,
        key: &str,
        body: &codec::Body,
        snapshot: &RedisSnapshot,
        meta: &EntryMeta,
    ) -> Result<PutOutcome, StoreError> {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 4);
        let now = now_ms();
        let stamps = codec::Stamps {
            created_at_ms: now,
            fresh_until_ms: Some(now.saturating_add(millis(meta.ttl))),
            delta_us: u64::try_from(meta.delta.as_micros()).unwrap_or(u64::MAX),
        };
        let framed = codec::frame(
            &body.bytes,
            body.format,
            &snapshot.versions,
            stamps,
            self.compress_above,
        );
        let ttl_ms = millis(meta.ttl).saturating_add(millis(meta.grace)).max(1);
        let stored = match self.conn().await? {
            Conn::Single(mut conn) => {
                self.incarnation_checked(&mut conn).await?;
                let stored: u8 = self
                    .put
                    .key(self.entry_key(key))
                    .key(self.removals_key())
                    .arg(framed)
                    .arg(ttl_ms)
                    .arg(&snapshot.removals)
                    .arg(ttl_ms.saturating_add(VERSION_MARGIN_MS))
                    .invoke_async(&mut conn)
                    .await?;
                if stored == 1 {
                    let version_keys = snapshot.versions.iter().map(|(k, _)| k.as_str());
                    self.hints.learn(key, version_keys);
                }
                stored == 1
            }
            Conn::Cluster(mut conn) => {
                self.cluster_incarnation_checked(&mut conn).await?;
                let removals = self.removals_key();
                let versions: Vec<(&str, &str)> = snapshot
                    .versions
                    .iter()
                    .map(|(k, t)| (k.as_str(), t.as_str()))
                    .chain(std::iter::once((
                        removals.as_str(),
                        snapshot.removals.as_str(),
                    )))
                    .collect();
                // A tag may move between this check and the SET below: harmless, since every
                // read compares the entry's snapshot with the current versions again, so an
                // entry parked under an outdated snapshot is never served. A key or pattern
                // removal landing in that window is not re-checked by reads: on a cluster,
                // such a removal can miss a value being stored at that very moment (the
                // single-server script has no such window).
                if versions_current(&mut conn, &versions).await? {
                    let () = redis::cmd("SET")
                        .arg(self.entry_key(key))
                        .arg(framed)
                        .arg("PX")
                        .arg(ttl_ms)
                        .query_async(&mut conn)
                        .await?;
                    // The versions it records live at least as long (see `PUT_BODY`), in
                    // parallel, each on its own slot's master.
                    let want = ttl_ms.saturating_add(VERSION_MARGIN_MS);
                    try_join_all(snapshot.versions.iter().map(|(version, _)| {
                        let mut conn = conn.clone();
                        async move {
                            redis::cmd("PEXPIRE")
                                .arg(version)
                                .arg(want)
                                .arg("GT")
                                .query_async::<i64>(&mut conn)
                                .await
                        }
                    }))
                    .await?;
                    true
                } else {
                    false
                }
            }
        };
        Ok(if stored {
            PutOutcome::Stored
        } else {
            PutOutcome::Outdated
        })
    }
}
