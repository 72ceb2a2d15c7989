//! Serving a [`Router`] over TCP with the limits a server facing the Internet needs — what
//! `axum::serve` leaves to the application: a deadline for each request head (which also
//! bounds idle keep-alive connections), for each request body and for each answer, a bound
//! on open connections, accept errors (`EMFILE`) survived, and a deadline on graceful
//! shutdown. Without them a few hundred sockets that send nothing hold the server's file
//! descriptors for ever, and one slow client holds up its shutdown.

mod deadline_body;
mod options;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use tower::Service;

use super::envelope::ApiError;
use crate::Error;

use deadline_body::{BODY_READING, BODY_TIMED_OUT, BodyTimeout, DeadlineBody};

/// A request extension [`serve`] adds: becomes `true` when the server starts shutting down,
/// so that answers that never end on their own (the event stream) end then, rather than
/// holding the shutdown until its deadline.
#[derive(Clone)]
pub(crate) struct Draining(pub(crate) watch::Receiver<bool>);
pub use options::ServeOptions;

/// How long the accept loop waits after an accept error that is not the client's (out of
/// file descriptors, of memory): long enough not to spin, short enough to recover at once.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Accept errors are logged at `warn` at most this often (at `debug` in between).
const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(10);

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
    let draining = stopping.clone();
    let service = hyper::service::service_fn(move |request| {
        answer(router.clone(), request, peer, limits, draining.clone())
    });
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
    draining: watch::Receiver<bool>,
) -> Result<Response, Infallible> {
    let body_deadline = Instant::now() + limits.body;
    let (request, body) = {
        let (mut parts, incoming) = request.into_parts();
        parts.extensions.insert(ConnectInfo(peer));
        parts.extensions.insert(Draining(draining));
        let body = DeadlineBody::new(incoming, body_deadline, limits.body);
        let state = Arc::clone(&body.state);
        (Request::from_parts(parts, Body::new(body)), state)
    };
    let request_deadline = Instant::now() + limits.request;
    // Polled once before the deadline's timer is armed: an answer ready at once (a cache
    // hit, a 304) costs no timer registration; any other is then bounded as before, the
    // deadline counted from the start.
    let mut call = pin!(router.call(request));
    let result = match std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await {
        Poll::Ready(answered) => Ok(answered),
        Poll::Pending => tokio::time::timeout_at(request_deadline, call).await,
    };
    let response = match result {
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
