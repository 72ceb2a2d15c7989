//! The memory store's tag versions, as one sequence: every invalidation takes the next
//! number of the sequence and records it as the version of each tag it names; a snapshot
//! is the sequence's value when a computation starts. An entry is valid while none of its
//! tags has a version above its snapshot.
//!
//! Only tags invalidated since the [floor](TagVersions::floor) are kept, by a 64-bit hash
//! of their text ([`tag_id`]): a tag nothing invalidated costs the store nothing, and an
//! entry holds its tags' 8-byte ids and one sequence number. Versions at or below the floor
//! are forgotten, and a snapshot older than the floor is outdated: what it could have missed
//! is no longer known. The store raises the floor to its oldest live entry's snapshot when
//! the table grows ([`TagVersions::prune`]), so forgetting costs valid entries nothing;
//! only when that entry pins too many versions is it raised further, and the entries older
//! than it are then recomputed (more misses, never a stale read).
//!
//! Two tags with one hash share a version: invalidating either invalidates the entries of
//! both — more than asked, never less.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;

use crate::Tag;

/// Size of the table at which it is pruned first.
const MIN_PRUNE_AT: usize = 4096;

/// Most versions a prune keeps because an old entry's snapshot still needs them: beyond,
/// the floor rises past that entry (about 1.5 MB of versions).
const MAX_PINNED: usize = 1 << 16;

/// See the module docs.
#[derive(Debug)]
pub(super) struct TagVersions {
    /// The version (a sequence number) of each tag invalidated since the floor, by id.
    bumped: DashMap<u64, u64>,
    /// The last number taken: a snapshot reads it, an invalidation takes the next.
    seq: AtomicU64,
    /// Versions at or below it are forgotten; snapshots below it are outdated.
    floor: AtomicU64,
    /// Size of `bumped` at which it is pruned next (`usize::MAX` while a prune runs).
    prune_at: AtomicUsize,
}

impl TagVersions {
    pub(super) fn new() -> Self {
        TagVersions {
            bumped: DashMap::new(),
            seq: AtomicU64::new(1),
            floor: AtomicU64::new(0),
            prune_at: AtomicUsize::new(MIN_PRUNE_AT),
        }
    }

