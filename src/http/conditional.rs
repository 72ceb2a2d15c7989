//! [`ConditionalGet`]: body-hash ETags and `304 Not Modified` for any GET route.

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderName, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use tower::{Layer, Service};

use super::body::{self, Collected};
use super::etag::{self, IfNoneMatch};
use super::headers::{merge_vary, not_modified, vary_names};
use super::{ApiError, CacheControl};

/// Default largest body hashed for an ETag: 4 MiB.
pub(crate) const DEFAULT_MAX_BODY_BYTES: usize = 4 << 20;

/// A layer that gives GET answers a strong ETag and answers a matching `If-None-Match`
/// with `304 Not Modified` — for routes whose answers are *not* cached.
///
/// The ETag is the xxh3-128 hash of the body (`"<32 hex digits>"`), set on `200` answers
/// that have none; an ETag the handler set is kept and compared instead. The handler
/// still runs for every request, 304 or not: this saves bandwidth, not work. For work,
/// cache the route with [`CacheResponse`](super::CacheResponse), whose deep ETags are
/// checked *without* running the handler.
///
/// Also sets `Cache-Control` (unless the handler set one; default `no-cache`: the client
/// keeps its copy and revalidates it each time) and `Vary` (the configured headers, plus
/// `Authorization` when the request had one). HEAD requests run the route's GET handler
/// and are answered without the body; other methods pass through untouched. Bodies of
/// unknown length (streams, server-sent events) or over
/// [`max_body_bytes`](Self::max_body_bytes) are passed on unread, without an ETag.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use axum::{Router, body::Body, http::{Request, StatusCode, header}, routing::get};
/// use querycache::http::{CacheControl, ConditionalGet};
/// use tower::ServiceExt;
///
/// let app = Router::new()
///     .route("/admin/stats", get(|| async { "42 songs" }))
///     .layer(ConditionalGet::new().cache_control(CacheControl::no_store()));
///
/// let first = app.clone().oneshot(Request::get("/admin/stats").body(Body::empty()).unwrap()).await.unwrap();
/// assert_eq!(first.headers()[header::CACHE_CONTROL], "no-store");
/// let etag = first.headers()[header::ETAG].clone();
///
/// let again = Request::get("/admin/stats").header(header::IF_NONE_MATCH, etag).body(Body::empty()).unwrap();
/// let again = app.oneshot(again).await.unwrap();
/// assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ConditionalGet {
    cache_control: CacheControl,
    vary: Vec<HeaderName>,
    max_body_bytes: usize,
}

impl Default for ConditionalGet {
    fn default() -> Self {
        Self::new()
    }
}

impl ConditionalGet {
    /// `Cache-Control: no-cache`, no `Vary` of its own, bodies up to 4 MiB.
    pub fn new() -> Self {
        ConditionalGet {
            cache_control: CacheControl::no_cache(),
            vary: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// The `Cache-Control` of answers whose handler set none: `no_store()` for admin
    /// routes, `private_max_age(n)` for API JSON.
    ///
    /// ```
    /// use querycache::http::{CacheControl, ConditionalGet};
    ///
    /// let layer = ConditionalGet::new().cache_control(CacheControl::private_max_age(30));
    /// # let _ = layer;
    /// ```
    pub fn cache_control(mut self, cache_control: CacheControl) -> Self {
        self.cache_control = cache_control;
        self
    }

    /// Request headers the answers depend on, added to `Vary`.
    ///
    /// ```
    /// use axum::http::header;
    /// use querycache::http::ConditionalGet;
    ///
    /// let layer = ConditionalGet::new().vary([header::ACCEPT_LANGUAGE]);
    /// # let _ = layer;
    /// ```
    pub fn vary(mut self, names: impl IntoIterator<Item = HeaderName>) -> Self {
        self.vary.extend(names);
        self
    }

    /// The largest body hashed (default 4 MiB); larger ones go out without an ETag.
    ///
    /// ```
    /// let layer = querycache::http::ConditionalGet::new().max_body_bytes(1 << 20);
    /// # let _ = layer;
    /// ```
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }
}

impl<S> Layer<S> for ConditionalGet {
    type Service = ConditionalGetService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConditionalGetService {
            inner,
            settings: self.clone(),
        }
    }
}

