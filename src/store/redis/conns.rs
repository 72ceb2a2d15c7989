//! The single server's connections: one per tokio runtime that uses the store, driven by
//! that runtime.
//!
//! A redis-rs connection is a task (its driver) that owns the socket. A command awaited on
//! another thread than its driver's pays two thread wake-ups on top of the round trip — the
//! request handed over to the driver, the reply handed back — and on a loaded two-core
//! machine those cost more than the round trip itself (`benches/redis_hit.rs`: a `GET`
//! through a connection driven by another thread measured about twice the floor). So each
//! runtime gets a connection of its own, made the first time one of its tasks needs one:
//! a command is written, and its reply read, by the runtime that awaits it.
//!
//! A runtime's connection dies with the runtime (its driver is one of the runtime's tasks).
//! A sentinel task parked on the runtime flags it when the runtime drops its tasks, and a
//! dead runtime's connection is forgotten. At most [`MAX_RUNTIMES`] runtimes at a time have
//! a connection of their own; code outside any tokio runtime, and runtimes beyond that, share
//! one connection driven by querycache's I/O runtime, which outlives them all.
//!
//! Synchronous callers are safe (see `crate::runtime`): on a multi-thread runtime they wait
//! in `block_in_place`, which hands the runtime's other tasks (the driver among them) to
//! another thread; on a current-thread runtime their operations run on the I/O runtime, and
//! so use its connection; outside any runtime they run inside the I/O runtime's context, with
//! the same effect. What is not supported is blocking a runtime's thread on a cache future by
//! other means (`futures::executor::block_on` inside a task, which tokio forbids for any of
//! its I/O): the driver would wait for the very thread that waits for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::RwLock;
use redis::RedisResult;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::runtime::{Handle, Id};
use tokio::sync::OnceCell;

/// How many runtimes may have a connection of their own at once.
pub(super) const MAX_RUNTIMES: usize = 16;

/// The connections of a single-server store. See the module docs.
pub(super) struct Connections {
    /// The server's client; replaced when the Sentinels name another master, `None` until
    /// they first name one.
    client: RwLock<Option<redis::Client>>,
    /// With a `redis+sentinel://` URL: who to ask which server is the master.
    sentinels: Option<super::sentinel::Sentinels>,
    /// The master the Sentinels named last.
    master: parking_lot::Mutex<Option<super::sentinel::Master>>,
    config: ConnectionManagerConfig,
    /// Driven by querycache's I/O runtime: for callers outside any tokio runtime, and
    /// runtimes past [`MAX_RUNTIMES`]. Replaced with a new master.
    shared: RwLock<Arc<OnceCell<ConnectionManager>>>,
    /// One per runtime, made on first use by one of its tasks.
    per_runtime: RwLock<Vec<RuntimeConn>>,
    /// Reset by every connection made, before its first caller has it: a new connection
    /// may reach a new incarnation of the server (see [`super::epoch`]).
    incarnation: Arc<super::epoch::Incarnation>,
}

/// A runtime's connection (made once, on first use), and whether the runtime still runs.
struct RuntimeConn {
    runtime: Id,
    conn: Arc<OnceCell<ConnectionManager>>,
    alive: Arc<AtomicBool>,
}

/// Clears its flag when dropped. Parked forever on a runtime, it is dropped with the
/// runtime's tasks when the runtime shuts down.
struct Sentinel(Arc<AtomicBool>);

impl Drop for Sentinel {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Connections {
    /// Connections to `client`'s server, each made with `config`, none made yet; each one
    /// made resets `incarnation`.
    pub(super) fn new(
        client: redis::Client,
        config: ConnectionManagerConfig,
        incarnation: Arc<super::epoch::Incarnation>,
    ) -> Self {
        Connections {
            client: RwLock::new(Some(client)),
            sentinels: None,
            master: parking_lot::Mutex::new(None),
            config,
            shared: RwLock::new(Arc::new(OnceCell::new())),
            per_runtime: RwLock::new(Vec::new()),
            incarnation,
        }
    }

