//! `querycache::http::serve` against clients that hold connections (issue 20, item 3): a
//! head sent halfway, a body that stalls, idle sockets beyond the connection bound, a slow
//! client at shutdown — each cut within its timeout while real requests are answered. And
//! the songs app, which is served the same way.
//!
//! Timing: "within the timeout" is checked against the timeout plus a generous margin
//! ([`MARGIN`]), "not before" against the instant measured before the client connected;
//! everything else waits on a condition with a deadline ([`PATIENCE`]), never on a sleep.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::routing::{get, post};
use querycache::Error;
use querycache::http::{ServeOptions, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

/// How late past its timeout a cut may come on a loaded 2-core machine.
const MARGIN: Duration = Duration::from_secs(4);
/// How long to wait for anything that must happen eventually.
const PATIENCE: Duration = Duration::from_secs(10);

/// What the test router's `/held` handler shares with the test.
#[derive(Clone, Default)]
struct Held {
    /// Notified when the handler has started.
    started: Arc<Notify>,
    /// The handler answers once notified.
    release: Arc<Notify>,
}

/// `GET /fast`: `ok`. `GET /peer`: the client's IP address. `POST /echo`: the body's length (read whole). `GET /held`: `done`,
/// once the test releases it. `GET /never`: never answers.
fn router(held: Held) -> Router {
    Router::new()
        .route("/fast", get(|| async { "ok" }))
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        )
        .route(
            "/echo",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/held",
            get(|State(held): State<Held>| async move {
                held.started.notify_one();
                held.release.notified().await;
                "done"
            }),
        )
        .route("/never", get(std::future::pending::<&'static str>))
        .with_state(held)
}

/// A server on a free loopback port, stopped when `stop` is sent (or dropped).
struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), Error>>,
}

async fn start(options: ServeOptions, held: Held) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let addr = listener.local_addr().expect("an address");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, router(held), options, async {
        let _ = stopped.await;
    }));
    Server { addr, stop, task }
}

