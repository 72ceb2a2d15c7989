//! One request through a cached route: the 304 decided from the tags' fingerprint, or the
//! entry, or the handler.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, MatchedPath, OriginalUri, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, Method, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use tower::Service;

use super::Settings;
use super::stored::{self, Capture, Reason, StoredResponse};
use super::template::FillError;
use crate::http::conditional::{self, Policy};
use crate::http::etag::{self, IfNoneMatch};
use crate::http::headers::{Outcome, mark, not_modified, vary_names};
use crate::http::{ApiError, body};
use crate::{EntryOptions, Key, Tag};

/// The service [`CacheResponseLayer`](super::CacheResponseLayer) wraps a route in.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use querycache::{Cache, http::cache_api_response};
///
/// let layer = cache_api_response(&Cache::new(), Duration::from_secs(60), ["model:songs"]).unwrap();
/// let app: Router = Router::new().route("/songs", get(|| async { "[]" })).route_layer(layer);
/// ```
#[derive(Clone)]
pub struct CacheResponseService<S> {
    pub(super) inner: S,
    pub(super) settings: Arc<Settings>,
}

impl<S> std::fmt::Debug for CacheResponseService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheResponseService")
            .field("namespace", &self.settings.namespace)
            .finish_non_exhaustive()
    }
}

impl<S> Service<Request> for CacheResponseService<S>
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

    fn call(&mut self, request: Request) -> Self::Future {
        // The ready service answers this request; the clone waits for the next one.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let settings = Arc::clone(&self.settings);
        Box::pin(async move { Ok(serve(settings, inner, request).await) })
    }
}

