//! Private PostgreSQL servers for tests: one per [`PgServer`], each initialised with `initdb`
//! in its own temporary directory, listening on its own free loopback port, and stopped (its
//! directory removed) on Drop — also when the test panics.
//!
//! The shared server ([`super::postgres`], port 5432) is enough for tests that only need a
//! database of their own. A private server is for tests that need what a shared server must
//! not be used for: restarting or crashing it, ending its backends (replication connections
//! among them), logical replication slots and publications, or other server settings
//! ([`PgServer::start_with`]). It is built from the machine's binaries, in the style of the
//! Redis harness ([`super::redis`]):
//!
//! - **Binaries.** `initdb`, `pg_ctl` and `psql` come from `pg_config --bindir`, or else the
//!   newest `/usr/lib/postgresql/<version>/bin`. PostgreSQL refuses to run as root: when the
//!   tests run as root, `initdb` and `pg_ctl` run as the `postgres` OS user
//!   (`runuser -u postgres -- ...`), and the temporary directory (under `/tmp`) is handed to
//!   that user. `psql` runs as the test process itself and talks TCP.
//! - **Set-up.** `initdb -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync` (plain `C`
//!   where `C.UTF-8` does not exist), once per server. The harness's settings are written to
//!   `querycache.conf` in the data directory, included at the end of `postgresql.conf`:
//!   `listen_addresses = '127.0.0.1'`, the server's port, `unix_socket_directories` = the
//!   temporary directory (no clash with the system's socket directory),
//!   `wal_level = logical`, `max_replication_slots = 20`, `max_wal_senders = 20`,
//!   `max_connections = 100`, `shared_buffers = 32MB`, and no durability (`fsync`,
//!   `synchronous_commit`, `full_page_writes` off: a crash may lose data, which is fine for a
//!   throwaway server). [`PgServer::start_with`] settings come after them and override them.
//!   Every start, restart and [`start_again`](PgServer::start_again) reads the same file.
//! - **Ports.** A port is picked by [`super::ports::reserve_port`], at random *below* the
//!   kernel's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`, 20000 up to its
//!   start), so it is never the local port of some outgoing connection, and never one the Redis
//!   harness (which binds port 0, so gets ephemeral ports) hands out. It must be free when
//!   probed, and is then recorded in a process-wide registry (shared with the private MariaDB
//!   servers, [`super::mariadb_server`]) and never handed out again in this process (a stopped
//!   server keeps its port for [`start_again`](PgServer::start_again)). 5432 is never used.
//!   Another process can still take the port between the probe and the server's `bind`: the
//!   server then fails with "Address already in use" and the start is retried on a new port.
//! - **Readiness.** No fixed sleeps of our own: `pg_ctl -w -t 30 start` returns once the
//!   server accepts connections (pg_ctl itself checks every 100 ms), then
//!   `psql -h 127.0.0.1 -p PORT -U postgres -d postgres -Atc 'show data_directory'` is polled
//!   until it answers with *our* data directory (not some other server's), for at most 30 s.
//! - **A cap.** At most [`MAX_SERVERS`] private servers are alive at once in the process (the
//!   suite's tests run in parallel on a small machine): [`PgServer::start`] waits for a slot,
//!   which the server gives back on Drop. A test needing two servers at once should start both
//!   through one helper in one go rather than hold one while a parallel test holds the other,
//!   or it may wait for a slot forever.
//! - **Skipping.** [`PgServer::start`] returns `None` — after saying why on stderr — when the
//!   PostgreSQL binaries (or, as root, `runuser` or the `postgres` user) are not there, so
//!   tests skip on machines without PostgreSQL. With `QUERYCACHE_REQUIRE_SERVICES=1` (CI) it
//!   panics instead. A server that can be initialised but does not start is always a panic,
//!   with the tail of its log.
//!
//! The harness is blocking (`std::process`): a start (initdb included) takes about a second
//! and belongs in `tokio::task::spawn_blocking` in an async test, as do `restart` and
//! `start_again`; the `psql` helpers take tens of milliseconds. They are test fixtures: they
//! panic rather than return errors (except [`PgServer::try_psql`]).
//!
//! A process killed before its fixtures drop (SIGKILL, an abort) leaves its servers running
//! and their `/tmp/querycache-pg-*` directories behind; stop them with
//! `runuser -u postgres -- pg_ctl -D /tmp/querycache-pg-XXXX/data -m immediate stop`.
//!
//! Nothing here ever connects to the shared server on port 5432: every address is a port this
//! module handed to a server it started.

