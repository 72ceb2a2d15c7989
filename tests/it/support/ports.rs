//! What the private database servers ([`super::pg_server`], [`super::mariadb_server`])
//! share: free loopback ports from one process-wide registry, so that no two of them — of the
//! same kind or not — are ever handed the same port in one test run; a cap on how many of one
//! kind are alive at once ([`Cap`]); and their logs' tails.
//!
//! A port is picked at random *below* the kernel's ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`, 20000 up to its start), so it is never the local
//! port of some outgoing connection, and never one the Redis harness (which binds port 0, so
//! gets ephemeral ports) hands out. It must be free when probed, and is then recorded in the
//! registry and never handed out again in this process (a stopped server keeps its port for its
//! `start_again`). The shared servers' ports (PostgreSQL 5432, MariaDB 3306, Redis 6379) are
//! never handed out. Another process can still take the port between the probe and the
//! server's `bind`: the harnesses then retry on a new port.

use std::collections::BTreeSet;
use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Never handed out, whatever the probe says: the machine's shared servers (PostgreSQL,
/// MariaDB, Redis). All are below [`MIN_PORT`] anyway; this is the belt to those braces.
pub const SHARED_PORTS: &[u16] = &[5432, 3306, 6379];
/// Lowest port handed out.
const MIN_PORT: u16 = 20000;
/// Upper bound (exclusive) of the ports handed out when the ephemeral range is unknown.
const DEFAULT_EPHEMERAL_START: u16 = 32768;

/// Ports handed out in this process. Never released: a stopped server keeps its port for
/// `start_again`, and a port is never reused by another test whose clients could then reach
/// the wrong server. A test run uses a few dozen at most.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// The first port of the kernel's ephemeral range (where port-0 binds and outgoing
/// connections get their local ports).
fn ephemeral_start() -> u16 {
    fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .filter(|&start| start > MIN_PORT + 1000)
        .unwrap_or(DEFAULT_EPHEMERAL_START)
}

/// A random port in `[20000, ephemeral start)` that nobody in this process has and that was
/// free a moment ago; never one of the [`SHARED_PORTS`].
pub fn reserve_port() -> Result<u16, String> {
    let end = ephemeral_start();
    // A panic while holding the lock cannot leave the set half-updated.
    let mut handed_out = lock(&HANDED_OUT);
    for _ in 0..1000 {
        let port = rand::random_range(MIN_PORT..end);
        if SHARED_PORTS.contains(&port) || handed_out.contains(&port) {
            continue;
        }
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err() {
            continue;
        }
        handed_out.insert(port);
        return Ok(port);
    }
    Err(format!(
        "no free loopback port in {MIN_PORT}..{end} after 1000 tries"
    ))
}

/// How many fresh ports a private server's start tries before giving up on port races.
const START_ATTEMPTS: usize = 10;

/// Starts a private server on a fresh port ([`reserve_port`]), retrying on port races:
/// `start(port)` answers `Ok(None)` when the server could not bind the port (another
/// process took it between the probe and the bind). `log` is the server's log, quoted when
/// every port tried was taken.
pub fn start_on_a_free_port<T>(
    log: &std::path::Path,
    mut start: impl FnMut(u16) -> Result<Option<T>, String>,
) -> Result<T, String> {
    let mut last_port = 0;
    for _ in 0..START_ATTEMPTS {
        let port = reserve_port()?;
        last_port = port;
        if let Some(server) = start(port)? {
            return Ok(server);
        }
    }
    Err(format!(
        "every port tried was taken (last {last_port}); log tail:\n{}",
        log_tail(log)
    ))
}

/// At most `max` private servers of one kind alive (or starting) at once in the process.
pub struct Cap {
    alive: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

impl Cap {
    pub const fn new(max: usize) -> Cap {
        Cap {
            alive: Mutex::new(0),
            freed: Condvar::new(),
            max,
        }
    }

    /// Waits until fewer than `max` servers are alive, then takes a slot.
    pub fn acquire(&'static self) -> Slot {
        let mut alive = lock(&self.alive);
        while *alive >= self.max {
            alive = self
                .freed
                .wait(alive)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *alive += 1;
        Slot(self)
    }

    /// Waits until `n` slots are free at once, then takes them together: for a test that
    /// needs several servers alive together (taken one by one, two such tests could each
    /// hold one slot and wait forever for the other).
    pub fn acquire_many(&'static self, n: usize) -> Vec<Slot> {
        let mut alive = lock(&self.alive);
        while *alive + n > self.max {
            alive = self
                .freed
                .wait(alive)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *alive += n;
        (0..n).map(|_| Slot(self)).collect()
    }
}

/// One of a [`Cap`]'s slots, given back on Drop.
pub struct Slot(&'static Cap);

impl Drop for Slot {
    fn drop(&mut self) {
        *lock(&self.0.alive) -= 1;
        self.0.freed.notify_all();
    }
}

/// Locks `mutex`: a panic while holding one of these locks cannot leave its value
/// half-updated.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The last 30 lines of a log file.
pub fn log_tail(log: &std::path::Path) -> String {
    let Ok(bytes) = fs::read(log) else {
        return format!("(no log at {})", log.display());
    };
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
