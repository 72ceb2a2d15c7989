//! Configuration: [`CacheConfig`], built in code with [`CacheConfigBuilder`], read from
//! `CACHE_*` environment variables with [`CacheConfig::from_env`] (or under a prefix of the
//! application's, [`CacheConfig::from_env_prefixed`]: `MYAPP_CACHE_DEFAULT_TTL`), or, with
//! the feature `serde`, deserialized as a part of the application's own settings (a
//! `[cache]` table whose fields are the variables' names without `CACHE_`, in lower case:
//! see [`CacheConfig`]).
//!
//! Durations are written the same way everywhere — `#[cached_query(ttl = "1h30m")]`,
//! `CACHE_DEFAULT_TTL=1h30m`, `default_ttl = "1h30m"` — and read by one parser (the
//! `querycache-duration` crate): numbers with units `d`, `h`, `m`, `s`, largest first, or
//! milliseconds alone (`250ms`) where milliseconds are accepted (the `*_MS` variables). A
//! bare number keeps the unit it always had: seconds, milliseconds for `*_MS`.
//!
//! The variables (the README shows the same table, rendered from the same rows); those read
//! elsewhere say by what:
//!
#![doc = include_str!("variables.md")]

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::Error;

mod builder;
mod dependencies;
mod env;
pub(crate) mod redact;
#[cfg(feature = "redis")]
pub(crate) mod redis_url;
mod secret;
#[cfg(feature = "serde")]
mod settings;
mod variables;

pub use builder::{CacheBuilder, CacheConfigBuilder};
pub(crate) use dependencies::TableDependencies;
pub(crate) use env::parse_ms;
pub(crate) use secret::KeySecret;
pub use secret::MIN_KEY_SECRET_LEN;

/// What invalidates entries. Read from `CACHE_INVALIDATION_STRATEGY`.
///
/// ```
/// use querycache::config::InvalidationStrategy;
///
/// assert_eq!("manual".parse::<InvalidationStrategy>().unwrap(), InvalidationStrategy::Manual);
/// assert!("sometimes".parse::<InvalidationStrategy>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum InvalidationStrategy {
    /// Writes through the ORM integration invalidate the tags they touch (the default).
    #[default]
    Smart,
    /// ORM writes invalidate nothing; only explicit `invalidate_*` calls do.
    Manual,
    /// Nothing but expiry removes entries: ORM writes and `invalidate_tags` are ignored
    /// (`delete`, `clear`, patterns and namespaces still work, as operator actions).
    Ttl,
}

/// Whether to report the dependencies a cached function reads but does not declare. Read
/// from `CACHE_AUDIT`.
///
/// A function that declares `models` (or an entry declaring model tags) depends on what it
/// declares *and* on what its statements were observed to read; with `Warn`, each table it
/// read but did not declare is logged once per function at warn level, naming the function,
/// the table and the statement: the dependency the declaration forgot, which observation now
/// covers, and which a reader of the code would not guess. Functions that declare no model
/// are not audited: declaring nothing is the intended way.
///
/// ```
/// use querycache::config::Audit;
///
/// assert_eq!("warn".parse::<Audit>().unwrap(), Audit::Warn);
/// assert_eq!("OFF".parse::<Audit>().unwrap(), Audit::Off);
/// assert!("loud".parse::<Audit>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Audit {
    /// No audit (the default).
    #[default]
    Off,
    /// Warn once per function and table read but not declared.
    Warn,
}

impl FromStr for Audit {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(Self::Off),
            "warn" => Ok(Self::Warn),
            _ => Err(Error::config(
                "CACHE_AUDIT",
                s,
                "expected one of: off, warn",
            )),
        }
    }
}

impl FromStr for InvalidationStrategy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "smart" => Ok(Self::Smart),
            "manual" => Ok(Self::Manual),
            "ttl" => Ok(Self::Ttl),
            _ => Err(Error::config(
                "CACHE_INVALIDATION_STRATEGY",
                s,
                "expected one of: smart, manual, ttl",
            )),
        }
    }
}

impl fmt::Display for InvalidationStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Smart => "smart",
            Self::Manual => "manual",
            Self::Ttl => "ttl",
        })
    }
}

