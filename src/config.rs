//! Configuration: [`CacheConfig`], built in code with [`CacheConfigBuilder`] or read from
//! `CACHE_*` environment variables with [`CacheConfig::from_env`].
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `CACHE_ENABLED` | `true` | `false` makes every cached function run straight through |
//! | `CACHE_DEFAULT_TTL` | `3600` | seconds an entry lives when nothing more specific is set |
//! | `CACHE_MAX_TTL` | `86400` | longer TTLs are clamped to this |
//! | `CACHE_COUNT_TTL` | `300` | default TTL of count queries (`#[cache_count_query]`) |
//! | `CACHE_JITTER_PERCENT` | `0` | each entry expires up to this percentage of its TTL early, at random, so that entries written together do not expire together (`jitter` on a query overrides it) |
//! | `CACHE_ERROR_TTL` | `300` | TTL of cached errors when a function asks for `cache_errors` |
//! | `CACHE_NEGATIVE_TTL` | `60` | longest TTL of an *absent* value (one that serializes to `null`: `Option::None`, a row not found), so that lookups of ids that do not exist cannot fill the store for long |
//! | `CACHE_TTL_<NAMESPACE>` | see [`DEFAULT_NAMESPACE_TTLS`] | TTL of one namespace, e.g. `CACHE_TTL_BING_ANALYTICS=3600` |
//! | `CACHE_SWR_<NAMESPACE>` | unset | stale-while-revalidate window of one namespace, in seconds, e.g. `CACHE_SWR_SONGS=30` (`swr` on a query overrides it) |
//! | `CACHE_LEASE_TTL_MS` | `5000` | with Redis: how long the lease an instance takes to compute a missing key lasts; the other instances wait for its result at most that long, then compute themselves. `0` turns leases off |
//! | `CACHE_MEMORY_MAX_BYTES` | `268435456` | byte budget of the memory store (`64MiB`, `1GB` accepted) |
//! | `CACHE_INVALIDATION_STRATEGY` | `smart` | `smart`: ORM writes invalidate; `manual`: only explicit calls; `ttl`: only expiry |
//! | `CACHE_KEY_PREFIX` | `querycache` | prefix of every key in shared stores |
//! | `REDIS_URL` | unset | Redis server (`redis://`, `rediss://`); comma-separated nodes with `CACHE_CLUSTER_MODE`. Needs the `redis` feature |
//! | `CACHE_STORE` | `tiered` with `REDIS_URL`, else `memory` | see [`StoreKind`] |
//! | `CACHE_REDIS_TIMEOUT_MS` | `100` | connect and command timeout of Redis |
//! | `CACHE_BREAKER_THRESHOLD` | `3` | consecutive Redis errors that open the circuit breaker (a timeout opens it at once) |
//! | `CACHE_BREAKER_COOLDOWN_MS` | `500` | how often an open breaker probes Redis, in the background |
//! | `CACHE_CHANNEL_HEARTBEAT_MS` | `1000` | tiered store: how often the invalidation channel's subscriber pings its own connection; nothing heard on it for 3 intervals counts as a channel loss (memory tier dropped and bypassed until it is back) |
//! | `CACHE_COMPRESSION_ENABLED`, `CACHE_COMPRESSION_THRESHOLD` | `true`, `1024` | payload compression in shared stores |
//! | `CACHE_WARM_ON_STARTUP` | `false` | run the registered warmers at start-up, when the application calls [`Cache::warm_on_startup`](crate::Cache::warm_on_startup) |
//! | `CACHE_CLUSTER_MODE` | `false` | `REDIS_URL` lists Redis Cluster nodes |
//! | `CACHE_KEY_SECRET` | unset: a random secret per process | feature `axum`: the secret (at least [`MIN_KEY_SECRET_LEN`] bytes; `openssl rand -hex 32`) that keys the hash of the `Authorization` and `Vary` values in the keys of cached HTTP answers. Set the same value on every instance sharing Redis, or they share no entry for requests carrying those headers; never logged or shown |
//! | `CACHE_TABLE_DEPENDENCIES` | unset | writes the database makes on its own (triggers...), `songs=song_counts,audit_log;users=user_stats`: see [`CacheConfigBuilder::table_also_writes`] |

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::Error;

