//! Where entries and tag versions live.
//!
//! Every store implements [`Store`]: look an entry up (validated against the current
//! versions of its tags), take a snapshot of tag versions before a computation, park a
//! computed value under that snapshot, invalidate tags, remove keys. The [`Cache`](crate::Cache)
//! orchestrates; stores know nothing of ORMs, keys' meaning or statistics.
//!
//! | store | module | values held as |
//! | --- | --- | --- |
//! | memory (per process) | [`memory`] | the typed value behind an `Arc`: a hit is a pointer copy |
//! | Redis (shared) | `redis` (feature `redis`) | framed JSON ([`codec`]), validated on the server |
//! | tiered, or Redis with a memory fallback | `tiered` (feature `redis`) | both of the above, kept coherent by an invalidation channel |
//!
//! [`Backend`] is the one a cache uses, chosen by configuration.

#[cfg(feature = "redis")]
pub(crate) mod codec;
mod error;
pub(crate) mod memory;
#[cfg(feature = "redis")]
pub(crate) mod redis;
#[cfg(feature = "redis")]
pub(crate) mod tiered;

pub(crate) use error::StoreError;
pub(crate) use memory::{Held, entry_weight};

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::{Key, Tag};

/// Whether a lookup is a caller's own, or made while another entry is being computed (a
/// cached function calling another, a cached HTTP answer whose handler reads cached
/// queries).
///
/// The difference matters to the tiered store. Its memory tier learns of a write a little
/// after Redis does (this instance's write: between the Redis bump and the local one;
/// another instance's: until its message arrives). A computation whose snapshot already
/// holds Redis's new versions must not read the old value from the lagging memory tier: it
/// would store pre-write data in Redis under post-write versions, where every instance —
/// the writer's included — would then find it. Reads made inside a computation are
/// therefore validated against Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadScope {
    /// A caller's own lookup: the memory tier may answer.
    Caller,
    /// A lookup made while computing another entry: validated against the shared versions.
    InComputation,
}

tokio::task_local! {
    /// Set while an entry is computed: the snapshot it runs under, and whether it may be
    /// stored.
    static COMPUTING: Computation;
}

thread_local! {
    static COMPUTING_SYNC: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    /// Whether the synchronous computation running on this thread was marked uncacheable.
    static UNCACHEABLE_SYNC: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// What observes the reads of the synchronous computation running on this thread.
    static OBSERVING_SYNC: std::cell::RefCell<Option<std::sync::Arc<crate::cache::observe::Observation>>> =
        const { std::cell::RefCell::new(None) };
}

/// The state of one computation running on a task.
struct Computation {
    /// The fingerprint of the snapshot it runs under ([`computation_fingerprint`]).
    fingerprint: Option<u64>,
    /// What its statements read, as the ORM integrations report them ([`observation`]).
    observation: Option<std::sync::Arc<crate::cache::observe::Observation>>,
    /// Set by [`mark_uncacheable`].
    uncacheable: std::cell::Cell<bool>,
}

/// Whether a computation's value may be stored, as [`computing`] / [`computing_sync`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Storable {
    Yes,
    /// It sent a statement whose result must not be cached (a locking read).
    No,
}

/// The scope of a lookup starting here: inside [`computing`] / [`computing_sync`] or not.
pub(crate) fn read_scope() -> ReadScope {
    if in_computation() {
        ReadScope::InComputation
    } else {
        ReadScope::Caller
    }
}

/// Whether an entry's computation is running here (on this task, or on this thread): one
/// relaxed load while no scope of [`scopes`](crate::scopes) is open anywhere.
#[inline]
pub(crate) fn in_computation() -> bool {
    crate::scopes::any_open() && in_computation_here()
}

#[cold]
fn in_computation_here() -> bool {
    COMPUTING_SYNC.with(|depth| depth.get() > 0) || COMPUTING.try_with(|_| ()).is_ok()
}