/// Which store a cache keeps its entries in. Read from `CACHE_STORE`; when unset, the
/// tiered store if `REDIS_URL` is set, the memory store otherwise.
///
/// ```
/// use querycache::config::StoreKind;
///
/// assert_eq!("tiered".parse::<StoreKind>().unwrap(), StoreKind::Tiered);
/// assert!("disk".parse::<StoreKind>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum StoreKind {
    /// Process memory only: fastest, but each instance has its own cache.
    Memory,
    /// Redis only (feature `redis`): every read is a round trip, shared by every instance.
    /// While Redis is unreachable, process memory stands in for it.
    Redis,
    /// Process memory in front of Redis (feature `redis`), kept coherent across instances
    /// by an invalidation channel: the default when `REDIS_URL` is set.
    Tiered,
}

impl FromStr for StoreKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "memory" => Ok(Self::Memory),
            "redis" => Ok(Self::Redis),
            "tiered" => Ok(Self::Tiered),
            _ => Err(Error::config(
                "CACHE_STORE",
                s,
                "expected one of: memory, redis, tiered",
            )),
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Memory => "memory",
            Self::Redis => "redis",
            Self::Tiered => "tiered",
        })
    }
}

/// Validated settings of a [`Cache`](crate::Cache).
///
/// ```
/// use std::time::Duration;
/// use querycache::CacheConfig;
///
/// let config = CacheConfig::builder()
///     .default_ttl(Duration::from_secs(600))
///     .namespace_ttl("songs", Duration::from_secs(60))
///     .build()
///     .unwrap();
/// assert_eq!(config.ttl_for_namespace("songs"), Some(Duration::from_secs(60)));
/// assert_eq!(config.ttl_for_namespace("user_sites"), None, "no policy: the default TTL");
/// ```
///
/// `Debug` shows every setting but the secrets: the Redis URL's password is masked and the
/// key secret shows `<redacted>`.
///
/// ```
/// let config = querycache::CacheConfig::from_vars([
///     ("REDIS_URL", "redis://app:hunter2-hunter2@cache:6379"),
/// ]);
/// # #[cfg(feature = "redis")] {
/// let shown = format!("{:?}", config.unwrap());
/// assert!(shown.contains("redis://app:***@cache:6379") && !shown.contains("hunter2"));
/// # }
/// ```
///
/// With the feature `serde`, a `CacheConfig` is also read as a part of an application's
/// settings: a table whose fields are the `CACHE_*` variables' names without `CACHE_`, in
/// lower case (`redis_url` for `REDIS_URL`), each meaning what its variable means; the
/// families `CACHE_TTL_<NAMESPACE>` and `CACHE_SWR_<NAMESPACE>` are the tables `ttl` and
/// `swr`. Durations are numbers in the variable's unit (seconds; milliseconds for the `_ms`
/// fields) or strings such as `"30m"`, `"1h30m"`, `"250ms"`; a field of no setting is an
/// error naming it. The whole is checked as [`CacheConfigBuilder::build`] checks it.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use std::time::Duration;
/// use querycache::CacheConfig;
///
/// #[derive(serde::Deserialize)]
/// struct Settings {
///     database_url: String,
///     cache: CacheConfig,
/// }
///
/// let settings: Settings = serde_json::from_str(r#"{
///     "database_url": "postgres://app@db/app",
///     "cache": { "default_ttl": "30m", "redis_timeout_ms": 50, "ttl": { "songs": "1h" } }
/// }"#).unwrap();
/// assert_eq!(settings.cache.default_ttl(), Duration::from_secs(1800));
/// assert_eq!(settings.cache.redis_timeout(), Duration::from_millis(50));
/// assert_eq!(settings.cache.ttl_for_namespace("songs"), Some(Duration::from_secs(3600)));
///
/// let err = serde_json::from_str::<Settings>(
///     r#"{"database_url": "", "cache": {"default_tll": "30m"}}"#,
/// ).err().unwrap();
/// assert!(err.to_string().starts_with("unknown field `default_tll`, expected one of"));
/// # }
/// ```
#[derive(Clone)]
pub struct CacheConfig {
    pub(crate) enabled: bool,
    pub(crate) default_ttl: Duration,
    pub(crate) max_ttl: Duration,
    pub(crate) count_ttl: Duration,
    pub(crate) jitter_percent: u8,
    pub(crate) error_ttl: Duration,
    pub(crate) negative_ttl: Duration,
    pub(crate) namespace_ttls: HashMap<String, Duration>,
    pub(crate) namespace_swr: HashMap<String, Duration>,
    pub(crate) lease_ttl: Duration,
    pub(crate) memory_max_bytes: u64,
    pub(crate) strategy: InvalidationStrategy,
    pub(crate) audit: Audit,
    pub(crate) key_prefix: String,
    pub(crate) redis_url: Option<String>,
    /// A client the application made ([`CacheBuilder::redis_client`]), instead of
    /// `REDIS_URL`.
    #[cfg(feature = "redis")]
    pub(crate) redis_client: Option<redis::Client>,
    pub(crate) redis_timeout: Duration,
    pub(crate) compression_enabled: bool,
    pub(crate) compression_threshold: usize,
    pub(crate) warm_on_startup: bool,
    pub(crate) cluster_mode: bool,
    pub(crate) store: Option<StoreKind>,
    pub(crate) breaker_threshold: u32,
    pub(crate) breaker_cooldown: Duration,
    pub(crate) channel_heartbeat: Duration,
    pub(crate) degraded_max_age: Duration,
    pub(crate) replica_wait: Duration,
    pub(crate) table_dependencies: TableDependencies,
    /// `Debug` shows `<redacted>`.
    pub(crate) key_secret: Option<KeySecret>,
    /// The memory tier's clock: the monotonic clock, or a test's
    /// [`ManualClock`](crate::testing::ManualClock) (feature `test-util`).
    pub(crate) clock: crate::clock::Clock,
    pub(crate) change_feed: Option<crate::feed::ChangeFeed>,
}

