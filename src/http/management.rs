//! The management router: health, metrics, analytics, clear, warm, the dashboard, the live
//! invalidation stream and the browser client.

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderValue, Method, Uri};
use axum::response::Response;
use axum::routing::{get, post};

use super::auth::AdminToken;
use super::envelope::ApiError;
use super::tag_filter::EVENT_TAGS_VAR;
use super::{
    CacheControl, ConditionalGet, TagFilter, clear, client_js, dashboard, events, status, warm,
};
use crate::{Cache, Error};

/// The environment variable holding the admin bearer token.
const ADMIN_TOKEN_VAR: &str = "CACHE_ADMIN_TOKEN";
/// The shortest admin token accepted from the environment (`CACHE_ADMIN_TOKEN`): shorter
/// ones are guessable, and refused at start-up.
///
/// ```
/// use querycache::http::{MIN_ADMIN_TOKEN_LEN, ManagementOptions};
///
/// let short = "x".repeat(MIN_ADMIN_TOKEN_LEN - 1);
/// assert!(ManagementOptions::from_vars([("CACHE_ADMIN_TOKEN", short)]).is_err());
/// ```
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// How [`management_router`] is set up: the admin bearer token, and which tags the live
/// invalidation stream (`GET /events`) sends.
///
/// Without a token the admin routes (`POST /clear`, `POST /warm`) answer 403: they are
/// disabled, not open. The token is kept as a SHA-256 digest and compared in constant time;
/// `Debug` never shows it.
///
/// ```
/// use querycache::http::ManagementOptions;
///
/// let options = ManagementOptions::new().admin_token("correct horse battery staple");
/// assert!(options.has_admin_token());
/// assert!(!ManagementOptions::new().admin_token("").has_admin_token(), "empty: no token");
/// assert!(!format!("{options:?}").contains("horse"));
/// ```
#[derive(Clone, Default)]
pub struct ManagementOptions {
    token: Option<String>,
    event_tags: TagFilter,
}

impl std::fmt::Debug for ManagementOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let token = if self.token.is_some() {
            "<redacted>"
        } else {
            "<none>"
        };
        f.debug_struct("ManagementOptions")
            .field("admin_token", &token)
            .field("event_tags", &self.event_tags)
            .finish()
    }
}

