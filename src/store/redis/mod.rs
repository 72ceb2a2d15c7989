//! The Redis store: entries and tag versions shared by every app instance.
//!
//! | key | holds |
//! | --- | --- |
//! | `<prefix>:e:<key>` | an entry, framed by [`codec`](crate::store::codec): header with its snapshot, then the JSON body; expires with the entry's TTL |
//! | `<prefix>:v:<tag>` | the tag's current version: a random 128-bit token |
//! | `<prefix>@default-database` | which database is every cache's default one on this prefix (see `cache::databases`): claimed once with `SET NX`, no expiry, kept by `clear` |
//! | `<prefix>:l:<run_id>:<key>` | the computation lease of a missing key (named after the server incarnation's `run_id`, 12 characters, on a single server; `<prefix>:l:<key>` on a cluster): the holder's token, `SET NX PX` for `CACHE_LEASE_TTL_MS`; deleted by its holder (compare-and-delete) when done |
//! | `<prefix>:v:querycache:#epoch` | the store epoch: a version like a tag's, recorded by every entry, given a fresh token when the server (on a cluster: any master) is a new incarnation ([`epoch`]) |
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
//! Each operation has a file of its own, holding its Lua script, its single-server path and
//! its cluster path: [`snapshot`], [`lookup`], [`put`], [`bump`], [`lease`], [`remove`],
//! [`default_database`], and the store epoch's check in [`epoch`]. This file holds the
//! store, its connections and what the operations share ([`CURRENT_FN`], the keys' names).
//!
//! Every operation that must be atomic is a Lua script (EVALSHA, loaded on first use):
//!
//! * **snapshot**: reads the versions of an entry's tags, creating a fresh token for any
//!   that is missing (never a counter: a lost version comes back as a token no entry has);
//! * **get**: reads the entry, compares the snapshot in its header with the current
//!   versions, and returns it only if they all match — one round trip for a hit; an
//!   outdated entry is unlinked on the spot. When the store already knows which version
//!   keys the entry records, a hit skips the script: one pipeline (`GET`, then `MGET`) reads
//!   the entry and those versions, and the store compares them ([`hints`]);
//! * **put**: stores the entry only if its snapshot is still current (a value computed while
//!   a write committed is never parked);
//! * **bump**: gives each existing tag a fresh token (invalidation in O(tags));
//! * **rotate-epoch**: gives the store epoch, which every snapshot reads
//!   as one more version, a fresh token when the server's `run_id` is not the one recorded:
//!   a server restarted from its RDB/AOF files, or a replica promoted, holds older data than
//!   the instances saw, and every entry stored before it became that incarnation must die
//!   ([`epoch`]; on a cluster, plain commands do the same).
//!
//! A version key lives as long as the entries that record it, and a minute more: a
//! snapshot creates a missing one for a few minutes only
//! ([`snapshot::PROVISIONAL_VERSION_TTL_MS`], time for its computation to finish), and the
//! put of an entry extends every version it records to the entry's lifetime. So a read
//! that stores nothing (a request its handler rejects, an answer that is not cached) leaves
//! nothing behind for long, and Redis holds no version nobody needs. If one is lost anyway
//! (eviction, restart), entries that recorded it are misses.
//!
//! # Cluster mode
//!
//! With `CACHE_CLUSTER_MODE`, `REDIS_URL` lists the cluster's nodes and the store talks to
//! them through one [`ClusterConnection`] (Redis 7.0
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
use tokio::sync::OnceCell;

use crate::config::redis_url::{redact, split_urls};
use crate::store::StoreError;
use crate::{Error, Tag};

mod bump;
#[cfg(any(test, fuzzing))]
pub(crate) mod checks;
mod conns;
mod default_database;
mod epoch;
#[cfg(any(
    feature = "feed-postgres",
    feature = "feed-sqlite",
    feature = "feed-mysql"
))]
mod feed;
mod hints;
mod lease;
mod lookup;
mod put;
mod remove;
mod sentinel;
mod snapshot;

