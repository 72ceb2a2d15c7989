//! A response as the cache keeps it, what may be kept, and the answer rebuilt from it.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::http::body::{self, Collected};
use crate::http::{ApiError, CacheControl, etag};

/// A cached answer: status, the headers worth keeping, the body, and its ETag.
///
/// What is stored (in Redis, as JSON) is the text form; the head a hit answers with is
/// parsed once, when the answer is captured or read back ([`Rendered`]), so that serving it
/// costs clones of shared bytes rather than header parsing and formatting per request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(from = "StoredWire")]
pub(crate) struct StoredResponse {
    status: u16,
    headers: Vec<(String, String)>,
    etag: String,
    body: StoredBody,
    /// The request whose handler made it (an [`Origin`]); never stored as bytes, so 0 when
    /// read back from Redis.
    #[serde(skip)]
    origin: u64,
    /// The head, parsed: never stored, made again when read back.
    #[serde(skip)]
    rendered: Rendered,
}

/// The stored form of a [`StoredResponse`], as read back.
#[derive(Deserialize)]
struct StoredWire {
    status: u16,
    headers: Vec<(String, String)>,
    etag: String,
    body: StoredBody,
}

impl From<StoredWire> for StoredResponse {
    fn from(wire: StoredWire) -> Self {
        let rendered = Rendered::new(wire.status, &wire.headers, &wire.etag);
        StoredResponse {
            status: wire.status,
            headers: wire.headers,
            etag: wire.etag,
            body: wire.body,
            origin: 0,
            rendered,
        }
    }
}

/// The head of a [`StoredResponse`] as it goes out: the status, the kept headers that are
/// valid as header names and values (the others are left out, as they always were), and
/// the ETag.
#[derive(Debug, Default)]
struct Rendered {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    etag: Option<HeaderValue>,
}

impl Rendered {
    fn new(status: u16, headers: &[(String, String)], etag: &str) -> Self {
        Rendered {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            headers: headers
                .iter()
                .filter_map(|(name, value)| {
                    Some((
                        HeaderName::from_bytes(name.as_bytes()).ok()?,
                        HeaderValue::from_str(value).ok()?,
                    ))
                })
                .collect(),
            etag: HeaderValue::from_str(etag).ok(),
        }
    }
}

/// One request through a cached route, told apart from every other: an answer whose
/// [`StoredResponse::made_by`] is this request's was computed for it (a miss), any other
/// came from the cache — or from another request's computation it waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Origin(u64);

