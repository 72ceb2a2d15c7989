//! The Redis-backed stores: tiered (memory in front of Redis) and Redis-only, both with a
//! memory fallback behind a circuit breaker.
//!
//! **Reads** try the memory tier first (tiered mode, while the invalidation channel is
//! subscribed), then Redis, where one script checks the entry against its tags' current
//! versions. A Redis hit fills the memory tier under the entry's own tags.
//!
//! **Writes** (invalidations) go to Redis first, with the message to the other instances
//! published by the same script, and only then to this process's memory tier. That order
//! is what makes a read racing the write safe: a Redis lookup that started before the bump
//! can only fill the memory tier with entries the local bump then kills, and the fill is
//! refused outright if any invalidation was applied while it was in flight.
//!
//! **Failures** never reach callers. Each Redis operation is bounded by the command
//! timeout; the [`Breaker`] opens on a timeout or on repeated errors, and while it is open
//! the memory tier serves alone. Invalidations made meanwhile are kept ([`Pending`]) and
//! replayed to Redis, with their messages, by the background probe before the breaker
//! closes — so an entry parked in Redis before the outage is never served after it. The
//! invariant that makes this airtight: *while anything is pending, the breaker is open*,
//! kept by changing both under one lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;

use self::breaker::Breaker;
use self::channel::{Listener, Message, Op};
use self::pending::Pending;
use super::codec;
use super::memory::{MemSnapshot, MemoryStore};
use super::redis::{RawLookup, RedisSnapshot, RedisStore};
use super::{
    AnyValue, Decode, Deps, Encode, EntryMeta, Found, Lookup, PutOutcome, ReadScope, Store,
    StoreError, StoreUsage, Timing,
};
use crate::clock::now_ms;
use crate::config::StoreKind;
use crate::{Key, Tag};

mod breaker;
mod channel;
#[cfg(any(
    feature = "feed-postgres",
    feature = "feed-sqlite",
    feature = "feed-mysql"
))]
mod feed;
mod leases;
mod outage;
mod pending;

/// The versions an entry is computed under in each tier. `redis` is `None` when Redis
/// could not be asked (breaker open or a failure): the value may then go to memory only.
#[derive(Clone)]
pub(crate) struct TieredSnapshot {
    mem: MemSnapshot,
    redis: Option<RedisSnapshot>,
}

impl TieredSnapshot {
    /// This snapshot and `later` (see [`MemSnapshot::joined`]); Redis's versions only when
    /// both have them (a snapshot Redis did not answer is judged by process memory).
    pub(crate) fn joined(&self, later: &TieredSnapshot) -> TieredSnapshot {
        TieredSnapshot {
            mem: self.mem.joined(&later.mem),
            redis: match (&self.redis, &later.redis) {
                (Some(a), Some(b)) => Some(a.joined(b)),
                _ => None,
            },
        }
    }

    /// The fingerprint [`Store::fingerprint`] reads, from this snapshot's versions: Redis's
    /// when it answered, process memory's otherwise.
    pub(crate) fn fingerprint(&self, tags: &[Tag]) -> u64 {
        match &self.redis {
            Some(redis) => redis.fingerprint(),
            None => self.mem.fingerprint(tags),
        }
    }
}

/// What [`health`](TieredStore::health) reports.
#[derive(Debug, Clone)]
pub(crate) struct StoreHealth {
    pub(crate) redis_connected: bool,
    pub(crate) fallback_active: bool,
    pub(crate) subscribed: Option<bool>,
    pub(crate) channel_losses: u64,
    /// Whether the channel was ever up, or failed to come up: the instance is past
    /// starting.
    pub(crate) channel_settled: bool,
    pub(crate) pending_invalidations: usize,
    pub(crate) full_bumps: u64,
    pub(crate) degraded_refusals: u64,
    /// How many times this instance found Redis to be a new incarnation and rotated the
    /// store epoch.
    pub(crate) epoch_rotations: u64,
    pub(crate) error: Option<String>,
}

/// Redis, with or without a memory tier in front, and the memory fallback. See the module
/// docs.
pub(crate) struct TieredStore {
    inner: Arc<Shared>,
}