    /// A snapshot's sequence number: what it sees as invalidated is what it is judged
    /// against later ([`current`](Self::current)).
    pub(super) fn now(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    /// The floor: snapshots below it are outdated.
    pub(super) fn floor(&self) -> u64 {
        self.floor.load(Ordering::SeqCst)
    }

    /// The version of the tag filed under `id`: the last invalidation's number, or the
    /// floor for a tag not invalidated since. It only grows, and an invalidation makes it
    /// a number never used before: equal versions mean no invalidation in between.
    pub(super) fn version(&self, id: u64) -> u64 {
        match self.bumped.get(&id) {
            Some(version) => *version,
            // Read after the table: a prune raises the floor before it forgets.
            None => self.floor(),
        }
    }

    /// Gives each of `tags` a new version; returns the number of tags.
    pub(super) fn bump(&self, tags: &[Tag]) -> usize {
        let version = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        for tag in tags {
            // Never lowered: a concurrent bump that took a higher number may land first.
            self.bumped
                .entry(tag_id(tag))
                .and_modify(|v| *v = (*v).max(version))
                .or_insert(version);
        }
        tags.len()
    }

    /// Forgets everything: every snapshot taken before is outdated.
    pub(super) fn clear(&self) {
        let version = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        self.floor.fetch_max(version, Ordering::SeqCst);
        self.bumped.clear();
    }

    /// Whether a snapshot taken at `seq` of the tags filed under `ids` is still current:
    /// none of them invalidated since, and not older than the floor.
    pub(super) fn current(&self, seq: u64, ids: impl IntoIterator<Item = u64>) -> bool {
        let untouched = ids
            .into_iter()
            .all(|id| self.bumped.get(&id).is_none_or(|version| *version <= seq));
        // The floor after the table: a prune raises it before it forgets.
        untouched && seq >= self.floor()
    }

    /// Number of tags with a version above the floor.
    pub(super) fn len(&self) -> usize {
        self.bumped.len()
    }

    /// Whether the table has grown enough to prune, with `entries` entries to scan for
    /// their oldest snapshot (a prune waits for a quarter of that many versions, so that
    /// scanning costs each invalidation at most four entries' visits); if so, this caller
    /// is the one to call [`prune`](Self::prune) (others go on).
    pub(super) fn prune_due(&self, entries: impl FnOnce() -> usize) -> bool {
        let threshold = self.prune_at.load(Ordering::Relaxed);
        let len = self.bumped.len();
        len >= threshold
            && len >= entries() / 4
            && self
                .prune_at
                .compare_exchange(threshold, usize::MAX, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// Raises the floor to `oldest` (the oldest snapshot a live entry holds; `None`: no
    /// entry) — or further, when that keeps more than [`MAX_PINNED`] versions — and
    /// forgets the versions at or below it. Returns the new floor. Only after
    /// [`prune_due`](Self::prune_due) said so.
    pub(super) fn prune(&self, oldest: Option<u64>) -> u64 {
        let mut floor = oldest.unwrap_or_else(|| self.now());
        let mut kept: Vec<u64> = self
            .bumped
            .iter()
            .map(|entry| *entry.value())
            .filter(|version| *version > floor)
            .collect();
        if kept.len() > MAX_PINNED {
            let middle = kept.len() / 2;
            let (_, median, _) = kept.select_nth_unstable(middle);
            floor = *median;
        }
        // Raised before anything is forgotten: a reader that misses a version sees it.
        let floor = self.floor.fetch_max(floor, Ordering::SeqCst).max(floor);
        self.bumped.retain(|_, version| *version > floor);
        let next = (self.bumped.len() * 2).max(MIN_PRUNE_AT);
        self.prune_at.store(next, Ordering::Release);
        floor
    }
}

/// The id [`TagVersions`] files `tag` under: xxh3-64 of its text, seeded per process.
pub(super) fn tag_id(tag: &Tag) -> u64 {
    static SEED: std::sync::LazyLock<u64> = std::sync::LazyLock::new(rand::random);
    xxhash_rust::xxh3::xxh3_64_with_seed(tag.as_str().as_bytes(), *SEED)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(tags: &[Tag]) -> Vec<u64> {
        tags.iter().map(tag_id).collect()
    }

    #[test]
    fn a_bump_outdates_the_snapshots_taken_before_it_only() {
        let versions = TagVersions::new();
        let tags = [Tag::model("songs"), Tag::row("songs", 1)];
        let before = versions.now();
        assert!(versions.current(before, ids(&tags)));
        versions.bump(&[Tag::row("songs", 2)]);
        assert!(versions.current(before, ids(&tags)), "another row");
        versions.bump(&[Tag::row("songs", 1)]);
        assert!(!versions.current(before, ids(&tags)));
        assert!(versions.current(versions.now(), ids(&tags)), "taken after");
    }

    #[test]
    fn versions_only_grow_and_a_bump_makes_a_new_one() {
        let versions = TagVersions::new();
        let id = tag_id(&Tag::model("songs"));
        let first = versions.version(id);
        versions.bump(&[Tag::model("users")]);
        assert_eq!(versions.version(id), first, "another tag");
        versions.bump(&[Tag::model("songs")]);
        let second = versions.version(id);
        assert!(second > first);
        // Forgotten by a prune: the floor stands in, never an older number.
        versions.prune(None);
        assert_eq!(versions.len(), 0);
        assert!(versions.version(id) >= second);
    }

    #[test]
    fn a_prune_keeps_what_live_snapshots_need_and_outdates_older_ones() {
        let versions = TagVersions::new();
        let old = versions.now();
        versions.bump(&[Tag::row("t", 0)]);
        let held = versions.now();
        for i in 1..=MIN_PRUNE_AT as u64 {
            versions.bump(&[Tag::row("t", i)]);
        }
        assert!(
            !versions.prune_due(|| 4 * (MIN_PRUNE_AT + 2)),
            "fewer versions than a quarter of the entries"
        );
        assert!(versions.prune_due(|| 0));
        assert!(!versions.prune_due(|| 0), "one pruner at a time");
        assert_eq!(versions.prune(Some(held)), held);
        assert_eq!(versions.len(), MIN_PRUNE_AT, "every bump after `held` kept");
        let held_ids = ids(&[Tag::row("t", 0)]);
        assert!(versions.current(held, held_ids.clone()));
        assert!(
            !versions.current(old, held_ids),
            "older than the floor: outdated"
        );
        versions.bump(&[Tag::row("t", 0)]);
        assert!(!versions.current(held, ids(&[Tag::row("t", 0)])));
    }

    #[test]
    fn an_entry_pinning_too_many_versions_is_passed() {
        let versions = TagVersions::new();
        let held = versions.now();
        for i in 0..(MAX_PINNED as u64 + 10) {
            versions.bump(&[Tag::row("t", i)]);
        }
        let floor = versions.prune(Some(held));
        assert!(floor > held);
        assert!(versions.len() <= MAX_PINNED);
        assert!(
            !versions.current(held, []),
            "the pinning snapshot is outdated"
        );
    }

    #[test]
    fn clear_outdates_every_snapshot_before_it() {
        let versions = TagVersions::new();
        let before = versions.now();
        versions.clear();
        assert!(!versions.current(before, []));
        assert!(versions.current(versions.now(), []));
    }
}