impl ManagementOptions {
    /// No admin token: the admin routes answer 403.
    ///
    /// ```
    /// assert!(!querycache::http::ManagementOptions::new().has_admin_token());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The bearer token the admin routes require (`Authorization: Bearer <token>`).
    /// Surrounding whitespace is ignored (HTTP strips it from header values anyway); an
    /// empty or blank token means no token, and the admin routes answer 403.
    ///
    /// ```
    /// use querycache::http::ManagementOptions;
    ///
    /// assert!(ManagementOptions::new().admin_token("s3cret").has_admin_token());
    /// assert!(!ManagementOptions::new().admin_token("  ").has_admin_token());
    /// ```
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        let token = token.into();
        let token = token.trim();
        self.token = (!token.is_empty()).then(|| token.to_owned());
        self
    }

    /// Options from the environment: the admin token from `CACHE_ADMIN_TOKEN` (unset,
    /// empty or blank, there is no token and the admin routes answer 403), the event
    /// stream's tag prefixes from `CACHE_EVENTS_TAG_PREFIXES` (see [`TagFilter::parse`];
    /// unset: model tags only).
    ///
    /// ```
    /// let options = querycache::http::ManagementOptions::from_env().unwrap();
    /// # let _ = options;
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] naming `CACHE_ADMIN_TOKEN` when its value is not a token a client
    /// can send, or `CACHE_EVENTS_TAG_PREFIXES` when it is not a list of prefixes (see
    /// [`from_vars`](Self::from_vars)).
    pub fn from_env() -> Result<Self, Error> {
        let mut vars = Vec::new();
        for name in [ADMIN_TOKEN_VAR, EVENT_TAGS_VAR] {
            match std::env::var_os(name) {
                None => {}
                Some(value) => match value.into_string() {
                    Ok(value) => vars.push((name, value)),
                    Err(value) => {
                        let shown = if name == ADMIN_TOKEN_VAR {
                            "<redacted>".into()
                        } else {
                            value.to_string_lossy().into_owned()
                        };
                        return Err(Error::config(name, shown, "not valid UTF-8"));
                    }
                },
            }
        }
        Self::from_vars(vars)
    }

    /// Like [`from_env`](Self::from_env), from any list of `(name, value)` pairs; other
    /// variables are ignored.
    ///
    /// ```
    /// use querycache::http::ManagementOptions;
    ///
    /// let options =
    ///     ManagementOptions::from_vars([("CACHE_ADMIN_TOKEN", "3f9c1d7be2a04c55")]).unwrap();
    /// assert!(options.has_admin_token());
    /// let unset = ManagementOptions::from_vars([("CACHE_ADMIN_TOKEN", "")]).unwrap();
    /// assert!(!unset.has_admin_token());
    ///
    /// let err = ManagementOptions::from_vars([("CACHE_ADMIN_TOKEN", "two words")]).unwrap_err();
    /// assert!(err.to_string().contains("CACHE_ADMIN_TOKEN"));
    /// let short = ManagementOptions::from_vars([("CACHE_ADMIN_TOKEN", "x")]).unwrap_err();
    /// assert!(short.to_string().contains("at least 16"));
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] naming `CACHE_ADMIN_TOKEN` when the token (once trimmed) holds
    /// anything but visible ASCII characters (a client could never send it in a header), or
    /// is shorter than [`MIN_ADMIN_TOKEN_LEN`] characters (guessable);
    /// [`Error::Config`] naming `CACHE_EVENTS_TAG_PREFIXES` when [`TagFilter::parse`]
    /// refuses its value.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut options = Self::new();
        for (name, value) in vars {
            if name.as_ref() == EVENT_TAGS_VAR {
                options.event_tags = TagFilter::parse(EVENT_TAGS_VAR, value.as_ref())?;
                continue;
            }
            if name.as_ref() != ADMIN_TOKEN_VAR {
                continue;
            }
            let token = value.as_ref().trim();
            if !token.bytes().all(|byte| byte.is_ascii_graphic()) {
                return Err(Error::config(
                    ADMIN_TOKEN_VAR,
                    "<redacted>",
                    "the token may hold visible ASCII characters only (no spaces, no control or non-ASCII characters)",
                ));
            }
            if !token.is_empty() && token.len() < MIN_ADMIN_TOKEN_LEN {
                return Err(Error::config(
                    ADMIN_TOKEN_VAR,
                    "<redacted>",
                    format!(
                        "the token is {} characters long: use at least {MIN_ADMIN_TOKEN_LEN} \
                         random characters (for example `openssl rand -hex 32`)",
                        token.len()
                    ),
                ));
            }
            options = options.admin_token(token);
        }
        Ok(options)
    }

    /// Which tags the live invalidation stream (`GET /events`) sends: by default model tags
    /// only ([`TagFilter::models`]), never application tags such as `user:42`, which may
    /// name other users. Every client that can reach the router sees every allowed tag.
    ///
    /// ```
    /// use querycache::http::{ManagementOptions, TagFilter};
    ///
    /// let options = ManagementOptions::new().event_tags(TagFilter::models().allow_prefix("team:"));
    /// assert!(options.event_tag_filter().allows("team:3"));
    /// assert!(!ManagementOptions::new().event_tag_filter().allows("user:1"));
    /// ```
    pub fn event_tags(mut self, filter: TagFilter) -> Self {
        self.event_tags = filter;
        self
    }

    /// The filter set by [`event_tags`](Self::event_tags).
    ///
    /// ```
    /// let options = querycache::http::ManagementOptions::new();
    /// assert!(options.event_tag_filter().allows("model:songs"));
    /// ```
    pub fn event_tag_filter(&self) -> &TagFilter {
        &self.event_tags
    }

    /// Whether an admin token is set.
    ///
    /// ```
    /// assert!(!querycache::http::ManagementOptions::new().has_admin_token());
    /// ```
    pub fn has_admin_token(&self) -> bool {
        self.token.is_some()
    }
}

/// The state every management handler shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) cache: Cache,
    pub(crate) token: Arc<AdminToken>,
    /// Which tags `GET /events` sends.
    pub(crate) event_tags: TagFilter,
}

impl FromRef<Shared> for Arc<AdminToken> {
    fn from_ref(shared: &Shared) -> Self {
        Arc::clone(&shared.token)
    }
}

