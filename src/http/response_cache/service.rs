//! One request through a cached route: the 304 decided from the tags' fingerprint, or the
//! entry, or the handler.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{FromRequestParts, MatchedPath, OriginalUri, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use tower::Service;

use super::Settings;
use super::stored::{self, Capture, Origin, Reason, StoredResponse};
use super::template::FillError;
use crate::cache::Quick;
use crate::http::conditional::{self, Policy};
use crate::http::etag::{self, IfNoneMatch};
use crate::http::headers::{
    AnswerOutcome, MARK_HEADERS, Source, mark, not_modified_with, vary_names,
};
use crate::http::{ApiError, body};
use crate::{EntryOptions, FetchError, Key, Tag};

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
    S: Service<Request, Error = Infallible> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    let method = request.method().clone();
    if method != Method::GET && method != Method::HEAD {
        return inner.call(request).await.into_response();
    }
    let started = Instant::now();
    let head = method == Method::HEAD;
    let (mut parts, body) = request.into_parts();
    // A clone of the URI shares its bytes: the path, for the logs, costs no copy.
    let uri = parts.uri.clone();
    let path = uri.path();
    let condition = IfNoneMatch::from_headers(&parts.headers);
    // HEAD is answered from the GET's entry (or the GET's handler, without its body).
    parts.method = Method::GET;
    let log = |key: &str, outcome: AnswerOutcome, status: u16| {
        tracing::debug!(
            key,
            outcome = outcome.as_str(),
            hit = outcome != AnswerOutcome::Miss,
            status,
            latency_us = started.elapsed().as_micros() as u64,
            "HTTP cache {}: {method} {path}",
            outcome.as_str()
        );
    };

    if !settings.cache.config().enabled() {
        // No caching; conditional GETs still answered, from a hash of the body.
        let vary = vary_names(&settings.vary, &parts.headers);
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
        mark(&mut response, Source::Bypass);
        let outcome = if not_modified {
            AnswerOutcome::NotModified
        } else {
            AnswerOutcome::Miss
        };
        log("(cache disabled)", outcome, response.status().as_u16());
        return response;
    }

    // A path the handler will reject (see `CacheResponse::path`) never reaches the store.
    if let Some(check) = settings.path_check
        && !check(&mut parts).await
    {
        tracing::debug!(
            path = %crate::key::shown(path),
            "path parameters the handler rejects; answered without the cache"
        );
        return uncached(inner, parts, body, head).await;
    }
    let vary = settings.vary_value.for_request(&parts.headers).cloned();
    let key = settings.key(&parts);
    // A plain GET (or HEAD) whose answer is fresh in the memory tier: answered from it at
    // once — the first step of the full lookup below, which would find and count the same
    // hit, without first making the request's tags (which only a miss, an invalidation
    // check or a conditional GET needs). Not with early refresh, whose hit may start a
    // refresh: that one takes the full way.
    if let Ok(key) = &key
        && condition.is_none()
        && settings.fresh.early_refresh.is_none()
        && let Quick::Hit(stored) = settings
            .cache
            .memory_hit::<StoredResponse>(key.as_str(), &settings.options)
    {
        let mut response = stored.respond(
            head,
            &settings.cache_control,
            vary.as_ref(),
            MARK_HEADERS + 1,
        );
        mark(&mut response, Source::Hit);
        if settings.tags_header.is_some()
            && let Ok(tags) = settings.tags(&mut parts).await
        {
            add_tags_header(&mut response, settings.tags_header_value(&tags).as_ref());
        }
        log(key.as_str(), AnswerOutcome::Hit, stored.status());
        return response;
    }
    let tags = match settings.tags(&mut parts).await {
        Ok(tags) => tags,
        // A configuration error: said loudly (ApiError::internal logs it), on every request.
        Err(TagsError::Misconfigured(message)) => {
            return ApiError::internal(message).into_response();
        }
        // The request's own path makes no tag (`/songs/%0A`, `/songs/%FF`, a segment longer
        // than a tag may be): its handler judges it, uncached — typically a 400 from the
        // path extractor. Logged quietly: any client can send such paths.
        Err(TagsError::Unusable(reason)) => {
            tracing::debug!(
                reason,
                path,
                "cannot tag this request; answered without the cache"
            );
            return uncached(inner, parts, body, head).await;
        }
    };
    let key = match key {
        Ok(key) => key,
        Err(error) => {
            tracing::warn!(%error, path, "cannot key this request; answered without the cache");
            return uncached(inner, parts, body, head).await;
        }
    };
    let tags_header = settings.tags_header_value(&tags);
    let options = settings.options.clone().tags(tags);

    // A deep ETag is checked against the tags' current versions: no handler, no entry.
    let mut current_etag = None;
    if let Some(condition) = &condition
        && condition.may_be_deep()
        && let Some(fingerprint) = settings.cache.entry_fingerprint(&options).await
    {
        let etag = etag::deep(key.as_str(), fingerprint);
        current_etag = Some(etag.clone());
        if condition.matches(&etag) {
            let mut response = not_modified_with(
                etag,
                &settings.cache_control,
                vary.as_ref(),
                MARK_HEADERS + 1,
            );
            mark(&mut response, Source::Hit);
            add_tags_header(&mut response, tags_header.as_ref());
            log(key.as_str(), AnswerOutcome::NotModified, 304);
            return response;
        }
    }

    let lookup = EntryLookup {
        settings: Arc::clone(&settings),
        key: key.clone(),
        options,
        handler: Arc::new(Mutex::new(Handler {
            service: inner,
            ready: true,
            parts,
            body: Some(body),
        })),
    };
    let (mut result, mut source) = lookup.run().await;
    // With a conditional GET the current ETag is known. An entry that disagrees with it
    // predates a write (on a tiered cache: another instance's, whose message has not
    // arrived yet): it is dropped and the answer recomputed, never served — stale or not.
    // (An entry whose ETag includes observed reads cannot be checked so: its reads are
    // known only from the entry, which the store validated.)
    if let (Ok(stored), Source::Hit | Source::Stale, Some(current)) =
        (&result, source, &current_etag)
        && stored.is_success()
        && stored.etag().is_none_or(etag::is_declared_deep)
        && stored.etag() != Some(current)
    {
        tracing::debug!(key = %crate::key::shown(&key), "entry older than its tags' versions; recomputed");
        settings.cache.delete(key.as_str()).await;
        (result, source) = lookup.run().await;
    }
    match result {
        Ok(stored) => {
            if let (Some(condition), Some(etag), true) =
                (&condition, stored.etag(), stored.is_success())
                && condition.matches(etag)
            {
                let mut response = not_modified_with(
                    etag.clone(),
                    &settings.cache_control,
                    vary.as_ref(),
                    MARK_HEADERS + 1,
                );
                mark(&mut response, source);
                add_tags_header(&mut response, tags_header.as_ref());
                log(key.as_str(), AnswerOutcome::NotModified, 304);
                return response;
            }
            let mut response = stored.respond(
                head,
                &settings.cache_control,
                vary.as_ref(),
                MARK_HEADERS + 1,
            );
            mark(&mut response, source);
            add_tags_header(&mut response, tags_header.as_ref());
            log(key.as_str(), source.outcome(), stored.status());
            response
        }
        Err((mut response, reason)) => {
            tracing::debug!(key = %crate::key::shown(&key), reason = reason.0, "HTTP answer not cached");
            if head {
                response = body::strip_for_head(response);
            }
            mark(&mut response, source);
            log(
                key.as_str(),
                AnswerOutcome::Miss,
                response.status().as_u16(),
            );
            response
        }
    }
}

