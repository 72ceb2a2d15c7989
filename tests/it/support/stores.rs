//! The store a core-suite test runs on: the same tests run on memory, Redis and tiered.
//!
//! A Redis-backed cache gets a private redis-server of its own, stopped when the test's
//! [`TestCache`] is dropped. Without redis-server, [`cache_with`] returns `None` (the test
//! returns early, saying why) unless QUERYCACHE_REQUIRE_SERVICES=1, where it panics.
//!
//! A test of what time does to entries (TTLs, stale windows, fail-safe) lets it pass with
//! [`TestCache::pass`]: a memory cache made by [`clocked`] has a manual clock, advanced at
//! once; Redis judges its TTLs by its own clock, so a Redis-backed cache waits.

use std::ops::Deref;
use std::time::Duration;

use querycache::testing::ManualClock;
use querycache::{Cache, config::CacheBuilder};

use super::redis::RedisServer;

/// Which store a suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    Redis,
    Tiered,
}

/// A cache and, for the Redis-backed stores, the private server behind it.
pub struct TestCache {
    pub cache: Cache,
    pub server: Option<RedisServer>,
    /// The memory cache's manual clock ([`clocked`]).
    pub clock: Option<ManualClock>,
}

impl TestCache {
    /// Lets `by` of the cache's time pass: a manual clock is advanced (no wait); otherwise
    /// (Redis judges TTLs by its own clock) the test waits that long.
    pub async fn pass(&self, by: Duration) {
        match &self.clock {
            Some(clock) => clock.advance(by),
            None => tokio::time::sleep(by).await,
        }
    }
}

impl Deref for TestCache {
    type Target = Cache;
    fn deref(&self) -> &Cache {
        &self.cache
    }
}

/// A cache on `kind`, configured by `f`.
pub fn cache_with(kind: Kind, f: impl FnOnce(CacheBuilder) -> CacheBuilder) -> Option<TestCache> {
    let (builder, server) = match kind {
        Kind::Memory => (Cache::builder(), None),
        Kind::Redis | Kind::Tiered => {
            let server = RedisServer::start()?;
            let store = if kind == Kind::Redis {
                querycache::config::StoreKind::Redis
            } else {
                querycache::config::StoreKind::Tiered
            };
            let builder = Cache::builder()
                .redis_url(server.url())
                .store(store)
                // Generous: the suite runs many tests in parallel on two cores.
                .redis_timeout(Duration::from_millis(2000));
            (builder, Some(server))
        }
    };
    let cache = f(builder).build().expect("valid test configuration");
    Some(TestCache {
        cache,
        server,
        clock: None,
    })
}

/// A cache on `kind`, configured by `f`, ready: a tiered cache has subscribed to its
/// invalidation channel (until then it bypasses its memory tier, and drops it once
/// subscribed: a test that looks at the memory tier must not start before).
pub async fn ready(kind: Kind, f: impl FnOnce(CacheBuilder) -> CacheBuilder) -> Option<TestCache> {
    let cache = cache_with(kind, f)?;
    if kind == Kind::Tiered && cache.config().enabled() {
        super::subscribed(&cache).await;
    }
    Some(cache)
}

/// A cache on `kind`, configured by `f`, ready (see [`ready`]), whose time the test moves
/// with [`TestCache::pass`]: on the memory store, a [`ManualClock`] that stands still until
/// then.
pub async fn clocked(
    kind: Kind,
    f: impl FnOnce(CacheBuilder) -> CacheBuilder,
) -> Option<TestCache> {
    if kind != Kind::Memory {
        return ready(kind, f).await;
    }
    let clock = ManualClock::new();
    let mut cache = ready(kind, |b| f(b).clock(clock.clone())).await?;
    cache.clock = Some(clock);
    Some(cache)
}

/// A second cache on the same store as `first` (another app instance): memory stores
/// share nothing, Redis-backed ones share the server.
pub fn another_instance(kind: Kind, first: &TestCache) -> Cache {
    another_instance_with(kind, first, |b| b)
}

/// [`another_instance`], its builder first passed through `f` (as [`cache_with`]'s).
pub fn another_instance_with(
    kind: Kind,
    first: &TestCache,
    f: impl FnOnce(CacheBuilder) -> CacheBuilder,
) -> Cache {
    let builder = match (&first.server, kind) {
        (Some(server), Kind::Redis | Kind::Tiered) => Cache::builder()
            .redis_url(server.url())
            .store(if kind == Kind::Redis {
                querycache::config::StoreKind::Redis
            } else {
                querycache::config::StoreKind::Tiered
            })
            .redis_timeout(Duration::from_millis(2000)),
        _ => Cache::builder(),
    };
    f(builder).build().expect("valid test configuration")
}
