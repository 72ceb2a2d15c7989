//! The circuit breaker in front of Redis.
//!
//! Closed, every Redis operation runs, bounded by the command timeout. It opens after
//! `CACHE_BREAKER_THRESHOLD` consecutive failures, or at once on a timeout: a stalled
//! server (paused, overloaded, a network that drops packets) would otherwise cost every
//! caller a full timeout, while a refused connection fails in microseconds. Open, nothing
//! is sent to Redis and the memory tier serves; a background task probes the server every
//! `CACHE_BREAKER_COOLDOWN_MS` (the half-open state, paid by no caller) and closes the
//! breaker once the invalidations made during the outage have been replayed.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Open/closed state and the count of consecutive failures. Lock-free: the check on the
/// hot path is one atomic load.
#[derive(Debug)]
pub(crate) struct Breaker {
    open: AtomicBool,
    failures: AtomicU32,
    threshold: u32,
}

/// How an operation against Redis failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No answer within the command timeout.
    Timeout,
    /// An error answer, a refused or broken connection.
    Error,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` consecutive failures.
    pub(crate) fn new(threshold: u32) -> Self {
        Breaker {
            open: AtomicBool::new(false),
            failures: AtomicU32::new(0),
            threshold: threshold.max(1),
        }
    }

    /// Whether Redis may be used now.
    pub(crate) fn is_closed(&self) -> bool {
        !self.open.load(Ordering::Acquire)
    }

    /// An operation succeeded: the failure streak ends.
    pub(crate) fn success(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
    }

    /// An operation failed. Returns `true` if this failure opened the breaker.
    pub(crate) fn failure(&self, kind: Failure) -> bool {
        let streak = self
            .failures
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        if kind == Failure::Timeout || streak >= self.threshold {
            return self.trip();
        }
        false
    }

    /// Opens the breaker whatever the streak. Returns `true` if it was closed.
    pub(crate) fn trip(&self) -> bool {
        !self.open.swap(true, Ordering::AcqRel)
    }

    /// Closes the breaker (after a successful probe and replay).
    pub(crate) fn close(&self) {
        self.failures.store(0, Ordering::Relaxed);
        self.open.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_open_after_the_threshold_timeouts_at_once() {
        let b = Breaker::new(3);
        assert!(!b.failure(Failure::Error));
        assert!(!b.failure(Failure::Error));
        assert!(b.is_closed());
        assert!(b.failure(Failure::Error), "third error opens");
        assert!(!b.is_closed());
        assert!(!b.failure(Failure::Error), "already open");
        b.close();
        assert!(b.is_closed());
        assert!(b.failure(Failure::Timeout), "a timeout opens at once");
    }

    #[test]
    fn a_success_ends_the_streak() {
        let b = Breaker::new(2);
        b.failure(Failure::Error);
        b.success();
        assert!(!b.failure(Failure::Error));
        assert!(b.is_closed());
    }
}