struct Shared {
    memory: MemoryStore,
    redis: RedisStore,
    /// `true`: memory in front of Redis. `false`: Redis only, memory as fallback only.
    memory_tier: bool,
    breaker: Breaker,
    pending: Mutex<Pending>,
    /// Bumped before every invalidation is applied to the memory tier: a Redis hit fills
    /// memory only if nothing was applied while it was being fetched.
    applied: AtomicU64,
    subscribed: AtomicBool,
    /// Times the invalidation channel was lost (see [`crate::Health`]).
    channel_losses: AtomicU64,
    /// The epoch rotations seen so far (see [`Shared::after_rotation`]).
    rotations_seen: AtomicU64,
    /// The channel was up once, or an attempt to subscribe failed (see [`StoreHealth`]).
    channel_settled: AtomicBool,
    started: AtomicBool,
    probing: AtomicBool,
    instance: String,
    errors: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Leases that may be held in Redis with nobody to give them back (see [`leases`]).
    orphans: Mutex<Vec<(String, String)>>,
    /// Whether a task is giving orphaned leases back.
    releasing: AtomicBool,
    cooldown: Duration,
    /// How often the subscriber pings its connection (`CACHE_CHANNEL_HEARTBEAT_MS`).
    heartbeat: Duration,
    /// The oldest data process memory serves while the breaker is open
    /// (`CACHE_DEGRADED_MAX_AGE_MS`; see [`Shared::memory_lookup`]).
    degraded_max_age: Duration,
    /// Memory hits refused during an outage for being older than `degraded_max_age`.
    degraded_refusals: AtomicU64,
    /// Dropped with the store: stops the background tasks.
    shutdown: watch::Sender<()>,
    /// The cache's live invalidation stream: other instances' invalidations are published
    /// on it when they are applied here.
    events: Arc<crate::events::EventBus>,
}

impl TieredStore {
    /// `config` gives the breaker's threshold and cooldown, the channel's heartbeat and the
    /// degraded bound.
    pub(crate) fn new(
        memory: MemoryStore,
        redis: RedisStore,
        kind: StoreKind,
        config: &crate::CacheConfig,
        events: Arc<crate::events::EventBus>,
    ) -> Self {
        let (shutdown, _) = watch::channel(());
        TieredStore {
            inner: Arc::new(Shared {
                memory,
                redis,
                memory_tier: kind == StoreKind::Tiered,
                breaker: Breaker::new(config.breaker_threshold),
                pending: Mutex::new(Pending::default()),
                applied: AtomicU64::new(0),
                subscribed: AtomicBool::new(false),
                channel_losses: AtomicU64::new(0),
                rotations_seen: AtomicU64::new(0),
                channel_settled: AtomicBool::new(false),
                started: AtomicBool::new(false),
                probing: AtomicBool::new(false),
                instance: events.instance().to_owned(),
                errors: AtomicU64::new(0),
                last_error: Mutex::new(None),
                orphans: Mutex::new(Vec::new()),
                releasing: AtomicBool::new(false),
                cooldown: config.breaker_cooldown,
                heartbeat: config.channel_heartbeat,
                degraded_max_age: config.degraded_max_age,
                degraded_refusals: AtomicU64::new(0),
                shutdown,
                events,
            }),
        }
    }