pub(crate) use epoch::EPOCH_TAG;
use epoch::{Incarnation, Watched, WatchedCluster};
pub(crate) use lookup::RawLookup;
pub(crate) use snapshot::RedisSnapshot;

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

/// A script made of [`CURRENT_FN`] and `body`, which calls `current` (the get and the put).
fn with_current(body: &str) -> redis::Script {
    redis::Script::new(&format!("{CURRENT_FN}{body}"))
}

/// Where the store's commands go: one server, or a cluster.
// One per store, built once: the variants' sizes (which depend on redis-rs's TLS features)
// do not matter.
#[allow(clippy::large_enum_variant)]
enum RedisBackend {
    /// One connection per runtime that uses the store (see [`conns`]).
    Single(conns::Connections),
    Cluster {
        /// Boxed: much larger than the single server's client, and built once.
        client: Box<ClusterClient>,
        /// One client per node URL, for the subscriber (which fails over between them).
        nodes: Vec<redis::Client>,
        /// Made on first use; replaced by a new one when the breaker's probe fails.
        conn: parking_lot::RwLock<std::sync::Arc<OnceCell<ClusterConnection>>>,
    },
}

/// A connection of either kind. Commands that mean the same on both go through it.
#[derive(Clone)]
enum Conn {
    Single(Watched),
    Cluster(WatchedCluster),
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

/// How often a cluster's incarnation is checked again in the background (see [`epoch`]): an
/// instance whose own commands saw nothing of a failover or a restart (no error reached
/// them) finds it by the first check that begins after it.
const CLUSTER_RECHECK: Duration = Duration::from_millis(500);

/// TCP keepalive probes start after this much idleness on a connection.
const KEEPALIVE_TIME: Duration = Duration::from_secs(15);
/// Then go this far apart.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// And this many unanswered ones close the connection.
const KEEPALIVE_RETRIES: u32 = 3;

/// `settings` with TCP keepalive on: a flow that a NAT, load balancer or proxy dropped
/// without a reset is closed by the OS (about 30 s after it went idle) even where no
/// heartbeat runs; the invalidation channel's own heartbeat (see `store::tiered::channel`)
/// notices it much sooner.
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

/// The connection policy of a single server's connections: see [`RedisStore::new`].
fn single_server_config(timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout * 2))
        .set_response_timeout(Some(timeout * 2))
        .set_number_of_retries(0)
}

