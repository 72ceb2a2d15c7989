//! `GET /client.js` of the management router: the browser client (`clients/js`, its
//! committed bundle `dist/querycache.js`) compiled into the crate, with a strong ETag of
//! its content and `Cache-Control: no-cache` (browsers revalidate it, and get `304`s until
//! the server is upgraded).

use std::sync::LazyLock;

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::etag::IfNoneMatch;

/// The bundle.
pub(crate) const CLIENT_JS: &str = include_str!("../../clients/js/dist/querycache.js");

/// `"js-<32 hex digits of the bundle's SHA-256>"`.
static CLIENT_JS_ETAG: LazyLock<HeaderValue> = LazyLock::new(|| {
    let digest = Sha256::digest(CLIENT_JS.as_bytes());
    let hex: String = digest
        .iter()
        .take(16)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    HeaderValue::from_str(&format!("\"js-{hex}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("\"js\""))
});

pub(crate) async fn script(headers: HeaderMap) -> Response {
    let etag = CLIENT_JS_ETAG.clone();
    let common = [
        (ETAG, etag.clone()),
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    if IfNoneMatch::from_headers(&headers).is_some_and(|tags| tags.matches(&etag)) {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        CLIENT_JS,
    )
        .into_response()
}
