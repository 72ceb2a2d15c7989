//! The admin bearer token: kept as a digest, compared in constant time, and guarded
//! against guessing.
//!
//! Both the configured token and the presented one are hashed with SHA-256 and the two
//! 32-byte digests are compared with [`subtle::ConstantTimeEq`]: the time a comparison takes
//! depends neither on how many leading bytes match nor on either token's length.
//!
//! A request with more than one `Authorization` header is refused whatever they hold (a
//! proxy and the application could otherwise read different ones). Failed attempts are
//! throttled: past [`FAILURES_PER_WINDOW`] within [`WINDOW`], every admin request is
//! answered 429 with `Retry-After`, *without* checking its token, until the window ends — so
//! guessing runs at a few attempts a minute, and a guess that happens to be right during the
//! throttle learns nothing. The price: an admin locked out with the attacker for at most one
//! window.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::envelope::ApiError;

/// Failed attempts allowed per [`WINDOW`] before admin requests are throttled.
pub(crate) const FAILURES_PER_WINDOW: u32 = 10;
/// The throttle's window.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// The configured admin token, as its SHA-256 digest (`None`: admin routes are disabled),
/// and the failed attempts of the current window.
pub(crate) struct AdminToken {
    digest: Option<[u8; 32]>,
    failures: parking_lot::Mutex<Failures>,
}

/// Failed attempts in the window that began at `since`.
#[derive(Debug)]
struct Failures {
    since: Instant,
    count: u32,
}

impl AdminToken {
    /// The token `token` (`None`, or blank: no token).
    pub(crate) fn new(token: Option<&str>) -> Self {
        AdminToken {
            digest: token
                .map(str::trim)
                .filter(|token| !token.is_empty())
                .map(digest),
            failures: parking_lot::Mutex::new(Failures {
                since: Instant::now(),
                count: 0,
            }),
        }
    }

    /// How long admin requests are throttled for, if they are (too many failures in the
    /// current window).
    fn throttled(&self) -> Option<Duration> {
        let mut failures = self.failures.lock();
        let elapsed = failures.since.elapsed();
        if elapsed >= WINDOW {
            failures.since = Instant::now();
            failures.count = 0;
            return None;
        }
        (failures.count >= FAILURES_PER_WINDOW).then(|| WINDOW - elapsed)
    }

    /// Counts a failed attempt.
    fn failed(&self) {
        let mut failures = self.failures.lock();
        if failures.since.elapsed() >= WINDOW {
            failures.since = Instant::now();
            failures.count = 0;
        }
        failures.count = failures.count.saturating_add(1);
        if failures.count == FAILURES_PER_WINDOW {
            tracing::warn!(
                failures = failures.count,
                window_s = WINDOW.as_secs(),
                "too many failed admin attempts: admin requests throttled until the window ends"
            );
        }
    }

    /// Whether a token is configured.
    pub(crate) fn is_set(&self) -> bool {
        self.digest.is_some()
    }

    /// Accepts `headers` when they carry `Authorization: Bearer <the token>`.
    ///
    /// No token configured: 403. No or malformed `Authorization`, or another token: 401
    /// with `WWW-Authenticate: Bearer`.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), Denied> {
        let Some(expected) = &self.digest else {
            tracing::debug!("admin request refused: no admin token configured");
            return Err(Denied::Disabled);
        };
        if let Some(retry) = self.throttled() {
            return Err(Denied::Throttled(retry));
        }
        let denied = match presented(headers) {
            Err(denied) => denied,
            Ok(presented) if bool::from(digest(presented).ct_eq(expected)) => return Ok(()),
            Ok(_) => {
                tracing::warn!("admin request refused: wrong bearer token");
                Denied::Wrong
            }
        };
        // A request without the header guesses nothing: it does not count.
        if denied != Denied::Missing {
            self.failed();
        }
        Err(denied)
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = if self.is_set() {
            "<redacted>"
        } else {
            "<none>"
        };
        f.debug_tuple("AdminToken").field(&shown).finish()
    }
}

