//! A TCP proxy in front of a private redis-server, for faults the server itself cannot
//! make: replies held back for a while (a slow network during a replay), and a flow that
//! goes silent without a reset (a NAT, load balancer or proxy that forgets it).
//!
//! Blocking, on plain threads (like the redis-server harness), so it serves tests on any
//! runtime. It listens on a loopback port of its own, which the OS picked (kept bound for
//! the proxy's lifetime: no port race), and forwards every connection to `target`.

// Fixtures: not every test uses every control.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

/// What every pump reads before it forwards a chunk.
#[derive(Default)]
struct Controls {
    /// Milliseconds each chunk from the server waits before it goes on to the client.
    reply_delay_ms: AtomicU64,
    /// One-way latency, microseconds, both ways: each chunk goes on this long after it
    /// arrived, without holding back the chunks behind it (a link's delay, pipelined).
    latency_us: AtomicU64,
    /// Everything read, both ways, is thrown away; connections stay open.
    silent: AtomicBool,
    /// New connections are closed at once (the server "down"), existing ones were cut.
    refusing: AtomicBool,
    /// Like `silent`, for subscriber connections only: those whose client sent
    /// `SUBSCRIBE` (so a test can silence the invalidation channel's flow and leave the
    /// commands' connections alone).
    silent_subscribers: AtomicBool,
    /// The proxy is going away.
    stopped: AtomicBool,
    /// Chunks thrown away while silent (to tell a test that the silence was hit).
    dropped: AtomicU64,
    /// Every socket, to close them all on [`Proxy::cut`] and on drop.
    sockets: Mutex<Vec<TcpStream>>,
}

/// A proxy to one server; stops (closing every connection) on drop.
pub struct Proxy {
    port: u16,
    controls: Arc<Controls>,
}

impl Proxy {
    /// A proxy to `127.0.0.1:target_port`.
    pub fn start(target_port: u16) -> Proxy {
        Self::to(std::net::SocketAddr::from(([127, 0, 0, 1], target_port)))
    }

    /// A proxy to `target` (a server in a network namespace, say: see `support::netns`).
    pub fn to(target: std::net::SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("the proxy's address").port();
        let controls = Arc::new(Controls::default());
        let accepting = Arc::clone(&controls);
        thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stopped.load(Ordering::Acquire) {
                    return;
                }
                let Ok(client) = client else { continue };
                if accepting.refusing.load(Ordering::Acquire) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                {
                    let mut sockets = accepting
                        .sockets
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    for socket in [&client, &server] {
                        if let Ok(copy) = socket.try_clone() {
                            sockets.push(copy);
                        }
                    }
                }
                let subscriber = Arc::new(AtomicBool::new(false));
                pump(
                    client,
                    s2,
                    Arc::clone(&accepting),
                    false,
                    Arc::clone(&subscriber),
                );
                pump(server, c2, Arc::clone(&accepting), true, subscriber);
            }
        });
        Proxy { port, controls }
    }

    /// The proxy's URL, for a client.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Every reply from now on waits `delay` before it reaches its client.
    pub fn delay_replies(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.controls.reply_delay_ms.store(ms, Ordering::Release);
    }

    /// Every chunk, both ways, reaches the other side `latency` after it arrived (a link
    /// with that one-way delay: a round trip costs twice it). Chunks stay in order and do
    /// not wait for each other. `tc netem` would do this in the kernel; it is not available
    /// on every machine the suite runs on (a kernel without `sch_netem`).
    pub fn set_latency(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.controls.latency_us.store(us, Ordering::Release);
    }

    /// Silent: every byte, both ways, is dropped without a word (no reset, no close) until
    /// `speak` — as a middlebox that forgot the flow. New connections are accepted and
    /// silenced the same way.
    pub fn silence(&self) {
        self.controls.silent.store(true, Ordering::Release);
    }

    /// Forwards again (what was dropped meanwhile stays lost).
    pub fn speak(&self) {
        self.controls.silent.store(false, Ordering::Release);
    }

    /// The server "goes down" for the proxy's clients: every connection is cut, and new
    /// ones are closed as soon as they are accepted, until [`accept`](Self::accept).
    pub fn refuse(&self) {
        self.controls.refusing.store(true, Ordering::Release);
        self.cut();
    }

    /// Forwards new connections again.
    pub fn accept(&self) {
        self.controls.refusing.store(false, Ordering::Release);
    }

    /// Silent for subscriber connections only (those whose client sent `SUBSCRIBE`, now or
    /// later), as [`silence`](Self::silence) is for every connection; other connections
    /// forward as before. Until [`speak_to_subscribers`](Self::speak_to_subscribers).
    pub fn silence_subscribers(&self) {
        self.controls
            .silent_subscribers
            .store(true, Ordering::Release);
    }

    /// Forwards subscriber connections again.
    pub fn speak_to_subscribers(&self) {
        self.controls
            .silent_subscribers
            .store(false, Ordering::Release);
    }

    /// How many chunks were dropped while silent.
    pub fn dropped(&self) -> u64 {
        self.controls.dropped.load(Ordering::Acquire)
    }

    /// Closes every connection made so far (the clients see them end).
    pub fn cut(&self) {
        let sockets = std::mem::take(
            &mut *self
                .controls
                .sockets
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for socket in sockets {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.controls.stopped.store(true, Ordering::Release);
        self.cut();
        // Wakes the acceptor, which then sees `stopped`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies `from` to `to` on a thread of its own, under the controls; `replies` says
/// whether this is the server-to-client direction (the one `delay_replies` holds back);
/// `subscriber`, shared by a connection's two pumps, is set once its client sends
/// `SUBSCRIBE`.
fn pump(
    mut from: TcpStream,
    to: TcpStream,
    controls: Arc<Controls>,
    replies: bool,
    subscriber: Arc<AtomicBool>,
) {
    // The writing half: chunks in order, each sent at its due time.
    let (chunks, due) = std::sync::mpsc::channel::<(std::time::Instant, Vec<u8>)>();
    let mut writer = to;
    thread::spawn(move || {
        for (at, chunk) in due {
            let now = std::time::Instant::now();
            if at > now {
                thread::sleep(at - now);
            }
            if writer.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = writer.shutdown(Shutdown::Both);
    });
    thread::spawn(move || {
        let mut buffer = vec![0_u8; 64 * 1024];
        loop {
            let read = match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            if controls.stopped.load(Ordering::Acquire) {
                break;
            }
            if !replies
                && buffer[..read]
                    .windows(b"SUBSCRIBE".len())
                    .any(|w| w.eq_ignore_ascii_case(b"SUBSCRIBE"))
            {
                subscriber.store(true, Ordering::Release);
            }
            if controls.silent.load(Ordering::Acquire)
                || (controls.silent_subscribers.load(Ordering::Acquire)
                    && subscriber.load(Ordering::Acquire))
            {
                controls.dropped.fetch_add(1, Ordering::AcqRel);
                continue;
            }
            let delay = controls.reply_delay_ms.load(Ordering::Acquire);
            if replies && delay > 0 {
                thread::sleep(Duration::from_millis(delay));
            }
            let latency = Duration::from_micros(controls.latency_us.load(Ordering::Acquire));
            let at = std::time::Instant::now() + latency;
            if chunks.send((at, buffer[..read].to_vec())).is_err() {
                break;
            }
        }
        // The writer sends what it holds, then ends the connection.
        drop(chunks);
        let _ = from.shutdown(Shutdown::Both);
    });
}
