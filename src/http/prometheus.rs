//! The Prometheus scrape route, for an application's top-level `GET /metrics`.

use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};

use crate::{Cache, stats::OPENMETRICS_CONTENT_TYPE};

/// A `GET` route answering with `cache`'s metrics in the OpenMetrics text format
/// ([`Cache::prometheus_text`], content type [`OPENMETRICS_CONTENT_TYPE`], which Prometheus
/// scrapes natively), for an application's `GET /metrics`. No token: like most scrape
/// endpoints, it is meant for the internal network.
///
/// It needs no state, so it fits in a router of any state type.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use axum::{Router, body::Body, http::Request};
/// use querycache::{Cache, http::prometheus_route};
/// use tower::ServiceExt;
///
/// let cache = Cache::new();
/// let _ = cache.get::<u8>("nothing").await;
/// let app: Router = Router::new().route("/metrics", prometheus_route(cache));
///
/// let request = Request::get("/metrics").body(Body::empty()).unwrap();
/// let response = app.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), 200);
/// assert_eq!(response.headers()["content-type"], querycache::stats::OPENMETRICS_CONTENT_TYPE);
/// let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
/// let text = String::from_utf8(body.to_vec()).unwrap();
/// assert!(text.contains("querycache_misses_total"));
/// assert!(text.ends_with("# EOF\n"));
/// # }
/// ```
pub fn prometheus_route<S>(cache: Cache) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    get(move || {
        let cache = cache.clone();
        async move { scrape(&cache) }
    })
}

fn scrape(cache: &Cache) -> Response {
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        cache.prometheus_text(),
    )
        .into_response()
}
