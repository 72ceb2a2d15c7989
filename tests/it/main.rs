//! The integration suite: one binary, one module per concern.

mod cache_api;
mod invariants;
mod macros;
#[cfg(feature = "redis")]
mod redis_cluster;
mod redis_harness;
#[cfg(feature = "redis")]
mod redis_store;
mod sea_orm_writes;
mod support;
mod transactions;
