//! The examples' logging, on stderr: at info level unless `RUST_LOG` says otherwise
//! (`RUST_LOG=info,querycache=debug` shows every cache event: SET, HIT, MISS, INVALIDATED —
//! one line per request, too many for a server under load, hence not the default). Keys
//! longer than 200 bytes are quoted by their start and length.

pub fn init() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
