//! The operator-facing core: analytics, Prometheus exposition, the `metrics` facade,
//! OpenTelemetry, spans, the Grafana dashboard, cache warming.

mod analytics;
#[cfg(feature = "prometheus")]
mod grafana;
#[cfg(feature = "metrics")]
mod metrics_facade;
#[cfg(feature = "opentelemetry")]
mod otel;
#[cfg(feature = "prometheus")]
mod prometheus;
mod spans;
mod warm;
