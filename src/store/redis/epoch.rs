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
//! Cluster mode is not covered (each master would need its own epoch and check): a
//! limitation, documented in the README.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use redis::aio::{ConnectionLike, ConnectionManager};

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
#[derive(Debug, Default)]
pub(crate) struct Incarnation {
    verified: AtomicBool,
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
        Self::default()
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

/// `INFO server`'s `run_id`.
pub(super) fn run_id(info: &str) -> Option<&str> {
    info.lines()
        .find_map(|line| line.trim_end().strip_prefix("run_id:"))
        .filter(|id| !id.is_empty())
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
