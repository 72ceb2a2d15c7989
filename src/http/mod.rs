//! HTTP support for axum (feature `axum`): whole-response caching with deep ETags,
//! conditional GETs, and the JSON envelope of every answer.
//!
//! | you want to | look at |
//! | --- | --- |
//! | the JSON shape every endpoint answers with | [`ApiResponse`], [`ApiError`] |
//! | rejections of axum's `Json`, `Path` and `Query` in that shape | take `Result<Json<T>, JsonRejection>` (and the like) and `?` it: [`ApiError`] converts each rejection |
//! | cache a GET route's whole answer, invalidated by tags, with `X-Cache` | [`CacheResponse`] (builder), [`cache_api_response`], [`cache_row_response`] |
//! | answer `If-None-Match` with `304` *without running the handler* | the deep ETags of [`CacheResponse`] |
//! | ETags and `304` for a route that is not cached (admin, dashboards) | [`ConditionalGet`] |
//! | set `Cache-Control` | [`CacheControl`] |
//! | know whether a set of tags moved, for an ETag of your own | [`Cache::tag_fingerprint`](crate::Cache::tag_fingerprint) |
//! | health, metrics, analytics, clear, warm and a dashboard under one prefix | [`management_router`], [`ManagementOptions`] |
//! | a Prometheus scrape endpoint (`GET /metrics`) | [`prometheus_route`] |
//! | protect the admin routes | [`ManagementOptions::admin_token`], [`ManagementOptions::from_env`] (`CACHE_ADMIN_TOKEN`) |
//! | watch the cache in a browser | `GET <prefix>/dashboard` of the [`management_router`] |
//! | tell browsers what was invalidated, live | `GET <prefix>/events` (Server-Sent Events) of the [`management_router`], filtered by [`TagFilter`]; in process, [`Cache::invalidation_events`](crate::Cache::invalidation_events) |
//! | cache in the browser | `GET <prefix>/client.js` of the [`management_router`] (`clients/js`), and [`CacheResponse::tags_header`] |
//! | serve a router safely: header, body and request timeouts, a bound on connections, a deadline on graceful shutdown | [`serve`], [`ServeOptions`] (`CACHE_HTTP_*`) |
//!
//! # Deep ETags, in one example
//!
//! Body-hash ETags (what most frameworks offer, and [`ConditionalGet`] here) spare the
//! bandwidth of a `304`, but the handler — and its queries — still run to compute the body
//! being hashed. The ETag of a cached route is instead derived from the *versions of the
//! tags* the answer depends on: checking it costs one memory lookup (one Redis round trip
//! on a Redis-backed cache) and no query at all. It changes when, and only when, one of the
//! tags is invalidated — by a write through the ORM, [`Cache::invalidate_tags`](crate::Cache::invalidate_tags)
//! or a [`clear`](crate::Cache::clear) — and instances sharing Redis agree on it.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::time::Duration;
//! use axum::{Router, body::Body, http::{Request, StatusCode, header}, routing::get};
//! use querycache::{Cache, Tag, http::{ApiResponse, cache_api_response}};
//! use tower::ServiceExt;
//!
//! let cache = Cache::new();
//! let queries = Arc::new(AtomicUsize::new(0));
//! let counter = queries.clone();
//! let app = Router::new()
//!     .route("/songs/count", get(move || async move {
//!         counter.fetch_add(1, Ordering::SeqCst); // the "query"
//!         ApiResponse::new(42)
//!     }))
//!     .route_layer(cache_api_response(&cache, Duration::from_secs(60), ["model:songs"])?);
//! let request = |etag: &str| {
//!     Request::get("/songs/count").header(header::IF_NONE_MATCH, etag).body(Body::empty()).unwrap()
//! };
//!
//! let first = app.clone().oneshot(request("\"none\"")).await?;
//! assert_eq!(first.headers()["x-cache"], "MISS");
//! let etag = first.headers()[header::ETAG].to_str()?.to_owned();
//!
//! let again = app.clone().oneshot(request(&etag)).await?;
//! assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
//! assert_eq!(queries.load(Ordering::SeqCst), 1, "the 304 ran no query");
//!
//! cache.invalidate_tags([Tag::model("songs")]).await; // a song was written
//! let after = app.oneshot(request(&etag)).await?;
//! assert_eq!(after.status(), StatusCode::OK);
//! assert_eq!(queries.load(Ordering::SeqCst), 2);
//! # Ok(()) }
//! ```
//!
//! # How a request is answered
//!
//! 1. Not GET or HEAD: passed through.
//! 2. The route's tags are filled from its path parameters (`model:songs:{id}` →
//!    `model:songs:7`) and the key is built: namespace, path, query string, and an
//!    HMAC-SHA256 of the `Vary` headers' values and `Authorization`, keyed with the key
//!    secret (`CACHE_KEY_SECRET`, [`CacheConfigBuilder::key_secret`](crate::config::CacheConfigBuilder::key_secret)):
//!    a key does not let anyone who sees it test guesses of a password offline.
//! 3. `If-None-Match` with a deep ETag (`"qc-…"`): the fingerprint of the tags' current
//!    versions is read (one memory lookup, or one Redis round trip) and the ETag derived
//!    from it. A match is answered `304 Not Modified` — no handler, no entry read.
//! 4. Otherwise the entry is served (`X-Cache: HIT`) or the handler runs, once per key at a
//!    time (`X-Cache: MISS`), and its answer is stored under the tags' versions.
//! 5. With [`swr`](CacheResponse::swr), [`fail_safe`](CacheResponse::fail_safe) or a
//!    [`soft_timeout`](CacheResponse::soft_timeout), an entry past its TTL — never one whose
//!    tags were invalidated — may still be served, marked `X-Cache: STALE`: within the swr
//!    window (the handler refreshes it in the background), while the handler fails with a
//!    5xx, or while it is slower than the soft timeout.
//!
//! Every answer also carries an RFC 9211 `Cache-Status`: `querycache; hit` (a hit, or a 304
//! decided without the handler), `querycache; hit; fwd=stale` (`STALE`),
//! `querycache; fwd=miss; stored` (the handler ran and its answer was stored),
//! `querycache; fwd=miss` (the handler ran; its answer is not cacheable) or
//! `querycache; fwd=bypass` (the cache is disabled, or the request cannot be keyed).
//!
//! # Why a deep ETag never validates old data
//!
//! An ORM write bumps its tags *after* its transaction commits. The ETag of a computed
//! answer is derived from the snapshot of tag versions taken *before* the handler runs (the
//! one every entry is stored under, so no second read), so the answer reflects at least
//! every write whose bump the snapshot saw; a write that lands later — even while the
//! handler runs — moves the versions, so the ETag stops matching. Read after the handler
//! instead, a racing write could give old data a new ETag, and a client holding it would be
//! told "not modified" for as long as the tags stay still. The entry itself is guarded as
//! every entry is: it is stored only if that snapshot is still current when it is put — so a
//! stored ETag always describes the versions its body was computed under.
//!
//! # Limits
//!
//! * **Tags are declared per route**, not collected from the queries the handler runs. A
//!   route that reads a table its tags do not name keeps serving (and validating) answers
//!   after that table is written, until the TTL ends. Name every table the answer depends
//!   on (`model:<table>` for lists and counts, `model:<table>:{id}` and `model:<table>#bulk`
//!   for one row, as [`cache_row_response`] does).
//! * The key covers path, query, the configured `Vary` headers and `Authorization`, nothing
//!   else: an answer that depends on a cookie (a session), on `Host` or on `Accept` must
//!   name that header in [`vary`](CacheResponse::vary), or it is shared across its values.
//! * Only the `Vary` values and `Authorization` are hashed with the key secret; the path is
//!   readable in the key and the query string is hashed without a secret (so that answers
//!   to anonymous requests are shared by instances whatever their secrets). A credential
//!   sent in a query string (`?api_key=…`) is therefore as guessable from a key as the old
//!   unkeyed hashes were: send credentials in a header, and name it in `vary` unless it is
//!   `Authorization`. Keys are shown only to the admin token (`GET <management>/analytics`).
//! * A deep ETag says the *data* has not changed, not the code: a release that renders the
//!   same data differently should change the [`namespace`](CacheResponse::namespace)
//!   (`"http:v2"`), or clients keep their old copies until the data moves.
//! * Under `CACHE_INVALIDATION_STRATEGY=ttl` nothing is invalidated, so there are no deep
//!   ETags: answers carry a hash of their body, and a conditional GET is answered 304 from
//!   the entry while it lives.
//!
//! # The management routes
//!
//! Nest [`management_router`] where the application wants it (the example app uses
//! `/api/v1/cache`):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use axum::{Router, body::Body, http::Request};
//! use querycache::{Cache, EntryOptions, Tag};
//! use querycache::http::{ManagementOptions, management_router};
//! use tower::ServiceExt;
//!
//! let cache = Cache::new();
//! let options = EntryOptions::new().tag(Tag::new("user:1").unwrap());
//! cache.set("user:1:profile", "Ada".to_string(), options).await.unwrap();
//!
//! let app = Router::new().nest(
//!     "/api/v1/cache",
//!     management_router(cache.clone(), ManagementOptions::new().admin_token("s3cret")),
//! );
//!
//! // An admin clears a tag: the entry depending on it is a miss from now on.
//! let request = Request::post("/api/v1/cache/clear")
//!     .header("authorization", "Bearer s3cret")
//!     .header("content-type", "application/json")
//!     .body(Body::from(r#"{"tags": ["user:1"]}"#))
//!     .unwrap();
//! let response = app.clone().oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! assert!(cache.get::<String>("user:1:profile").await.is_none());
//!
//! // Metrics are public, and count that miss.
//! let request = Request::get("/api/v1/cache/metrics").body(Body::empty()).unwrap();
//! let response = app.oneshot(request).await.unwrap();
//! let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
//! let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
//! assert_eq!(body["status"], "success");
//! assert_eq!(body["data"]["misses"], 1);
//! # }
//! ```
//!
//! Errors are always the envelope: an unknown field in a body, for instance,
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! # use axum::{body::Body, http::Request};
//! # use querycache::{Cache, http::{ManagementOptions, management_router}};
//! # use tower::ServiceExt;
//! let app = management_router(Cache::new(), ManagementOptions::new().admin_token("s3cret"));
//! let request = Request::post("/clear")
//!     .header("authorization", "Bearer s3cret")
//!     .header("content-type", "application/json")
//!     .body(Body::from(r#"{"everything": true}"#))
//!     .unwrap();
//! let response = app.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 400);
//! let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
//! let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
//! assert_eq!(body["error"]["code"], "invalid_body");
//! assert!(body["error"]["message"].as_str().unwrap().contains("everything"));
//! # }
//! ```

mod auth;
mod body;
mod cache_control;
mod clear;
mod client_js;
mod conditional;
mod dashboard;
mod envelope;
mod etag;
mod events;
mod headers;
mod management;
mod prometheus;
mod response_cache;
mod serve;
mod status;
mod tag_filter;
mod warm;

pub use cache_control::CacheControl;
pub use conditional::{ConditionalGet, ConditionalGetService};
pub use envelope::{ApiError, ApiResponse};
pub use management::{MIN_ADMIN_TOKEN_LEN, ManagementOptions, management_router};
pub use prometheus::prometheus_route;
pub use response_cache::{
    CacheResponse, CacheResponseLayer, CacheResponseService, cache_api_response, cache_row_response,
};
pub use serve::{ServeOptions, serve};
pub use tag_filter::TagFilter;