    /// `tiered` or `redis`.
    pub(crate) fn tier(&self) -> &'static str {
        if self.inner.memory_tier {
            "tiered"
        } else {
            "redis"
        }
    }

    /// Whether process memory serves in Redis's place right now (the breaker is open): a
    /// synchronous read, for metrics scraped without a probe.
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) fn fallback_active(&self) -> bool {
        !self.inner.breaker.is_closed()
    }

    /// Which database is the default one of every cache sharing this Redis prefix: the
    /// one recorded, after claiming `candidate` if none is (see
    /// `RedisStore::claim_default_database`). An error while Redis cannot answer.
    pub(crate) async fn default_database(&self, candidate: &str) -> Result<String, StoreError> {
        let s = &self.inner;
        s.call(
            "default database",
            s.redis.claim_default_database(candidate),
        )
        .await
        .map_err(|()| StoreError::Out {
            last_error: s.last_error.lock().clone(),
        })
    }

    /// Probes Redis (unless the breaker is open: the background probe is on it) and
    /// reports the state of each part.
    pub(crate) async fn health(&self) -> StoreHealth {
        let s = &self.inner;
        s.start();
        let connected = if s.breaker.is_closed() {
            s.call("ping", s.redis.ping()).await.is_ok()
        } else {
            false
        };
        StoreHealth {
            redis_connected: connected && s.breaker.is_closed(),
            fallback_active: !s.breaker.is_closed(),
            subscribed: s.memory_tier.then(|| s.subscribed.load(Ordering::Acquire)),
            channel_losses: s.channel_losses.load(Ordering::Relaxed),
            channel_settled: s.channel_settled.load(Ordering::Acquire),
            pending_invalidations: s.pending.lock().len(),
            full_bumps: s.redis.full_bumps(),
            degraded_refusals: s.degraded_refusals.load(Ordering::Relaxed),
            epoch_rotations: s.redis.epoch_rotations(),
            error: s.last_error.lock().clone(),
        }
    }
}

impl Shared {
    /// Starts the background subscriber (on querycache's I/O runtime), once.
    fn start(self: &Arc<Self>) {
        if !self.memory_tier || self.started.load(Ordering::Acquire) {
            return;
        }
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        crate::runtime::io_handle().spawn(channel::subscribe(
            self.redis.channel(),
            self.redis.timeout(),
            self.cooldown,
            channel::Heartbeat::new(self.heartbeat, self.degraded_max_age),
            Arc::downgrade(self),
            self.shutdown.subscribe(),
        ));
    }

    /// Runs one Redis operation under the breaker and the command timeout.
    ///
    /// Not an `async fn`: one would hold `op` twice (as its argument, and moved into the
    /// timeout), and copy it once more when first polled. Built from combinators, `op` is
    /// moved once, into the timeout, and polled where it lies: a hit's future is that much
    /// smaller, and every hit copies it as it is moved into place.
    fn call<T, F>(
        self: &Arc<Self>,
        operation: &'static str,
        op: F,
    ) -> impl Future<Output = Result<T, ()>> + use<'_, T, F>
    where
        F: Future<Output = Result<T, StoreError>>,
    {
        use futures_util::FutureExt;
        use futures_util::future::Either;
        if !self.breaker.is_closed() {
            return Either::Left(std::future::ready(Err(())));
        }
        let timeout = self.redis.timeout();
        Either::Right(
            tokio::time::timeout(timeout, op).map(move |result| match result {
                Ok(Ok(value)) => {
                    self.breaker.success();
                    self.after_rotation();
                    Ok(value)
                }
                Ok(Err(error)) => {
                    self.failed(operation, error);
                    Err(())
                }
                Err(_) => {
                    self.failed(operation, StoreError::Timeout { limit: timeout });
                    Err(())
                }
            }),
        )
    }

    /// Drops the memory tier if the store epoch was rotated since last seen: nothing this
    /// process holds from before the server became a new incarnation survives in memory
    /// (filled from Redis hits, it may come from the very data the rotation kills).
    fn after_rotation(&self) {
        let rotations = self.redis.epoch_rotations();
        // A load first: the common case writes nothing to the shared cache line.
        if self.rotations_seen.load(Ordering::Acquire) != rotations
            && self.rotations_seen.swap(rotations, Ordering::AcqRel) != rotations
        {
            self.drop_memory();
        }
    }

    /// Applies `op` to Redis and publishes it (one script for tags; the operation, then a
    /// message, for the others). Returns how many tags had a version, or keys were removed.
    async fn apply_remote(&self, op: &Op) -> Result<usize, StoreError> {
        let message = Message {
            from: self.instance.clone(),
            op: op.clone(),
        }
        .encode();
        let removed = match op {
            Op::Tags { tags } => {
                let tags: Vec<Tag> = tags
                    .iter()
                    .filter_map(|t| Tag::new(t.as_str()).ok())
                    .collect();
                // The bump script publishes the message itself, atomically.
                return self.redis.bump(&tags, &message).await;
            }
            Op::Key { key } => usize::from(self.redis.remove_key(key).await?),
            Op::Pattern { pattern } => self.redis.remove_pattern(pattern).await?,
            Op::Clear => self.redis.clear_all().await?,
        };
        self.redis.publish(&message).await?;
        Ok(removed)
    }

