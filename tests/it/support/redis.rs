//! Private `redis-server` processes for tests: one per [`RedisServer`], three per
//! [`RedisCluster`], each on its own free loopback port, in its own temporary directory, and
//! killed on Drop — also when the test panics.
//!
//! Modelled on redis-rs's own test support (`redis-test/src/server.rs`, used by
//! `redis/tests/support/mod.rs`), with what a suite running many tests in one process needs
//! on top:
//!
//! - **Ports.** A free port comes from binding `127.0.0.1:0`; the port is then recorded in a
//!   process-wide registry and never handed out again in this process, so two tests never
//!   share a port, and a killed server's port is not given to another test whose clients might
//!   then reach the wrong server. Another process can still grab the port between our probe
//!   and the server's own `bind`: the server then exits with "Address already in use" and the
//!   start is retried on a new port. Every port is below 55535 so that a cluster node's bus
//!   port (port + 10000) exists; for cluster nodes the bus port is probed and reserved too.
//! - **Readiness.** No fixed sleeps: start-up polls `PING` (short connect and read timeouts)
//!   until the server answers, for at most 10 s, and checks through `INFO server` that the
//!   process answering is ours (not something else that owned the port). A cluster is ready
//!   when every node reports `cluster_state:ok` and knows all three nodes (20 s at most).
//! - **Skipping.** `start()` returns `None` — after saying why on stderr — when `redis-server`
//!   (or, for a cluster, `redis-cli`) is not installed, so tests skip on machines without
//!   Redis. With `QUERYCACHE_REQUIRE_SERVICES=1` (CI) it panics instead. A server that is
//!   installed but fails to start is always a panic, with the tail of its log.
//!
//! The harness is blocking (`std::process`, the synchronous redis client). Starting a server
//! takes tens of milliseconds and may be called directly from an async test; starting a
//! cluster takes seconds and belongs in `tokio::task::spawn_blocking`. The helpers that talk
//! to the server (`command_count`, `reset_stats`) panic when it does not answer within a few
//! seconds (a paused server, for example): they are test fixtures, not library code.
//!
//! Nothing here ever connects to the shared Redis on port 6379: every address is a port this
//! module handed to a server it spawned.

// Fixtures: not every test uses every helper.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// The only address servers bind and clients use.
const HOST: &str = "127.0.0.1";
/// How long a server has to answer `PING` after it was spawned.
const READY_DEADLINE: Duration = Duration::from_secs(10);
/// How long a cluster has to reach `cluster_state:ok` on every node after `--cluster create`.
const CLUSTER_DEADLINE: Duration = Duration::from_secs(20);
/// How long `restart` keeps trying while the old port is still taken.
const RESTART_DEADLINE: Duration = Duration::from_secs(5);
/// Pause between two readiness probes.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// Servers started on a fresh port before giving up on port races.
const START_ATTEMPTS: usize = 10;
/// Exclusive upper bound of any port handed out: leaves room for the bus port (+10000).
const MAX_PORT: u16 = 55535;
/// Offset of a cluster node's bus port from its client port (fixed by Redis).
const BUS_PORT_OFFSET: u16 = 10000;
/// Never used, whatever the OS hands out: the shared Redis.
const SHARED_REDIS_PORT: u16 = 6379;
/// Number of masters in a [`RedisCluster`].
const CLUSTER_SIZE: usize = 3;

/// A private `redis-server` on a free loopback port, killed on Drop (even when the test
/// panics).
///
/// It runs with no persistence (`--save "" --appendonly no`) in its own temporary
/// directory, which also holds its log (`redis.log`, stdout and stderr). The directory is
/// removed on Drop.
pub struct RedisServer {
    port: u16,
    /// Everything after the binary name, kept for `restart`.
    args: Vec<OsString>,
    /// `None` once killed. A mutex so that `is_running(&self)` can reap an exited child.
    child: Mutex<Option<Child>>,
    /// Set by `pause`, cleared by `resume`: Drop sends SIGCONT to a paused server.
    paused: AtomicBool,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one; `None` (after printing why) when `redis-server` is not installed — unless
    /// `QUERYCACHE_REQUIRE_SERVICES=1`, then it panics with the reason.
    ///
    /// # Panics
    ///
    /// When `redis-server` is installed but does not come up (the message carries its log).
    pub fn start() -> Option<RedisServer> {
        Self::start_with(&[])
    }

    /// Like [`start`](Self::start), with extra configuration passed on the command line as
    /// `--name value`, e.g. `&[("maxmemory", "1mb"), ("maxmemory-policy", "allkeys-lru")]`.
    /// They come after the harness's own arguments, so they may override them.
    pub fn start_with(config: &[(&str, &str)]) -> Option<RedisServer> {
        let extra: Vec<OsString> = config
            .iter()
            .flat_map(|(name, value)| [format!("--{name}").into(), (*value).into()])
            .collect();
        skip_or_panic(Self::launch(&extra, Role::Standalone))
    }

