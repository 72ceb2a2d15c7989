//! The in-process memory store.
//!
//! Entries live inline in the store's own map ([`map`]: sharded, weighted by bytes, CLOCK
//! eviction with a frequency count, read in place by a hit). Each entry holds the caller's
//! value behind an `Arc` — a hit is a pointer copy, with no decoding — and what it depends
//! on as the sequence number its computation started at and its tags' 8-byte ids
//! ([`versions`]): the store keeps versions only for tags invalidated lately, and a hit
//! looks them up only after an invalidation (the store's generation moved).
//!
//! Expired entries are not swept by a thread: a lookup that finds one removes it, and the
//! eviction policy, which prefers entries nobody reads, reclaims the rest when the byte
//! budget is reached. The budget is therefore always respected; [`StoreUsage`] may count
//! expired entries that nobody has touched since they expired.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::{
    AnyValue, Decode, Deps, Encode, EntryMeta, Found, Lookup, PutOutcome, ReadScope, Snapshot,
    Store, StoreError, StoreUsage, Timing,
};
use crate::clock::{self, Clock};
use crate::key::key_id;
use crate::{Key, Tag};

/// Small values kept inline in their entry's slot.
mod inline;
/// The map's shard locks.
mod lock;
/// The map the entries live in.
mod map;
/// An entry's dependencies and key text, packed.
mod tail;
/// Tag versions as one sequence.
mod versions;

use inline::Inline;
use tail::Tail;
use versions::{TagVersions, tag_id};

/// A fresh entry's value, as the hit path's `take` sees it (see [`MemoryStore::fresh`]).
pub(crate) struct Held<'a> {
    entry: &'a MemEntry,
}

impl Held<'_> {
    /// The value, shared, if it is a `T`.
    pub(crate) fn shared<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        Arc::clone(&self.entry.cold.value).downcast::<T>().ok()
    }

    /// A clone of the value, if it is a `T`. From the copy kept in the entry's slot when
    /// the value is small (made here the first time), so that neither the entry's cold
    /// part nor the value's own allocation is read.
    #[inline]
    pub(crate) fn cloned<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        if let Some(value) = self.entry.small.get::<T>() {
            return Some(value.clone());
        }
        let value = self.entry.cold.value.downcast_ref::<T>()?;
        if Inline::fits::<T>() && self.entry.small.is_empty() {
            // Another hit may fill it first: either copy is the value.
            self.entry.small.fill(value.clone());
        }
        Some(value.clone())
    }
}

/// A stored entry, held inline in the map's slot ([`map`]): what a fresh hit reads, in the
/// slot's one cache line, and the rest behind a box. Times are readings of the store's
/// [`Clock`] ([`clock`] nanoseconds): 8 bytes each.
struct MemEntry {
    /// When the TTL passes; the entry may be served stale until `cold.expires_at`.
    fresh_until: u64,
    /// The store's [generation](MemoryStore::generation) at which the entry was last seen
    /// valid (its epoch and `stamps` current): while it has not moved, nothing was
    /// invalidated (nor cleared) and the cold part needs no reading.
    checked: AtomicU64,
    /// A clone of the value in the slot itself, when it is one word: made by the first hit
    /// that clones the value ([`Held::cloned`]).
    small: Inline,
    /// What a fresh hit of a small value does not read, apart: the slot stays one line.
    cold: Box<Cold>,
}

/// The parts of an entry a fresh hit does not read (see [`MemEntry::cold`]).
struct Cold {
    value: AnyValue,
    /// When it is gone for good: the TTL plus the grace period.
    expires_at: u64,
    stored_at: u64,
    /// How long its computation took, in microseconds (saturating: 71 minutes).
    delta_us: u32,
    /// Its weight against the byte budget (at most a shard's share of it: see `store`).
    weight: u32,
    /// What it depends on (its snapshots and tag ids) and its key's text (the map files
    /// the entry under a hash of it: see [`key_id`]).
    tail: Tail,
}

impl map::MapEntry for MemEntry {
    fn weight(&self) -> u64 {
        u64::from(self.cold.weight)
    }

    fn dead(&self, now: u64) -> bool {
        now >= self.cold.expires_at
    }
}

impl MemEntry {
    fn timing(&self, now: u64) -> Timing {
        Timing {
            fresh_left: Duration::from_nanos(self.fresh_until.saturating_sub(now)),
            stale_for: Duration::from_nanos(now.saturating_sub(self.fresh_until)),
            delta: Duration::from_micros(u64::from(self.cold.delta_us)),
        }
    }

