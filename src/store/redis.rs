//! The Redis store: entries and tag versions shared by every app instance.
//!
//! | key | holds |
//! | --- | --- |
//! | `<prefix>:e:<key>` | an entry, framed by [`codec`](crate::codec): header with its snapshot, then the JSON body; expires with the entry's TTL |
//! | `<prefix>:v:<tag>` | the tag's current version: a random 128-bit token |
//!
//! Every operation that must be atomic is a Lua script (EVALSHA, loaded on first use):
//!
//! * **snapshot**: reads the versions of an entry's tags, creating a fresh token for any
//!   that is missing (never a counter: a lost version comes back as a token no entry has);
//! * **get**: reads the entry, compares the snapshot in its header with the current
//!   versions, and returns it only if they all match — one round trip for a hit; an
//!   outdated entry is unlinked on the spot;
//! * **put**: stores the entry only if its snapshot is still current (a value computed while
//!   a write committed is never parked);
//! * **bump**: gives each existing tag a fresh token (invalidation in O(tags)).
//!
//! Version keys carry a TTL of `CACHE_MAX_TTL` plus an hour, refreshed by every snapshot,
//! so they outlive every entry that depends on them; if one is lost anyway (eviction,
//! restart), entries that recorded it are misses.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::PutOutcome;
use crate::codec;
use crate::{Error, Tag};

/// Shared Lua: is an entry's snapshot current? 1 yes, 0 no, 2 not a payload we can read.
const CURRENT_FN: &str = r"
local function current(v)
  if string.sub(v, 1, 4) ~= 'QC1\n' then return 2 end
  local pos = 5
  local function line()
    local nl = string.find(v, '\n', pos, true)
    if not nl then return nil end
    local s = string.sub(v, pos, nl - 1)
    pos = nl + 1
    return s
  end
  local flags = line()
  local created = line()
  local n = tonumber(line())
  if not flags or not created or not n then return 2 end
  for i = 1, n do
    local key = line()
    local token = line()
    if not key or not token then return 2 end
    if redis.call('GET', key) ~= token then return 0 end
  end
  return 1
end
";

const GET_BODY: &str = r"
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

const PUT_BODY: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end
if current(ARGV[1]) ~= 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
";

const SNAPSHOT: &str = r"
local out = {}
for i, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if not v then
    v = ARGV[i + 1]
    redis.call('SET', k, v, 'PX', ARGV[1])
  else
    redis.call('PEXPIRE', k, ARGV[1])
  end
  out[i] = v
end
return out
";

const BUMP: &str = r"
local n = 0
for i, k in ipairs(KEYS) do
  if redis.call('SET', k, ARGV[i + 3], 'XX', 'PX', ARGV[1]) then
    n = n + 1
  end
end
if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return n
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

/// The versions an entry is computed under: `(version key, token)` pairs.
#[derive(Debug, Clone)]
pub(crate) struct RedisSnapshot {
    pub(crate) versions: std::sync::Arc<[(String, String)]>,
    /// The removal marker when the snapshot was taken.
    pub(crate) removals: String,
}

/// The Redis store. See the module docs.
pub(crate) struct RedisStore {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    prefix: String,
    timeout: Duration,
    compress_above: Option<usize>,
    version_ttl_ms: u64,
    get: redis::Script,
    put: redis::Script,
    snapshot: redis::Script,
    bump: redis::Script,
}

impl RedisStore {
    /// A store on `url` (`redis://`, `rediss://`, with credentials if any). Connects on
    /// first use, so a Redis that is down at start-up does not stop the application.
    ///
    /// # Errors
    /// [`Error::Config`] naming `REDIS_URL` when the URL does not parse.
    pub(crate) fn new(
        url: &str,
        cluster: bool,
        prefix: &str,
        timeout: Duration,
        compress_above: Option<usize>,
        max_ttl: Duration,
    ) -> Result<Self, Error> {
        if cluster {
            return Err(Error::config(
                "CACHE_CLUSTER_MODE",
                true,
                "cluster mode is not built yet",
            ));
        }
        let client = redis::Client::open(url)
            .map_err(|e| Error::config("REDIS_URL", redact(url), e.to_string()))?;
        let max_ttl_ms = u64::try_from(max_ttl.as_millis()).unwrap_or(u64::MAX / 2);
        Ok(RedisStore {
            client,
            conn: OnceCell::new(),
            prefix: prefix.to_owned(),
            timeout,
            compress_above,
            version_ttl_ms: max_ttl_ms.saturating_add(3_600_000),
            get: redis::Script::new(&format!("{CURRENT_FN}{GET_BODY}")),
            put: redis::Script::new(&format!("{CURRENT_FN}{PUT_BODY}")),
            snapshot: redis::Script::new(SNAPSHOT),
            bump: redis::Script::new(BUMP),
        })
    }

