//! The operator-facing core: analytics, Prometheus exposition, cache warming.

mod analytics;
#[cfg(feature = "prometheus")]
mod prometheus;
mod warm;

use std::time::{Duration, Instant};

/// Polls `check` every millisecond until it holds; panics with `what` after `limit`.
async fn until(limit: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
