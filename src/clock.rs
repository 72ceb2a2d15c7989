//! The memory store's clock: monotonic nanoseconds since a point fixed when the process
//! first asks, as a `u64` (8 bytes per timestamp where an `Instant` takes 16; 584 years of
//! range). And the wall clock, [`now_ms`], for times other processes read (an entry's
//! creation in its Redis header, a warm-up run's start and end).
//!
//! A cache reads the monotonic clock through its [`Clock`]: with the `test-util` feature a
//! test can give a cache a [`ManualClock`](crate::testing::ManualClock) instead, which
//! stands still until advanced. Without the feature a `Clock` is empty and reads [`now`].
//!
//! On Linux it reads `CLOCK_MONOTONIC_COARSE`, the monotonic clock as of the kernel's last
//! tick: a few nanoseconds to read where the precise clock can take tens (75 ns on the
//! virtual machines this crate is benchmarked on), at the price of a resolution of one tick
//! (`clock_getres`: 1 to 4 ms). Entry lifetimes are seconds to hours; a hit reads this
//! clock once. Elsewhere it reads `Instant`.

use std::sync::LazyLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The origin: an `Instant` and the raw clock's reading taken together.
struct Base {
    instant: Instant,
    raw: u64,
}

static BASE: LazyLock<Base> = LazyLock::new(|| Base {
    instant: Instant::now(),
    raw: raw(),
});

/// The raw clock, in nanoseconds.
#[cfg(target_os = "linux")]
#[inline]
fn raw() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec`, and CLOCK_MONOTONIC_COARSE exists on
    // every Linux since 2.6.32. On failure `ts` stays zero: time stands still rather than
    // jumping, and `Base` falls back to nothing worse than that.
    let _ = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    // The monotonic clock counts up from boot: never negative, and its nanoseconds fit a
    // `u64` for 584 years.
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

#[cfg(not(target_os = "linux"))]
fn raw() -> u64 {
    static ORIGIN: LazyLock<Instant> = LazyLock::new(Instant::now);
    nanos(ORIGIN.elapsed())
}

/// Now, in nanoseconds since the base.
#[inline]
pub(crate) fn now() -> u64 {
    raw().saturating_sub(BASE.raw)
}

/// The reading of [`now`] at `at` (0 before the base).
pub(crate) fn of_instant(at: Instant) -> u64 {
    nanos(at.saturating_duration_since(BASE.instant))
}

/// The memory-tier clock of one cache: what its memory store stamps entries with and judges
/// their TTL, grace (stale-while-revalidate, fail-safe) and early refresh against, and what
/// times its fail-safe throttle. [`now`] unless a test installed a
/// [`ManualClock`](crate::testing::ManualClock) (feature `test-util`); without the feature it
/// is empty, and reading it is reading [`now`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Clock {
    #[cfg(feature = "test-util")]
    manual: Option<crate::testing::ManualClock>,
}

impl Clock {
    /// A clock that reads `manual`.
    #[cfg(feature = "test-util")]
    pub(crate) fn manual(manual: crate::testing::ManualClock) -> Self {
        Clock {
            manual: Some(manual),
        }
    }

    /// Now, in nanoseconds (see [`now`]).
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        #[cfg(feature = "test-util")]
        if let Some(manual) = &self.manual {
            return manual.now();
        }
        now()
    }

    /// A reading `at` of this clock as a reading of [`now`]: itself; under a manual clock,
    /// whose readings are not the monotonic clock's, [`now`].
    #[inline]
    pub(crate) fn monotonic(&self, at: u64) -> u64 {
        #[cfg(feature = "test-util")]
        if self.manual.is_some() {
            return now();
        }
        at
    }
}

/// `duration` in nanoseconds, saturating.
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The time `duration` after `at`, saturating.
pub(crate) fn after(at: u64, duration: Duration) -> u64 {
    at.saturating_add(nanos(duration))
}

/// The wall clock: milliseconds since the Unix epoch (0 before it, saturating far after).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_forward_with_the_precise_clock_within_a_tick() {
        let started = Instant::now();
        let first = now();
        std::thread::sleep(Duration::from_millis(30));
        let later = now();
        let elapsed = nanos(started.elapsed());
        assert!(later > first, "{later} after {first}");
        // The coarse clock lags by at most a tick (4 ms at HZ=250; 10 ms allows for more).
        assert!(
            later - first + 10_000_000 >= 30_000_000,
            "{}",
            later - first
        );
        assert!(later - first <= elapsed + 10_000_000);
        // The same scale as `Instant`'s, within a tick.
        let mapped = of_instant(Instant::now());
        assert!(mapped + 10_000_000 >= later, "{mapped} against {later}");
        assert!(later <= mapped + 10_000_000 && mapped <= later + 10_000_000);
    }

    #[test]
    fn saturates() {
        assert_eq!(after(u64::MAX - 1, Duration::from_secs(1)), u64::MAX);
        assert_eq!(after(5, Duration::from_nanos(7)), 12);
        assert_eq!(nanos(Duration::MAX), u64::MAX);
    }
}
