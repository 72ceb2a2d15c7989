//! Private MariaDB servers for tests: one per [`MariadbServer`], each initialised with
//! `mariadb-install-db` in its own temporary directory, listening on its own free loopback
//! port with the binary log on, and stopped (its directory removed) on Drop — also when the
//! test panics.
//!
//! The shared server ([`super::throwaway`], port 3306) is enough for tests that only need a
//! database of their own. A private server is for tests that need what a shared server must
//! not be used for: restarting, killing or pausing it, reading and purging its binary log
//! (change-data-capture), or other server options ([`MariadbServer::start_with`]). It is built
//! from the machine's binaries, in the style of the private PostgreSQL servers
//! ([`super::pg_server`]):
//!
//! - **Binaries.** `mariadb-install-db`, `mariadbd` and the `mariadb` client are looked up in
//!   `PATH`, then in `/usr/sbin` and `/usr/bin` (Debian puts `mariadbd` in `/usr/sbin`, which
//!   is not always in a test's `PATH`).
//! - **Root.** mariadbd refuses to run as root unless told to: when the tests run as root, both
//!   `mariadb-install-db` and `mariadbd` get `--user=root`, so the server stays root and owns
//!   its files, and the temporary directory needs no hand-over (the alternative, the `mysql` OS
//!   user and a `chown`, buys nothing for a throwaway server under `/tmp`). As any other user,
//!   no `--user` is given and the server runs as that user.
//! - **Set-up.** `mariadb-install-db --no-defaults --auth-root-authentication-method=normal
//!   --skip-test-db --skip-name-resolve`, once per server: `normal` creates
//!   `root@localhost`, `root@127.0.0.1` and `root@::1` without a password (the default,
//!   `socket`, gives root an invalid password and lets only the Unix user `root` in, over the
//!   socket), so the `mariadb` client and the drivers connect as `root` over TCP from
//!   127.0.0.1 with an empty password. The server then runs `mariadbd --no-defaults` (no
//!   `/etc/mysql` option file is read, by the client either) with its data directory `data/`,
//!   its port, `--bind-address=127.0.0.1`, its Unix socket, pid file, error log
//!   (`error.log`, which also gets mariadbd's stdout and stderr), binary log
//!   (`binlog.000001`, ..., and `binlog.index`) and `--tmpdir` (`tmp/`) all in the temporary
//!   directory — a private tmpdir for `mariadb-install-db`'s bootstrap too, since a starting
//!   mariadbd deletes every `#sql*` file in its tmpdir: servers sharing `/tmp` (the shared
//!   server among them) would delete each other's temporary tables —
//!   `--binlog-format=ROW`, `--server-id=1`, `--character-set-server=utf8mb4`,
//!   `--skip-name-resolve` (`root@127.0.0.1` matches without a reverse lookup), and small,
//!   fast, not durable InnoDB settings (a 16 MB buffer pool and redo log, no doublewrite
//!   buffer, `--sync-binlog=0`, `--innodb-flush-log-at-trx-commit=2`: no fsync at commit, but
//!   the redo log and binary log are written to the OS at every commit, so a transaction
//!   committed before a [`kill`](MariadbServer::kill) survives it; only a machine crash
//!   could lose it). [`MariadbServer::start_with`] options come last and override these.
//!   Every start, restart and [`start_again`](MariadbServer::start_again) uses the same
//!   command line.
//! - **Ports.** A port comes from [`super::ports::reserve_port`] (shared with the PostgreSQL
//!   harness): random, below the kernel's ephemeral range, free when probed, never handed out
//!   twice in the process (a stopped server keeps its port for
//!   [`start_again`](MariadbServer::start_again)), never 3306. Another process can still take
//!   the port between the probe and the server's `bind`: mariadbd then exits with "Address
//!   already in use" and the start is retried on a new port.
//! - **Readiness.** No fixed sleeps: mariadbd is spawned, then
//!   `mariadb --no-defaults --protocol=TCP -uroot -h127.0.0.1 -P<port> -N -B` is run with
//!   `SELECT @@datadir` every 5 ms (for at most 30 s) until it answers with *our* data
//!   directory; a mariadbd that exits in the meantime fails the start at once (with the tail
//!   of its log), and another server answering there means the port was taken (a new one is
//!   tried).
//! - **A cap.** At most [`MAX_SERVERS`] private MariaDB servers are alive at once in the
//!   process (the suite's tests run in parallel on a small machine): [`MariadbServer::start`]
//!   waits for a slot, which the server gives back on Drop. A test needing two servers at
//!   once should start both through one helper in one go rather than hold one while a
//!   parallel test holds the other, or it may wait for a slot forever. (The PostgreSQL
//!   harness has a cap of its own.)
//! - **Skipping.** [`MariadbServer::start`] returns `None` — after saying why on stderr — when
//!   the MariaDB binaries are not there, so tests skip on machines without MariaDB. With
//!   `QUERYCACHE_REQUIRE_SERVICES=1` (CI) it panics instead. A server that can be installed
//!   but does not start is always a panic, with the tail of its error log.
//!
//! The harness is blocking (`std::process`): a start takes a few seconds, most of it
//! `mariadb-install-db` (mariadbd itself answers within a few hundred milliseconds), and
//! belongs in `tokio::task::spawn_blocking` in an async test, as do `restart`, `start_again`
//! and `purge_binary_logs`; the `sql` helpers take tens of milliseconds. They are test
//! fixtures: they panic rather than return errors (except [`MariadbServer::try_sql`]).
//!
//! A process killed before its fixtures drop (SIGKILL, an abort) leaves its servers running
//! and their `/tmp/querycache-mariadb-*` directories behind; stop one with
//! `kill $(cat /tmp/querycache-mariadb-XXXX/mariadbd.pid)`, then remove its directory.
//!
//! Nothing here ever connects to the shared server on port 3306: every address is a port this
//! module handed to a server it started.

