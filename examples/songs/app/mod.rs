//! The songs app as a library: configuration, start-up (database, migrations, cache,
//! warmers), the router, and serving. `main.rs` runs it; the test suite starts the same
//! app on free ports.
//!
//! | route | what |
//! | --- | --- |
//! | `POST /api/v1/users` | create a user `{name, email}` |
//! | `GET /api/v1/users/{id}` | a user (cached) |
//! | `GET /api/v1/users/{id}/songs` | a user's songs, newest first (cached) |
//! | `POST /api/v1/users/{id}/songs/archive` | archive all their songs (`update_many`) |
//! | `POST /api/v1/songs` | create a song `{title, artist, author_id, content?}` |
//! | `GET /api/v1/songs/{id}` | a song (cached) |
//! | `PUT /api/v1/songs/{id}` | change `{title?, artist?, content?, archived?}` |
//! | `DELETE /api/v1/songs/{id}` | delete a song |
//! | `GET /api/v1/songs?limit=N` | the newest songs (cached) |
//! | `GET /api/v1/songs/count` | how many songs (cached) |
//! | `GET /` | a page listing the newest songs, kept in the browser by querycache's client and updated live |
//! | `/api/v1/cache/...` | health, metrics, clear, warm, analytics, dashboard, events, client.js |
//! | `GET /metrics` | Prometheus text |

mod db;
mod extract;
pub mod queries;
#[path = "../../support/schema.rs"]
pub mod schema;
mod songs;
mod users;
mod warmers;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use querycache::Cache;
use querycache::http::{
    ApiError, CacheControl, CacheResponse, ManagementOptions, ServeOptions, management_router,
    prometheus_route, serve,
};
use querycache::orm::sea_orm::CachedConnection;

/// What can stop the app from starting.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A variable of the environment is invalid.
    #[error("invalid {variable}={value:?}: {reason}")]
    Config {
        /// The variable, e.g. `PORT`.
        variable: &'static str,
        /// Its value.
        value: String,
        /// What is expected.
        reason: String,
    },
    /// The cache's configuration (`CACHE_*`, `REDIS_URL`) is invalid.
    #[error(transparent)]
    Cache(#[from] querycache::Error),
    /// The database cannot be reached or migrated.
    #[error("database {url}: {source}")]
    Database {
        /// `DATABASE_URL`, password masked.
        url: String,
        /// What failed.
        #[source]
        source: sea_orm::DbErr,
    },
    /// The data directory of the default SQLite database cannot be created.
    #[error("cannot create {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The port cannot be bound.
    #[error("cannot listen on 127.0.0.1:{0}: {1}")]
    Bind(u16, #[source] std::io::Error),
}

/// Everything the app is started with.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// `PORT` (default 3000).
    pub port: u16,
    /// `DATABASE_URL` (default: a SQLite file under `./data/`).
    pub database_url: String,
    /// The cache (from `CACHE_*` and `REDIS_URL`).
    pub cache: Cache,
    /// The management routes' options: `CACHE_ADMIN_TOKEN`, the bearer token of the admin
    /// routes (unset: they answer 403).
    pub management: ManagementOptions,
    /// How the app is served: header, body and request timeouts, the connection bound and
    /// the shutdown deadline (`CACHE_HTTP_*`, see [`ServeOptions`]).
    pub serve: ServeOptions,
}

/// The default database: a SQLite file, created with its directory on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/songs.db?mode=rwc";

impl AppConfig {
    /// The configuration for `database_url` and `cache`, on port 3000, without admin token.
    // The test suite starts the app this way (its own database and cache per test).
    #[allow(dead_code)]
    pub fn new(database_url: impl Into<String>, cache: Cache) -> Self {
        AppConfig {
            port: 3000,
            database_url: database_url.into(),
            cache,
            management: ManagementOptions::new(),
            serve: ServeOptions::new(),
        }
    }

    /// From the environment: `PORT`, `DATABASE_URL`, `CACHE_ADMIN_TOKEN`, the serving limits
    /// (`CACHE_HTTP_*`), and the cache's `CACHE_*` variables and `REDIS_URL`.
    pub fn from_env() -> Result<Self, AppError> {
        let port = match std::env::var("PORT") {
            Ok(value) => value.trim().parse::<u16>().map_err(|e| AppError::Config {
                variable: "PORT",
                value: value.clone(),
                reason: format!("expected a port number 0..=65535 ({e})"),
            })?,
            Err(_) => 3000,
        };
        let database_url = std::env::var("DATABASE_URL")
            .ok()
            .filter(|url| !url.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        Ok(AppConfig {
            port,
            database_url,
            cache: Cache::from_env()?,
            management: ManagementOptions::from_env()?,
            serve: ServeOptions::from_env()?,
        })
    }
}

/// The running app's state, shared by every handler: cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    db: CachedConnection,
    cache: Cache,
    management: ManagementOptions,
    serve: ServeOptions,
    database_label: String,
    queries: Arc<AtomicU64>,
    /// The change feed (`CACHE_CHANGE_FEED`), running as long as the app.
    feed: Option<querycache::feed::ChangeFeedHandle>,
}

