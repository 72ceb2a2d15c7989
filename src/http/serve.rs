//! Serving a [`Router`] over TCP with the limits a server facing the Internet needs — what
//! `axum::serve` leaves to the application: a deadline for each request head (which also
//! bounds idle keep-alive connections), for each request body and for each answer, a bound
//! on open connections, accept errors (`EMFILE`) survived, and a deadline on graceful
//! shutdown. Without them a few hundred sockets that send nothing hold the server's file
//! descriptors for ever, and one slow client holds up its shutdown.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Router};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinError, JoinSet};
use tokio::time::{Instant, Sleep};
use tower::Service;

use super::envelope::ApiError;
use crate::Error;

/// `CACHE_HTTP_HEADER_TIMEOUT_MS`: [`ServeOptions::header_timeout`].
const HEADER_TIMEOUT_VAR: &str = "CACHE_HTTP_HEADER_TIMEOUT_MS";
/// `CACHE_HTTP_BODY_TIMEOUT_MS`: [`ServeOptions::body_timeout`].
const BODY_TIMEOUT_VAR: &str = "CACHE_HTTP_BODY_TIMEOUT_MS";
/// `CACHE_HTTP_REQUEST_TIMEOUT_MS`: [`ServeOptions::request_timeout`].
const REQUEST_TIMEOUT_VAR: &str = "CACHE_HTTP_REQUEST_TIMEOUT_MS";
/// `CACHE_HTTP_MAX_CONNECTIONS`: [`ServeOptions::max_connections`].
const MAX_CONNECTIONS_VAR: &str = "CACHE_HTTP_MAX_CONNECTIONS";
/// `CACHE_HTTP_SHUTDOWN_TIMEOUT_MS`: [`ServeOptions::shutdown_timeout`].
const SHUTDOWN_TIMEOUT_VAR: &str = "CACHE_HTTP_SHUTDOWN_TIMEOUT_MS";
/// Every variable [`ServeOptions::from_env`] reads.
const VARIABLES: [&str; 5] = [
    HEADER_TIMEOUT_VAR,
    BODY_TIMEOUT_VAR,
    REQUEST_TIMEOUT_VAR,
    MAX_CONNECTIONS_VAR,
    SHUTDOWN_TIMEOUT_VAR,
];

/// The longest timeout accepted (a day): a longer one is a mistake, not a policy.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
/// The most connections accepted as a bound.
const MAX_CONNECTIONS: usize = 1_000_000;
/// How long the accept loop waits after an accept error that is not the client's (out of
/// file descriptors, of memory): long enough not to spin, short enough to recover at once.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Accept errors are logged at `warn` at most this often (at `debug` in between).
const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(10);