/// Adds `X-Cache-Tags: <value>` to an answer served through the cache (replacing any the
/// handler set).
fn add_tags_header(response: &mut Response, value: Option<&HeaderValue>) {
    if let Some(value) = value {
        response.headers_mut().insert(X_CACHE_TAGS, value.clone());
    }
}

/// The header [`CacheResponse::tags_header`](super::CacheResponse::tags_header) adds.
const X_CACHE_TAGS: HeaderName = HeaderName::from_static("x-cache-tags");

/// The handler's answer to a request the cache cannot take (no tag or key can be made of
/// it), marked as a bypass.
async fn uncached<S>(mut inner: S, parts: Parts, body: Body, head: bool) -> Response
where
    S: Service<Request, Error = Infallible>,
    S::Response: IntoResponse,
{
    let mut response = inner
        .call(Request::from_parts(parts, body))
        .await
        .into_response();
    if head {
        response = body::strip_for_head(response);
    }
    mark(&mut response, Source::Bypass);
    response
}

/// Why a request's tags could not be made.
enum TagsError {
    /// The layer does not fit its route (a template names a parameter the route lacks):
    /// every request fails alike, a 500 that the server's log explains.
    Misconfigured(String),
    /// This request's path parameters make no valid tag (invalid UTF-8 once decoded, a
    /// control character, too long): the request's fault, not the route's.
    Unusable(String),
}