impl App {
    /// Connects to the database, migrates it, and registers the cache warmers (running
    /// them in the background when `CACHE_WARM_ON_STARTUP=true`).
    pub async fn start(config: AppConfig) -> Result<App, AppError> {
        let queries = Arc::new(AtomicU64::new(0));
        let (db, database_label) = db::connect(&config.database_url, Arc::clone(&queries)).await?;
        let db = CachedConnection::new(db, config.cache.clone());
        // `CACHE_CHANGE_FEED=...` follows the app's own database unless
        // `CACHE_CHANGE_FEED_URL` names another.
        let feed = match config.cache.config().change_feed() {
            Some(feed) => {
                let feed = if feed.has_url() {
                    feed.clone()
                } else {
                    feed.clone().url(config.database_url.clone())
                };
                tracing::info!(mode = %feed.mode(), "starting the change feed");
                // The app owns its schema: with the trigger feed it installs the triggers
                // after its migrations (idempotent, so every start may).
                #[cfg(feature = "feed-postgres")]
                if feed.mode() == querycache::feed::FeedMode::Triggers {
                    let tables = querycache::feed::postgres::install_triggers(&feed).await?;
                    tracing::info!(tables, "change feed triggers installed");
                }
                Some(feed.start(&config.cache).await?)
            }
            None => None,
        };
        let app = App {
            inner: Arc::new(Inner {
                db,
                cache: config.cache,
                management: config.management,
                serve: config.serve,
                database_label,
                queries,
                feed,
            }),
        };
        warmers::register(&app);
        if let Some(started) = app.cache().warm_on_startup()? {
            tracing::info!(warmers = ?started.types, "CACHE_WARM_ON_STARTUP: warming in the background");
        }
        Ok(app)
    }

    /// The database connection (every write through it invalidates the cache).
    pub fn db(&self) -> &CachedConnection {
        &self.inner.db
    }

    /// The cache.
    pub fn cache(&self) -> &Cache {
        &self.inner.cache
    }

    /// The database in use, password masked (for logs).
    pub fn database_label(&self) -> &str {
        &self.inner.database_label
    }

    /// What the change feed is doing, when one runs.
    #[allow(dead_code)] // the test suite reads it
    pub fn feed_status(&self) -> Option<querycache::feed::FeedStatus> {
        self.inner.feed.as_ref().map(|feed| feed.status())
    }

    /// SQL statements sent to the database since start-up.
    pub fn database_queries(&self) -> u64 {
        self.inner.queries.load(Ordering::Relaxed)
    }

