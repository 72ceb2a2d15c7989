//! The store epoch: what kills every entry stored before the server became a new
//! incarnation (a restart that loaded an RDB snapshot or an AOF, the promotion of a lagging
//! replica).
//!
//! Such a server holds older data than the one the instances talked to: entries that were
//! invalidated since, under the very tag versions they recorded, so the tokens match and
//! the get script would serve them. So every snapshot on a single server also reads one more
//! version, the epoch (`<prefix>:v:querycache:#epoch`, see [`EPOCH_TAG`]), which every
//! entry records in its header like a tag's version; both the get script and the hinted
//! pipeline ([`super::hints`]) compare it. The rotate script gives the epoch a fresh token
//! when the server's `run_id` (new at every start, different on every server) is not the one
//! recorded in `<prefix>:epoch-run`. That record is itself persisted with the old `run_id`,
//! so a server restored from its files always fails the comparison: the first instance to
//! check rotates, once per incarnation, and every entry from before is dead.
//!
//! # When an instance checks
//!
//! [`Incarnation`] holds a store-wide flag, "this server's incarnation was checked", false
//! at start. Every lookup, snapshot and put checks it first, and while it is false runs
//! `INFO server` and the rotate script before anything else. The flag is cleared:
//!
//! * by any connection-level error (I/O, dropped connection, refused connection, timeout)
//!   on a single-server connection ([`Watched`]): with no connection retries (see
//!   `RedisStore::new`) and RESP2 (no push messages), a `ConnectionManager` reconnects only
//!   when a command through it fails that way, and it returns that error to the caller
//!   within the same poll that starts the reconnection, so the flag is cleared before the
//!   new connection has finished its TCP handshake, long before any command through it
//!   can answer;
//! * when a connection is made (a new runtime's, see [`super::conns`]), before it is
//!   handed to its first caller;
//! * by the tiered store when its subscriber loses or regains the invalidation channel,
//!   and when the breaker closes after an outage.
//!
//! Every clearing also moves a generation counter. A lookup notes the generation once the
//! check passed, and a hit is thrown away (reported as a miss) if the generation moved
//! while the lookup was in flight: a command that went out before the flag was cleared may
//! have been answered by the new incarnation. What remains is a window of scheduling, not
//! of protocol: the erroring caller's thread would have to stall between the failed command
//! and the clearing for longer than another caller's reconnection and round trip.
//!
//! # On a cluster
//!
//! Every entry records the epoch there too (its key lives on one master, and one more
//! `MGET` in parallel reads it on a hit). The cluster's incarnation is the set of its
//! masters' `run_id`s: a check asks one node which masters serve slots (`CLUSTER SLOTS`,
//! the cluster's view rather than the client's), asks each its `INFO server` in parallel,
//! and sets the epoch to a hash of the sorted `run_id`s unless it holds that hash already.
//! A promoted replica or a restarted master has a `run_id` never seen before, so the hash is
//! a token never used before; every instance computes the same one, so instances checking at
//! once agree, and no script (whose keys would have to share a slot) is needed.
//!
//! The flag is cleared as on a single server (connection-level errors on the cluster
//! connection, [`WatchedCluster`], the channel, the breaker), and the check then runs before
//! anything else. But the cluster client retries and follows redirections by itself, so an
//! instance's commands may never see an error from a failover or a restart. So while the
//! flag is up, a check also starts in the background at most every 500 ms (with an
//! operation, never blocking it), and a rotation it finds throws away the hits of lookups
//! in flight: an entry invalidated by a write that the failover lost is served by an
//! instance at most until the first check that begins after the new incarnation took its
//! slots, about 500 ms when the instance is busy. While a master is unreachable the check
//! fails, and so does every operation that waits for it (the tiered store's memory tier
//! serves, held to its degraded bound).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

use super::{RedisStore, fresh_token};
use crate::store::StoreError;

/// The tag whose version is the store epoch. A user tag of this name shares it (bumping it
/// then kills every entry, as a rotation does); nothing else can reach it.
pub(crate) const EPOCH_TAG: &str = "querycache:#epoch";

/// Rotates the epoch unless the server's `run_id` (`ARGV[1]`) is the one recorded in
/// `KEYS[1]` (`<prefix>:epoch-run`): records it and gives the epoch version (`KEYS[2]`) a
/// fresh token (`ARGV[2]`, for `ARGV[3]` ms). Returns 0 if the `run_id` was the one
/// recorded, 1 if it rotated from another one (a new incarnation), 2 if none was recorded
/// (a new store, or one cleared: it rotates all the same).
pub(super) const ROTATE: &str = r"
local recorded = redis.call('GET', KEYS[1])
if recorded == ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
if recorded then return 1 end
return 2
";