    /// Whether nothing invalidated the entry (nor cleared the store) since its snapshots.
    /// `generation` is the store's, read before the call; `versions` are read only when the
    /// entry was not checked at `generation`.
    #[inline(always)]
    fn valid(&self, versions: &TagVersions, generation: u64) -> bool {
        self.checked.load(Ordering::Relaxed) == generation || self.recheck(versions, generation)
    }

    /// [`valid`](Self::valid) when the store's generation moved since the entry's last
    /// check: its dependencies looked up.
    #[cold]
    #[inline(never)]
    fn recheck(&self, versions: &TagVersions, generation: u64) -> bool {
        // Read after `generation`: a bump this misses moves the generation past it, and
        // the next hit looks again.
        let current = deps_current(versions, self.cold.tail.words());
        if current {
            self.checked.store(generation, Ordering::Relaxed);
        }
        current
    }
}

/// A fresh, valid entry found by [`MemoryStore::fresh`]: what `take` made of its value.
pub(crate) struct FreshHit<R> {
    pub(crate) value: R,
    /// When it was found (a reading of the store's [`Clock`]).
    pub(crate) at: u64,
    /// How long it stays fresh, in nanoseconds (made a `Duration` only by a caller that
    /// wants one: a hit need not divide).
    pub(crate) fresh_left_ns: u64,
    /// What the entry's cold part says: read only when asked (`detail`), for a debug
    /// event or an early-refresh draw.
    pub(crate) detail: Option<HitDetail>,
}

/// The facts of a hit's entry kept apart from its slot (see [`FreshHit::detail`]).
pub(crate) struct HitDetail {
    /// When the entry was stored (a reading of the store's clock).
    pub(crate) stored_at: u64,
    /// How long its computation took.
    pub(crate) delta: Duration,
}

/// What an entry of `json_len` bytes of JSON under a key of `key_len` bytes, depending on
/// `dependencies` tags, is counted for against the memory budget: its in-memory form
/// (taken as its JSON size plus an eighth: the struct headers and string capacities Rust
/// keeps where JSON keeps quotes), its key, and the store's own bookkeeping — the entry's
/// 64-byte slot at the table's usual load (about 84 B), its cold part and the head of its
/// dependencies (76 B), and per dependency its 8-byte id plus 8 B for the versions the
/// store keeps of tags invalidated lately. These constants come from the counting
/// allocator of `benches/memory_footprint.rs`.
pub(crate) fn entry_weight(json_len: usize, key_len: usize, dependencies: usize) -> u64 {
    const ENTRY: u64 = 84 + 76;
    const PER_DEPENDENCY: u64 = 8 + 8;
    let json = json_len as u64;
    (json + json / 8)
        .saturating_add(key_len as u64)
        .saturating_add(ENTRY)
        .saturating_add(PER_DEPENDENCY.saturating_mul(dependencies as u64))
}

/// Whether the dependency groups in `words` (see [`tail`]) are all current.
fn deps_current(versions: &TagVersions, words: impl Iterator<Item = u64>) -> bool {
    tail::for_each_group(words, |snapshot, ids| versions.current(snapshot, ids))
}

/// What a computation started under: the dependency groups it will be judged by (see
/// [`tail`]), its tags' versions then (for its fingerprint), and the store's generation,
/// clear epoch and removal sequence.
#[derive(Clone)]
pub(crate) struct MemSnapshot {
    deps: Arc<[u64]>,
    /// One per tag id in `deps`, in order.
    versions: Arc<[u64]>,
    epoch: u64,
    generation: u64,
    removals_seen: u64,
}

impl MemSnapshot {
    /// This snapshot and `later` (of other tags, taken after it): both's groups, each
    /// judged at its own snapshot, and this one's epoch, generation and removal mark — the
    /// older ones, so that a removal since this one was taken still makes the put outdated.
    pub(crate) fn joined(&self, later: &MemSnapshot) -> MemSnapshot {
        MemSnapshot {
            deps: self.deps.iter().chain(later.deps.iter()).copied().collect(),
            versions: self
                .versions
                .iter()
                .chain(later.versions.iter())
                .copied()
                .collect(),
            epoch: self.epoch,
            generation: self.generation,
            removals_seen: self.removals_seen,
        }
    }

