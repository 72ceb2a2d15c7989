//! The Redis store: entries and tag versions shared by every app instance.
//!
//! | key | holds |
//! | --- | --- |
//! | `<prefix>:e:<key>` | an entry, framed by [`codec`](crate::codec): header with its snapshot, then the JSON body; expires with the entry's TTL |
//! | `<prefix>:v:<tag>` | the tag's current version: a random 128-bit token |
//! | `<prefix>@default-database` | which database is every cache's default one on this prefix (see `cache::databases`): claimed once with `SET NX`, no expiry, kept by `clear` |
//! | `<prefix>:l:<run_id>:<key>` | the computation lease of a missing key (named after the server incarnation's `run_id`, 12 characters, on a single server; `<prefix>:l:<key>` on a cluster): the holder's token, `SET NX PX` for `CACHE_LEASE_TTL_MS`; deleted by its holder (compare-and-delete) when done |
//! | `<prefix>:v:querycache:#epoch` | the store epoch (single server): a version like a tag's, recorded by every entry, given a fresh token when the server is a new incarnation ([`epoch`]) |
//! | `<prefix>:epoch-run` | the `run_id` of the server incarnation the epoch was last rotated for (single server; no expiry) |
//!
//! An entry lives in Redis for its TTL plus its grace period (the larger of its
//! stale-while-revalidate and fail-safe windows); its header's timing line says when the TTL
//! passes, so a read can tell a fresh entry from a stale one.
//!
//! On a single server each tokio runtime that uses the store talks to it through a
//! connection of its own, driven by that runtime, so that a command costs no hop to another
//! thread ([`conns`]).
//!
//! Every operation that must be atomic is a Lua script (EVALSHA, loaded on first use):
//!
//! * **snapshot**: reads the versions of an entry's tags, creating a fresh token for any
//!   that is missing (never a counter: a lost version comes back as a token no entry has);
//! * **get**: reads the entry, compares the snapshot in its header with the current
//!   versions, and returns it only if they all match — one round trip for a hit; an
//!   outdated entry is unlinked on the spot. When the store already knows which version
//!   keys the entry records, a hit skips the script: one `MULTI`/`EXEC` transaction reads
//!   the entry and those versions, and the store compares them ([`hints`]);
//! * **put**: stores the entry only if its snapshot is still current (a value computed while
//!   a write committed is never parked);
//! * **bump**: gives each existing tag a fresh token (invalidation in O(tags));
//! * **rotate-epoch**: gives the store epoch, which every snapshot on a single server reads
//!   as one more version, a fresh token when the server's `run_id` is not the one recorded:
//!   a server restarted from its RDB/AOF files, or a replica promoted, holds older data than
//!   the instances saw, and every entry stored before it became that incarnation must die
//!   ([`epoch`]; not on a cluster).
//!
//! A version key lives as long as the entries that record it, and a minute more: a
//! snapshot creates a missing one for a few minutes only ([`PROVISIONAL_VERSION_TTL_MS`],
//! time for its computation to finish), and the put of an entry extends every version it
//! records to the entry's lifetime. So a read that stores nothing (a request its handler
//! rejects, an answer that is not cached) leaves nothing behind for long, and Redis holds
//! no version nobody needs. If one is lost anyway (eviction, restart), entries that
//! recorded it are misses.
//!
//! # Cluster mode
//!
//! With `CACHE_CLUSTER_MODE`, `REDIS_URL` lists the cluster's nodes and the store talks to
//! them through one [`ClusterConnection`](redis::cluster_async::ClusterConnection) (Redis 7.0
//! or later: the snapshot uses `SET ... NX GET`). A script may only touch keys of one slot,
//! and an entry and its tags' versions live in different slots — on purpose: no hash tag,
//! so keys spread over every master. The scripts above are therefore replaced by plain
//! commands, and the checks they made on the server are made by the store:
//!
//! * **get** costs **two round trips** on a hit: `GET` and `PTTL` of the entry, pipelined
//!   to the entry's master; then, with the header read here, one `MGET` of its version
//!   keys — split by the client into one `MGET` per slot, sent to their masters in
//!   parallel — compared with the tokens in the header. A miss costs one round trip; an
//!   outdated entry one more, best effort, to `UNLINK` it.
//! * **snapshot**: per tag, `SET key token NX GET PX ttl` and `PEXPIRE key ttl GT`,
//!   pipelined to the tag's master, all tags in parallel (one round trip).
//! * **put**: `MGET` the versions, then `SET` the entry only if they all still equal the
//!   snapshot, then `PEXPIRE version lifetime GT` per version, in parallel (three round
//!   trips). A write may move a tag between the check and the `SET`: harmless, since every
//!   read compares the entry's snapshot with the versions again.
//! * **bump**: per tag, `SET key token XX KEEPTTL`, all tags in parallel; then `PUBLISH`,
//!   once every `SET` succeeded, so no instance hears of the bump before Redis holds it
//!   (two round trips). Pub/sub messages reach subscribers on every node of the cluster.
//! * **patterns and clear**: `SCAN` runs on one node at a time, so every master (from
//!   `CLUSTER SLOTS`) is scanned, and the matches are unlinked in batches.

