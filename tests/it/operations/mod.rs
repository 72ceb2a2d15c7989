//! The operator-facing core: analytics, Prometheus exposition, cache warming.

mod analytics;
#[cfg(feature = "prometheus")]
mod prometheus;
mod warm;
