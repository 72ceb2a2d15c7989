//! `GET /dashboard`: one self-contained HTML page (inline CSS and JS, no CDN, works
//! offline) compiled into the crate.
//!
//! The page polls the management routes next to it with relative URLs (`health`,
//! `metrics`, `analytics`) every 2 seconds, so it works wherever the router is nested. The
//! admin token typed into it stays in page memory (and, if asked, the tab's
//! `sessionStorage`), never in a URL; it is sent as `Authorization: Bearer` on the admin
//! buttons' requests and, once "Show keys" is pressed (or an admin action passed with it),
//! on the `analytics` polls — without it, the top keys' texts are redacted by the server,
//! and a token the server does not accept is dropped rather than resent every 2 seconds
//! (each failure counts against the admin throttle). Data is inserted as text
//! (`textContent`), never as HTML: key texts come from clients.

use axum::http::HeaderValue;
use axum::http::header::{
    CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::response::{IntoResponse, Response};

/// The page.
const PAGE: &str = include_str!("dashboard.html");

/// Only the page's own inline code, and requests to its own origin.
const POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
    connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub(crate) async fn page() -> Response {
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY)),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ],
        PAGE,
    )
        .into_response()
}