/// The token an admin request presents: its only `Authorization` header, of the form
/// `Bearer <token>`.
fn presented(headers: &HeaderMap) -> Result<&str, Denied> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Denied::Missing);
    };
    if values.next().is_some() {
        tracing::warn!("admin request refused: more than one Authorization header");
        return Err(Denied::Malformed);
    }
    bearer(value).ok_or(Denied::Malformed)
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The token of `Bearer <token>` (scheme case-insensitive, RFC 6750), if that is the form.
fn bearer(value: &HeaderValue) -> Option<&str> {
    let value = value.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Why an admin request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    /// No token configured: 403.
    Disabled,
    /// No `Authorization` header: 401.
    Missing,
    /// An `Authorization` header that is not `Bearer <token>`: 401.
    Malformed,
    /// Another token: 401.
    Wrong,
    /// Too many failed attempts lately: 429, with how long until the window ends.
    Throttled(Duration),
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        let (challenge, message) = match self {
            Denied::Disabled => {
                return ApiError::forbidden(
                    "admin routes are disabled: no admin token is configured (set CACHE_ADMIN_TOKEN)",
                )
                .into_response();
            }
            Denied::Missing => (
                r#"Bearer realm="querycache""#,
                "missing bearer token: send `Authorization: Bearer <admin token>`",
            ),
            Denied::Malformed => (
                r#"Bearer realm="querycache", error="invalid_request""#,
                "malformed Authorization header: expected `Bearer <admin token>`",
            ),
            Denied::Wrong => (
                r#"Bearer realm="querycache", error="invalid_token""#,
                "invalid bearer token",
            ),
            Denied::Throttled(retry) => {
                let seconds = retry.as_secs().max(1);
                return (
                    [(axum::http::header::RETRY_AFTER, HeaderValue::from(seconds))],
                    ApiError::too_many_requests(format!(
                        "too many failed admin attempts: try again in {seconds} s"
                    )),
                )
                    .into_response();
            }
        };
        (
            [(WWW_AUTHENTICATE, HeaderValue::from_static(challenge))],
            ApiError::unauthorized(message),
        )
            .into_response()
    }
}

/// Extractor guarding an admin handler: its presence in the arguments (before the body)
/// means the request carried the admin token.
pub(crate) struct Admin;

impl<S> FromRequestParts<S> for Admin
where
    Arc<AdminToken>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Denied;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Denied> {
        Arc::<AdminToken>::from_ref(state)
            .check(&parts.headers)
            .map(|()| Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(authorization).unwrap());
        headers
    }

    #[test]
    fn accepts_the_token_only() {
        let token = AdminToken::new(Some("s3cret"));
        assert!(token.check(&headers("Bearer s3cret")).is_ok());
        assert!(token.check(&headers("bearer s3cret")).is_ok());
        assert!(token.check(&headers("Bearer  s3cret ")).is_ok());
        for wrong in [
            "Bearer s3cre",
            "Bearer s3cret2",
            "Basic s3cret",
            "s3cret",
            "Bearer ",
        ] {
            let response = token.check(&headers(wrong)).unwrap_err().into_response();
            assert_eq!(response.status(), 401, "{wrong}");
            assert!(
                response.headers()[WWW_AUTHENTICATE]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer")
            );
        }
        assert_eq!(token.check(&HeaderMap::new()), Err(Denied::Missing));
        assert_eq!(token.check(&headers("Bearer nope")), Err(Denied::Wrong));
        assert_eq!(token.check(&headers("Basic x")), Err(Denied::Malformed));
    }

    #[test]
    fn two_authorization_headers_are_refused_whatever_they_hold() {
        let token = AdminToken::new(Some("s3cret-admin-token"));
        let mut both = HeaderMap::new();
        both.append(
            AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret-admin-token"),
        );
        both.append(AUTHORIZATION, HeaderValue::from_static("Bearer wrong"));
        assert_eq!(token.check(&both), Err(Denied::Malformed));
    }

    #[test]
    fn failed_attempts_are_throttled_without_checking_the_token() {
        let token = AdminToken::new(Some("s3cret-admin-token"));
        for _ in 0..FAILURES_PER_WINDOW {
            assert_eq!(token.check(&headers("Bearer guess")), Err(Denied::Wrong));
        }
        let denied = token
            .check(&headers("Bearer s3cret-admin-token"))
            .unwrap_err();
        assert!(matches!(denied, Denied::Throttled(_)), "{denied:?}");
        let response = denied.into_response();
        assert_eq!(response.status(), 429);
        assert!(
            response
                .headers()
                .contains_key(axum::http::header::RETRY_AFTER)
        );
        // The window ends: the right token is accepted again.
        token.failures.lock().since -= WINDOW;
        assert!(token.check(&headers("Bearer s3cret-admin-token")).is_ok());
    }

    #[test]
    fn no_token_is_forbidden() {
        for none in [None, Some(""), Some("  ")] {
            let token = AdminToken::new(none);
            assert!(!token.is_set());
            let denied = token.check(&headers("Bearer x")).unwrap_err();
            assert_eq!(denied, Denied::Disabled);
            assert_eq!(denied.into_response().status(), 403);
        }
        assert_eq!(
            format!("{:?}", AdminToken::new(Some("x"))),
            r#"AdminToken("<redacted>")"#
        );
    }
}
