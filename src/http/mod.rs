//! HTTP support for axum (feature `axum`): whole-response caching with deep ETags,
//! conditional GETs, and the management router.
//!
//! | you want to | look at |
//! | --- | --- |
//! | the JSON shape every endpoint answers with | [`ApiResponse`], [`ApiError`] |
//! | health, metrics, analytics, clear, warm and a dashboard under one prefix | [`management_router`], [`ManagementOptions`] |
//! | a Prometheus scrape endpoint (`GET /metrics`) | [`prometheus_route`] |
//! | protect the admin routes | [`ManagementOptions::admin_token`], [`ManagementOptions::from_env`] (`CACHE_ADMIN_TOKEN`) |
//! | watch the cache in a browser | `GET <prefix>/dashboard` of the [`management_router`] |
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
mod clear;
mod dashboard;
mod envelope;
mod extract;
mod management;
mod prometheus;
mod status;
mod warm;

pub use envelope::{ApiError, ApiResponse};
pub use management::{ManagementOptions, management_router};
pub use prometheus::prometheus_route;
