//! Tests of the private MariaDB fixture itself (`support::mariadb_server`): the tests that
//! restart, kill, pause a MariaDB or read its binary log lean on it doing exactly what it
//! documents.
//!
//! Each test returns early (passes) when the MariaDB binaries are not installed, unless
//! `QUERYCACHE_REQUIRE_SERVICES=1`, which makes the fixture panic instead.

use std::io::{ErrorKind, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::mariadb_server::{MAX_SERVERS, MariadbServer};

/// Whether something accepts TCP connections on the loopback `port`.
fn accepts_connections(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// The state letter of `/proc/<pid>/stat` (`S`, `R`, `T` for stopped, ...).
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// Polls `check` every few milliseconds until it holds; panics with `what` after `limit`.
fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn lifecycle_binlog_restart_kill_purge_and_cleanup() {
    let started = Instant::now();
    let Some(server) = MariadbServer::start() else {
        return;
    };
    eprintln!("mariadb_server: start took {:?}", started.elapsed());
    let port = server.port();
    assert_ne!(port, 3306, "the shared MariaDB is off limits");
    assert_eq!(
        server.url("app"),
        format!("mysql://root@127.0.0.1:{port}/app")
    );
    assert!(server.is_running());
    assert!(
        server
            .dir()
            .to_string_lossy()
            .starts_with("/tmp/querycache-mariadb-"),
        "{}",
        server.dir().display()
    );
    let variables = server.sql(
        None,
        "SELECT @@port, @@log_bin, @@binlog_format, @@server_id, @@character_set_server, \
         @@innodb_flush_log_at_trx_commit, @@sync_binlog, @@bind_address",
    );
    assert_eq!(
        variables,
        format!("{port}\t1\tROW\t1\tutf8mb4\t2\t0\t127.0.0.1")
    );
    assert_eq!(
        server.sql(None, "SELECT @@datadir"),
        format!("{}/", server.data_dir().display())
    );
    assert_eq!(
        server.sql(None, "SELECT @@socket"),
        server.dir().join("mysqld.sock").to_string_lossy()
    );
    // A tmpdir of its own: a starting mariadbd deletes the `#sql*` files in its tmpdir.
    assert_eq!(
        server.sql(None, "SELECT @@tmpdir"),
        server.dir().join("tmp").to_string_lossy()
    );
    assert_eq!(server.sql(None, "SELECT current_user()"), "root@127.0.0.1");

    let db = server.create_database();
    assert!(db.starts_with("qc_") && db.len() == 19, "{db}");
    // A script of several statements; only the SELECT prints.
    let out = server.sql(
        Some(&db),
        "CREATE TABLE songs (id int PRIMARY KEY, title varchar(20)) ENGINE=InnoDB;\n\
         INSERT INTO songs VALUES (1, 'a'), (2, 'b');\n\
         SELECT id, title FROM songs ORDER BY id;",
    );
    assert_eq!(out, "1\ta\n2\tb");

    // The URL works for a driver (SQLx through SeaORM): root, no password, over TCP.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let titles = runtime.block_on(async {
        use sea_orm::ConnectionTrait;
        let conn = sea_orm::Database::connect(server.url(&db))
            .await
            .expect("connect to the url");
        let row = conn
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::MySql,
                "SELECT CAST(GROUP_CONCAT(title ORDER BY id) AS CHAR) AS titles FROM songs",
            ))
            .await
            .expect("query")
            .expect("a row");
        let titles = row.try_get::<String>("", "titles").expect("titles");
        conn.close().await.expect("close");
        titles
    });
    assert_eq!(titles, "a,b");

    let err = server
        .try_sql(Some(&db), "SELECT * FROM missing_table")
        .unwrap_err();
    assert!(err.contains("missing_table"), "{err}");
    // The script stops at its first error: the INSERT does not run.
    assert!(
        server
            .try_sql(
                Some(&db),
                "SELECT nope;\nINSERT INTO songs VALUES (3, 'c');"
            )
            .is_err()
    );
    assert_eq!(server.sql(Some(&db), "SELECT count(*) FROM songs"), "2");

    // A write moves the binary log on, in a file in the temporary directory.
    let (file, before) = server.binlog_position();
    assert!(file.starts_with("binlog."), "{file}");
    assert!(server.dir().join(&file).is_file(), "{file} not in the dir");
    server.sql(Some(&db), "INSERT INTO songs VALUES (3, 'c')");
    let (same_file, after) = server.binlog_position();
    assert_eq!(same_file, file);
    assert!(after > before, "binlog position {before} -> {after}");
    // A read does not.
    server.sql(Some(&db), "SELECT * FROM songs");
    assert_eq!(server.binlog_position(), (file.clone(), after));

    let restarted = Instant::now();
    server.restart();
    eprintln!("mariadb_server: restart took {:?}", restarted.elapsed());
    assert!(server.is_running());
    assert_eq!(server.port(), port);
    assert_eq!(server.sql(Some(&db), "SELECT count(*) FROM songs"), "3");
    let (after_restart, _) = server.binlog_position();
    assert_ne!(after_restart, file, "a restart starts a new binary log");

    // Committed just before a SIGKILL: kept (the logs are written to the OS at commit).
    server.sql(Some(&db), "INSERT INTO songs VALUES (4, 'd')");
    let pid = server.pid().expect("running");
    server.kill();
    assert!(!server.is_running());
    assert!(process_state(pid).is_none(), "pid {pid} still there");
    assert!(server.try_sql(Some(&db), "SELECT 1").is_err());
    assert!(!accepts_connections(port));
    let again = Instant::now();
    server.start_again();
    eprintln!(
        "mariadb_server: start_again after kill (crash recovery) took {:?}",
        again.elapsed()
    );
    assert_eq!(server.port(), port);
    assert_eq!(server.sql(Some(&db), "SELECT count(*) FROM songs"), "4");

    server.stop();
    assert!(!server.is_running());
    assert!(!accepts_connections(port));
    server.start_again();
    assert_eq!(server.sql(Some(&db), "SELECT max(id) FROM songs"), "4");

    // Purging, right after a write (its log may not be purgeable yet): only the new file is
    // left, in SHOW BINARY LOGS and on disk.
    server.sql(Some(&db), "INSERT INTO songs VALUES (5, 'e')");
    let logs_before = server.sql(None, "SHOW BINARY LOGS").lines().count();
    assert!(
        logs_before > 1,
        "several logs after restarts: {logs_before}"
    );
    let purged = Instant::now();
    let kept = server.purge_binary_logs();
    eprintln!("mariadb_server: purge took {:?}", purged.elapsed());
    let logs = server.sql(None, "SHOW BINARY LOGS");
    assert_eq!(logs.lines().count(), 1, "{logs}");
    assert!(logs.starts_with(&format!("{kept}\t")), "{logs}");
    assert_eq!(server.binlog_position().0, kept);
    assert!(!server.dir().join(&file).exists(), "{file} not purged");
    assert!(server.dir().join(&kept).is_file());

    let dir = server.dir().to_path_buf();
    let pid = server.pid().expect("running");
    let dropped = Instant::now();
    drop(server);
    eprintln!("mariadb_server: drop took {:?}", dropped.elapsed());
    assert!(!dir.exists(), "{} is still there", dir.display());
    assert!(!accepts_connections(port), "port {port} still answers");
    assert!(process_state(pid).is_none(), "pid {pid} still there");
}