    /// Applies `op` to the memory tier. Returns how many tags or keys it touched.
    fn apply_local(&self, op: &Op) -> usize {
        self.applied.fetch_add(1, Ordering::AcqRel);
        match op {
            Op::Tags { tags } => {
                let tags: Vec<Tag> = tags
                    .iter()
                    .filter_map(|t| Tag::new(t.as_str()).ok())
                    .collect();
                self.memory.bump(&tags)
            }
            Op::Key { key } => usize::from(self.memory.remove_key(key)),
            Op::Pattern { pattern } => match glob::Pattern::new(pattern) {
                Ok(p) => self.memory.remove_pattern(&p),
                Err(_) => {
                    self.memory.clear_all();
                    0
                }
            },
            Op::Clear => {
                self.memory.clear_all();
                0
            }
        }
    }

    /// Publishes another instance's `op` on the cache's live invalidation stream (a key
    /// removal names no tag and is not published).
    fn publish_remote(&self, op: &Op) {
        match op {
            Op::Tags { tags } => {
                let tags: Vec<Tag> = tags
                    .iter()
                    .filter_map(|t| Tag::new(t.as_str()).ok())
                    .collect();
                self.events.tags(&tags);
            }
            Op::Key { .. } => {}
            Op::Pattern { .. } | Op::Clear => self.events.cleared(),
        }
    }

    fn drop_memory(&self) {
        self.apply_local(&Op::Clear);
    }

    /// An invalidation made by this instance: Redis (and the other instances) first, then
    /// this process's memory. Returns what Redis reported, or the local count during an
    /// outage.
    async fn invalidate(self: &Arc<Self>, op: Op) -> usize {
        self.start();
        // While the breaker is open the operation waits for the replay — unless the probe
        // closed the breaker meanwhile (checked under the lock it closes it under).
        let deferred = !self.breaker.is_closed() && {
            let mut pending = self.pending.lock();
            let open = !self.breaker.is_closed();
            if open {
                pending.add(&op);
            }
            open
        };
        let remote = if deferred {
            None
        } else {
            match self.call("invalidate", self.apply_remote(&op)).await {
                Ok(n) => Some(n),
                Err(()) => {
                    self.defer(&op);
                    None
                }
            }
        };
        let local = self.apply_local(&op);
        remote.unwrap_or(local)
    }

    /// Whether lookups may be answered from process memory (through
    /// [`memory_lookup`](Self::memory_lookup), which bounds the age of what it serves
    /// while the breaker is open).
    fn memory_readable(&self) -> bool {
        !self.breaker.is_closed() || (self.memory_tier && self.subscribed.load(Ordering::Acquire))
    }

    /// Whether process memory may answer a caller without any other check: the memory tier
    /// while it hears the invalidation channel and Redis is up. Not while the breaker is
    /// open (memory then answers through [`memory_lookup`](Self::memory_lookup) only).
    fn memory_trusted(&self) -> bool {
        self.memory_tier && self.breaker.is_closed() && self.subscribed.load(Ordering::Acquire)
    }

