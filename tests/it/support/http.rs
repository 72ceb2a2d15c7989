//! A real HTTP server for a router under test: bound to a free loopback port, stopped on
//! Drop (also when the test panics).

use std::net::SocketAddr;

/// The fields of `GET <management>/metrics` that DESIGN.md names.
pub const METRICS_FIELDS: [&str; 10] = [
    "hits",
    "misses",
    "hit_rate",
    "sets",
    "invalidations",
    "errors",
    "avg_response_time_ms",
    "p99_response_time_ms",
    "memory_usage_bytes",
    "keys_count",
];

use axum::Router;
use tokio::task::JoinHandle;

/// `router` served on `127.0.0.1:<free port>` by a task of the test's runtime.
pub struct TestServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TestServer {
    /// Binds a free port and starts serving `router`.
    pub async fn start(router: Router) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free loopback port");
        let addr = listener.local_addr().expect("bound address");
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                eprintln!("test server stopped: {error}");
            }
        });
        TestServer { addr, task }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The port served.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