impl fmt::Debug for CacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured, so that a new field cannot be forgotten here.
        let CacheConfig {
            enabled,
            default_ttl,
            max_ttl,
            count_ttl,
            jitter_percent,
            error_ttl,
            negative_ttl,
            namespace_ttls,
            namespace_swr,
            lease_ttl,
            memory_max_bytes,
            strategy,
            audit,
            key_prefix,
            redis_url,
            #[cfg(feature = "redis")]
            redis_client,
            redis_timeout,
            compression_enabled,
            compression_threshold,
            warm_on_startup,
            cluster_mode,
            store,
            breaker_threshold,
            breaker_cooldown,
            channel_heartbeat,
            degraded_max_age,
            replica_wait,
            table_dependencies,
            key_secret,
            clock,
            change_feed,
        } = self;
        // The password masked: `Debug` output ends up in logs.
        let redis_url = redis_url.as_deref().map(redact::redact);
        let mut f = f.debug_struct("CacheConfig");
        f.field("enabled", enabled)
            .field("default_ttl", default_ttl)
            .field("max_ttl", max_ttl)
            .field("count_ttl", count_ttl)
            .field("jitter_percent", jitter_percent)
            .field("error_ttl", error_ttl)
            .field("negative_ttl", negative_ttl)
            .field("namespace_ttls", namespace_ttls)
            .field("namespace_swr", namespace_swr)
            .field("lease_ttl", lease_ttl)
            .field("memory_max_bytes", memory_max_bytes)
            .field("strategy", strategy)
            .field("audit", audit)
            .field("key_prefix", key_prefix)
            .field("redis_url", &redis_url);
        // The server's address only: the client's credentials stay out.
        #[cfg(feature = "redis")]
        f.field(
            "redis_client",
            &redis_client.as_ref().map(|client| {
                let info = client.get_connection_info();
                format!("{} db {}", info.addr(), info.redis_settings().db())
            }),
        );
        f.field("redis_timeout", redis_timeout)
            .field("compression_enabled", compression_enabled)
            .field("compression_threshold", compression_threshold)
            .field("warm_on_startup", warm_on_startup)
            .field("cluster_mode", cluster_mode)
            .field("store", store)
            .field("breaker_threshold", breaker_threshold)
            .field("breaker_cooldown", breaker_cooldown)
            .field("channel_heartbeat", channel_heartbeat)
            .field("degraded_max_age", degraded_max_age)
            .field("replica_wait", replica_wait)
            .field("table_dependencies", table_dependencies)
            .field("key_secret", key_secret)
            .field("clock", clock)
            .field("change_feed", change_feed)
            .finish()
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            default_ttl: Duration::from_secs(3600),
            max_ttl: Duration::from_secs(86_400),
            count_ttl: Duration::from_secs(300),
            jitter_percent: 0,
            error_ttl: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(60),
            namespace_ttls: HashMap::new(),
            namespace_swr: HashMap::new(),
            lease_ttl: Duration::from_secs(5),
            memory_max_bytes: 256 * 1024 * 1024,
            strategy: InvalidationStrategy::Smart,
            audit: Audit::Off,
            key_prefix: "querycache".to_owned(),
            redis_url: None,
            #[cfg(feature = "redis")]
            redis_client: None,
            redis_timeout: Duration::from_millis(100),
            compression_enabled: true,
            compression_threshold: 1024,
            warm_on_startup: false,
            cluster_mode: false,
            store: None,
            breaker_threshold: 3,
            breaker_cooldown: Duration::from_millis(500),
            channel_heartbeat: Duration::from_secs(1),
            degraded_max_age: Duration::from_secs(3),
            replica_wait: Duration::from_millis(100),
            table_dependencies: TableDependencies::default(),
            key_secret: None,
            clock: crate::clock::Clock::default(),
            change_feed: None,
        }
    }
}