// Fixtures: not every test uses every helper.
#![allow(dead_code)]

use super::ports::{Cap, Slot, log_tail};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// The only address servers listen on and clients use.
const HOST: &str = "127.0.0.1";
/// The OS user and the database superuser the servers run as.
const PG_USER: &str = "postgres";
/// How long `pg_ctl` may wait for a start or a stop (its `-t`).
const PG_CTL_TIMEOUT_SECS: u32 = 30;
/// How long a started server has to answer `psql`.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// How long `restart` and `start_again` keep trying while the port is still taken.
const RESTART_DEADLINE: Duration = Duration::from_secs(5);
/// Pause between two readiness probes.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// Never used, whatever the probe says: the shared server.
const SHARED_PG_PORT: u16 = 5432;
/// At most this many private servers are alive at once in the process.
pub const MAX_SERVERS: usize = 2;
/// The file, in the data directory, holding the harness's settings.
const CONF_FILE: &str = "querycache.conf";
/// The settings of every server, before [`PgServer::start_with`]'s.
const BASE_SETTINGS: &[(&str, &str)] = &[
    ("listen_addresses", HOST),
    ("wal_level", "logical"),
    ("max_replication_slots", "20"),
    ("max_wal_senders", "20"),
    ("max_connections", "100"),
    ("shared_buffers", "32MB"),
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
];

/// A private PostgreSQL server on a free loopback port, stopped on Drop (even when the test
/// panics), when its temporary directory (data directory, socket, log) is removed.
///
/// Its superuser is `postgres`, with `trust` authentication (no password); it starts with the
/// databases `initdb` creates (`postgres`, `template0`, `template1`).
pub struct PgServer {
    port: u16,
    /// `<dir>/data`.
    data: PathBuf,
    /// `<dir>/server.log`: the server's output across starts.
    log: PathBuf,
    bin: &'static Binaries,
    /// Removed on Drop, after the server is stopped.
    dir: tempfile::TempDir,
    /// Given back on Drop, after the server is stopped.
    _slot: Slot,
}

impl PgServer {
    /// Initialises and starts one with the harness's settings (see the module docs), waiting
    /// for a free [slot](MAX_SERVERS) first; `None` (after printing why) when PostgreSQL is
    /// not installed — unless `QUERYCACHE_REQUIRE_SERVICES=1`, then it panics with the reason.
    ///
    /// # Panics
    ///
    /// When `initdb` fails, or the server does not come up (the message carries its log).
    pub fn start() -> Option<PgServer> {
        Self::start_with(&[])
    }

    /// Like [`start`](Self::start), with extra server settings written after the harness's
    /// own, so they may override them: e.g. `&[("wal_level", "replica")]`. Values are quoted
    /// for `postgresql.conf` by the harness (`("search_path", "a, b")` is fine).
    pub fn start_with(settings: &[(&str, &str)]) -> Option<PgServer> {
        let bin = match binaries() {
            Ok(bin) => bin,
            Err(reason) => return super::services::unavailable(reason),
        };
        let slot = CAP.acquire();
        match Self::launch(bin, settings, slot) {
            Ok(server) => Some(server),
            Err(reason) => panic!("private PostgreSQL server did not start: {reason}"),
        }
    }