use std::time::Duration;

use futures_util::future::try_join_all;
use redis::AsyncCommands;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use tokio::sync::OnceCell;

use super::PutOutcome;
use crate::codec;
use crate::{Error, Tag};

#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod checks;
mod conns;
mod epoch;
mod hints;

pub(crate) use epoch::EPOCH_TAG;
use epoch::{Incarnation, Watched};

/// Shared Lua: is an entry's snapshot current? 1 yes, 0 no, 2 not a payload we can read.
///
/// Written for the hit path's cost on the server: one anchored match for the fixed lines,
/// plain finds for the versions, and only the substrings a version check needs (its key
/// and token) made into Lua strings.
const CURRENT_FN: &str = r"
local find, sub, match = string.find, string.sub, string.match
local function current(v, keep)
  local flags, pos = match(v, '^QC2\n(%d+)\n%d+\n()')
  if not flags then return 2 end
  -- flag 2: a timing line follows the creation time
  if tonumber(flags) % 4 >= 2 then
    pos = find(v, '\n', pos, true)
    if not pos then return 2 end
    pos = pos + 1
  end
  local n
  n, pos = match(v, '^(%d+)\n()', pos)
  if not n then return 2 end
  for _ = 1, tonumber(n) do
    local nl = find(v, '\n', pos, true)
    local nl2 = nl and find(v, '\n', nl + 1, true)
    if not nl2 then return 2 end
    local key = sub(v, pos, nl - 1)
    if redis.call('GET', key) ~= sub(v, nl + 1, nl2 - 1) then return 0 end
    if keep then keep[#keep + 1] = key end
    pos = nl2 + 1
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

/// The put: the entry is stored only under a current snapshot, and every version key it
/// records is made to live at least as long as the entry (ARGV[4]: the entry's lifetime
/// plus a margin) — a version created by a snapshot lives only a few minutes otherwise.
const PUT_BODY: &str = r"
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

/// The snapshot: the versions of KEYS, a missing one created with the fresh token given
/// for it. A version it creates, or finds about to expire, is given ARGV[1] (the
/// provisional lifetime: long enough for a computation to finish and store its entry, which
/// then extends it); one that lives longer is left alone. So a read that stores nothing —
/// a request its handler rejects, an answer that is not cached — leaves nothing behind for
/// long.
const SNAPSHOT: &str = r"
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

/// The bump: a fresh token for each existing version, which keeps its lifetime (the entries
/// that recorded the old token set it; a snapshot or a put extends it again when needed).
const BUMP: &str = r"
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
const BUMP_FULL: &str = r"#!lua flags=allow-oom
local n = redis.call('DEL', unpack(KEYS))
if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return n
";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
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

impl RedisSnapshot {
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

/// Where the store's commands go: one server, or a cluster.
// One per store, built once: the variants' sizes (which depend on redis-rs's TLS features)
// do not matter.
#[allow(clippy::large_enum_variant)]
enum Backend {
    /// One connection per runtime that uses the store (see [`conns`]).
    Single(conns::Connections),
    Cluster {
        /// Boxed: much larger than the single server's client, and built once.
        client: Box<ClusterClient>,
        /// One client per node URL, for the subscriber (which fails over between them).
        nodes: Vec<redis::Client>,
        conn: OnceCell<ClusterConnection>,
    },
}

/// A connection of either kind. Commands that mean the same on both go through it.
#[derive(Clone)]
enum Conn {
    Single(Watched),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// TCP keepalive probes start after this much idleness on a connection.
const KEEPALIVE_TIME: Duration = Duration::from_secs(15);
/// Then go this far apart.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// And this many unanswered ones close the connection.
const KEEPALIVE_RETRIES: u32 = 3;

/// `settings` with TCP keepalive on: a flow that a NAT, load balancer or proxy dropped
/// without a reset is closed by the OS (about 30 s after it went idle) even where no
/// heartbeat runs; the invalidation channel's own heartbeat (see `channel`) notices it
/// much sooner.
fn keepalive_settings(settings: redis::io::tcp::TcpSettings) -> redis::io::tcp::TcpSettings {
    let keepalive = redis::io::tcp::socket2::TcpKeepalive::new().with_time(KEEPALIVE_TIME);
    // Where the OS lets a socket set them; elsewhere its own defaults apply.
    #[cfg(any(
        target_os = "android",
        target_os = "freebsd",
        target_os = "linux",
        target_os = "macos"
    ))]
    let keepalive = keepalive
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    settings.set_keepalive(keepalive)
}

/// A client for `url` whose connections (commands' and the subscriber's) use TCP
/// keepalive, see [`keepalive_settings`].
fn client_with_keepalive(url: &str) -> redis::RedisResult<redis::Client> {
    let info = redis::IntoConnectionInfo::into_connection_info(url)?;
    let settings = keepalive_settings(info.tcp_settings().clone());
    redis::Client::open(info.set_tcp_settings(settings))
}