    /// Connections to the master `sentinels` name, found on first use.
    pub(super) fn following(
        sentinels: super::sentinel::Sentinels,
        config: ConnectionManagerConfig,
        incarnation: Arc<super::epoch::Incarnation>,
    ) -> Self {
        Connections {
            client: RwLock::new(None),
            sentinels: Some(sentinels),
            master: parking_lot::Mutex::new(None),
            config,
            shared: RwLock::new(Arc::new(OnceCell::new())),
            per_runtime: RwLock::new(Vec::new()),
            incarnation,
        }
    }

    /// The client the connections are made from now; `None` while Sentinels have not named
    /// a master yet.
    pub(super) fn client(&self) -> Option<redis::Client> {
        self.client.read().clone()
    }

    /// With Sentinels: asks them which server is the master (unless one was found and
    /// `again` is false), and when it is another server than the connections reach, drops
    /// them (callers in flight finish on the old ones) so that the next ones are made to the
    /// new master, and marks the incarnation unknown (another server: the epoch check runs
    /// before anything is served from it). Without Sentinels, nothing to do.
    ///
    /// # Errors
    /// What the Sentinels answered, when none named a master that says it is one.
    pub(super) async fn follow_master(&self, again: bool) -> Result<(), String> {
        let Some(sentinels) = &self.sentinels else {
            return Ok(());
        };
        if !again && self.master.lock().is_some() {
            return Ok(());
        }
        let master = sentinels.master().await?;
        if self.master.lock().as_ref() == Some(&master) {
            return Ok(());
        }
        let client = sentinels
            .client_for(&master)
            .map_err(|e| format!("the master {}:{}: {e}", master.host, master.port))?;
        let previous = self.master.lock().replace(master.clone());
        *self.client.write() = Some(client);
        self.per_runtime.write().clear();
        *self.shared.write() = Arc::new(OnceCell::new());
        self.incarnation.reset("the Sentinels named a master");
        match previous {
            Some(old) => tracing::warn!(
                tier = "redis",
                service = sentinels.service(),
                from = %format!("{}:{}", old.host, old.port),
                to = %format!("{}:{}", master.host, master.port),
                "Redis Sentinel: the master changed; connections follow it"
            ),
            None => tracing::info!(
                tier = "redis",
                service = sentinels.service(),
                master = %format!("{}:{}", master.host, master.port),
                "Redis Sentinel: master found"
            ),
        }
        Ok(())
    }

    /// The connection for the calling task: its runtime's (made now if it has none yet), or
    /// the shared one.
    ///
    /// Made once, a connection is handed out without awaiting anything: the future of a
    /// lookup then holds no connect future (about a kilobyte that every hit would otherwise
    /// carry, and copy as its futures are moved into place).
    pub(super) async fn get(&self) -> RedisResult<ConnectionManager> {
        match self.made_for_caller() {
            Some(conn) => Ok(conn),
            None => Box::pin(self.connect_for_caller()).await,
        }
    }

    /// The calling task's connection, if it was made already.
    fn made_for_caller(&self) -> Option<ConnectionManager> {
        match Handle::try_current() {
            Ok(runtime) => {
                let id = runtime.id();
                let all = self.per_runtime.read();
                // A runtime without a cell of its own (past the limit) goes the long way,
                // which may find it room.
                all.iter()
                    .find(|c| c.runtime == id)
                    .and_then(|made| made.conn.get().cloned())
            }
            Err(_) => self.shared.read().get().cloned(),
        }
    }

    /// [`get`](Self::get) when the caller's connection is not made yet (or being made).
    async fn connect_for_caller(&self) -> RedisResult<ConnectionManager> {
        // With Sentinels, the first connection waits for them to name the master.
        self.follow_master(false)
            .await
            .map_err(super::sentinel::error)?;
        let client = self
            .client()
            .ok_or_else(|| super::sentinel::error("no master named yet".to_owned()))?;
        let connect = || ConnectionManager::new_with_config(client.clone(), self.config.clone());
        // The cell is filled once the init future returns: the reset comes first.
        let made = |conn: ConnectionManager| {
            self.incarnation.reset("new connection");
            conn
        };
        match Handle::try_current()
            .ok()
            .and_then(|h| self.runtime_cell(&h))
        {
            // Awaited here, on the caller's runtime: the driver is spawned there.
            Some(cell) => cell
                .get_or_try_init(|| async { connect().await.map(made) })
                .await
                .cloned(),
            None => {
                let shared = Arc::clone(&self.shared.read());
                shared
                    .get_or_try_init(|| async { super::on_io_runtime(connect()).await.map(made) })
                    .await
                    .cloned()
            }
        }
    }