/// Marks the computation running here (on this task, and on this thread) uncacheable: its
/// value is returned to its caller but not stored. The ORM integrations call it for a
/// locking read. Outside a computation it does nothing.
pub(crate) fn mark_uncacheable() {
    let _ = COMPUTING.try_with(|computation| computation.uncacheable.set(true));
    if COMPUTING_SYNC.with(|depth| depth.get() > 0) {
        UNCACHEABLE_SYNC.with(|flag| flag.set(true));
    }
}

/// Runs `computation` (an entry's computation, on this task) with its lookups in
/// [`ReadScope::InComputation`]; `fingerprint` is that of the snapshot it runs under
/// ([`computation_fingerprint`]). Says whether its value may be stored; an uncacheable
/// computation makes the one around it (an outer cached call using its value) uncacheable
/// too.
pub(crate) async fn computing<F: Future>(
    fingerprint: Option<u64>,
    observation: Option<std::sync::Arc<crate::cache::observe::Observation>>,
    computation: F,
) -> (F::Output, Storable) {
    let state = Computation {
        fingerprint,
        observation,
        uncacheable: std::cell::Cell::new(false),
    };
    let _open = crate::scopes::Open::enter();
    let (state, output) = COMPUTING
        .scope(state, async move {
            let output = computation.await;
            let uncacheable = COMPUTING.try_with(|c| c.uncacheable.get()).unwrap_or(false);
            (uncacheable, output)
        })
        .await;
    if state {
        mark_uncacheable();
        (output, Storable::No)
    } else {
        (output, Storable::Yes)
    }
}

/// Inside a computation: what observes its statements' reads. A synchronous computation
/// running on this thread ([`computing_sync`]) comes first: while it runs, nothing else runs
/// on the thread (an async computation on this task, if any, is the one around it).
#[cfg_attr(not(any(feature = "sea-orm", feature = "diesel")), allow(dead_code))]
pub(crate) fn observation() -> Option<std::sync::Arc<crate::cache::observe::Observation>> {
    OBSERVING_SYNC
        .with(|observing| observing.borrow().clone())
        .or_else(|| {
            COMPUTING
                .try_with(|computation| computation.observation.clone())
                .ok()
                .flatten()
        })
}

/// Inside a computation on this task: the fingerprint of the snapshot it runs under.
pub(crate) fn computation_fingerprint() -> Option<u64> {
    COMPUTING
        .try_with(|computation| computation.fingerprint)
        .ok()
        .flatten()
}

/// The same for a synchronous computation, on this thread, its reads observed by
/// `observation`.
pub(crate) fn computing_sync<R>(
    observation: Option<std::sync::Arc<crate::cache::observe::Observation>>,
    computation: impl FnOnce() -> R,
) -> (R, Storable) {
    /// Restores the enclosing computation's depth, flag and observation, also on unwinding.
    struct Depth {
        outer_uncacheable: bool,
        outer_observation: Option<std::sync::Arc<crate::cache::observe::Observation>>,
    }
    impl Drop for Depth {
        fn drop(&mut self) {
            COMPUTING_SYNC.with(|depth| depth.set(depth.get().saturating_sub(1)));
            let outer = self.outer_uncacheable;
            UNCACHEABLE_SYNC.with(|flag| flag.set(outer));
            let observation = self.outer_observation.take();
            OBSERVING_SYNC.with(|observing| *observing.borrow_mut() = observation);
        }
    }
    let open = crate::scopes::Open::enter();
    COMPUTING_SYNC.with(|depth| depth.set(depth.get() + 1));
    let depth = Depth {
        outer_uncacheable: UNCACHEABLE_SYNC.with(|flag| flag.replace(false)),
        outer_observation: OBSERVING_SYNC.with(|observing| observing.replace(observation)),
    };
    let output = computation();
    let uncacheable = UNCACHEABLE_SYNC.with(std::cell::Cell::get);
    drop(depth);
    drop(open);
    if uncacheable {
        mark_uncacheable();
        (output, Storable::No)
    } else {
        (output, Storable::Yes)
    }
}