/// How long a version key created by a snapshot lives unless an entry that records it is
/// stored (which extends it to the entry's lifetime): long enough for a computation to
/// finish, short enough that reads which store nothing — requests their handler rejects,
/// answers that are not cached — leave nothing behind for long. A computation that takes
/// longer finds its version gone and does not store its value (safe, only a miss).
pub(crate) const PROVISIONAL_VERSION_TTL_MS: u64 = 5 * 60 * 1000;

/// How much longer than the entries that record it a version key lives.
const VERSION_MARGIN_MS: u64 = 60 * 1000;

/// The Redis store. See the module docs.
pub(crate) struct RedisStore {
    backend: Backend,
    prefix: String,
    timeout: Duration,
    compress_above: Option<usize>,
    version_ttl_ms: u64,
    /// The version keys of recently stored or read entries (single server).
    hints: hints::Hints,
    get: redis::Script,
    put: redis::Script,
    snapshot: redis::Script,
    bump: redis::Script,
    bump_full: redis::Script,
    /// See [`full_bumps`](Self::full_bumps).
    full_bumps: std::sync::atomic::AtomicU64,
    release: redis::Script,
    rotate: redis::Script,
    /// Whether the single server's incarnation was checked (see [`epoch`]).
    incarnation: std::sync::Arc<Incarnation>,
}