    /// How many tags it holds versions of.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn len(&self) -> usize {
        self.versions.len()
    }

    /// A hash of the clear epoch and the versions of `tags` (the tags this snapshot was
    /// taken of, in the same order) as this snapshot saw them.
    pub(crate) fn fingerprint(&self, tags: &[Tag]) -> u64 {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        // A domain of its own: a memory fingerprint never equals a Redis one.
        hasher.update(b"querycache:memory\0");
        hasher.update(&self.epoch.to_le_bytes());
        // Versions beyond `tags` (an inner entry's, joined without their names: see
        // `Deps::Versions`) count by their numbers alone, which a bump never reuses.
        for (i, version) in self.versions.iter().enumerate() {
            if let Some(tag) = tags.get(i) {
                hasher.update(tag.as_str().as_bytes());
                hasher.update(b"\0");
            }
            hasher.update(&version.to_le_bytes());
        }
        hasher.digest()
    }
}

/// Keys and patterns removed recently, so that a computation that started before a
/// removal does not store its (now unwanted) result after it.
struct RemovalLog {
    recent: VecDeque<(u64, Removal)>,
}

enum Removal {
    Key(Key),
    Pattern(glob::Pattern),
}

const REMOVAL_LOG_LEN: usize = 256;

/// The memory store. See the module docs.
pub(crate) struct MemoryStore {
    /// Entries filed under the 128-bit seeded hash of their key's text ([`key_id`]):
    /// comparing two is comparing two integers, with no pointer to follow to the key's text.
    /// Two texts with one hash would share a slot: a 2⁻¹²⁸ chance per pair of keys, with a
    /// seed chosen per process that nobody outside it sees (so keys cannot be crafted to
    /// collide) — the odds a function's default key already takes with its 128-bit hash of
    /// the arguments.
    entries: map::EntryMap<MemEntry>,
    versions: TagVersions,
    /// Moved by `clear`, for fingerprints (the versions' floor outdates what it cleared).
    /// Starts at a random number: a fingerprint from another process never matches.
    epoch: AtomicU64,
    /// Moves after every invalidation (tag bumps, `clear`), once its versions are in
    /// place: an entry checked at the current generation is still valid.
    generation: AtomicU64,
    removal_seq: AtomicU64,
    removals: Mutex<RemovalLog>,
    /// What entries are stamped with and judged against: see [`Clock`].
    clock: Clock,
}

impl MemoryStore {
    /// A store holding at most `max_bytes` of (estimated) entry weight.
    pub(crate) fn new(max_bytes: u64) -> Self {
        MemoryStore {
            // Not pre-sized: the tables grow with what is stored, not with the budget.
            entries: map::EntryMap::new(max_bytes, 0),
            versions: TagVersions::new(),
            epoch: AtomicU64::new(rand::random()),
            generation: AtomicU64::new(0),
            removal_seq: AtomicU64::new(0),
            removals: Mutex::new(RemovalLog {
                recent: VecDeque::new(),
            }),
            clock: Clock::default(),
        }
    }

    /// The store, reading `clock` (the cache's) rather than the monotonic clock.
    pub(crate) fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Synchronous lookup: the memory store never waits. An entry past its life or
    /// invalidated is removed.
    #[cfg_attr(not(any(feature = "redis", test)), allow(dead_code))]
    pub(crate) fn lookup(&self, key: &str) -> Lookup {
        self.lookup_with(key, false)
    }

    /// [`lookup`](Self::lookup); `with_versions`: a hit says the versions its entry was
    /// computed under ([`Deps::Versions`]).
    fn lookup_with(&self, key: &str, with_versions: bool) -> Lookup {
        enum Seen {
            Hit(Found),
            Gone(u64, Lookup),
        }
        let id = key_id(key);
        let now = self.clock.now();
        let seen = self.entries.get(id, |entry, seq| {
            if now >= entry.cold.expires_at {
                return Seen::Gone(seq, Lookup::Expired);
            }
            if !self.valid(entry) {
                return Seen::Gone(seq, Lookup::Invalidated);
            }
            let deps = with_versions.then(|| {
                let deps: Arc<[u64]> = entry.cold.tail.words().collect();
                // Valid now: nothing moved them since its snapshots.
                let versions = tail::ids(deps.iter().copied())
                    .into_iter()
                    .map(|id| self.versions.version(id))
                    .collect();
                Deps::Versions(Snapshot::Memory(MemSnapshot {
                    deps,
                    versions,
                    epoch: self.epoch.load(Ordering::Acquire),
                    // Taken by the snapshot this one is joined to.
                    generation: 0,
                    removals_seen: 0,
                }))
            });
            Seen::Hit(Found {
                deps,
                value: Arc::clone(&entry.cold.value),
                age: Duration::from_nanos(now.saturating_sub(entry.cold.stored_at)),
                tier: "memory",
                timing: entry.timing(now),
            })
        });
        match seen {
            None => Lookup::Miss,
            Some(Seen::Hit(found)) => Lookup::Hit(found),
            Some(Seen::Gone(seq, lookup)) => {
                // Only the entry looked at: not one stored since.
                self.entries.remove(id, Some(seq));
                lookup
            }
        }
    }