// Fixtures: not every test uses every helper.
#![allow(dead_code)]

use super::ports::{Cap, Slot, lock, log_tail};
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The only address servers listen on and clients use.
const HOST: &str = "127.0.0.1";
/// The database user the harness and the URLs use (no password).
const DB_USER: &str = "root";
/// How long a started server has to answer `SELECT @@datadir`.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// How long [`MariadbServer::stop`] waits for a clean shutdown before giving up.
const STOP_DEADLINE: Duration = Duration::from_secs(30);
/// How long Drop waits for a clean shutdown before SIGKILL.
const DROP_STOP_DEADLINE: Duration = Duration::from_secs(10);
/// How long `restart` and `start_again` keep trying while the port is still taken.
const RESTART_DEADLINE: Duration = Duration::from_secs(5);
/// How long `purge_binary_logs` waits for the old logs to be purgeable.
const PURGE_DEADLINE: Duration = Duration::from_secs(10);
/// Pause between two probes (readiness, exit, purge).
const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// The `mariadb` client's `--connect-timeout` for [`MariadbServer::sql`].
const CLIENT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The `mariadb` client's `--connect-timeout` for readiness probes.
const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Never used, whatever the probe says: the shared server.
const SHARED_MARIADB_PORT: u16 = 3306;
/// At most this many private MariaDB servers are alive at once in the process.
pub const MAX_SERVERS: usize = 2;
/// Where the binaries are looked for after `PATH`.
const SEARCH_DIRS: &[&str] = &["/usr/sbin", "/usr/bin"];
/// InnoDB options given to both `mariadb-install-db` and `mariadbd` (the same redo log size,
/// so the first start does not resize it).
const INNODB_OPTIONS: &[&str] = &[
    "--innodb-buffer-pool-size=16M",
    "--innodb-log-file-size=16M",
    "--innodb-flush-log-at-trx-commit=2",
    "--skip-innodb-doublewrite",
];
/// The options of every server after the per-server paths and port, before
/// [`MariadbServer::start_with`]'s.
const BASE_OPTIONS: &[&str] = &[
    "--binlog-format=ROW",
    "--server-id=1",
    "--sync-binlog=0",
    "--character-set-server=utf8mb4",
    "--skip-name-resolve",
];