mod dependencies;
mod secret;

pub(crate) use dependencies::TableDependencies;
pub(crate) use secret::KeySecret;
pub use secret::MIN_KEY_SECRET_LEN;

/// Built-in namespace TTLs (the product brief's policies); `CACHE_TTL_<NAMESPACE>` and
/// [`CacheConfigBuilder::namespace_ttl`] override them.
pub const DEFAULT_NAMESPACE_TTLS: &[(&str, u64)] = &[
    ("platform_status", 30 * 60),
    ("analytics_data", 60 * 60),
    ("user_sites", 2 * 60 * 60),
    ("bing_analytics", 60 * 60),
];

/// What invalidates entries. Read from `CACHE_INVALIDATION_STRATEGY`.
///
/// ```
/// use querycache::InvalidationStrategy;
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
/// use querycache::StoreKind;
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
/// assert_eq!(config.ttl_for_namespace("user_sites"), Some(Duration::from_secs(7200)));
/// ```
#[derive(Debug, Clone)]
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
    pub(crate) key_prefix: String,
    pub(crate) redis_url: Option<String>,
    pub(crate) redis_timeout: Duration,
    pub(crate) compression_enabled: bool,
    pub(crate) compression_threshold: usize,
    pub(crate) warm_on_startup: bool,
    pub(crate) cluster_mode: bool,
    pub(crate) store: Option<StoreKind>,
    pub(crate) breaker_threshold: u32,
    pub(crate) breaker_cooldown: Duration,
    pub(crate) channel_heartbeat: Duration,
    pub(crate) table_dependencies: TableDependencies,
    /// `Debug` shows `<redacted>`.
    pub(crate) key_secret: Option<KeySecret>,
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
            namespace_ttls: DEFAULT_NAMESPACE_TTLS
                .iter()
                .map(|(ns, secs)| ((*ns).to_owned(), Duration::from_secs(*secs)))
                .collect(),
            namespace_swr: HashMap::new(),
            lease_ttl: Duration::from_secs(5),
            memory_max_bytes: 256 * 1024 * 1024,
            strategy: InvalidationStrategy::Smart,
            key_prefix: "querycache".to_owned(),
            redis_url: None,
            redis_timeout: Duration::from_millis(100),
            compression_enabled: true,
            compression_threshold: 1024,
            warm_on_startup: false,
            cluster_mode: false,
            store: None,
            breaker_threshold: 3,
            breaker_cooldown: Duration::from_millis(500),
            channel_heartbeat: Duration::from_secs(1),
            table_dependencies: TableDependencies::default(),
            key_secret: None,
        }
    }
}

