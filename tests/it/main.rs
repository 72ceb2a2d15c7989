//! The integration suite: one binary, one module per concern.

// The core suite (`core/`), once per store: the same files, each time with its own STORE.
// The ORM suite (`orm/`), once per database: the same files, each time with its own DB.
#![allow(clippy::duplicate_mod)]

#[path = "core"]
mod on_memory {
    const STORE: crate::support::stores::Kind = crate::support::stores::Kind::Memory;
    mod cache_api;
    mod freshness;
    mod invariants;
    mod stale_set_race;
}
#[cfg(feature = "redis")]
#[path = "core"]
mod on_redis {
    const STORE: crate::support::stores::Kind = crate::support::stores::Kind::Redis;
    mod cache_api;
    mod freshness;
    mod invariants;
    mod stale_set_race;
}
#[cfg(feature = "redis")]
#[path = "core"]
mod on_tiered {
    const STORE: crate::support::stores::Kind = crate::support::stores::Kind::Tiered;
    mod cache_api;
    mod freshness;
    mod invariants;
    mod stale_set_race;
}

#[path = "orm"]
mod on_sqlite {
    const DB: crate::support::Db = crate::support::Db::Sqlite;
    mod audit;
    mod bypass;
    mod common;
    mod connection_cache;
    #[cfg(feature = "diesel-async")]
    mod diesel_async;
    #[cfg(feature = "diesel-async")]
    mod diesel_async_cancel;
    #[cfg(feature = "diesel")]
    mod diesel_observed_reads;
    #[cfg(feature = "diesel")]
    mod diesel_race;
    #[cfg(feature = "diesel")]
    mod diesel_raw_transactions;
    #[cfg(feature = "diesel")]
    mod diesel_related_loading;
    #[cfg(feature = "diesel")]
    mod diesel_runtime;
    #[cfg(feature = "diesel")]
    mod diesel_sqlite_only;
    #[cfg(feature = "diesel")]
    mod diesel_writes;
    mod fail_safe;
    mod locking_reads;
    #[cfg(feature = "diesel")]
    mod mixed_orms;
    mod multi_database;
    #[cfg(feature = "redis")]
    mod null_column;
    mod observed_reads;
    mod per_query;
    mod related_loading;
    mod relations;
    mod row_keys;
    mod sea_orm_cancel;
    mod sea_orm_precision;
    mod sea_orm_raw_transactions;
    mod sea_orm_writes;
    mod transactions;
    mod write_precision;
}
#[path = "orm"]
mod on_postgres {
    const DB: crate::support::Db = crate::support::Db::Postgres;
    mod audit;
    mod bypass;
    mod common;
    mod connection_cache;
    #[cfg(feature = "diesel-async")]
    mod diesel_async;
    #[cfg(feature = "diesel-async")]
    mod diesel_async_cancel;
    #[cfg(feature = "diesel")]
    mod diesel_observed_reads;
    #[cfg(feature = "diesel")]
    mod diesel_postgres_only;
    #[cfg(feature = "diesel")]
    mod diesel_race;
    #[cfg(feature = "diesel")]
    mod diesel_raw_transactions;
    #[cfg(feature = "diesel")]
    mod diesel_related_loading;
    #[cfg(feature = "diesel")]
    mod diesel_runtime;
    #[cfg(feature = "diesel")]
    mod diesel_writes;
    mod fail_safe;
    mod locking_reads;
    #[cfg(feature = "diesel")]
    mod mixed_orms;
    mod multi_database;
    #[cfg(feature = "redis")]
    mod null_column;
    mod observed_reads;
    mod per_query;
    mod postgres_only;
    mod postgres_triggers;
    mod related_loading;
    mod relations;
    mod row_keys;
    mod sea_orm_cancel;
    mod sea_orm_precision;
    mod sea_orm_raw_transactions;
    mod sea_orm_writes;
    mod transactions;
    mod write_precision;
}
// MariaDB (issue 26), with Diesel's `mysql` backend (sync and diesel-async's
// `AsyncMysqlConnection`): every file; cases MariaDB cannot have (materialized views,
// SQLite's `ON CONFLICT REPLACE`) skip it, each saying why.
#[path = "orm"]
mod on_mariadb {
    const DB: crate::support::Db = crate::support::Db::MySql;
    mod audit;
    mod bypass;
    mod common;
    mod connection_cache;
    #[cfg(feature = "diesel-async")]
    mod diesel_async;
    #[cfg(feature = "diesel-async")]
    mod diesel_async_cancel;
    #[cfg(feature = "diesel")]
    mod diesel_observed_reads;
    #[cfg(feature = "diesel")]
    mod diesel_race;
    #[cfg(feature = "diesel")]
    mod diesel_raw_transactions;
    #[cfg(feature = "diesel")]
    mod diesel_related_loading;
    #[cfg(feature = "diesel")]
    mod diesel_runtime;
    #[cfg(feature = "diesel")]
    mod diesel_writes;
    mod fail_safe;
    mod locking_reads;
    #[cfg(feature = "diesel")]
    mod mixed_orms;
    mod multi_database;
    #[cfg(feature = "redis")]
    mod null_column;
    mod observed_reads;
    mod per_query;
    mod related_loading;
    mod relations;
    mod row_keys;
    mod sea_orm_cancel;
    mod sea_orm_precision;
    mod sea_orm_raw_transactions;
    mod sea_orm_writes;
    mod transactions;
    mod write_precision;
}
#[cfg(feature = "serde")]
mod config_settings;
mod consistency;
mod hostile;
#[cfg(feature = "axum")]
mod http_admin;
#[cfg(feature = "axum")]
mod http_cache;
#[cfg(feature = "axum")]
mod http_dashboard;
#[cfg(feature = "sea-orm")]
mod read_replicas;
// The songs app's page in headless Chromium (the browser client, live invalidation).
#[cfg(all(feature = "axum", feature = "sea-orm"))]
mod songs_browser;
// The songs app (`examples/songs`): SQLite on each store, PostgreSQL and MariaDB.
#[cfg(all(feature = "axum", feature = "sea-orm"))]
#[path = "songs_app"]
mod songs_on_memory {
    const STORE: crate::support::stores::Kind = crate::support::stores::Kind::Memory;
    const DB: crate::support::Db = crate::support::Db::Sqlite;
    mod caching;
    mod consistency;
    mod operations;
    mod routes;
}
#[cfg(all(feature = "axum", feature = "sea-orm", feature = "redis"))]
#[path = "songs_app"]
mod songs_on_tiered {
    const STORE: crate::support::stores::Kind = crate::support::stores::Kind::Tiered;
    const DB: crate::support::Db = crate::support::Db::Sqlite;
    mod caching;
    mod consistency;
    mod operations;
    mod routes;
}
#[cfg(all(feature = "axum", feature = "sea-orm"))]
#[path = "songs_app"]
mod songs_on_postgres {
    const STORE: crate::support::stores::Kind = crate::support::stores::Kind::Memory;
    const DB: crate::support::Db = crate::support::Db::Postgres;
    mod caching;
    mod consistency;
    mod routes;
}
#[cfg(all(feature = "axum", feature = "sea-orm"))]
#[path = "songs_app"]
mod songs_on_mariadb {
    const STORE: crate::support::stores::Kind = crate::support::stores::Kind::Memory;
    const DB: crate::support::Db = crate::support::Db::MySql;
    mod caching;
    mod consistency;
    mod routes;
}
#[cfg(all(
    feature = "feed-postgres",
    feature = "feed-sqlite",
    feature = "sea-orm"
))]
mod feed;
mod macros;
mod mariadb_server_selftest;
mod memory_api;
mod memory_invariants;
mod operations;
#[cfg(feature = "redis")]
mod payload_roundtrip;
mod pg_server_selftest;
#[cfg(feature = "redis")]
mod redis_cluster;
#[cfg(feature = "redis")]
mod redis_coherence;
#[cfg(feature = "redis")]
mod redis_faults;
mod redis_harness;
#[cfg(feature = "redis")]
mod redis_latency;
#[cfg(feature = "redis")]
mod redis_leases;
#[cfg(feature = "redis")]
mod redis_sentinel;
#[cfg(feature = "redis")]
mod redis_store;
mod support;