    /// A primary and its streaming replica: the primary started as [`start_with`](Self::start_with)
    /// starts one, the replica made from it with `pg_basebackup -X stream -R` (so it follows
    /// the primary over streaming replication, `hot_standby` on: it answers reads) on a
    /// port of its own. Both slots are taken at once. `None` as [`start`](Self::start).
    ///
    /// Pause its replay with `SELECT pg_wal_replay_pause()` on the replica to make it lag
    /// for sure; [`wait_replayed`](Self::wait_replayed) waits for it to catch up.
    ///
    /// # Panics
    ///
    /// When either server does not start, or the base backup fails.
    pub fn start_with_replica(settings: &[(&str, &str)]) -> Option<(PgServer, PgServer)> {
        let bin = match binaries() {
            Ok(bin) => bin,
            Err(reason) => return super::services::unavailable(reason),
        };
        let mut slots = CAP.acquire_many(2);
        let replica_slot = slots.pop().expect("two slots");
        let primary_slot = slots.pop().expect("two slots");
        let primary = Self::launch(bin, settings, primary_slot)
            .unwrap_or_else(|reason| panic!("private PostgreSQL primary did not start: {reason}"));
        let replica = primary
            .launch_replica(settings, replica_slot)
            .unwrap_or_else(|reason| panic!("its streaming replica did not start: {reason}"));
        Some((primary, replica))
    }