/// How [`serve`] guards the server against slow and idle clients, and how long its
/// graceful shutdown may take. Every limit has a default, a builder method, and a variable
/// read by [`from_env`](Self::from_env):
///
/// | limit | default | variable | when it is crossed |
/// | --- | --- | --- | --- |
/// | [`header_timeout`](Self::header_timeout) | 10 s | `CACHE_HTTP_HEADER_TIMEOUT_MS` | the connection is closed |
/// | [`body_timeout`](Self::body_timeout) | 30 s | `CACHE_HTTP_BODY_TIMEOUT_MS` | `408` `body_timeout`, and the connection is closed |
/// | [`request_timeout`](Self::request_timeout) | 30 s | `CACHE_HTTP_REQUEST_TIMEOUT_MS` | `503` `request_timeout` (the handler is dropped) |
/// | [`max_connections`](Self::max_connections) | 1024 | `CACHE_HTTP_MAX_CONNECTIONS` | new connections wait in the listen backlog |
/// | [`shutdown_timeout`](Self::shutdown_timeout) | 10 s | `CACHE_HTTP_SHUTDOWN_TIMEOUT_MS` | the connections still open are closed |
///
/// ```
/// use std::time::Duration;
/// use querycache::http::ServeOptions;
///
/// let options = ServeOptions::new()
///     .header_timeout(Duration::from_secs(5))
///     .max_connections(256);
/// assert_eq!(options, ServeOptions::from_vars([
///     ("CACHE_HTTP_HEADER_TIMEOUT_MS", "5000"),
///     ("CACHE_HTTP_MAX_CONNECTIONS", "256"),
/// ])?);
/// # Ok::<(), querycache::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    header_timeout: Duration,
    body_timeout: Duration,
    request_timeout: Duration,
    max_connections: usize,
    shutdown_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl ServeOptions {
    /// The defaults: header timeout 10 s, body timeout 30 s, request timeout 30 s, 1024
    /// connections, shutdown timeout 10 s.
    ///
    /// ```
    /// use querycache::http::ServeOptions;
    ///
    /// assert_eq!(ServeOptions::new(), ServeOptions::default());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// How long a client has to send a whole request head (request line and headers),
    /// counted from the moment the server waits for it: on a new connection, and again
    /// after each answer on a kept-alive one. This is therefore also how long an idle
    /// keep-alive connection stays open. Past it the connection is closed. Default 10 s;
    /// `CACHE_HTTP_HEADER_TIMEOUT_MS`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use querycache::http::ServeOptions;
    ///
    /// let options = ServeOptions::new().header_timeout(Duration::from_secs(5));
    /// # let _ = options;
    /// ```
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// How long a client has to send a whole request body, counted from the end of its
    /// head. Past it the handler's read of the body fails, and the request is answered
    /// `408 Request Timeout` (`body_timeout` in the JSON envelope) whatever the handler
    /// made of the failure; the connection is closed. Default 30 s;
    /// `CACHE_HTTP_BODY_TIMEOUT_MS`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use querycache::http::ServeOptions;
    ///
    /// // Uploads of large files over slow links need more.
    /// let options = ServeOptions::new().body_timeout(Duration::from_secs(300));
    /// # let _ = options;
    /// ```
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// How long the application has to answer a request, counted from the end of its head
    /// to the head of the answer (the time to send the answer's body is not counted). Past
    /// it the handler is dropped and the request answered `503 Service Unavailable`
    /// (`request_timeout`) — or `408` (`body_timeout`) when the body was still arriving
    /// after its own deadline. Default 30 s; `CACHE_HTTP_REQUEST_TIMEOUT_MS`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use querycache::http::ServeOptions;
    ///
    /// let options = ServeOptions::new().request_timeout(Duration::from_secs(5));
    /// # let _ = options;
    /// ```
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How many connections are served at once. At the bound the server stops accepting:
    /// new connections wait in the kernel's listen backlog until one closes — which the
    /// header timeout guarantees for idle and slow ones. Keep it below the process's file
    /// descriptor limit (`ulimit -n`), leaving room for the database and Redis
    /// connections. Default 1024; `CACHE_HTTP_MAX_CONNECTIONS`.
    ///
    /// ```
    /// use querycache::http::ServeOptions;
    ///
    /// let options = ServeOptions::new().max_connections(200);
    /// # let _ = options;
    /// ```
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// How long a graceful shutdown may take: once the shutdown signal resolves the server
    /// stops accepting, closes idle connections, and lets the requests in flight finish;
    /// when this time has passed it closes the connections still open (a `warn` event
    /// says how many) and [`serve`] returns. Default 10 s;
    /// `CACHE_HTTP_SHUTDOWN_TIMEOUT_MS`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use querycache::http::ServeOptions;
    ///
    /// // Below the 30 s a container orchestrator usually waits before killing.
    /// let options = ServeOptions::new().shutdown_timeout(Duration::from_secs(20));
    /// # let _ = options;
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Options from the environment: the defaults, overridden by those of
    /// `CACHE_HTTP_HEADER_TIMEOUT_MS`, `CACHE_HTTP_BODY_TIMEOUT_MS`,
    /// `CACHE_HTTP_REQUEST_TIMEOUT_MS`, `CACHE_HTTP_MAX_CONNECTIONS` and
    /// `CACHE_HTTP_SHUTDOWN_TIMEOUT_MS` that are set (timeouts in milliseconds).
    ///
    /// ```
    /// let options = querycache::http::ServeOptions::from_env()?;
    /// # let _ = options;
    /// # Ok::<(), querycache::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable when a value is not valid UTF-8 or is invalid
    /// (see [`from_vars`](Self::from_vars)).
    pub fn from_env() -> Result<Self, Error> {
        let mut vars = Vec::new();
        for name in VARIABLES {
            if let Some(value) = std::env::var_os(name) {
                match value.into_string() {
                    Ok(value) => vars.push((name, value)),
                    Err(value) => {
                        return Err(Error::config(
                            name,
                            value.to_string_lossy(),
                            "not valid UTF-8",
                        ));
                    }
                }
            }
        }
        Self::from_vars(vars)
    }

    /// Like [`from_env`](Self::from_env), from any list of `(name, value)` pairs; other
    /// variables are ignored.
    ///
    /// ```
    /// use std::time::Duration;
    /// use querycache::http::ServeOptions;
    ///
    /// let options = ServeOptions::from_vars([
    ///     ("CACHE_HTTP_BODY_TIMEOUT_MS", "60000"),
    ///     ("PATH", "/usr/bin"),
    /// ])?;
    /// assert_eq!(options, ServeOptions::new().body_timeout(Duration::from_secs(60)));
    ///
    /// let err = ServeOptions::from_vars([("CACHE_HTTP_MAX_CONNECTIONS", "many")]).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid configuration: CACHE_HTTP_MAX_CONNECTIONS=\"many\": \
    ///      expected a whole number of connections, 1 to 1000000"
    /// );
    /// # Ok::<(), querycache::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] naming the first variable (in name order) whose value is not a
    /// whole number, or is out of range: timeouts from 1 ms to a day (86400000),
    /// connections from 1 to 1000000.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut vars: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(name, _)| VARIABLES.contains(&name.as_ref()))
            .map(|(name, value)| (name.as_ref().to_owned(), value.as_ref().to_owned()))
            .collect();
        // The first error reported does not depend on the environment's order.
        vars.sort();
        let mut options = Self::new();
        for (name, value) in &vars {
            options = match name.as_str() {
                HEADER_TIMEOUT_VAR => options.header_timeout(parse_ms(name, value)?),
                BODY_TIMEOUT_VAR => options.body_timeout(parse_ms(name, value)?),
                REQUEST_TIMEOUT_VAR => options.request_timeout(parse_ms(name, value)?),
                SHUTDOWN_TIMEOUT_VAR => options.shutdown_timeout(parse_ms(name, value)?),
                MAX_CONNECTIONS_VAR => options.max_connections(parse_connections(name, value)?),
                _ => options,
            };
        }
        Ok(options)
    }

    /// Every limit in range, or an error naming the variable its setting mirrors.
    fn check(&self) -> Result<(), Error> {
        check_timeout(HEADER_TIMEOUT_VAR, self.header_timeout)?;
        check_timeout(BODY_TIMEOUT_VAR, self.body_timeout)?;
        check_timeout(REQUEST_TIMEOUT_VAR, self.request_timeout)?;
        check_timeout(SHUTDOWN_TIMEOUT_VAR, self.shutdown_timeout)?;
        if !(1..=MAX_CONNECTIONS).contains(&self.max_connections) {
            return Err(Error::config(
                MAX_CONNECTIONS_VAR,
                self.max_connections,
                connections_expected(),
            ));
        }
        Ok(())
    }
}