impl RedisStore {
    /// A store on `url` (`redis://`, `rediss://`, with credentials if any; with `cluster`,
    /// the cluster's nodes separated by commas). Connects on first use, so a Redis that is
    /// down at start-up does not stop the application.
    ///
    /// # Errors
    /// [`Error::Config`] naming `REDIS_URL` when a URL does not parse (or none is given).
    pub(crate) fn new(
        url: &str,
        cluster: bool,
        prefix: &str,
        timeout: Duration,
        compress_above: Option<usize>,
        max_ttl: Duration,
    ) -> Result<Self, Error> {
        let bad_url = |e: redis::RedisError| Error::config("REDIS_URL", redact(url), e.to_string());
        let incarnation = std::sync::Arc::new(Incarnation::new());
        let backend = if cluster {
            let urls = split_urls(url, true);
            if urls.is_empty() {
                return Err(Error::config("REDIS_URL", redact(url), "lists no server"));
            }
            let nodes = urls
                .iter()
                .map(|one| client_with_keepalive(one))
                .collect::<Result<Vec<_>, _>>()
                .map_err(bad_url)?;
            // As for a single server: the store bounds every operation by `timeout` itself;
            // these only stop a dead node from hanging, and retries stay few and quick.
            let client = ClusterClient::builder(urls.iter().copied())
                .tcp_settings(keepalive_settings(redis::io::tcp::TcpSettings::default()))
                .connection_timeout(timeout * 2)
                .response_timeout(timeout * 2)
                .retries(1)
                .min_retry_wait(10)
                .max_retry_wait(100)
                .build()
                .map_err(bad_url)?;
            Backend::Cluster {
                client: Box::new(client),
                nodes,
                conn: OnceCell::new(),
            }
        } else {
            // The store bounds every operation by `timeout` itself (and tells a timeout
            // from an error that way); these only stop a dead connection from hanging.
            // No connection retries: a retry waits out a backoff (100 ms or more) before
            // trying again, and every command sent meanwhile waits with it, so a dead
            // server, which refuses connections at once, would cost each caller in flight
            // a full command timeout instead of an immediate error. The breaker is the
            // retry policy: errors open it, its background probe reconnects.
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout * 2))
                .set_response_timeout(Some(timeout * 2))
                .set_number_of_retries(0);
            Backend::Single(conns::Connections::new(
                client_with_keepalive(url).map_err(bad_url)?,
                config,
                std::sync::Arc::clone(&incarnation),
            ))
        };
        let max_ttl_ms = u64::try_from(max_ttl.as_millis()).unwrap_or(u64::MAX / 2);
        Ok(RedisStore {
            backend,
            prefix: prefix.to_owned(),
            timeout,
            compress_above,
            version_ttl_ms: max_ttl_ms.saturating_add(3_600_000),
            hints: hints::Hints::new(),
            get: redis::Script::new(&format!("{CURRENT_FN}{GET_BODY}")),
            put: redis::Script::new(&format!("{CURRENT_FN}{PUT_BODY}")),
            snapshot: redis::Script::new(SNAPSHOT),
            bump: redis::Script::new(BUMP),
            bump_full: redis::Script::new(BUMP_FULL),
            full_bumps: std::sync::atomic::AtomicU64::new(0),
            release: redis::Script::new(RELEASE),
            rotate: redis::Script::new(epoch::ROTATE),
            incarnation,
        })
    }

    async fn conn(&self) -> Result<Conn, String> {
        match &self.backend {
            Backend::Single(conns) => {
                let conn = conns
                    .get()
                    .await
                    .map_err(|e| format!("connecting to Redis: {e}"))?;
                Ok(Conn::Single(Watched {
                    conn,
                    incarnation: std::sync::Arc::clone(&self.incarnation),
                }))
            }
            Backend::Cluster { client, conn, .. } => {
                let conn = conn
                    .get_or_try_init(|| {
                        let client = client.clone();
                        on_io_runtime(async move { client.get_async_connection().await })
                    })
                    .await
                    .map_err(|e| format!("connecting to the Redis cluster: {e}"))?;
                Ok(Conn::Cluster(conn.clone()))
            }
        }
    }

    pub(crate) fn entry_key(&self, key: &str) -> String {
        format!("{}:e:{key}", self.prefix)
    }

    fn version_key(&self, tag: &Tag) -> String {
        format!("{}:v:{tag}", self.prefix)
    }

    /// The store epoch's version key: `<prefix>:v:querycache:#epoch` (see [`epoch`]).
    fn epoch_key(&self) -> String {
        format!("{}:v:{EPOCH_TAG}", self.prefix)
    }

    /// The `run_id` the epoch was last rotated for: `<prefix>:epoch-run`.
    fn epoch_run_key(&self) -> String {
        format!("{}:epoch-run", self.prefix)
    }

    /// Checks the single server's incarnation unless it was checked since the last sign
    /// that it may have changed: `INFO server`'s `run_id`, then the rotate script (see
    /// [`epoch`]). Returns the generation the check holds for, to tell whether it still
    /// held when a lookup's reply came back.
    async fn incarnation_checked(&self, conn: &mut Watched) -> Result<u64, String> {
        if let Some(generation) = self.incarnation.current() {
            return Ok(generation);
        }
        let _turn = self.incarnation.checking().lock().await;
        if let Some(generation) = self.incarnation.current() {
            return Ok(generation);
        }
        let generation = self.incarnation.generation();
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(conn)
            .await
            .map_err(|e| format!("checking the Redis incarnation: {e}"))?;
        let run_id = epoch::run_id(&info)
            .ok_or_else(|| "checking the Redis incarnation: INFO names no run_id".to_owned())?
            .to_owned();
        self.incarnation.found(&run_id);
        let rotated: u8 = self
            .rotate
            .key(self.epoch_run_key())
            .key(self.epoch_key())
            .arg(&run_id)
            .arg(fresh_token())
            .arg(self.version_ttl_ms)
            .invoke_async(conn)
            .await
            .map_err(|e| format!("rotating the store epoch: {e}"))?;
        match rotated {
            1 => tracing::warn!(
                %run_id,
                "Redis is a new incarnation (run_id {run_id}): every entry stored before is dead"
            ),
            2 => tracing::info!(%run_id, "store epoch started on Redis (run_id {run_id})"),
            _ => tracing::debug!(%run_id, "Redis incarnation checked: unchanged"),
        }
        self.incarnation.verified_at(generation, rotated == 1);
        Ok(generation)
    }

    /// The server may be another one (the invalidation channel was lost or came back, the
    /// breaker closed after an outage): the next operation checks its incarnation.
    pub(crate) fn incarnation_unknown(&self, why: &str) {
        self.incarnation.reset(why);
    }

    /// How many times this instance rotated the store epoch (see [`epoch`]).
    pub(crate) fn epoch_rotations(&self) -> u64 {
        self.incarnation.rotations()
    }

    /// The removal marker: a token replaced by every key, pattern or namespace removal, so
    /// that a computation that began before a removal cannot store its result after it.
    /// (Entries do not record it: a removal must not kill the entries it does not match.)
    fn removals_key(&self) -> String {
        format!("{}:removals", self.prefix)
    }

    /// Current versions of `tags`, created where missing, and the removal marker.
    pub(crate) async fn take_snapshot(&self, tags: &[Tag]) -> Result<RedisSnapshot, String> {
        // The removal marker travels as one more version, split off at the end. On a
        // single server the epoch is one more version too, just before it: every entry
        // records it (see `epoch`).
        let single = matches!(self.backend, Backend::Single(_));
        let keys: Vec<String> = tags
            .iter()
            .map(|t| self.version_key(t))
            .chain(single.then(|| self.epoch_key()))
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
                let tokens: Vec<String> = invocation
                    .invoke_async(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                tokens
            }
            Conn::Cluster(conn) => {
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
                .await
                .map_err(|e| e.to_string())?
            }
        };
        let mut tokens = tokens;
        let removals = tokens.pop();
        let (Some(removals), true) = (removals, tokens.len() + 1 == keys.len()) else {
            return Err(format!(
                "snapshot returned {} versions for {} tags",
                tokens.len(),
                keys.len() + 1
            ));
        };
        Ok(RedisSnapshot {
            versions: keys.into_iter().zip(tokens).collect(),
            removals,
        })
    }

    /// The entry under `key`, validated against its tags' current versions: on a single
    /// server by one transaction when the entry's version keys are known ([`hints`]), else
    /// (or when the transaction cannot decide) by the script — one round trip for a hit
    /// either way; on a cluster by the store (two, see the module docs).
    pub(crate) async fn lookup(&self, key: &str) -> Result<RawLookup, String> {
        let entry = self.entry_key(key);
        match self.conn().await? {
            Conn::Single(mut conn) => {
                let generation = self.incarnation_checked(&mut conn).await?;
                // A hit answered after the incarnation flag was reset may come from a new
                // incarnation not checked yet (see `epoch`): a miss instead.
                let checked = |found: RawLookup| match found {
                    RawLookup::Hit(..) if !self.incarnation.still(generation) => {
                        tracing::debug!("a Redis hit answered across a reconnection: dropped");
                        RawLookup::Miss
                    }
                    found => found,
                };
                if let Some(hint) = self.hints.get(key) {
                    match hints::lookup(&mut conn, &entry, &hint).await? {
                        hints::Hinted::Decided(found) => return Ok(checked(found)),
                        hints::Hinted::AskScript => {}
                    }
                }
                let reply: Option<Vec<redis::Value>> = self
                    .get
                    .key(entry)
                    .invoke_async(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                let found = checked(parse_lookup(reply));
                if let RawLookup::Hit(bytes, _) = &found {
                    self.hints.learn_from(key, bytes);
                }
                Ok(found)
            }
            Conn::Cluster(mut conn) => {
                let (bytes, pttl): (Option<Vec<u8>>, i64) = redis::pipe()
                    .get(&entry)
                    .pttl(&entry)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
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
                // Best effort, and not atomic with the check: should another instance store
                // a fresh entry in between, it is unlinked too — a later miss, never a
                // stale hit.
                if let Err(error) = conn.unlink::<_, u64>(&entry).await {
                    tracing::debug!(%error, "unlinking an outdated entry failed");
                }
                Ok(RawLookup::Invalidated)
            }
        }
    }

    /// Stores `body` under `key` unless `snapshot` is outdated.
    /// The entry lives in Redis for its TTL plus its grace period (it may be served stale
    /// then); its header says when the TTL passes.
    pub(crate) async fn store(
        &self,
        key: &str,
        body: &codec::Body,
        snapshot: &RedisSnapshot,
        meta: &super::EntryMeta,
    ) -> Result<PutOutcome, String> {
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
                    .await
                    .map_err(|e| e.to_string())?;
                if stored == 1 {
                    let version_keys = snapshot.versions.iter().map(|(k, _)| k.as_str());
                    self.hints.learn(key, version_keys);
                }
                stored == 1
            }
            Conn::Cluster(mut conn) => {
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
                        .await
                        .map_err(|e| e.to_string())?;
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
                    .await
                    .map_err(|e| e.to_string())?;
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

    /// Gives each tag that has a version a fresh one, and publishes `message` (if not
    /// empty) on the invalidation channel — in the same script on a single server, after
    /// every version moved on a cluster — so that no instance can hear of the bump before
    /// Redis holds it. Returns how many tags had a version.
    pub(crate) async fn bump(&self, tags: &[Tag], message: &[u8]) -> Result<usize, String> {
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
                        self.bump_full(&mut conn, tags, message, &error).await
                    }
                    Err(error) => Err(error.to_string()),
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
                        .map_err(|e| {
                            format!(
                                "Redis is full ({error}), and deleting the versions failed \
                                 too: {e}"
                            )
                        })?;
                        self.counted_full_bump(tags.len());
                        deleted.into_iter().sum()
                    }
                    Err(error) => return Err(error.to_string()),
                };
                if !message.is_empty() {
                    let _receivers: u64 = conn
                        .publish(self.channel(), message)
                        .await
                        .map_err(|e| e.to_string())?;
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
        refused: &redis::RedisError,
    ) -> Result<usize, String> {
        let mut invocation = self.bump_full.prepare_invoke();
        invocation.arg(self.channel()).arg(message);
        for tag in tags {
            invocation.key(self.version_key(tag));
        }
        let deleted: usize = invocation.invoke_async(conn).await.map_err(|e| {
            format!("Redis is full ({refused}), and deleting the versions failed too: {e}")
        })?;
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

    /// The pub/sub channel invalidations travel on: `<prefix>:invalidations`.
    pub(crate) fn channel(&self) -> String {
        format!("{}:invalidations", self.prefix)
    }

    /// Publishes `message` on the invalidation channel (on a cluster, through any node:
    /// the cluster forwards it to subscribers on every node).
    pub(crate) async fn publish(&self, message: &[u8]) -> Result<(), String> {
        let mut conn = self.conn().await?;
        let _receivers: u64 = conn
            .publish(self.channel(), message)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// One round trip to the server, or on a cluster to every master in parallel (the
    /// client routes PING to all of them, and fails if one fails).
    pub(crate) async fn ping(&self) -> Result<(), String> {
        let mut conn = self.conn().await?;
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| e.to_string())
    }

    /// The breaker's probe, before it closes: on a cluster [`ping`](Self::ping); on a
    /// single server a `PING` through every connection made so far (one per runtime, see
    /// `conns`, the probe's own included), in parallel. A connection whose last
    /// reconnection failed during the outage keeps that failure until its next command,
    /// which fails with it and starts a new reconnection: without this, that command would
    /// be the first caller's after the breaker closed (an error on a healthy server,
    /// counted, shown by `health()`, a step towards opening the breaker again). So each
    /// connection gets a second `PING` if its first fails: that one waits for the
    /// reconnection the first one started, and fails only if the server does.
    pub(crate) async fn probe(&self) -> Result<(), String> {
        let Backend::Single(conns) = &self.backend else {
            return self.ping().await;
        };
        conns
            .get()
            .await
            .map_err(|e| format!("connecting to Redis: {e}"))?;
        let pings = conns.made().into_iter().map(|mut conn| async move {
            if ping_one(&mut conn).await.is_ok() {
                return Ok(());
            }
            ping_one(&mut conn).await
        });
        try_join_all(pings).await.map(|_| ())
    }

    /// Clients for the subscriber, in the order to try them: the server, or every node of
    /// the cluster.
    pub(crate) fn pubsub_clients(&self) -> Vec<redis::Client> {
        match &self.backend {
            Backend::Single(conns) => vec![conns.client().clone()],
            Backend::Cluster { nodes, .. } => nodes.clone(),
        }
    }

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
    pub(crate) async fn claim_default_database(&self, candidate: &str) -> Result<String, String> {
        let key = self.default_database_key();
        let mut conn = self.conn().await?;
        let _: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(candidate)
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let recorded: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        recorded.ok_or_else(|| format!("`{key}` vanished right after it was set"))
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
        let removed: u64 = match self.conn().await? {
            Conn::Single(mut conn) => {
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
                removed
            }
            // Two slots: the marker first, then the entry.
            Conn::Cluster(mut conn) => {
                self.mark_removal().await?;
                conn.unlink(self.entry_key(key))
                    .await
                    .map_err(|e| e.to_string())?
            }
        };
        Ok(removed > 0)
    }

    /// The lease key of `key`: `<prefix>:l:<key>` on a cluster; on a single server
    /// `<prefix>:l:<run_id, 12 characters>:<key>`, so that a lease restored with an older
    /// snapshot (a restart from RDB/AOF, a promoted replica), whose holder gave it back long
    /// ago, holds no caller up for its TTL: each incarnation has leases of its own.
    async fn lease_key(&self, conn: &mut Conn, key: &str) -> Result<String, String> {
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
    ) -> Result<bool, String> {
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
            .await
            .map_err(|e| e.to_string())?;
        Ok(taken.is_some())
    }

    /// Gives the lease of `key` back, if `token` still holds it (it may have expired and
    /// been taken by another instance since).
    pub(crate) async fn release_lease(&self, key: &str, token: &str) -> Result<(), String> {
        let mut conn = self.conn().await?;
        let lease = self.lease_key(&mut conn, key).await?;
        self.release
            .key(lease)
            .arg(token)
            .invoke_async::<u64>(&mut conn)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Moves the removal marker: computations that began before now cannot store.
    async fn mark_removal(&self) -> Result<(), String> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.removals_key())
            .arg(fresh_token())
            .arg("PX")
            .arg(self.version_ttl_ms);
        match self.conn().await? {
            Conn::Single(mut conn) => cmd.query_async::<()>(&mut conn).await,
            Conn::Cluster(mut conn) => cmd.query_async::<()>(&mut conn).await,
        }
        .map_err(|e| e.to_string())
    }

    /// Removes every entry whose key matches the glob `pattern`: the removal marker moves
    /// first (a computation that began before cannot store after), then SCAN (never KEYS)
    /// and UNLINK in batches (what was stored before is found by the scan); on a cluster, on
    /// every master.
    ///
    /// The pattern is glob's (as the memory store matches it), not Redis': `MATCH` differs
    /// (`[^a]` negates where glob writes `[!a]`, `\` escapes, `?` is one byte, not one
    /// character). So SCAN matches only the pattern's literal prefix, and each key found is
    /// matched here, by glob's rules, before it is unlinked.
    pub(crate) async fn remove_pattern(&self, pattern: &str) -> Result<usize, String> {
        let glob = glob::Pattern::new(pattern)
            .map_err(|e| format!("invalid key pattern {pattern:?}: {}", e.msg))?;
        self.mark_removal().await?;
        let entries = entries_prefix(&self.prefix);
        let matcher = scan_matcher(&entries, pattern);
        let matches = |key: &str| entry_matches(&entries, &glob, key);
        self.unlink_scan(&matcher, Some(&matches)).await
    }

    /// Removes every entry and every tag version under the prefix.
    pub(crate) async fn clear_all(&self) -> Result<usize, String> {
        self.unlink_scan(&clear_matcher(&self.prefix), None).await
    }

    /// UNLINKs the keys SCAN finds with `matcher` (and that `keep`, when given, accepts).
    async fn unlink_scan(
        &self,
        matcher: &str,
        keep: Option<KeyFilter<'_>>,
    ) -> Result<usize, String> {
        match self.conn().await? {
            Conn::Single(conn) => unlink_scan_on(Conn::Single(conn), None, matcher, keep).await,
            Conn::Cluster(mut conn) => {
                // SCAN answers for one node only: scan every master, in parallel.
                let masters = cluster_masters(&mut conn).await?;
                let counts = try_join_all(masters.into_iter().map(|master| {
                    unlink_scan_on(Conn::Cluster(conn.clone()), Some(master), matcher, keep)
                }))
                .await?;
                Ok(counts.into_iter().sum())
            }
        }
    }
}