    /// The port it listens on (on 127.0.0.1). Never 6379.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://{HOST}:{}", self.port)
    }

    /// A client for this server (no connection is made until one is asked for).
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("a loopback redis:// URL is valid")
    }

    /// The process id of the running server, `None` after [`kill`](Self::kill).
    pub fn pid(&self) -> Option<u32> {
        self.lock_child().as_ref().map(Child::id)
    }

    /// Its working directory (a temporary directory, removed on Drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines of its log, for assertion messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// Kills it with SIGKILL (no shutdown, no save) and waits for the process to exit. Its
    /// port stays reserved for [`restart`](Self::restart). Does nothing if it is not running.
    pub fn kill(&mut self) {
        let child = self.lock_child().take();
        if let Some(child) = child {
            self.kill_child(child);
        }
    }

    /// Starts it again on the same port and in the same directory — with no data, since
    /// nothing is persisted (a cluster node keeps its `nodes.conf`, so it rejoins its
    /// cluster) — and waits until it answers `PING`. Kills the running process first, if any.
    /// While the port is still taken (the old process's sockets, another program) it retries
    /// for up to 5 s.
    ///
    /// # Panics
    ///
    /// When the server does not come back (the message carries its log).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + RESTART_DEADLINE;
        loop {
            match spawn_and_wait(&self.args, &self.log, self.port) {
                Ok(child) => {
                    *self.lock_child() = Some(child);
                    return;
                }
                Err(StartError::PortInUse) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(50));
                }
                Err(StartError::PortInUse) => panic!(
                    "redis-server could not get its port {} back within {RESTART_DEADLINE:?}; \
                     log tail:\n{}",
                    self.port,
                    self.log_tail()
                ),
                Err(StartError::NotInstalled(err)) => {
                    panic!("redis-server disappeared before restart: {err}")
                }
                Err(StartError::Failed(reason)) => {
                    panic!(
                        "redis-server on port {} did not restart: {reason}",
                        self.port
                    )
                }
            }
        }
    }

    /// Stops it with SIGSTOP: connections stay open and connects still succeed (the kernel
    /// accepts them), but nothing is answered — a hung server. Returns once the process is
    /// stopped.
    ///
    /// # Panics
    ///
    /// When it is not running.
    pub fn pause(&self) {
        let pid = self.pid().expect("pause: the redis-server is not running");
        signal(pid, "-STOP");
        self.paused.store(true, Ordering::SeqCst);
        wait_for_process_state(pid, true);
    }

    /// Lets a [`pause`](Self::pause)d server run again (SIGCONT).
    ///
    /// # Panics
    ///
    /// When it is not running.
    pub fn resume(&self) {
        let pid = self.pid().expect("resume: the redis-server is not running");
        signal(pid, "-CONT");
        self.paused.store(false, Ordering::SeqCst);
        wait_for_process_state(pid, false);
    }

    /// Whether the process is alive (a paused server is running; a killed one, or one that
    /// exited by itself, is not).
    pub fn is_running(&self) -> bool {
        let mut child = self.lock_child();
        match child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(Ok(Some(_)) | Err(_)) => {
                // Exited (and now reaped): forget it, so that Drop has nothing left to kill.
                *child = None;
                false
            }
            None => false,
        }
    }

    /// How many times `command` (case-insensitive; `"client|setinfo"` for a subcommand) ran
    /// since start or the last [`reset_stats`](Self::reset_stats), from `INFO commandstats`;
    /// 0 if it never ran.
    ///
    /// # Panics
    ///
    /// When the server does not answer within a few seconds.
    pub fn command_count(&self, command: &str) -> u64 {
        let info: String = self.query(redis::cmd("INFO").arg("commandstats"));
        parse_command_count(&info, command)
    }

    /// Resets `INFO` statistics (`CONFIG RESETSTAT`), command counts included.
    ///
    /// # Panics
    ///
    /// When the server does not answer within a few seconds.
    pub fn reset_stats(&self) {
        let () = self.query(redis::cmd("CONFIG").arg("RESETSTAT"));
    }

    /// Runs one command on a fresh synchronous connection with short timeouts, panicking with
    /// the server's log on failure.
    pub fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> T {
        self.try_query(command, Duration::from_secs(1), Duration::from_secs(5))
            .unwrap_or_else(|err| {
                panic!(
                    "redis-server on port {} did not answer {command:?}: {err}; log tail:\n{}",
                    self.port,
                    self.log_tail()
                )
            })
    }

    fn try_query<T: redis::FromRedisValue>(
        &self,
        command: &redis::Cmd,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> redis::RedisResult<T> {
        query_port(self.port, command, connect_timeout, response_timeout)
    }

    /// Spawns a server on a fresh port, retrying on port races.
    fn launch(extra: &[OsString], role: Role) -> Result<RedisServer, StartError> {
        let dir = tempfile::Builder::new()
            .prefix("querycache-redis-")
            .tempdir()
            .map_err(|err| StartError::Failed(format!("temporary directory: {err}")))?;
        Self::launch_in(dir, extra, role)
    }

    /// [`launch`](Self::launch) in `dir`.
    fn launch_in(
        dir: tempfile::TempDir,
        extra: &[OsString],
        role: Role,
    ) -> Result<RedisServer, StartError> {
        let log = dir.path().join("redis.log");
        let mut last_port = 0;
        for _ in 0..START_ATTEMPTS {
            let port = reserve_port(role)?;
            last_port = port;
            let args = server_args(port, dir.path(), role, extra);
            match spawn_and_wait(&args, &log, port) {
                Ok(child) => {
                    return Ok(RedisServer {
                        port,
                        args,
                        child: Mutex::new(Some(child)),
                        paused: AtomicBool::new(false),
                        log,
                        dir,
                    });
                }
                // Someone took the port between our probe and the server's bind: next port.
                Err(StartError::PortInUse) => {
                    // A cluster node may have written nodes.conf before failing on the bus port.
                    let _ = fs::remove_file(dir.path().join("nodes.conf"));
                }
                Err(other) => return Err(other),
            }
        }
        Err(StartError::Failed(format!(
            "every port tried was taken (last {last_port}); log tail:\n{}",
            log_tail(&log)
        )))
    }

    /// Spawns a Sentinel with configuration `conf` (written to `sentinel.conf` in its own
    /// directory: a Sentinel rewrites its file) on a fresh port, retrying on port races.
    fn launch_sentinel(conf: &str) -> Result<RedisServer, StartError> {
        let dir = tempfile::Builder::new()
            .prefix("querycache-sentinel-")
            .tempdir()
            .map_err(|err| StartError::Failed(format!("temporary directory: {err}")))?;
        let file = dir.path().join(SENTINEL_CONF);
        fs::write(&file, conf)
            .map_err(|err| StartError::Failed(format!("{}: {err}", file.display())))?;
        Self::launch_in(dir, &[], Role::Sentinel)
    }

    fn lock_child(&self) -> MutexGuard<'_, Option<Child>> {
        // A panic while holding the lock cannot leave the Option half-updated.
        self.child.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn kill_child(&self, mut child: Child) {
        // SIGKILL also ends a stopped process; SIGCONT as well, so that nothing is left
        // waiting on a stopped process's exit.
        let _ = child.kill();
        if self.paused.swap(false, Ordering::SeqCst) {
            signal_quietly(child.id(), "-CONT");
        }
        // Reap it: no zombies.
        let _ = child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        // `dir` (the TempDir) is removed when the fields drop, after the process is gone.
    }
}

