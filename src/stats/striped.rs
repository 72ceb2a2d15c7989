//! Lookup counters that a hit can bump without writing a cache line another thread
//! writes, and without a locked instruction: one set of counters per
//! [stripe](crate::stripes), each stripe on lines of its own, the figures being the sums,
//! taken when read. A thread that owns its stripe bumps with a plain load and store; the
//! threads that share the last one, with `fetch_add`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::LookupOutcome;
#[cfg(test)]
use crate::stripes::stripe;
use crate::stripes::{STRIPES, bump};

/// One stripe's counters, alone on its cache lines (128 bytes: adjacent-line prefetching
/// pairs lines on x86).
#[derive(Default)]
#[repr(align(128))]
struct Stripe {
    memory_hits: AtomicU64,
    redis_hits: AtomicU64,
    misses: AtomicU64,
}

/// Hits per tier and misses, striped. See the module docs.
pub(crate) struct LookupCounters {
    stripes: Box<[Stripe]>,
}

/// The sums of [`LookupCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Lookups {
    pub(crate) memory_hits: u64,
    pub(crate) redis_hits: u64,
    pub(crate) misses: u64,
}

impl Lookups {
    /// Adds `other`'s counts to these.
    pub(crate) fn add(&mut self, other: Lookups) {
        self.memory_hits += other.memory_hits;
        self.redis_hits += other.redis_hits;
        self.misses += other.misses;
    }

    /// Every lookup counted.
    pub(crate) fn total(&self) -> u64 {
        self.memory_hits + self.redis_hits + self.misses
    }
}

impl Default for LookupCounters {
    fn default() -> Self {
        LookupCounters {
            stripes: (0..STRIPES).map(|_| Stripe::default()).collect(),
        }
    }
}

impl LookupCounters {
    /// Counts one lookup that found `outcome`.
    #[cfg(test)]
    pub(crate) fn count(&self, outcome: LookupOutcome) {
        self.count_in(outcome, stripe());
    }

    /// [`count`](Self::count) in the calling thread's `stripe`, already looked up.
    #[inline]
    pub(crate) fn count_in(&self, outcome: LookupOutcome, (index, owned): (usize, bool)) {
        let Some(stripe) = self.stripes.get(index) else {
            return;
        };
        let counter = match outcome {
            LookupOutcome::Hit("redis") => &stripe.redis_hits,
            LookupOutcome::Hit(_) => &stripe.memory_hits,
            LookupOutcome::Miss => &stripe.misses,
        };
        bump(counter, owned);
    }

    /// The sums over the stripes.
    pub(crate) fn read(&self) -> Lookups {
        self.stripes
            .iter()
            .fold(Lookups::default(), |sum, stripe| Lookups {
                memory_hits: sum.memory_hits + stripe.memory_hits.load(Relaxed),
                redis_hits: sum.redis_hits + stripe.redis_hits.load(Relaxed),
                misses: sum.misses + stripe.misses.load(Relaxed),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_many_threads_add_up() {
        let counters = LookupCounters::default();
        std::thread::scope(|scope| {
            for _ in 0..40 {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        counters.count(LookupOutcome::Hit("memory"));
                    }
                    counters.count(LookupOutcome::Hit("redis"));
                    counters.count(LookupOutcome::Miss);
                });
            }
        });
        let sums = counters.read();
        assert_eq!(
            sums,
            Lookups {
                memory_hits: 40_000,
                redis_hits: 40,
                misses: 40
            }
        );
        assert_eq!(sums.total(), 40_080);
    }
}