/// The Redis store. See the module docs.
pub(crate) struct RedisStore {
    backend: RedisBackend,
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
        if url.contains("rediss://") {
            crate::tls::ensure_crypto_provider()
                .map_err(|reason| Error::config("REDIS_URL", redact(url), reason))?;
        }
        let incarnation = std::sync::Arc::new(if cluster {
            Incarnation::rechecked(CLUSTER_RECHECK)
        } else {
            Incarnation::new()
        });
        let sentinel = crate::config::redis_url::SentinelUrl::parse(url)
            .transpose()
            .map_err(|reason| Error::config("REDIS_URL", redact(url), reason))?;
        let backend = if let Some(sentinel) = sentinel {
            if sentinel.scheme == "rediss" {
                crate::tls::ensure_crypto_provider()
                    .map_err(|reason| Error::config("REDIS_URL", redact(url), reason))?;
            }
            // The master's URL as it will be made, at a placeholder address: it must parse.
            client_with_keepalive(&sentinel.master_url("localhost", 6379)).map_err(bad_url)?;
            let sentinels = sentinel::Sentinels::new(sentinel, timeout)
                .map_err(|reason| Error::config("REDIS_URL", redact(url), reason))?;
            // The first connection asks the Sentinels for the master.
            RedisBackend::Single(conns::Connections::following(
                sentinels,
                single_server_config(timeout),
                std::sync::Arc::clone(&incarnation),
            ))
        } else if cluster {
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
            RedisBackend::Cluster {
                client: Box::new(client),
                nodes,
                conn: parking_lot::RwLock::new(std::sync::Arc::new(OnceCell::new())),
            }
        } else {
            // The store bounds every operation by `timeout` itself (and tells a timeout
            // from an error that way); these only stop a dead connection from hanging.
            // No connection retries: a retry waits out a backoff (100 ms or more) before
            // trying again, and every command sent meanwhile waits with it, so a dead
            // server, which refuses connections at once, would cost each caller in flight
            // a full command timeout instead of an immediate error. The breaker is the
            // retry policy: errors open it, its background probe reconnects.
            RedisBackend::Single(conns::Connections::new(
                client_with_keepalive(url).map_err(bad_url)?,
                single_server_config(timeout),
                std::sync::Arc::clone(&incarnation),
            ))
        };
        Ok(Self::from_backend(
            backend,
            incarnation,
            prefix,
            timeout,
            compress_above,
            max_ttl,
        ))
    }

    /// A store on the server of `client`, made by the application
    /// (`CacheBuilder::redis_client`): its connection info (address, credentials, database,
    /// protocol, TLS parameters) with TCP keepalive added, and the same connection policy as
    /// [`new`](Self::new)'s single server.
    pub(crate) fn with_client(
        client: &redis::Client,
        prefix: &str,
        timeout: Duration,
        compress_above: Option<usize>,
        max_ttl: Duration,
    ) -> Result<Self, Error> {
        let info = client.get_connection_info().clone();
        let addr = info.addr().to_string();
        if matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. }) {
            crate::tls::ensure_crypto_provider().map_err(|reason| {
                Error::config("CacheBuilder::redis_client", addr.clone(), reason)
            })?;
        }
        let settings = keepalive_settings(info.tcp_settings().clone());
        let client = redis::Client::open(info.set_tcp_settings(settings))
            .map_err(|e| Error::config("CacheBuilder::redis_client", addr, e.to_string()))?;
        let incarnation = std::sync::Arc::new(Incarnation::new());
        let backend = RedisBackend::Single(conns::Connections::new(
            client,
            single_server_config(timeout),
            std::sync::Arc::clone(&incarnation),
        ));
        Ok(Self::from_backend(
            backend,
            incarnation,
            prefix,
            timeout,
            compress_above,
            max_ttl,
        ))
    }

    fn from_backend(
        backend: RedisBackend,
        incarnation: std::sync::Arc<Incarnation>,
        prefix: &str,
        timeout: Duration,
        compress_above: Option<usize>,
        max_ttl: Duration,
    ) -> Self {
        let max_ttl_ms = u64::try_from(max_ttl.as_millis()).unwrap_or(u64::MAX / 2);
        RedisStore {
            backend,
            prefix: prefix.to_owned(),
            timeout,
            compress_above,
            version_ttl_ms: max_ttl_ms.saturating_add(3_600_000),
            hints: hints::Hints::new(),
            get: with_current(lookup::GET_BODY),
            put: with_current(put::PUT_BODY),
            snapshot: redis::Script::new(snapshot::SNAPSHOT),
            bump: redis::Script::new(bump::BUMP),
            bump_full: redis::Script::new(bump::BUMP_FULL),
            full_bumps: std::sync::atomic::AtomicU64::new(0),
            release: redis::Script::new(lease::RELEASE),
            rotate: redis::Script::new(epoch::ROTATE),
            incarnation,
        }
    }

    /// A connection for the calling task. Made once, it is handed out without awaiting
    /// anything: the making is boxed, so a lookup's future does not carry it.
    async fn conn(&self) -> Result<Conn, StoreError> {
        match &self.backend {
            RedisBackend::Single(conns) => {
                let conn = conns.get().await.map_err(|source| StoreError::Connect {
                    target: "Redis",
                    source,
                })?;
                Ok(Conn::Single(Watched {
                    conn,
                    incarnation: std::sync::Arc::clone(&self.incarnation),
                }))
            }
            RedisBackend::Cluster { client, conn, .. } => {
                let watched = |conn: &ClusterConnection| {
                    Conn::Cluster(WatchedCluster {
                        conn: conn.clone(),
                        incarnation: std::sync::Arc::clone(&self.incarnation),
                    })
                };
                let cell = std::sync::Arc::clone(&conn.read());
                if let Some(made) = cell.get() {
                    return Ok(watched(made));
                }
                let made = Box::pin(cell.get_or_try_init(|| {
                    let client = client.clone();
                    on_io_runtime(async move { client.get_async_connection().await })
                }))
                .await
                .map_err(|source| StoreError::Connect {
                    target: "the Redis cluster",
                    source,
                })?;
                Ok(watched(made))
            }
        }
    }

    /// The Redis key of the entry under `key`: `<prefix>:e:<key>`.
    pub(crate) fn entry_key(&self, key: &str) -> String {
        // Not `format!`: this runs on every lookup.
        let mut entry = String::with_capacity(self.prefix.len() + 3 + key.len());
        entry.push_str(&self.prefix);
        entry.push_str(":e:");
        entry.push_str(key);
        entry
    }

    fn version_key(&self, tag: &Tag) -> String {
        format!("{}:v:{tag}", self.prefix)
    }

    /// The store epoch's version key: `<prefix>:v:querycache:#epoch` (see [`epoch`]).
    fn epoch_key(&self) -> String {
        format!("{}:v:{EPOCH_TAG}", self.prefix)
    }

    /// The removal marker: a token replaced by every key, pattern or namespace removal, so
    /// that a computation that began before a removal cannot store its result after it.
    /// (Entries do not record it: a removal must not kill the entries it does not match.)
    fn removals_key(&self) -> String {
        format!("{}:removals", self.prefix)
    }

    /// The pub/sub channel invalidations travel on: `<prefix>:invalidations`.
    pub(crate) fn channel(&self) -> String {
        format!("{}:invalidations", self.prefix)
    }

    /// Publishes `message` on the invalidation channel (on a cluster, through any node:
    /// the cluster forwards it to subscribers on every node).
    pub(crate) async fn publish(&self, message: &[u8]) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let _receivers: u64 = conn.publish(self.channel(), message).await?;
        Ok(())
    }

    /// One round trip to the server, or on a cluster to every master in parallel (the
    /// client routes PING to all of them, and fails if one fails).
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        Ok(redis::cmd("PING").query_async::<()>(&mut conn).await?)
    }

    /// The breaker's probe, before it closes: on a cluster, the incarnation check (every
    /// master that serves slots answers `INFO`: a `PING` would go to a random node, which
    /// may be a dead master the client still knows; see [`epoch`]); on a
    /// single server a `PING` through every connection made so far (one per runtime, see
    /// `conns`, the probe's own included), in parallel. A connection whose last
    /// reconnection failed during the outage keeps that failure until its next command,
    /// which fails with it and starts a new reconnection: without this, that command would
    /// be the first caller's after the breaker closed (an error on a healthy server,
    /// counted, shown by `health()`, a step towards opening the breaker again). So each
    /// connection gets a second `PING` if its first fails: that one waits for the
    /// reconnection the first one started, and fails only if the server does.
    pub(crate) async fn probe(&self) -> Result<(), StoreError> {
        let RedisBackend::Single(conns) = &self.backend else {
            return match self.conn().await? {
                Conn::Cluster(conn) => {
                    let checked = self.cluster_checked_now(conn).await;
                    if checked.is_err()
                        && let RedisBackend::Cluster { conn, .. } = &self.backend
                    {
                        // The cluster client can be left waiting on a node that is gone
                        // (seen after a failover: every command to one master hung): the
                        // next operation, or probe, makes a new connection, which learns
                        // the slots afresh. Callers in flight finish on the old one.
                        *conn.write() = std::sync::Arc::new(OnceCell::new());
                    }
                    checked
                }
                Conn::Single(_) => self.ping().await,
            };
        };
        // With Sentinels, the server that stopped answering may no longer be the master.
        conns
            .follow_master(true)
            .await
            .map_err(|reason| StoreError::Connect {
                target: "Redis",
                source: sentinel::error(reason),
            })?;
        conns.get().await.map_err(|source| StoreError::Connect {
            target: "Redis",
            source,
        })?;
        let pings = conns.made().into_iter().map(|mut conn| async move {
            if ping_one(&mut conn).await.is_ok() {
                return Ok(());
            }
            ping_one(&mut conn).await
        });
        try_join_all(pings).await.map(|_| ())
    }

    /// Clients for the subscriber, in the order to try them: the server, or every node of
    /// the cluster. With Sentinels, they are asked first which server is the master (the
    /// subscriber asks before each attempt, so it finds a promoted replica even while no
    /// command runs).
    ///
    /// # Errors
    /// What the Sentinels answered, when none named a master.
    pub(crate) async fn pubsub_clients(&self) -> Result<Vec<redis::Client>, String> {
        match &self.backend {
            RedisBackend::Single(conns) => {
                conns.follow_master(true).await?;
                Ok(conns.client().into_iter().collect())
            }
            RedisBackend::Cluster { nodes, .. } => Ok(nodes.clone()),
        }
    }

    /// The command timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The prefix of version keys, to read tag names back from an entry's header.
    pub(crate) fn version_prefix(&self) -> String {
        format!("{}:v:", self.prefix)
    }
}