    /// The hit path: what `take` makes of the value of a fresh, valid entry filed under `id`
    /// (the [`key_id`] of its key) (`None` from `take`: no hit), and nothing else — what is
    /// stale, expired or invalidated is left to [`lookup`](Self::lookup). `detail`: read
    /// the entry's [`HitDetail`] too (its cold part: another cache miss).
    #[inline]
    pub(crate) fn fresh<R>(
        &self,
        id: u128,
        detail: bool,
        take: impl FnOnce(Held<'_>) -> Option<R>,
    ) -> Option<FreshHit<R>> {
        let now = self.clock.now();
        self.entries
            .get(id, |entry, _| {
                if now >= entry.fresh_until || !self.valid(entry) {
                    return None;
                }
                Some(FreshHit {
                    value: take(Held { entry })?,
                    at: now,
                    fresh_left_ns: entry.fresh_until - now,
                    detail: detail.then(|| HitDetail {
                        stored_at: entry.cold.stored_at,
                        delta: Duration::from_micros(u64::from(entry.cold.delta_us)),
                    }),
                })
            })
            .flatten()
    }

    #[inline(always)]
    fn valid(&self, entry: &MemEntry) -> bool {
        let generation = self.generation.load(Ordering::SeqCst);
        entry.valid(&self.versions, generation)
    }

    pub(crate) fn take_snapshot(&self, tags: &[Tag]) -> MemSnapshot {
        // Order matters: the generation and removal sequence are read before the
        // sequence number, so a removal that lands between them is still seen at `put`;
        // the versions (for the fingerprint) after it, before the computation reads.
        let epoch = self.epoch.load(Ordering::Acquire);
        let generation = self.generation.load(Ordering::SeqCst);
        let removals_seen = self.removal_seq.load(Ordering::Acquire);
        let seq = self.versions.now();
        let ids: Vec<u64> = tags.iter().map(tag_id).collect();
        let versions = ids.iter().map(|id| self.versions.version(*id)).collect();
        let mut deps = Vec::with_capacity(ids.len() + 2);
        deps.extend([seq, ids.len() as u64]);
        deps.extend(ids);
        MemSnapshot {
            deps: deps.into(),
            versions,
            epoch,
            generation,
            removals_seen,
        }
    }

    /// A hash of the store's clear epoch and the current versions of `tags` (see
    /// [`Store::fingerprint`]). Reads them as a snapshot does: a tag never seen gets its
    /// first version now.
    pub(crate) fn fingerprint_now(&self, tags: &[Tag]) -> u64 {
        self.take_snapshot(tags).fingerprint(tags)
    }

    /// Whether nothing invalidated `snapshot` since it was taken (tags, `clear`).
    pub(crate) fn still_current(&self, snapshot: &MemSnapshot) -> bool {
        deps_current(&self.versions, snapshot.deps.iter().copied())
    }

    pub(crate) fn store(
        &self,
        key: Key,
        value: AnyValue,
        snapshot: MemSnapshot,
        meta: EntryMeta,
    ) -> PutOutcome {
        if meta.weight > self.entries.max_entry_weight() || meta.weight > u64::from(u32::MAX) {
            // More than a shard's share of the budget.
            return PutOutcome::TooLarge;
        }
        if !self.still_current(&snapshot) || self.removed_since(&key, snapshot.removals_seen) {
            return PutOutcome::Outdated;
        }
        let now = self.clock.now();
        let id = key_id(key.as_str());
        let entry = MemEntry {
            small: Inline::empty(),
            checked: AtomicU64::new(snapshot.generation),
            fresh_until: clock::after(now, meta.ttl),
            cold: Box::new(Cold {
                value,
                delta_us: u32::try_from(meta.delta.as_micros()).unwrap_or(u32::MAX),
                weight: u32::try_from(meta.weight.max(1)).unwrap_or(u32::MAX),
                tail: Tail::new(&snapshot.deps, key.as_str()),
                stored_at: now,
                expires_at: clock::after(now, meta.ttl.saturating_add(meta.grace)),
            }),
        };
        match self.entries.insert(id, entry, now) {
            Ok(()) => PutOutcome::Stored,
            Err(_) => PutOutcome::TooLarge,
        }
    }

    /// Whether `key` was removed (by key or pattern) after sequence number `seen`.
    fn removed_since(&self, key: &Key, seen: u64) -> bool {
        let now = self.removal_seq.load(Ordering::Acquire);
        if now == seen {
            return false;
        }
        let log = self.removals.lock();
        let oldest_kept = log.recent.front().map_or(now + 1, |(seq, _)| *seq);
        if oldest_kept > seen + 1 {
            // Removals after `seen` fell out of the log: assume the worst.
            return true;
        }
        log.recent
            .iter()
            .filter(|(seq, _)| *seq > seen)
            .any(|(_, removal)| match removal {
                Removal::Key(k) => k == key,
                Removal::Pattern(p) => p.matches(key.as_str()),
            })
    }

    fn log_removal(&self, removal: Removal) {
        let mut log = self.removals.lock();
        let seq = self.removal_seq.load(Ordering::Acquire) + 1;
        log.recent.push_back((seq, removal));
        if log.recent.len() > REMOVAL_LOG_LEN {
            log.recent.pop_front();
        }
        // Published after the log holds it, under the lock.
        self.removal_seq.store(seq, Ordering::Release);
    }

    pub(crate) fn bump(&self, tags: &[Tag]) -> usize {
        let bumped = self.versions.bump(tags);
        if self.versions.prune_due(|| self.entries.len()) {
            // Forget what no live entry needs: the versions below its oldest snapshot.
            let mut oldest = None::<u64>;
            self.entries.for_each(|entry| {
                if let Some(seen) = tail::oldest(entry.cold.tail.words()) {
                    oldest = Some(oldest.map_or(seen, |o| o.min(seen)));
                }
            });
            let floor = self.versions.prune(oldest);
            tracing::debug!(
                floor,
                kept = self.versions.len(),
                "memory store: tag versions pruned"
            );
        }
        // After the versions: see `generation`.
        self.generation.fetch_add(1, Ordering::SeqCst);
        bumped
    }

    pub(crate) fn remove_key(&self, key: &str) -> bool {
        let Ok(k) = Key::new(key) else {
            return false;
        };
        self.log_removal(Removal::Key(k));
        self.entries.remove(key_id(key), None).is_some()
    }

    pub(crate) fn remove_pattern(&self, pattern: &glob::Pattern) -> usize {
        self.log_removal(Removal::Pattern(pattern.clone()));
        self.entries
            .retain(|entry| !pattern.matches(entry.cold.tail.key()))
    }

    pub(crate) fn clear_all(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.versions.clear();
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.clear();
    }

    pub(crate) fn usage_now(&self) -> StoreUsage {
        StoreUsage {
            entries: self.entries.len() as u64,
            bytes: self.entries.weight(),
            errors: 0,
        }
    }

    /// Number of tags invalidated lately, whose versions the store keeps (diagnostics).
    pub(crate) fn tag_count(&self) -> usize {
        self.versions.len()
    }
}

impl Store for MemoryStore {
    type Snapshot = MemSnapshot;

