//! # querycache
//!
//! An ORM-integrated query cache for Rust. Mark a query function with
//! [`#[cached_query]`](cached_query); its results are kept in memory, and every write that
//! goes through the ORM invalidates exactly the cached queries that depend on it — no cache
//! keys written by hand, no invalidation forgotten.
//!
//! ```no_run
//! use querycache::{cached_query, orm::sea_orm::CachedConnection};
//! use sea_orm::{DbErr, EntityTrait};
//! # mod song {
//! #     use sea_orm::entity::prelude::*;
//! #     #[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
//! #     #[sea_orm(table_name = "songs")]
//! #     pub struct Model { #[sea_orm(primary_key)] pub id: i32, pub title: String }
//! #     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
//! #     pub enum Relation {}
//! #     impl ActiveModelBehavior for ActiveModel {}
//! # }
//!
//! // Served from the cache until song `id` (or the whole table, in bulk) is written.
//! #[cached_query(ttl = 3600, models = [song::Entity], row = id)]
//! async fn get_song(db: &CachedConnection, id: i32) -> Result<Option<song::Model>, DbErr> {
//!     song::Entity::find_by_id(id).one(db).await
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // Once at start-up: the cache (from CACHE_* variables) and the connection wrapper.
//! let cache = querycache::Cache::from_env()?;
//! querycache::install(cache.clone())?;
//! let db = CachedConnection::new(sea_orm::Database::connect("sqlite://songs.db").await?, cache);
//!
//! let song = get_song(&db, 7).await?; // miss: runs the query
//! let song = get_song(&db, 7).await?; // hit: no query, no decoding
//! # Ok(()) }
//! ```
//!
//! ## How invalidation works
//!
//! Every entry depends on [tags](Tag): `model:songs` for the songs table, `model:songs:7` for
//! one row, `user:123` for anything the application names. Each tag has a version; an entry
//! records its tags' versions *before* its query runs and is served only while they are
//! unchanged. A write replaces the versions of the tags it touches (after its transaction
//! commits), so invalidation costs the same for one dependent entry or ten million, and a
//! reader racing a writer can never park an old value where later readers find it. The
//! [`tags`] module has the details.
//!
//! ## A tour
//!
//! | you want to | look at |
//! | --- | --- |
//! | cache a query function | [`cached_query`], [`cache_model_query`], [`cache_count_query`], [`cache_skip`] |
//! | invalidate on every SeaORM write | [`orm::sea_orm::CachedConnection`] |
//! | cache one SeaORM query where it is written, without a function around it (`Entity::find_by_id(7).cached(&db).ttl(..).one()`), stream through the wrapper (`.stream(&db)`), invalidate an entity's table or row by hand | [`orm::sea_orm::CacheQueryExt`] → [`orm::sea_orm::CachedQuery`]; `sea_orm::StreamTrait` on [`orm::sea_orm::CachedConnection`]; [`CachedConnection::invalidate_model`](orm::sea_orm::CachedConnection::invalidate_model), [`CachedConnection::invalidate_row`](orm::sea_orm::CachedConnection::invalidate_row) |
//! | invalidate on every Diesel write (sync or diesel-async) | [`orm::diesel::install_default`], [`orm::diesel::CacheInstrumentation`] |
//! | read how a `#[cached_query]` call is served (its hit path, then the read path) | `quick_hit` in `src/cache/call/quick.rs` (or `Call::hit` in `src/cache/call/`), then `src/cache/read/mod.rs`; the probes of its models and connections in `src/orm/probes.rs` |
//! | cache from synchronous code | `#[cached_query]` on a plain `fn`; [`Cache::get_blocking`], [`Cache::try_get_or_compute_blocking`]: no runtime needed |
//! | use the cache directly | [`Cache`]: [`get`](Cache::get), [`set`](Cache::set), [`get_or_compute`](Cache::get_or_compute), [`invalidate_tags`](Cache::invalidate_tags), [`invalidate_pattern`](Cache::invalidate_pattern), [`invalidate_namespace`](Cache::invalidate_namespace) |
//! | configure it | [`Cache::builder`], or [`CacheConfig`] (builder, or `CACHE_*` variables via [`CacheConfig::from_env`]); the table of variables is in [`config`] |
//! | set TTL, tags, namespace of an entry | [`EntryOptions`] |
//! | serve stale while refreshing, refresh hot keys early, survive a failing database, bound slow computations | [`EntryOptions::swr`], [`EntryOptions::early_refresh`], [`EntryOptions::fail_safe`], [`EntryOptions::soft_timeout`], [`EntryOptions::hard_timeout`], read with [`Cache::fetch`] → [`Fetched`] (`is_stale`), [`FetchError`], [`TimedOut`]; the same options on `#[cached_query]` |
//! | invalidate on writes the app never sent (`psql`, other services, cron jobs, triggers) | [`feed::ChangeFeed`] (`CACHE_CHANGE_FEED`): PostgreSQL logical replication or triggers + `NOTIFY` (feature `feed-postgres`), SQLite's `data_version` (feature `feed-sqlite`); [`Cache::start_change_feed`] |
//! | go straight to the database for one call or a whole scope (writes still invalidate) | [`bypass`], [`bypass_sync`] |
//! | a process-wide cache | [`install`], [`global`] |
//! | share it between app instances | `REDIS_URL` (feature `redis`): the tiered store, memory in front of Redis, kept coherent by pub/sub; [`config::StoreKind`] lists the stores |
//! | know whether Redis is up | [`Cache::health`] → [`Health`] (circuit breaker, fallback, invalidation channel) |
//! | watch it | [`Cache::stats`] → [`stats::CacheStats`]; `tracing` events under the `querycache` target |
//! | cache whole axum answers, with ETags that are checked without running the handler | [`http::CacheResponse`], [`http::cache_row_response`]; the [`http`] module (feature `axum`) |
//! | see how well it works, for a dashboard | [`Cache::analytics`] → [`analytics::Analytics`]: efficiency score, most accessed keys, turnover, a 15-minute timeline, per-namespace figures, [recommendations](analytics::Recommendation) |
//! | scrape it with Prometheus | [`Cache::prometheus_text`] (OpenMetrics text), [`Cache::register_metrics`] into your own registry (feature `prometheus`) |
//! | publish it through the `metrics` facade (metrics-exporter-prometheus, StatsD, Datadog, ...) | [`Cache::record_metrics`], [`Cache::spawn_metrics_reporter`] (feature `metrics`): the Prometheus names, nothing recorded on the hit path |
//! | export it to OpenTelemetry | [`Cache::register_otel`] (feature `opentelemetry`): observable instruments read at collection time |
//! | see on a request's span whether its reads hit | declare [`stats::HIT_FIELD`] (`cache.hit`) and [`stats::TIER_FIELD`] (`cache.tier`) as `tracing::field::Empty` on it; refreshes, timed-out computations and warmers run in the span that started them |
//! | a Grafana dashboard | `dashboards/grafana/querycache.json` in the repository: hit ratio, hits and misses by tier, latency quantiles, errors, Redis and its circuit breaker, invalidations, refreshes |
//! | fill it before traffic arrives | [`Cache::register_warmer`], then [`Cache::warm`] (background), [`Cache::warm_and_wait`], or [`Cache::warm_on_startup`] (`CACHE_WARM_ON_STARTUP`); progress in [`Health::warming`] |
//! | manage it over HTTP: health, metrics, analytics, clear, warm, a dashboard | [`http::management_router`] (feature `axum`), [`http::prometheus_route`] for the app's `GET /metrics` |
//! | serve the axum app without letting slow or idle clients hold it | [`http::serve`] with [`http::ServeOptions`] (`CACHE_HTTP_*`): header, body and request timeouts, a connection bound, a shutdown deadline |
//!
//! ## Features
//!
//! No feature is on by default: the cache itself (the memory store, `#[cached_query]`, the
//! [`Cache`] API) needs none. Turn on the integrations the application uses; the README's
//! feature table gives the number of crates each one brings.
//!
//! | feature | what it adds |
//! | --- | --- |
//! | `sea-orm` | [`orm::sea_orm`]: SeaORM 2.0 connection wrapper, `models = [Entity]` |
//! | `diesel` | [`orm::diesel`]: Diesel 2.3 and 2.4 instrumentation, `models = [table]` |
//! | `diesel-async` | the same for diesel-async 0.9 and 0.10 connections |
//! | `axum` | [`http`]: whole-response caching with deep ETags, conditional GETs, the JSON envelope, the management router with its dashboard, the Prometheus route, [`http::serve`] (hyper's HTTP/1 server, with timeouts); includes `prometheus` |
//! | `redis` | the Redis and tiered stores, selected by `REDIS_URL` (redis-rs 1.x, TLS with rustls), Redis Cluster |
//! | `rustls-aws-lc-rs`, `rustls-ring` | the rustls crypto provider installed for `rediss://` (and a change feed's `sslmode=require`) when the application installed none; without either, a `rediss://` URL needs the application's own provider, and is a configuration error otherwise |
//! | `prometheus` | [`Cache::prometheus_text`] and [`Cache::register_metrics`]: the statistics in the OpenMetrics text format, through prometheus-client 0.26 |
//! | `metrics` | [`Cache::record_metrics`], [`Cache::spawn_metrics_reporter`], [`stats::describe_metrics`]: the statistics through the `metrics` facade (metrics 0.24) |
//! | `opentelemetry` | [`Cache::register_otel`]: observable OpenTelemetry instruments (opentelemetry 0.33, the API only) |
//! | `feed-postgres` | [`feed`]: PostgreSQL change feeds, logical replication (pgwire-replication) and triggers + `NOTIFY` (sqlx) |
//! | `feed-sqlite` | [`feed`]: the SQLite `data_version` feed (sqlx) |
//! | `test-util` | [`testing`]: a [`ManualClock`](testing::ManualClock) a test advances to expire entries, serve them stale, pass a fail-safe throttle — without sleeping (a dev-dependency feature) |
//!
//! ## Guarantees, and their limits
//!
//! * A read that starts after a write through the ORM has returned (for a transaction: after
//!   its COMMIT returned) never gets data from before the write.
//! * A value computed while a write committed is never served after that write.
//! * With a change feed ([`feed`]), a write the app never sent is seen within the feed's
//!   measured bound; when the feed cannot prove it missed nothing it invalidates every model
//!   tag.
//! * Cache trouble never fails the caller: an unusable entry is a miss, an unserializable
//!   value is returned uncached, and both are counted in [`stats::CacheStats::errors`]. A Redis that
//!   is down or stalled costs a caller at most one command timeout: a circuit breaker then
//!   serves from process memory, and invalidations made meanwhile are replayed to Redis
//!   before it is read again.
//! * Across instances sharing Redis, a write is seen by the others once its invalidation
//!   message arrives (sub-millisecond on one host; the README gives the measured figures).
//! * Expiry may be softened (stale-while-revalidate, fail-safe, soft timeouts), invalidation
//!   never: a value whose tags moved is not served, stale or not.
//! * With Redis, a missing key is computed once across instances: the first takes a lease,
//!   the others wait for its value — at most the lease's TTL, so a holder that died holds
//!   nobody up for longer.
//! * Not seen: writes by other processes, database triggers, or connections that were not
//!   wrapped (SeaORM) or instrumented (Diesel). Declare such dependencies with `tags`, or
//!   invalidate them yourself.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
// docs.rs builds with every feature (see `[package.metadata.docs.rs]`) and says which
// feature each gated item needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

