//! The response headers both HTTP layers set: `Vary`, `X-Cache`, `Cache-Status`, and the
//! `304` answer.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::CacheControl;
use super::body::no_body;

/// `X-Cache`: `HIT` (served from the cache, or a 304 decided without the handler), `STALE`
/// (served from the cache past its TTL: see [`Source::Stale`]) or `MISS` (the handler
/// ran, or the cache was bypassed).
pub(crate) const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// `Cache-Status` (RFC 9211), whose member `querycache; ...` says what `X-Cache` says, in
/// the standard's words.
pub(crate) const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// What an answer of a cached route was, for the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AnswerOutcome {
    Hit,
    Miss,
    Stale,
    NotModified,
}

impl AnswerOutcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AnswerOutcome::Hit => "HIT",
            AnswerOutcome::Miss => "MISS",
            AnswerOutcome::Stale => "STALE",
            AnswerOutcome::NotModified => "304",
        }
    }
}

/// Where an answer came from, for `X-Cache` and `Cache-Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The cache, fresh; or a 304 decided without the handler. `X-Cache: HIT`,
    /// `Cache-Status: querycache; hit`.
    Hit,
    /// The cache, past its TTL but never invalidated: within the stale-while-revalidate
    /// window (a refresh was started), past the soft timeout (the handler goes on in the
    /// background), or by fail-safe (the handler failed). `X-Cache: STALE`,
    /// `Cache-Status: querycache; hit; fwd=stale`.
    Stale,
    /// The handler ran for this request; `stored`: its answer was cacheable, and handed to
    /// the store. `X-Cache: MISS`, `Cache-Status: querycache; fwd=miss` (`; stored`).
    Handler { stored: bool },
    /// Around the cache (disabled, or a request it cannot key). `X-Cache: MISS`,
    /// `Cache-Status: querycache; fwd=bypass`.
    Bypass,
}

impl Source {
    /// The outcome logged for an answer from here (a 304 is logged as such instead).
    pub(crate) fn outcome(self) -> AnswerOutcome {
        match self {
            Source::Hit => AnswerOutcome::Hit,
            Source::Stale => AnswerOutcome::Stale,
            Source::Handler { .. } | Source::Bypass => AnswerOutcome::Miss,
        }
    }

    fn x_cache(self) -> &'static str {
        match self {
            Source::Hit => "HIT",
            Source::Stale => "STALE",
            Source::Handler { .. } | Source::Bypass => "MISS",
        }
    }

    fn cache_status(self) -> &'static str {
        match self {
            Source::Hit => "querycache; hit",
            Source::Stale => "querycache; hit; fwd=stale",
            Source::Handler { stored: true } => "querycache; fwd=miss; stored",
            Source::Handler { stored: false } => "querycache; fwd=miss",
            Source::Bypass => "querycache; fwd=bypass",
        }
    }
}

/// The names an answer varies on: the configured ones, plus `Authorization` when the
/// request carried one (answers are never shared across its values).
pub(crate) fn vary_names(configured: &[HeaderName], request: &HeaderMap) -> Vec<HeaderName> {
    let mut names = configured.to_vec();
    if request.contains_key(header::AUTHORIZATION) && !names.contains(&header::AUTHORIZATION) {
        names.push(header::AUTHORIZATION);
    }
    names
}

/// The `Vary` value of a layer's answers, made once from its configured names: one for
/// requests without `Authorization`, one for requests with it (what [`vary_names`] and
/// [`merge_vary`] make of a response without a `Vary` of its own, per request).
#[derive(Debug, Clone)]
pub(crate) struct VaryValue {
    plain: Option<HeaderValue>,
    authorized: Option<HeaderValue>,
}

impl VaryValue {
    /// The values for the configured `names`.
    pub(crate) fn new(names: &[HeaderName]) -> Self {
        let value = |request: &HeaderMap| {
            let mut headers = HeaderMap::new();
            merge_vary(&mut headers, &vary_names(names, request));
            headers.remove(header::VARY)
        };
        let mut authorized = HeaderMap::new();
        authorized.insert(header::AUTHORIZATION, HeaderValue::from_static("x"));
        VaryValue {
            plain: value(&HeaderMap::new()),
            authorized: value(&authorized),
        }
    }

    /// The value for an answer to a request with `headers`; `None`: no `Vary`.
    pub(crate) fn for_request(&self, headers: &HeaderMap) -> Option<&HeaderValue> {
        if headers.contains_key(header::AUTHORIZATION) {
            self.authorized.as_ref()
        } else {
            self.plain.as_ref()
        }
    }
}

/// Adds `names` to the response's `Vary` (keeping what the handler put there, once each;
/// a `Vary: *` is left alone).
pub(crate) fn merge_vary(headers: &mut HeaderMap, names: &[HeaderName]) {
    if names.is_empty() {
        return;
    }
    let mut all: Vec<String> = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect();
    if all.iter().any(|name| name == "*") {
        return;
    }
    for name in names {
        if !all.iter().any(|seen| seen == name.as_str()) {
            all.push(name.as_str().to_owned());
        }
    }
    if let Ok(value) = HeaderValue::from_str(&all.join(", ")) {
        headers.insert(header::VARY, value);
    }
}

/// A `304 Not Modified` without a body, carrying what RFC 9110 §15.4.5 asks for here:
/// `ETag`, `Cache-Control` and `Vary`.
pub(crate) fn not_modified(
    etag: HeaderValue,
    cache_control: &CacheControl,
    vary: &[HeaderName],
) -> Response {
    let mut response = Response::new(no_body());
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag);
    headers.insert(header::CACHE_CONTROL, cache_control.header_value());
    merge_vary(headers, vary);
    response
}

/// [`not_modified`] with the `Vary` value made beforehand ([`VaryValue`]), and room for
/// `extra` more headers.
pub(crate) fn not_modified_with(
    etag: HeaderValue,
    cache_control: &CacheControl,
    vary: Option<&HeaderValue>,
    extra: usize,
) -> Response {
    let mut headers = HeaderMap::with_capacity(3 + extra);
    headers.insert(header::ETAG, etag);
    headers.insert(header::CACHE_CONTROL, cache_control.header_value());
    if let Some(vary) = vary {
        headers.insert(header::VARY, vary.clone());
    }
    let mut response = Response::new(no_body());
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    *response.headers_mut() = headers;
    response
}

/// The headers [`mark`] adds: room to make for them.
pub(crate) const MARK_HEADERS: usize = 2;

/// Marks `response` with where it came from: `X-Cache` (replacing any), and this cache's
/// `Cache-Status` member after those of the caches behind it (RFC 9211 §2: the last member
/// is the cache nearest the client).
pub(crate) fn mark(response: &mut Response, source: Source) {
    let headers = response.headers_mut();
    headers.insert(X_CACHE, HeaderValue::from_static(source.x_cache()));
    headers.append(
        CACHE_STATUS,
        HeaderValue::from_static(source.cache_status()),
    );
}