    async fn conn(&self) -> Result<ConnectionManager, String> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                // The store bounds every operation by `timeout` itself (and tells a timeout
                // from an error that way); these only stop a dead connection from hanging.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout * 2))
                    .set_response_timeout(Some(self.timeout * 2))
                    .set_number_of_retries(1);
                ConnectionManager::new_with_config(self.client.clone(), config).await
            })
            .await
            .map_err(|e| format!("connecting to Redis: {e}"))?;
        Ok(conn.clone())
    }

    pub(crate) fn entry_key(&self, key: &str) -> String {
        format!("{}:e:{key}", self.prefix)
    }

    fn version_key(&self, tag: &Tag) -> String {
        format!("{}:v:{tag}", self.prefix)
    }

    /// The removal marker: a token replaced by every key, pattern or namespace removal, so
    /// that a computation that began before a removal cannot store its result after it.
    /// (Entries do not record it: a removal must not kill the entries it does not match.)
    fn removals_key(&self) -> String {
        format!("{}:removals", self.prefix)
    }

    /// Current versions of `tags`, created where missing, and the removal marker.
    pub(crate) async fn take_snapshot(&self, tags: &[Tag]) -> Result<RedisSnapshot, String> {
        let mut conn = self.conn().await?;
        let mut invocation = self.snapshot.prepare_invoke();
        invocation.arg(self.version_ttl_ms);
        let keys: Vec<String> = tags.iter().map(|t| self.version_key(t)).collect();
        for key in &keys {
            invocation.key(key).arg(fresh_token());
        }
        invocation.key(self.removals_key()).arg(fresh_token());
        let mut tokens: Vec<String> = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let removals = tokens.pop();
        let (Some(removals), true) = (removals, tokens.len() == keys.len()) else {
            return Err(format!(
                "snapshot script returned {} versions for {} tags",
                tokens.len(),
                keys.len() + 1
            ));
        };
        Ok(RedisSnapshot {
            versions: keys.into_iter().zip(tokens).collect(),
            removals,
        })
    }

    /// The entry under `key`, validated against its tags' current versions on the server.
    pub(crate) async fn lookup(&self, key: &str) -> Result<RawLookup, String> {
        let mut conn = self.conn().await?;
        let reply: Option<Vec<redis::Value>> = self
            .get
            .key(self.entry_key(key))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(parse_lookup(reply))
    }

    /// Stores `body` (JSON) under `key` unless `snapshot` is outdated.
    pub(crate) async fn store(
        &self,
        key: &str,
        body: &[u8],
        snapshot: &RedisSnapshot,
        ttl: Duration,
    ) -> Result<PutOutcome, String> {
        let framed = codec::frame(body, &snapshot.versions, now_ms(), self.compress_above);
        let ttl_ms = u64::try_from(ttl.as_millis())
            .unwrap_or(u64::MAX / 2)
            .max(1);
        let mut conn = self.conn().await?;
        let stored: u8 = self
            .put
            .key(self.entry_key(key))
            .key(self.removals_key())
            .arg(framed)
            .arg(ttl_ms)
            .arg(&snapshot.removals)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(if stored == 1 {
            PutOutcome::Stored
        } else {
            PutOutcome::Outdated
        })
    }

    /// Gives each tag that has a version a fresh one, and publishes `message` (if not
    /// empty) on the invalidation channel in the same step, so that no instance can hear of
    /// the bump before Redis holds it.
    pub(crate) async fn bump(&self, tags: &[Tag], message: &[u8]) -> Result<usize, String> {
        let mut conn = self.conn().await?;
        let mut invocation = self.bump.prepare_invoke();
        invocation
            .arg(self.version_ttl_ms)
            .arg(self.channel())
            .arg(message);
        for tag in tags {
            invocation.key(self.version_key(tag)).arg(fresh_token());
        }
        invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|e| e.to_string())
    }

    /// The pub/sub channel invalidations travel on: `<prefix>:invalidations`.
    pub(crate) fn channel(&self) -> String {
        format!("{}:invalidations", self.prefix)
    }

    /// Publishes `message` on the invalidation channel.
    pub(crate) async fn publish(&self, message: &[u8]) -> Result<(), String> {
        let mut conn = self.conn().await?;
        let _receivers: u64 = conn
            .publish(self.channel(), message)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// One round trip to the server: the breaker's probe.
    pub(crate) async fn ping(&self) -> Result<(), String> {
        let mut conn = self.conn().await?;
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| e.to_string())
    }

    /// Clients for the subscriber, in the order to try them.
    pub(crate) fn pubsub_clients(&self) -> Vec<redis::Client> {
        vec![self.client.clone()]
    }

    /// The command timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The prefix of version keys, to read tag names back from an entry's header.
    pub(crate) fn version_prefix(&self) -> String {
        format!("{}:v:", self.prefix)
    }

    /// Removes one entry (the removal marker moves first, in the same round trip).
    pub(crate) async fn remove_key(&self, key: &str) -> Result<bool, String> {
        let mut conn = self.conn().await?;
        let ((), removed): ((), u64) = redis::pipe()
            .set_options(
                self.removals_key(),
                fresh_token(),
                redis::SetOptions::default()
                    .with_expiration(redis::SetExpiry::PX(self.version_ttl_ms)),
            )
            .unlink(self.entry_key(key))
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(removed > 0)
    }

    /// Moves the removal marker: computations that began before now cannot store.
    async fn mark_removal(&self) -> Result<(), String> {
        let mut conn = self.conn().await?;
        conn.pset_ex::<_, _, ()>(self.removals_key(), fresh_token(), self.version_ttl_ms)
            .await
            .map_err(|e| e.to_string())
    }

    /// Removes every entry whose key matches the glob `pattern`: the removal marker moves
    /// first (a computation that began before cannot store after), then SCAN (never KEYS)
    /// and UNLINK in batches (what was stored before is found by the scan).
    pub(crate) async fn remove_pattern(&self, pattern: &str) -> Result<usize, String> {
        self.mark_removal().await?;
        let matcher = format!("{}:e:{pattern}", escape_glob(&self.prefix));
        self.unlink_scan(&matcher).await
    }

    /// Removes every entry and every tag version under the prefix.
    pub(crate) async fn clear_all(&self) -> Result<usize, String> {
        let matcher = format!("{}:*", escape_glob(&self.prefix));
        self.unlink_scan(&matcher).await
    }

    async fn unlink_scan(&self, matcher: &str) -> Result<usize, String> {
        const BATCH: usize = 500;
        let mut conn = self.conn().await?;
        let mut cursor: u64 = 0;
        let mut removed = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(matcher)
                .arg("COUNT")
                .arg(BATCH)
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            if !keys.is_empty() {
                let n: usize = conn.unlink(&keys).await.map_err(|e| e.to_string())?;
                removed += n;
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }
}