fn parse_ms(name: &str, value: &str) -> Result<Duration, Error> {
    let ms: u64 = value.trim().parse().map_err(|_| {
        Error::config(
            name,
            value,
            format!("expected a whole number of milliseconds, {}", ms_range()),
        )
    })?;
    let timeout = Duration::from_millis(ms);
    if !timeout_in_range(timeout) {
        return Err(Error::config(name, value, ms_range()));
    }
    Ok(timeout)
}

fn parse_connections(name: &str, value: &str) -> Result<usize, Error> {
    match value.trim().parse::<usize>() {
        Ok(max) if (1..=MAX_CONNECTIONS).contains(&max) => Ok(max),
        _ => Err(Error::config(name, value, connections_expected())),
    }
}

fn check_timeout(name: &str, timeout: Duration) -> Result<(), Error> {
    if timeout_in_range(timeout) {
        Ok(())
    } else {
        Err(Error::config(name, format!("{timeout:?}"), ms_range()))
    }
}

fn timeout_in_range(timeout: Duration) -> bool {
    (Duration::from_millis(1)..=MAX_TIMEOUT).contains(&timeout)
}

fn ms_range() -> String {
    format!("from 1 to {} ms (a day)", MAX_TIMEOUT.as_millis())
}

fn connections_expected() -> String {
    format!("expected a whole number of connections, 1 to {MAX_CONNECTIONS}")
}

