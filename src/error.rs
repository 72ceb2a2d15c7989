//! The crate's error type.

use std::fmt;

/// Everything that can go wrong at querycache's public boundary.
///
/// Cache *failures* never surface here when a query is being served: a store that cannot
/// answer is a miss, counted in [`CacheStats::errors`](crate::stats::CacheStats::errors) and logged.
/// `Error` is for mistakes a caller can fix: invalid configuration, an invalid pattern, a
/// value that cannot be encoded.
///
/// ```
/// use querycache::{CacheConfig, Error};
///
/// let err = CacheConfig::builder().max_ttl_secs(0).build().unwrap_err();
/// assert!(matches!(err, Error::Config { .. }));
/// assert!(err.to_string().contains("CACHE_MAX_TTL"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid. `variable` names the environment variable (or the
    /// builder setting it mirrors) and `value` what was given.
    #[error("invalid configuration: {variable}={value:?}: {reason}")]
    Config {
        /// The environment variable, e.g. `CACHE_DEFAULT_TTL`.
        variable: String,
        /// The offending value as given.
        value: String,
        /// What is wrong and what is expected instead.
        reason: String,
    },
    /// A glob pattern given to [`Cache::invalidate_pattern`](crate::Cache::invalidate_pattern)
    /// does not parse.
    #[error("invalid key pattern {pattern:?}: {reason}")]
    Pattern {
        /// The pattern as given.
        pattern: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A key or tag is not acceptable (empty, too long, or containing control characters).
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// `"key"`, `"tag"` or `"namespace"`.
        what: &'static str,
        /// The offending value (truncated to 200 characters).
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A value could not be serialized for the cache.
    #[error("cannot encode the value for key {key:?}: {source}")]
    Encode {
        /// The key whose value failed to encode.
        key: String,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// [`querycache::install`](crate::install) was called twice.
    #[error("a global cache is already installed; install() may be called once per process")]
    AlreadyInstalled,
    /// A warming request named a warmer that is not registered
    /// ([`Cache::register_warmer`](crate::Cache::register_warmer)).
    #[error("unknown warmer {name:?}; registered warmers: {known:?}")]
    UnknownWarmer {
        /// The name as given.
        name: String,
        /// The names registered, in registration order.
        known: Vec<String>,
    },
    /// A warming run was requested while another is in progress.
    #[error(
        "a warming run is already in progress (warmers {types:?}, started at unix ms {started_at_ms}); \
         wait for it to finish"
    )]
    WarmInProgress {
        /// The warmers of the run in progress.
        types: Vec<String>,
        /// When it started, unix milliseconds.
        started_at_ms: u64,
    },
    /// A change feed ([`crate::feed`]) cannot follow its database: `reason` says what is
    /// missing (a privilege, `wal_level`, a publication, the server itself) and how to
    /// provide it.
    #[error("change feed {mode} on {database}: {reason}")]
    ChangeFeed {
        /// The feed's mode (`logical`, `triggers`, `data_version`).
        mode: String,
        /// The database it follows (its URL without the password).
        database: String,
        /// What is wrong and what to do about it.
        reason: String,
    },
    /// A connection cannot be declared a read replica of another
    /// ([`CachedConnection::replica_of`](crate::orm::sea_orm::CachedConnection::replica_of)):
    /// only PostgreSQL streaming replicas are followed.
    #[error("cannot declare a {backend} connection a replica of a {primary} connection: {reason}")]
    Replica {
        /// The backend of the connection declared a replica (`PostgreSQL`, `MySQL`, `SQLite`).
        backend: &'static str,
        /// The backend of the primary it was declared a replica of.
        primary: &'static str,
        /// Why, and what to do instead.
        reason: &'static str,
    },
    /// An operation that spawns a task was called outside a tokio runtime.
    #[error("{operation} needs a tokio runtime to spawn on; call it from within one")]
    NoRuntime {
        /// The operation, e.g. `Cache::warm`.
        operation: &'static str,
    },
}

impl Error {
    pub(crate) fn config(
        variable: impl Into<String>,
        value: impl fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        Error::Config {
            variable: variable.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid_name(what: &'static str, value: &str, reason: impl Into<String>) -> Self {
        let value: String = value.chars().take(200).collect();
        Error::InvalidName {
            what,
            value,
            reason: reason.into(),
        }
    }
}