/// Reads the get script's reply: nil, `{0, ''}`, `{1, payload, pttl}` or `{2, payload}`.
fn parse_lookup(reply: Option<Vec<redis::Value>>) -> RawLookup {
    use redis::Value;
    let Some(items) = reply else {
        return RawLookup::Miss;
    };
    match items.as_slice() {
        [Value::Int(1), Value::BulkString(bytes), rest @ ..] => {
            let ttl = match rest.first() {
                Some(Value::Int(ms)) => u64::try_from(*ms).ok().map(Duration::from_millis),
                _ => None,
            };
            RawLookup::Hit(bytes.clone(), ttl)
        }
        [Value::Int(0), ..] => RawLookup::Invalidated,
        _ => RawLookup::Garbage,
    }
}

/// A random 128-bit token, hex.
fn fresh_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Escapes Redis glob metacharacters in a literal (the key prefix).
fn escape_glob(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len());
    for c in literal.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The server URLs in `REDIS_URL`: one, or with cluster mode a comma-separated list.
pub(crate) fn split_urls(url: &str, cluster: bool) -> Vec<&str> {
    if cluster {
        url.split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect()
    } else {
        vec![url.trim()]
    }
}

/// The URL without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => format!("{}***{}", &url[..scheme + 3], &url[at..]),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("redis://user:secret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact("rediss://secret@host"), "rediss://***@host");
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
    }

    #[test]
    fn prefix_globs_are_escaped() {
        assert_eq!(escape_glob("app*1"), "app\\*1");
        assert_eq!(escape_glob("plain"), "plain");
    }

    #[test]
    fn a_bad_url_names_redis_url() {
        let err = RedisStore::new(
            "http://nope",
            false,
            "qc",
            Duration::from_millis(50),
            None,
            Duration::from_secs(60),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("REDIS_URL"), "{err}");
    }
}