/// Which of the keys SCAN found are to go.
type KeyFilter<'a> = &'a (dyn Fn(&str) -> bool + Sync);

/// What every entry's Redis key starts with: `<prefix>:e:`.
fn entries_prefix(prefix: &str) -> String {
    format!("{prefix}:e:")
}

/// The `MATCH` pattern of SCAN for the glob `pattern`: the entries' prefix and the glob's
/// literal prefix, escaped, then `*`. Every entry whose key `pattern` matches is found;
/// [`entry_matches`] then picks among them by glob's rules.
fn scan_matcher(entries: &str, pattern: &str) -> String {
    format!(
        "{}*",
        escape_glob(&format!("{entries}{}", literal_prefix(pattern)))
    )
}

/// Whether the Redis key `stored`, found by SCAN, is an entry whose key `glob` matches.
fn entry_matches(entries: &str, glob: &glob::Pattern, stored: &str) -> bool {
    stored
        .strip_prefix(entries)
        .is_some_and(|key| glob.matches(key))
}

/// The part of a glob before its first wildcard (`*`, `?`, `[`): every key the glob
/// matches starts with it.
fn literal_prefix(pattern: &str) -> &str {
    pattern
        .find(['*', '?', '['])
        .map_or(pattern, |at| &pattern[..at])
}