impl Origin {
    pub(crate) fn next() -> Origin {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Origin(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

/// Headers never kept: recomputed (length, date), connection-level, or owned by the layer.
const DROPPED: &[&str] = &[
    "age",
    "cache-control",
    "connection",
    "content-length",
    "date",
    "etag",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "vary",
    "x-cache",
];

/// What may be kept, and how much.
pub(crate) struct Rules<'a> {
    pub(crate) cache_errors: bool,
    /// Fail-safe is on: a 5xx is a failure, never kept (not even with `cache_errors`), so
    /// that the last good answer can stand in for it.
    pub(crate) fail_safe: bool,
    /// The request headers the key covers (the configured `Vary` and `Authorization`).
    pub(crate) keyed: &'a [HeaderName],
    pub(crate) max_body_bytes: usize,
}

/// The outcome of [`capture`].
/// Why an answer is not cached (for the logs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reason(pub(crate) &'static str);

pub(crate) enum Capture {
    Stored(StoredResponse),
    /// Not cacheable (the reason is logged): the answer goes to the caller as it is.
    Uncached(Response, Reason),
}

/// Turns the handler's `response` into a [`StoredResponse`], if it may be cached: a 2xx
/// (but not 206; any status with `cache_errors`, but a 5xx under fail-safe), without
/// `Set-Cookie`, without `Cache-Control: no-store`, varying on nothing the key does not
/// cover, with text header values and a body of known length within the limit. `etag` is
/// the deep ETag, or `None` for a body-hash one; `origin`, the request it is computed for.
pub(crate) async fn capture(
    response: Response,
    rules: &Rules<'_>,
    etag: Option<HeaderValue>,
    origin: Origin,
) -> Capture {
    let status = response.status();
    if status == StatusCode::PARTIAL_CONTENT
        || !(status.is_success() || rules.cache_errors)
        || (rules.fail_safe && status.is_server_error())
    {
        return Capture::Uncached(response, Reason("status"));
    }
    let headers = response.headers();
    if headers.contains_key(header::SET_COOKIE) {
        return Capture::Uncached(response, Reason("sets a cookie"));
    }
    if has_directive(headers, "no-store") {
        return Capture::Uncached(response, Reason("Cache-Control: no-store"));
    }
    if !varies_within(headers, rules.keyed) {
        return Capture::Uncached(
            response,
            Reason("varies on a header the key does not cover"),
        );
    }
    let Some(kept) = kept_headers(headers) else {
        return Capture::Uncached(response, Reason("a header value is not text"));
    };
    let (parts, bytes) = match body::collect(response, rules.max_body_bytes).await {
        Ok(Collected::Bytes(parts, bytes)) => (parts, bytes),
        Ok(Collected::Skipped(response)) => {
            return Capture::Uncached(response, Reason("body streamed or over the size limit"));
        }
        Err(error) => {
            return Capture::Uncached(ApiError::internal(error).into_response(), Reason("body"));
        }
    };
    let etag = etag.unwrap_or_else(|| etag::body_hash(&bytes));
    let status = parts.status.as_u16();
    let etag = etag.to_str().unwrap_or_default().to_owned();
    let rendered = Rendered::new(status, &kept, &etag);
    Capture::Stored(StoredResponse {
        status,
        headers: kept,
        etag,
        body: StoredBody(bytes),
        origin: origin.0,
        rendered,
    })
}

impl StoredResponse {
    /// The ETag it was stored with.
    pub(crate) fn etag(&self) -> Option<&HeaderValue> {
        self.rendered.etag.as_ref()
    }

    /// Whether the stored status is a 2xx (only those carry an ETag and can be a 304).
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Whether the handler of the request `origin` made it.
    pub(crate) fn made_by(&self, origin: Origin) -> bool {
        self.origin == origin.0
    }

    /// The status, for logs.
    pub(crate) fn status(&self) -> u16 {
        self.status
    }

    /// The answer: the stored status, headers and body (none for HEAD), with `ETag` (2xx),
    /// `Cache-Control` and `Vary` (`vary`: the value, see
    /// [`VaryValue`](crate::http::headers::VaryValue); a stored answer has no `Vary` of
    /// its own to merge it with). `extra` is room for the headers the caller adds.
    pub(crate) fn respond(
        &self,
        head: bool,
        cache_control: &CacheControl,
        vary: Option<&HeaderValue>,
        extra: usize,
    ) -> Response {
        let rendered = &self.rendered;
        let mut headers = HeaderMap::with_capacity(rendered.headers.len() + 3 + extra);
        for (name, value) in &rendered.headers {
            headers.append(name.clone(), value.clone());
        }
        if let (true, Some(etag)) = (self.is_success(), &rendered.etag) {
            headers.insert(header::ETAG, etag.clone());
        }
        headers.insert(header::CACHE_CONTROL, cache_control.header_value());
        if let Some(vary) = vary {
            headers.insert(header::VARY, vary.clone());
        }
        let mut response = Response::new(Body::from(self.body.0.clone()));
        *response.status_mut() = rendered.status;
        *response.headers_mut() = headers;
        if head {
            response = body::strip_for_head(response);
        }
        response
    }
}

/// Whether a `Cache-Control` of `headers` carries `directive`.
fn has_directive(headers: &HeaderMap, directive: &str) -> bool {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|d| d.trim().eq_ignore_ascii_case(directive))
}

/// Whether every header the response's `Vary` names is one the key covers (`*` never is).
fn varies_within(headers: &HeaderMap, keyed: &[HeaderName]) -> bool {
    headers
        .get_all(header::VARY)
        .iter()
        .all(|value| match value.to_str() {
            Ok(text) => text
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .all(|name| keyed.iter().any(|k| k.as_str().eq_ignore_ascii_case(name))),
            Err(_) => false,
        })
}

/// The headers kept with the entry; `None` when one cannot be kept as text.
fn kept_headers(headers: &HeaderMap) -> Option<Vec<(String, String)>> {
    headers
        .iter()
        .filter(|(name, _)| !DROPPED.contains(&name.as_str()))
        .map(|(name, value)| {
            let value = value.to_str().ok()?;
            Some((name.as_str().to_owned(), value.to_owned()))
        })
        .collect()
}

/// A body as JSON: `{"text": ".."}` when it is UTF-8 (JSON and HTML answers: compact, and
/// readable in Redis), `{"hex": ".."}` otherwise.
#[derive(Debug)]
struct StoredBody(Bytes);

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum BodyRepr<'a> {
    Text(#[serde(borrow)] std::borrow::Cow<'a, str>),
    Hex(std::borrow::Cow<'a, str>),
}

impl Serialize for StoredBody {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => BodyRepr::Text(text.into()),
            Err(_) => BodyRepr::Hex(to_hex(&self.0).into()),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for StoredBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match BodyRepr::deserialize(deserializer)? {
            BodyRepr::Text(text) => Ok(StoredBody(Bytes::from(text.into_owned()))),
            BodyRepr::Hex(hex) => from_hex(&hex)
                .map(|bytes| StoredBody(Bytes::from(bytes)))
                .ok_or_else(|| serde::de::Error::custom("body: invalid hex")),
        }
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    out
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    digits
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip_as_text_or_hex() {
        for body in [&b"{\"a\":1}"[..], &[0xff, 0x00, 0x10][..], &b""[..]] {
            let json = serde_json::to_string(&StoredBody(Bytes::copy_from_slice(body))).unwrap();
            let back: StoredBody = serde_json::from_str(&json).unwrap();
            assert_eq!(&back.0[..], body, "{json}");
        }
        let json = serde_json::to_string(&StoredBody(Bytes::from_static(b"hi"))).unwrap();
        assert_eq!(json, r#"{"text":"hi"}"#);
        assert!(serde_json::from_str::<StoredBody>(r#"{"hex":"zz"}"#).is_err());
    }

    #[test]
    fn vary_must_stay_within_the_key() {
        let mut headers = HeaderMap::new();
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
        assert!(varies_within(&headers, &[header::ACCEPT_LANGUAGE]));
        assert!(!varies_within(&headers, &[]));
        headers.insert(header::VARY, HeaderValue::from_static("*"));
        assert!(!varies_within(&headers, &[header::ACCEPT_LANGUAGE]));
    }
}
