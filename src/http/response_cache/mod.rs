//! [`CacheResponse`]: whole-response caching for axum routes, with deep ETags.
//!
//! How a request is answered, why a deep ETag never validates old data, and the limits:
//! see the [`http`](crate::http) module docs.

mod keyed;
mod service;
mod stored;
mod template;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, header};
use futures_util::future::BoxFuture;
use tower::Layer;

use keyed::KeyedHash;
pub use service::CacheResponseService;
use template::TagTemplate;

use super::conditional::DEFAULT_MAX_BODY_BYTES;
use super::headers::VaryValue;
use super::{CacheControl, TagFilter};
use crate::cache::options::Freshness;
use crate::{Cache, Error, Tag};

/// The namespace of cached responses unless set otherwise.
const DEFAULT_NAMESPACE: &str = "http";

/// A builder for the layer that caches whole GET answers of a route, with deep ETags.
///
/// Add the built layer with [`Router::route_layer`](axum::Router::route_layer) (so the
/// route's path parameters fill the tag templates). The [`http`](crate::http) module docs
/// say how a request is answered, why a deep ETag never validates old data, and the limits
/// (tags are declared per route, not collected from the handler's queries).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use axum::{Router, body::Body, extract::Path, http::{Request, StatusCode, header}, routing::get};
/// use querycache::{Cache, Tag, http::CacheResponse};
/// use tower::ServiceExt;
///
/// let cache = Cache::new();
/// let songs = CacheResponse::new(cache.clone())
///     .ttl(Duration::from_secs(60))
///     .tags(["model:songs:{id}", "model:songs#bulk"])
///     .vary(["accept-language"])
///     .build()?;
/// let app = Router::new()
///     .route("/songs/{id}", get(|Path(id): Path<u32>| async move { format!("song {id}") }))
///     .route_layer(songs);
/// let get = |etag: Option<&str>| {
///     let mut request = Request::get("/songs/7");
///     if let Some(etag) = etag {
///         request = request.header(header::IF_NONE_MATCH, etag);
///     }
///     request.body(Body::empty()).unwrap()
/// };
///
/// let first = app.clone().oneshot(get(None)).await?;
/// assert_eq!(first.headers()["x-cache"], "MISS");
/// assert_eq!(first.headers()[header::CACHE_CONTROL], "private, max-age=60");
/// let etag = first.headers()[header::ETAG].to_str()?.to_owned();
/// assert!(etag.starts_with("\"qc-"));
///
/// assert_eq!(app.clone().oneshot(get(None)).await?.headers()["x-cache"], "HIT");
/// let not_modified = app.clone().oneshot(get(Some(&etag))).await?;
/// assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
///
/// cache.invalidate_tags([Tag::row("songs", 7)]).await; // song 7 was written
/// let changed = app.oneshot(get(Some(&etag))).await?;
/// assert_eq!(changed.status(), StatusCode::OK);
/// assert_ne!(changed.headers()[header::ETAG], etag.as_str());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct CacheResponse {
    cache: Cache,
    ttl: Option<Duration>,
    tags: Vec<String>,
    vary: Vec<String>,
    namespace: String,
    cache_control: Option<CacheControl>,
    max_body_bytes: usize,
    cache_errors: bool,
    fresh: Freshness,
    path_check: Option<PathCheck>,
    tags_header: Option<TagFilter>,
}

/// Whether a request's path parameters deserialize into the type given to
/// [`CacheResponse::path`].
type PathCheck = for<'a> fn(&'a mut Parts) -> BoxFuture<'a, bool>;

/// The [`PathCheck`] of `T`: axum's own `Path<T>` extractor, so the answer is the
/// handler's.
fn path_deserializes<T>(parts: &mut Parts) -> BoxFuture<'_, bool>
where
    T: serde::de::DeserializeOwned + Send + 'static,
{
    Box::pin(async move {
        axum::extract::Path::<T>::from_request_parts(parts, &())
            .await
            .is_ok()
    })
}