impl CacheConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> CacheConfigBuilder {
        CacheConfigBuilder {
            config: CacheConfig::default(),
            errors: Vec::new(),
        }
    }

    /// Reads the `CACHE_*` variables (and `REDIS_URL`) of this process's environment.
    ///
    /// ```
    /// let config = querycache::CacheConfig::from_env().unwrap();
    /// assert!(config.enabled());
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] naming the first variable whose value is invalid.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_vars(std::env::vars())
    }

    /// Like [`from_env`](Self::from_env), from any list of `(name, value)` pairs; variables
    /// that are not querycache's are ignored.
    ///
    /// ```
    /// use std::time::Duration;
    /// use querycache::CacheConfig;
    ///
    /// let config = CacheConfig::from_vars([
    ///     ("CACHE_DEFAULT_TTL", "60"),
    ///     ("CACHE_TTL_PLATFORM_STATUS", "10"),
    ///     ("PATH", "/usr/bin"),
    /// ]).unwrap();
    /// assert_eq!(config.default_ttl(), Duration::from_secs(60));
    /// assert_eq!(config.ttl_for_namespace("platform_status"), Some(Duration::from_secs(10)));
    ///
    /// let err = CacheConfig::from_vars([("CACHE_DEFAULT_TTL", "soon")]).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid configuration: CACHE_DEFAULT_TTL=\"soon\": expected a whole number of seconds"
    /// );
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] naming the first variable whose value is invalid.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut builder = CacheConfig::builder();
        let mut vars: Vec<(String, String)> = vars
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
            .collect();
        // Deterministic order, so the first error reported does not depend on the
        // environment's order.
        vars.sort();
        for (name, value) in &vars {
            builder = apply_var(builder, name, value)?;
        }
        builder.build()
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
        self.store.unwrap_or(if self.redis_url.is_some() {
            StoreKind::Tiered
        } else {
            StoreKind::Memory
        })
    }
    /// The Redis URL (`REDIS_URL`) with its password masked, if one is set.
    #[cfg(feature = "redis")]
    pub fn redis_url_redacted(&self) -> Option<String> {
        self.redis_url.as_deref().map(crate::store::redis::redact)
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

/// Builder of a [`CacheConfig`]; [`build`](Self::build) validates.
///
/// ```
/// use std::time::Duration;
/// use querycache::CacheConfig;
///
/// let err = CacheConfig::builder()
///     .default_ttl(Duration::from_secs(7200))
///     .max_ttl(Duration::from_secs(3600))
///     .build()
///     .unwrap_err();
/// assert!(err.to_string().contains("CACHE_DEFAULT_TTL"));
/// ```
#[derive(Debug)]
#[must_use]
pub struct CacheConfigBuilder {
    config: CacheConfig,
    errors: Vec<Error>,
}

impl CacheConfigBuilder {
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

    /// Sets the key secret (`CACHE_KEY_SECRET`; feature `axum`): the key of the HMAC-SHA256
    /// that hashes the `Authorization` header and the `Vary` values into the keys of cached
    /// HTTP answers (`querycache::http::CacheResponse`), so that a key — in the
    /// store, a log line or the admin analytics — cannot be used to test guesses of a
    /// password offline. Every instance sharing a Redis store needs the same secret, or
    /// they share no entry for requests carrying those headers.
    ///
    /// At least [`MIN_KEY_SECRET_LEN`] bytes (`openssl rand -hex 32` makes a good one);
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
    /// A table may write itself: a self-referencing `ON DELETE CASCADE` or `SET NULL`, a
    /// trigger that changes other rows of its own table, SQLite's `UNIQUE .. ON CONFLICT
    /// REPLACE`. Declared (`table_also_writes("songs", ["songs"])`, `songs=songs`), every
    /// write to it also bumps `model:songs#bulk`, so the by-id entries of rows the statement
    /// did not name are invalidated too. (Querycache does not derive this from the catalog's
    /// foreign keys and triggers: declare it.)
    ///
    /// ```
    /// use querycache::CacheConfig;
    ///
    /// // songs.parent_id REFERENCES songs (id) ON DELETE CASCADE
    /// let config = CacheConfig::from_vars([("CACHE_TABLE_DEPENDENCIES", "songs=songs")]).unwrap();
    /// assert_eq!(config.tables_also_written("songs"), ["songs"]);
    /// ```
    ///
    /// ```
    /// use querycache::CacheConfig;
    ///
    /// // AFTER INSERT OR DELETE ON songs, a trigger updates song_counts; one on
    /// // app.users writes app.audit_log.
    /// let cache = CacheConfig::builder()
    ///     .table_also_writes("songs", ["song_counts"])
    ///     .table_also_writes("app.users", ["app.audit_log"])
    ///     .build_cache()
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

    /// Validates and returns the configuration.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting (by its environment variable) at fault.
    pub fn build(mut self) -> Result<CacheConfig, Error> {
        if let Some(err) = self.errors.drain(..).next() {
            return Err(err);
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

/// `REDIS_URL` must parse, and needs the `redis` feature: accepting it and quietly using
/// process memory would hide from operators that their instances do not share a cache.
/// With `CACHE_CLUSTER_MODE`, `REDIS_URL` lists nodes separated by commas; each must parse.
#[cfg(feature = "redis")]
fn check_redis_url(url: &str, cluster: bool) -> Result<(), Error> {
    let urls = crate::store::redis::split_urls(url, cluster);
    if urls.is_empty() {
        return Err(Error::config(
            "REDIS_URL",
            crate::store::redis::redact(url),
            "lists no server",
        ));
    }
    for one in urls {
        redis::Client::open(one).map(drop).map_err(|e| {
            Error::config("REDIS_URL", crate::store::redis::redact(url), e.to_string())
        })?;
    }
    Ok(())
}

#[cfg(not(feature = "redis"))]
fn check_redis_url(url: &str, _cluster: bool) -> Result<(), Error> {
    Err(Error::config(
        "REDIS_URL",
        url,
        "this build of querycache has no Redis store: enable the `redis` feature, or unset REDIS_URL to use the memory store",
    ))
}

/// Variables this crate (and its example apps) read; any other `CACHE_*` variable is
/// probably a typo and is reported at warn level.
const KNOWN_VARS: &[&str] = &[
    "CACHE_ENABLED",
    "CACHE_DEFAULT_TTL",
    "CACHE_MAX_TTL",
    "CACHE_COUNT_TTL",
    "CACHE_ERROR_TTL",
    "CACHE_NEGATIVE_TTL",
    "CACHE_JITTER_PERCENT",
    "CACHE_MEMORY_MAX_BYTES",
    "CACHE_INVALIDATION_STRATEGY",
    "CACHE_KEY_PREFIX",
    "CACHE_COMPRESSION_ENABLED",
    "CACHE_COMPRESSION_THRESHOLD",
    "CACHE_WARM_ON_STARTUP",
    "CACHE_CLUSTER_MODE",
    "CACHE_ADMIN_TOKEN",
    "CACHE_REDIS_TIMEOUT_MS",
    "CACHE_STORE",
    "CACHE_BREAKER_THRESHOLD",
    "CACHE_BREAKER_COOLDOWN_MS",
    "CACHE_CHANNEL_HEARTBEAT_MS",
    "CACHE_LEASE_TTL_MS",
    // `http::ServeOptions::from_env` (feature `axum`).
    "CACHE_HTTP_HEADER_TIMEOUT_MS",
    "CACHE_HTTP_BODY_TIMEOUT_MS",
    "CACHE_HTTP_REQUEST_TIMEOUT_MS",
    "CACHE_HTTP_MAX_CONNECTIONS",
    "CACHE_HTTP_SHUTDOWN_TIMEOUT_MS",
    dependencies::VARIABLE,
    secret::VARIABLE,
];

fn apply_var(b: CacheConfigBuilder, name: &str, value: &str) -> Result<CacheConfigBuilder, Error> {
    Ok(match name {
        "REDIS_URL" if !value.trim().is_empty() => b.redis_url(value.trim()),
        "CACHE_ENABLED" => b.enabled(parse_bool(name, value)?),
        "CACHE_DEFAULT_TTL" => b.default_ttl(parse_secs(name, value)?),
        "CACHE_MAX_TTL" => b.max_ttl(parse_secs(name, value)?),
        "CACHE_COUNT_TTL" => b.count_ttl(parse_secs(name, value)?),
        "CACHE_ERROR_TTL" => b.error_ttl(parse_secs(name, value)?),
        "CACHE_NEGATIVE_TTL" => b.negative_ttl(parse_secs(name, value)?),
        "CACHE_JITTER_PERCENT" => {
            b.jitter_percent(
                value.trim().trim_end_matches('%').parse().map_err(|_| {
                    Error::config(name, value, "expected a percentage from 0 to 100")
                })?,
            )
        }
        "CACHE_MEMORY_MAX_BYTES" => b.memory_max_bytes(parse_bytes(name, value)?),
        "CACHE_INVALIDATION_STRATEGY" => b.invalidation_strategy(value.parse()?),
        "CACHE_KEY_PREFIX" => b.key_prefix(value),
        "CACHE_COMPRESSION_ENABLED" => b.compression_enabled(parse_bool(name, value)?),
        "CACHE_COMPRESSION_THRESHOLD" => {
            let bytes = parse_bytes(name, value)?;
            let bytes = usize::try_from(bytes)
                .map_err(|_| Error::config(name, value, "too large for this platform"))?;
            b.compression_threshold(bytes)
        }
        "CACHE_WARM_ON_STARTUP" => b.warm_on_startup(parse_bool(name, value)?),
        "CACHE_CLUSTER_MODE" => b.cluster_mode(parse_bool(name, value)?),
        "CACHE_REDIS_TIMEOUT_MS" => b.redis_timeout(parse_ms(name, value)?),
        "CACHE_BREAKER_COOLDOWN_MS" => b.breaker_cooldown(parse_ms(name, value)?),
        "CACHE_CHANNEL_HEARTBEAT_MS" => b.channel_heartbeat(parse_ms(name, value)?),
        "CACHE_LEASE_TTL_MS" => b.lease_ttl(parse_ms(name, value)?),
        "CACHE_BREAKER_THRESHOLD" => b.breaker_threshold(
            value
                .trim()
                .parse()
                .map_err(|_| Error::config(name, value, "expected a whole number of failures"))?,
        ),
        "CACHE_STORE" => b.store(value.parse()?),
        // Blank: unset (a random secret per process).
        secret::VARIABLE if value.trim().is_empty() => b,
        secret::VARIABLE => {
            let secret = KeySecret::new(value.trim().as_bytes())?;
            let mut b = b;
            b.config.key_secret = Some(secret);
            b
        }
        dependencies::VARIABLE => dependencies::parse(value)?
            .into_iter()
            .fold(b, |b, (table, also)| b.table_also_writes(&table, also)),
        _ => {
            if let Some(ns) = namespace_of(name, value, "CACHE_SWR_", "SONGS")? {
                b.namespace_swr(ns, parse_secs(name, value)?)
            } else if let Some(ns) = namespace_of(name, value, "CACHE_TTL_", "BING_ANALYTICS")? {
                b.namespace_ttl(ns, parse_secs(name, value)?)
            } else {
                if name.starts_with("CACHE_") && !KNOWN_VARS.contains(&name) {
                    tracing::warn!(
                        variable = name,
                        "unknown CACHE_* variable ignored; is it misspelled?"
                    );
                }
                b
            }
        }
    })
}

/// The namespace a per-namespace variable (`<prefix><NAMESPACE>`) names, lower-cased; `None`
/// for another variable. `example` completes the message when the namespace is missing.
fn namespace_of(
    name: &str,
    value: &str,
    prefix: &str,
    example: &str,
) -> Result<Option<String>, Error> {
    match name.strip_prefix(prefix) {
        None => Ok(None),
        Some("") => Err(Error::config(
            name,
            value,
            format!("name a namespace after {prefix}, e.g. {prefix}{example}"),
        )),
        Some(ns) => Ok(Some(ns.to_ascii_lowercase())),
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool, Error> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::config(
            name,
            value,
            "expected true or false (also accepted: 1/0, yes/no, on/off)",
        )),
    }
}

fn parse_ms(name: &str, value: &str) -> Result<Duration, Error> {
    let ms: u64 = value
        .trim()
        .parse()
        .map_err(|_| Error::config(name, value, "expected a whole number of milliseconds"))?;
    Ok(Duration::from_millis(ms))
}

fn parse_secs(name: &str, value: &str) -> Result<Duration, Error> {
    let secs: u64 = value
        .trim()
        .parse()
        .map_err(|_| Error::config(name, value, "expected a whole number of seconds"))?;
    if secs == 0 {
        return Err(Error::config(name, value, "must be at least one second"));
    }
    Ok(Duration::from_secs(secs))
}

/// Parses `1048576`, `64KiB`, `64MB`, `1GiB` (KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024).
fn parse_bytes(name: &str, value: &str) -> Result<u64, Error> {
    let v = value.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    let bad = || {
        Error::config(
            name,
            value,
            "expected a number of bytes, optionally with a unit: B, KB, MB, GB, KiB, MiB, GiB",
        )
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(mult)
        .ok_or_else(|| Error::config(name, value, "too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_units() {
        assert_eq!(parse_bytes("X", "64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("X", "2 GB").unwrap(), 2_000_000_000);
        assert_eq!(parse_bytes("X", "4096").unwrap(), 4096);
        assert!(parse_bytes("X", "12 parsecs").is_err());
        assert!(parse_bytes("X", "99999999999999999999GiB").is_err());
    }

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
            Some(Duration::from_secs(1800))
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