    /// A lookup in process memory. While the breaker is open, this instance cannot hear
    /// other instances' invalidations: an entry whose data is older than
    /// `degraded_max_age` (its age plus the time its computation took, so measured from
    /// when the database was read) is not served, and with a bound of zero nothing is. A
    /// write through another instance therefore shows here within the bound, however long
    /// the outage lasts.
    fn memory_lookup(&self, key: &str) -> Lookup {
        if self.breaker.is_closed() {
            return self.memory.lookup(key);
        }
        if self.degraded_max_age.is_zero() {
            return Lookup::Miss;
        }
        match self.memory.lookup(key) {
            Lookup::Hit(found)
                if found.age.saturating_add(found.timing.delta) > self.degraded_max_age =>
            {
                self.degraded_refusals.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    tier = "memory",
                    key,
                    age_ms = u64::try_from(found.age.as_millis()).unwrap_or(u64::MAX),
                    "Cache MISS: older than CACHE_DEGRADED_MAX_AGE_MS while Redis is out"
                );
                Lookup::Miss
            }
            other => other,
        }
    }

    /// Whether a value may be kept in process memory now: the memory tier while it hears
    /// the channel; the fallback while the breaker is open, unless the degraded bound is
    /// zero (then memory keeps nothing during an outage).
    fn memory_writable(&self) -> bool {
        if self.breaker.is_closed() {
            self.memory_tier && self.subscribed.load(Ordering::Acquire)
        } else {
            !self.degraded_max_age.is_zero()
        }
    }
}

impl Listener for Shared {
    fn subscribed(&self) {
        // The server may be a new incarnation (a restart from its files, a failover): the
        // next Redis operation checks before serving anything (see `redis::epoch`).
        self.redis
            .incarnation_unknown("invalidation channel subscribed");
        // Messages may have been missed while unsubscribed: nothing in memory is trusted,
        // and listeners of the live stream must assume anything changed.
        self.drop_memory();
        self.events.cleared();
        self.subscribed.store(true, Ordering::Release);
        self.channel_settled.store(true, Ordering::Release);
    }

    fn lost(&self, error: &str) {
        self.redis.incarnation_unknown("invalidation channel lost");
        self.channel_settled.store(true, Ordering::Release);
        if self.subscribed.swap(false, Ordering::AcqRel) {
            self.channel_losses.fetch_add(1, Ordering::Relaxed);
            // What memory holds may miss the invalidations sent while the channel is down:
            // it goes now, not when the channel comes back, so that a breaker opening
            // meanwhile (which makes memory the fallback) cannot serve it.
            self.drop_memory();
            tracing::warn!(
                tier = "redis",
                error,
                "invalidation channel lost; memory tier dropped and bypassed until it is back"
            );
        } else {
            tracing::debug!(tier = "redis", error, "invalidation channel not available");
        }
    }

    async fn clients(&self) -> Result<Vec<redis::Client>, String> {
        self.redis.pubsub_clients().await
    }

    fn message(&self, payload: &[u8]) {
        match Message::decode(payload) {
            Ok(message) if message.from == self.instance => {}
            Ok(message) => {
                tracing::debug!(tier = "memory", op = ?message.op, from = %message.from, "invalidation received");
                self.apply_local(&message.op);
                self.publish_remote(&message.op);
            }
            Err(error) => {
                tracing::warn!(%error, "unreadable message on the invalidation channel; dropping the memory tier");
                self.drop_memory();
                self.events.cleared();
            }
        }
    }
}

impl TieredStore {
    /// The memory tier, while a caller's lookup may trust it (see
    /// [`Backend::memory_tier`](super::Backend::memory_tier)).
    pub(crate) fn readable_memory(&self) -> Option<&MemoryStore> {
        self.inner.memory_trusted().then_some(&self.inner.memory)
    }

    /// The memory tier, for bumping this instance's own writes into it at once: whenever it
    /// may be read (trusted, or the fallback during an outage).
    pub(crate) fn bumpable_memory(&self) -> Option<&MemoryStore> {
        self.inner.memory_readable().then_some(&self.inner.memory)
    }
}

impl Store for TieredStore {
    type Snapshot = TieredSnapshot;

    fn is_current(&self, snapshot: &TieredSnapshot) -> bool {
        // The memory versions move with this instance's writes, and with other instances'
        // only while their messages flow in (the memory tier subscribed) — or when nothing
        // else can move (the breaker open: memory is the one authority left). Otherwise
        // they cannot vouch for a value: the follower asks Redis (`peek`), whose script
        // validates the leader's stored entry against the shared versions.
        let s = &self.inner;
        s.memory_readable() && s.memory.still_current(&snapshot.mem)
    }

    async fn snapshot(&self, tags: &[Tag]) -> Result<TieredSnapshot, StoreError> {
        let s = &self.inner;
        s.start();
        let mem = s.memory.take_snapshot(tags);
        let redis = s.call("snapshot", s.redis.take_snapshot(tags)).await.ok();
        Ok(TieredSnapshot { mem, redis })
    }