/// What an error of the incarnation check says it was doing.
const CHECKING: &str = "checking the Redis incarnation";

impl RedisStore {
    /// The `run_id` the epoch was last rotated for: `<prefix>:epoch-run`.
    fn epoch_run_key(&self) -> String {
        format!("{}:epoch-run", self.prefix)
    }

    /// Checks the single server's incarnation unless it was checked since the last sign
    /// that it may have changed: `INFO server`'s `run_id`, then the rotate script (see
    /// the module docs). Returns the generation the check holds for, to tell whether it still
    /// held when a lookup's reply came back.
    pub(super) async fn incarnation_checked(&self, conn: &mut Watched) -> Result<u64, StoreError> {
        match self.incarnation.current() {
            Some(generation) => Ok(generation),
            // Boxed: a lookup's future holds the check's only while one runs.
            None => Box::pin(self.check_incarnation(conn)).await,
        }
    }

    /// [`incarnation_checked`](Self::incarnation_checked) when the flag is down.
    async fn check_incarnation(&self, conn: &mut Watched) -> Result<u64, StoreError> {
        let _turn = self.incarnation.checking().lock().await;
        if let Some(generation) = self.incarnation.current() {
            return Ok(generation);
        }
        let generation = self.incarnation.generation();
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(conn)
            .await
            .map_err(|source| StoreError::Epoch {
                step: CHECKING,
                source,
            })?;
        let run_id = run_id(&info)
            .ok_or(StoreError::Malformed {
                context: CHECKING,
                problem: "INFO names no run_id",
            })?
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
            .map_err(|source| StoreError::Epoch {
                step: "rotating the store epoch",
                source,
            })?;
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

    /// The cluster's [`incarnation_checked`](Self::incarnation_checked): while the flag is
    /// down, checks before anything else; while it is up, starts a check in the background
    /// when one is due (see the module docs) and goes on.
    pub(super) async fn cluster_incarnation_checked(
        &self,
        conn: &mut WatchedCluster,
    ) -> Result<u64, StoreError> {
        // Built only when a check runs: the common case (verified, no recheck due) costs
        // two atomic loads, no connection clone and no key.
        let check = || self.cluster_check(conn.clone());
        match self.incarnation.current() {
            Some(generation) => {
                if self.incarnation.recheck_due() {
                    let check = check();
                    let background = async move {
                        if let Err(error) = check.run(true).await {
                            tracing::debug!(%error, "the Redis cluster's incarnation check failed");
                        }
                    };
                    drop(crate::runtime::io_handle().spawn(background));
                }
                Ok(generation)
            }
            None => Box::pin(check().run(false)).await,
        }
    }

    /// The cluster's incarnation checked now, whatever the flag says: the breaker's probe on
    /// a cluster. It passes only when every master that serves slots (as the cluster says)
    /// answers, and rotates the epoch before the breaker closes if the masters changed.
    pub(super) async fn cluster_checked_now(&self, conn: WatchedCluster) -> Result<(), StoreError> {
        self.cluster_check(conn).run(true).await.map(|_| ())
    }

    /// A check of the cluster's incarnation through `conn`.
    fn cluster_check(&self, conn: WatchedCluster) -> ClusterCheck {
        ClusterCheck {
            conn,
            epoch: self.epoch_key(),
            version_ttl_ms: self.version_ttl_ms,
            timeout: self.timeout,
        }
    }

    /// The server may be another one (the invalidation channel was lost or came back, the
    /// breaker closed after an outage): the next operation checks its incarnation.
    pub(crate) fn incarnation_unknown(&self, why: &str) {
        self.incarnation.reset(why);
    }

    /// How many times this instance rotated the store epoch (see the module docs).
    pub(crate) fn epoch_rotations(&self) -> u64 {
        self.incarnation.rotations()
    }
}

/// Whether the server's incarnation was checked since the last sign that it may have
/// changed. See the module docs.
#[derive(Debug)]
pub(crate) struct Incarnation {
    verified: AtomicBool,
    /// On a cluster, how often a check runs again in the background while the flag is up:
    /// a failover that this instance's own commands never saw (no error reached them) is
    /// found all the same.
    recheck_every: Option<std::time::Duration>,
    /// When the last check began, in milliseconds since `born` (with `recheck_every`).
    checked_ms: AtomicU64,
    born: std::time::Instant,
    /// Moved by every [`reset`](Self::reset).
    generation: AtomicU64,
    /// How many times this instance rotated the epoch for a new incarnation (not counting
    /// the first record of a `run_id` on a new store).
    rotations: AtomicU64,
    /// One check at a time.
    checking: tokio::sync::Mutex<()>,
    /// The `run_id` the last check found: computation leases are named after it, so that
    /// a lease restored with an older snapshot (its holder long done) holds nobody up.
    run_id: std::sync::Mutex<Option<std::sync::Arc<str>>>,
}

impl Incarnation {
    /// Unchecked: the first operation checks.
    pub(crate) fn new() -> Self {
        Incarnation {
            verified: AtomicBool::new(false),
            recheck_every: None,
            checked_ms: AtomicU64::new(0),
            born: std::time::Instant::now(),
            generation: AtomicU64::new(0),
            rotations: AtomicU64::new(0),
            checking: tokio::sync::Mutex::new(()),
            run_id: std::sync::Mutex::new(None),
        }
    }

