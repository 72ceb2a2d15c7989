//! The in-process memory store.
//!
//! Entries live in a [`quick_cache`] map (sharded, weighted by bytes, CLOCK-Pro eviction
//! that resists scans). Each entry holds the caller's value behind an `Arc` — a hit is a
//! pointer copy, with no decoding — and an `Arc` to the version cell of each tag it depends
//! on, so validating a hit is one atomic load per tag.
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
use quick_cache::Weighter;
use quick_cache::sync::Cache as QuickCache;

use super::{
    AnyValue, Decode, Deps, Encode, EntryMeta, Found, Lookup, PutOutcome, ReadScope, Snapshot,
    Store, StoreError, StoreUsage, Timing,
};
use crate::clock::{self, Clock};
use crate::key::key_id;
use crate::tags::{Stamp, TagVersions, is_current};
use crate::{Key, Tag};

/// A stored entry. Shared (`Arc`) so that a lookup clones a pointer, not the entry. Times
/// are readings of the store's [`Clock`] ([`clock`] nanoseconds): 8 bytes each.
struct MemEntry {
    /// The key's text (the map files the entry under a hash of it: see [`Id`]).
    key: Box<str>,
    value: AnyValue,
    stamps: Box<[Stamp]>,
    epoch: u64,
    /// The store's [generation](MemoryStore::generation) at which `stamps` were last seen
    /// current: while it has not moved, nothing was invalidated and the stamps need no
    /// reading (nor their cells, cache misses of their own).
    checked: AtomicU64,
    stored_at: u64,
    /// When the TTL passes; the entry may be served stale until `expires_at`.
    fresh_until: u64,
    /// When it is gone for good: the TTL plus the grace period.
    expires_at: u64,
    /// How long its computation took, in microseconds (saturating: 71 minutes).
    delta_us: u32,
    /// Its weight against the byte budget (at most an eighth of it: see `store`).
    weight: u32,
}

impl MemEntry {
    fn timing(&self, now: u64) -> Timing {
        Timing {
            fresh_left: Duration::from_nanos(self.fresh_until.saturating_sub(now)),
            stale_for: Duration::from_nanos(now.saturating_sub(self.fresh_until)),
            delta: Duration::from_micros(u64::from(self.delta_us)),
        }
    }

    /// Whether nothing invalidated the entry: its epoch and tag versions are current.
    /// `generation` is the store's, read before the call.
    fn valid(&self, epoch: u64, generation: u64) -> bool {
        if self.epoch != epoch {
            return false;
        }
        if self.checked.load(Ordering::Relaxed) == generation {
            return true;
        }
        // Read after `generation`: a bump this misses moves the generation past it, and
        // the next hit looks again.
        let current = is_current(&self.stamps);
        if current {
            self.checked.store(generation, Ordering::Relaxed);
        }
        current
    }
}

/// What the map files an entry under: the 128-bit seeded hash of its key's text
/// ([`key_id`]). Comparing two of them is comparing two integers, with no pointer to
/// follow to the key's text — the lookup of a hit touches the map's slot and the entry only.
/// Two texts with one hash would share a slot: a 2⁻¹²⁸ chance per pair of keys, with a seed
/// chosen per process that nobody outside it sees (so keys cannot be crafted to collide) —
/// the odds a function's default key already takes with its 128-bit hash of the arguments.
/// The hit path therefore does not read the entry's key text (a cache miss of its own).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Id(u128);

impl std::hash::Hash for Id {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Already a good hash: its low half is all the map needs.
        state.write_u64(self.0 as u64);
    }
}

/// A hasher that passes an [`Id`]'s bits through.
#[derive(Clone, Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (by `Id`); fold anything else in rather than drop it.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

type IdHash = std::hash::BuildHasherDefault<IdHasher>;

#[derive(Clone)]
struct EntryWeighter;

impl Weighter<Id, Arc<MemEntry>> for EntryWeighter {
    fn weight(&self, _key: &Id, entry: &Arc<MemEntry>) -> u64 {
        u64::from(entry.weight)
    }
}

/// A fresh, valid entry found by [`MemoryStore::fresh`]: what `take` made of its value.
pub(crate) struct FreshHit<R> {
    pub(crate) value: R,
    /// When it was found (a reading of the store's [`Clock`]).
    pub(crate) at: u64,
    pub(crate) timing: Timing,
    pub(crate) age: Duration,
}

