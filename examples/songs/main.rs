//! The songs app: a user/song CRUD service in axum + SeaORM whose reads are cached with
//! querycache, with the management API, Prometheus metrics, the dashboard, and a page at `/`
//! that keeps the newest songs in the browser (querycache's JS client) and follows writes
//! live over the invalidation stream.
//!
//! ```text
//! cargo run --example songs                                   # SQLite file + memory store
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example songs --features redis   # tiered
//! # several instances on one Redis share answers to credentialed requests with one secret:
//! export CACHE_KEY_SECRET=$(openssl rand -hex 32)   # once; the same value for every instance
//! DATABASE_URL=postgres://postgres@127.0.0.1/songs cargo run --example songs
//! CACHE_ADMIN_TOKEN=$(openssl rand -hex 16) cargo run --example songs  # enables clear and warm
//! ```
//!
//! Listens on `127.0.0.1:$PORT` (default 3000); the routes are listed in `app/mod.rs` and
//! in the README. It is served by `querycache::http::serve`: a client that does not send its
//! request head within `CACHE_HTTP_HEADER_TIMEOUT_MS` (10 s) or its body within
//! `CACHE_HTTP_BODY_TIMEOUT_MS` (30 s) is cut, a handler slower than
//! `CACHE_HTTP_REQUEST_TIMEOUT_MS` (30 s) answers 503, and at most `CACHE_HTTP_MAX_CONNECTIONS`
//! (1024) connections are open. Ctrl-C (or SIGTERM) stops it gracefully: in-flight requests
//! finish, for at most `CACHE_HTTP_SHUTDOWN_TIMEOUT_MS` (10 s).

#[path = "../support/logging.rs"]
mod logging;

mod app;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    logging::init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "songs app failed");
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), app::AppError> {
    let config = app::AppConfig::from_env()?;
    let port = config.port;
    let limits = config.serve.clone();
    let app = app::App::start(config).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| app::AppError::Bind(port, e))?;
    let address = listener
        .local_addr()
        .map_err(|e| app::AppError::Bind(port, e))?;
    tracing::info!(
        %address,
        store = %app.cache().config().store_kind(),
        database = %app.database_label(),
        ?limits,
        "songs app listening on http://{address} (page: http://{address}/, dashboard: http://{address}/api/v1/cache/dashboard)"
    );
    let served = app.clone();
    app.serve(listener, shutdown_signal()).await?;
    let stats = served.cache().stats();
    tracing::info!(
        database_queries = served.database_queries(),
        cache_hits = stats.hits,
        cache_misses = stats.misses,
        "stopped"
    );
    Ok(())
}

/// Resolves on Ctrl-C, or on SIGTERM where there is one.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
