//! Activity per 10-second bucket over the last 15 minutes: a fixed ring of atomics.
//!
//! Buckets are aligned on wall-clock multiples of 10 s (a bucket's number is its start in
//! unix milliseconds divided by 10 000), but their position is computed from a monotonic
//! clock: the lookup path passes the reading of [`clock::now`] (or the `Instant`) it
//! already took, so recording costs no extra clock read — an atomic load of the slot's
//! bucket number and one increment. Lookups, counted on every hit, are striped (see
//! [`striped`](super::striped)): each thread adds to a row of counters that it alone writes
//! (a plain load and store), and a read sums the rows. A slot is recycled by the first
//! writer that sees it holding a bucket from 15 minutes ago; an increment racing that reset can be lost, or (a thread's load before
//! the reset, its store after) carry the count it held 15 minutes earlier — both only at
//! the first instant of a bucket, and only in the activity timeline, never in the totals.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::clock;

/// Width of one bucket.
pub(crate) const BUCKET: Duration = Duration::from_secs(10);
/// Buckets kept: 15 minutes.
pub(crate) const BUCKETS: usize = 90;

const BUCKET_MS: u64 = BUCKET.as_millis() as u64;

#[derive(Default)]
struct Slot {
    /// The bucket number this slot's counters belong to (0: never used).
    bucket: AtomicU64,
    sets: AtomicU64,
    invalidations: AtomicU64,
}

/// One stripe's lookup counters, `[hits, misses]` for each slot, on lines of their own.
#[repr(align(128))]
struct LookupRow([[AtomicU64; 2]; BUCKETS]);

impl Default for LookupRow {
    fn default() -> Self {
        LookupRow(std::array::from_fn(|_| Default::default()))
    }
}

/// The counts of one bucket, read back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Start of the bucket, unix milliseconds.
    pub(crate) start_ms: u64,
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) sets: u64,
    pub(crate) invalidations: u64,
}

/// The ring. See the module docs.
pub(crate) struct Timeline {
    /// When the timeline started (its Unix time is read at the same moment).
    origin: Instant,
    /// `origin` as a reading of [`clock::now`].
    origin_clock: u64,
    /// Unix nanoseconds at `origin` (truncated to the millisecond), less `origin_clock`:
    /// a clock reading plus this is Unix nanoseconds.
    unix_offset_ns: u64,
    slots: Box<[Slot]>,
    /// Lookups per slot, one row per stripe.
    lookups: Box<[LookupRow]>,
}

impl Timeline {
    pub(crate) fn new() -> Self {
        let origin_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let origin = Instant::now();
        let origin_clock = clock::of_instant(origin);
        Timeline {
            origin,
            origin_clock,
            unix_offset_ns: origin_ms
                .saturating_mul(1_000_000)
                .wrapping_sub(origin_clock),
            slots: (0..BUCKETS).map(|_| Slot::default()).collect(),
            lookups: (0..crate::stripes::STRIPES)
                .map(|_| LookupRow::default())
                .collect(),
        }
    }

    /// Unix milliseconds at `at`.
    pub(crate) fn unix_ms(&self, at: Instant) -> u64 {
        self.unix_ms_at(clock::of_instant(at))
    }

    /// Unix milliseconds at `at`, a reading of [`clock::now`].
    fn unix_ms_at(&self, at: u64) -> u64 {
        self.unix_ns_at(at) / 1_000_000
    }

    /// Unix nanoseconds at `at`, a reading of [`clock::now`] (at `origin` when earlier), on
    /// the millisecond grid of `origin`'s Unix time.
    #[inline(always)]
    fn unix_ns_at(&self, at: u64) -> u64 {
        at.max(self.origin_clock).wrapping_add(self.unix_offset_ns)
    }

