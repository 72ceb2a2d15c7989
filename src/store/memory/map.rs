//! The memory store's map: entries held inline in a sharded open-addressing table, read in
//! place under a shard's read lock, evicted by CLOCK with a small frequency counter, and
//! bounded by weight.
//!
//! Why not a general-purpose cache map: a hit must not clone an `Arc` of the entry (a
//! `lock inc` on a line other threads read), nor follow a pointer from the map's slot to the
//! entry. Here a hit is one probe of the shard's table (its control bytes, then the slot,
//! which *is* the entry), with the shard's read lock taken and released around it; the
//! caller reads what it needs from the entry through a closure. Nothing else is written
//! on a hit once an entry has been read three times (the frequency counter saturates).
//!
//! Eviction is CLOCK with a 2-bit frequency per entry (as in S3-FIFO's main queue): a hit
//! raises it, the hand lowers it, and evicts an entry it finds at 0 — or any entry past its
//! life, first. A new entry starts at 0, so entries read once (a scan) go before those read
//! again. (Counting to 15 kept 0.5 points more of the hits on the Zipf workloads of
//! `benches/eviction.rs`, but made hits on 10 000 keys 1.9× slower in `memory_hit`: kept
//! at 3.) Each shard holds at most its share of the total weight, so the whole map
//! never holds more than its capacity.

use std::sync::atomic::{AtomicU64, Ordering};

use hashbrown::HashTable;

use super::lock::{MAX_SHARDS, Sharded};

/// What the map needs to know of an entry.
pub(super) trait MapEntry {
    /// Its weight against the capacity.
    fn weight(&self) -> u64;
    /// Whether it is past its life at `now` (evicted before anything else).
    fn dead(&self, now: u64) -> bool;
}

/// The highest frequency a slot counts to.
const MAX_FREQ: u64 = 3;
/// The bits of a slot's [`mark`](Slot::mark) that hold its frequency.
const FREQ_BITS: u32 = 2;

/// An entry in its table slot, under its 128-bit id. Aligned on 64 bytes: a slot of at most
/// that size is one cache line (the memory store's is exactly one).
#[repr(C, align(64))]
struct Slot<E> {
    id: u128,
    /// Which insertion this is (the high bits: lets a removal take out the entry it looked
    /// at and not one that replaced it since), and the CLOCK frequency (the low
    /// [`FREQ_BITS`]). Readers change only the frequency, with plain stores (racy on
    /// purpose: two readers may both raise it to the same value); the sequence number
    /// changes only under the shard's write lock.
    mark: AtomicU64,
    entry: E,
}

impl<E> Slot<E> {
    fn seq(&self) -> u64 {
        self.mark.load(Ordering::Relaxed) >> FREQ_BITS
    }
}

/// The size of the slot of an `E`, for the test that keeps the memory store's at 64 bytes.
#[cfg(test)]
pub(super) const fn slot_size<E>() -> usize {
    std::mem::size_of::<Slot<E>>()
}

/// One shard: its table, the CLOCK hand (a bucket index), and the weight it holds.
struct Shard<E> {
    table: HashTable<Slot<E>>,
    hand: usize,
    weight: u64,
}

/// The map. See the module docs.
pub(super) struct EntryMap<E> {
    /// The shards, behind locks whose readers write only their own thread's lines.
    shards: Sharded<Shard<E>>,
    shard_capacity: u64,
    seq: AtomicU64,
}

/// The table hash of an id: its low half (the id is already a good hash).
fn table_hash(id: u128) -> u64 {
    id as u64
}

/// How many shards for `parallelism` threads: a few per thread, a power of two from 8 to 16
/// (more would shrink the largest entry a shard can hold, its share of the capacity).
fn shard_count(parallelism: usize) -> usize {
    (parallelism.saturating_mul(4))
        .next_power_of_two()
        .clamp(8, MAX_SHARDS)
}

impl<E: MapEntry> EntryMap<E> {
    /// A map holding at most `capacity` of weight, sized for about `entries` entries.
    pub(super) fn new(capacity: u64, entries: usize) -> Self {
        let parallelism = std::thread::available_parallelism().map_or(2, usize::from);
        Self::with_shards(capacity, entries, shard_count(parallelism))
    }

    /// [`new`](Self::new) with `count` shards (a power of two).
    fn with_shards(capacity: u64, entries: usize, count: usize) -> Self {
        let per_shard = entries / count;
        let shards = Sharded::new(count, || Shard {
            table: HashTable::with_capacity(per_shard),
            hand: 0,
            weight: 0,
        });
        EntryMap {
            shard_capacity: capacity / shards.len() as u64,
            shards,
            seq: AtomicU64::new(0),
        }
    }