    fn is_current(&self, snapshot: &MemSnapshot) -> bool {
        self.still_current(snapshot)
    }

    async fn snapshot(&self, tags: &[Tag]) -> Result<MemSnapshot, StoreError> {
        Ok(self.take_snapshot(tags))
    }

    async fn fingerprint(&self, tags: &[Tag]) -> Result<u64, StoreError> {
        Ok(self.fingerprint_now(tags))
    }

    // One version space: a lookup inside a computation is as good as any other; it also
    // says what the entry depends on.
    async fn get(
        &self,
        key: &str,
        _decode: &Decode<'_>,
        scope: ReadScope,
    ) -> Result<Lookup, StoreError> {
        Ok(self.lookup_with(key, scope == ReadScope::InComputation))
    }

    async fn put(
        &self,
        key: Key,
        value: AnyValue,
        _encode: &Encode<'_>,
        snapshot: MemSnapshot,
        meta: EntryMeta,
    ) -> Result<PutOutcome, StoreError> {
        Ok(self.store(key, value, snapshot, meta))
    }

    async fn invalidate(&self, tags: &[Tag]) -> Result<usize, StoreError> {
        Ok(self.bump(tags))
    }

    async fn remove(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.remove_key(key))
    }

    async fn remove_matching(
        &self,
        pattern: &glob::Pattern,
        _text: &str,
    ) -> Result<usize, StoreError> {
        Ok(self.remove_pattern(pattern))
    }