#[test]
fn start_with_overrides_an_option() {
    let Some(server) =
        MariadbServer::start_with(&["--binlog-format=MIXED", "--max-connections=42"])
    else {
        return;
    };
    assert_eq!(
        server.sql(None, "SELECT @@binlog_format, @@max_connections, @@log_bin"),
        "MIXED\t42\t1"
    );
    // After a restart, too: the same command line.
    server.restart();
    assert_eq!(server.sql(None, "SELECT @@binlog_format"), "MIXED");
}

#[test]
fn pause_hangs_the_server_until_resume() {
    let Some(server) = MariadbServer::start() else {
        return;
    };
    let pid = server.pid().expect("running");
    server.pause();
    assert!(server.is_running(), "a paused server is running");
    assert_eq!(process_state(pid), Some('T'));
    // The kernel accepts the connection, but no handshake comes while it is paused.
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, server.port()));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut header = [0u8; 5];
    let err = stream.read_exact(&mut header).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );

    server.resume();
    assert_ne!(process_state(pid), Some('T'));
    // The same connection now gets the greeting: a packet header, then protocol version 10.
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .read_exact(&mut header)
        .expect("greeting after resume");
    assert_eq!(header[4], 10, "protocol version in {header:?}");
    assert_eq!(server.sql(None, "SELECT 1"), "1");

    // A paused server still stops cleanly.
    server.pause();
    server.stop();
    assert!(!server.is_running());
    server.start_again();
    assert_eq!(server.sql(None, "SELECT 1"), "1");
}