    /// `pg_basebackup` of this server into a fresh directory, started as its replica.
    fn launch_replica(&self, settings: &[(&str, &str)], slot: Slot) -> Result<PgServer, String> {
        let dir = make_dir()?;
        let data = dir.path().join("data");
        let output = self
            .bin
            .server_command("pg_basebackup", dir.path())
            .arg("-D")
            .arg(&data)
            .args(["-h", HOST, "-p", &self.port.to_string(), "-U", PG_USER])
            .args(["-X", "stream", "-R", "--no-sync", "-c", "fast"])
            .output()
            .map_err(|err| format!("running pg_basebackup: {err}"))?;
        if !output.status.success() {
            return Err(format!(
                "pg_basebackup from port {} failed ({}): {}{}",
                self.port,
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        // The copied `querycache.conf` names the primary's port: rewritten on start.
        start_on_a_free_port(self.bin, dir, settings, slot)
    }

    /// On a replica: waits until it has replayed everything `primary` has written so far
    /// (at most 30 s).
    ///
    /// # Panics
    ///
    /// When it does not within 30 s (its replay paused, for one).
    pub fn wait_replayed(&self, primary: &PgServer) {
        let target = primary.psql("postgres", "SELECT pg_current_wal_insert_lsn()");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let caught_up = self.psql(
                "postgres",
                &format!("SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"),
            );
            if caught_up == "t" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the replica on port {} did not replay up to {target} within 30 s; log tail:\n{}",
                self.port,
                self.log_tail()
            );
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// The port it listens on (on 127.0.0.1). Never 5432.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:PORT/<db>`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{PG_USER}@{HOST}:{}/{db}", self.port)
    }

    /// Its temporary directory (data directory `data/`, log `server.log`, the Unix socket),
    /// removed on Drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The path of a PostgreSQL program (`pg_recvlogical`, `pg_dump`, ...) in the directory the
    /// server's binaries come from (it may not exist: not every package ships every program).
    /// Client programs may be run as any user.
    pub fn program(&self, name: &str) -> PathBuf {
        self.bin.bindir.join(name)
    }

    /// The last 30 lines of its log, for assertion messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// Creates an empty database named `qc_<16 random hex digits>` and returns its name.
    ///
    /// # Panics
    ///
    /// When `CREATE DATABASE` fails.
    pub fn create_database(&self) -> String {
        let name = format!("qc_{:016x}", rand::random::<u64>());
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        name
    }

    /// Runs `sql` (one statement or several, `;`-separated, each in its own transaction unless
    /// the script says otherwise) on the database `db` in a separate `psql` process
    /// (`psql -X -q -v ON_ERROR_STOP=1 -At`, script on stdin), and returns its output trimmed:
    /// rows one a line, columns separated by `|`, no headers and no command tags.
    ///
    /// # Panics
    ///
    /// When `psql` fails (the message carries its stderr).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql).unwrap_or_else(|err| {
            panic!(
                "psql on port {} (database {db}) failed: {err}\nSQL: {sql}",
                self.port
            )
        })
    }

    /// Like [`psql`](Self::psql), returning `psql`'s stderr (and exit status) on failure
    /// instead of panicking; the script stops at its first error.
    pub fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        run_psql(self.bin, self.port, db, sql, Duration::from_secs(10))
    }

    /// Ends the backends `select ... from pg_stat_activity where <filter_sql>` finds (never the
    /// `psql` session running it) with `pg_terminate_backend` and returns how many were ended:
    /// e.g. `terminate("backend_type = 'walsender'")` ends replication connections.
    ///
    /// # Panics
    ///
    /// When the query fails (a bad filter, a stopped server).
    pub fn terminate(&self, filter_sql: &str) -> usize {
        let out = self.psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) AS ended \
                 FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND ({filter_sql})) t \
                 WHERE ended"
            ),
        );
        out.parse()
            .unwrap_or_else(|err| panic!("terminate: unexpected count {out:?}: {err}"))
    }

    /// Restarts it (`pg_ctl stop -m fast`, then a start on the same port with the same data and
    /// settings) and waits until it answers again. Sessions are ended; committed data stays.
    ///
    /// # Panics
    ///
    /// When it does not come back (the message carries its log).
    pub fn restart(&self) {
        self.stop();
        self.start_again();
    }

    /// Stops it cleanly (`pg_ctl stop -m fast`: sessions are ended, a shutdown checkpoint is
    /// written) and waits until it is down; [`start_again`](Self::start_again) brings it back.
    ///
    /// # Panics
    ///
    /// When `pg_ctl stop` fails (it is not running, for one).
    pub fn stop(&self) {
        self.pg_ctl_stop("fast")
            .unwrap_or_else(|err| panic!("{err}; log tail:\n{}", self.log_tail()));
    }

    /// Kills it (`pg_ctl stop -m immediate`: no shutdown checkpoint, so the next start runs
    /// crash recovery) and waits until it is down; [`start_again`](Self::start_again) brings it
    /// back.
    ///
    /// With the harness's `synchronous_commit = off`, a transaction committed within the last
    /// few hundred milliseconds may be lost (its WAL can still be in the server's memory): run
    /// `CHECKPOINT` before crashing, or start the server with `("synchronous_commit", "on")`,
    /// when the test counts on it.
    ///
    /// # Panics
    ///
    /// When `pg_ctl stop` fails (it is not running, for one).
    pub fn crash(&self) {
        self.pg_ctl_stop("immediate")
            .unwrap_or_else(|err| panic!("{err}; log tail:\n{}", self.log_tail()));
    }

    /// Starts a [stopped](Self::stop) or [crashed](Self::crash) server again, on the same port
    /// with the same data and settings, and waits until it answers. While the port is still
    /// taken (by another program) it retries for up to 5 s.
    ///
    /// # Panics
    ///
    /// When it does not come back (the message carries its log), or it was already running.
    pub fn start_again(&self) {
        let deadline = Instant::now() + RESTART_DEADLINE;
        loop {
            match start_server(self.bin, self.dir.path(), &self.data, &self.log, self.port) {
                Ok(()) => return,
                Err(StartError::PortInUse) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(50));
                }
                Err(StartError::PortInUse) => panic!(
                    "PostgreSQL could not get its port {} back within {RESTART_DEADLINE:?}; \
                     log tail:\n{}",
                    self.port,
                    self.log_tail()
                ),
                Err(StartError::Failed(reason)) => {
                    panic!(
                        "PostgreSQL on port {} did not start again: {reason}",
                        self.port
                    )
                }
            }
        }
    }

    /// Whether the server is up (`pg_ctl status`).
    pub fn is_running(&self) -> bool {
        pg_ctl(self.bin, self.dir.path(), &["status", "-D"], &self.data)
            .is_ok_and(|output| output.status.success())
    }

    /// `pg_ctl stop -m <mode> -w`, bounded by pg_ctl's timeout.
    fn pg_ctl_stop(&self, mode: &str) -> Result<(), String> {
        let timeout = PG_CTL_TIMEOUT_SECS.to_string();
        let output = pg_ctl(
            self.bin,
            self.dir.path(),
            &["stop", "-w", "-t", &timeout, "-m", mode, "-D"],
            &self.data,
        )
        .map_err(|err| format!("running pg_ctl stop: {err}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "pg_ctl stop -m {mode} on port {} failed ({}): {}{}",
                self.port,
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// Initialises a data directory and starts a server on a fresh port, retrying on port
    /// races.
    fn launch(
        bin: &'static Binaries,
        settings: &[(&str, &str)],
        slot: Slot,
    ) -> Result<PgServer, String> {
        let dir = make_dir()?;
        let data = dir.path().join("data");
        initdb(bin, dir.path(), &data)?;
        let conf = data.join("postgresql.conf");
        fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .and_then(|mut file| writeln!(file, "\ninclude '{CONF_FILE}'"))
            .map_err(|err| format!("{}: {err}", conf.display()))?;
        start_on_a_free_port(bin, dir, settings, slot)
    }
}

/// Starts the server whose data directory is `<dir>/data` on a fresh port (its settings
/// written for that port), retrying on port races.
fn start_on_a_free_port(
    bin: &'static Binaries,
    dir: tempfile::TempDir,
    settings: &[(&str, &str)],
    slot: Slot,
) -> Result<PgServer, String> {
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    super::ports::start_on_a_free_port(&log, |port| {
        write_settings(&data, dir.path(), port, settings)?;
        match start_server(bin, dir.path(), &data, &log, port) {
            Ok(()) => Ok(Some(port)),
            // Someone took the port between our probe and the server's bind: next port.
            Err(StartError::PortInUse) => Ok(None),
            Err(StartError::Failed(reason)) => Err(reason),
        }
    })
    .map(|port| PgServer {
        port,
        data,
        log,
        bin,
        dir,
        _slot: slot,
    })
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Errors ignored: the server may already be down (stop, crash).
        let _ = self.pg_ctl_stop("immediate");
        // Should pg_ctl have failed with the postmaster still there, kill it (its children
        // notice and exit) — if the pid in postmaster.pid is still a postgres of this data
        // directory, not a recycled pid.
        let pid = fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse::<u32>().ok());
        if let Some(pid) = pid {
            let ours = fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                String::from_utf8_lossy(&cmdline).contains(&*self.data.to_string_lossy())
            });
            if ours {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        // `dir` (the TempDir) is removed, and the slot given back, when the fields drop.
    }
}