/// A value as the memory store keeps it: the caller's `Arc<T>`, type-erased.
pub(crate) type AnyValue = Arc<dyn Any + Send + Sync>;

/// Turns a stored body (JSON or RON, as its header says) into the caller's type (stores
/// that keep bytes use it).
pub(crate) type Decode<'a> = dyn Fn(BodyFormat, &[u8]) -> Result<AnyValue, StoreError> + Sync + 'a;

/// Serializes the caller's value, exactly, for stores that keep bytes (`codec::body`); an
/// error when it cannot be (the value is then not stored).
pub(crate) type Encode<'a> = dyn Fn() -> Result<Body, StoreError> + Sync + 'a;

#[cfg(feature = "redis")]
pub(crate) use codec::{Body, BodyFormat};

/// Without the `redis` feature no store keeps bytes: nothing is ever encoded.
#[cfg(not(feature = "redis"))]
pub(crate) type Body = std::convert::Infallible;

/// Without the `redis` feature no store keeps bytes: nothing is ever decoded.
#[cfg(not(feature = "redis"))]
pub(crate) type BodyFormat = std::convert::Infallible;

/// An entry found and still valid (its tags have not moved): fresh, or past its TTL but
/// kept for its grace period (stale-while-revalidate, fail-safe).
pub(crate) struct Found {
    pub(crate) value: AnyValue,
    /// How long ago the entry was stored.
    pub(crate) age: Duration,
    /// Which tier answered: `memory` or `redis`.
    pub(crate) tier: &'static str,
    /// When the entry stops (or stopped) being fresh, and how long its computation took.
    pub(crate) timing: Timing,
    /// What the entry depends on, for a lookup made inside another entry's computation
    /// ([`ReadScope::InComputation`]); `None` for a caller's own lookup (the hit path pays
    /// nothing for it) or when the store cannot say.
    pub(crate) deps: Option<Deps>,
}

/// What an entry found inside another entry's computation depends on, so that the outer
/// entry can depend on it too (a cached function calling another, whose hit it uses).
pub(crate) enum Deps {
    /// The versions the entry was computed under, as the memory store keeps them: joined to
    /// the outer computation's snapshot as they are ([`Snapshot::joined`] keeps the outer
    /// snapshot's clear epoch and removal marks).
    Versions(Snapshot),
    /// Its tags (read back from a shared store's entry header): the outer computation reads
    /// their versions, then looks the entry up again, and uses it only if it is still valid
    /// and depends on nothing else.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Tags(Vec<Tag>),
}

/// The freshness of a found entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// Time left before the TTL passes (zero once it has).
    pub(crate) fresh_left: Duration,
    /// How long ago the TTL passed (zero while fresh).
    pub(crate) stale_for: Duration,
    /// How long the computation that produced the entry took (zero when unknown).
    pub(crate) delta: Duration,
}

impl Timing {
    /// Whether the TTL has passed.
    pub(crate) fn is_stale(&self) -> bool {
        self.fresh_left.is_zero()
    }
}

/// The outcome of a lookup.
pub(crate) enum Lookup {
    /// Present, unexpired, and every tag still at its snapshot's version.
    Hit(Found),
    /// No entry under the key.
    Miss,
    /// An entry whose TTL had passed (reclaimed by the lookup).
    Expired,
    /// An entry whose tags have moved since it was computed (reclaimed by the lookup).
    Invalidated,
    /// Bytes that could not be decoded (another format version, garbage, a body of
    /// another type): a miss, which the next computation overwrites.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Undecodable(String),
}

/// What a `put` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PutOutcome {
    /// The entry is stored.
    Stored,
    /// Not stored: a tag it depends on moved (or the key was removed) while it was being
    /// computed, so it was already out of date — a "wasted computation".
    Outdated,
    /// Not stored: larger than the store accepts.
    TooLarge,
    /// Not stored: the store was unreachable (the failure is counted where it happened).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Unavailable,
}