/// The service [`ConditionalGet`] wraps a route in.
///
/// ```
/// use axum::{Router, routing::get};
/// use querycache::http::ConditionalGet;
///
/// let app: Router = Router::new().route("/", get(|| async { "hi" })).layer(ConditionalGet::new());
/// ```
#[derive(Debug, Clone)]
pub struct ConditionalGetService<S> {
    inner: S,
    settings: ConditionalGet,
}

impl<S> Service<Request> for ConditionalGetService<S>
where
    S: Service<Request, Error = Infallible> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // The ready service answers this request; the clone waits for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let settings = self.settings.clone();
        Box::pin(async move {
            let method = request.method().clone();
            if method != Method::GET && method != Method::HEAD {
                return Ok(inner.call(request).await.into_response());
            }
            let started = Instant::now();
            let condition = IfNoneMatch::from_headers(request.headers());
            let vary = vary_names(&settings.vary, request.headers());
            let path = request.uri().path().to_owned();
            // HEAD runs the GET handler: the ETag is that of the GET's body.
            *request.method_mut() = Method::GET;
            let response = inner.call(request).await.into_response();
            let policy = Policy {
                cache_control: &settings.cache_control,
                override_cache_control: false,
                vary: &vary,
                max_body_bytes: settings.max_body_bytes,
            };
            let (response, not_modified) = finish(
                response,
                condition.as_ref(),
                method == Method::HEAD,
                &policy,
            )
            .await;
            tracing::debug!(
                path,
                status = response.status().as_u16(),
                not_modified,
                latency_us = started.elapsed().as_micros() as u64,
                "conditional GET: {}",
                if not_modified { "304" } else { "full answer" }
            );
            Ok(response)
        })
    }
}

/// How [`finish`] treats an answer.
pub(crate) struct Policy<'a> {
    pub(crate) cache_control: &'a CacheControl,
    /// Replace the handler's `Cache-Control` (cached routes own it) or only fill it in.
    pub(crate) override_cache_control: bool,
    pub(crate) vary: &'a [HeaderName],
    pub(crate) max_body_bytes: usize,
}

/// The conditional-GET treatment of a handler's answer: a body-hash ETag on a `200`
/// without one (small bodies of known length only), `304` when `condition` matches it,
/// `Cache-Control` and `Vary`; the body dropped for HEAD. Returns whether it is a 304.
pub(crate) async fn finish(
    response: Response,
    condition: Option<&IfNoneMatch>,
    head: bool,
    policy: &Policy<'_>,
) -> (Response, bool) {
    let mut response =
        if response.status() == StatusCode::OK && !response.headers().contains_key(header::ETAG) {
            match body::collect(response, policy.max_body_bytes).await {
                Ok(Collected::Bytes(mut parts, bytes)) => {
                    parts.headers.insert(header::ETAG, etag::body_hash(&bytes));
                    Response::from_parts(parts, axum::body::Body::from(bytes))
                }
                Ok(Collected::Skipped(response)) => response,
                Err(error) => return (ApiError::internal(error).into_response(), false),
            }
        } else {
            response
        };
    let headers = response.headers_mut();
    if policy.override_cache_control || !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, policy.cache_control.header_value());
    }
    merge_vary(headers, policy.vary);
    let etag = response.headers().get(header::ETAG).cloned();
    if let (Some(condition), Some(etag), true) = (condition, etag, response.status().is_success())
        && condition.matches(&etag)
    {
        // The 304 carries the answer's own Cache-Control and Vary (the handler's, merged).
        let mut not_modified = not_modified(etag, policy.cache_control, &[]);
        for name in [header::CACHE_CONTROL, header::VARY] {
            not_modified.headers_mut().remove(&name);
            for value in response.headers().get_all(&name) {
                not_modified.headers_mut().append(&name, value.clone());
            }
        }
        return (not_modified, true);
    }
    if head {
        response = body::strip_for_head(response);
    }
    (response, false)
}