    async fn clear(&self) -> Result<(), StoreError> {
        self.clear_all();
        Ok(())
    }

    fn usage(&self) -> StoreUsage {
        self.usage_now()
    }

    fn tag_count(&self) -> usize {
        MemoryStore::tag_count(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(ttl: u64) -> EntryMeta {
        EntryMeta {
            ttl: Duration::from_secs(ttl),
            grace: Duration::ZERO,
            delta: Duration::ZERO,
            weight: 100,
        }
    }

    fn put(store: &MemoryStore, key: &str, tags: &[Tag], v: u32) -> PutOutcome {
        let snap = store.take_snapshot(tags);
        store.store(Key::new(key).unwrap(), Arc::new(v), snap, meta(60))
    }

    fn hit(store: &MemoryStore, key: &str) -> Option<u32> {
        match store.lookup(key) {
            Lookup::Hit(found) => found.value.downcast_ref::<u32>().copied(),
            _ => None,
        }
    }

    #[test]
    fn a_slot_is_one_cache_line() {
        assert_eq!(map::slot_size::<MemEntry>(), 64);
    }

    #[test]
    fn snapshot_outdated_before_put_is_not_stored() {
        let store = MemoryStore::new(1 << 20);
        let tags = [Tag::model("songs")];
        let snap = store.take_snapshot(&tags);
        store.bump(&tags);
        let out = store.store(Key::new("k").unwrap(), Arc::new(1u32), snap, meta(60));
        assert_eq!(out, PutOutcome::Outdated);
        assert_eq!(hit(&store, "k"), None);
    }

    #[test]
    fn removal_during_computation_blocks_the_put() {
        let store = MemoryStore::new(1 << 20);
        let snap = store.take_snapshot(&[]);
        store.remove_pattern(&glob::Pattern::new("user:*").unwrap());
        let out = store.store(Key::new("user:1").unwrap(), Arc::new(1u32), snap, meta(60));
        assert_eq!(out, PutOutcome::Outdated);
        // An unrelated key is not affected.
        let snap = store.take_snapshot(&[]);
        store.remove_key("other");
        assert_eq!(
            store.store(Key::new("user:2").unwrap(), Arc::new(2u32), snap, meta(60)),
            PutOutcome::Stored
        );
    }

    #[test]
    fn clear_kills_entries_and_snapshots_in_flight() {
        let store = MemoryStore::new(1 << 20);
        assert_eq!(put(&store, "a", &[], 1), PutOutcome::Stored);
        let snap = store.take_snapshot(&[]);
        store.clear_all();
        assert_eq!(hit(&store, "a"), None);
        let out = store.store(Key::new("b").unwrap(), Arc::new(2u32), snap, meta(60));
        assert_eq!(out, PutOutcome::Outdated);
    }

    #[test]
    fn fingerprint_moves_with_tags_and_clear_only() {
        let store = MemoryStore::new(1 << 20);
        let tags = [Tag::model("songs"), Tag::row("songs", 7)];
        let first = store.fingerprint_now(&tags);
        assert_eq!(
            store.fingerprint_now(&tags),
            first,
            "stable while nothing moves"
        );
        store.bump(&[Tag::row("songs", 8)]);
        assert_eq!(store.fingerprint_now(&tags), first, "another row");
        store.bump(&[Tag::row("songs", 7)]);
        let second = store.fingerprint_now(&tags);
        assert_ne!(second, first);
        store.clear_all();
        assert_ne!(store.fingerprint_now(&tags), second, "clear");
    }

    #[test]
    fn budget_is_respected() {
        let store = MemoryStore::new(64 * 1024);
        for i in 0..10_000 {
            put(&store, &format!("k{i}"), &[], i);
        }
        let usage = store.usage_now();
        assert!(usage.bytes <= 64 * 1024, "{usage:?}");
        assert!(usage.entries > 0);
    }

    #[test]
    fn oversized_entries_are_refused() {
        let store = MemoryStore::new(64 * 1024);
        let snap = store.take_snapshot(&[]);
        let out = store.store(
            Key::new("big").unwrap(),
            Arc::new(0u32),
            snap,
            EntryMeta {
                ttl: Duration::from_secs(1),
                grace: Duration::ZERO,
                delta: Duration::ZERO,
                weight: 1 << 20,
            },
        );
        assert_eq!(out, PutOutcome::TooLarge);
    }
}