/// What the handler needs to answer a request, shared by the request and its computation
/// (which may outlive it: a background refresh, a handler past the soft timeout).
struct Handler<S> {
    service: S,
    /// Whether `service` is the one `poll_ready` readied for this request (the first run
    /// calls it; later runs call clones, readied first — as `call` does).
    ready: bool,
    parts: Parts,
    /// Taken by the handler's first run. A later run for the same request (a background
    /// refresh it started took the first; or an entry served was found outdated) gets an
    /// empty body: a GET's body means nothing, and the key does not cover it.
    body: Option<Body>,
}

impl<S: Clone> Handler<S> {
    /// A service to call, whether it still needs `poll_ready`, and the request.
    fn take(&mut self) -> (S, bool, Request) {
        let clone = self.service.clone();
        let (service, ready) = if std::mem::take(&mut self.ready) {
            (std::mem::replace(&mut self.service, clone), true)
        } else {
            (clone, false)
        };
        let body = self.body.take().unwrap_or_default();
        (
            service,
            ready,
            Request::from_parts(self.parts.clone(), body),
        )
    }
}

/// One look for the entry of a request, computing it with the handler on a miss.
struct EntryLookup<S> {
    settings: Arc<Settings>,
    key: Key,
    options: EntryOptions,
    handler: Arc<Mutex<Handler<S>>>,
}

type Looked = Result<Arc<StoredResponse>, (Response, Reason)>;

impl<S> EntryLookup<S>
where
    S: Service<Request, Error = Infallible> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    /// The entry, or the handler's answer (stored when it may be), and where it came
    /// from. The handler runs on a task of its own where the freshness settings ask for
    /// it (a background refresh, a soft or hard timeout), so it owns what it needs.
    async fn run(&self) -> (Looked, Source) {
        let settings = &self.settings;
        let error_ttl = settings.cache.config().error_ttl();
        let origin = Origin::next();
        let compute = {
            let (settings, key) = (Arc::clone(settings), self.key.clone());
            let handler = Arc::clone(&self.handler);
            move || async move {
                let (mut service, ready, request) = handler.lock().take();
                // The versions of the snapshot taken *before* the handler runs: the answer
                // reflects at least every write that bumped them, and any later write moves
                // them, so this ETag never validates older data (see the `http` module
                // docs).
                let fingerprint = settings.cache.computation_fingerprint();
                if !ready {
                    let Ok(()) = std::future::poll_fn(|cx| service.poll_ready(cx)).await;
                }
                let Ok(response) = service.call(request).await;
                let response = response.into_response();
                // What the handler was observed to read joins the declared tags: the ETag
                // changes when any row the answer showed changes, declared or not.
                let etag = match settings.cache.observed_fingerprint().await {
                    Some(observed) => Some(etag::observed(key.as_str(), observed)),
                    None => fingerprint.map(|f| etag::deep(key.as_str(), f)),
                };
                let rules = stored::Rules {
                    cache_errors: settings.cache_errors,
                    fail_safe: settings.fresh.fail_safe.is_some(),
                    keyed: &settings.keyed,
                    max_body_bytes: settings.max_body_bytes,
                };
                match stored::capture(response, &rules, etag, origin).await {
                    Capture::Stored(stored) => Ok(stored),
                    Capture::Uncached(response, reason) => Err((response, reason)),
                }
            }
        };
        let ttl_of = move |stored: &StoredResponse, ttl: Duration| {
            if stored.is_success() {
                ttl
            } else {
                ttl.min(error_ttl)
            }
        };
        // A 5xx is a failure the last good answer may stand in for (fail-safe); any other
        // answer that is not cached (a 4xx, one that sets a cookie, …) is the answer.
        let fails = |(response, _): &(Response, Reason)| response.status().is_server_error();
        let fetched = settings
            .cache
            .fetch_with(
                self.key.as_str(),
                self.options.clone(),
                compute,
                ttl_of,
                fails,
            )
            .await;
        match fetched {
            Ok(fetched) => {
                let source = if fetched.is_stale() {
                    Source::Stale
                } else if fetched.value().made_by(origin) {
                    Source::Handler { stored: true }
                } else {
                    Source::Hit
                };
                (Ok(fetched.into_value()), source)
            }
            Err(FetchError::Failed(uncached)) => (Err(uncached), Source::Handler { stored: false }),
            Err(FetchError::TimedOut(timeout)) => {
                let error = ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "timeout",
                    "the answer took too long; try again later",
                );
                tracing::warn!(%timeout, "HTTP handler abandoned at its hard timeout");
                let answer = (error.into_response(), Reason("hard timeout"));
                (Err(answer), Source::Handler { stored: false })
            }
        }
    }
}