#[test]
fn at_most_two_servers_are_alive_at_once() {
    static ALIVE: AtomicUsize = AtomicUsize::new(0);
    static MOST: AtomicUsize = AtomicUsize::new(0);
    let ports: Vec<Option<u16>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| {
                    let server = MariadbServer::start()?;
                    let now = ALIVE.fetch_add(1, Ordering::SeqCst) + 1;
                    MOST.fetch_max(now, Ordering::SeqCst);
                    assert_eq!(server.sql(None, "SELECT 1"), "1");
                    let port = server.port();
                    ALIVE.fetch_sub(1, Ordering::SeqCst);
                    drop(server);
                    Some(port)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ports: Vec<u16> = ports.into_iter().flatten().collect();
    if ports.is_empty() {
        return;
    }
    let mut distinct = ports.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        ports.len(),
        "ports handed out twice: {ports:?}"
    );
    assert!(MOST.load(Ordering::SeqCst) <= MAX_SERVERS);
}

#[test]
fn drop_stops_the_server_and_removes_its_directory_even_when_the_test_panics() {
    let seen = std::sync::Mutex::new(None);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let Some(server) = MariadbServer::start() else {
            return;
        };
        *seen.lock().unwrap() = Some((
            server.port(),
            server.dir().to_path_buf(),
            server.pid().expect("running"),
        ));
        // Paused, even: Drop still stops it.
        server.pause();
        panic!("the test fails while its server runs");
    }));
    let Some((port, dir, pid)) = seen.into_inner().unwrap() else {
        return;
    };
    assert!(result.is_err());
    assert!(!dir.exists(), "{} is still there", dir.display());
    assert!(!accepts_connections(port), "port {port} still answers");
    assert!(process_state(pid).is_none(), "pid {pid} still there");
}

#[test]
fn start_again_waits_for_its_port_to_be_free_again() {
    let Some(server) = MariadbServer::start() else {
        return;
    };
    server.stop();
    // Another program holds the port until start_again has failed on it at least once (its
    // "Address already in use" shows in the error log).
    let squatter = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, server.port()))
        .expect("the stopped server's port is free");
    let log = server.dir().join("error.log");
    let bind_failures = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("Address already in use")
            .count()
    };
    assert_eq!(bind_failures(), 0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            wait_until(Duration::from_secs(10), "a failed bind", || {
                bind_failures() > 0
            });
            drop(squatter);
        });
        server.start_again();
    });
    assert!(bind_failures() > 0);
    assert_eq!(server.sql(None, "SELECT 1"), "1");
}

#[test]
fn a_server_that_does_not_start_panics_with_its_log() {
    let result = std::panic::catch_unwind(|| {
        MariadbServer::start_with(&["--no-such-option-for-querycache"])
    });
    let message = match result {
        // Not installed: nothing to test.
        Ok(None) => return,
        Ok(Some(server)) => panic!("started with an unknown option: {server:?}"),
        Err(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default(),
    };
    assert!(
        message.contains("private MariaDB server did not start")
            && message.contains("unknown option '--no-such-option-for-querycache'"),
        "{message}"
    );
}
