//! The most accessed keys, in bounded memory: a Space-Saving sketch (Metwally, Agrawal and
//! El Abbadi, 2005) fed by a sample of the lookups.
//!
//! **Bounded.** The sketch monitors at most [`CAPACITY`] keys. A lookup of a key it does
//! not monitor, when full, takes over the counter with the smallest count and inherits that
//! count (Space-Saving's over-estimate): every key accessed more than `1/CAPACITY` of the
//! time is guaranteed to be monitored, and the counts rank keys correctly up to that error.
//! Hits and misses are counted from the moment a key took its counter.
//!
//! **Cheap on the hit path.** A lookup costs one thread-local decrement. Every
//! [`SAMPLE_EVERY`]-th lookup on average (the gap between two samples is drawn at random,
//! so lookups made in a fixed order are not always sampled at the same position) is counted
//! in a sketch, and the counts reported are scaled back up by `SAMPLE_EVERY`.
//!
//! **Nothing shared written.** There is one sketch per [stripe](crate::stripes): a thread
//! counts its samples in its own, so two threads sampling at once do not pass the sketch's
//! lines (a sample touches several) between their cores. A sample takes its sketch's lock
//! with `try_lock` (a contended sample, possible only on the stripe threads share, is
//! dropped rather than waited for). The top keys are the sketches merged: a key's counts
//! summed over the sketches that monitor it. A key read more than `1/CAPACITY` of the time
//! is more than that in some thread's share of the reads, so it is still monitored.
//!
//! No crate was used: the sketches on crates.io count one number per item, and this one
//! needs hits and misses per key.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::key::HitKey;
use crate::stripes::{STRIPES, stripe};

/// Keys monitored at most.
pub(crate) const CAPACITY: usize = 256;
/// One lookup in this many (on average) is recorded.
pub(crate) const SAMPLE_EVERY: u32 = 16;

thread_local! {
    /// Lookups left on this thread before the next sample.
    static COUNTDOWN: Cell<u32> = const { Cell::new(1) };
}

/// Passes a key id's low bits through: ids are seeded hashes already.
#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u128` is used; fold anything else in rather than drop it.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u128(&mut self, value: u128) {
        self.0 = value as u64;
    }
}

/// Whether this lookup is sampled: a countdown, and when it runs out, the next stride.
#[inline]
fn sampled() -> bool {
    COUNTDOWN.with(|left| {
        let n = left.get();
        if n > 1 {
            left.set(n - 1);
            return false;
        }
        left.set(next_stride());
        true
    })
}