/// Whether every `(version key, token)` of a snapshot is still current: one MGET, which the
/// cluster client splits by slot and sends to the masters in parallel.
async fn versions_current(
    conn: &mut WatchedCluster,
    versions: &[(&str, &str)],
) -> Result<bool, StoreError> {
    if versions.is_empty() {
        return Ok(true);
    }
    let mut mget = redis::cmd("MGET");
    for (key, _) in versions {
        mget.arg(*key);
    }
    let current: Vec<Option<Vec<u8>>> = mget.query_async(conn).await?;
    if current.len() != versions.len() {
        return Err(StoreError::ReplyLength {
            command: "MGET",
            got: current.len(),
            asked: versions.len(),
        });
    }
    Ok(versions
        .iter()
        .zip(&current)
        .all(|((_, token), now)| now.as_deref() == Some(token.as_bytes())))
}

/// A random 128-bit token, hex.
pub(crate) fn fresh_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// One `PING` through `conn`.
async fn ping_one(conn: &mut ConnectionManager) -> Result<(), StoreError> {
    Ok(redis::cmd("PING").query_async::<()>(conn).await?)
}

/// Makes a connection on querycache's I/O runtime, so that the tasks that drive it live
/// there: they keep running whatever runtime the caller is on, or when that runtime ends
/// (a test's). A cluster's connection, and the single server's shared one (see [`conns`]).
async fn on_io_runtime<T: Send + 'static>(
    connect: impl std::future::Future<Output = redis::RedisResult<T>> + Send + 'static,
) -> redis::RedisResult<T> {
    // In the caller's span (it waits for it); the tasks that drive the connection are not.
    let connect = tracing::Instrument::in_current_span(connect);
    match crate::runtime::io_handle().spawn(connect).await {
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
        let clients = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(ok.pubsub_clients())
            .unwrap();
        assert_eq!(clients.len(), 2, "one subscriber client per node");
        let err = store("redis://127.0.0.1:7000,http://nope").err().unwrap();
        assert!(err.to_string().contains("REDIS_URL"), "{err}");
        let err = store(" , ").err().unwrap();
        assert!(err.to_string().contains("REDIS_URL"), "{err}");
    }
}