    async fn fingerprint(&self, tags: &[Tag]) -> Result<u64, StoreError> {
        let s = &self.inner;
        s.start();
        // Redis's versions when it answers, so that every instance agrees; process memory's
        // (another domain, so never equal to a Redis fingerprint) while it does not.
        match s.call("fingerprint", s.redis.take_snapshot(tags)).await {
            Ok(snapshot) => Ok(snapshot.fingerprint()),
            Err(()) => Ok(s.memory.fingerprint_now(tags)),
        }
    }

    async fn get(
        &self,
        key: &str,
        decode: &Decode<'_>,
        scope: ReadScope,
    ) -> Result<Lookup, StoreError> {
        let s = &self.inner;
        s.start();
        // Inside a computation, Redis validates (see `ReadScope`); memory answers only if
        // Redis cannot (the breaker is open, and memory is the one version space left).
        let local = if s.memory_readable() && scope == ReadScope::Caller {
            match s.memory_lookup(key) {
                hit @ Lookup::Hit(_) => return Ok(hit),
                other => Some(other),
            }
        } else {
            None
        };
        let seq = s.applied.load(Ordering::Acquire);
        let raw = match s.call("get", s.redis.lookup(key, s.memory_tier)).await {
            Ok(raw) => raw,
            // Redis is out: memory answers (it was checked above unless it just became
            // the fallback).
            Err(()) => {
                return Ok(match local {
                    Some(found) => found,
                    None if s.memory_readable() => s.memory_lookup(key),
                    None => Lookup::Miss,
                });
            }
        };
        let (bytes, ttl) = match raw {
            RawLookup::Miss => return Ok(Lookup::Miss),
            RawLookup::Invalidated => return Ok(Lookup::Invalidated),
            RawLookup::Garbage => {
                return Ok(Lookup::Undecodable(
                    "not a querycache payload of this format version".into(),
                ));
            }
            RawLookup::Hit(bytes, ttl) => (bytes, ttl),
        };
        let framed = match codec::unframe(&bytes) {
            Ok(framed) => framed,
            Err(error) => return Ok(Lookup::Undecodable(error.to_string())),
        };
        let value = match decode(framed.format, &framed.body) {
            Ok(value) => value,
            // The error says what did not fit: "payload body does not fit the requested
            // type: ...".
            Err(error) => return Ok(Lookup::Undecodable(error.to_string())),
        };
        let now = now_ms();
        let age = Duration::from_millis(now.saturating_sub(framed.stamps.created_at_ms));
        let timing = timing_of(&framed.stamps, now, ttl);
        if s.memory_tier && s.subscribed.load(Ordering::Acquire) {
            self.fill(
                key,
                &value,
                &framed.versions,
                framed.body.len(),
                ttl,
                timing,
                seq,
            );
        }
        let deps = (scope == ReadScope::InComputation)
            .then(|| tags_of(&s.redis.version_prefix(), &framed.versions).map(Deps::Tags))
            .flatten();
        Ok(Lookup::Hit(Found {
            value,
            age,
            tier: "redis",
            timing,
            deps,
        }))
    }

    async fn put(
        &self,
        key: Key,
        value: AnyValue,
        encode: &Encode<'_>,
        snapshot: TieredSnapshot,
        meta: EntryMeta,
    ) -> Result<PutOutcome, StoreError> {
        let s = &self.inner;
        let body = encode()?;
        let mut stored = false;
        if let Some(redis) = &snapshot.redis {
            match s
                .call("put", s.redis.store(key.as_str(), &body, redis, &meta))
                .await
            {
                // Another instance's write moved a tag: its message may not be here yet,
                // but the value is stale all the same.
                Ok(PutOutcome::Outdated) => return Ok(PutOutcome::Outdated),
                Ok(_) => stored = true,
                Err(()) => {}
            }
        }
        if s.memory_writable() {
            let meta = EntryMeta {
                weight: super::entry_weight(
                    body.bytes.len(),
                    key.as_str().len(),
                    snapshot.mem.len(),
                ),
                ..meta
            };
            match s.memory.store(key, value, snapshot.mem, meta) {
                PutOutcome::Stored => return Ok(PutOutcome::Stored),
                other if !stored => return Ok(other),
                _ => {}
            }
        }
        Ok(if stored {
            PutOutcome::Stored
        } else {
            PutOutcome::Unavailable
        })
    }

