//! Computation leases in Redis, and the leases an outage orphans.
//!
//! A lease is a `SET NX PX` taken before computing a missing key, so that other instances
//! wait for the value instead of computing it too. An outage can leave one held with nobody
//! to give it back: a `SET NX` that timed out may still run when a hung server wakes up, and
//! a lease taken before the outage cannot be released while the breaker is open. Until it
//! expired (`CACHE_LEASE_TTL_MS`, 5 s by default), every instance that missed that key after
//! the outage would wait for it. So such leases are remembered, and the probe gives them
//! back (compare-and-delete on the token: harmless if the lease expired or changed hands)
//! before the breaker closes.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Shared, TieredStore};
use crate::store::{Lease, StoreError};

/// Orphaned leases remembered at most; past that they are left to expire.
const MAX_ORPHANS: usize = 4096;
/// Attempts to give orphaned leases back while the breaker stays closed.
const RELEASE_ATTEMPTS: u32 = 20;

impl TieredStore {
    /// Takes the computation lease of `key` in Redis (see [`Lease`]).
    pub(crate) async fn take_lease(&self, key: &str, ttl: Duration) -> Lease {
        let s = &self.inner;
        let token = crate::store::redis::fresh_token();
        let sent = s.breaker.is_closed();
        match s.call("lease", s.redis.take_lease(key, &token, ttl)).await {
            Ok(true) => Lease::Taken(token),
            Ok(false) => Lease::Held,
            Err(()) => {
                if sent {
                    // It may have been taken all the same (a hung server runs it later).
                    s.orphaned(key, token);
                }
                Lease::Unshared
            }
        }
    }

    /// Gives a lease back; while Redis cannot be reached, once it can.
    pub(crate) async fn release_lease(&self, key: &str, token: &str) {
        let s = &self.inner;
        if s.call("lease", s.redis.release_lease(key, token))
            .await
            .is_err()
        {
            s.orphaned(key, token.to_owned());
        }
    }
}

impl Shared {
    /// Remembers a lease that may be held with nobody to give it back. While the breaker is
    /// closed (a dropped connection, not an outage) it is given back at once, in the
    /// background; otherwise the probe does it before closing the breaker.
    fn orphaned(self: &Arc<Self>, key: &str, token: String) {
        {
            let mut orphans = self.orphans.lock();
            if orphans.len() >= MAX_ORPHANS {
                return;
            }
            orphans.push((key.to_owned(), token));
        }
        if self.breaker.is_closed() && !self.releasing.swap(true, Ordering::AcqRel) {
            let shared = Arc::clone(self);
            crate::runtime::io_handle().spawn(async move {
                loop {
                    shared.release_orphans_now().await;
                    shared.releasing.store(false, Ordering::Release);
                    // One orphaned meanwhile found the flag still set: go on for it.
                    let more = shared.has_orphans()
                        && shared.breaker.is_closed()
                        && !shared.releasing.swap(true, Ordering::AcqRel);
                    if !more {
                        break;
                    }
                }
            });
        }
    }

    /// Gives the orphaned leases back while the breaker stays closed, retrying every
    /// cooldown (a dropped connection may take a moment to come back) a bounded number of
    /// times. Once the breaker opens, recovery gives them back instead.
    async fn release_orphans_now(self: &Arc<Self>) {
        let timeout = self.redis.timeout();
        for _ in 0..RELEASE_ATTEMPTS {
            if !self.breaker.is_closed() {
                return;
            }
            match self.release_orphans(timeout).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::debug!(tier = "redis", %error, "could not give orphaned leases back yet");
                    tokio::time::sleep(self.cooldown).await;
                }
            }
        }
    }

    /// Whether leases wait to be given back.
    pub(super) fn has_orphans(&self) -> bool {
        !self.orphans.lock().is_empty()
    }

    /// Gives back the orphaned leases (during recovery). On a failure, keeps those left and
    /// returns the error.
    pub(super) async fn release_orphans(
        self: &Arc<Self>,
        timeout: Duration,
    ) -> Result<(), StoreError> {
        let orphans = std::mem::take(&mut *self.orphans.lock());
        for (i, (key, token)) in orphans.iter().enumerate() {
            let released = tokio::time::timeout(timeout, self.redis.release_lease(key, token))
                .await
                .map_err(|_| StoreError::Timeout { limit: timeout })
                .and_then(|released| released);
            if let Err(error) = released {
                self.orphans.lock().extend(orphans[i..].iter().cloned());
                return Err(error);
            }
        }
        if !orphans.is_empty() {
            tracing::debug!(
                tier = "redis",
                released = orphans.len(),
                "leases orphaned by the outage given back"
            );
        }
        Ok(())
    }
}