impl CacheConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> CacheConfigBuilder {
        CacheConfigBuilder::from_config(CacheConfig::default())
    }

    /// The change feed [`Cache::start_change_feed`](crate::Cache::start_change_feed) starts
    /// (`CACHE_CHANGE_FEED`), if any.
    ///
    /// ```
    /// let config = querycache::CacheConfig::from_vars([
    ///     ("CACHE_CHANGE_FEED", "triggers"),
    ///     ("DATABASE_URL", "postgres://app@db/app"),
    /// ]).unwrap();
    /// assert_eq!(config.change_feed().unwrap().mode(), querycache::feed::FeedMode::Triggers);
    /// assert!(querycache::CacheConfig::default().change_feed().is_none());
    /// ```
    pub fn change_feed(&self) -> Option<&crate::feed::ChangeFeed> {
        self.change_feed.as_ref()
    }

    /// Whether caching is on (`CACHE_ENABLED`).
    pub fn enabled(&self) -> bool {
        self.enabled
    }
    /// TTL used when neither the call nor its namespace sets one (`CACHE_DEFAULT_TTL`).
    pub fn default_ttl(&self) -> Duration {
        self.default_ttl
    }
    /// Upper bound of every TTL (`CACHE_MAX_TTL`).
    pub fn max_ttl(&self) -> Duration {
        self.max_ttl
    }
    /// Default TTL of count queries (`CACHE_COUNT_TTL`).
    pub fn count_ttl(&self) -> Duration {
        self.count_ttl
    }

    /// How much of an entry's TTL may be taken off at random, in percent
    /// (`CACHE_JITTER_PERCENT`; [`EntryOptions::jitter_percent`](crate::EntryOptions::jitter_percent)
    /// overrides it per entry).
    ///
    /// ```
    /// let config = querycache::CacheConfig::builder().jitter_percent(10).build().unwrap();
    /// assert_eq!(config.jitter_percent(), 10);
    /// ```
    pub fn jitter_percent(&self) -> u8 {
        self.jitter_percent
    }
    /// TTL of cached errors (`CACHE_ERROR_TTL`).
    pub fn error_ttl(&self) -> Duration {
        self.error_ttl
    }
    /// The longest TTL of an absent value, one that serializes to `null` such as
    /// `Option::None` (`CACHE_NEGATIVE_TTL`, default 60 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = querycache::CacheConfig::builder().negative_ttl(Duration::from_secs(5)).build().unwrap();
    /// assert_eq!(config.negative_ttl(), Duration::from_secs(5));
    /// ```
    pub fn negative_ttl(&self) -> Duration {
        self.negative_ttl
    }
    /// The TTL policy of `namespace`, if one is configured.
    pub fn ttl_for_namespace(&self, namespace: &str) -> Option<Duration> {
        self.namespace_ttls.get(namespace).copied()
    }
    /// The stale-while-revalidate window of `namespace` (`CACHE_SWR_<NAMESPACE>`), if one
    /// is configured.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let config = querycache::CacheConfig::from_vars([("CACHE_SWR_SONGS", "30")]).unwrap();
    /// assert_eq!(config.swr_for_namespace("songs"), Some(Duration::from_secs(30)));
    /// ```
    pub fn swr_for_namespace(&self, namespace: &str) -> Option<Duration> {
        self.namespace_swr.get(namespace).copied()
    }
    /// How long a computation lease lasts in Redis (`CACHE_LEASE_TTL_MS`; zero: no leases).
    ///
    /// ```
    /// let config = querycache::CacheConfig::default();
    /// assert_eq!(config.lease_ttl(), std::time::Duration::from_secs(5));
    /// ```
    pub fn lease_ttl(&self) -> Duration {
        self.lease_ttl
    }
    /// Byte budget of the memory store (`CACHE_MEMORY_MAX_BYTES`).
    pub fn memory_max_bytes(&self) -> u64 {
        self.memory_max_bytes
    }
    /// What invalidates entries (`CACHE_INVALIDATION_STRATEGY`).
    pub fn invalidation_strategy(&self) -> InvalidationStrategy {
        self.strategy
    }
    /// Prefix of every key in shared stores (`CACHE_KEY_PREFIX`).
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }
    /// Whether registered warmers run at start-up (`CACHE_WARM_ON_STARTUP`).
    pub fn warm_on_startup(&self) -> bool {
        self.warm_on_startup
    }
    /// Whether payloads above [`compression_threshold`](Self::compression_threshold) are
    /// compressed in shared stores (`CACHE_COMPRESSION_ENABLED`).
    pub fn compression_enabled(&self) -> bool {
        self.compression_enabled
    }
    /// Payload size in bytes above which compression applies (`CACHE_COMPRESSION_THRESHOLD`).
    pub fn compression_threshold(&self) -> usize {
        self.compression_threshold
    }
    /// Whether `REDIS_URL` names Redis Cluster nodes (`CACHE_CLUSTER_MODE`).
    pub fn cluster_mode(&self) -> bool {
        self.cluster_mode
    }
    /// The store in use (`CACHE_STORE`): as set, or tiered when `REDIS_URL` is set, memory
    /// otherwise.
    pub fn store_kind(&self) -> StoreKind {
        self.store.unwrap_or(if self.has_redis() {
            StoreKind::Tiered
        } else {
            StoreKind::Memory
        })
    }
    /// Whether a Redis server is configured: `REDIS_URL`, or a client given to
    /// [`CacheBuilder::redis_client`].
    pub(crate) fn has_redis(&self) -> bool {
        #[cfg(feature = "redis")]
        if self.redis_client.is_some() {
            return true;
        }
        self.redis_url.is_some()
    }

    /// The Redis URL (`REDIS_URL`) with its password masked, if one is set.
    #[cfg(feature = "redis")]
    pub fn redis_url_redacted(&self) -> Option<String> {
        self.redis_url.as_deref().map(redis_url::redact)
    }
    /// Command and connect timeout of Redis (`CACHE_REDIS_TIMEOUT_MS`).
    pub fn redis_timeout(&self) -> Duration {
        self.redis_timeout
    }
    /// Consecutive Redis failures that open the circuit breaker (`CACHE_BREAKER_THRESHOLD`).
    pub fn breaker_threshold(&self) -> u32 {
        self.breaker_threshold
    }
    /// How often an open breaker probes Redis (`CACHE_BREAKER_COOLDOWN_MS`).
    pub fn breaker_cooldown(&self) -> Duration {
        self.breaker_cooldown
    }
    /// How often the tiered store's invalidation-channel subscriber pings its own
    /// connection (`CACHE_CHANNEL_HEARTBEAT_MS`); silence for three intervals is a channel
    /// loss.
    pub fn channel_heartbeat(&self) -> Duration {
        self.channel_heartbeat
    }
    /// The oldest entry process memory serves while this instance cannot be sure it hears
    /// other instances' invalidations (`CACHE_DEGRADED_MAX_AGE_MS`, default 3 s): see
    /// [`CacheConfigBuilder::degraded_max_age`].
    pub fn degraded_max_age(&self) -> Duration {
        self.degraded_max_age
    }
    /// How long a computation reading a replica waits for it to replay the primary's
    /// position before answering uncached (`CACHE_REPLICA_WAIT_MS`, default 100 ms): see
    /// [`CacheConfigBuilder::replica_wait`].
    pub fn replica_wait(&self) -> Duration {
        self.replica_wait
    }
    /// The tables a write to `table` also writes, as declared with
    /// [`CacheConfigBuilder::table_also_writes`] or `CACHE_TABLE_DEPENDENCIES` and followed
    /// transitively, sorted; empty when nothing is declared for `table`.
    ///
    /// ```
    /// use querycache::CacheConfig;
    ///
    /// let config = CacheConfig::from_vars([(
    ///     "CACHE_TABLE_DEPENDENCIES",
    ///     "songs=song_counts;song_counts=stats",
    /// )])
    /// .unwrap();
    /// assert_eq!(config.tables_also_written("songs"), ["song_counts", "stats"]);
    /// assert_eq!(config.tables_also_written("public.songs"), ["song_counts", "stats"]);
    /// assert!(config.tables_also_written("users").is_empty());
    /// ```
    pub fn tables_also_written(&self, table: &str) -> &[String] {
        self.table_dependencies.also_written(table)
    }

    /// Whether a key secret is configured (`CACHE_KEY_SECRET`,
    /// [`CacheConfigBuilder::key_secret`]). Without one, each process draws a random secret
    /// of its own: instances sharing Redis then share no cached HTTP answer of a request
    /// carrying `Authorization` or `Vary` values.
    ///
    /// ```
    /// use querycache::CacheConfig;
    ///
    /// assert!(!CacheConfig::default().has_key_secret());
    /// let config = CacheConfig::from_vars([("CACHE_KEY_SECRET", "0123456789abcdef0123")]).unwrap();
    /// assert!(config.has_key_secret());
    /// assert!(!format!("{config:?}").contains("0123456789abcdef"), "Debug never shows it");
    /// ```
    pub fn has_key_secret(&self) -> bool {
        self.key_secret.is_some()
    }

    /// The configured key secret's bytes, if one is set (never logged).
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn key_secret(&self) -> Option<&[u8]> {
        self.key_secret.as_ref().map(KeySecret::bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_percent_from_the_environment() {
        let config = CacheConfig::from_vars([("CACHE_JITTER_PERCENT", "15%")]).unwrap();
        assert_eq!(config.jitter_percent(), 15);
        assert_eq!(CacheConfig::default().jitter_percent(), 0);
        let err = CacheConfig::from_vars([("CACHE_JITTER_PERCENT", "ten")]).unwrap_err();
        assert!(err.to_string().contains("CACHE_JITTER_PERCENT"), "{err}");
    }

    #[test]
    fn every_error_names_its_variable() {
        for (var, value) in [
            ("CACHE_ENABLED", "maybe"),
            ("CACHE_DEFAULT_TTL", "-5"),
            ("CACHE_MAX_TTL", "0"),
            ("CACHE_COUNT_TTL", "1.5"),
            ("CACHE_ERROR_TTL", ""),
            ("CACHE_NEGATIVE_TTL", "0"),
            ("CACHE_JITTER_PERCENT", "150"),
            ("CACHE_MEMORY_MAX_BYTES", "12"),
            ("CACHE_INVALIDATION_STRATEGY", "eventually"),
            ("CACHE_COMPRESSION_ENABLED", "2"),
            ("CACHE_COMPRESSION_THRESHOLD", "lots"),
            ("CACHE_WARM_ON_STARTUP", "later"),
            ("CACHE_CLUSTER_MODE", "cluster"),
            ("CACHE_TTL_SONGS", "forever"),
            ("CACHE_KEY_PREFIX", "my app"),
            ("REDIS_URL", "no-such-scheme://127.0.0.1:6379"),
            ("CACHE_REDIS_TIMEOUT_MS", "0"),
            ("CACHE_STORE", "disk"),
            ("CACHE_BREAKER_THRESHOLD", "0"),
            ("CACHE_BREAKER_COOLDOWN_MS", "soon"),
            ("CACHE_CHANNEL_HEARTBEAT_MS", "5"),
            ("CACHE_CHANNEL_HEARTBEAT_MS", "often"),
            ("CACHE_TABLE_DEPENDENCIES", "songs"),
        ] {
            let err = CacheConfig::from_vars([(var, value)]).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(var), "{var}: {msg}");
            assert!(msg.contains(&format!("{value:?}")), "{var}: {msg}");
        }
    }

    #[test]
    fn namespace_ttls_from_env() {
        let c = CacheConfig::from_vars([("CACHE_TTL_BING_ANALYTICS", "42")]).unwrap();
        assert_eq!(
            c.ttl_for_namespace("bing_analytics"),
            Some(Duration::from_secs(42))
        );
        assert_eq!(
            c.ttl_for_namespace("platform_status"),
            None,
            "the library has no namespace policy of its own"
        );
        assert_eq!(c.ttl_for_namespace("other"), None);
    }

    #[test]
    fn disabled_and_strategy() {
        let c = CacheConfig::from_vars([
            ("CACHE_ENABLED", "false"),
            ("CACHE_INVALIDATION_STRATEGY", "TTL"),
            ("CACHE_MEMORY_MAX_BYTES", "1MiB"),
        ])
        .unwrap();
        assert!(!c.enabled());
        assert_eq!(c.invalidation_strategy(), InvalidationStrategy::Ttl);
        assert_eq!(c.memory_max_bytes(), 1 << 20);
    }
}
