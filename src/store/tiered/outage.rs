//! The tiered store during a Redis outage: counting failures, opening the breaker, keeping
//! the invalidations made meanwhile, and the background probe that replays them before the
//! breaker closes.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Shared;
use super::breaker::Failure;
use super::channel::Op;
use crate::store::StoreError;

impl Shared {
    /// Counts and records a failed Redis operation; a timeout opens the breaker at once,
    /// errors after enough of them in a row.
    pub(super) fn failed(self: &Arc<Self>, operation: &'static str, error: StoreError) {
        let kind = if error.is_timeout() {
            Failure::Timeout
        } else {
            Failure::Error
        };
        self.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(tier = "redis", operation, %error, "Redis operation failed; serving without it");
        *self.last_error.lock() = Some(format!("{operation}: {error}"));
        if self.breaker.failure(kind) {
            self.opened();
        }
    }

    /// The breaker just opened.
    pub(super) fn opened(self: &Arc<Self>) {
        tracing::warn!(
            tier = "redis",
            "circuit breaker OPEN: Redis unreachable, serving from process memory; probing every {} ms",
            self.cooldown.as_millis()
        );
        if !self.memory_tier {
            // The fallback starts empty: nothing in it predates the outage.
            self.drop_memory();
        }
        self.spawn_probe();
    }

    /// Opens the breaker and remembers `op` for replay, under the pending lock so that the
    /// probe cannot close the breaker between the two.
    pub(super) fn defer(self: &Arc<Self>, op: &Op) {
        let opened = {
            let mut pending = self.pending.lock();
            pending.add(op);
            self.breaker.trip()
        };
        if opened {
            self.opened();
        }
    }

    pub(super) fn spawn_probe(self: &Arc<Self>) {
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let runtime = crate::runtime::io_handle();
        let weak = Arc::downgrade(self);
        let mut shutdown = self.shutdown.subscribe();
        let cooldown = self.cooldown;
        runtime.spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    () = tokio::time::sleep(cooldown) => {}
                }
                let Some(shared) = weak.upgrade() else { return };
                if shared.recover().await {
                    shared.probing.store(false, Ordering::Release);
                    return;
                }
            }
        });
    }

    /// The half-open step: probe (every connection callers use), replay what is pending,
    /// close. Returns whether the breaker is closed.
    pub(super) async fn recover(self: &Arc<Self>) -> bool {
        let timeout = self.redis.timeout();
        let probe = tokio::time::timeout(timeout, self.redis.probe()).await;
        let failure = match probe {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(format!("probe: {error}")),
            Err(_) => Some(format!(
                "probe: no answer within {} ms",
                timeout.as_millis()
            )),
        };
        if let Some(failure) = failure {
            // What Redis says now, not what it said when the outage began (a server back
            // but refusing the password is not "connection refused" any more).
            *self.last_error.lock() = Some(failure);
            return false;
        }
        loop {
            let replay = self.pending.lock().replay();
            for op in &replay.ops {
                let applied = tokio::time::timeout(timeout * 4, self.apply_remote(op)).await;
                match applied {
                    Ok(Ok(_)) => self.pending.lock().done(op, replay.upto),
                    Ok(Err(error)) => {
                        *self.last_error.lock() = Some(format!("replay: {error}"));
                        return false;
                    }
                    Err(_) => {
                        *self.last_error.lock() = Some("replay: timed out".to_owned());
                        return false;
                    }
                }
            }
            if let Err(error) = self.release_orphans(timeout).await {
                *self.last_error.lock() = Some(format!("lease release: {error}"));
                return false;
            }
            let pending = self.pending.lock();
            if pending.is_empty() && !self.has_orphans() {
                // Anything cached in memory during the outage may have missed other
                // instances' invalidations: start again from Redis.
                self.drop_memory();
                // The server may be another incarnation than before the outage: the first
                // operation after the close checks it (see `redis::epoch`), before any hit.
                self.redis.incarnation_unknown("breaker closing");
                self.breaker.close();
                *self.last_error.lock() = None;
                drop(pending);
                tracing::info!(
                    tier = "redis",
                    replayed = replay.ops.len(),
                    "circuit breaker CLOSED: Redis reachable again"
                );
                return true;
            }
        }
    }
}