#[cfg(fuzzing)]
#[doc(hidden)]
pub use test_support::fuzz as __fuzz;
#[doc(hidden)]
pub mod __private;
pub mod analytics;
mod cache;
mod clock;
pub mod config;
mod error;
mod events;
pub mod feed;
mod health;
#[cfg(feature = "axum")]
pub mod http;
mod key;
pub mod orm;
mod runtime;
mod scopes;
pub mod stats;
mod store;
mod stripes;
pub mod tags;
#[cfg(any(test, fuzzing))]
mod test_support;
#[cfg(feature = "test-util")]
pub mod testing;
#[cfg(any(feature = "redis", feature = "feed-postgres", feature = "feed-mysql"))]
mod tls;
pub mod warm;

pub use cache::{
    Cache, CacheValue, DEFAULT_NAMESPACE, EntryOptions, FetchError, Fetched, TimedOut,
};
pub use cache::{bypass, bypass_sync, global, install};
pub use config::CacheConfig;
pub use error::Error;
pub use events::{INVALIDATION_EVENTS_CAPACITY, InvalidationEvent, InvalidationEvents, Received};
pub use health::Health;
pub use key::{Key, MAX_KEY_LEN};
pub use tags::{CacheModel, Tag};

// The macros: their options and examples live with them, in `querycache-macros`, where the
// examples are compiled and run.
#[doc(inline)]
pub use querycache_macros::{cache_count_query, cache_model_query, cache_skip, cached_query};
// The derive and the trait share the name `CacheModel`: one `use` brings both.
pub use querycache_macros::CacheModel;