/// What an entry of `json_len` bytes of JSON under a key of `key_len` bytes, depending on
/// `dependencies` tags, is counted for against the memory budget: its in-memory form
/// (taken as its JSON size plus an eighth: the struct headers and string capacities Rust
/// keeps where JSON keeps quotes), its key, and the store's own bookkeeping — the entry
/// (112 B), its map slot (about 56 B), and a (cell, version) pair per dependency, whose
/// row-level cells cost the map about 56 B more. These constants come from the counting
/// allocator of `benches/memory_footprint.rs`.
pub(crate) fn entry_weight(json_len: usize, key_len: usize, dependencies: usize) -> u64 {
    const ENTRY: u64 = 112 + 56;
    const PER_DEPENDENCY: u64 = 16 + 14;
    let json = json_len as u64;
    (json + json / 8)
        .saturating_add(key_len as u64)
        .saturating_add(ENTRY)
        .saturating_add(PER_DEPENDENCY.saturating_mul(dependencies as u64))
}

/// The tag versions (and removal sequence) a computation started under.
#[derive(Clone)]
pub(crate) struct MemSnapshot {
    stamps: Arc<[Stamp]>,
    epoch: u64,
    generation: u64,
    removals_seen: u64,
}

impl MemSnapshot {
    /// This snapshot and `later` (of other tags, taken after it): both's versions, this
    /// one's epoch, generation and removal mark — the older ones, so that a clear or a
    /// removal since this one was taken still makes the put outdated.
    pub(crate) fn joined(&self, later: &MemSnapshot) -> MemSnapshot {
        MemSnapshot {
            stamps: self
                .stamps
                .iter()
                .chain(later.stamps.iter())
                .cloned()
                .collect(),
            epoch: self.epoch,
            generation: self.generation,
            removals_seen: self.removals_seen,
        }
    }