    /// The app's routes. Every GET of the API caches its whole answer (`X-Cache`), with a
    /// deep ETag: a conditional GET whose data has not changed is a `304` that runs no
    /// query. Browsers are told `private, no-cache`: they may keep an answer but must
    /// revalidate it each time, which costs the server one memory lookup.
    pub fn router(&self) -> Result<Router, AppError> {
        let cache = self.cache();
        // Answers name their tags (`X-Cache-Tags`, filtered as the event stream is), so that
        // the page's browser cache drops them when the stream says they moved.
        let shown_tags = self.inner.management.event_tag_filter().clone();
        let cached = |ttl: u64, tags: &[&str]| {
            CacheResponse::new(cache)
                .ttl(Duration::from_secs(ttl))
                .tags(tags)
                .tags_header(shown_tags.clone())
                .cache_control(browser_policy())
                // Answers are never shared across credentials (the key includes a hash of
                // `Authorization`); say so to any cache on the way.
                .vary(["authorization"])
        };
        let layer = |ttl: u64, tags: &[&str]| cached(ttl, tags).build();
        // A by-id route takes the cache only for ids its handler accepts (`ApiPath<i32>`):
        // `/songs/abc` or `/songs/99999999999` is a 400 that never touches the store.
        let by_id = |ttl: u64, tags: &[&str]| cached(ttl, tags).path::<i32>().build();
        // The API's routes are written out in full rather than nested under `/api/v1`: a
        // nested route strips its prefix from every request's URI (a new URI, allocated) and
        // is wrapped once more, which a cache hit — little else — pays for in full.
        let api = Router::new()
            .route("/api/v1/users", post(users::create))
            .route(
                "/api/v1/users/{id}",
                get(users::get).route_layer(by_id(600, &["model:users:{id}", "model:users#bulk"])?),
            )
            .route(
                "/api/v1/users/{id}/songs",
                get(users::songs).route_layer(by_id(
                    300,
                    &["model:songs", "model:users:{id}", "model:users#bulk"],
                )?),
            )
            .route(
                "/api/v1/users/{id}/songs/archive",
                post(users::archive_songs),
            )
            .route(
                "/api/v1/songs",
                get(songs::list)
                    .route_layer(layer(300, &["model:songs"])?)
                    .post(songs::create),
            )
            .route(
                "/api/v1/songs/count",
                get(songs::count).route_layer(layer(60, &["model:songs"])?),
            )
            .route(
                "/api/v1/songs/{id}/card",
                get(songs::card).route_layer(by_id(600, &[])?),
            )
            .route(
                "/api/v1/songs/{id}",
                get(songs::get)
                    .route_layer(by_id(600, &["model:songs:{id}", "model:songs#bulk"])?)
                    .put(songs::update)
                    .delete(songs::delete),
            );
        Ok(Router::new()
            .route("/", get(page))
            .merge(api.with_state(self.clone()))
            .nest(
                "/api/v1/cache",
                management_router(cache.clone(), self.inner.management.clone()),
            )
            .route("/metrics", prometheus_route(cache.clone()))
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            // One layer (one wrapping of each route) for both: the size check first.
            .layer(
                tower::ServiceBuilder::new()
                    .layer(RefuseOversizedLayer)
                    .layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
            ))
    }

    /// Serves the app on `listener` until `shutdown` resolves, then lets in-flight
    /// requests finish — for at most the shutdown timeout of its [`ServeOptions`], whose
    /// header, body and request timeouts and connection bound keep slow and idle clients
    /// from holding the server.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let router = self.router()?;
        let options = self.inner.serve.clone();
        serve(listener, router, options, shutdown).await?;
        Ok(())
    }
}

/// The largest request body read (axum's default, said out loud): a larger one is
/// answered 413 — at once when `Content-Length` announces it, otherwise as soon as the
/// limit is crossed.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Answers 413 to a request whose `Content-Length` exceeds [`MAX_BODY_BYTES`] without
/// waiting for the body: the JSON extractor would otherwise wait for it (a client that
/// announces 10 MB and sends nothing holds the connection) only to refuse it.
///
/// A plain tower layer rather than `axum::middleware::from_fn`, which boxes the rest of
/// the stack and its future on every request: a check of one header should cost no more.
#[derive(Debug, Clone, Copy)]
struct RefuseOversizedLayer;

impl<S> tower::Layer<S> for RefuseOversizedLayer {
    type Service = RefuseOversized<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RefuseOversized { inner }
    }
}

/// The service of [`RefuseOversizedLayer`].
#[derive(Debug, Clone)]
struct RefuseOversized<S> {
    inner: S,
}

impl<S> tower::Service<axum::extract::Request> for RefuseOversized<S>
where
    S: tower::Service<axum::extract::Request, Response = axum::response::Response>,
{
    type Response = axum::response::Response;
    type Error = S::Error;
    type Future = futures_util::future::Either<
        std::future::Ready<Result<axum::response::Response, S::Error>>,
        S::Future,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::extract::Request) -> Self::Future {
        let announced = request
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok());
        match announced {
            Some(len) if len > MAX_BODY_BYTES as u64 => {
                futures_util::future::Either::Left(std::future::ready(Ok(ApiError::new(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the body is {len} bytes; the limit is {MAX_BODY_BYTES}"),
                )
                .into_response())))
            }
            _ => futures_util::future::Either::Right(self.inner.call(request)),
        }
    }
}

/// What browsers are told about the API's answers: keep them, but revalidate each time.
/// `GET /`: the page (`page.html`), which imports the browser client from the management
/// router.
async fn page() -> impl IntoResponse {
    use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
            (
                CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            ),
        ],
        include_str!("page.html"),
    )
}

fn browser_policy() -> CacheControl {
    CacheControl::custom("private, no-cache").unwrap_or_else(|_| CacheControl::no_cache())
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}
