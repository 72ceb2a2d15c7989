//! [`CacheBuilder`]: a configuration built in code, each setter recording what is wrong with
//! its value, and `build` checking the whole and returning what the builder was asked for —
//! a [`Cache`] from [`Cache::builder`], a [`CacheConfig`] from [`CacheConfig::builder`].

use std::marker::PhantomData;
use std::time::Duration;

use super::{Audit, CacheConfig, InvalidationStrategy, KeySecret, StoreKind, dependencies};
use crate::feed::ChangeFeed;
use crate::{Cache, Error};

/// Builder of a [`Cache`] (from [`Cache::builder`]) or of a [`CacheConfig`] (from
/// [`CacheConfig::builder`], as [`CacheConfigBuilder`]): the same setters, and a `build` that
/// validates the whole and returns the one it was asked for.
///
/// ```
/// use std::time::Duration;
/// use querycache::{Cache, CacheConfig};
///
/// let cache = Cache::builder().default_ttl(Duration::from_secs(300)).build().unwrap();
/// assert_eq!(cache.config().default_ttl(), Duration::from_secs(300));
///
/// let err = CacheConfig::builder()
///     .default_ttl(Duration::from_secs(7200))
///     .max_ttl(Duration::from_secs(3600))
///     .build()
///     .unwrap_err();
/// assert!(err.to_string().contains("CACHE_DEFAULT_TTL"));
/// ```
#[must_use]
pub struct CacheBuilder<C = Cache> {
    pub(super) config: CacheConfig,
    pub(super) errors: Vec<Error>,
    /// The `CACHE_CHANGE_FEED*` variables (and `DATABASE_URL`) met by
    /// [`CacheConfig::from_vars`], read as one [`ChangeFeed`] when the builder is built.
    pub(super) feed_vars: Vec<(String, String)>,
    target: PhantomData<fn() -> C>,
}

/// The builder [`CacheConfig::builder`] returns: its `build` returns the [`CacheConfig`]
/// (to hand to [`Cache::with_config`] later, or to inspect).
///
/// ```
/// use querycache::{CacheConfig, config::CacheConfigBuilder};
///
/// let builder: CacheConfigBuilder = CacheConfig::builder().jitter_percent(10);
/// assert_eq!(builder.build().unwrap().jitter_percent(), 10);
/// ```
pub type CacheConfigBuilder = CacheBuilder<CacheConfig>;

impl<C> std::fmt::Debug for CacheBuilder<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("config", &self.config)
            .field("errors", &self.errors)
            .finish()
    }
}

impl<C> CacheBuilder<C> {
    /// A builder starting from `config`.
    pub(crate) fn from_config(config: CacheConfig) -> Self {
        Self {
            config,
            errors: Vec::new(),
            feed_vars: Vec::new(),
            target: PhantomData,
        }
    }

