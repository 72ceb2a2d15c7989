//! What a feed shares with the other instances of a deployment through the cache's store:
//! the consumer lease and the position applied (see `store::redis::feed`). With the memory
//! store nothing is shared: the process is the only consumer of its own cache.

// The lease and the position serve the PostgreSQL and binlog feeds; positions are only read back
// from Redis.
#![cfg_attr(
    not(all(
        any(feature = "feed-postgres", feature = "feed-mysql"),
        feature = "redis"
    )),
    allow(dead_code)
)]

use std::time::Duration;

use tokio::sync::watch;

use crate::Cache;
use crate::feed::FeedState;
use crate::feed::handle::Reporter;
use crate::store::{Backend, StoreError};

/// Whether the cache's store is shared with other processes (so that one consumer serves
/// them all).
pub(crate) fn is_shared(cache: &Cache) -> bool {
    match cache.backend() {
        Backend::Memory(_) => false,
        #[cfg(feature = "redis")]
        Backend::Tiered(_) => true,
    }
}

/// Takes or renews the consumer lease `name` under `token`: whether this instance holds it.
/// Always held with the memory store.
pub(crate) async fn lease(
    cache: &Cache,
    name: &str,
    token: &str,
    ttl: Duration,
) -> Result<bool, StoreError> {
    match cache.backend() {
        Backend::Memory(_) => {
            let _ = (name, token, ttl);
            Ok(true)
        }
        #[cfg(feature = "redis")]
        Backend::Tiered(store) => store.feed_lease(name, token, ttl).await,
    }
}

/// Gives the consumer lease `name` back (if `token` holds it).
pub(crate) async fn release(cache: &Cache, name: &str, token: &str) {
    match cache.backend() {
        Backend::Memory(_) => {
            let _ = (name, token);
        }
        #[cfg(feature = "redis")]
        Backend::Tiered(store) => {
            if let Err(error) = store.feed_release(name, token).await {
                tracing::debug!(%error, feed = name, "feed lease not given back; it expires");
            }
        }
    }
}

/// Waits until this instance holds the consumer lease `name` (at once with the memory
/// store), reporting [`FeedState::Standby`] meanwhile: false when stopped first.
pub(crate) async fn hold(
    cache: &Cache,
    name: &str,
    token: &str,
    ttl: Duration,
    reporter: &Reporter,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    loop {
        if *stop.borrow() {
            return false;
        }
        match lease(cache, name, token, ttl).await {
            Ok(true) => return true,
            Ok(false) => reporter.state(FeedState::Standby),
            // Redis cannot say who consumes: nobody starts following blindly.
            Err(error) => reporter.error(format!("consumer lease: {error}")),
        }
        if wait(stop, ttl / 3).await {
            return false;
        }
    }
}

/// The longest pause between two attempts to reconnect.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How a feed's session ended.
pub(crate) enum End {
    Stopped,
    LostLease,
    /// Broke: the error, and whether a transaction was open when it did.
    Broken(String, bool),
}

/// The consumer lease a feed holds while it follows (with a shared store).
pub(crate) struct Lease {
    pub(crate) cache: Cache,
    pub(crate) name: String,
    pub(crate) token: String,
    pub(crate) ttl: Duration,
}

/// A feed that follows its database in sessions, reconnecting between them (see
/// [`follow`]).
pub(crate) trait Sessions: Send {
    /// Its name in logs (the slot, channel or lease).
    fn name(&self) -> String;
    /// The consumer lease it must hold to follow; `None` when it follows alone.
    fn lease(&self) -> Option<Lease>;
    fn reporter(&self) -> &Reporter;
    /// One session, from connecting to its end.
    fn session(
        &mut self,
        stop: &mut watch::Receiver<bool>,
    ) -> impl std::future::Future<Output = End> + Send;
    /// Another instance took the lease over.
    fn lost_lease(&mut self) {}
    /// The session broke with `error`, inside a transaction or not.
    fn broken(&mut self, error: &str, in_transaction: bool) {
        let _ = (error, in_transaction);
    }
}

/// Follows the database until stopped: takes the lease (shared store), runs sessions,
/// reconnects with backoff, gives the lease back.
pub(crate) async fn follow<S: Sessions>(mut feed: S, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(50);
    let lease = feed.lease();
    let name = feed.name();
    loop {
        if *stop.borrow() {
            break;
        }
        if let Some(l) = &lease
            && !hold(
                &l.cache,
                &l.name,
                &l.token,
                l.ttl,
                feed.reporter(),
                &mut stop,
            )
            .await
        {
            break;
        }
        match feed.session(&mut stop).await {
            End::Stopped => break,
            End::LostLease => {
                tracing::info!(feed = %name, "change feed: another instance took the lease over");
                feed.lost_lease();
                backoff = Duration::from_millis(50);
            }
            End::Broken(error, in_transaction) => {
                tracing::warn!(feed = %name, %error, in_transaction, "change feed: session ended; reconnecting");
                feed.reporter().error(&error);
                feed.broken(&error, in_transaction);
                if wait(&mut stop, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    if let Some(l) = &lease {
        release(&l.cache, &l.name, &l.token).await;
    }
    feed.reporter().state(FeedState::Stopped);
}

/// Waits `d`, or until stopped: whether stopped.
pub(crate) async fn wait(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = stop.changed() => true,
        _ = tokio::time::sleep(d) => *stop.borrow(),
    }
}

/// Where a feed's last consumer got to: the database it followed (so that a position is
/// never taken for another database's), the position applied, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) database: String,
    pub(crate) lsn: u64,
    pub(crate) at_ms: u64,
}

impl Position {
    fn encode(&self) -> String {
        format!("v1 {} {} {}", self.lsn, self.at_ms, self.database)
    }

    fn decode(text: &str) -> Option<Position> {
        let mut parts = text.splitn(4, ' ');
        if parts.next()? != "v1" {
            return None;
        }
        let lsn = parts.next()?.parse().ok()?;
        let at_ms = parts.next()?.parse().ok()?;
        let database = parts.next()?.to_owned();
        Some(Position {
            database,
            lsn,
            at_ms,
        })
    }
}

/// The position recorded for the feed `name` in the shared store; `None` with the memory
/// store or when none (or an unreadable one) is recorded.
pub(crate) async fn position(cache: &Cache, name: &str) -> Result<Option<Position>, StoreError> {
    match cache.backend() {
        Backend::Memory(_) => {
            let _ = name;
            Ok(None)
        }
        #[cfg(feature = "redis")]
        Backend::Tiered(store) => Ok(store
            .feed_position(name)
            .await?
            .as_deref()
            .and_then(Position::decode)),
    }
}

/// Records `position` for the feed `name` in the shared store (nothing with the memory
/// store).
pub(crate) async fn record(
    cache: &Cache,
    name: &str,
    position: &Position,
) -> Result<(), StoreError> {
    match cache.backend() {
        Backend::Memory(_) => {
            let _ = (name, position);
            Ok(())
        }
        #[cfg(feature = "redis")]
        Backend::Tiered(store) => store.set_feed_position(name, &position.encode()).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip() {
        let p = Position {
            database: "Postgres|app|5432|7312".into(),
            lsn: 0x1_6B37_4D48,
            at_ms: 1_790_000_000_000,
        };
        assert_eq!(Position::decode(&p.encode()), Some(p));
        assert_eq!(Position::decode("v2 1 2 x"), None);
        assert_eq!(Position::decode("v1 x 2 y"), None);
    }
}
