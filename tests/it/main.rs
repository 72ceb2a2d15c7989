//! The integration suite: one binary, one module per concern.

// The core suite (`core/`), once per store: the same files, each time with its own STORE.
#![allow(clippy::duplicate_mod)]

#[path = "core"]
mod on_memory {
    const STORE: crate::support::stores::Kind = crate::support::stores::Kind::Memory;
    mod cache_api;
    mod invariants;
}
#[cfg(feature = "redis")]
#[path = "core"]
mod on_redis {
    const STORE: crate::support::stores::Kind = crate::support::stores::Kind::Redis;
    mod cache_api;
    mod invariants;
}
#[cfg(feature = "redis")]
#[path = "core"]
mod on_tiered {
    const STORE: crate::support::stores::Kind = crate::support::stores::Kind::Tiered;
    mod cache_api;
    mod invariants;
}
#[cfg(feature = "diesel")]
#[path = "orm"]
mod diesel_on_sqlite {
    const DB: crate::support::Db = crate::support::Db::Sqlite;
    #[cfg(feature = "diesel-async")]
    mod diesel_async;
    mod diesel_runtime;
    mod diesel_writes;
}
mod macros;
mod memory_api;
mod memory_invariants;
#[cfg(feature = "redis")]
mod redis_cluster;
#[cfg(feature = "redis")]
mod redis_faults;
mod redis_harness;
#[cfg(feature = "redis")]
mod redis_store;
mod sea_orm_writes;
mod support;
mod transactions;