    /// Unchecked, and checked again in the background every `every` (a cluster's, see the
    /// module docs).
    pub(crate) fn rechecked(every: std::time::Duration) -> Self {
        Incarnation {
            recheck_every: Some(every),
            ..Self::new()
        }
    }

    /// Milliseconds since this was made.
    fn age_ms(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether a background check is due (`recheck_every` passed since the last check
    /// began); if so, the caller runs it: the next caller is not told again until then.
    fn recheck_due(&self) -> bool {
        let Some(every) = self.recheck_every else {
            return false;
        };
        let every = u64::try_from(every.as_millis()).unwrap_or(u64::MAX);
        let now = self.age_ms();
        let last = self.checked_ms.load(Ordering::Acquire);
        now.saturating_sub(last) >= every
            && self
                .checked_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// Notes that a check begins now.
    fn check_begins(&self) {
        self.checked_ms.store(self.age_ms(), Ordering::Release);
    }

    /// The server may have changed: the next operation checks again, and hits of lookups
    /// in flight are thrown away.
    pub(crate) fn reset(&self, why: &str) {
        // The generation first: a check that read it before this reset cannot mark the
        // incarnation verified (see `verified_at`).
        self.generation.fetch_add(1, Ordering::AcqRel);
        if self.verified.swap(false, Ordering::AcqRel) {
            tracing::debug!(why, "Redis incarnation to be checked again");
        }
    }

    /// The generation now, if the incarnation is verified.
    pub(super) fn current(&self) -> Option<u64> {
        let generation = self.generation.load(Ordering::Acquire);
        self.verified.load(Ordering::Acquire).then_some(generation)
    }

    /// Whether nothing reset the flag since [`current`](Self::current) answered
    /// `generation`.
    pub(super) fn still(&self, generation: u64) -> bool {
        self.generation.load(Ordering::Acquire) == generation
            && self.verified.load(Ordering::Acquire)
    }

    /// The lock checks take turns on.
    pub(super) fn checking(&self) -> &tokio::sync::Mutex<()> {
        &self.checking
    }

    /// The generation to check under, read before the check's first command.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A check that began at `generation` passed: verified, unless something reset the
    /// flag meanwhile (then the next operation checks again).
    pub(super) fn verified_at(&self, generation: u64, rotated: bool) {
        if rotated {
            self.rotations.fetch_add(1, Ordering::Relaxed);
        }
        if self.generation.load(Ordering::Acquire) == generation {
            self.verified.store(true, Ordering::Release);
            // A reset between the load and the store moved the generation: undo.
            if self.generation.load(Ordering::Acquire) != generation {
                self.verified.store(false, Ordering::Release);
            }
        }
    }

    /// Records the `run_id` a check found.
    pub(super) fn found(&self, run_id: &str) {
        let mut slot = self
            .run_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.as_deref() != Some(run_id) {
            *slot = Some(std::sync::Arc::from(run_id));
        }
    }

    /// The `run_id` the last check found, if any.
    pub(super) fn run_id(&self) -> Option<std::sync::Arc<str>> {
        self.run_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many times this instance rotated the epoch.
    pub(crate) fn rotations(&self) -> u64 {
        self.rotations.load(Ordering::Relaxed)
    }
}

impl Default for Incarnation {
    fn default() -> Self {
        Self::new()
    }
}

/// `INFO server`'s `run_id`.
pub(super) fn run_id(info: &str) -> Option<&str> {
    info.lines()
        .find_map(|line| line.trim_end().strip_prefix("run_id:"))
        .filter(|id| !id.is_empty())
}

/// What a cluster's incarnation check needs, owned: a background check outlives the
/// operation that started it.
struct ClusterCheck {
    conn: WatchedCluster,
    /// The epoch's version key.
    epoch: String,
    version_ttl_ms: u64,
    /// How long the check may take (the store's command timeout): a check holds the lock
    /// every other check waits on, and a background check has no caller to give up.
    timeout: std::time::Duration,
}

impl ClusterCheck {
    /// The masters that serve slots now (`CLUSTER SLOTS`), each one's `run_id` (`INFO
    /// server`, in parallel), and the epoch set to the token those `run_id`s make (see the
    /// module docs). `again`: a background check, run even though the flag is up; a
    /// rotation it finds throws away the hits of lookups in flight. Returns the generation
    /// the check holds for.
    async fn run(self, again: bool) -> Result<u64, StoreError> {
        let incarnation = Arc::clone(&self.conn.incarnation);
        let _turn = incarnation.checking().lock().await;
        if !again && let Some(generation) = incarnation.current() {
            return Ok(generation);
        }
        incarnation.check_begins();
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.locked(again, &incarnation)).await {
            Ok(checked) => checked,
            Err(_) => Err(StoreError::Timeout { limit: timeout }),
        }
    }

    /// [`run`](Self::run), its turn taken.
    async fn locked(mut self, again: bool, incarnation: &Incarnation) -> Result<u64, StoreError> {
        let mut generation = incarnation.generation();
        let infos = self.masters_info().await?;
        let mut run_ids = Vec::with_capacity(infos.len());
        for info in &infos {
            run_ids.push(run_id(info).ok_or(StoreError::Malformed {
                context: CHECKING,
                problem: "a master's INFO names no run_id",
            })?);
        }
        let masters = run_ids.len();
        let token = cluster_epoch_token(&mut run_ids);
        let recorded: Option<String> = redis::cmd("GET")
            .arg(&self.epoch)
            .query_async(&mut self.conn)
            .await
            .map_err(|source| StoreError::Epoch {
                step: CHECKING,
                source,
            })?;
        let rotated = match recorded {
            Some(recorded) if recorded == token => {
                tracing::trace!(masters, "Redis cluster incarnation checked: unchanged");
                false
            }
            recorded => {
                let () = redis::cmd("SET")
                    .arg(&self.epoch)
                    .arg(&token)
                    .arg("PX")
                    .arg(self.version_ttl_ms)
                    .query_async(&mut self.conn)
                    .await
                    .map_err(|source| StoreError::Epoch {
                        step: "rotating the store epoch",
                        source,
                    })?;
                if recorded.is_none() {
                    tracing::info!(masters, "store epoch started on the Redis cluster");
                    false
                } else {
                    tracing::warn!(
                        masters,
                        "the Redis cluster's masters are not the ones recorded (a failover, \
                         a restart): every entry stored before is dead"
                    );
                    if again {
                        incarnation.reset("the cluster's epoch rotated");
                        generation = incarnation.generation();
                    }
                    true
                }
            }
        };
        incarnation.verified_at(generation, rotated);
        Ok(generation)
    }

    /// `INFO server` of every master that serves slots now, as the cluster says
    /// (`CLUSTER SLOTS`), in parallel.
    async fn masters_info(&mut self) -> Result<Vec<String>, StoreError> {
        let masters = super::remove::cluster_masters(&mut self.conn).await?;
        futures_util::future::try_join_all(masters.into_iter().map(|(host, port)| {
            let mut conn = self.conn.clone();
            let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
            async move {
                let reply = conn
                    .route_command(redis::cmd("INFO").arg("server").clone(), routing)
                    .await
                    .map_err(|source| StoreError::Epoch {
                        step: CHECKING,
                        source,
                    })?;
                redis::from_redis_value::<String>(reply).map_err(|source| StoreError::Unreadable {
                    command: "INFO server",
                    source,
                })
            }
        }))
        .await
    }
}

/// The cluster's epoch token for its masters' `run_id`s: a hash of them, sorted (the order
/// the masters were listed in does not matter). A new incarnation of any master (a
/// restart, a promoted replica) has a `run_id` never seen before, so a token never used
/// before; the same masters make the same token on every instance, so instances that check
/// at once agree.
fn cluster_epoch_token(run_ids: &mut [&str]) -> String {
    run_ids.sort_unstable();
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(b"querycache:cluster-epoch\0");
    for id in run_ids.iter() {
        hasher.update(id.as_bytes());
        hasher.update(b"\0");
    }
    format!("{:032x}", hasher.digest128())
}

/// A single server's connection that clears the incarnation flag on connection-level
/// errors (see the module docs).
#[derive(Clone)]
pub(super) struct Watched {
    pub(super) conn: ConnectionManager,
    pub(super) incarnation: Arc<Incarnation>,
}

/// Whether `error` says the connection was lost (or never made): the server behind it
/// may be another one when it comes back.
fn connection_lost(error: &redis::RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_unrecoverable_error()
}

/// `sent`'s reply, after clearing the incarnation flag if it says the connection was lost.
/// `sent` is the manager's own method's future, not its `ConnectionLike` one (boxed): one
/// boxed future per command, not two (every hit comes this way). It is polled where it is
/// boxed (an `async` block would move it once more, on its first poll: more than a
/// kilobyte per command).
fn watched<'a, T: Send + 'a>(
    incarnation: &'a Incarnation,
    sent: impl std::future::Future<Output = redis::RedisResult<T>> + Send + 'a,
) -> redis::RedisFuture<'a, T> {
    use futures_util::FutureExt;
    Box::pin(sent.inspect(move |reply| incarnation.note(reply)))
}

impl Incarnation {
    /// Clears the flag if `reply` says the connection was lost.
    fn note<T>(&self, reply: &redis::RedisResult<T>) {
        if let Err(error) = reply
            && connection_lost(error)
        {
            self.reset("connection error");
        }
    }
}

impl Watched {
    /// Sends `pipeline` and reads its replies, as [`ConnectionLike::req_packed_commands`]
    /// does, without boxing the manager's future: a hit's pipeline comes this way, and the
    /// boxed future (more than a kilobyte) was an allocation and a copy per hit.
    pub(super) async fn send_pipeline(
        &mut self,
        pipeline: &redis::Pipeline,
    ) -> redis::RedisResult<Vec<redis::Value>> {
        let reply = self
            .conn
            .send_packed_commands(pipeline, 0, pipeline.len())
            .await;
        self.incarnation.note(&reply);
        reply
    }
}

/// The cluster's connection that clears the incarnation flag on connection-level errors, as
/// [`Watched`] does for a single server's.
#[derive(Clone)]
pub(super) struct WatchedCluster {
    pub(super) conn: ClusterConnection,
    pub(super) incarnation: Arc<Incarnation>,
}

impl WatchedCluster {
    /// `cmd`, sent where `routing` says (`SCAN` and `INFO` to one master).
    pub(super) async fn route_command(
        &mut self,
        cmd: redis::Cmd,
        routing: RoutingInfo,
    ) -> redis::RedisResult<redis::Value> {
        let reply = self.conn.route_command(cmd, routing).await;
        self.incarnation.note(&reply);
        reply
    }
}

impl ConnectionLike for WatchedCluster {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        let sent = self.conn.req_packed_command(cmd);
        watched(&self.incarnation, sent)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        let sent = self.conn.req_packed_commands(pipeline, offset, count);
        watched(&self.incarnation, sent)
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

impl ConnectionLike for Watched {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        let sent = self.conn.send_packed_command(cmd);
        watched(&self.incarnation, sent)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        let sent = self.conn.send_packed_commands(pipeline, offset, count);
        watched(&self.incarnation, sent)
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_id_is_read_from_info() {
        let info = "# Server\r\nredis_version:7.2.4\r\nrun_id:abc123\r\ntcp_port:6379\r\n";
        assert_eq!(run_id(info), Some("abc123"));
        assert_eq!(run_id("# Server\r\nrun_id:\r\n"), None);
        assert_eq!(run_id("nothing"), None);
    }

    #[test]
    fn a_reset_during_a_check_keeps_the_flag_down() {
        let inc = Incarnation::new();
        assert_eq!(inc.current(), None, "unchecked at start");
        let at = inc.generation();
        inc.verified_at(at, true);
        let g = inc.current().unwrap();
        assert!(inc.still(g));
        assert_eq!(inc.rotations(), 1);
        inc.reset("test");
        assert!(!inc.still(g), "a lookup in flight throws its hit away");
        assert_eq!(inc.current(), None);
        let at = inc.generation();
        inc.reset("during the check");
        inc.verified_at(at, false);
        assert_eq!(inc.current(), None, "the check began before the reset");
        assert_eq!(inc.rotations(), 1);
    }
}