/// A private MariaDB server on a free loopback port, binary log on, stopped on Drop (even when
/// the test panics), when its temporary directory (data directory, binary logs, socket, error
/// log) is removed.
///
/// Its superuser is `root`, without a password, over TCP from 127.0.0.1; it starts with the
/// system databases `mariadb-install-db` creates (`mysql`, `sys`, `information_schema`,
/// `performance_schema`) and no `test` database.
pub struct MariadbServer {
    port: u16,
    /// `<dir>/data`.
    data: PathBuf,
    /// `<dir>/error.log`: the server's error log (and its stdout and stderr) across starts.
    log: PathBuf,
    /// mariadbd's command line, the same for every start.
    args: Vec<OsString>,
    bin: &'static Binaries,
    /// The running mariadbd, `None` once stopped or killed.
    child: Mutex<Option<Child>>,
    /// Whether it is stopped with SIGSTOP.
    paused: AtomicBool,
    /// Removed on Drop, after the server is stopped.
    dir: tempfile::TempDir,
    /// Given back on Drop, after the server is stopped.
    _slot: Slot,
}

impl MariadbServer {
    /// Installs and starts one with the harness's options (see the module docs), waiting for a
    /// free [slot](MAX_SERVERS) first; `None` (after printing why) when MariaDB is not
    /// installed — unless `QUERYCACHE_REQUIRE_SERVICES=1`, then it panics with the reason.
    ///
    /// # Panics
    ///
    /// When `mariadb-install-db` fails, or the server does not come up (the message carries
    /// its error log).
    pub fn start() -> Option<MariadbServer> {
        Self::start_with(&[])
    }

    /// Like [`start`](Self::start), with extra `mariadbd` options appended to the command line
    /// after the harness's own, so they override them: e.g. `&["--binlog-format=MIXED"]`.
    pub fn start_with(args: &[&str]) -> Option<MariadbServer> {
        let bin = match binaries() {
            Ok(bin) => bin,
            Err(reason) => return super::services::unavailable(reason),
        };
        let slot = CAP.acquire();
        match Self::launch(bin, args, slot) {
            Ok(server) => Some(server),
            Err(reason) => panic!("private MariaDB server did not start: {reason}"),
        }
    }

    /// The port it listens on (on 127.0.0.1). Never 3306.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mysql://root@127.0.0.1:PORT/<db>`.
    pub fn url(&self, db: &str) -> String {
        format!("mysql://{DB_USER}@{HOST}:{}/{db}", self.port)
    }

    /// Its temporary directory (data directory `data/`, `error.log`, the binary logs
    /// `binlog.*`, the Unix socket `mysqld.sock`, `mariadbd.pid`, the server's tmpdir `tmp/`),
    /// removed on Drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The process id of the running mariadbd (`None` once stopped or killed).
    pub fn pid(&self) -> Option<u32> {
        self.lock_child().as_ref().map(Child::id)
    }

