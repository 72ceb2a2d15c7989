//! Tests of the private PostgreSQL fixture itself (`support::pg_server`): the replication
//! tests lean on it starting, restarting, crashing and stopping servers exactly as documented.
//!
//! Each test returns early (passes) when the PostgreSQL binaries are not installed, unless
//! `QUERYCACHE_REQUIRE_SERVICES=1`, which makes the fixture panic instead.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::pg_server::{MAX_SERVERS, PgServer};

/// Whether something accepts TCP connections on the loopback `port`.
fn accepts_connections(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

#[test]
fn lifecycle_logical_wal_restart_terminate_and_cleanup() {
    let started = Instant::now();
    let Some(server) = PgServer::start() else {
        return;
    };
    eprintln!("pg_server: start took {:?}", started.elapsed());
    let port = server.port();
    assert_ne!(port, 5432, "the shared PostgreSQL is off limits");
    assert_eq!(
        server.url("app"),
        format!("postgres://postgres@127.0.0.1:{port}/app")
    );
    assert!(server.is_running());
    assert_eq!(server.psql("postgres", "SHOW wal_level"), "logical");
    assert_eq!(server.psql("postgres", "SHOW fsync"), "off");
    assert_eq!(server.psql("postgres", "SHOW max_replication_slots"), "20");
    assert_eq!(
        server.psql("postgres", "SHOW unix_socket_directories"),
        server.dir().to_string_lossy()
    );
    assert_eq!(server.psql("postgres", "SHOW server_encoding"), "UTF8");

    let db = server.create_database();
    assert!(db.starts_with("qc_") && db.len() == 19, "{db}");
    // A script of several statements; only the SELECT prints.
    let out = server.psql(
        &db,
        "CREATE TABLE songs (id int PRIMARY KEY, title text);\n\
         INSERT INTO songs VALUES (1, 'a'), (2, 'b');\n\
         SELECT id, title FROM songs ORDER BY id;",
    );
    assert_eq!(out, "1|a\n2|b");

    let err = server
        .try_psql(&db, "SELECT * FROM missing_table")
        .unwrap_err();
    assert!(err.contains("missing_table"), "{err}");
    // ON_ERROR_STOP: nothing after the error runs.
    assert!(
        server
            .try_psql(&db, "SELECT nope;\nINSERT INTO songs VALUES (3, 'c');")
            .is_err()
    );

    let restarted = Instant::now();
    server.restart();
    eprintln!("pg_server: restart took {:?}", restarted.elapsed());
    assert_eq!(server.port(), port);
    assert_eq!(server.psql(&db, "SELECT count(*) FROM songs"), "2");

    assert_eq!(server.terminate("backend_type = 'walsender'"), 0);

    let dir = server.dir().to_path_buf();
    assert!(dir.join("data").join("PG_VERSION").is_file());
    let dropped = Instant::now();
    drop(server);
    eprintln!("pg_server: drop took {:?}", dropped.elapsed());
    assert!(!dir.exists(), "{} is still there", dir.display());
    assert!(!accepts_connections(port), "port {port} still answers");
}

#[test]
fn start_with_overrides_a_setting() {
    let Some(server) = PgServer::start_with(&[("wal_level", "replica"), ("search_path", "a, b")])
    else {
        return;
    };
    assert_eq!(server.psql("postgres", "SHOW wal_level"), "replica");
    assert_eq!(server.psql("postgres", "SHOW search_path"), "a, b");
    let err = server
        .try_psql(
            "postgres",
            "SELECT pg_create_logical_replication_slot('s', 'pgoutput')",
        )
        .unwrap_err();
    assert!(err.contains("wal_level"), "{err}");
}

#[test]
fn crash_start_again_and_terminating_a_walsender() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let db = server.create_database();
    server.psql(
        &db,
        "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\nCHECKPOINT;\n\
         SELECT 1 FROM pg_create_logical_replication_slot('qc_slot', 'test_decoding');",
    );

    // A replication connection streaming from the slot: one walsender.
    let mut child = Command::new(server.program("pg_recvlogical"))
        .args(["--no-loop", "--start", "-S", "qc_slot", "-f", "/dev/null"])
        .arg("-d")
        .arg(server.url(&db))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pg_recvlogical");
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.psql(
        "postgres",
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'",
    ) != "1"
    {
        assert!(Instant::now() < deadline, "no walsender within 10 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.terminate("backend_type = 'walsender'"), 1);
    // --no-loop: the client gives up once its connection is ended.
    let status = child.wait().expect("wait for pg_recvlogical");
    assert!(!status.success());

    server.crash();
    assert!(!server.is_running());
    assert!(server.try_psql(&db, "SELECT 1").is_err());
    let again = Instant::now();
    server.start_again();
    eprintln!(
        "pg_server: start_again after crash (recovery) took {:?}",
        again.elapsed()
    );
    assert_eq!(server.psql(&db, "SELECT count(*) FROM t"), "1");
    assert_eq!(
        server.psql(
            "postgres",
            "SELECT slot_name FROM pg_replication_slots ORDER BY 1"
        ),
        "qc_slot"
    );

    server.stop();
    assert!(!server.is_running());
    server.start_again();
    assert_eq!(server.psql(&db, "SELECT count(*) FROM t"), "1");
}

#[test]
fn at_most_two_servers_are_alive_at_once() {
    static ALIVE: AtomicUsize = AtomicUsize::new(0);
    static MOST: AtomicUsize = AtomicUsize::new(0);
    let ports: Vec<Option<u16>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| {
                    let server = PgServer::start()?;
                    let now = ALIVE.fetch_add(1, Ordering::SeqCst) + 1;
                    MOST.fetch_max(now, Ordering::SeqCst);
                    assert_eq!(server.psql("postgres", "SELECT 1"), "1");
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
        let Some(server) = PgServer::start() else {
            return;
        };
        *seen.lock().unwrap() = Some((server.port(), server.dir().to_path_buf()));
        panic!("the test fails while its server runs");
    }));
    let Some((port, dir)) = seen.into_inner().unwrap() else {
        return;
    };
    assert!(result.is_err());
    assert!(!dir.exists(), "{} is still there", dir.display());
    assert!(!accepts_connections(port), "port {port} still answers");
}

#[test]
fn start_again_waits_for_its_port_to_be_free_again() {
    let Some(server) = PgServer::start() else {
        return;
    };
    server.stop();
    // Another program holds the port for a while.
    let squatter = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, server.port()))
        .expect("the stopped server's port is free");
    let released = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(squatter);
    });
    server.start_again();
    released.join().unwrap();
    assert_eq!(server.psql("postgres", "SELECT 1"), "1");
}