    /// How long ago the timeline started.
    pub(crate) fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.origin)
    }

    fn bucket_of(&self, at: Instant) -> u64 {
        self.bucket_at(clock::of_instant(at))
    }

    /// The bucket of `at`, a reading of [`clock::now`]: the one computation of a bucket,
    /// whether the caller holds a clock reading (a hit) or an `Instant`: its Unix
    /// milliseconds over `BUCKET_MS`, in one division (⌊⌊x / a⌋ / b⌋ is ⌊x / ab⌋).
    #[inline(always)]
    fn bucket_at(&self, at: u64) -> u64 {
        self.unix_ns_at(at) / (BUCKET_MS * 1_000_000)
    }

    /// The slot for the bucket of `at`, recycled if it held an older bucket; `None` when it
    /// already holds a newer one (`at` is from a caller that stalled for 15 minutes).
    fn slot(&self, at: Instant) -> Option<(usize, &Slot)> {
        self.slot_of(self.bucket_of(at))
    }

    /// [`slot`](Self::slot) of a bucket number.
    #[inline(always)]
    fn slot_of(&self, bucket: u64) -> Option<(usize, &Slot)> {
        let index = (bucket % BUCKETS as u64) as usize;
        let slot = self.slots.get(index)?;
        let held = slot.bucket.load(Ordering::Acquire);
        if held == bucket {
            return Some((index, slot));
        }
        self.recycle(index, slot, held, bucket)
    }

    /// [`slot_of`](Self::slot_of) when the slot holds another bucket than `bucket`
    /// (`held`): once every ten seconds, out of the hit's line.
    #[cold]
    #[inline(never)]
    fn recycle<'a>(
        &self,
        index: usize,
        slot: &'a Slot,
        held: u64,
        bucket: u64,
    ) -> Option<(usize, &'a Slot)> {
        if held > bucket {
            return None;
        }
        if slot
            .bucket
            .compare_exchange(held, bucket, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let lookups = self.lookups.iter().flat_map(|row| &row.0[index]);
            for counter in [&slot.sets, &slot.invalidations].into_iter().chain(lookups) {
                counter.store(0, Ordering::Relaxed);
            }
        }
        Some((index, slot))
    }

    /// A lookup that started at `at`.
    #[cfg(test)]
    pub(crate) fn lookup(&self, at: Instant, hit: bool) {
        self.lookup_at(clock::of_instant(at), hit, crate::stripes::stripe());
    }

    /// A lookup that started at `at`, a reading of [`clock::now`], counted in `stripe`
    /// (the calling thread's: see [`stripes::stripe`](crate::stripes::stripe)).
    #[inline(always)]
    pub(crate) fn lookup_at(&self, at: u64, hit: bool, (stripe, owned): (usize, bool)) {
        if let Some((index, _)) = self.slot_of(self.bucket_at(at))
            && let Some(row) = self.lookups.get(stripe)
        {
            crate::stripes::bump(&row.0[index][usize::from(!hit)], owned);
        }
    }

    /// A value stored at `at`.
    pub(crate) fn set(&self, at: Instant) {
        if let Some((_, slot)) = self.slot(at) {
            slot.sets.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `n` invalidations at `at`.
    pub(crate) fn invalidations(&self, at: Instant, n: u64) {
        if let Some((_, slot)) = self.slot(at) {
            slot.invalidations.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The last [`BUCKETS`] buckets up to the one of `now`, oldest first; buckets nothing
    /// was recorded in are zeros.
    pub(crate) fn read(&self, now: Instant) -> Vec<Counts> {
        let current = self.bucket_of(now);
        let first = current.saturating_sub(BUCKETS as u64 - 1);
        (first..=current)
            .map(|bucket| {
                let index = (bucket % BUCKETS as u64) as usize;
                let slot = &self.slots[index];
                let mut counts = Counts {
                    start_ms: bucket * BUCKET_MS,
                    ..Counts::default()
                };
                if slot.bucket.load(Ordering::Acquire) == bucket {
                    for row in &self.lookups {
                        counts.hits += row.0[index][0].load(Ordering::Relaxed);
                        counts.misses += row.0[index][1].load(Ordering::Relaxed);
                    }
                    counts.sets = slot.sets.load(Ordering::Relaxed);
                    counts.invalidations = slot.invalidations.load(Ordering::Relaxed);
                }
                counts
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_their_bucket_oldest_first() {
        let timeline = Timeline::new();
        let t0 = timeline.origin;
        timeline.lookup(t0, true);
        timeline.lookup(t0, false);
        timeline.set(t0);
        let later = t0 + BUCKET * 3;
        timeline.lookup(later, true);
        timeline.invalidations(later, 4);

        let buckets = timeline.read(later);
        assert_eq!(buckets.len(), BUCKETS);
        assert!(
            buckets
                .windows(2)
                .all(|w| w[1].start_ms == w[0].start_ms + BUCKET_MS)
        );
        let last = buckets[BUCKETS - 1];
        assert_eq!((last.hits, last.misses, last.invalidations), (1, 0, 4));
        assert!(last.start_ms <= timeline.unix_ms(later));
        let first = buckets[BUCKETS - 4];
        assert_eq!((first.hits, first.misses, first.sets), (1, 1, 1));
    }

    #[test]
    fn a_slot_is_recycled_after_fifteen_minutes() {
        let timeline = Timeline::new();
        let t0 = timeline.origin;
        timeline.lookup(t0, true);
        let wrapped = t0 + BUCKET * BUCKETS as u32;
        timeline.lookup(wrapped, false);
        let buckets = timeline.read(wrapped);
        let total_hits: u64 = buckets.iter().map(|b| b.hits).sum();
        assert_eq!(total_hits, 0, "the old bucket fell out of the window");
        assert_eq!(buckets[BUCKETS - 1].misses, 1);
        // A straggler from the old bucket does not disturb the new one.
        timeline.lookup(t0, true);
        assert_eq!(timeline.read(wrapped)[BUCKETS - 1].hits, 0);
    }
}