impl std::fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .field("pid", &self.pid())
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

/// Three masters created with `redis-cli --cluster create ... --cluster-replicas 0
/// --cluster-yes`, each killed on Drop.
///
/// Start-up takes a few seconds (`redis-cli` waits for the nodes to join): from an async test,
/// call [`start`](Self::start) inside `tokio::task::spawn_blocking`.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    /// Replicas per master (0, or 1 for [`start_with_replicas`](Self::start_with_replicas)).
    replicas: usize,
}

/// How long a cluster with replicas waits before it calls a silent master failed (its
/// replica is promoted about a second later).
const FAILOVER_NODE_TIMEOUT_MS: &str = "1000";

impl RedisCluster {
    /// Starts three cluster-enabled nodes, joins them as masters sharing the 16384 slots, and
    /// waits until every node reports `cluster_state:ok`. `None` (after printing why) when
    /// `redis-server` or `redis-cli` is not installed — unless `QUERYCACHE_REQUIRE_SERVICES=1`,
    /// then it panics with the reason.
    ///
    /// # Panics
    ///
    /// When the tools are installed but the cluster does not come up.
    pub fn start() -> Option<RedisCluster> {
        skip_or_panic(Self::launch(0))
    }

    /// Three masters, each with one replica (six nodes, `--cluster-replicas 1`), a master
    /// called failed after 1 s of silence; ready once every node reports
    /// `cluster_state:ok` and every replica is in sync. `None` as for [`start`](Self::start).
    ///
    /// # Panics
    ///
    /// When the tools are installed but the cluster does not come up.
    pub fn start_with_replicas() -> Option<RedisCluster> {
        skip_or_panic(Self::launch(1))
    }