/// The management routes of `cache`, to nest anywhere in an application:
///
/// | route | auth | answer |
/// | --- | --- | --- |
/// | `GET /health` | – | [`Cache::health`]: 503 while the instance is starting ([`Health::ready`](crate::Health::ready)), then 200 even when degraded (the body says `"healthy": false`); `?strict=true`: 503 whenever not healthy |
/// | `GET /metrics` | – | [`Cache::stats`]: hits, misses, hit rate, latencies, per namespace |
/// | `GET /analytics` | – (admin: key texts) | [`Cache::analytics`]: efficiency, top keys, a 15-minute timeline, namespaces, recommendations. The top keys' texts are [redacted](crate::analytics::Analytics::redacted) (`usage.keys_redacted: true`) unless the request carries the admin token; a wrong token gets the redacted view too (not a 401), and counts as a failed attempt |
/// | `POST /clear` | admin | body `{"namespace", "pattern", "tags", "all"}`: what was cleared |
/// | `POST /warm` | admin | body `{"types", "force"}`: 202 with the warmers started ([`Cache::warm`]); 400 `unknown_warmer`, 409 `warm_in_progress` |
/// | `GET /dashboard` | – | an HTML page polling the routes above (the admin buttons, and the top keys' texts, ask for the token) |
/// | `GET /events` | – | Server-Sent Events: `ready` (`{"instance": …}`), then `invalidate` (`id: <seq>`, `{"tags": […]}`) for each batch of invalidated tags that [`ManagementOptions::event_tags`] allows (model tags by default), `reset` (`{}`) when events were lost or the cache cleared; a keep-alive comment every 15 s |
/// | `GET /client.js` | – | the browser client (`clients/js`), `text/javascript`, a strong ETag of its content, `Cache-Control: no-cache` |
///
/// Every JSON answer is the [`ApiResponse`](super::ApiResponse) /
/// [`ApiError`](super::ApiError) envelope, every answer but `client.js` carries
/// `Cache-Control: no-store`.
///
/// **The event stream and privacy**: `GET /events` tells every client that can reach it
/// which tables and rows change (`model:songs:42`), as `/metrics` tells it the hit rate. It
/// needs no token (a browser's `EventSource` cannot send `Authorization`): put the router
/// behind the application's own authentication if that is sensitive, and keep application
/// tags (`user:*`, which may name other users) out of [`ManagementOptions::event_tags`].
/// Admin routes need `Authorization: Bearer <token>` (see [`ManagementOptions`]): missing
/// or wrong, 401 with `WWW-Authenticate: Bearer`; no token configured, 403. A body that is
/// not JSON, of the wrong shape, with an unknown field, or sent without
/// `Content-Type: application/json` is answered 400 `invalid_body` naming the problem.
///
/// The router has no state left to provide; to nest it in an application with state, give
/// the application its state first (`app.with_state(state).nest(..)`), or use
/// [`Router::nest_service`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use axum::{Router, body::Body, http::Request};
/// use querycache::{Cache, http::{ManagementOptions, management_router}};
/// use tower::ServiceExt;
///
/// let cache = Cache::new();
/// let app: Router = Router::new().nest(
///     "/api/v1/cache",
///     management_router(cache, ManagementOptions::new().admin_token("s3cret")),
/// );
///
/// let request = Request::get("/api/v1/cache/health").body(Body::empty()).unwrap();
/// let response = app.clone().oneshot(request).await.unwrap();
/// assert_eq!(response.status(), 200);
/// assert_eq!(response.headers()["cache-control"], "no-store");
/// let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
/// let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
/// assert_eq!(body["data"]["healthy"], true);
///
/// let request = Request::post("/api/v1/cache/clear")
///     .header("content-type", "application/json")
///     .body(Body::from(r#"{"all": true}"#))
///     .unwrap();
/// let response = app.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), 401, "no bearer token");
/// assert_eq!(response.headers()["www-authenticate"], r#"Bearer realm="querycache""#);
/// # }
/// ```
pub fn management_router(cache: Cache, options: ManagementOptions) -> Router {
    let token = AdminToken::new(options.token.as_deref());
    if !token.is_set() {
        tracing::info!("management router: admin routes disabled (no CACHE_ADMIN_TOKEN)");
    }
    let shared = Shared {
        cache,
        token: Arc::new(token),
        event_tags: options.event_tags,
    };
    Router::new()
        .route("/health", get(status::health))
        .route("/metrics", get(status::metrics))
        .route("/analytics", get(status::analytics))
        .route("/clear", post(clear::clear))
        .route("/warm", post(warm::warm))
        .route("/dashboard", get(dashboard::page))
        // A stream: `ConditionalGet` passes it on unread.
        .route("/events", get(events::stream))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // GET answers carry a body-hash ETag (a client that sends `If-None-Match` gets a
        // 304 for unchanged figures; the dashboard does not: its answers are `no-store`,
        // which browsers and the JS client never keep); every answer is `no-store`.
        .layer(ConditionalGet::new().cache_control(CacheControl::no_store()))
        .layer(axum::middleware::map_response(no_store))
        // Added after the layers: its own ETag and `no-cache`.
        .route("/client.js", get(client_js::script))
        .with_state(shared)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no management route at {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Management answers are live figures and admin results: never cached by anyone.
async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