impl std::fmt::Debug for PgServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgServer")
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

/// Why a start did not work.
#[derive(Debug)]
enum StartError {
    /// The server could not bind its port: try another.
    PortInUse,
    /// Anything else, with the details.
    Failed(String),
}

/// Where the PostgreSQL programs are, and how to run the server-side ones.
#[derive(Debug)]
struct Binaries {
    /// The directory of `initdb`, `pg_ctl`, `psql`.
    bindir: PathBuf,
    /// Run `initdb` and `pg_ctl` through `runuser -u postgres --` (the tests run as root).
    as_postgres: bool,
}

impl Binaries {
    /// A command running `program` from the bin directory, as `postgres` when needed, with
    /// `dir` as its working directory (one the `postgres` user may enter).
    fn server_command(&self, program: &str, dir: &Path) -> Command {
        let path = self.bindir.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", PG_USER, "--"]).arg(path);
            command
        } else {
            Command::new(path)
        };
        command.current_dir(dir).stdin(Stdio::null());
        clean_env(&mut command);
        command
    }
}

/// The binaries, found once per process; `Err` says what is missing.
fn binaries() -> Result<&'static Binaries, String> {
    static FOUND: OnceLock<Result<Binaries, String>> = OnceLock::new();
    FOUND
        .get_or_init(find_binaries)
        .as_ref()
        .map_err(Clone::clone)
}