/// SCAN (on `node` of a cluster, or the single server) and UNLINK the matches that `keep`
/// accepts, batch by batch. On a cluster the client splits each UNLINK by slot.
async fn unlink_scan_on(
    mut conn: Conn,
    node: Option<(String, u16)>,
    matcher: &str,
    keep: Option<KeyFilter<'_>>,
) -> Result<usize, String> {
    const BATCH: usize = 500;
    let mut cursor: u64 = 0;
    let mut removed = 0;
    loop {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(matcher)
            .arg("COUNT")
            .arg(BATCH);
        let (next, keys): (u64, Vec<String>) = match (&mut conn, &node) {
            (Conn::Cluster(cluster), Some((host, port))) => {
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                });
                let reply = cluster
                    .route_command(scan, routing)
                    .await
                    .map_err(|e| e.to_string())?;
                redis::from_redis_value(reply).map_err(|e| e.to_string())?
            }
            _ => scan
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?,
        };
        let keys: Vec<String> = match keep {
            Some(keep) => keys.into_iter().filter(|key| keep(key)).collect(),
            None => keys,
        };
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

/// The masters of the cluster that serve slots, as `(host, port)`, from `CLUSTER SLOTS`.
async fn cluster_masters(conn: &mut ClusterConnection) -> Result<Vec<(String, u16)>, String> {
    let reply: redis::Value = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(conn)
        .await
        .map_err(|e| e.to_string())?;
    parse_cluster_slots(reply)
}

