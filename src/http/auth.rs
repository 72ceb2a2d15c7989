//! The admin bearer token: kept as a digest, compared in constant time.
//!
//! Both the configured token and the presented one are hashed with SHA-256 and the two
//! 32-byte digests are compared with [`subtle::ConstantTimeEq`]: the time a comparison takes
//! depends neither on how many leading bytes match nor on either token's length.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::envelope::ApiError;

/// The configured admin token, as its SHA-256 digest (`None`: admin routes are disabled).
#[derive(Clone)]
pub(crate) struct AdminToken {
    digest: Option<[u8; 32]>,
}

impl AdminToken {
    /// The token `token` (`None`, or blank: no token).
    pub(crate) fn new(token: Option<&str>) -> Self {
        AdminToken {
            digest: token
                .map(str::trim)
                .filter(|token| !token.is_empty())
                .map(digest),
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
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Err(Denied::Missing);
        };
        let Some(presented) = bearer(value) else {
            return Err(Denied::Malformed);
        };
        if bool::from(digest(presented).ct_eq(expected)) {
            Ok(())
        } else {
            tracing::warn!("admin request refused: wrong bearer token");
            Err(Denied::Wrong)
        }
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
