//! [`CacheControl`]: the `Cache-Control` header the HTTP layers set.

use axum::http::HeaderValue;

use crate::Error;

/// A `Cache-Control` response header value, as the HTTP layers set it.
///
/// The constructors cover what an API needs: `private, max-age=N` for per-user JSON (the
/// default of [`CacheResponse`](super::CacheResponse), with its TTL), `public, max-age=N`
/// for data every user may share through a CDN, `no-cache` (the browser keeps a copy but
/// revalidates it every time, which ETags make cheap) and `no-store` (nothing kept
/// anywhere: admin routes).
///
/// ```
/// use querycache::http::CacheControl;
///
/// assert_eq!(CacheControl::private_max_age(60).as_str(), "private, max-age=60");
/// assert_eq!(CacheControl::public_max_age(300).as_str(), "public, max-age=300");
/// assert_eq!(CacheControl::no_cache().as_str(), "no-cache");
/// assert_eq!(CacheControl::no_store().as_str(), "no-store");
/// let custom = CacheControl::custom("public, max-age=60, stale-while-revalidate=30").unwrap();
/// assert!(CacheControl::custom("bad\nvalue").is_err());
/// # let _ = custom;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheControl(HeaderValue);

impl CacheControl {
    /// `private, max-age=<secs>`: the user's browser may reuse the answer for `secs`
    /// seconds; shared caches (proxies, CDNs) must not keep it.
    pub fn private_max_age(secs: u64) -> Self {
        Self::from_string(format!("private, max-age={secs}"))
    }

    /// `public, max-age=<secs>`: any cache may keep the answer for `secs` seconds. Only for
    /// answers that are the same for every user.
    pub fn public_max_age(secs: u64) -> Self {
        Self::from_string(format!("public, max-age={secs}"))
    }

    /// `no-cache`: caches may keep the answer but must revalidate it (a conditional GET)
    /// before each use.
    pub fn no_cache() -> Self {
        CacheControl(HeaderValue::from_static("no-cache"))
    }

    /// `no-store`: no cache may keep the answer at all (admin and management routes).
    pub fn no_store() -> Self {
        CacheControl(HeaderValue::from_static("no-store"))
    }

    /// This value with `stale-while-revalidate=<secs>` appended (RFC 5861): for `secs` past
    /// its freshness a cache may answer with its stale copy while it revalidates in the
    /// background. [`CacheResponse`](super::CacheResponse) appends it to its default
    /// `private, max-age=<ttl>` when the layer has an [`swr`](super::CacheResponse::swr)
    /// window (or its namespace a `CACHE_SWR_<NAMESPACE>`), which is what the layer does
    /// itself. A browser revalidating afterwards sends its ETag: with deep ETags, a `304`
    /// unless the answer's tags moved.
    ///
    /// ```
    /// use querycache::http::CacheControl;
    ///
    /// let value = CacheControl::private_max_age(60).stale_while_revalidate(30);
    /// assert_eq!(value.as_str(), "private, max-age=60, stale-while-revalidate=30");
    /// ```
    pub fn stale_while_revalidate(self, secs: u64) -> Self {
        self.with_directive("stale-while-revalidate", secs)
    }

    /// This value with `stale-if-error=<secs>` appended (RFC 5861): for `secs` past its
    /// freshness a cache may answer with its stale copy when revalidating fails (a 5xx, or
    /// no answer). [`CacheResponse`](super::CacheResponse) appends it to its default value
    /// when the layer has a [`fail_safe`](super::CacheResponse::fail_safe) window, which is
    /// what the layer does itself on a failing handler.
    ///
    /// ```
    /// use querycache::http::CacheControl;
    ///
    /// let value = CacheControl::public_max_age(60).stale_if_error(3600);
    /// assert_eq!(value.as_str(), "public, max-age=60, stale-if-error=3600");
    /// ```
    pub fn stale_if_error(self, secs: u64) -> Self {
        self.with_directive("stale-if-error", secs)
    }

    fn with_directive(self, name: &str, secs: u64) -> Self {
        Self::from_string(format!("{}, {name}={secs}", self.as_str()))
    }

    /// Any other value, written as it goes on the wire.
    ///
    /// # Errors
    /// [`Error::Config`] when `value` is not a valid header value (control characters).
    pub fn custom(value: &str) -> Result<Self, Error> {
        HeaderValue::from_str(value)
            .map(CacheControl)
            .map_err(|_| Error::config("Cache-Control", value, "is not a valid header value"))
    }

    /// The header value as text.
    pub fn as_str(&self) -> &str {
        // Every constructor builds the value from a `&str`, so this cannot fail.
        self.0.to_str().unwrap_or_default()
    }

    pub(crate) fn header_value(&self) -> HeaderValue {
        self.0.clone()
    }

    fn from_string(value: String) -> Self {
        // Digits and ASCII letters only: always a valid header value.
        match HeaderValue::try_from(value) {
            Ok(value) => CacheControl(value),
            Err(_) => Self::no_store(),
        }
    }
}