/// `CLUSTER SLOTS`: `[[start, end, [host, port, id, ...], replicas...], ...]`; the first
/// node of each range is its master.
fn parse_cluster_slots(reply: redis::Value) -> Result<Vec<(String, u16)>, String> {
    let ranges: Vec<Vec<redis::Value>> =
        redis::from_redis_value(reply).map_err(|e| format!("CLUSTER SLOTS: {e}"))?;
    let mut masters: Vec<(String, u16)> = Vec::new();
    for range in ranges {
        let Some(master) = range.into_iter().nth(2) else {
            return Err("CLUSTER SLOTS: a slot range without a node".into());
        };
        let node: Vec<redis::Value> =
            redis::from_redis_value(master).map_err(|e| format!("CLUSTER SLOTS: {e}"))?;
        let mut fields = node.into_iter();
        let (Some(host), Some(port)) = (fields.next(), fields.next()) else {
            return Err("CLUSTER SLOTS: a node without an address".into());
        };
        let host: String =
            redis::from_redis_value(host).map_err(|e| format!("CLUSTER SLOTS: {e}"))?;
        let port: u16 = redis::from_redis_value(port).map_err(|e| format!("CLUSTER SLOTS: {e}"))?;
        if !masters.iter().any(|(h, p)| *h == host && *p == port) {
            masters.push((host, port));
        }
    }
    Ok(masters)
}