    async fn invalidate(&self, tags: &[Tag]) -> Result<usize, StoreError> {
        let tags = tags.iter().map(|t| t.as_str().to_owned()).collect();
        Ok(self.inner.invalidate(Op::Tags { tags }).await)
    }

    async fn remove(&self, key: &str) -> Result<bool, StoreError> {
        let key = key.to_owned();
        Ok(self.inner.invalidate(Op::Key { key }).await > 0)
    }

    async fn remove_matching(
        &self,
        _pattern: &glob::Pattern,
        text: &str,
    ) -> Result<usize, StoreError> {
        let pattern = text.to_owned();
        Ok(self.inner.invalidate(Op::Pattern { pattern }).await)
    }

    async fn clear(&self) -> Result<(), StoreError> {
        self.inner.invalidate(Op::Clear).await;
        Ok(())
    }

    fn usage(&self) -> StoreUsage {
        StoreUsage {
            errors: self.inner.errors.load(Ordering::Relaxed),
            ..self.inner.memory.usage_now()
        }
    }

    fn tag_count(&self) -> usize {
        self.inner.memory.tag_count()
    }
}

impl TieredStore {
    /// Copies a Redis hit into the memory tier, under the tags read back from its header,
    /// unless an invalidation was applied since the lookup started (`seq`). `ttl` is what
    /// the entry has left in Redis, grace period included.
    #[allow(clippy::too_many_arguments)]
    fn fill(
        &self,
        key: &str,
        value: &AnyValue,
        versions: &[(&str, &str)],
        body_len: usize,
        ttl: Option<Duration>,
        timing: Timing,
        seq: u64,
    ) {
        let s = &self.inner;
        let tags = tags_of(&s.redis.version_prefix(), versions);
        let (Some(tags), Ok(k), Some(ttl)) = (tags, Key::new(key), ttl) else {
            return;
        };
        let snapshot = s.memory.take_snapshot(&tags);
        if s.applied.load(Ordering::Acquire) != seq {
            return;
        }
        let fresh = timing.fresh_left.min(ttl);
        let meta = EntryMeta {
            ttl: fresh,
            grace: ttl.saturating_sub(fresh),
            delta: timing.delta,
            weight: super::entry_weight(body_len, key.len(), tags.len()),
        };
        s.memory.store(k, Arc::clone(value), snapshot, meta);
    }
}

/// The tags of an entry's `(version key, token)` pairs, read back from the version keys
/// (`prefix` is the store's [`version_prefix`](RedisStore::version_prefix)); `None` when one
/// is not a tag's.
fn tags_of(prefix: &str, versions: &[(&str, &str)]) -> Option<Vec<Tag>> {
    versions
        .iter()
        .map(|(version_key, _)| {
            version_key
                .strip_prefix(prefix)
                .and_then(|tag| Tag::new(tag).ok())
        })
        .collect()
}

/// The freshness of an entry read from Redis at `now_ms`: from its header's timing line, or,
/// for an entry written without one, fresh for whatever Redis gives it left (`pttl`).
fn timing_of(stamps: &codec::Stamps, now_ms: u64, pttl: Option<Duration>) -> Timing {
    let delta = Duration::from_micros(stamps.delta_us);
    match stamps.fresh_until_ms {
        Some(fresh_until) => Timing {
            fresh_left: Duration::from_millis(fresh_until.saturating_sub(now_ms)),
            stale_for: Duration::from_millis(now_ms.saturating_sub(fresh_until)),
            delta,
        },
        None => Timing {
            fresh_left: pttl
                .unwrap_or(Duration::from_secs(1))
                .max(Duration::from_millis(1)),
            stale_for: Duration::ZERO,
            delta,
        },
    }
}