/// Everything about an entry but its value and snapshot.
#[derive(Debug, Clone)]
pub(crate) struct EntryMeta {
    /// How long the entry is fresh.
    pub(crate) ttl: Duration,
    /// How long it is kept past its TTL, to be served stale (swr, fail-safe).
    pub(crate) grace: Duration,
    /// How long its computation took (early refresh weighs it).
    pub(crate) delta: Duration,
    /// Estimated bytes the entry costs; counted against the memory budget.
    pub(crate) weight: u64,
}

/// Sizes reported by a store.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StoreUsage {
    pub(crate) entries: u64,
    pub(crate) bytes: u64,
    /// Failures the store handled itself (it fell back instead of returning an error).
    pub(crate) errors: u64,
}

/// The operations every store offers. Implementations answer quickly and never panic;
/// a failing backend says why with a [`StoreError`] (the cache counts and logs it, callers
/// never see it).
pub(crate) trait Store: Send + Sync + 'static {
    /// The tag versions an entry is computed under.
    type Snapshot: Clone + Send + Sync + 'static;

    /// Whether no tag of `snapshot` has moved since it was taken. A leader's value is handed
    /// to waiting callers only while this holds: a caller that started after a write must
    /// not get a value computed before it.
    fn is_current(&self, snapshot: &Self::Snapshot) -> bool;

    /// Reads the current versions of `tags`, before the computation starts.
    fn snapshot(
        &self,
        tags: &[Tag],
    ) -> impl Future<Output = Result<Self::Snapshot, StoreError>> + Send;

    /// A hash of the current versions of `tags`, read the way a snapshot reads them: it
    /// changes whenever one of them is invalidated or the store is cleared. Stores shared
    /// between instances answer from the shared versions, so every instance computes the
    /// same fingerprint (HTTP deep ETags rely on it).
    fn fingerprint(&self, tags: &[Tag]) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Looks `key` up and validates it against its tags' current versions; stores that
    /// keep bytes turn them into the caller's type with `decode`. `scope` says whether the
    /// lookup is made while another entry is being computed ([`ReadScope`]).
    fn get(
        &self,
        key: &str,
        decode: &Decode<'_>,
        scope: ReadScope,
    ) -> impl Future<Output = Result<Lookup, StoreError>> + Send;

    /// Stores `value` under `key`, unless `snapshot` is already outdated; stores that keep
    /// bytes serialize it with `encode`.
    fn put(
        &self,
        key: Key,
        value: AnyValue,
        encode: &Encode<'_>,
        snapshot: Self::Snapshot,
        meta: EntryMeta,
    ) -> impl Future<Output = Result<PutOutcome, StoreError>> + Send;

    /// Gives each tag a fresh version; returns how many tags had one.
    fn invalidate(&self, tags: &[Tag]) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Removes one key; returns whether it was present.
    fn remove(&self, key: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Removes every key matching `pattern` (also given as text, for stores that match on
    /// the server); returns how many were removed.
    fn remove_matching(
        &self,
        pattern: &glob::Pattern,
        text: &str,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Removes every entry, and makes computations in flight unable to store.
    fn clear(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Entries and bytes held in process memory (for stats).
    fn usage(&self) -> StoreUsage;

    /// Number of tags with a version held in process memory (diagnostics).
    fn tag_count(&self) -> usize;
}

/// The outcome of asking for a key's computation lease (one computation across every
/// instance sharing Redis).
#[derive(Debug)]
pub(crate) enum Lease {
    /// Taken under this token: compute, store, then release it.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Taken(String),
    /// Another instance holds it: wait for its result (boundedly).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Held,
    /// No shared store to coordinate through (memory store, Redis unreachable, leases
    /// off): compute.
    Unshared,
}

/// The store a cache uses: one of the implementations, chosen by configuration.
pub(crate) enum Backend {
    /// Process memory.
    Memory(memory::MemoryStore),
    /// Redis, with or without a memory tier in front, and a memory fallback.
    #[cfg(feature = "redis")]
    Tiered(Box<tiered::TieredStore>),
}

/// A snapshot of whichever store took it.
#[derive(Clone)]
pub(crate) enum Snapshot {
    Memory(memory::MemSnapshot),
    #[cfg(feature = "redis")]
    Tiered(tiered::TieredSnapshot),
}

impl Snapshot {
    /// This snapshot and `later`, taken after it of other tags (a statement's observed
    /// reads): the versions of both, judged at `put` as one snapshot taken when this one
    /// was (its clear epoch and removal marks, the older ones).
    pub(crate) fn joined(&self, later: &Snapshot) -> Snapshot {
        match (self, later) {
            (Snapshot::Memory(a), Snapshot::Memory(b)) => Snapshot::Memory(a.joined(b)),
            #[cfg(feature = "redis")]
            (Snapshot::Tiered(a), Snapshot::Tiered(b)) => Snapshot::Tiered(a.joined(b)),
            // One cache has one store, whose snapshots are all of one kind.
            #[cfg(feature = "redis")]
            _ => self.clone(),
        }
    }

    /// A hash of the versions this snapshot holds of `tags` (the tags it was taken of):
    /// what [`Store::fingerprint`] would have answered at the time it was taken.
    pub(crate) fn fingerprint(&self, tags: &[Tag]) -> u64 {
        match self {
            Snapshot::Memory(snapshot) => snapshot.fingerprint(tags),
            #[cfg(feature = "redis")]
            Snapshot::Tiered(snapshot) => snapshot.fingerprint(tags),
        }
    }
}

impl Backend {
    /// The memory tier a caller's lookup may be answered from without asking anything
    /// else: the memory store, or the tiered store's memory tier while it is trusted
    /// (coherence messages flowing and Redis up; during an outage the fallback answers
    /// through the store's `get`, which bounds the age of what it serves).
    pub(crate) fn memory_tier(&self) -> Option<&memory::MemoryStore> {
        match self {
            Backend::Memory(store) => Some(store),
            #[cfg(feature = "redis")]
            Backend::Tiered(store) => store.readable_memory(),
        }
    }

    /// The memory tier this instance's own writes are bumped into before the full
    /// invalidation runs: whenever it may answer at all (trusted, or the fallback).
    #[cfg_attr(not(feature = "diesel"), allow(dead_code))]
    pub(crate) fn memory_to_bump(&self) -> Option<&memory::MemoryStore> {
        match self {
            Backend::Memory(store) => Some(store),
            #[cfg(feature = "redis")]
            Backend::Tiered(store) => store.bumpable_memory(),
        }
    }

    /// Whether entries count against a byte budget here (so a miss must weigh its value).
    /// Stores that keep bytes serialize the value anyway and need no separate weighing.
    pub(crate) fn weighs_entries(&self) -> bool {
        matches!(self, Backend::Memory(_))
    }

    /// Takes the computation lease of `key` for `ttl`.
    pub(crate) async fn take_lease(&self, key: &str, ttl: Duration) -> Lease {
        match self {
            Backend::Memory(_) => {
                let _ = (key, ttl);
                Lease::Unshared
            }
            #[cfg(feature = "redis")]
            Backend::Tiered(store) => store.take_lease(key, ttl).await,
        }
    }

    /// Gives a lease taken with [`take_lease`](Self::take_lease) back.
    pub(crate) async fn release_lease(&self, key: &str, token: &str) {
        match self {
            Backend::Memory(_) => {
                let _ = (key, token);
            }
            #[cfg(feature = "redis")]
            Backend::Tiered(store) => store.release_lease(key, token).await,
        }
    }

    /// The tier's name, for logs and metrics.
    pub(crate) fn tier(&self) -> &'static str {
        match self {
            Backend::Memory(_) => "memory",
            #[cfg(feature = "redis")]
            Backend::Tiered(store) => store.tier(),
        }
    }
}

impl Store for Backend {
    type Snapshot = Snapshot;

    fn is_current(&self, snapshot: &Snapshot) -> bool {
        match (self, snapshot) {
            (Backend::Memory(store), Snapshot::Memory(s)) => store.is_current(s),
            #[cfg(feature = "redis")]
            (Backend::Tiered(store), Snapshot::Tiered(s)) => store.is_current(s),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    async fn snapshot(&self, tags: &[Tag]) -> Result<Snapshot, StoreError> {
        match self {
            Backend::Memory(store) => store.snapshot(tags).await.map(Snapshot::Memory),
            #[cfg(feature = "redis")]
            Backend::Tiered(store) => store.snapshot(tags).await.map(Snapshot::Tiered),
        }
    }

    async fn fingerprint(&self, tags: &[Tag]) -> Result<u64, StoreError> {
        match self {
            Backend::Memory(store) => store.fingerprint(tags).await,
            #[cfg(feature = "redis")]
            Backend::Tiered(store) => store.fingerprint(tags).await,
        }
    }

    async fn get(
        &self,
        key: &str,
        decode: &Decode<'_>,
        scope: ReadScope,
    ) -> Result<Lookup, StoreError> {
        match self {
            Backend::Memory(store) => store.get(key, decode, scope).await,
            #[cfg(feature = "redis")]
            Backend::Tiered(store) => store.get(key, decode, scope).await,
        }
    }

    async fn put(
        &self,
        key: Key,
        value: AnyValue,
        encode: &Encode<'_>,
        snapshot: Snapshot,
        meta: EntryMeta,
    ) -> Result<PutOutcome, StoreError> {
        match (self, snapshot) {
            (Backend::Memory(store), Snapshot::Memory(s)) => {
                store.put(key, value, encode, s, meta).await
            }
            #[cfg(feature = "redis")]
            (Backend::Tiered(store), Snapshot::Tiered(s)) => {
                store.put(key, value, encode, s, meta).await
            }
            #[allow(unreachable_patterns)]
            _ => Err(StoreError::ForeignSnapshot),
        }
    }

    async fn invalidate(&self, tags: &[Tag]) -> Result<usize, StoreError> {
        match self {
            Backend::Memory(store) => store.invalidate(tags).await,
            #[cfg(feature = "redis")]
            Backend::Tiered(store) => store.invalidate(tags).await,
        }
    }

    async fn remove(&self, key: &str) -> Result<bool, StoreError> {
        match self {
            Backend::Memory(store) => store.remove(key).await,
            #[cfg(feature = "redis")]
            Backend::Tiered(store) => store.remove(key).await,
        }
    }

    async fn remove_matching(
        &self,
        pattern: &glob::Pattern,
        text: &str,
    ) -> Result<usize, StoreError> {
        match self {
            Backend::Memory(store) => store.remove_matching(pattern, text).await,
            #[cfg(feature = "redis")]
            Backend::Tiered(store) => store.remove_matching(pattern, text).await,
        }
    }

    async fn clear(&self) -> Result<(), StoreError> {
        match self {
            Backend::Memory(store) => store.clear().await,
            #[cfg(feature = "redis")]
            Backend::Tiered(store) => store.clear().await,
        }
    }

    fn usage(&self) -> StoreUsage {
        match self {
            Backend::Memory(store) => store.usage(),
            #[cfg(feature = "redis")]
            Backend::Tiered(store) => store.usage(),
        }
    }

    fn tag_count(&self) -> usize {
        match self {
            Backend::Memory(store) => store.tag_count(),
            #[cfg(feature = "redis")]
            Backend::Tiered(store) => store.tag_count(),
        }
    }
}