    /// How many tags it holds versions of.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn len(&self) -> usize {
        self.stamps.len()
    }

    /// A hash of the clear epoch and the versions of `tags` (the tags this snapshot was
    /// taken of, in the same order) as this snapshot saw them.
    pub(crate) fn fingerprint(&self, tags: &[Tag]) -> u64 {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        // A domain of its own: a memory fingerprint never equals a Redis one.
        hasher.update(b"querycache:memory\0");
        hasher.update(&self.epoch.to_le_bytes());
        // Versions beyond `tags` (an inner entry's, joined without their names: see
        // `Deps::Versions`) count by their tokens alone, which are never reused.
        for (i, (_, version)) in self.stamps.iter().enumerate() {
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
    entries: QuickCache<Id, Arc<MemEntry>, EntryWeighter, IdHash>,
    versions: TagVersions,
    /// Bumped by `clear`: entries and snapshots of an older epoch are dead.
    epoch: AtomicU64,
    /// Moves after every invalidation (tag bumps, `clear`), once its versions are in
    /// place: an entry checked at the current generation is still valid.
    generation: AtomicU64,
    removal_seq: AtomicU64,
    removals: Mutex<RemovalLog>,
    max_bytes: u64,
    /// What entries are stamped with and judged against: see [`Clock`].
    clock: Clock,
}

impl MemoryStore {
    /// A store holding at most `max_bytes` of (estimated) entry weight.
    pub(crate) fn new(max_bytes: u64) -> Self {
        // A guess at entry count for pre-sizing: 1 KiB per entry, within sane bounds.
        let estimated = usize::try_from(max_bytes / 1024)
            .unwrap_or(usize::MAX)
            .clamp(1024, 1 << 20);
        MemoryStore {
            entries: QuickCache::with(
                estimated,
                max_bytes,
                EntryWeighter,
                IdHash::default(),
                Default::default(),
            ),
            versions: TagVersions::new(),
            epoch: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            removal_seq: AtomicU64::new(0),
            removals: Mutex::new(RemovalLog {
                recent: VecDeque::new(),
            }),
            max_bytes,
            clock: Clock::default(),
        }
    }

    /// The store, reading `clock` (the cache's) rather than the monotonic clock.
    pub(crate) fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The entry under `key` (see [`Id`]).
    fn entry(&self, key: &str) -> Option<(Id, Arc<MemEntry>)> {
        let id = Id(key_id(key));
        self.entries.get(&id).map(|entry| (id, entry))
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
        let Some((id, entry)) = self.entry(key) else {
            return Lookup::Miss;
        };
        let now = self.clock.now();
        if now >= entry.expires_at {
            self.entries
                .remove_if(&id, |current| Arc::ptr_eq(current, &entry));
            return Lookup::Expired;
        }
        if !self.valid(&entry) {
            self.entries
                .remove_if(&id, |current| Arc::ptr_eq(current, &entry));
            return Lookup::Invalidated;
        }
        let deps = with_versions.then(|| {
            Deps::Versions(Snapshot::Memory(MemSnapshot {
                stamps: entry.stamps.iter().cloned().collect(),
                epoch: entry.epoch,
                // Taken by the snapshot this one is joined to.
                generation: 0,
                removals_seen: 0,
            }))
        });
        Lookup::Hit(Found {
            deps,
            value: Arc::clone(&entry.value),
            age: Duration::from_nanos(now.saturating_sub(entry.stored_at)),
            tier: "memory",
            timing: entry.timing(now),
        })
    }

    /// The hit path: what `take` makes of the value of a fresh, valid entry under `key`
    /// (`None` from `take`: no hit), and nothing else — what is stale, expired or
    /// invalidated is left to [`lookup`](Self::lookup).
    pub(crate) fn fresh<R>(
        &self,
        key: &str,
        take: impl FnOnce(&AnyValue) -> Option<R>,
    ) -> Option<FreshHit<R>> {
        let (_, entry) = self.entry(key)?;
        let now = self.clock.now();
        if now >= entry.fresh_until || !self.valid(&entry) {
            return None;
        }
        Some(FreshHit {
            value: take(&entry.value)?,
            at: now,
            timing: entry.timing(now),
            age: Duration::from_nanos(now.saturating_sub(entry.stored_at)),
        })
    }

    fn valid(&self, entry: &MemEntry) -> bool {
        let generation = self.generation.load(Ordering::SeqCst);
        entry.valid(self.epoch.load(Ordering::Acquire), generation)
    }

    pub(crate) fn take_snapshot(&self, tags: &[Tag]) -> MemSnapshot {
        // Order matters: the epoch and removal sequence are read before the versions, so
        // a clear or removal that lands between them is still seen at `put`.
        let epoch = self.epoch.load(Ordering::Acquire);
        let generation = self.generation.load(Ordering::SeqCst);
        let removals_seen = self.removal_seq.load(Ordering::Acquire);
        MemSnapshot {
            stamps: self.versions.snapshot(tags).into(),
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
        snapshot.epoch == self.epoch.load(Ordering::Acquire) && is_current(&snapshot.stamps)
    }

    pub(crate) fn store(
        &self,
        key: Key,
        value: AnyValue,
        snapshot: MemSnapshot,
        meta: EntryMeta,
    ) -> PutOutcome {
        if meta.weight > self.max_bytes / 8 || meta.weight > u64::from(u32::MAX) {
            // quick_cache would reject it anyway (it exceeds a shard); say so.
            return PutOutcome::TooLarge;
        }
        if !self.still_current(&snapshot) || self.removed_since(&key, snapshot.removals_seen) {
            return PutOutcome::Outdated;
        }
        let now = self.clock.now();
        let entry = MemEntry {
            key: key.as_str().into(),
            value,
            stamps: snapshot.stamps.iter().cloned().collect(),
            epoch: snapshot.epoch,
            checked: AtomicU64::new(snapshot.generation),
            stored_at: now,
            fresh_until: clock::after(now, meta.ttl),
            expires_at: clock::after(now, meta.ttl.saturating_add(meta.grace)),
            delta_us: u32::try_from(meta.delta.as_micros()).unwrap_or(u32::MAX),
            weight: u32::try_from(meta.weight.max(1)).unwrap_or(u32::MAX),
        };
        self.entries.insert(Id(key_id(&entry.key)), Arc::new(entry));
        PutOutcome::Stored
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
        // After the versions: see `generation`.
        self.generation.fetch_add(1, Ordering::SeqCst);
        bumped
    }

    pub(crate) fn remove_key(&self, key: &str) -> bool {
        let Ok(k) = Key::new(key) else {
            return false;
        };
        self.log_removal(Removal::Key(k));
        match self.entry(key) {
            Some((id, entry)) => self
                .entries
                .remove_if(&id, |current| Arc::ptr_eq(current, &entry))
                .is_some(),
            None => false,
        }
    }

    pub(crate) fn remove_pattern(&self, pattern: &glob::Pattern) -> usize {
        self.log_removal(Removal::Pattern(pattern.clone()));
        let removed = std::sync::atomic::AtomicUsize::new(0);
        self.entries.retain(|_, entry| {
            let keep = !pattern.matches(&entry.key);
            if !keep {
                removed.fetch_add(1, Ordering::Relaxed);
            }
            keep
        });
        removed.into_inner()
    }

    pub(crate) fn clear_all(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
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

    /// Number of tags with a live version (for diagnostics and tests).
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
