//! The examples' logging, on stderr: the examples' own events at info level, and cache events
//! (SET, HIT, MISS, INVALIDATED) at debug level, unless `RUST_LOG` says otherwise
//! (`RUST_LOG=info` quietens the cache events).

pub fn init() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,querycache=debug".into()),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