impl CacheResponse {
    /// Answers cached in `cache`: no tags yet, the cache's TTL for namespace `http`
    /// (`CACHE_TTL_HTTP`, else `CACHE_DEFAULT_TTL`), `Cache-Control: private, max-age=<ttl>`,
    /// bodies up to 4 MiB, 2xx answers only.
    ///
    /// ```
    /// let builder = querycache::http::CacheResponse::new(querycache::Cache::new());
    /// assert!(builder.build().is_ok());
    /// ```
    pub fn new(cache: impl AsRef<Cache>) -> Self {
        CacheResponse {
            cache: cache.as_ref().clone(),
            ttl: None,
            tags: Vec::new(),
            vary: Vec::new(),
            namespace: DEFAULT_NAMESPACE.to_owned(),
            cache_control: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            cache_errors: false,
            fresh: Freshness::default(),
            path_check: None,
            tags_header: None,
        }
    }

    /// Answers served through the cache carry `X-Cache-Tags: model:songs, model:songs:42`:
    /// the tags the answer depends on that `filter` allows (use the filter of the management
    /// router's event stream, [`ManagementOptions::event_tags`](super::ManagementOptions::event_tags),
    /// so that a browser cache — `clients/js`'s `cachedFetch` — drops the answer when the
    /// stream names one of them). Off by default: tags say which rows an answer shows.
    /// Answers the handler gave that are not cached carry no tags.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use axum::{Router, body::Body, http::Request, routing::get};
    /// use querycache::{Cache, http::{CacheResponse, TagFilter}};
    /// use tower::ServiceExt;
    ///
    /// let layer = CacheResponse::new(Cache::new())
    ///     .tags(["model:songs", "model:songs:{id}", "user:{id}"])
    ///     .tags_header(TagFilter::default())
    ///     .build()?;
    /// let app: Router = Router::new().route("/songs/{id}", get(|| async { "song" })).route_layer(layer);
    /// let request = Request::get("/songs/42").body(Body::empty())?;
    /// let response = app.oneshot(request).await?;
    /// assert_eq!(response.headers()["x-cache-tags"], "model:songs, model:songs:42");
    /// # Ok(()) }
    /// ```
    pub fn tags_header(mut self, filter: TagFilter) -> Self {
        self.tags_header = Some(filter);
        self
    }