impl Settings {
    /// The value of `X-Cache-Tags` for an answer depending on `tags`: those the configured
    /// filter allows, comma-separated; `None` when the header is off, or no tag is left.
    fn tags_header_value(&self, tags: &[Tag]) -> Option<HeaderValue> {
        let filter = self.tags_header.as_ref()?;
        let kept = filter.kept(tags.iter().map(Tag::as_str));
        if kept.is_empty() {
            return None;
        }
        // Tags are printable text; one that a header could not carry is left out rather
        // than failing the answer.
        HeaderValue::from_str(&kept.join(", ")).ok()
    }

    /// The request's tags: the templates filled from the route's path parameters.
    ///
    /// # Errors
    /// What is misconfigured, when a template names a parameter the route does not have
    /// (or the layer is not on a route: `Router::route_layer`, not `Router::layer`).
    async fn tags(&self, parts: &mut Parts) -> Result<Vec<Tag>, TagsError> {
        // Only the error messages name the route: borrowed from a copy of the matched path
        // (an `Arc`) rather than copied per request.
        let matched = parts.extensions.get::<MatchedPath>().cloned();
        let route = matched.as_ref().map_or("?", MatchedPath::as_str);
        let needs_params = self.templates.iter().any(|t| t.params().next().is_some());
        let params = if needs_params {
            Some(
                RawPathParams::from_request_parts(parts, &())
                    .await
                    .map_err(|rejection| match rejection {
                        RawPathParamsRejection::InvalidUtf8InPathParam(invalid) => {
                            TagsError::Unusable(invalid.body_text())
                        }
                        rejection => TagsError::Misconfigured(format!(
                            "CacheResponse: the tag templates need path parameters, but route {route} has none to give ({rejection}); \
                             add the layer with Router::route_layer on a route with `{{param}}` segments"
                        )),
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
                    return Err(TagsError::Misconfigured(format!(
                        "CacheResponse: tag template {:?} names path parameter `{name}`, which route {route} does not have (it has: {})",
                        template.source(),
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        },
                    )));
                }
                Err(FillError::Invalid(error)) => {
                    return Err(TagsError::Unusable(format!(
                        "tag template {:?} on route {route}: {error}",
                        template.source()
                    )));
                }
            }
        }
        Ok(tags)
    }

    /// The entry's key: `<namespace>:<path>:<hash>`, the hash covering the query string and
    /// the keyed MAC of the `Vary` headers' values and the `Authorization` header (see
    /// [`keyed`](super::keyed): without the key secret, the key cannot be used to test
    /// guesses of them). The method is not part of it: GET and HEAD share the entry.
    fn key(&self, parts: &Parts) -> Result<Key, crate::Error> {
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |original| &original.0);
        // `None` without any of those headers: such a request's key needs no secret, and
        // instances share its entry even when their secrets differ.
        let keyed = self.keyed_hash.digest(&parts.headers, &self.keyed);
        thread_local! {
            /// `<namespace>:<path>`, written in place: the key copies it.
            static PATH: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        let key_of = |text: &mut String| {
            text.clear();
            text.push_str(&self.namespace);
            text.push(':');
            text.push_str(uri.path());
            Key::for_args(text, &(uri.query(), &keyed))
        };
        PATH.with(|buffer| match buffer.try_borrow_mut() {
            Ok(mut buffer) => key_of(&mut buffer),
            Err(_) => key_of(&mut String::new()),
        })
    }
}
