//! Support for testing code that uses a cache (feature `test-util`): a [`ManualClock`], so
//! that a test of what happens when an entry expires, goes stale or is served by fail-safe
//! moves the cache's time forward instead of sleeping through it.
//!
//! Enable the feature for tests only, as a dev-dependency:
//!
//! ```toml
//! [dev-dependencies]
//! querycache = { version = "0.1", features = ["test-util"] }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A clock that stands still until a test advances it, for one cache's memory tier (moka's
/// mock clock and tokio's `test-util` do the same for theirs). Give it to a cache with
/// [`CacheBuilder::clock`](crate::config::CacheBuilder::clock); each cache has its own
/// clock, so tests running in parallel in one process do not move each other's time.
/// Clones share one time: keep a clone to advance it.
///
/// It moves what the cache judges by its own clock on the memory tier (the memory store,
/// and the tiered store's memory tier): when an entry stops being fresh (its TTL), how long
/// it may then be served stale (stale-while-revalidate, fail-safe), the window of early
/// refresh, the age of a hit, and the fail-safe throttle (how often a failing key is tried
/// again). It does not move real time: timeouts (soft and hard timeouts, Redis commands,
/// leases) are tokio timers, a computation's duration (early refresh's `delta`) is measured
/// as it runs, and Redis expires what it keeps by its own clock.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use querycache::testing::ManualClock;
/// use querycache::{Cache, EntryOptions};
///
/// let clock = ManualClock::new();
/// let cache = Cache::builder().clock(clock.clone()).build().unwrap();
/// let options = EntryOptions::new().ttl(Duration::from_secs(60));
/// cache.set("greeting", "hello".to_owned(), options).await.unwrap();
///
/// clock.advance(Duration::from_secs(59));
/// assert!(cache.get::<String>("greeting").await.is_some(), "still fresh");
/// clock.advance(Duration::from_secs(1));
/// assert!(cache.get::<String>("greeting").await.is_none(), "expired, with no wait");
/// assert_eq!(clock.elapsed(), Duration::from_secs(60));
/// # }
/// ```
#[derive(Clone, Default)]
pub struct ManualClock {
    /// Nanoseconds since the clock was made.
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at its origin, standing still.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by` (saturating, far beyond any TTL), for every cache
    /// that reads it.
    pub fn advance(&self, by: Duration) {
        let by = crate::clock::nanos(by);
        // `fetch_update` with a closure that always returns `Some` cannot fail.
        let _ = self
            .now
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                Some(now.saturating_add(by))
            });
    }

    /// How far the clock has been advanced since it was made.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.now())
    }

    /// The reading, in nanoseconds since the clock was made (see [`crate::clock`]).
    pub(crate) fn now(&self) -> u64 {
        self.now.load(Ordering::Acquire)
    }
}

impl std::fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManualClock")
            .field("elapsed", &self.elapsed())
            .finish()
    }
}