async fn serve<S>(settings: Arc<Settings>, mut inner: S, request: Request) -> Response
where
    S: Service<Request, Error = Infallible> + Send,
    S::Response: IntoResponse,
    S::Future: Send,
{
    let method = request.method().clone();
    if method != Method::GET && method != Method::HEAD {
        return inner.call(request).await.into_response();
    }
    let started = Instant::now();
    let head = method == Method::HEAD;
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let vary = vary_names(&settings.vary, &parts.headers);
    let condition = IfNoneMatch::from_headers(&parts.headers);
    // HEAD is answered from the GET's entry (or the GET's handler, without its body).
    parts.method = Method::GET;
    let log = |key: &str, outcome: Outcome, status: u16| {
        tracing::debug!(
            key,
            outcome = outcome.as_str(),
            hit = outcome != Outcome::Miss,
            status,
            latency_us = started.elapsed().as_micros() as u64,
            "HTTP cache {}: {method} {path}",
            outcome.as_str()
        );
    };

    if !settings.cache.config().enabled() {
        // No caching; conditional GETs still answered, from a hash of the body.
        let response = inner
            .call(Request::from_parts(parts, body))
            .await
            .into_response();
        let policy = Policy {
            cache_control: &settings.cache_control,
            override_cache_control: true,
            vary: &vary,
            max_body_bytes: settings.max_body_bytes,
        };
        let (mut response, not_modified) =
            conditional::finish(response, condition.as_ref(), head, &policy).await;
        mark(&mut response, false);
        let outcome = if not_modified {
            Outcome::NotModified
        } else {
            Outcome::Miss
        };
        log("(cache disabled)", outcome, response.status().as_u16());
        return response;
    }

    let tags = match settings.tags(&mut parts).await {
        Ok(tags) => tags,
        // A configuration error: said loudly (ApiError::internal logs it), on every request.
        Err(message) => return ApiError::internal(message).into_response(),
    };
    let key = match settings.key(&parts) {
        Ok(key) => key,
        Err(error) => {
            tracing::warn!(%error, path, "cannot key this request; answered without the cache");
            let mut response = inner
                .call(Request::from_parts(parts, body))
                .await
                .into_response();
            if head {
                response = body::strip_for_head(response);
            }
            mark(&mut response, false);
            return response;
        }
    };
    let mut options = EntryOptions::new()
        .tags(tags)
        .namespace(&*settings.namespace);
    if let Some(ttl) = settings.ttl {
        options = options.ttl(ttl);
    }

    // A deep ETag is checked against the tags' current versions: no handler, no entry.
    let mut current_etag = None;
    if let Some(condition) = &condition
        && condition.may_be_deep()
        && let Some(fingerprint) = settings.cache.entry_fingerprint(&options).await
    {
        let etag = etag::deep(key.as_str(), fingerprint);
        current_etag = Some(etag.clone());
        if condition.matches(&etag) {
            let mut response = not_modified(etag, &settings.cache_control, &vary);
            mark(&mut response, true);
            log(key.as_str(), Outcome::NotModified, 304);
            return response;
        }
    }

    let keyed: Vec<HeaderName> = settings
        .vary
        .iter()
        .cloned()
        .chain([header::AUTHORIZATION])
        .collect();
    let rules = stored::Rules {
        cache_errors: settings.cache_errors,
        keyed: &keyed,
        max_body_bytes: settings.max_body_bytes,
    };
    let mut request = Some(Request::from_parts(parts, body));
    let lookup = EntryLookup {
        settings: &settings,
        key: &key,
        options: &options,
        rules: &rules,
    };
    let (mut result, mut hit) = lookup.run(&mut inner, &mut request).await;
    // With a conditional GET the current ETag is known. An entry that disagrees with it
    // predates a write (on a tiered cache: another instance's, whose message has not
    // arrived yet): it is dropped and the answer recomputed, never served.
    if let (Ok(stored), true, Some(current)) = (&result, hit, &current_etag)
        && stored.is_success()
        && stored.etag().as_ref() != Some(current)
    {
        tracing::debug!(key = %key, "entry older than its tags' versions; recomputed");
        settings.cache.delete(key.as_str()).await;
        (result, hit) = lookup.run(&mut inner, &mut request).await;
    }
    match result {
        Ok(stored) => {
            if let (Some(condition), Some(etag), true) =
                (&condition, stored.etag(), stored.is_success())
                && condition.matches(&etag)
            {
                let mut response = not_modified(etag, &settings.cache_control, &vary);
                mark(&mut response, hit);
                log(key.as_str(), Outcome::NotModified, 304);
                return response;
            }
            let mut response = stored.respond(head, &settings.cache_control, &vary);
            mark(&mut response, hit);
            let outcome = if hit { Outcome::Hit } else { Outcome::Miss };
            log(key.as_str(), outcome, stored.status());
            response
        }
        Err((mut response, reason)) => {
            tracing::debug!(key = %key, reason = reason.0, "HTTP answer not cached");
            if head {
                response = body::strip_for_head(response);
            }
            mark(&mut response, false);
            log(key.as_str(), Outcome::Miss, response.status().as_u16());
            response
        }
    }
}

/// One look for the entry of a request, computing it with the handler on a miss.
struct EntryLookup<'a> {
    settings: &'a Settings,
    key: &'a Key,
    options: &'a EntryOptions,
    rules: &'a stored::Rules<'a>,
}

type Looked = Result<Arc<StoredResponse>, (Response, Reason)>;

