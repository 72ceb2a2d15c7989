//! Why a store operation failed: [`StoreError`], the error of every [`Store`](super::Store)
//! method and of the Redis store's operations.
//!
//! Crate-private, and never shown to callers: a failing store is a miss, counted and logged
//! by the cache (with the operation and the key beside the message) or recorded in the
//! tiered store's health report (`<operation>: <message>`). Each kind keeps the wording the
//! store has always logged, so that the text an operator greps for stays the same; the
//! kinds let code tell them apart (a timeout opens the tiered store's breaker at once).

/// A store operation that failed, by kind. See the module docs.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// No connection to the server could be made (`target`: `Redis`, or `the Redis
    /// cluster`).
    #[cfg(feature = "redis")]
    #[error("connecting to {target}: {source}")]
    Connect {
        target: &'static str,
        source: redis::RedisError,
    },
    /// A command failed: Redis answered an error (`NOAUTH`, `OOM`, a script's error) or the
    /// connection broke. redis-rs's message as it is: it names the server's error code.
    #[cfg(feature = "redis")]
    #[error(transparent)]
    Command(#[from] redis::RedisError),
    /// An invalidation found Redis full (`refused`: the bump's error), and deleting the
    /// tags' versions instead failed too.
    #[cfg(feature = "redis")]
    #[error("Redis is full ({refused}), and deleting the versions failed too: {source}")]
    Full {
        refused: redis::RedisError,
        source: redis::RedisError,
    },
    /// A step of the single server's incarnation check failed (`step`: `checking the Redis
    /// incarnation`, `rotating the store epoch`; see `redis::epoch`).
    #[cfg(feature = "redis")]
    #[error("{step}: {source}")]
    Epoch {
        step: &'static str,
        source: redis::RedisError,
    },
    /// A reply did not read as the type `command` answers.
    #[cfg(feature = "redis")]
    #[error("{command}: {source}")]
    Unreadable {
        command: &'static str,
        source: redis::ParsingError,
    },
    /// A reply of the expected type but not the expected shape (`context`: the command, or
    /// what was being done).
    #[cfg(feature = "redis")]
    #[error("{context}: {problem}")]
    Malformed {
        context: &'static str,
        problem: &'static str,
    },
    /// A reply with another number of items than the keys asked for.
    #[cfg(feature = "redis")]
    #[error("{command} returned {got} values for {asked} keys")]
    ReplyLength {
        command: &'static str,
        got: usize,
        asked: usize,
    },
    /// A key written a moment ago was not there when read back (the default database's
    /// record, which only the ORM integrations read).
    #[cfg(feature = "redis")]
    #[cfg_attr(not(any(feature = "sea-orm", feature = "diesel")), allow(dead_code))]
    #[error("`{key}` vanished right after it was set")]
    Vanished { key: String },
    /// A key pattern that does not parse as a glob.
    #[cfg(feature = "redis")]
    #[error("invalid key pattern {pattern:?}: {reason}")]
    Pattern {
        pattern: String,
        reason: &'static str,
    },
    /// No answer within the command timeout.
    #[cfg(feature = "redis")]
    #[error("no answer within {} ms", .limit.as_millis())]
    Timeout { limit: std::time::Duration },
    /// Redis could not be asked: the breaker is open, or the operation just failed
    /// (`last_error`: what the tiered store recorded, `<operation>: <message>`). Only the
    /// default database's claim, made by the ORM integrations, reports it.
    #[cfg(feature = "redis")]
    #[cfg_attr(not(any(feature = "sea-orm", feature = "diesel")), allow(dead_code))]
    #[error("{}", .last_error.as_deref().unwrap_or("Redis is out (the breaker is open)"))]
    Out { last_error: Option<String> },
    /// A value that cannot be written exactly, and so is not stored.
    #[cfg(feature = "redis")]
    #[error(transparent)]
    Encode(super::codec::body::EncodeError),
    /// A stored body that does not read as the requested type.
    #[cfg(feature = "redis")]
    #[error("payload body does not fit the requested type: {0}")]
    Decode(super::codec::body::DecodeBodyError),
    /// Asked to encode a value in a build where no store keeps bytes (never happens: the
    /// memory store does not encode).
    #[cfg(not(feature = "redis"))]
    #[error("no store of this build keeps bytes")]
    NoByteStore,
    /// A snapshot handed to another store than the one that took it.
    #[error("snapshot taken by another store")]
    ForeignSnapshot,
}

#[cfg(feature = "redis")]
impl StoreError {
    /// Whether the operation got no answer in time (rather than an error answer).
    pub(crate) fn is_timeout(&self) -> bool {
        matches!(self, StoreError::Timeout { .. })
    }
}