/// Serves `router` on `listener` (HTTP/1.1, with upgrades) within the limits of `options`
/// until `shutdown` resolves; then stops accepting, lets the requests in flight finish,
/// closes what is still open after [`ServeOptions::shutdown_timeout`], and returns.
///
/// What `axum::serve` does — handlers can extract the client's address with
/// [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo) — plus:
///
/// * a client that does not send its request head within
///   [`header_timeout`](ServeOptions::header_timeout) — a slow-header (Slowloris) client, a
///   socket opened and left idle, a keep-alive connection with no next request — is
///   disconnected;
/// * a body that does not arrive within [`body_timeout`](ServeOptions::body_timeout) is
///   answered `408` and its connection closed; an answer that takes longer than
///   [`request_timeout`](ServeOptions::request_timeout) is a `503` (both in the
///   [`ApiError`](super::ApiError) envelope);
/// * at [`max_connections`](ServeOptions::max_connections) open connections it stops
///   accepting until one closes, so the process never runs out of file descriptors
///   because of its clients; should it run out all the same (`EMFILE`, `ENFILE`,
///   `ENOMEM`), the accept error is logged and retried after 100 ms instead of ending the
///   loop or spinning.
///
/// Events (target `querycache::http::serve`): each timeout and each time the connection
/// bound is reached at `debug`, accept errors at `warn` (at most every 10 s, `debug` in
/// between), the shutdown deadline passing at `warn` with the number of connections cut.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use querycache::http::{ServeOptions, serve};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use tokio::sync::oneshot;
///
/// let router = Router::new().route("/", get(|| async { "hello" }));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let address = listener.local_addr()?;
/// let options = ServeOptions::from_env()?.header_timeout(Duration::from_secs(2));
/// let (stop, stopped) = oneshot::channel::<()>();
/// let server = tokio::spawn(serve(listener, router, options, async {
///     let _ = stopped.await;
/// }));
///
/// let mut client = tokio::net::TcpStream::connect(address).await?;
/// client.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await?;
/// let mut answer = String::new();
/// client.read_to_string(&mut answer).await?;
/// assert!(answer.starts_with("HTTP/1.1 200 OK"));
/// assert!(answer.ends_with("hello"));
///
/// let _ = stop.send(()); // what Ctrl-C would do
/// server.await??;
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::Config`] naming the variable a setting of `options` mirrors when it is out of
/// range (a zero timeout, zero connections), before anything is accepted. Nothing that
/// happens afterwards ends the loop: a connection's errors are that connection's.
///
/// # Limits
/// HTTP/2 is not served (a client's `h2c` preface is refused as a malformed HTTP/1
/// request); terminate HTTP/2 and TLS in a proxy. The time a client takes to *read* an
/// answer is not bounded; the kernel's send buffer and [`max_connections`](ServeOptions::max_connections)
/// bound what it costs. Upgraded connections (WebSockets) leave the count of connections
/// and are not closed by the shutdown. The idle time of a keep-alive connection is bounded
/// by the header timeout (hyper starts that clock as soon as it waits for the next
/// request), not by a limit of its own.
pub async fn serve<F>(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    shutdown: F,
) -> Result<(), Error>
where
    F: Future<Output = ()>,
{
    options.check()?;
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout);
    let limits = Limits {
        body: options.body_timeout,
        request: options.request_timeout,
    };
    let max = options.max_connections;
    let permits = Arc::new(Semaphore::new(max));
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    let mut accept_warned: Option<Instant> = None;

    loop {
        while let Some(ended) = connections.try_join_next() {
            report_task(ended);
        }
        let permit = match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                tracing::debug!(
                    max_connections = max,
                    "connection bound reached: not accepting until a connection closes"
                );
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    permit = Arc::clone(&permits).acquire_owned() => match permit {
                        Ok(permit) => permit,
                        // The semaphore is never closed.
                        Err(_) => break,
                    },
                }
            }
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) if is_connection_error(&error) => {
                    tracing::debug!(%error, "a connection failed before it was accepted");
                    continue;
                }
                Err(error) => {
                    let now = Instant::now();
                    if accept_warned.is_none_or(|at| now.duration_since(at) >= ACCEPT_WARN_EVERY) {
                        accept_warned = Some(now);
                        tracing::warn!(%error, open = max - permits.available_permits(), "accept failed; retrying in 100 ms");
                    } else {
                        tracing::debug!(%error, "accept failed; retrying in 100 ms");
                    }
                    tokio::select! {
                        biased;
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    }
                }
            },
        };
        // Answers go out as soon as they are written; a failure only costs latency.
        let _ = stream.set_nodelay(true);
        connections.spawn(connection(
            http.clone(),
            stream,
            peer,
            router.clone(),
            limits,
            stopping.clone(),
            permit,
        ));
    }

    // Stop accepting: connections attempted from now on are refused by the kernel.
    drop(listener);
    tracing::debug!(
        open = max - permits.available_permits(),
        "shutting down: closing idle connections, finishing the requests in flight"
    );
    let _ = stop.send(true);
    let mut deadline = pin!(tokio::time::sleep(options.shutdown_timeout));
    loop {
        tokio::select! {
            biased;
            ended = connections.join_next() => match ended {
                Some(ended) => report_task(ended),
                None => break,
            },
            () = &mut deadline => {
                tracing::warn!(
                    connections = max - permits.available_permits(),
                    shutdown_timeout_ms = duration_ms(options.shutdown_timeout),
                    "shutdown deadline passed: closing the connections still open"
                );
                connections.shutdown().await;
                break;
            }
        }
    }
    Ok(())
}

/// The deadlines of each request.
#[derive(Clone, Copy)]
struct Limits {
    body: Duration,
    request: Duration,
}

/// One connection, from its first byte to its close, holding one of the bounded permits.
async fn connection(
    http: http1::Builder,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let service =
        hyper::service::service_fn(move |request| answer(router.clone(), request, peer, limits));
    let connection = http
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut connection = pin!(connection);
    let mut shutting_down = false;
    let result = loop {
        tokio::select! {
            result = connection.as_mut() => break result,
            _ = stopping.wait_for(|stop| *stop), if !shutting_down => {
                shutting_down = true;
                // Idle: closed now. Busy: closed once its answer is sent.
                connection.as_mut().graceful_shutdown();
            }
        }
    };
    match result {
        Ok(()) => {}
        Err(error) if error.is_timeout() => tracing::debug!(
            %peer,
            "connection closed: no complete request head within the header timeout (a slow or idle client)"
        ),
        Err(error) => tracing::debug!(%peer, %error, "connection closed on an error"),
    }
}

fn report_task(ended: Result<(), JoinError>) {
    if let Err(error) = ended
        && error.is_panic()
    {
        tracing::error!(%error, "a connection's task panicked");
    }
}

/// Errors of one connection that failed between the client's `connect` and our `accept`:
/// nothing to wait for.
fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// One request through the router, within the body and request deadlines.
async fn answer(
    mut router: Router,
    request: Request<Incoming>,
    peer: SocketAddr,
    limits: Limits,
) -> Result<Response, Infallible> {
    let body_deadline = Instant::now() + limits.body;
    let (request, body) = {
        let (mut parts, incoming) = request.into_parts();
        parts.extensions.insert(ConnectInfo(peer));
        let body = DeadlineBody::new(incoming, body_deadline, limits.body);
        let state = Arc::clone(&body.state);
        (Request::from_parts(parts, Body::new(body)), state)
    };
    let response = match tokio::time::timeout(limits.request, router.call(request)).await {
        Ok(Ok(response)) => Some(response),
        Ok(Err(infallible)) => match infallible {},
        // Out of time while the body was still arriving past its own deadline: the
        // client's delay, not the handler's.
        Err(_elapsed)
            if body.load(Ordering::Acquire) == BODY_READING && Instant::now() >= body_deadline =>
        {
            body.store(BODY_TIMED_OUT, Ordering::Release);
            tracing::debug!(
                body_timeout_ms = duration_ms(limits.body),
                "request body timeout: answered 408"
            );
            None
        }
        Err(_elapsed) => {
            tracing::debug!(
                request_timeout_ms = duration_ms(limits.request),
                "request timeout: the handler was dropped, answered 503"
            );
            return Ok(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "request_timeout",
                format!(
                    "no answer within {} ms; try again later",
                    duration_ms(limits.request)
                ),
            )
            .into_response());
        }
    };
    match response {
        Some(response) if body.load(Ordering::Acquire) != BODY_TIMED_OUT => Ok(response),
        // The body timed out, whatever the handler made of its failed read (axum's
        // extractors answer 400).
        _ => Ok(body_timeout(limits.body)),
    }
}

/// `408 body_timeout`, closing the connection: the rest of the body may still be on its
/// way, and is not worth reading.
fn body_timeout(limit: Duration) -> Response {
    let mut response = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "body_timeout",
        BodyTimeout(limit).to_string(),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

const BODY_READING: u8 = 0;
const BODY_DONE: u8 = 1;
const BODY_TIMED_OUT: u8 = 2;

/// A request body that fails once its deadline has passed with data still missing.
struct DeadlineBody<B> {
    inner: B,
    deadline: Pin<Box<Sleep>>,
    limit: Duration,
    /// [`BODY_READING`], [`BODY_DONE`] or [`BODY_TIMED_OUT`]; shared with [`answer`].
    state: Arc<AtomicU8>,
}

impl<B: http_body::Body> DeadlineBody<B> {
    fn new(inner: B, deadline: Instant, limit: Duration) -> Self {
        let state = if inner.is_end_stream() {
            BODY_DONE
        } else {
            BODY_READING
        };
        DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            limit,
            state: Arc::new(AtomicU8::new(state)),
        }
    }
}

/// The error a handler reads from a body past its deadline.
#[derive(Debug)]
struct BodyTimeout(Duration);

impl fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the request body did not arrive within {} ms",
            duration_ms(self.0)
        )
    }
}

impl std::error::Error for BodyTimeout {}

impl<B> http_body::Body for DeadlineBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.state.load(Ordering::Acquire) != BODY_READING {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if this.inner.is_end_stream() {
                    this.state.store(BODY_DONE, Ordering::Release);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                // The client's failure (a reset), not a timeout.
                this.state.store(BODY_DONE, Ordering::Release);
                Poll::Ready(Some(Err(error.into())))
            }
            Poll::Ready(None) => {
                this.state.store(BODY_DONE, Ordering::Release);
                Poll::Ready(None)
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.state.store(BODY_TIMED_OUT, Ordering::Release);
                    tracing::debug!(
                        body_timeout_ms = duration_ms(this.limit),
                        "request body timeout: answered 408"
                    );
                    Poll::Ready(Some(Err(Box::new(BodyTimeout(this.limit)))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state.load(Ordering::Acquire) != BODY_READING || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