    /// Turns caching on or off (`CACHE_ENABLED`).
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.config.enabled = enabled;
        self
    }
    /// Sets the default TTL (`CACHE_DEFAULT_TTL`); must be at least one second.
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.config.default_ttl = ttl;
        self
    }
    /// Sets the maximum TTL (`CACHE_MAX_TTL`); longer TTLs are clamped to it.
    pub fn max_ttl(mut self, ttl: Duration) -> Self {
        self.config.max_ttl = ttl;
        self
    }
    /// Sets the maximum TTL in seconds (`CACHE_MAX_TTL`).
    pub fn max_ttl_secs(self, secs: u64) -> Self {
        self.max_ttl(Duration::from_secs(secs))
    }
    /// Sets the default TTL jitter, in percent of the TTL (`CACHE_JITTER_PERCENT`, 0 to 100).
    pub fn jitter_percent(mut self, percent: u8) -> Self {
        self.config.jitter_percent = percent;
        self
    }

    /// Sets the default TTL of count queries (`CACHE_COUNT_TTL`).
    pub fn count_ttl(mut self, ttl: Duration) -> Self {
        self.config.count_ttl = ttl;
        self
    }
    /// Sets the TTL of cached errors (`CACHE_ERROR_TTL`).
    pub fn error_ttl(mut self, ttl: Duration) -> Self {
        self.config.error_ttl = ttl;
        self
    }
    /// Sets the longest TTL of an absent value (`CACHE_NEGATIVE_TTL`): a value that
    /// serializes to `null` (`Option::None`: the row was not found) is kept at most this
    /// long, whatever its query's TTL, so that a client asking for ids that do not exist
    /// cannot fill the store for long.
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = querycache::CacheConfig::builder().negative_ttl(Duration::from_secs(10)).build().unwrap();
    /// assert_eq!(config.negative_ttl(), Duration::from_secs(10));
    /// ```
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.config.negative_ttl = ttl;
        self
    }
    /// Sets the TTL policy of a namespace (`CACHE_TTL_<NAMESPACE>`).
    pub fn namespace_ttl(mut self, namespace: impl Into<String>, ttl: Duration) -> Self {
        let namespace = namespace.into();
        if let Err(err) = crate::key::validate_name("namespace", &namespace, 256) {
            self.errors.push(err);
        }
        self.config.namespace_ttls.insert(namespace, ttl);
        self
    }
    /// Sets the stale-while-revalidate window of a namespace (`CACHE_SWR_<NAMESPACE>`):
    /// entries of the namespace without an `swr` of their own get it.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let config = querycache::CacheConfig::builder()
    ///     .namespace_swr("songs", Duration::from_secs(30))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.swr_for_namespace("songs"), Some(Duration::from_secs(30)));
    /// ```
    pub fn namespace_swr(mut self, namespace: impl Into<String>, window: Duration) -> Self {
        let namespace = namespace.into();
        if let Err(err) = crate::key::validate_name("namespace", &namespace, 256) {
            self.errors.push(err);
        }
        self.config.namespace_swr.insert(namespace, window);
        self
    }
    /// Sets how long a computation lease lasts in Redis (`CACHE_LEASE_TTL_MS`); zero turns
    /// leases off (each instance then computes a missing key itself).
    ///
    /// ```
    /// let config = querycache::CacheConfig::builder()
    ///     .lease_ttl(std::time::Duration::from_secs(2))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.lease_ttl().as_secs(), 2);
    /// ```
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.config.lease_ttl = ttl;
        self
    }
    /// Sets the memory store's byte budget (`CACHE_MEMORY_MAX_BYTES`); at least 64 KiB.
    pub fn memory_max_bytes(mut self, bytes: u64) -> Self {
        self.config.memory_max_bytes = bytes;
        self
    }
    /// Sets what invalidates entries (`CACHE_INVALIDATION_STRATEGY`).
    pub fn invalidation_strategy(mut self, strategy: InvalidationStrategy) -> Self {
        self.config.strategy = strategy;
        self
    }
    /// Sets the audit of undeclared dependencies (`CACHE_AUDIT`, see [`Audit`]).
    ///
    /// ```
    /// use querycache::{Cache, config::Audit};
    ///
    /// let cache = Cache::builder().audit(Audit::Warn).build()?;
    /// # let _ = cache;
    /// # Ok::<(), querycache::Error>(())
    /// ```
    pub fn audit(mut self, audit: Audit) -> Self {
        self.config.audit = audit;
        self
    }
    /// Sets the key prefix of shared stores (`CACHE_KEY_PREFIX`).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.key_prefix = prefix.into();
        self
    }
    /// Sets the connect and command timeout of Redis (`CACHE_REDIS_TIMEOUT_MS`, default
    /// 100 ms): a cache that waits longer than that is slower than no cache.
    pub fn redis_timeout(mut self, timeout: Duration) -> Self {
        self.config.redis_timeout = timeout;
        self
    }

    /// Sets the Redis URL (`REDIS_URL`).
    pub fn redis_url(mut self, url: impl Into<String>) -> Self {
        self.config.redis_url = Some(url.into());
        self
    }
    /// Uses `client`, made by the application, for the Redis store instead of `REDIS_URL`
    /// (feature `redis`): its address, credentials, database, protocol and TLS settings
    /// (certificates included: `redis::Client::build_with_tls`) are the ones the store
    /// connects with, TCP keepalive added. Selects the tiered store, as `REDIS_URL` does
    /// (`store` chooses another). A single server only: not with `cluster_mode`, and not
    /// together with `REDIS_URL` ([`build`](CacheBuilder::build) fails naming both).
    ///
    /// Why a `Client` and not a `ConnectionManager`: the store makes its connections
    /// itself, from a client — one multiplexed connection per tokio runtime (a manager's
    /// driver task lives on the runtime that made it and dies with it), a dedicated
    /// connection subscribed to the invalidation channel (pub/sub takes a connection to
    /// itself; a manager made for commands cannot be turned into one), and on every
    /// connection it makes a check of the server's incarnation, so that a Redis that came
    /// back older does not serve old entries. A `ConnectionManager` already made gives none
    /// of these; pass the `redis::Client` it was made from instead (the two then share
    /// nothing but the settings).
    ///
    /// ```
    /// # #[cfg(feature = "redis")] {
    /// use querycache::{Cache, config::StoreKind};
    ///
    /// let client = redis::Client::open("redis://app:s3cret@127.0.0.1:6390/2").unwrap();
    /// let cache = Cache::builder().redis_client(client).build().unwrap();
    /// assert_eq!(cache.config().store_kind(), StoreKind::Tiered);
    /// assert!(!format!("{:?}", cache.config()).contains("s3cret"));
    ///
    /// let client = redis::Client::open("redis://127.0.0.1:6390").unwrap();
    /// let both = Cache::builder().redis_url("redis://127.0.0.1:6391").redis_client(client).build();
    /// assert!(both.unwrap_err().to_string().contains("REDIS_URL"));
    /// # }
    /// ```
    #[cfg(feature = "redis")]
    pub fn redis_client(mut self, client: redis::Client) -> Self {
        self.config.redis_client = Some(client);
        self
    }

    /// Turns payload compression on or off (`CACHE_COMPRESSION_ENABLED`).
    pub fn compression_enabled(mut self, on: bool) -> Self {
        self.config.compression_enabled = on;
        self
    }
    /// Sets the compression threshold in bytes (`CACHE_COMPRESSION_THRESHOLD`).
    pub fn compression_threshold(mut self, bytes: usize) -> Self {
        self.config.compression_threshold = bytes;
        self
    }
    /// Runs registered warmers at start-up (`CACHE_WARM_ON_STARTUP`).
    pub fn warm_on_startup(mut self, on: bool) -> Self {
        self.config.warm_on_startup = on;
        self
    }
    /// Treats `REDIS_URL` as a list of cluster nodes (`CACHE_CLUSTER_MODE`).
    pub fn cluster_mode(mut self, on: bool) -> Self {
        self.config.cluster_mode = on;
        self
    }
    /// Chooses the store (`CACHE_STORE`); `Redis` and `Tiered` need `REDIS_URL`.
    pub fn store(mut self, kind: StoreKind) -> Self {
        self.config.store = Some(kind);
        self
    }
    /// Sets how many consecutive Redis failures open the circuit breaker
    /// (`CACHE_BREAKER_THRESHOLD`, default 3; at least 1). A command timeout opens it at
    /// once whatever this says: a stalled Redis must not cost every caller a timeout.
    pub fn breaker_threshold(mut self, failures: u32) -> Self {
        self.config.breaker_threshold = failures;
        self
    }
    /// Sets how often an open breaker probes Redis in the background
    /// (`CACHE_BREAKER_COOLDOWN_MS`, default 500 ms). Callers never wait for a probe.
    pub fn breaker_cooldown(mut self, cooldown: Duration) -> Self {
        self.config.breaker_cooldown = cooldown;
        self
    }
    /// Sets how often the tiered store's invalidation-channel subscriber sends a `PING` on
    /// its own subscribed connection (`CACHE_CHANNEL_HEARTBEAT_MS`, default 1000 ms; between
    /// 10 ms and 60 s). When nothing comes back on that connection (no message, no reply)
    /// for three intervals, the flow is taken as dead — a NAT, load balancer or proxy can
    /// forget a connection without resetting it — and handled as a channel loss: counted in
    /// `invalidation_channel_losses`, the memory tier dropped and bypassed, the
    /// subscription made again.
    ///
    /// ```
    /// use std::time::Duration;
    /// use querycache::CacheConfig;
    ///
    /// let config = CacheConfig::builder()
    ///     .channel_heartbeat(Duration::from_millis(250))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.channel_heartbeat(), Duration::from_millis(250));
    /// assert!(CacheConfig::builder().channel_heartbeat(Duration::ZERO).build().is_err());
    /// ```
    pub fn channel_heartbeat(mut self, interval: Duration) -> Self {
        self.config.channel_heartbeat = interval;
        self
    }
    /// Bounds how stale another instance's write can leave this one while Redis is out
    /// (`CACHE_DEGRADED_MAX_AGE_MS`, default 3000 ms; at most one hour; 0 means go to the
    /// database).
    ///
    /// While the circuit breaker is open, instances cannot hear each other's invalidations,
    /// so process memory, the fallback, serves only entries whose data is younger than this
    /// (measured from the start of the computation that produced them); older ones are
    /// recomputed from the database, and the new value is served. A write made through
    /// another instance is therefore seen here at most this long after it returned,
    /// however long the outage lasts. This instance's own writes invalidate its memory at
    /// once, as always. With `Duration::ZERO`, memory serves and keeps nothing during an
    /// outage: every read goes to the database.
    ///
    /// The same figure caps how long a silent invalidation channel is trusted: the flow is
    /// taken as lost after three heartbeats (see [`channel_heartbeat`](Self::channel_heartbeat))
    /// or after this long, whichever comes first, but never before two heartbeats (a ping
    /// needs time for its reply).
    ///
    /// ```
    /// use std::time::Duration;
    /// use querycache::CacheConfig;
    ///
    /// let config = CacheConfig::builder()
    ///     .degraded_max_age(Duration::from_millis(500))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.degraded_max_age(), Duration::from_millis(500));
    /// assert_eq!(CacheConfig::builder().build().unwrap().degraded_max_age(), Duration::from_secs(3));
    /// assert!(CacheConfig::builder().degraded_max_age(Duration::from_secs(7200)).build().is_err());
    /// ```
    pub fn degraded_max_age(mut self, age: Duration) -> Self {
        self.config.degraded_max_age = age;
        self
    }

    /// How long a computation that reads a PostgreSQL replica waits for the replica to
    /// replay the primary's WAL position before answering uncached
    /// (`CACHE_REPLICA_WAIT_MS`, default 100 ms; at most one minute; 0 asks once and does
    /// not wait).
    ///
    /// Before each statement such a computation sends through a connection declared with
    /// [`CachedConnection::replica_of`](crate::orm::sea_orm::CachedConnection::replica_of),
    /// the primary's position is read, and the replica must have replayed that far for the
    /// value to be stored: a replica that lags would otherwise let pre-write rows be cached
    /// under post-write versions. Within this wait the statement waits for the replay; past
    /// it, the statement runs all the same and its computation's value goes to its caller
    /// only (counted as `replica_behind`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use querycache::CacheConfig;
    ///
    /// let config = CacheConfig::builder().replica_wait(Duration::from_millis(250)).build().unwrap();
    /// assert_eq!(config.replica_wait(), Duration::from_millis(250));
    /// assert_eq!(CacheConfig::builder().build().unwrap().replica_wait(), Duration::from_millis(100));
    /// assert!(CacheConfig::builder().replica_wait(Duration::from_secs(120)).build().is_err());
    /// ```
    pub fn replica_wait(mut self, wait: Duration) -> Self {
        self.config.replica_wait = wait;
        self
    }

    /// Sets the key secret (`CACHE_KEY_SECRET`; feature `axum`): the key of the HMAC-SHA256
    /// that hashes the `Authorization` header and the `Vary` values into the keys of cached
    /// HTTP answers (`querycache::http::CacheResponse`), so that a key — in the
    /// store, a log line or the admin analytics — cannot be used to test guesses of a
    /// password offline. Every instance sharing a Redis store needs the same secret, or
    /// they share no entry for requests carrying those headers.
    ///
    /// At least [`MIN_KEY_SECRET_LEN`](crate::config::MIN_KEY_SECRET_LEN) bytes (`openssl rand -hex 32` makes a good one);
    /// shorter, [`build`](Self::build) fails naming `CACHE_KEY_SECRET`. Unset, each process
    /// draws a random secret of its own. `Debug` never shows it.
    ///
    /// ```
    /// use querycache::CacheConfig;
    ///
    /// let config = CacheConfig::builder().key_secret("6f1c0b7e2d9a4c33a1f0e8d7").build().unwrap();
    /// assert!(config.has_key_secret());
    /// let err = CacheConfig::builder().key_secret("short").build().unwrap_err();
    /// assert!(err.to_string().contains("CACHE_KEY_SECRET"));
    /// assert!(!err.to_string().contains("short"), "the value is not shown");
    /// ```
    pub fn key_secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        match KeySecret::new(secret.as_ref()) {
            Ok(secret) => self.config.key_secret = Some(secret),
            Err(err) => self.errors.push(err),
        }
        self
    }

    /// Declares that every write to `table` also writes `tables`: writes the database makes
    /// on its own, which querycache cannot see in the statement's text — a trigger
    /// (`AFTER INSERT ON songs ... UPDATE song_counts`), a rule, an `ON DELETE CASCADE`, a
    /// write through an updatable view. Every write to `table` seen by an ORM integration then
    /// also invalidates `model:<t>` and `model:<t>#bulk` for each of `tables` (the rows
    /// written behind the statement's back are not known), and a transaction that wrote
    /// `table` bypasses the cache for reads of them too. Declarations add up, and are
    /// followed transitively (a trigger's write may fire another trigger).
    ///
    /// Tables are named as model tags name them: `songs`, or `app.songs` outside the
    /// default schema (`public.songs` is `songs`), in lower case (`Songs` is `songs`). The
    /// same can be set with
    /// `CACHE_TABLE_DEPENDENCIES="songs=song_counts,audit_log;users=user_stats"`.
    ///
    /// Views and cascading foreign keys need no declaration: the ORM integrations read them
    /// from the catalog. A table may write itself: a trigger that changes other rows of its
    /// own table, SQLite's `UNIQUE .. ON CONFLICT REPLACE`. Declared
    /// (`table_also_writes("songs", ["songs"])`, `songs=songs`), every write to it also
    /// bumps `model:songs#bulk`, so the by-id entries of rows the statement did not name are
    /// invalidated too.
    ///
    /// ```
    /// use querycache::CacheConfig;
    ///
    /// // AFTER UPDATE ON songs, a trigger renumbers the other songs of the album.
    /// let config = CacheConfig::from_vars([("CACHE_TABLE_DEPENDENCIES", "songs=songs")]).unwrap();
    /// assert_eq!(config.tables_also_written("songs"), ["songs"]);
    /// ```
    ///
    /// ```
    /// use querycache::{Cache, CacheConfig};
    ///
    /// // AFTER INSERT OR DELETE ON songs, a trigger updates song_counts; one on
    /// // app.users writes app.audit_log.
    /// let cache = Cache::builder()
    ///     .table_also_writes("songs", ["song_counts"])
    ///     .table_also_writes("app.users", ["app.audit_log"])
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(cache.config().tables_also_written("songs"), ["song_counts"]);
    /// assert_eq!(cache.config().tables_also_written("app.users"), ["app.audit_log"]);
    ///
    /// let bad = CacheConfig::builder().table_also_writes("songs", ["song counts"]).build();
    /// assert!(bad.unwrap_err().to_string().contains("CACHE_TABLE_DEPENDENCIES"));
    /// ```
    pub fn table_also_writes<I>(mut self, table: &str, tables: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        match dependencies::checked(table, tables) {
            Ok((table, also)) => self.config.table_dependencies.declare(table, also),
            Err(err) => self.errors.push(err),
        }
        self
    }

    /// Gives the cache `clock` for its memory tier (feature `test-util`): a test then moves
    /// the cache's time forward with [`ManualClock::advance`](crate::testing::ManualClock::advance)
    /// — entries expire, go stale, leave their fail-safe window — instead of sleeping. See
    /// [`ManualClock`](crate::testing::ManualClock) for what it moves and what it leaves to
    /// real time. Without it, the cache reads the monotonic clock.
    ///
    /// ```
    /// use querycache::testing::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// let cache = querycache::Cache::builder().clock(clock.clone()).build().unwrap();
    /// clock.advance(std::time::Duration::from_secs(3600));
    /// # drop(cache);
    /// ```
    #[cfg(feature = "test-util")]
    pub fn clock(mut self, clock: crate::testing::ManualClock) -> Self {
        self.config.clock = crate::clock::Clock::manual(clock);
        self
    }

    /// Validates the settings, each against the others.
    /// Follows the database's change stream (see [`crate::feed`]): writes the application
    /// never sent invalidate too, once [`Cache::start_change_feed`] runs
    /// (`CACHE_CHANGE_FEED` and the `CACHE_CHANGE_FEED_*` variables).
    ///
    /// ```
    /// use querycache::Cache;
    /// use querycache::feed::ChangeFeed;
    ///
    /// let cache = Cache::builder()
    ///     .change_feed(ChangeFeed::logical("postgres://app@db/app").slot("app_cache"))
    ///     .build()?;
    /// assert_eq!(cache.config().change_feed().unwrap().mode(), querycache::feed::FeedMode::Logical);
    /// # Ok::<(), querycache::Error>(())
    /// ```
    pub fn change_feed(mut self, feed: ChangeFeed) -> Self {
        self.config.change_feed = Some(feed);
        self
    }

    /// Records a `CACHE_CHANGE_FEED*` variable (or `DATABASE_URL`) for [`change_feed`](Self::change_feed).
    pub(super) fn feed_var(mut self, name: &str, value: &str) -> Self {
        self.feed_vars.push((name.to_owned(), value.to_owned()));
        self
    }

    fn validated(mut self) -> Result<CacheConfig, Error> {
        if let Some(err) = self.errors.drain(..).next() {
            return Err(err);
        }
        if self
            .feed_vars
            .iter()
            .any(|(name, _)| name.starts_with("CACHE_CHANGE_FEED"))
            && let Some(feed) = ChangeFeed::parse_vars(std::mem::take(&mut self.feed_vars))?
        {
            self.config.change_feed = Some(feed);
        }
        if let Some(feed) = &self.config.change_feed {
            feed.validate()?;
        }
        let c = self.config;
        let secs = |d: Duration| d.as_secs_f64();
        if c.jitter_percent > 100 {
            return Err(Error::config(
                "CACHE_JITTER_PERCENT",
                c.jitter_percent,
                "is a percentage of the TTL: 0 to 100",
            ));
        }
        if c.lease_ttl > Duration::from_secs(3600) {
            return Err(Error::config(
                "CACHE_LEASE_TTL_MS",
                c.lease_ttl.as_millis(),
                "must be at most 3600000 milliseconds (an hour); 0 turns leases off",
            ));
        }
        if c.max_ttl.is_zero() {
            return Err(Error::config(
                "CACHE_MAX_TTL",
                secs(c.max_ttl),
                "must be at least one second",
            ));
        }
        for (variable, ttl) in [
            ("CACHE_DEFAULT_TTL", c.default_ttl),
            ("CACHE_COUNT_TTL", c.count_ttl),
            ("CACHE_ERROR_TTL", c.error_ttl),
            ("CACHE_NEGATIVE_TTL", c.negative_ttl),
        ] {
            if ttl.is_zero() {
                return Err(Error::config(
                    variable,
                    secs(ttl),
                    "must be at least one second",
                ));
            }
        }
        if c.default_ttl > c.max_ttl {
            return Err(Error::config(
                "CACHE_DEFAULT_TTL",
                secs(c.default_ttl),
                format!("exceeds CACHE_MAX_TTL ({}s)", secs(c.max_ttl)),
            ));
        }
        if let Some((ns, ttl)) = c.namespace_ttls.iter().find(|(_, ttl)| ttl.is_zero()) {
            return Err(Error::config(
                format!("CACHE_TTL_{}", ns.to_ascii_uppercase()),
                secs(*ttl),
                "must be at least one second",
            ));
        }
        if c.memory_max_bytes < 64 * 1024 {
            return Err(Error::config(
                "CACHE_MEMORY_MAX_BYTES",
                c.memory_max_bytes,
                "must be at least 65536 (64 KiB)",
            ));
        }
        if c.key_prefix
            .chars()
            .any(|ch| ch.is_control() || ch.is_whitespace())
        {
            return Err(Error::config(
                "CACHE_KEY_PREFIX",
                &c.key_prefix,
                "must not contain spaces or control characters",
            ));
        }
        if c.redis_timeout.is_zero() || c.redis_timeout > Duration::from_secs(60) {
            return Err(Error::config(
                "CACHE_REDIS_TIMEOUT_MS",
                c.redis_timeout.as_millis(),
                "must be between 1 and 60000 milliseconds",
            ));
        }
        if c.breaker_threshold == 0 {
            return Err(Error::config(
                "CACHE_BREAKER_THRESHOLD",
                c.breaker_threshold,
                "must be at least 1",
            ));
        }
        if c.breaker_cooldown.is_zero() || c.breaker_cooldown > Duration::from_secs(3600) {
            return Err(Error::config(
                "CACHE_BREAKER_COOLDOWN_MS",
                c.breaker_cooldown.as_millis(),
                "must be between 1 and 3600000 milliseconds",
            ));
        }
        if c.channel_heartbeat < Duration::from_millis(10)
            || c.channel_heartbeat > Duration::from_secs(60)
        {
            return Err(Error::config(
                "CACHE_CHANNEL_HEARTBEAT_MS",
                c.channel_heartbeat.as_millis(),
                "must be between 10 and 60000 milliseconds",
            ));
        }
        if c.replica_wait > Duration::from_secs(60) {
            return Err(Error::config(
                "CACHE_REPLICA_WAIT_MS",
                c.replica_wait.as_millis(),
                "must be at most 60000 milliseconds (0: do not wait for a replica)",
            ));
        }
        if c.degraded_max_age > Duration::from_secs(3600) {
            return Err(Error::config(
                "CACHE_DEGRADED_MAX_AGE_MS",
                c.degraded_max_age.as_millis(),
                "must be at most 3600000 milliseconds (0: no memory during an outage)",
            ));
        }
        #[cfg(feature = "redis")]
        if let Some(client) = &c.redis_client {
            let addr = client.get_connection_info().addr().to_string();
            if let Some(url) = &c.redis_url {
                return Err(Error::config(
                    "REDIS_URL",
                    super::redact::redact(url),
                    format!(
                        "a Redis client ({addr}) is given too (CacheBuilder::redis_client): \
                         keep one of them"
                    ),
                ));
            }
            if c.cluster_mode {
                return Err(Error::config(
                    "CACHE_CLUSTER_MODE",
                    true,
                    format!(
                        "the Redis client given (CacheBuilder::redis_client, {addr}) is a \
                         single server's: list the cluster's nodes in REDIS_URL instead"
                    ),
                ));
            }
            if matches!(
                client.get_connection_info().addr(),
                redis::ConnectionAddr::TcpTls { .. }
            ) {
                crate::tls::ensure_crypto_provider().map_err(|reason| {
                    Error::config("CacheBuilder::redis_client", addr.clone(), reason)
                })?;
            }
            return Ok(c);
        }
        if let Some(url) = &c.redis_url {
            check_redis_url(url, c.cluster_mode)?;
        } else if let Some(kind @ (StoreKind::Redis | StoreKind::Tiered)) = c.store {
            return Err(Error::config(
                "CACHE_STORE",
                kind,
                "needs REDIS_URL: set it, or use CACHE_STORE=memory",
            ));
        } else if c.cluster_mode {
            return Err(Error::config(
                "CACHE_CLUSTER_MODE",
                true,
                "needs REDIS_URL listing the cluster's nodes, separated by commas",
            ));
        }
        Ok(c)
    }
}