    /// The indices of the running nodes that say they are masters (`ROLE`).
    pub fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.role(i).as_deref() == Some("master"))
            .collect()
    }

    /// What node `index` says it is (`ROLE`'s first field: `master` or `slave`); `None` when
    /// it does not answer.
    pub fn role(&self, index: usize) -> Option<String> {
        let node = &self.nodes[index];
        if !node.is_running() {
            return None;
        }
        node.try_query::<Vec<redis::Value>>(
            &redis::cmd("ROLE"),
            Duration::from_millis(250),
            Duration::from_secs(1),
        )
        .ok()
        .and_then(|role| role.into_iter().next())
        .and_then(|first| redis::from_redis_value::<String>(first).ok())
    }

    /// The index of the running node that replicates the master on `index`, if any.
    pub fn replica_of(&self, index: usize) -> Option<usize> {
        let port = self.nodes[index].port().to_string();
        (0..self.nodes.len()).find(|&i| {
            i != index
                && self.nodes[i].is_running()
                && self.nodes[i]
                    .try_query::<String>(
                        redis::cmd("INFO").arg("replication"),
                        Duration::from_millis(250),
                        Duration::from_secs(1),
                    )
                    .is_ok_and(|info| info_field(&info, "master_port") == Some(port.as_str()))
        })
    }

    /// Kills (SIGKILL) a master that has a replica and returns `(master, replica)`: the
    /// killed node's index and its replica's, which the cluster will promote
    /// ([`wait_for_promotion`](Self::wait_for_promotion)).
    ///
    /// # Panics
    ///
    /// When no master has a replica.
    pub fn kill_a_master(&mut self) -> (usize, usize) {
        let (master, replica) = self
            .masters()
            .into_iter()
            .find_map(|m| self.replica_of(m).map(|r| (m, r)))
            .unwrap_or_else(|| panic!("no master with a replica; logs:\n{}", self.logs()));
        self.nodes[master].kill();
        (master, replica)
    }

    /// Waits until node `index` says it is a master and every running node reports
    /// `cluster_state:ok`.
    ///
    /// # Panics
    ///
    /// When that does not happen within 20 s.
    pub fn wait_for_promotion(&self, index: usize) {
        let deadline = Instant::now() + CLUSTER_DEADLINE;
        while self.role(index).as_deref() != Some("master") {
            assert!(
                Instant::now() < deadline,
                "node {} was not promoted within {CLUSTER_DEADLINE:?}; logs:\n{}",
                self.nodes[index].port(),
                self.logs()
            );
            thread::sleep(Duration::from_millis(20));
        }
        self.wait_until_ok();
    }

    /// Node `index`'s cluster id (`CLUSTER MYID`).
    pub fn node_id(&self, index: usize) -> String {
        self.nodes[index].query(redis::cmd("CLUSTER").arg("MYID"))
    }

    /// Moves `slots` slots from the master on `from` to the master on `to` with
    /// `redis-cli --cluster reshard` (keys migrated with `MIGRATE`, clients redirected with
    /// `ASK` then `MOVED`), and waits until the cluster is ok again.
    ///
    /// # Panics
    ///
    /// When `redis-cli` fails.
    pub fn reshard(&self, from: usize, to: usize, slots: usize) {
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("reshard")
            .arg(format!("{HOST}:{}", self.nodes[to].port()))
            .args(["--cluster-from", &self.node_id(from)])
            .args(["--cluster-to", &self.node_id(to)])
            .args(["--cluster-slots", &slots.to_string()])
            .arg("--cluster-yes")
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli --cluster reshard");
        assert!(
            output.status.success(),
            "redis-cli --cluster reshard failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        self.wait_until_ok();
    }

    /// The nodes' URLs (`redis://127.0.0.1:PORT`), for `redis::cluster::ClusterClient::new`.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The three nodes.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// Node `index` (0, 1 or 2).
    pub fn node(&self, index: usize) -> &RedisServer {
        &self.nodes[index]
    }

    /// Node `index`, to kill, pause or restart it.
    pub fn node_mut(&mut self, index: usize) -> &mut RedisServer {
        &mut self.nodes[index]
    }

    /// A client for the whole cluster.
    pub fn client(&self) -> redis::cluster::ClusterClient {
        redis::cluster::ClusterClient::new(self.urls()).expect("loopback redis:// URLs are valid")
    }

    /// Waits until every running node reports `cluster_state:ok` and knows all the nodes
    /// (e.g. after restarting one).
    ///
    /// # Panics
    ///
    /// When that does not happen within 20 s.
    pub fn wait_until_ok(&self) {
        if let Err(reason) = self.poll_until_ok() {
            panic!("{reason}");
        }
    }

    fn launch(replicas: usize) -> Result<RedisCluster, StartError> {
        // Nodes start one after the other: a node takes milliseconds, and sequential starts
        // keep the port probing simple.
        let size = CLUSTER_SIZE * (1 + replicas);
        let extra: Vec<OsString> = if replicas > 0 {
            vec![
                "--cluster-node-timeout".into(),
                FAILOVER_NODE_TIMEOUT_MS.into(),
            ]
        } else {
            Vec::new()
        };
        let mut nodes = Vec::with_capacity(size);
        for _ in 0..size {
            nodes.push(RedisServer::launch(&extra, Role::ClusterNode)?);
        }
        let cluster = RedisCluster { nodes, replicas };
        cluster.create()?;
        cluster.poll_until_ok().map_err(StartError::Failed)?;
        Ok(cluster)
    }

    /// `redis-cli --cluster create`: assigns the slots and introduces the nodes.
    fn create(&self) -> Result<(), StartError> {
        let mut cli = Command::new("redis-cli");
        cli.arg("--cluster").arg("create");
        for node in &self.nodes {
            cli.arg(format!("{HOST}:{}", node.port()));
        }
        cli.args([
            "--cluster-replicas",
            &self.replicas.to_string(),
            "--cluster-yes",
        ])
        .stdin(Stdio::null());
        let output = match cli.output() {
            Ok(output) => output,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(StartError::NotInstalled(format!(
                    "redis-cli not found on PATH ({err})"
                )));
            }
            Err(err) => return Err(StartError::Failed(format!("running redis-cli: {err}"))),
        };
        if output.status.success() {
            return Ok(());
        }
        Err(StartError::Failed(format!(
            "redis-cli --cluster create failed ({}):\n{}{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.logs()
        )))
    }

    fn poll_until_ok(&self) -> Result<(), String> {
        let deadline = Instant::now() + CLUSTER_DEADLINE;
        let info_cmd = redis::cmd("CLUSTER").arg("INFO").clone();
        loop {
            let mut last = String::new();
            let all_ok = self
                .nodes
                .iter()
                .filter(|node| node.is_running())
                .all(|node| {
                    match node.try_query::<String>(
                        &info_cmd,
                        Duration::from_millis(250),
                        Duration::from_secs(1),
                    ) {
                        Ok(info) => {
                            let ok = info_field(&info, "cluster_state") == Some("ok")
                                && info_field(&info, "cluster_known_nodes")
                                    == Some(&*self.nodes.len().to_string())
                                && in_sync(node);
                            if !ok {
                                last = format!("node {}: {info}", node.port());
                            }
                            ok
                        }
                        Err(err) => {
                            last = format!("node {}: {err}", node.port());
                            false
                        }
                    }
                });
            if all_ok {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the cluster did not reach cluster_state:ok within {CLUSTER_DEADLINE:?}; \
                     last answer from {last}\n{}",
                    self.logs()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("--- node {} log tail:\n{}", node.port(), node.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Whether `node` is a master, or a replica whose link to its master is up.
fn in_sync(node: &RedisServer) -> bool {
    node.try_query::<String>(
        redis::cmd("INFO").arg("replication"),
        Duration::from_millis(250),
        Duration::from_secs(1),
    )
    .is_ok_and(|info| {
        info_field(&info, "role") == Some("master")
            || info_field(&info, "master_link_status") == Some("up")
    })
}

/// A master, one replica of it, and three Sentinels watching them (quorum 2, a master is
/// down after 500 ms of silence), each a private `redis-server` killed on Drop.
#[derive(Debug)]
pub struct RedisSentinels {
    master: RedisServer,
    replica: RedisServer,
    sentinels: Vec<RedisServer>,
}

/// What the Sentinels call the master.
pub const SENTINEL_SERVICE: &str = "qcmaster";
/// How long the Sentinels wait before they call a silent master down.
const SENTINEL_DOWN_AFTER_MS: u64 = 500;

impl RedisSentinels {
    /// Starts the master, its replica (and waits until it is in sync), then the three
    /// Sentinels (and waits until each knows the replica and the two others). `None` (after
    /// printing why) when `redis-server` is not installed — unless
    /// `QUERYCACHE_REQUIRE_SERVICES=1`, then it panics with the reason.
    ///
    /// # Panics
    ///
    /// When the servers are installed but do not come up as described.
    pub fn start() -> Option<RedisSentinels> {
        let master = RedisServer::start()?;
        let replica =
            RedisServer::start_with(&[("replicaof", &format!("{HOST} {}", master.port()))])?;
        let set = RedisSentinels {
            master,
            replica,
            sentinels: Vec::new(),
        };
        set.wait_for("the replica in sync", |set| {
            let info: String = set.replica.query(redis::cmd("INFO").arg("replication"));
            info_field(&info, "master_link_status") == Some("up")
        });
        let mut set = set;
        for _ in 0..3 {
            let conf = format!(
                "sentinel monitor {SENTINEL_SERVICE} {HOST} {port} 2\n\
                 sentinel down-after-milliseconds {SENTINEL_SERVICE} {SENTINEL_DOWN_AFTER_MS}\n\
                 sentinel failover-timeout {SENTINEL_SERVICE} 5000\n\
                 sentinel parallel-syncs {SENTINEL_SERVICE} 1\n",
                port = set.master.port()
            );
            let sentinel = skip_or_panic(RedisServer::launch_sentinel(&conf))?;
            set.sentinels.push(sentinel);
        }
        set.wait_for("every Sentinel knowing the replica and the others", |set| {
            set.sentinels.iter().all(|sentinel| {
                let master: Vec<(String, String)> = sentinel
                    .try_query::<Vec<String>>(
                        redis::cmd("SENTINEL").arg("MASTER").arg(SENTINEL_SERVICE),
                        Duration::from_millis(250),
                        Duration::from_secs(1),
                    )
                    .unwrap_or_default()
                    .chunks(2)
                    .filter_map(|pair| match pair {
                        [name, value] => Some((name.clone(), value.clone())),
                        _ => None,
                    })
                    .collect();
                let field = |name: &str| {
                    master
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.as_str())
                };
                field("num-slaves") == Some("1") && field("num-other-sentinels") == Some("2")
            })
        });
        Some(set)
    }

    /// `redis+sentinel://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/qcmaster`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("{HOST}:{}", s.port()))
            .collect();
        format!("redis+sentinel://{}/{SENTINEL_SERVICE}", hosts.join(","))
    }

    /// The master it started with.
    pub fn master(&self) -> &RedisServer {
        &self.master
    }

    /// The master it started with, to kill or pause it.
    pub fn master_mut(&mut self) -> &mut RedisServer {
        &mut self.master
    }

    /// The replica it started with (the master after a failover).
    pub fn replica(&self) -> &RedisServer {
        &self.replica
    }

    /// The port the first Sentinel that answers names as the master's.
    pub fn named_master_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|sentinel| {
            sentinel
                .try_query::<Option<(String, u16)>>(
                    redis::cmd("SENTINEL")
                        .arg("GET-MASTER-ADDR-BY-NAME")
                        .arg(SENTINEL_SERVICE),
                    Duration::from_millis(250),
                    Duration::from_secs(1),
                )
                .ok()
                .flatten()
                .map(|(_, port)| port)
        })
    }

    /// Waits until the Sentinels name the replica as the master and it says so itself.
    ///
    /// # Panics
    ///
    /// When that does not happen within 20 s.
    pub fn wait_for_failover(&self) {
        self.wait_for_master(self.replica.port());
    }

    /// Kills (SIGKILL) whichever of the two servers the Sentinels name as the master now
    /// (the one it started with, unless they failed over already: a loaded machine can make
    /// a master miss its 500 ms), and returns the port of the other one, the replica to be
    /// promoted; [`wait_for_master`](Self::wait_for_master) waits for the promotion.
    ///
    /// # Panics
    ///
    /// When no Sentinel names a master.
    pub fn kill_named_master(&mut self) -> u16 {
        let named = self
            .named_master_port()
            .unwrap_or_else(|| panic!("no Sentinel names a master; logs:\n{}", self.logs()));
        let (dying, other) = if named == self.master.port() {
            (&mut self.master, self.replica.port())
        } else {
            (&mut self.replica, self.master.port())
        };
        dying.kill();
        other
    }

    /// Waits until the Sentinels name the server on `port` as the master and it says so
    /// itself.
    ///
    /// # Panics
    ///
    /// When that does not happen within 20 s.
    pub fn wait_for_master(&self, port: u16) {
        let server = if port == self.master.port() {
            &self.master
        } else {
            &self.replica
        };
        self.wait_for("the replica promoted", |set| {
            set.named_master_port() == Some(port)
                && server
                    .try_query::<Vec<redis::Value>>(
                        &redis::cmd("ROLE"),
                        Duration::from_millis(250),
                        Duration::from_secs(1),
                    )
                    .ok()
                    .and_then(|role| role.into_iter().next())
                    == Some(redis::Value::BulkString(b"master".to_vec()))
        });
    }

    fn wait_for(&self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + CLUSTER_DEADLINE;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "Redis Sentinel set: no {what} within {CLUSTER_DEADLINE:?}; logs:\n{}",
                self.logs()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn logs(&self) -> String {
        std::iter::once(("master", &self.master))
            .chain(std::iter::once(("replica", &self.replica)))
            .chain(self.sentinels.iter().map(|s| ("sentinel", s)))
            .map(|(what, server)| {
                format!(
                    "--- {what} {} log tail:\n{}",
                    server.port(),
                    server.log_tail()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// What kind of server to spawn.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Standalone,
    /// Also needs its bus port (port + 10000) free.
    ClusterNode,
    /// A Sentinel, configured by `sentinel.conf` in its directory.
    Sentinel,
}

/// A Sentinel's configuration file, in its directory.
const SENTINEL_CONF: &str = "sentinel.conf";

/// Why a start did not work.
#[derive(Debug)]
enum StartError {
    /// The binary is missing: skip, unless services are required.
    NotInstalled(String),
    /// The server could not bind its port (or bus port): try another.
    PortInUse,
    /// Anything else, with the details.
    Failed(String),
}

/// `Ok` → `Some`; not installed → `None` after a note on stderr (or a panic when services are
/// required); any other failure → panic.
fn skip_or_panic<T>(result: Result<T, StartError>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(StartError::NotInstalled(reason)) => super::services::unavailable(reason),
        Err(StartError::PortInUse) => panic!("redis-server could not bind a free port"),
        Err(StartError::Failed(reason)) => panic!("redis-server did not start: {reason}"),
    }
}

/// Ports handed out in this process (client ports and cluster bus ports). Never released:
/// a killed server keeps its port for `restart`, and a port is never reused by another test
/// whose clients could then reach the wrong server. A test run uses a few hundred at most.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A port nobody in this process has, that was free a moment ago (and, for a cluster node,
/// whose bus port was free too), below [`MAX_PORT`] and never 6379.
fn reserve_port(role: Role) -> Result<u16, StartError> {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    for _ in 0..1000 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|err| StartError::Failed(format!("cannot bind a loopback port: {err}")))?;
        let port = listener
            .local_addr()
            .map_err(|err| StartError::Failed(format!("local_addr: {err}")))?
            .port();
        if port >= MAX_PORT || port == SHARED_REDIS_PORT || handed_out.contains(&port) {
            continue;
        }
        let bus_port = port + BUS_PORT_OFFSET;
        if role == Role::ClusterNode {
            // Probe the bus port while the client port is still held.
            if handed_out.contains(&bus_port)
                || bus_port == SHARED_REDIS_PORT + BUS_PORT_OFFSET
                || TcpListener::bind((Ipv4Addr::LOCALHOST, bus_port)).is_err()
            {
                continue;
            }
            handed_out.insert(bus_port);
        }
        handed_out.insert(port);
        return Ok(port);
    }
    Err(StartError::Failed(
        "no free loopback port below 55535 after 1000 tries".to_owned(),
    ))
}

/// The command line of a server on `port` in `dir`.
fn server_args(port: u16, dir: &Path, role: Role, extra: &[OsString]) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    if role == Role::Sentinel {
        args.push(dir.join(SENTINEL_CONF).into());
        args.push("--sentinel".into());
    }
    let mut set = |name: &str, value: &str| {
        args.push(format!("--{name}").into());
        args.push(value.into());
    };
    set("port", &port.to_string());
    set("bind", HOST);
    set("save", "");
    set("appendonly", "no");
    set("daemonize", "no");
    set("protected-mode", "yes");
    set("loglevel", "warning");
    if role == Role::ClusterNode {
        set("cluster-enabled", "yes");
        set("cluster-config-file", "nodes.conf");
        set("cluster-node-timeout", "2000");
    }
    args.push("--dir".into());
    args.push(dir.into());
    args.extend(extra.iter().cloned());
    args
}

/// Spawns `redis-server args` (output appended to `log`) and waits until it answers on
/// `port`. On failure the process is gone (killed and reaped).
fn spawn_and_wait(args: &[OsString], log: &Path, port: u16) -> Result<Child, StartError> {
    let log_file = open_log(log)?;
    let log_file_err = log_file
        .try_clone()
        .map_err(|err| StartError::Failed(format!("log file {}: {err}", log.display())))?;
    let log_start = fs::metadata(log).map_or(0, |meta| meta.len());
    let mut child = Command::new("redis-server")
        .args(args)
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_file_err)
        .spawn()
        .map_err(|err| match err.kind() {
            io::ErrorKind::NotFound => {
                StartError::NotInstalled(format!("redis-server not found on PATH ({err})"))
            }
            _ => StartError::Failed(format!("spawning redis-server: {err}")),
        })?;
    match wait_until_ready(&mut child, port, log, log_start) {
        Ok(()) => Ok(child),
        Err(err) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(err)
        }
    }
}