/// Whether every `(version key, token)` of a snapshot is still current: one MGET, which the
/// cluster client splits by slot and sends to the masters in parallel.
async fn versions_current(
    conn: &mut ClusterConnection,
    versions: &[(&str, &str)],
) -> Result<bool, String> {
    if versions.is_empty() {
        return Ok(true);
    }
    let mut mget = redis::cmd("MGET");
    for (key, _) in versions {
        mget.arg(*key);
    }
    let current: Vec<Option<Vec<u8>>> = mget.query_async(conn).await.map_err(|e| e.to_string())?;
    if current.len() != versions.len() {
        return Err(format!(
            "MGET returned {} values for {} keys",
            current.len(),
            versions.len()
        ));
    }
    Ok(versions
        .iter()
        .zip(&current)
        .all(|((_, token), now)| now.as_deref() == Some(token.as_bytes())))
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

/// A random 128-bit token, hex.
pub(crate) fn fresh_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The `MATCH` pattern of SCAN for everything under `prefix`.
fn clear_matcher(prefix: &str) -> String {
    format!("{}:*", escape_glob(prefix))
}

/// Whether Redis refused a command because it is full (`maxmemory` under `noeviction`).
fn is_out_of_memory(error: &redis::RedisError) -> bool {
    error.code() == Some("OOM") || error.to_string().contains("OOM command not allowed")
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

/// One `PING` through `conn`.
async fn ping_one(conn: &mut ConnectionManager) -> Result<(), String> {
    redis::cmd("PING")
        .query_async::<()>(conn)
        .await
        .map_err(|e| e.to_string())
}

/// Makes a connection on querycache's I/O runtime, so that the tasks that drive it live
/// there: they keep running whatever runtime the caller is on, or when that runtime ends
/// (a test's). A cluster's connection, and the single server's shared one (see [`conns`]).
async fn on_io_runtime<T: Send + 'static>(
    connect: impl std::future::Future<Output = redis::RedisResult<T>> + Send + 'static,
) -> redis::RedisResult<T> {
    match crate::blocking::io_handle().spawn(connect).await {
        Ok(result) => result,
        Err(error) => Err(redis::RedisError::from((
            redis::ErrorKind::Io,
            "the connection task failed",
            error.to_string(),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patterns_literal_prefix_ends_at_its_first_wildcard() {
        assert_eq!(literal_prefix("user:*"), "user:");
        assert_eq!(literal_prefix("user:[!1]:x"), "user:");
        assert_eq!(literal_prefix("a?b"), "a");
        assert_eq!(literal_prefix("*x"), "");
        assert_eq!(literal_prefix("plain\\key"), "plain\\key");
        // Escaped for SCAN's MATCH, the prefix matches itself literally.
        assert_eq!(escape_glob("a\\b]c"), "a\\\\b\\]c");
    }

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

    #[test]
    fn cluster_mode_takes_every_node_and_rejects_a_bad_one() {
        let store = |url: &str| {
            RedisStore::new(
                url,
                true,
                "qc",
                Duration::from_millis(50),
                None,
                Duration::from_secs(60),
            )
        };
        let ok = store("redis://127.0.0.1:7000, redis://127.0.0.1:7001").unwrap();
        assert_eq!(
            ok.pubsub_clients().len(),
            2,
            "one subscriber client per node"
        );
        let err = store("redis://127.0.0.1:7000,http://nope").err().unwrap();
        assert!(err.to_string().contains("REDIS_URL"), "{err}");
        let err = store(" , ").err().unwrap();
        assert!(err.to_string().contains("REDIS_URL"), "{err}");
    }

    #[test]
    fn cluster_slots_name_each_master_once() {
        use redis::Value;
        let node = |port: i64, id: &str| {
            Value::Array(vec![
                Value::BulkString(b"127.0.0.1".to_vec()),
                Value::Int(port),
                Value::BulkString(id.as_bytes().to_vec()),
            ])
        };
        let range = |start: i64, end: i64, master: Value, replicas: Vec<Value>| {
            let mut items = vec![Value::Int(start), Value::Int(end), master];
            items.extend(replicas);
            Value::Array(items)
        };
        let reply = Value::Array(vec![
            range(0, 5000, node(7000, "a"), vec![node(7003, "d")]),
            range(5001, 10000, node(7001, "b"), vec![]),
            range(10001, 12000, node(7002, "c"), vec![]),
            range(12001, 16383, node(7000, "a"), vec![]),
        ]);
        assert_eq!(
            parse_cluster_slots(reply).unwrap(),
            vec![
                ("127.0.0.1".to_owned(), 7000),
                ("127.0.0.1".to_owned(), 7001),
                ("127.0.0.1".to_owned(), 7002)
            ]
        );
        assert!(
            parse_cluster_slots(Value::Array(vec![Value::Array(vec![Value::Int(0)])])).is_err()
        );
    }
}