/// The lookups until the next sample: uniform in 1..2N (mean N), so that lookups made in a
/// fixed order are not always sampled at the same position. Drawn from a per-thread
/// xorshift (no cryptographic quality needed, nor the cost of a `ThreadRng`).
#[cold]
fn next_stride() -> u32 {
    thread_local! {
        static STATE: Cell<u64> = const { Cell::new(0) };
    }
    STATE.with(|state| {
        let mut x = state.get();
        if x == 0 {
            // Seeded once per thread; xorshift never reaches 0 from a nonzero state.
            x = rand::random::<u64>() | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        1 + (x % u64::from(2 * SAMPLE_EVERY - 1)) as u32
    })
}

struct Counter {
    /// The key's [`key_id`](crate::key::key_id): what the index files it under.
    id: u128,
    key: KeyText,
    namespace: Box<str>,
    hits: u64,
    misses: u64,
}

/// A monitored key's text, or what it is written from: a default key's path and hash are
/// kept as they are (a `&'static` path is not even copied), and written out only when the
/// top keys are read. With many keys read evenly, most samples take over a counter.
enum KeyText {
    Text(Arc<str>),
    Args(Cow<'static, str>, u128),
}

impl KeyText {
    fn of(key: HitKey<'_>) -> KeyText {
        match key {
            HitKey::Text(text) => KeyText::Text(Arc::from(text)),
            HitKey::Args { path, hash, .. } => KeyText::Args(path(), hash),
        }
    }

    fn text(&self) -> String {
        match self {
            KeyText::Text(text) => text.to_string(),
            KeyText::Args(path, hash) => crate::key::with_args_key(path, *hash, str::to_owned),
        }
    }
}

/// One key as reported: counts already scaled up by the sampling rate.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KeyCounts {
    pub(crate) key: String,
    pub(crate) namespace: String,
    pub(crate) estimated_accesses: u64,
    pub(crate) hits: u64,
    pub(crate) misses: u64,
}

/// The Space-Saving table. See the module docs.
#[derive(Default)]
struct SpaceSaving {
    /// Counters by key id: a sample reads no key text (a default key's is not even
    /// written unless the key gets a counter).
    index: HashMap<u128, usize, BuildHasherDefault<IdHasher>>,
    counters: Vec<Counter>,
    /// Samples counted for each counter, including the count inherited on takeover; apart
    /// from the rest so that finding the minimum scans 2 KiB.
    counts: Vec<u64>,
    /// At most the smallest count (counts only grow), and where the last takeover found
    /// a counter at it: the next takeover looks on from there, and scans the whole list
    /// for the new minimum only once no counter past it is at `floor` any more — once per
    /// [`CAPACITY`] takeovers when many keys are read evenly, instead of every time.
    floor: u64,
    cursor: usize,
}

impl SpaceSaving {
    fn observe(&mut self, key: HitKey<'_>, id: u128, namespace: &str, hit: bool) {
        let at = match self.index.get(&id) {
            Some(&at) => at,
            None if self.counters.len() < CAPACITY => {
                self.index.insert(id, self.counters.len());
                self.counters.push(Counter {
                    id,
                    key: KeyText::of(key),
                    namespace: namespace.into(),
                    hits: 0,
                    misses: 0,
                });
                self.counts.push(0);
                self.counters.len() - 1
            }
            None => {
                let Some(at) = self.smallest() else {
                    return;
                };
                let Some(counter) = self.counters.get_mut(at) else {
                    return;
                };
                self.index.remove(&counter.id);
                self.index.insert(id, at);
                counter.id = id;
                counter.key = KeyText::of(key);
                if *counter.namespace != *namespace {
                    counter.namespace = namespace.into();
                }
                counter.hits = 0;
                counter.misses = 0;
                at
            }
        };
        self.counts[at] += 1;
        let counter = &mut self.counters[at];
        if hit {
            counter.hits += 1;
        } else {
            counter.misses += 1;
        }
    }

    /// A counter with the smallest count (see [`floor`](Self::floor)).
    fn smallest(&mut self) -> Option<usize> {
        loop {
            let rest = self.counts.get(self.cursor..).unwrap_or_default();
            if let Some(offset) = rest.iter().position(|&count| count == self.floor) {
                let at = self.cursor + offset;
                self.cursor = at + 1;
                return Some(at);
            }
            // None left at `floor` past the cursor: look for the smallest count again.
            let min = *self.counts.iter().min()?;
            self.floor = min;
            self.cursor = 0;
        }
    }

    /// Adds this sketch's counters to `merged` (by key id).
    fn merge_into(&self, merged: &mut HashMap<u128, Merged>) {
        for (counter, &count) in self.counters.iter().zip(self.counts.iter()) {
            let entry = merged.entry(counter.id).or_insert_with(|| Merged {
                key: counter.key.text(),
                namespace: counter.namespace.to_string(),
                count: 0,
                hits: 0,
                misses: 0,
            });
            entry.count += count;
            entry.hits += counter.hits;
            entry.misses += counter.misses;
        }
    }

    #[cfg(test)]
    fn top(&self, n: usize, scale: u64) -> Vec<KeyCounts> {
        let mut merged = HashMap::new();
        self.merge_into(&mut merged);
        ranked(merged, n, scale)
    }
}

/// One key's counts summed over the sketches.
struct Merged {
    key: String,
    namespace: String,
    count: u64,
    hits: u64,
    misses: u64,
}

/// The `n` keys of `merged` with the most samples, counts scaled by `scale`; ties in key
/// order.
fn ranked(merged: HashMap<u128, Merged>, n: usize, scale: u64) -> Vec<KeyCounts> {
    let mut ranked: Vec<Merged> = merged.into_values().collect();
    ranked.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    ranked
        .into_iter()
        .take(n)
        .map(|m| KeyCounts {
            key: m.key,
            namespace: m.namespace,
            estimated_accesses: m.count * scale,
            hits: m.hits * scale,
            misses: m.misses * scale,
        })
        .collect()
}

/// A stripe's sketch, on lines of its own (128 bytes: adjacent-line prefetching pairs
/// lines on x86).
#[derive(Default)]
#[repr(align(128))]
struct Sketch(Mutex<SpaceSaving>);

/// The sampled sketches of a cache, one per stripe. See the module docs.
pub(crate) struct TopKeys {
    sketches: Box<[Sketch; STRIPES]>,
}

impl TopKeys {
    pub(crate) fn new() -> Self {
        TopKeys {
            sketches: Box::new(std::array::from_fn(|_| Sketch::default())),
        }
    }

    /// A lookup of `key` (sampled: most calls return at once).
    #[inline]
    pub(crate) fn record(&self, key: HitKey<'_>, namespace: &str, hit: bool) {
        if sampled() {
            self.observe(key, namespace, hit);
        }
    }

    /// A sampled lookup, counted in this thread's sketch unless another thread is
    /// counting one there.
    #[cold]
    fn observe(&self, key: HitKey<'_>, namespace: &str, hit: bool) {
        let (stripe, _) = stripe();
        if let Some(mut sketch) = self.sketches[stripe % STRIPES].0.try_lock() {
            sketch.observe(key, key.id(), namespace, hit);
        }
    }

    /// The `n` most accessed keys, most accessed first.
    pub(crate) fn top(&self, n: usize) -> Vec<KeyCounts> {
        let mut merged = HashMap::new();
        for sketch in self.sketches.iter() {
            sketch.0.lock().merge_into(&mut merged);
        }
        ranked(merged, n, u64::from(SAMPLE_EVERY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_keys_and_splits_hits_from_misses() {
        let mut s = SpaceSaving::default();
        for _ in 0..5 {
            s.observe(HitKey::Text("a"), crate::key::key_id("a"), "ns", true);
        }
        s.observe(HitKey::Text("a"), crate::key::key_id("a"), "ns", false);
        for _ in 0..3 {
            s.observe(HitKey::Text("b"), crate::key::key_id("b"), "other", true);
        }
        s.observe(HitKey::Text("c"), crate::key::key_id("c"), "ns", false);
        let top = s.top(2, 1);
        assert_eq!(top.len(), 2);
        assert_eq!(
            top[0],
            KeyCounts {
                key: "a".into(),
                namespace: "ns".into(),
                estimated_accesses: 6,
                hits: 5,
                misses: 1
            }
        );
        assert_eq!((top[1].key.as_str(), top[1].hits), ("b", 3));
        assert_eq!(s.top(10, 16)[0].hits, 80, "scaled by the sampling rate");
    }

    #[test]
    fn memory_stays_bounded_and_heavy_hitters_survive() {
        let mut s = SpaceSaving::default();
        for i in 0..20_000 {
            s.observe(
                HitKey::Text(&format!("cold:{i}")),
                crate::key::key_id(&format!("cold:{i}")),
                "ns",
                false,
            );
            if i % 4 == 0 {
                s.observe(HitKey::Text("hot"), crate::key::key_id("hot"), "ns", true);
            }
        }
        assert_eq!(s.counters.len(), CAPACITY);
        assert_eq!(s.index.len(), CAPACITY);
        let top = s.top(1, 1);
        assert_eq!(top[0].key, "hot");
        assert_eq!(top[0].hits, 5_000, "monitored from its first access");
    }

    #[test]
    fn about_one_lookup_in_sample_every_is_recorded() {
        let keys = TopKeys::new();
        let n = 32_000;
        for _ in 0..n {
            keys.record(HitKey::Text("k"), "ns", true);
        }
        let recorded = keys.top(1)[0].hits;
        let expected = n as u64;
        assert!(
            recorded > expected * 8 / 10 && recorded < expected * 12 / 10,
            "{recorded} recorded for {expected} lookups"
        );
    }

    #[test]
    fn the_top_sums_a_key_over_the_sketches_that_monitor_it() {
        let (mut a, mut b) = (SpaceSaving::default(), SpaceSaving::default());
        let id = |key: &str| crate::key::key_id(key);
        for _ in 0..3 {
            a.observe(HitKey::Text("k"), id("k"), "ns", true);
            b.observe(HitKey::Text("k"), id("k"), "ns", false);
        }
        for _ in 0..5 {
            b.observe(HitKey::Text("only-b"), id("only-b"), "ns", true);
        }
        let mut merged = HashMap::new();
        a.merge_into(&mut merged);
        b.merge_into(&mut merged);
        let top = ranked(merged, 2, 1);
        assert_eq!(
            (top[0].key.as_str(), top[0].hits, top[0].misses),
            ("k", 3, 3)
        );
        assert_eq!(
            (top[1].key.as_str(), top[1].estimated_accesses),
            ("only-b", 5)
        );
    }

    #[test]
    fn threads_count_in_their_own_sketches_and_the_top_sums_them() {
        let keys = TopKeys::new();
        let n = 16_000;
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    for i in 0..n {
                        keys.record(HitKey::Text("shared"), "ns", true);
                        keys.record(HitKey::Text(&format!("own:{i}")), "ns", false);
                    }
                });
            }
        });
        let top = keys.top(1);
        let expected = 2 * n as u64;
        assert_eq!(top[0].key, "shared");
        assert!(
            top[0].hits > expected * 8 / 10 && top[0].hits < expected * 12 / 10,
            "{} recorded for {expected} lookups over two threads",
            top[0].hits
        );
        assert_eq!(top[0].misses, 0);
    }

    #[test]
    fn a_takeover_always_finds_a_smallest_count() {
        let mut s = SpaceSaving::default();
        let mut state = 7_u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 33
        };
        for n in 0..20_000_u64 {
            // Mostly new keys (takeovers), some repeats of a few hot ones.
            let key = if next() % 4 == 0 {
                format!("hot:{}", next() % 8)
            } else {
                format!("k:{n}")
            };
            if s.counters.len() == CAPACITY && !s.index.contains_key(&crate::key::key_id(&key)) {
                let min = *s.counts.iter().min().unwrap();
                let at = s.smallest().unwrap();
                assert_eq!(s.counts[at], min, "takeover {n}");
                // Undo the cursor step: `observe` takes its own.
                s.cursor = at;
            }
            s.observe(HitKey::Text(&key), crate::key::key_id(&key), "ns", true);
        }
    }
}