fn open_log(log: &Path) -> Result<File, StartError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|err| StartError::Failed(format!("log file {}: {err}", log.display())))
}

/// Polls `PING` until `child` answers on `port`; an early exit because the port was taken is
/// [`StartError::PortInUse`]. `log_start` is where this run's output begins in `log`.
fn wait_until_ready(
    child: &mut Child,
    port: u16,
    log: &Path,
    log_start: u64,
) -> Result<(), StartError> {
    let deadline = Instant::now() + READY_DEADLINE;
    let failure = |what: String| {
        StartError::Failed(format!(
            "redis-server on port {port}: {what}; log tail:\n{}",
            log_tail(log)
        ))
    };
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|err| failure(format!("waiting for it: {err}")))?
        {
            return Err(exited(status, log, log_start, &failure));
        }
        let ping = query_port::<String>(
            port,
            &redis::cmd("PING"),
            Duration::from_millis(100),
            Duration::from_millis(500),
        );
        if ping.is_ok() {
            // Something answers; make sure it is our process, not a program that already
            // owned the port (ours would then be exiting with "Address already in use").
            let info: String = query_port(
                port,
                redis::cmd("INFO").arg("server"),
                Duration::from_millis(500),
                Duration::from_secs(2),
            )
            .map_err(|err| failure(format!("INFO server after PING: {err}")))?;
            return if info_field(&info, "process_id") == Some(&*child.id().to_string()) {
                Ok(())
            } else {
                Err(StartError::PortInUse)
            };
        }
        if Instant::now() >= deadline {
            return Err(failure(format!(
                "no PING answer within {READY_DEADLINE:?} (last error: {})",
                ping.err().map(|err| err.to_string()).unwrap_or_default()
            )));
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Classifies an early exit: a taken port (or bus port) means "try again".
fn exited(
    status: ExitStatus,
    log: &Path,
    log_start: u64,
    failure: &dyn Fn(String) -> StartError,
) -> StartError {
    let output = fs::read(log).unwrap_or_default();
    let this_run = output
        .get(usize::try_from(log_start).unwrap_or(usize::MAX)..)
        .unwrap_or_default();
    if String::from_utf8_lossy(this_run).contains("Address already in use") {
        StartError::PortInUse
    } else {
        failure(format!("exited during start-up ({status})"))
    }
}

/// One command on a fresh synchronous connection to `127.0.0.1:port`.
fn query_port<T: redis::FromRedisValue>(
    port: u16,
    command: &redis::Cmd,
    connect_timeout: Duration,
    response_timeout: Duration,
) -> redis::RedisResult<T> {
    assert_ne!(port, SHARED_REDIS_PORT, "the shared Redis is off limits");
    let client = redis::Client::open(format!("redis://{HOST}:{port}"))?;
    let mut connection = client.get_connection_with_timeout(connect_timeout)?;
    connection.set_read_timeout(Some(response_timeout))?;
    connection.set_write_timeout(Some(response_timeout))?;
    command.query(&mut connection)
}

/// The value of `name:value` in an `INFO`-style reply.
fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        line.trim_end()
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(':'))
    })
}