    /// The last 30 lines of its error log, for assertion messages.
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
        self.sql(None, &format!("CREATE DATABASE `{name}`"));
        name
    }

    /// Runs `sql` (one statement or several, `;`-separated, each committed on its own unless
    /// the script says otherwise) on the database `db` (`None`: no default database) in a
    /// separate `mariadb` client (`--no-defaults -N -B`, script on stdin), and returns its
    /// output trimmed: rows one a line, columns separated by tabs, no headers, `NULL` for
    /// NULL, and tabs, newlines and backslashes within values escaped (`\t`, `\n`, `\\`).
    ///
    /// # Panics
    ///
    /// When the client fails (the message carries its stderr).
    pub fn sql(&self, db: Option<&str>, sql: &str) -> String {
        self.try_sql(db, sql).unwrap_or_else(|err| {
            panic!(
                "mariadb on port {} (database {db:?}) failed: {err}\nSQL: {sql}",
                self.port
            )
        })
    }

    /// Like [`sql`](Self::sql), returning the client's stderr (and exit status) on failure
    /// instead of panicking; the script stops at its first error.
    pub fn try_sql(&self, db: Option<&str>, sql: &str) -> Result<String, String> {
        run_client(self.bin, self.port, db, sql, CLIENT_CONNECT_TIMEOUT)
    }

    /// The current binary log file and the position of its end, from `SHOW MASTER STATUS`:
    /// e.g. `("binlog.000001", 328)`.
    ///
    /// # Panics
    ///
    /// When the query fails, or the binary log is off (`--skip-log-bin`).
    pub fn binlog_position(&self) -> (String, u64) {
        let status = self.sql(None, "SHOW MASTER STATUS");
        let mut columns = status.lines().next().unwrap_or_default().split('\t');
        let (Some(file), Some(position)) = (columns.next(), columns.next()) else {
            panic!("SHOW MASTER STATUS on port {}: no binary log", self.port);
        };
        let position = position.parse().unwrap_or_else(|err| {
            panic!("SHOW MASTER STATUS: unexpected position {position:?}: {err}")
        });
        (file.to_owned(), position)
    }

    /// Starts a new binary log file (`FLUSH BINARY LOGS`) and purges every older one
    /// (`PURGE BINARY LOGS TO '<new file>'`), as a server's log expiry would; returns the name
    /// of the new file, now the oldest left. A reader that still wants an older position
    /// finds it gone.
    ///
    /// MariaDB keeps a log until the storage engines have made its transactions durable (its
    /// "binlog checkpoint"; with the harness's `--innodb-flush-log-at-trx-commit=2`, within
    /// about a second, when InnoDB's background flush runs), and `PURGE` silently keeps such a
    /// log: the purge is repeated until only the new file (and any newer) is left, for at
    /// most 10 s.
    ///
    /// # Panics
    ///
    /// When a statement fails, or old logs are still there after 10 s.
    pub fn purge_binary_logs(&self) -> String {
        self.sql(None, "FLUSH BINARY LOGS");
        let (current, _) = self.binlog_position();
        let deadline = Instant::now() + PURGE_DEADLINE;
        loop {
            let logs = self.sql(
                None,
                &format!("PURGE BINARY LOGS TO '{current}';\nSHOW BINARY LOGS"),
            );
            let oldest = logs.lines().next().and_then(|line| line.split('\t').next());
            if oldest == Some(current.as_str()) {
                return current;
            }
            assert!(
                Instant::now() < deadline,
                "binary logs before {current} still there after {PURGE_DEADLINE:?}:\n{logs}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Restarts it (a clean [`stop`](Self::stop), then a start on the same port with the same
    /// data and options) and waits until it answers again. Sessions are ended; committed data
    /// stays; the binary log continues in a new file.
    ///
    /// # Panics
    ///
    /// When it was not running, or does not come back (the message carries its log).
    pub fn restart(&self) {
        self.stop();
        self.start_again();
    }

    /// Stops it cleanly (SIGTERM, as `systemctl stop` does: sessions are ended, InnoDB and the
    /// binary log are closed cleanly; a [paused](Self::pause) server is resumed for it) and
    /// waits until the process has exited; [`start_again`](Self::start_again) brings it back.
    ///
    /// # Panics
    ///
    /// When it is not running, or has not exited within 30 s (it is then killed).
    pub fn stop(&self) {
        let mut child = self
            .lock_child()
            .take()
            .unwrap_or_else(|| panic!("stop: the mariadbd on port {} is not running", self.port));
        if !self.terminate(&mut child, STOP_DEADLINE) {
            panic!(
                "mariadbd on port {} did not stop within {STOP_DEADLINE:?} of SIGTERM (killed); \
                 log tail:\n{}",
                self.port,
                self.log_tail()
            );
        }
    }

    /// Kills it (SIGKILL: no clean shutdown, so the next start runs crash recovery) and waits
    /// until the process is gone; [`start_again`](Self::start_again) brings it back.
    /// Transactions committed before it are kept (see the module docs).
    ///
    /// # Panics
    ///
    /// When it is not running.
    pub fn kill(&self) {
        let child = self
            .lock_child()
            .take()
            .unwrap_or_else(|| panic!("kill: the mariadbd on port {} is not running", self.port));
        self.kill_child(child);
    }

    /// Starts a [stopped](Self::stop) or [killed](Self::kill) server again, on the same port
    /// with the same data and options, and waits until it answers. While the port is still
    /// taken (by another program) it retries for up to 5 s.
    ///
    /// # Panics
    ///
    /// When it does not come back (the message carries its log), or it was already running.
    pub fn start_again(&self) {
        let mut child = self.lock_child();
        let still_running = child
            .as_mut()
            .is_some_and(|running| matches!(running.try_wait(), Ok(None)));
        assert!(
            !still_running,
            "start_again: the mariadbd on port {} is still running",
            self.port
        );
        // Stopped, killed, or exited by itself (and reaped): start a new one.
        *child = None;
        self.paused.store(false, Ordering::SeqCst);
        let deadline = Instant::now() + RESTART_DEADLINE;
        loop {
            match spawn_and_wait(
                self.bin,
                &self.args,
                self.dir.path(),
                &self.data,
                &self.log,
                self.port,
            ) {
                Ok(started) => {
                    *child = Some(started);
                    return;
                }
                Err(StartError::PortInUse) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(50));
                }
                Err(StartError::PortInUse) => panic!(
                    "MariaDB could not get its port {} back within {RESTART_DEADLINE:?}; \
                     log tail:\n{}",
                    self.port,
                    self.log_tail()
                ),
                Err(StartError::Failed(reason)) => {
                    panic!(
                        "MariaDB on port {} did not start again: {reason}",
                        self.port
                    )
                }
            }
        }
    }

    /// Stops it with SIGSTOP: connections stay open and new connects still succeed (the
    /// kernel accepts them), but nothing is answered, not even the handshake — a hung server.
    /// Returns once the process is stopped.
    ///
    /// # Panics
    ///
    /// When it is not running.
    pub fn pause(&self) {
        let pid = self.pid().expect("pause: the mariadbd is not running");
        signal(pid, "-STOP");
        self.paused.store(true, Ordering::SeqCst);
        wait_for_process_state(pid, true);
    }

    /// Lets a [`pause`](Self::pause)d server run again (SIGCONT); returns once it runs.
    ///
    /// # Panics
    ///
    /// When it is not running.
    pub fn resume(&self) {
        let pid = self.pid().expect("resume: the mariadbd is not running");
        signal(pid, "-CONT");
        self.paused.store(false, Ordering::SeqCst);
        wait_for_process_state(pid, false);
    }

    /// Whether the mariadbd process is alive (a paused server is running; a stopped or killed
    /// one, or one that exited by itself, is not).
    pub fn is_running(&self) -> bool {
        let mut child = self.lock_child();
        match child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(Ok(Some(_)) | Err(_)) => {
                // Exited (and now reaped): forget it, so that Drop has nothing left to stop.
                *child = None;
                false
            }
            None => false,
        }
    }

    /// Installs a data directory and starts a server on a fresh port, retrying on port races.
    fn launch(bin: &'static Binaries, extra: &[&str], slot: Slot) -> Result<MariadbServer, String> {
        let dir = tempfile::Builder::new()
            .prefix("querycache-mariadb-")
            .tempdir_in("/tmp")
            .map_err(|err| format!("temporary directory: {err}"))?;
        let data = dir.path().join("data");
        let log = dir.path().join("error.log");
        let tmp = dir.path().join("tmp");
        fs::create_dir(&tmp).map_err(|err| format!("{}: {err}", tmp.display()))?;
        install_db(bin, dir.path(), &data)?;
        let (port, args, child) = super::ports::start_on_a_free_port(&log, |port| {
            let args = server_args(bin, dir.path(), &data, &log, port, extra);
            match spawn_and_wait(bin, &args, dir.path(), &data, &log, port) {
                Ok(child) => Ok(Some((port, args, child))),
                // Someone took the port between our probe and the server's bind: next port.
                Err(StartError::PortInUse) => Ok(None),
                Err(StartError::Failed(reason)) => Err(reason),
            }
        })?;
        Ok(MariadbServer {
            port,
            data,
            log,
            args,
            bin,
            child: Mutex::new(Some(child)),
            paused: AtomicBool::new(false),
            dir,
            _slot: slot,
        })
    }

    fn lock_child(&self) -> MutexGuard<'_, Option<Child>> {
        lock(&self.child)
    }

    /// SIGTERM (and SIGCONT, should it be paused), then waits up to `deadline` for the exit;
    /// SIGKILL if it has not exited by then. Whether it exited of itself.
    fn terminate(&self, child: &mut Child, deadline: Duration) -> bool {
        signal_quietly(child.id(), "-TERM");
        if self.paused.swap(false, Ordering::SeqCst) {
            signal_quietly(child.id(), "-CONT");
        }
        if wait_for_exit(child, deadline) {
            return true;
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    fn kill_child(&self, mut child: Child) {
        // SIGKILL also ends a stopped process; SIGCONT as well, so that nothing is left
        // waiting on a stopped process's exit.
        let _ = child.kill();
        if self.paused.swap(false, Ordering::SeqCst) {
            signal_quietly(child.id(), "-CONT");
        }
        // Reap it: no zombies, and its files (ibdata1, aria_log_control) are unlocked
        // before a new mariadbd opens them.
        let _ = child.wait();
    }
}

impl Drop for MariadbServer {
    fn drop(&mut self) {
        let child = lock(&self.child).take();
        if let Some(mut child) = child {
            // A clean stop is quick (about a second); SIGKILL after 10 s.
            self.terminate(&mut child, DROP_STOP_DEADLINE);
        }
        // `dir` (the TempDir) is removed, and the slot given back, when the fields drop.
    }
}

impl std::fmt::Debug for MariadbServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MariadbServer")
            .field("port", &self.port)
            .field("pid", &self.pid())
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

/// Why a start did not work.
#[derive(Debug)]
enum StartError {
    /// The server could not bind its port (or another server answers there): try another.
    PortInUse,
    /// Anything else, with the details.
    Failed(String),
}

/// Where the MariaDB programs are, and whether the server must be told to run as root.
#[derive(Debug)]
struct Binaries {
    install_db: PathBuf,
    mariadbd: PathBuf,
    /// The `mariadb` client.
    client: PathBuf,
    /// The tests run as root: `--user=root` for `mariadb-install-db` and `mariadbd`.
    as_root: bool,
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
    let mut missing = Vec::new();
    let mut find = |name: &str| {
        let found = find_program(name);
        if found.is_none() {
            missing.push(name.to_owned());
        }
        found.unwrap_or_default()
    };
    let install_db = find("mariadb-install-db");
    let mariadbd = find("mariadbd");
    let client = find("mariadb");
    if !missing.is_empty() {
        return Err(format!(
            "MariaDB binaries not found (in PATH, /usr/sbin, /usr/bin): {}",
            missing.join(", ")
        ));
    }
    Ok(Binaries {
        install_db,
        mariadbd,
        client,
        as_root: effective_uid() == Some(0),
    })
}

/// `name` in a `PATH` directory, or else in [`SEARCH_DIRS`].
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SEARCH_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The effective uid of this process, from `/proc/self/status` (no libc dependency).
fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Drops the variables that could redirect or alter the `mariadb` client (and the server's
/// scripts).
fn clean_env(command: &mut Command) {
    for var in [
        "MYSQL_HOST",
        "MYSQL_TCP_PORT",
        "MYSQL_UNIX_PORT",
        "MYSQL_PWD",
        "MYSQL_HOME",
        "MYSQL_TEST_LOGIN_FILE",
        "MYSQL_HISTFILE",
        "MYSQL_PS1",
        "MARIADB_HOME",
    ] {
        command.env_remove(var);
    }
}

/// `mariadb-install-db` into `data`: system tables, `root` without a password. Its bootstrap
/// mariadbd gets the InnoDB options and the private tmpdir `<dir>/tmp`.
fn install_db(bin: &Binaries, dir: &Path, data: &Path) -> Result<(), String> {
    let mut command = Command::new(&bin.install_db);
    clean_env(&mut command);
    command
        .arg("--no-defaults")
        .arg(opt("--datadir=", data))
        .arg(opt("--tmpdir=", &dir.join("tmp")))
        .args([
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
        ]);
    if bin.as_root {
        command.arg("--user=root");
    }
    let output = command
        .args(INNODB_OPTIONS)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("running {}: {err}", bin.install_db.display()))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "mariadb-install-db --datadir={} failed ({}):\n{}{}",
        data.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// `--name=` followed by a path.
fn opt(name: &str, path: &Path) -> OsString {
    let mut arg = OsString::from(name);
    arg.push(path);
    arg
}

/// mariadbd's command line (without the program): the harness's options, then `extra`.
fn server_args(
    bin: &Binaries,
    dir: &Path,
    data: &Path,
    log: &Path,
    port: u16,
    extra: &[&str],
) -> Vec<OsString> {
    // --no-defaults must come first.
    let mut args: Vec<OsString> = vec!["--no-defaults".into()];
    if bin.as_root {
        args.push("--user=root".into());
    }
    args.extend([
        opt("--datadir=", data),
        format!("--port={port}").into(),
        format!("--bind-address={HOST}").into(),
        opt("--socket=", &dir.join("mysqld.sock")),
        opt("--pid-file=", &dir.join("mariadbd.pid")),
        opt("--log-error=", log),
        opt("--log-bin=", &dir.join("binlog")),
        opt("--tmpdir=", &dir.join("tmp")),
    ]);
    args.extend(
        INNODB_OPTIONS
            .iter()
            .chain(BASE_OPTIONS)
            .map(OsString::from),
    );
    args.extend(extra.iter().map(OsString::from));
    args
}

/// Spawns mariadbd with `args`, then polls the `mariadb` client until the server on `port`
/// answers with our data directory `data`. A failure to bind the port (or another server answering
/// there) is [`StartError::PortInUse`]; the process is then gone.
fn spawn_and_wait(
    bin: &Binaries,
    args: &[OsString],
    dir: &Path,
    data: &Path,
    log: &Path,
    port: u16,
) -> Result<Child, StartError> {
    assert_ne!(
        port, SHARED_MARIADB_PORT,
        "the shared MariaDB is off limits"
    );
    let log_start = fs::metadata(log).map_or(0, |meta| meta.len());
    let output = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|err| StartError::Failed(format!("{}: {err}", log.display())))?;
    let errors = output
        .try_clone()
        .map_err(|err| StartError::Failed(format!("{}: {err}", log.display())))?;
    let mut command = Command::new(&bin.mariadbd);
    clean_env(&mut command);
    let mut child = command
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(errors)
        .spawn()
        .map_err(|err| StartError::Failed(format!("spawning {}: {err}", bin.mariadbd.display())))?;
    let this_run = || {
        let bytes = fs::read(log).unwrap_or_default();
        let start = usize::try_from(log_start).unwrap_or(usize::MAX);
        String::from_utf8_lossy(bytes.get(start..).unwrap_or_default()).into_owned()
    };
    let give_up = |mut child: Child| {
        let _ = child.kill();
        let _ = child.wait();
    };
    // As given, and as the server may spell it (symbolic links resolved).
    let expected: Vec<String> = [Some(data.to_path_buf()), fs::canonicalize(data).ok()]
        .into_iter()
        .flatten()
        .map(|path| path.to_string_lossy().trim_end_matches('/').to_owned())
        .collect();
    let deadline = Instant::now() + READY_DEADLINE;
    loop {
        match child.try_wait() {
            Ok(None) => {}
            Ok(Some(status)) => {
                if this_run().contains("Address already in use") {
                    return Err(StartError::PortInUse);
                }
                return Err(StartError::Failed(format!(
                    "mariadbd on port {port} exited with {status}; log tail:\n{}",
                    log_tail(log)
                )));
            }
            Err(err) => {
                give_up(child);
                return Err(StartError::Failed(format!("waiting for mariadbd: {err}")));
            }
        }
        let answer = run_client(bin, port, None, "SELECT @@datadir", PROBE_CONNECT_TIMEOUT);
        match &answer {
            Ok(found)
                if expected
                    .iter()
                    .any(|dir| dir == found.trim_end_matches('/')) =>
            {
                return Ok(child);
            }
            // Our server cannot have bound the port: it is about to fail with "Address already
            // in use".
            Ok(_) => {
                give_up(child);
                return Err(StartError::PortInUse);
            }
            Err(_) if Instant::now() < deadline => thread::sleep(POLL_INTERVAL),
            Err(err) => {
                give_up(child);
                return Err(StartError::Failed(format!(
                    "no answer on port {port} within {READY_DEADLINE:?} ({err}); \
                     log tail:\n{}",
                    log_tail(log)
                )));
            }
        }
    }
}

/// `mariadb --no-defaults -uroot -h127.0.0.1 -P<port> -N -B [--database=<db>]` with `sql` on
/// stdin, over TCP; stdout trimmed, or stderr and the exit status.
fn run_client(
    bin: &Binaries,
    port: u16,
    db: Option<&str>,
    sql: &str,
    connect_timeout: Duration,
) -> Result<String, String> {
    assert_ne!(
        port, SHARED_MARIADB_PORT,
        "the shared MariaDB is off limits"
    );
    let mut command = Command::new(&bin.client);
    clean_env(&mut command);
    command
        .args(["--no-defaults", "--protocol=TCP", "--skip-ssl"])
        .arg(format!("--user={DB_USER}"))
        .arg(format!("--host={HOST}"))
        .arg(format!("--port={port}"))
        .arg(format!(
            "--connect-timeout={}",
            connect_timeout.as_secs().max(1)
        ))
        .args(["-N", "-B"]);
    if let Some(db) = db {
        command.arg(format!("--database={db}"));
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("spawning {}: {err}", bin.client.display()))?;
    // Written from another thread, so that a large script cannot deadlock against a large
    // output.
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let script = sql.to_owned();
    let writer = thread::spawn(move || {
        // The client may exit (connection refused) before reading: a broken pipe is no error.
        let _ = stdin.write_all(script.as_bytes());
    });
    let output = child
        .wait_with_output()
        .map_err(|err| format!("waiting for mariadb: {err}"))?;
    let _ = writer.join();
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(format!(
            "mariadb exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Polls `child` until it has exited (and is reaped), for at most `limit`. Whether it did.
fn wait_for_exit(child: &mut Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) if Instant::now() >= deadline => return false,
            Ok(None) => thread::sleep(POLL_INTERVAL),
        }
    }
}

/// `kill <flag> <pid>`, panicking on failure.
fn signal(pid: u32, flag: &str) {
    let status = Command::new("kill")
        .args([flag, &pid.to_string()])
        .status()
        .unwrap_or_else(|err| panic!("running `kill {flag} {pid}`: {err}"));
    assert!(status.success(), "`kill {flag} {pid}` failed: {status}");
}

/// `kill <flag> <pid>`, ignoring failure (for stop and Drop).
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

/// How many private MariaDB servers are alive (or starting) in this process.
static CAP: Cap = Cap::new(MAX_SERVERS);