    /// The connections made so far: the live runtimes' and the shared one. These are the
    /// connections callers will use; the breaker's probe checks each of them.
    pub(super) fn made(&self) -> Vec<ConnectionManager> {
        let mut made: Vec<ConnectionManager> = self
            .per_runtime
            .read()
            .iter()
            .filter(|c| c.alive.load(Ordering::Acquire))
            .filter_map(|c| c.conn.get().cloned())
            .collect();
        made.extend(self.shared.read().get().cloned());
        made
    }

    /// How many runtimes have a connection of their own, or are about to (for tests).
    #[cfg(test)]
    pub(super) fn runtimes(&self) -> usize {
        self.per_runtime
            .read()
            .iter()
            .filter(|c| c.alive.load(Ordering::Acquire))
            .count()
    }

    /// The cell of `runtime`'s connection: found, or added (forgetting dead runtimes first);
    /// `None` when [`MAX_RUNTIMES`] live runtimes already have one.
    fn runtime_cell(&self, runtime: &Handle) -> Option<Arc<OnceCell<ConnectionManager>>> {
        let id = runtime.id();
        let find = |all: &[RuntimeConn]| {
            all.iter()
                .find(|c| c.runtime == id)
                .map(|c| Arc::clone(&c.conn))
        };
        if let Some(cell) = find(&self.per_runtime.read()) {
            return Some(cell);
        }
        let mut all = self.per_runtime.write();
        if let Some(cell) = find(&all) {
            return Some(cell);
        }
        all.retain(|c| c.alive.load(Ordering::Acquire));
        if all.len() >= MAX_RUNTIMES {
            return None;
        }
        let alive = Arc::new(AtomicBool::new(true));
        let sentinel = Sentinel(Arc::clone(&alive));
        drop(runtime.spawn(async move {
            let _sentinel = sentinel;
            std::future::pending::<()>().await;
        }));
        let cell = Arc::new(OnceCell::new());
        all.push(RuntimeConn {
            runtime: id,
            conn: Arc::clone(&cell),
            alive,
        });
        Some(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connections() -> Connections {
        let client = redis::Client::open("redis://127.0.0.1:1").unwrap();
        Connections::new(client, ConnectionManagerConfig::new(), Arc::default())
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn one_cell_per_runtime_forgotten_when_the_runtime_ends() {
        let conns = connections();
        let first = runtime();
        let a = first.block_on(async { conns.runtime_cell(&Handle::current()) });
        let again = first.block_on(async { conns.runtime_cell(&Handle::current()) });
        assert!(
            Arc::ptr_eq(&a.unwrap(), &again.unwrap()),
            "the same runtime, the same cell"
        );
        let second = runtime();
        let b = second.block_on(async { conns.runtime_cell(&Handle::current()) });
        assert!(b.is_some());
        assert_eq!(conns.runtimes(), 2);
        drop(first);
        assert_eq!(
            conns.runtimes(),
            1,
            "a dropped runtime's connection is dead"
        );
    }

    #[test]
    fn runtimes_past_the_limit_share_the_io_runtimes_connection() {
        let conns = connections();
        let runtimes: Vec<_> = (0..MAX_RUNTIMES).map(|_| runtime()).collect();
        for rt in &runtimes {
            assert!(
                rt.block_on(async { conns.runtime_cell(&Handle::current()) })
                    .is_some()
            );
        }
        let extra = runtime();
        assert!(
            extra
                .block_on(async { conns.runtime_cell(&Handle::current()) })
                .is_none()
        );
        drop(runtimes);
        assert!(
            extra
                .block_on(async { conns.runtime_cell(&Handle::current()) })
                .is_some(),
            "room again once the others are gone"
        );
    }
}