/// `calls=N` from the `cmdstat_<command>:calls=N,usec=...` line of `INFO commandstats`.
fn parse_command_count(info: &str, command: &str) -> u64 {
    let name = format!("cmdstat_{}", command.to_ascii_lowercase());
    info_field(info, &name)
        .and_then(|stats| {
            stats
                .split(',')
                .find_map(|pair| pair.strip_prefix("calls="))
        })
        .and_then(|calls| calls.parse().ok())
        .unwrap_or(0)
}

/// The last 30 lines of a log file.
fn log_tail(log: &Path) -> String {
    let Ok(bytes) = fs::read(log) else {
        return format!("(no log at {})", log.display());
    };
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// `kill <flag> <pid>`, panicking if it fails (there is no libc dependency to call kill(2)).
fn signal(pid: u32, flag: &str) {
    let status = Command::new("kill")
        .args([flag, &pid.to_string()])
        .status()
        .unwrap_or_else(|err| panic!("running `kill {flag} {pid}`: {err}"));
    assert!(status.success(), "`kill {flag} {pid}` failed: {status}");
}

/// `kill <flag> <pid>`, ignoring failure (for Drop).
fn signal_quietly(pid: u32, flag: &str) {
    let _ = Command::new("kill")
        .args([flag, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Waits (up to 2 s) until `/proc/<pid>/stat` says the process is stopped (`T`) or not, so
/// that `pause` returns only once the server can no longer answer. Where there is no `/proc`,
/// returns at once (the signal is delivered within microseconds anyway).
fn wait_for_process_state(pid: u32, stopped: bool) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return;
        };
        // The state follows the parenthesised command name: "pid (comm) S ...".
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        let is_stopped = matches!(state, Some("T" | "t"));
        if is_stopped == stopped || Instant::now() >= deadline {
            return;
        }
        thread::sleep(Duration::from_millis(1));
    }
}