impl EntryLookup<'_> {
    /// The entry, or the handler's answer (stored when it may be). Returns whether it was
    /// a hit: the handler did not run. The handler takes `request` out of its slot, so a
    /// hit leaves it there for another try.
    async fn run<S>(&self, inner: &mut S, request: &mut Option<Request>) -> (Looked, bool)
    where
        S: Service<Request, Error = Infallible> + Send,
        S::Response: IntoResponse,
        S::Future: Send,
    {
        let ran = AtomicBool::new(false);
        let error_ttl = self.settings.cache.config().error_ttl();
        let (ran_flag, key, options, rules, cache) = (
            &ran,
            self.key,
            self.options,
            self.rules,
            &self.settings.cache,
        );
        let result = cache
            .compute_with(
                key.as_str(),
                options.clone(),
                move || async move {
                    ran_flag.store(true, Ordering::Relaxed);
                    let Some(request) = request.take() else {
                        let error = ApiError::internal("the request was already answered");
                        return Err((error.into_response(), Reason("internal")));
                    };
                    // The versions of the snapshot taken *before* the handler runs: the
                    // answer reflects at least every write that bumped them, and any later
                    // write moves them, so this ETag never validates older data (see the
                    // `http` module docs).
                    let fingerprint = cache.computation_fingerprint();
                    let response = inner.call(request).await.into_response();
                    let etag = fingerprint.map(|f| etag::deep(key.as_str(), f));
                    match stored::capture(response, rules, etag).await {
                        Capture::Stored(stored) => Ok(stored),
                        Capture::Uncached(response, reason) => Err((response, reason)),
                    }
                },
                |stored: &StoredResponse, ttl: Duration| {
                    if stored.is_success() {
                        ttl
                    } else {
                        ttl.min(error_ttl)
                    }
                },
            )
            .await;
        (result, !ran.load(Ordering::Relaxed))
    }
}

impl Settings {
    /// The request's tags: the templates filled from the route's path parameters.
    ///
    /// # Errors
    /// What is misconfigured, when a template names a parameter the route does not have
    /// (or the layer is not on a route: `Router::route_layer`, not `Router::layer`).
    async fn tags(&self, parts: &mut Parts) -> Result<Vec<Tag>, String> {
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map_or("?", MatchedPath::as_str)
            .to_owned();
        let needs_params = self.templates.iter().any(|t| t.params().next().is_some());
        let params = if needs_params {
            Some(
                RawPathParams::from_request_parts(parts, &())
                    .await
                    .map_err(|rejection| {
                        format!(
                            "CacheResponse: the tag templates need path parameters, but route {route} has none to give ({rejection}); \
                             add the layer with Router::route_layer on a route with `{{param}}` segments"
                        )
                    })?,
            )
        } else {
            None
        };
        let lookup = |name: &str| {
            params
                .as_ref()?
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, value)| value)
        };
        let mut tags = Vec::with_capacity(self.templates.len());
        for template in &self.templates {
            match template.fill(lookup) {
                Ok(filled) => tags.extend(filled),
                Err(FillError::MissingParam(name)) => {
                    let known: Vec<&str> = params
                        .iter()
                        .flat_map(|p| p.iter().map(|(n, _)| n))
                        .collect();
                    return Err(format!(
                        "CacheResponse: tag template {:?} names path parameter `{name}`, which route {route} does not have (it has: {})",
                        template.source(),
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        },
                    ));
                }
                Err(FillError::Invalid(error)) => {
                    return Err(format!(
                        "CacheResponse: tag template {:?} on route {route}: {error}",
                        template.source()
                    ));
                }
            }
        }
        Ok(tags)
    }

    /// The entry's key: `<namespace>:<path>:<hash>`, the hash covering the query string,
    /// the values of the `Vary` headers and the `Authorization` header. The method is not
    /// part of it: GET and HEAD share the entry.
    fn key(&self, parts: &Parts) -> Result<Key, crate::Error> {
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |original| &original.0);
        let vary: Vec<Vec<&[u8]>> = self
            .vary
            .iter()
            .map(|name| {
                parts
                    .headers
                    .get_all(name)
                    .iter()
                    .map(|v| v.as_bytes())
                    .collect()
            })
            .collect();
        // Hashed: the credentials themselves are never kept in a key.
        let authorization = {
            let mut values = parts
                .headers
                .get_all(header::AUTHORIZATION)
                .iter()
                .peekable();
            values.peek().is_some().then(|| {
                let mut hasher = xxhash_rust::xxh3::Xxh3::new();
                for value in values {
                    hasher.update(value.as_bytes());
                    hasher.update(b"\n");
                }
                format!("{:032x}", hasher.digest128())
            })
        };
        Key::for_args(
            &format!("{}:{}", self.namespace, uri.path()),
            &(uri.query(), vary, authorization),
        )
    }
}