    /// The most weight one entry may have: a shard's share of the capacity.
    pub(super) fn max_entry_weight(&self) -> u64 {
        self.shard_capacity
    }

    /// The index of `id`'s shard: the high half picks the shard, the low half the slot
    /// (independent bits).
    fn shard(id: u128) -> usize {
        (id >> 64) as usize
    }

    /// What `read` makes of the entry under `id` (and the sequence number of its insertion),
    /// read in place under the shard's read lock; counts as a use for eviction.
    #[inline]
    pub(super) fn get<R>(&self, id: u128, read: impl FnOnce(&E, u64) -> R) -> Option<R> {
        let shard = self.shards.read(Self::shard(id));
        let slot = shard.table.find(table_hash(id), |slot| slot.id == id)?;
        let mark = slot.mark.load(Ordering::Relaxed);
        if mark & MAX_FREQ < MAX_FREQ {
            // Racy on purpose: two readers may both raise it to the same value.
            slot.mark.store(mark + 1, Ordering::Relaxed);
        }
        Some(read(&slot.entry, mark >> FREQ_BITS))
    }

    /// Files `entry` under `id`, replacing what was there; evicts what the shard must give
    /// up to stay within its share (entries past their life at `now` first). An entry
    /// heavier than [`max_entry_weight`](Self::max_entry_weight) is refused (returned).
    pub(super) fn insert(&self, id: u128, entry: E, now: u64) -> Result<(), E> {
        let weight = entry.weight();
        if weight > self.shard_capacity {
            return Err(entry);
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let slot = Slot {
            id,
            mark: AtomicU64::new(seq << FREQ_BITS),
            entry,
        };
        let mut shard = self.shards.write(Self::shard(id));
        let shard = &mut *shard;
        if let Some(old) = shard.table.find_mut(table_hash(id), |slot| slot.id == id) {
            let replaced = std::mem::replace(old, slot);
            shard.weight = shard.weight - replaced.entry.weight() + weight;
            // Replacing may push the shard over its share: evict others (never this one,
            // which fits alone).
            let Shard {
                table,
                hand,
                weight,
            } = shard;
            evict(table, hand, weight, 0, self.shard_capacity, now, Some(id));
            drop(replaced);
            return Ok(());
        }
        let Shard {
            table,
            hand,
            weight: held,
        } = shard;
        evict(table, hand, held, weight, self.shard_capacity, now, None);
        table.insert_unique(table_hash(id), slot, |slot| table_hash(slot.id));
        *held += weight;
        Ok(())
    }

    /// Removes the entry under `id` if it is the insertion `seq` (any, with `None`); the
    /// entry removed.
    pub(super) fn remove(&self, id: u128, seq: Option<u64>) -> Option<E> {
        let mut shard = self.shards.write(Self::shard(id));
        let shard = &mut *shard;
        let found = shard
            .table
            .find_entry(table_hash(id), |slot| slot.id == id)
            .ok()?;
        if seq.is_some_and(|seq| found.get().seq() != seq) {
            return None;
        }
        let (slot, _) = found.remove();
        shard.weight -= slot.entry.weight();
        Some(slot.entry)
    }

    /// Keeps the entries `keep` says to keep; how many were removed.
    pub(super) fn retain(&self, mut keep: impl FnMut(&E) -> bool) -> usize {
        let mut removed = 0;
        for index in 0..self.shards.len() {
            let mut shard = self.shards.write(index);
            let shard = &mut *shard;
            let mut gone = 0;
            shard.table.retain(|slot| {
                let kept = keep(&slot.entry);
                if !kept {
                    gone += slot.entry.weight();
                    removed += 1;
                }
                kept
            });
            shard.weight -= gone;
        }
        removed
    }

    /// `visit` called with every entry, under its shard's read lock (one shard at a time).
    pub(super) fn for_each(&self, mut visit: impl FnMut(&E)) {
        for index in 0..self.shards.len() {
            for slot in self.shards.read(index).table.iter() {
                visit(&slot.entry);
            }
        }
    }

    /// Removes every entry.
    pub(super) fn clear(&self) {
        for index in 0..self.shards.len() {
            let mut shard = self.shards.write(index);
            // Dropped after the lock: an entry's drop may be slow (a large value).
            let table = std::mem::take(&mut shard.table);
            shard.weight = 0;
            shard.hand = 0;
            drop(shard);
            drop(table);
        }
    }

    /// How many entries it holds.
    pub(super) fn len(&self) -> usize {
        (0..self.shards.len())
            .map(|index| self.shards.read(index).table.len())
            .sum()
    }

    /// The weight it holds.
    pub(super) fn weight(&self) -> u64 {
        (0..self.shards.len())
            .map(|index| self.shards.read(index).weight)
            .sum()
    }
}

/// Turns the CLOCK `hand` of `table` until `held + incoming` fits in `capacity`: a slot past
/// its life goes at once, one at frequency 0 goes, any other has its frequency lowered.
/// `keep` is never evicted. Ends: each turn lowers every frequency it passes, so within
/// `MAX_FREQ + 1` turns every other slot is at 0.
fn evict<E: MapEntry>(
    table: &mut HashTable<Slot<E>>,
    hand: &mut usize,
    held: &mut u64,
    incoming: u64,
    capacity: u64,
    now: u64,
    keep: Option<u128>,
) {
    let buckets = table.num_buckets();
    let mut budget = buckets.saturating_mul(MAX_FREQ as usize + 2);
    while held.saturating_add(incoming) > capacity && budget > 0 {
        budget -= 1;
        if *hand >= buckets {
            *hand = 0;
        }
        let index = *hand;
        *hand += 1;
        let Some(slot) = table.get_bucket(index) else {
            continue;
        };
        if keep == Some(slot.id) {
            continue;
        }
        let mark = slot.mark.load(Ordering::Relaxed);
        if mark & MAX_FREQ > 0 && !slot.entry.dead(now) {
            slot.mark.store(mark - 1, Ordering::Relaxed);
            continue;
        }
        if let Ok(occupied) = table.get_bucket_entry(index) {
            let (slot, _) = occupied.remove();
            *held -= slot.entry.weight();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Item {
        weight: u64,
        dies: u64,
    }

    impl MapEntry for Item {
        fn weight(&self) -> u64 {
            self.weight
        }
        fn dead(&self, now: u64) -> bool {
            now >= self.dies
        }
    }

    fn item(weight: u64) -> Item {
        Item {
            weight,
            dies: u64::MAX,
        }
    }

    /// Ids that land in shard 0 with distinct slots.
    fn id(n: u64) -> u128 {
        u128::from(n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    #[test]
    fn get_insert_replace_remove() {
        let map = EntryMap::new(1 << 20, 16);
        assert!(map.get(id(1), |_, _| ()).is_none());
        map.insert(id(1), item(10), 0).unwrap();
        assert_eq!(map.get(id(1), |e, _| e.weight), Some(10));
        let first = map.get(id(1), |_, seq| seq).unwrap();
        map.insert(id(1), item(20), 0).unwrap();
        assert_eq!(map.weight(), 20, "replaced, not added");
        assert!(
            map.remove(id(1), Some(first)).is_none(),
            "not the same insertion"
        );
        assert_eq!(map.remove(id(1), None).map(|e| e.weight), Some(20));
        assert_eq!((map.len(), map.weight()), (0, 0));
    }

    #[test]
    fn capacity_holds_and_hot_entries_stay() {
        let map = EntryMap::with_shards(8 * 100, 64, 8);
        // Each shard holds 100 weight: ten items of 10.
        let hot = id(0);
        map.insert(hot, item(10), 0).unwrap();
        for n in 1..10_000 {
            map.get(hot, |_, _| ());
            map.insert(id(n), item(10), 0).unwrap();
            assert!(map.weight() <= 100);
        }
        assert!(
            map.get(hot, |_, _| ()).is_some(),
            "read between inserts: kept"
        );
    }

    #[test]
    fn dead_entries_go_first_and_heavy_ones_are_refused() {
        let map = EntryMap::with_shards(8 * 30, 64, 8);
        assert!(map.insert(id(1), item(31), 0).is_err());
        map.insert(
            id(1),
            Item {
                weight: 10,
                dies: 5,
            },
            0,
        )
        .unwrap();
        map.get(id(1), |_, _| ());
        map.insert(id(2), item(10), 0).unwrap();
        map.get(id(2), |_, _| ());
        map.insert(id(3), item(10), 0).unwrap();
        map.insert(id(4), item(10), 10).unwrap();
        assert!(map.get(id(1), |_, _| ()).is_none(), "dead, evicted first");
        assert!(map.get(id(2), |_, _| ()).is_some());
    }

    #[test]
    fn retain_and_clear() {
        let map = EntryMap::new(1 << 20, 16);
        for n in 0..100 {
            map.insert(id(n), item(n + 1), 0).unwrap();
        }
        assert_eq!(map.retain(|e| e.weight % 2 == 0), 50);
        assert_eq!(map.len(), 50);
        assert_eq!(map.weight(), (1..=100).filter(|w| w % 2 == 0).sum::<u64>());
        map.clear();
        assert_eq!((map.len(), map.weight()), (0, 0));
    }
}