/// Reads until the server closes the connection (end of stream or reset); what arrived,
/// or `None` if it is still open after [`PATIENCE`].
async fn read_until_closed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let mut buf = [0_u8; 4096];
    timeout(PATIENCE, async {
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
            received.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .ok()?;
    Some(received)
}

/// The status code and body of a raw HTTP/1.1 answer.
fn status_and_body(answer: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(answer);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Sends a whole `GET path` on a connection of its own (`connection: close`) and reads the
/// answer.
async fn fetch(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("the request is sent");
    let answer = read_until_closed(&mut stream)
        .await
        .expect("the answer comes, then the close");
    status_and_body(&answer)
}

/// Half a request head: the request line and one header, never the blank line.
const HALF_A_HEAD: &[u8] = b"GET /fast HTTP/1.1\r\nhost: test\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stalls_mid_head_is_cut_within_the_header_timeout_while_others_are_answered()
{
    let header_timeout = Duration::from_millis(300);
    let server = start(
        ServeOptions::new().header_timeout(header_timeout),
        Held::default(),
    )
    .await;

    let connecting = Instant::now();
    let mut slow = TcpStream::connect(server.addr).await.expect("connects");
    slow.write_all(HALF_A_HEAD)
        .await
        .expect("half a head is sent");

    assert_eq!(fetch(server.addr, "/fast").await, (200, "ok".to_owned()));
    assert_eq!(
        fetch(server.addr, "/peer").await,
        (200, "127.0.0.1".to_owned()),
        "handlers see the client's address"
    );

    read_until_closed(&mut slow)
        .await
        .expect("the slow client is disconnected");
    let held = connecting.elapsed();
    assert!(
        held >= header_timeout,
        "cut after {held:?}, before the header timeout"
    );
    assert!(
        held <= header_timeout + MARGIN,
        "cut only after {held:?} (header timeout {header_timeout:?})"
    );
    assert_eq!(fetch(server.addr, "/fast").await.0, 200, "still serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_is_answered_408_within_the_body_timeout_and_its_connection_closed() {
    let body_timeout = Duration::from_millis(400);
    let server = start(
        ServeOptions::new().body_timeout(body_timeout),
        Held::default(),
    )
    .await;

    let connecting = Instant::now();
    let mut slow = TcpStream::connect(server.addr).await.expect("connects");
    slow.write_all(
        b"POST /echo HTTP/1.1\r\nhost: test\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\n0123456789",
    )
    .await
    .expect("the head and a tenth of the body are sent");

    let answer = read_until_closed(&mut slow)
        .await
        .expect("answered, then disconnected");
    let held = connecting.elapsed();
    let (status, body) = status_and_body(&answer);
    assert_eq!(status, 408, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).expect("a JSON envelope");
    assert_eq!(body["status"], "error");
    assert_eq!(body["error"]["code"], "body_timeout");
    assert!(held >= body_timeout, "answered after {held:?}, too early");
    assert!(
        held <= body_timeout + MARGIN,
        "answered only after {held:?} (body timeout {body_timeout:?})"
    );

    // A body sent in time is read whole.
    let mut stream = TcpStream::connect(server.addr).await.expect("connects");
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-length: 5\r\n\r\nhello")
        .await
        .expect("sent");
    let answer = read_until_closed(&mut stream).await.expect("answered");
    assert_eq!(status_and_body(&answer), (200, "5".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_slower_than_the_request_timeout_is_answered_503() {
    let request_timeout = Duration::from_millis(300);
    let server = start(
        ServeOptions::new().request_timeout(request_timeout),
        Held::default(),
    )
    .await;
    let sending = Instant::now();
    let (status, body) = fetch(server.addr, "/never").await;
    let took = sending.elapsed();
    assert_eq!(status, 503, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).expect("a JSON envelope");
    assert_eq!(body["error"]["code"], "request_timeout");
    assert!(
        took >= request_timeout,
        "answered after {took:?}, too early"
    );
    assert!(
        took <= request_timeout + MARGIN,
        "answered only after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_beyond_the_connection_bound_are_shed_and_a_real_request_is_answered() {
    const MAX: usize = 8;
    let header_timeout = Duration::from_millis(500);
    let server = start(
        ServeOptions::new()
            .max_connections(MAX)
            .header_timeout(header_timeout),
        Held::default(),
    )
    .await;

    let connecting = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..MAX + 20 {
        idle.push(TcpStream::connect(server.addr).await.expect("connects"));
    }
    let (status, body) = fetch(server.addr, "/fast").await;
    let answered = connecting.elapsed();
    assert_eq!((status, body.as_str()), (200, "ok"));
    // At the bound the server stopped accepting: the request waited in the backlog until
    // idle sockets were cut by the header timeout (unbounded, it is answered at once).
    assert!(
        answered >= header_timeout,
        "answered after {answered:?}: the {MAX} connections of the bound were all held by idle sockets"
    );
    for (i, socket) in idle.iter_mut().enumerate() {
        assert!(
            read_until_closed(socket).await.is_some(),
            "idle socket {i} is still open"
        );
    }
    assert_eq!(fetch(server.addr, "/fast").await.0, 200, "still serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_request_in_flight_and_cuts_a_slow_client_at_the_deadline() {
    let shutdown_timeout = Duration::from_millis(500);
    let held = Held::default();
    let server = start(
        ServeOptions::new()
            // The header timeout would not cut the slow client before the test ends.
            .header_timeout(Duration::from_secs(60))
            .shutdown_timeout(shutdown_timeout),
        held.clone(),
    )
    .await;

    let mut slow = TcpStream::connect(server.addr).await.expect("connects");
    slow.write_all(HALF_A_HEAD)
        .await
        .expect("half a head is sent");
    let addr = server.addr;
    let in_flight = tokio::spawn(async move { fetch(addr, "/held").await });
    timeout(PATIENCE, held.started.notified())
        .await
        .expect("the request in flight reaches its handler");

    let signalled = Instant::now();
    server.stop.send(()).expect("the server is running");
    held.release.notify_one();
    let served = timeout(shutdown_timeout + MARGIN, server.task)
        .await
        .expect("serve returns within the shutdown timeout")
        .expect("serve does not panic");
    let took = signalled.elapsed();
    served.expect("serve returns Ok");
    assert!(
        took >= shutdown_timeout,
        "returned after {took:?}: the slow client was not waited for"
    );
    assert_eq!(
        in_flight.await.expect("the client does not panic"),
        (200, "done".to_owned()),
        "the request in flight at the signal is answered"
    );
    assert!(
        read_until_closed(&mut slow).await.is_some(),
        "the slow client is disconnected"
    );
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "nothing listens after serve returned"
    );
}

#[tokio::test]
async fn serve_refuses_options_out_of_range_naming_their_variable() {
    for (options, variable) in [
        (
            ServeOptions::new().max_connections(0),
            "CACHE_HTTP_MAX_CONNECTIONS",
        ),
        (
            ServeOptions::new().header_timeout(Duration::ZERO),
            "CACHE_HTTP_HEADER_TIMEOUT_MS",
        ),
        (
            ServeOptions::new().shutdown_timeout(Duration::from_secs(2 * 24 * 60 * 60)),
            "CACHE_HTTP_SHUTDOWN_TIMEOUT_MS",
        ),
    ] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let refused = timeout(
            PATIENCE,
            serve(listener, Router::new(), options, std::future::pending()),
        )
        .await
        .expect("refused at once, before serving");
        let err = refused.expect_err("out of range: refused");
        assert!(
            matches!(&err, Error::Config { variable: named, .. } if named == variable),
            "{variable}: {err}"
        );
    }
}

#[test]
fn every_variable_is_read_and_a_bad_value_names_its_variable() {
    let ms = Duration::from_millis;
    let options = ServeOptions::from_vars([
        ("CACHE_HTTP_HEADER_TIMEOUT_MS", "1500"),
        ("CACHE_HTTP_BODY_TIMEOUT_MS", " 2500 "),
        ("CACHE_HTTP_REQUEST_TIMEOUT_MS", "3500"),
        ("CACHE_HTTP_MAX_CONNECTIONS", "64"),
        ("CACHE_HTTP_SHUTDOWN_TIMEOUT_MS", "4500"),
        ("CACHE_HTTP_UNRELATED", "x"),
    ])
    .expect("valid values");
    assert_eq!(
        options,
        ServeOptions::new()
            .header_timeout(ms(1500))
            .body_timeout(ms(2500))
            .request_timeout(ms(3500))
            .max_connections(64)
            .shutdown_timeout(ms(4500))
    );
    assert_eq!(
        ServeOptions::from_vars(std::iter::empty::<(&str, &str)>()).expect("no variables"),
        ServeOptions::new()
    );

    for variable in [
        "CACHE_HTTP_HEADER_TIMEOUT_MS",
        "CACHE_HTTP_BODY_TIMEOUT_MS",
        "CACHE_HTTP_REQUEST_TIMEOUT_MS",
        "CACHE_HTTP_MAX_CONNECTIONS",
        "CACHE_HTTP_SHUTDOWN_TIMEOUT_MS",
    ] {
        for bad in ["", "soon", "-1", "0", "1.5", "99999999999999999999"] {
            let err =
                ServeOptions::from_vars([(variable, bad)]).expect_err("a bad value is refused");
            let message = err.to_string();
            assert!(
                message.contains(variable) && message.contains(&format!("{bad:?}")),
                "{variable}={bad:?}: {message}"
            );
            assert!(matches!(err, Error::Config { .. }));
        }
    }
    let err = ServeOptions::from_vars([("CACHE_HTTP_SHUTDOWN_TIMEOUT_MS", "86400001")])
        .expect_err("longer than a day");
    assert!(err.to_string().contains("a day"), "{err}");
}

#[cfg(feature = "sea-orm")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_songs_app_cuts_a_client_that_stalls_mid_head() {
    use crate::support::Db;
    use crate::support::songs::SongsApp;
    use crate::support::stores::Kind;

    let header_timeout = Duration::from_millis(300);
    let app = SongsApp::start_serving(
        Kind::Memory,
        Db::Sqlite,
        |b| b,
        None,
        ServeOptions::new().header_timeout(header_timeout),
    )
    .await
    .expect("a memory-store app always starts");
    let addr = app.base.trim_start_matches("http://").to_owned();

    let connecting = Instant::now();
    let mut slow = TcpStream::connect(&addr).await.expect("connects");
    slow.write_all(b"GET /api/v1/songs/count HTTP/1.1\r\nhost: test\r\n")
        .await
        .expect("half a head is sent");
    assert_eq!(
        app.get("/api/v1/songs/count").await.status,
        reqwest::StatusCode::OK
    );
    read_until_closed(&mut slow)
        .await
        .expect("the slow client is disconnected");
    let held = connecting.elapsed();
    assert!(held >= header_timeout, "cut after {held:?}, too early");
    assert!(
        held <= header_timeout + MARGIN,
        "cut only after {held:?} (header timeout {header_timeout:?})"
    );
}