impl CacheBuilder<Cache> {
    /// Validates the settings and makes a [`Cache`] with them.
    ///
    /// ```
    /// let err = querycache::Cache::builder().jitter_percent(150).build().unwrap_err();
    /// assert!(err.to_string().contains("CACHE_JITTER_PERCENT"));
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting (by its environment variable) at fault.
    pub fn build(self) -> Result<Cache, Error> {
        Ok(Cache::with_config(self.validated()?))
    }
}

impl CacheBuilder<CacheConfig> {
    /// Validates and returns the configuration.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting (by its environment variable) at fault.
    pub fn build(self) -> Result<CacheConfig, Error> {
        self.validated()
    }
}

/// `REDIS_URL` must parse, and needs the `redis` feature: accepting it and quietly using
/// process memory would hide from operators that their instances do not share a cache.
/// With `CACHE_CLUSTER_MODE`, `REDIS_URL` lists nodes separated by commas; each must parse.
#[cfg(feature = "redis")]
fn check_redis_url(url: &str, cluster: bool) -> Result<(), Error> {
    let bad = |reason: String| Error::config("REDIS_URL", super::redis_url::redact(url), reason);
    if let Some(sentinel) = super::redis_url::SentinelUrl::parse(url) {
        let sentinel = sentinel.map_err(bad)?;
        if cluster {
            return Err(bad(
                "a Sentinel URL names one master, not a cluster: unset CACHE_CLUSTER_MODE".into(),
            ));
        }
        // The master's URL as it will be made, at a placeholder address: its credentials
        // and database must parse.
        redis::Client::open(sentinel.master_url("localhost", 6379))
            .map(drop)
            .map_err(|e| bad(e.to_string()))?;
        if sentinel.scheme == "rediss" {
            crate::tls::ensure_crypto_provider().map_err(bad)?;
        }
        return Ok(());
    }
    let urls = super::redis_url::split_urls(url, cluster);
    if urls.is_empty() {
        return Err(Error::config(
            "REDIS_URL",
            super::redis_url::redact(url),
            "lists no server",
        ));
    }
    for one in &urls {
        redis::Client::open(*one).map(drop).map_err(|e| {
            Error::config("REDIS_URL", super::redis_url::redact(url), e.to_string())
        })?;
    }
    // TLS needs a rustls crypto provider: said now, rather than by a panic at the first
    // handshake or a quiet fall back to process memory.
    if urls.iter().any(|one| one.starts_with("rediss://")) {
        crate::tls::ensure_crypto_provider()
            .map_err(|reason| Error::config("REDIS_URL", super::redis_url::redact(url), reason))?;
    }
    Ok(())
}

#[cfg(not(feature = "redis"))]
fn check_redis_url(url: &str, _cluster: bool) -> Result<(), Error> {
    Err(Error::config(
        "REDIS_URL",
        super::redact::redact(url),
        "this build of querycache has no Redis store: enable the `redis` feature, or unset REDIS_URL to use the memory store",
    ))
}
