//! The response headers both HTTP layers set: `Vary`, `X-Cache`, and the `304` answer.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::CacheControl;
use super::body::no_body;

/// `X-Cache`: `HIT` (served from the cache, or a 304 decided without the handler) or
/// `MISS` (the handler ran).
pub(crate) const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// What an answer of a cached route was, for `X-Cache` and the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Hit,
    Miss,
    NotModified,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "HIT",
            Outcome::Miss => "MISS",
            Outcome::NotModified => "304",
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

/// Marks `response` with `X-Cache: HIT` (the handler did not run) or `MISS`.
pub(crate) fn mark(response: &mut Response, hit: bool) {
    let value = HeaderValue::from_static(if hit { "HIT" } else { "MISS" });
    response.headers_mut().insert(X_CACHE, value);
}
