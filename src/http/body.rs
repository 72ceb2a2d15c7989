//! Response bodies: collecting the small ones, leaving streams alone, and the bodies of
//! `304` and `HEAD` answers.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;

/// What [`collect`] made of a response.
pub(crate) enum Collected {
    /// The whole body, in memory, with the response's head.
    Bytes(axum::http::response::Parts, Bytes),
    /// Left alone: a stream (no exact length) or a body over the limit.
    Skipped(Response),
}

/// The body of `response` when its exact length is known and at most `limit` bytes (a
/// body built from bytes, JSON or a string); streams (server-sent events, files, proxied
/// bodies) and large bodies come back untouched, never read.
///
/// # Errors
/// The body's own error, should reading it fail.
pub(crate) async fn collect(response: Response, limit: usize) -> Result<Collected, axum::Error> {
    let small = http_body::Body::size_hint(response.body())
        .exact()
        .is_some_and(|len| len <= limit as u64);
    if !small {
        return Ok(Collected::Skipped(response));
    }
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await?.to_bytes();
    Ok(Collected::Bytes(parts, bytes))
}

/// `response` without its body, for a HEAD request: its `Content-Length` says what the GET
/// would have sent, when known.
pub(crate) fn strip_for_head(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    if !parts.headers.contains_key(header::CONTENT_LENGTH)
        && let Some(len) = http_body::Body::size_hint(&body).exact()
    {
        parts
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    Response::from_parts(parts, Body::new(NoBody))
}

/// The body of a `304 Not Modified` or a HEAD answer. Unlike an empty body, its length is
/// not "exactly 0": axum would otherwise add `Content-Length: 0`, which a 304 must not
/// carry (RFC 9110 §8.6: it would announce an empty representation).
pub(crate) fn no_body() -> Body {
    Body::new(NoBody)
}

struct NoBody;

impl http_body::Body for NoBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        true
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