fn find_binaries() -> Result<Binaries, String> {
    let has_tools = |dir: &Path| {
        ["initdb", "pg_ctl", "psql"]
            .iter()
            .all(|p| dir.join(p).is_file())
    };
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
        .filter(|dir| has_tools(dir));
    let bindir = match from_pg_config {
        Some(dir) => dir,
        None => {
            // The newest version installed the Debian way.
            let mut candidates: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|entry| {
                    let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
                    Some((version, entry.path().join("bin")))
                })
                .filter(|(_, dir)| has_tools(dir))
                .collect();
            candidates.sort();
            candidates.pop().map(|(_, dir)| dir).ok_or_else(|| {
                "PostgreSQL server binaries (initdb, pg_ctl, psql) not found: \
                 no `pg_config --bindir`, nothing in /usr/lib/postgresql/*/bin"
                    .to_owned()
            })?
        }
    };
    let as_postgres = effective_uid() == Some(0);
    if as_postgres {
        let user_exists = Command::new("id")
            .args(["-u", PG_USER])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !user_exists {
            return Err(format!(
                "running as root, PostgreSQL needs the `{PG_USER}` OS user, which does not exist"
            ));
        }
        let runuser = Command::new("runuser")
            .args(["-u", PG_USER, "--", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !runuser.is_ok_and(|status| status.success()) {
            return Err(format!(
                "running as root, PostgreSQL must run as `{PG_USER}`, but \
                 `runuser -u {PG_USER} -- true` does not work"
            ));
        }
    }
    Ok(Binaries {
        bindir,
        as_postgres,
    })
}

/// The effective uid of this process, from `/proc/self/status` (no libc dependency).
fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Drops the libpq variables that could redirect or alter `psql` and `pg_ctl`.
fn clean_env(command: &mut Command) {
    for var in [
        "PGHOST",
        "PGHOSTADDR",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGPASSWORD",
        "PGPASSFILE",
        "PGSERVICE",
        "PGSERVICEFILE",
        "PGOPTIONS",
        "PGSSLMODE",
        "PGDATA",
        "PGTZ",
        "PGCLIENTENCODING",
        "PSQLRC",
    ] {
        command.env_remove(var);
    }
}

/// A temporary directory under `/tmp` (every ancestor traversable by the `postgres` user),
/// owned by that user when the tests run as root.
fn make_dir() -> Result<tempfile::TempDir, String> {
    let dir = tempfile::Builder::new()
        .prefix("querycache-pg-")
        .tempdir_in("/tmp")
        .map_err(|err| format!("temporary directory: {err}"))?;
    let bin = binaries()?;
    if bin.as_postgres {
        let output = Command::new("chown")
            .arg(format!("{PG_USER}:"))
            .arg(dir.path())
            .output()
            .map_err(|err| format!("running chown: {err}"))?;
        if !output.status.success() {
            return Err(format!(
                "chown {PG_USER}: {} failed: {}",
                dir.path().display(),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    Ok(dir)
}

/// `initdb` into `data` (C.UTF-8 locale, or C where it does not exist).
fn initdb(bin: &Binaries, dir: &Path, data: &Path) -> Result<(), String> {
    let mut last = String::new();
    for locale in ["C.UTF-8", "C"] {
        let output = bin
            .server_command("initdb", dir)
            .arg("-D")
            .arg(data)
            .args([
                "-A",
                "trust",
                "-U",
                PG_USER,
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ])
            .arg(format!("--locale={locale}"))
            .output()
            .map_err(|err| format!("running initdb: {err}"))?;
        if output.status.success() {
            return Ok(());
        }
        last = format!(
            "initdb -D {} failed ({}):\n{}{}",
            data.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // initdb removes what it created on failure; try the next locale only for a locale
        // problem.
        if !last.contains("locale") {
            break;
        }
        let _ = fs::remove_dir_all(data);
    }
    Err(last)
}

/// Writes `querycache.conf`: the base settings, the port and socket directory, then `extra`.
fn write_settings(
    data: &Path,
    dir: &Path,
    port: u16,
    extra: &[(&str, &str)],
) -> Result<(), String> {
    let port = port.to_string();
    let socket_dir = dir.to_string_lossy();
    let mut text = String::from("# Written by the querycache test harness (pg_server.rs).\n");
    let base = BASE_SETTINGS.iter().copied().chain([
        ("port", port.as_str()),
        ("unix_socket_directories", &socket_dir),
    ]);
    for (name, value) in base.chain(extra.iter().copied()) {
        text.push_str(&format!("{name} = '{}'\n", value.replace('\'', "''")));
    }
    let path = data.join(CONF_FILE);
    fs::write(&path, text).map_err(|err| format!("{}: {err}", path.display()))
}

/// `pg_ctl <args> <data>`, collecting its output.
fn pg_ctl(bin: &Binaries, dir: &Path, args: &[&str], data: &Path) -> io::Result<Output> {
    bin.server_command("pg_ctl", dir)
        .args(args)
        .arg(data)
        .output()
}

/// `pg_ctl -w start`, then polls `psql` until the server on `port` answers with our data
/// directory. A failure to bind the port is [`StartError::PortInUse`].
fn start_server(
    bin: &Binaries,
    dir: &Path,
    data: &Path,
    log: &Path,
    port: u16,
) -> Result<(), StartError> {
    assert_ne!(port, SHARED_PG_PORT, "the shared PostgreSQL is off limits");
    let log_start = fs::metadata(log).map_or(0, |meta| meta.len());
    let timeout = PG_CTL_TIMEOUT_SECS.to_string();
    let output = bin
        .server_command("pg_ctl", dir)
        .args(["start", "-w", "-t", &timeout, "-l"])
        .arg(log)
        .arg("-D")
        .arg(data)
        .output()
        .map_err(|err| StartError::Failed(format!("running pg_ctl start: {err}")))?;
    let this_run = || {
        let bytes = fs::read(log).unwrap_or_default();
        let start = usize::try_from(log_start).unwrap_or(usize::MAX);
        String::from_utf8_lossy(bytes.get(start..).unwrap_or_default()).into_owned()
    };
    if !output.status.success() {
        if this_run().contains("Address already in use") {
            return Err(StartError::PortInUse);
        }
        return Err(StartError::Failed(format!(
            "pg_ctl start on port {port} failed ({}): {}{}log tail:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            log_tail(log)
        )));
    }
    // pg_ctl says the server accepts connections; make sure it is ours on `port`.
    let deadline = Instant::now() + READY_DEADLINE;
    let expected = data.to_string_lossy();
    loop {
        let answer = run_psql(
            bin,
            port,
            "postgres",
            "SHOW data_directory",
            Duration::from_secs(2),
        );
        match &answer {
            Ok(found) if *found == expected => return Ok(()),
            Ok(other) => {
                return Err(StartError::Failed(format!(
                    "port {port} is answered by another server (data directory {other}); \
                     log tail:\n{}",
                    log_tail(log)
                )));
            }
            Err(_) if Instant::now() < deadline => thread::sleep(POLL_INTERVAL),
            Err(err) => {
                return Err(StartError::Failed(format!(
                    "no psql answer on port {port} within {READY_DEADLINE:?} ({err}); \
                     log tail:\n{}",
                    log_tail(log)
                )));
            }
        }
    }
}

/// `psql -X -q -v ON_ERROR_STOP=1 -At -h 127.0.0.1 -p <port> -U postgres -d <db>` with `sql`
/// on stdin, run as this process; stdout trimmed, or stderr and the exit status.
fn run_psql(
    bin: &Binaries,
    port: u16,
    db: &str,
    sql: &str,
    connect_timeout: Duration,
) -> Result<String, String> {
    assert_ne!(port, SHARED_PG_PORT, "the shared PostgreSQL is off limits");
    let mut command = Command::new(bin.bindir.join("psql"));
    clean_env(&mut command);
    let mut child = command
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-h", HOST, "-p"])
        .arg(port.to_string())
        .args(["-U", PG_USER, "-d", db, "-f", "-"])
        .env(
            "PGCONNECT_TIMEOUT",
            connect_timeout.as_secs().max(1).to_string(),
        )
        .env("PGAPPNAME", "querycache-test-psql")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("spawning psql: {err}"))?;
    // Written from another thread, so that a large script cannot deadlock against a large
    // output.
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let script = sql.to_owned();
    let writer = thread::spawn(move || {
        // psql may exit (connection refused) before reading: a broken pipe is no error here.
        let _ = stdin.write_all(script.as_bytes());
    });
    let output = child
        .wait_with_output()
        .map_err(|err| format!("waiting for psql: {err}"))?;
    let _ = writer.join();
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(format!(
            "psql exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// How many private PostgreSQL servers are alive (or starting) in this process.
static CAP: Cap = Cap::new(MAX_SERVERS);