    /// How long an answer is kept (capped by `CACHE_MAX_TTL`); also the default
    /// `max-age`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = querycache::http::CacheResponse::new(querycache::Cache::new()).ttl(Duration::from_secs(30));
    /// # let _ = builder;
    /// ```
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Tag templates the answer depends on: `model:songs`, `model:songs:{id}` (`{id}` is
    /// the route's path parameter), `user:{user_id}`; `{{`/`}}` for literal braces.
    /// Checked by [`build`](Self::build). A path value that is an integer written
    /// unusually (`07`) gives both `model:songs:07` and `model:songs:7`.
    ///
    /// ```
    /// let builder = querycache::http::CacheResponse::new(querycache::Cache::new())
    ///     .tags(["model:songs:{id}", "model:songs#bulk"]);
    /// # let _ = builder;
    /// ```
    pub fn tags<I: IntoIterator<Item = T>, T: AsRef<str>>(mut self, templates: I) -> Self {
        self.tags
            .extend(templates.into_iter().map(|t| t.as_ref().to_owned()));
        self
    }

    /// Request headers the answer depends on (`accept-language`, `cookie`, …): their values
    /// are part of the key and of the ETag, and they are listed in `Vary`. `Authorization`
    /// is always part of the key. Both are hashed into it with HMAC-SHA256 under the key
    /// secret (`CACHE_KEY_SECRET`, [`CacheConfigBuilder::key_secret`](crate::config::CacheConfigBuilder::key_secret)),
    /// so a key does not let anyone test guesses of their values offline. Checked by
    /// [`build`](Self::build).
    ///
    /// ```
    /// let builder = querycache::http::CacheResponse::new(querycache::Cache::new()).vary(["accept-language"]);
    /// # let _ = builder;
    /// ```
    pub fn vary<I: IntoIterator<Item = T>, T: AsRef<str>>(mut self, names: I) -> Self {
        self.vary
            .extend(names.into_iter().map(|n| n.as_ref().to_owned()));
        self
    }

    /// The namespace of the entries (default `http`): their TTL policy
    /// (`CACHE_TTL_<NAMESPACE>`), statistics, and
    /// [`Cache::invalidate_namespace`], which also changes their ETags.
    ///
    /// ```
    /// let builder = querycache::http::CacheResponse::new(querycache::Cache::new()).namespace("http:v2");
    /// # let _ = builder;
    /// ```
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The `Cache-Control` of every answer of the route (default
    /// `private, max-age=<ttl seconds>`).
    ///
    /// ```
    /// use querycache::http::{CacheControl, CacheResponse};
    /// let builder = CacheResponse::new(querycache::Cache::new()).cache_control(CacheControl::no_cache());
    /// # let _ = builder;
    /// ```
    pub fn cache_control(mut self, cache_control: CacheControl) -> Self {
        self.cache_control = Some(cache_control);
        self
    }

    /// The largest body cached (default 4 MiB); larger ones, and streamed bodies, pass
    /// through uncached.
    ///
    /// ```
    /// let builder = querycache::http::CacheResponse::new(querycache::Cache::new()).max_body_bytes(1 << 20);
    /// # let _ = builder;
    /// ```
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Only requests whose path parameters deserialize into `T`, as the handler's
    /// [`Path<T>`](axum::extract::Path) extractor would
    /// read them, use the cache. Any other request (`/songs/abc`, `/songs/99999999999` for
    /// an `i32`) goes straight to the handler, which rejects it, and never touches the
    /// store: no tag version is read or created for it, so a client sending junk ids cannot
    /// grow Redis. Without it every request that makes valid tags uses the cache.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use axum::{Router, body::Body, http::{Request, StatusCode}, routing::get};
    /// use axum::extract::Path;
    /// use querycache::{Cache, http::CacheResponse};
    /// use tower::ServiceExt;
    ///
    /// let cache = Cache::new();
    /// let layer = CacheResponse::new(&cache)
    ///     .tags(["model:songs:{id}"])
    ///     .path::<i32>()
    ///     .build()?;
    /// let app = Router::new()
    ///     .route("/songs/{id}", get(|Path(id): Path<i32>| async move { id.to_string() }))
    ///     .route_layer(layer);
    /// let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    ///
    /// let junk = app.clone().oneshot(get("/songs/99999999999")).await?;
    /// assert_eq!(junk.status(), StatusCode::BAD_REQUEST);
    /// assert_eq!(junk.headers()["cache-status"], "querycache; fwd=bypass");
    /// assert_eq!(cache.stats().misses, 0, "the cache never saw it");
    ///
    /// let song = app.oneshot(get("/songs/7")).await?;
    /// assert_eq!(song.headers()["x-cache"], "MISS");
    /// assert_eq!(cache.stats().misses, 1);
    /// # Ok(()) }
    /// ```
    pub fn path<T>(mut self) -> Self
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        self.path_check = Some(path_deserializes::<T>);
        self
    }

    /// Whether non-2xx answers are cached too (default `false`); they are kept at most
    /// `CACHE_ERROR_TTL`, and carry no ETag.
    ///
    /// ```
    /// let builder = querycache::http::CacheResponse::new(querycache::Cache::new()).cache_errors(true);
    /// # let _ = builder;
    /// ```
    pub fn cache_errors(mut self, on: bool) -> Self {
        self.cache_errors = on;
        self
    }

    /// **Stale-while-revalidate**: for `window` after an answer's TTL has passed, requests
    /// get the stored answer at once, marked `X-Cache: STALE` and
    /// `Cache-Status: querycache; hit; fwd=stale`, and the first one starts the handler in
    /// the background to refresh it (once per key at a time; with Redis, once across
    /// instances). Without it, the namespace's `CACHE_SWR_<NAMESPACE>` (`CACHE_SWR_HTTP`)
    /// applies. See [`EntryOptions::swr`](crate::EntryOptions::swr).
    ///
    /// **Invariant kept**: expiry is softened, invalidation is not. An answer whose tags
    /// were invalidated is never served stale: the next request runs the handler. A stale
    /// answer keeps its deep ETag, which its tags' versions still give: a conditional GET
    /// on it is still a `304`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use axum::{Router, body::Body, http::Request, routing::get};
    /// use querycache::{Cache, http::CacheResponse};
    /// use tower::ServiceExt;
    ///
    /// let cache = Cache::new();
    /// let layer = CacheResponse::new(&cache)
    ///     .ttl(Duration::from_millis(50))
    ///     .swr(Duration::from_secs(60))
    ///     .tags(["model:songs"])
    ///     .build()?;
    /// let app = Router::new().route("/songs", get(|| async { "[]" })).route_layer(layer);
    /// let get = || Request::get("/songs").body(Body::empty()).unwrap();
    ///
    /// assert_eq!(app.clone().oneshot(get()).await?.headers()["x-cache"], "MISS");
    /// tokio::time::sleep(Duration::from_millis(100)).await; // past the TTL
    /// let stale = app.oneshot(get()).await?;
    /// assert_eq!(stale.headers()["x-cache"], "STALE"); // at once; refreshed in the background
    /// assert_eq!(stale.headers()["cache-status"], "querycache; hit; fwd=stale");
    /// # Ok(()) }
    /// ```
    pub fn swr(mut self, window: Duration) -> Self {
        self.fresh.swr = Some(window);
        self
    }

    /// **Fail-safe**: when the handler fails — answers a 5xx, or passes its
    /// [hard timeout](Self::hard_timeout) — serve the last good answer instead (its status,
    /// headers, body and ETag, marked `X-Cache: STALE`), if it is no older than `max_stale`
    /// past its TTL. The handler is then tried again at most once per
    /// [`fail_safe_throttle`](Self::fail_safe_throttle) (default 10 s); requests in between
    /// get the stored answer. Without a stored answer, the handler's own 5xx goes through.
    /// A 4xx is an answer, not a failure: it goes through too. Under fail-safe a 5xx is
    /// never cached, even with [`cache_errors`](Self::cache_errors).
    ///
    /// **Invariant kept**: an invalidated answer is never a fail-safe answer.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::time::Duration;
    /// use axum::{Router, body::Body, http::{Request, StatusCode}, routing::get};
    /// use querycache::{Cache, http::CacheResponse};
    /// use tower::ServiceExt;
    ///
    /// let cache = Cache::new();
    /// let down = Arc::new(AtomicBool::new(false));
    /// let db = down.clone();
    /// let handler = move || async move {
    ///     if db.load(Ordering::SeqCst) { Err(StatusCode::SERVICE_UNAVAILABLE) } else { Ok("[]") }
    /// };
    /// let layer = CacheResponse::new(&cache)
    ///     .ttl(Duration::from_millis(50))
    ///     .fail_safe(Duration::from_secs(3600))
    ///     .build()?;
    /// let app = Router::new().route("/songs", get(handler)).route_layer(layer);
    /// let get = || Request::get("/songs").body(Body::empty()).unwrap();
    ///
    /// app.clone().oneshot(get()).await?;
    /// down.store(true, Ordering::SeqCst); // the database goes down
    /// tokio::time::sleep(Duration::from_millis(100)).await; // past the TTL
    /// let answer = app.oneshot(get()).await?;
    /// assert_eq!(answer.status(), StatusCode::OK, "the last good answer, not the 503");
    /// assert_eq!(answer.headers()["x-cache"], "STALE");
    /// # Ok(()) }
    /// ```
    pub fn fail_safe(mut self, max_stale: Duration) -> Self {
        self.fresh.fail_safe = Some(max_stale);
        self
    }

    /// With [`fail_safe`](Self::fail_safe): how often a failing route's handler is tried
    /// again (default 10 s); requests in between get the stored answer without running it.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = querycache::http::CacheResponse::new(querycache::Cache::new())
    ///     .fail_safe(Duration::from_secs(3600))
    ///     .fail_safe_throttle(Duration::from_secs(1));
    /// # assert!(builder.build().is_ok());
    /// ```
    pub fn fail_safe_throttle(mut self, every: Duration) -> Self {
        self.fresh.fail_safe_throttle = Some(every);
        self
    }

    /// **Early refresh** (XFetch): a hit runs the handler in the background before the
    /// answer expires, with a probability that grows as expiry nears, in proportion to how
    /// long the handler took and to `beta` (1.0 is the usual choice). Requests keep getting
    /// the stored answer (`X-Cache: HIT`) meanwhile. See
    /// [`EntryOptions::early_refresh`](crate::EntryOptions::early_refresh).
    ///
    /// **Invariant kept**: only the moment of recomputation moves.
    ///
    /// ```
    /// let builder = querycache::http::CacheResponse::new(querycache::Cache::new()).early_refresh(1.0);
    /// # assert!(builder.build().is_ok());
    /// ```
    pub fn early_refresh(mut self, beta: f64) -> Self {
        self.fresh.set_early_refresh(beta);
        self
    }

    /// **Soft timeout**: when the handler takes longer than `after` and a stored answer may
    /// stand in (within the [`swr`](Self::swr) or [`fail_safe`](Self::fail_safe) window, not
    /// invalidated), serve it (`X-Cache: STALE`) and let the handler finish in the
    /// background, where its answer is stored. Without such an answer, keep waiting (up to
    /// the [hard timeout](Self::hard_timeout)).
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = querycache::http::CacheResponse::new(querycache::Cache::new())
    ///     .fail_safe(Duration::from_secs(3600))
    ///     .soft_timeout(Duration::from_millis(300));
    /// # assert!(builder.build().is_ok());
    /// ```
    pub fn soft_timeout(mut self, after: Duration) -> Self {
        self.fresh.soft_timeout = Some(after);
        self
    }

    /// **Hard timeout**: give up on the handler after `after` (it is dropped): the request
    /// gets the [fail-safe](Self::fail_safe) answer if there is one, else
    /// `504 Gateway Timeout` (code `timeout`, in the [`ApiError`](crate::http::ApiError)
    /// envelope).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use axum::{Router, body::Body, http::{Request, StatusCode}, routing::get};
    /// use querycache::{Cache, http::CacheResponse};
    /// use tower::ServiceExt;
    ///
    /// let slow = || async { tokio::time::sleep(Duration::from_secs(60)).await; "[]" };
    /// let layer = CacheResponse::new(Cache::new()).hard_timeout(Duration::from_millis(50)).build()?;
    /// let app = Router::new().route("/songs", get(slow)).route_layer(layer);
    /// let answer = app.oneshot(Request::get("/songs").body(Body::empty())?).await?;
    /// assert_eq!(answer.status(), StatusCode::GATEWAY_TIMEOUT);
    /// # Ok(()) }
    /// ```
    pub fn hard_timeout(mut self, after: Duration) -> Self {
        self.fresh.hard_timeout = Some(after);
        self
    }

    /// Checks the settings and makes the layer.
    ///
    /// # Errors
    /// [`Error::InvalidName`] for a tag template that does not parse (unbalanced braces)
    /// or cannot make a valid tag, a `Vary` name that is not a header name, or an invalid
    /// namespace.
    ///
    /// ```
    /// use querycache::{Cache, http::CacheResponse};
    ///
    /// assert!(CacheResponse::new(Cache::new()).tags(["model:songs:{id"]).build().is_err());
    /// assert!(CacheResponse::new(Cache::new()).vary(["not a header"]).build().is_err());
    /// ```
    pub fn build(self) -> Result<CacheResponseLayer, Error> {
        crate::key::validate_name("namespace", &self.namespace, crate::MAX_KEY_LEN / 2)?;
        let templates = self
            .tags
            .iter()
            .map(|t| TagTemplate::parse(t))
            .collect::<Result<Vec<_>, _>>()?;
        let vary = self
            .vary
            .iter()
            .map(|name| {
                HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
                    Error::invalid_name("header name", name, "is not a valid HTTP header name")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let config = self.cache.config();
        let ttl = self
            .ttl
            .or_else(|| config.ttl_for_namespace(&self.namespace))
            .unwrap_or(config.default_ttl())
            .min(config.max_ttl());
        let cache_control = self.cache_control.unwrap_or_else(|| {
            // What the layer itself does past the TTL, told to the browser (RFC 5861).
            let mut value = CacheControl::private_max_age(ttl.as_secs());
            let swr = self
                .fresh
                .swr
                .or_else(|| config.swr_for_namespace(&self.namespace));
            if let Some(window) = swr.filter(|w| w.as_secs() > 0) {
                value = value.stale_while_revalidate(window.as_secs());
            }
            if let Some(window) = self.fresh.fail_safe.filter(|w| w.as_secs() > 0) {
                value = value.stale_if_error(window.as_secs());
            }
            value
        });
        let keyed = vary
            .iter()
            .cloned()
            .chain([header::AUTHORIZATION])
            .collect();
        let keyed_hash = KeyedHash::new(config)?;
        let mut options = crate::EntryOptions::new().namespace(&self.namespace);
        if let Some(ttl) = self.ttl {
            options = options.ttl(ttl);
        }
        options.fresh = self.fresh;
        Ok(CacheResponseLayer {
            settings: Arc::new(Settings {
                cache: self.cache,
                templates,
                vary_value: VaryValue::new(&vary),
                vary,
                keyed,
                keyed_hash,
                namespace: self.namespace.into(),
                cache_control,
                max_body_bytes: self.max_body_bytes,
                cache_errors: self.cache_errors,
                fresh: self.fresh,
                path_check: self.path_check,
                tags_header: self.tags_header,
                options,
            }),
        })
    }
}

/// What [`CacheResponse::build`] checked, shared by every request of the route.
struct Settings {
    cache: Cache,
    templates: Vec<TagTemplate>,
    vary: Vec<HeaderName>,
    /// The `Vary` value of the answers, made from `vary` once.
    vary_value: VaryValue,
    /// The request headers the key covers: `vary` and `Authorization`.
    keyed: Vec<HeaderName>,
    /// What hashes their values into the key.
    keyed_hash: KeyedHash,
    namespace: Arc<str>,
    cache_control: CacheControl,
    max_body_bytes: usize,
    cache_errors: bool,
    fresh: Freshness,
    path_check: Option<PathCheck>,
    /// Which tags `X-Cache-Tags` shows (`None`: no header).
    tags_header: Option<TagFilter>,
    /// The options of every entry, but for the request's tags: namespace, TTL, freshness.
    options: crate::EntryOptions,
}

/// The layer [`CacheResponse::build`] makes: add it with
/// [`Router::route_layer`](axum::Router::route_layer). Cheap to clone.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use querycache::{Cache, http::cache_row_response};
///
/// let layer = cache_row_response(&Cache::new(), Duration::from_secs(60), "songs", "id").unwrap();
/// let app: Router = Router::new().route("/songs/{id}", get(|| async { "song" })).route_layer(layer);
/// ```
#[derive(Clone)]
pub struct CacheResponseLayer {
    settings: Arc<Settings>,
}

impl std::fmt::Debug for CacheResponseLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tags: Vec<&str> = self.settings.templates.iter().map(|t| t.source()).collect();
        f.debug_struct("CacheResponseLayer")
            .field("namespace", &self.settings.namespace)
            .field("tags", &tags)
            .field("vary", &self.settings.vary)
            .field("cache_control", &self.settings.cache_control)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for CacheResponseLayer {
    type Service = CacheResponseService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CacheResponseService {
            inner,
            settings: Arc::clone(&self.settings),
        }
    }
}

/// Shorthand: cache a route's answers for `ttl`, depending on the tag templates `tags`
/// (see [`CacheResponse::tags`]), with the other defaults of [`CacheResponse::new`].
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use querycache::{Cache, http::cache_api_response};
///
/// let cache = Cache::new();
/// let app: Router = Router::new()
///     .route("/songs", get(|| async { "[]" }))
///     .route_layer(cache_api_response(&cache, Duration::from_secs(60), ["model:songs"]).unwrap());
/// ```
///
/// # Errors
/// As [`CacheResponse::build`].
pub fn cache_api_response<I: IntoIterator<Item = T>, T: AsRef<str>>(
    cache: impl AsRef<Cache>,
    ttl: Duration,
    tags: I,
) -> Result<CacheResponseLayer, Error> {
    CacheResponse::new(cache).ttl(ttl).tags(tags).build()
}

/// Shorthand for a by-id route: tags `model:<table>:{<param>}` and `model:<table>#bulk` —
/// the tags `#[cached_query(row = id)]` uses, so a write to another row keeps the answer
/// (and its ETag) valid, and a write to this row, or to unknown rows of the table, does
/// not.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use querycache::{Cache, http::cache_row_response};
///
/// let cache = Cache::new();
/// let app: Router = Router::new()
///     .route("/songs/{id}", get(|| async { "song" }))
///     .route_layer(cache_row_response(&cache, Duration::from_secs(60), "songs", "id").unwrap());
/// ```
///
/// # Errors
/// As [`CacheResponse::build`] (a table or parameter name that makes an invalid tag).
pub fn cache_row_response(
    cache: impl AsRef<Cache>,
    ttl: Duration,
    table: &str,
    param: &str,
) -> Result<CacheResponseLayer, Error> {
    let escape = |text: &str| text.replace('{', "{{").replace('}', "}}");
    let row = format!("{}{{{param}}}", escape(Tag::row(table, "").as_str()));
    let bulk = escape(Tag::bulk(table).as_str());
    CacheResponse::new(cache).ttl(ttl).tags([row, bulk]).build()
}
