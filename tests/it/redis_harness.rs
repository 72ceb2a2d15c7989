//! Tests of the Redis fixture itself (`support::redis`): every later Redis test leans on it
//! starting, killing, pausing and restarting servers exactly as documented.
//!
//! Each test returns early (passes) when `redis-server` is not installed, unless
//! `QUERYCACHE_REQUIRE_SERVICES=1`, which makes the fixture panic instead.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use redis::{AsyncConnectionConfig, Commands};

use crate::support::redis::{RedisCluster, RedisServer};

/// Whether something accepts TCP connections on the loopback `port`.
fn accepts_connections(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// Whether the redis-server that had `pid` and `port` still exists (as a live process or a
/// zombie). A recycled pid belongs to another program, which does not name our port.
fn server_process_exists(pid: u32, port: u16) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(&port.to_string()))
}

#[test]
fn start_serves_set_and_get_on_a_private_port() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    assert_ne!(server.port(), 6379, "the shared Redis is off limits");
    assert_eq!(server.url(), format!("redis://127.0.0.1:{}", server.port()));
    assert!(server.is_running());

    let mut con = server.client().get_connection().expect("connect");
    let () = con.set("greeting", "hello").expect("SET");
    let value: String = con.get("greeting").expect("GET");
    assert_eq!(value, "hello");
}

#[test]
fn kill_refuses_connections_and_restart_comes_back_empty_on_the_same_port() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let port = server.port();
    let mut con = server.client().get_connection().expect("connect");
    let () = con.set("survivor", "no").expect("SET");
    drop(con);

    server.kill();
    assert!(!server.is_running());
    assert_eq!(server.pid(), None);
    let refused = server
        .client()
        .get_connection_with_timeout(Duration::from_millis(500));
    assert!(refused.is_err(), "a killed server must refuse connections");
    assert!(!accepts_connections(port));

    server.restart();
    assert!(server.is_running());
    assert_eq!(server.port(), port, "restart keeps the port");
    let mut con = server
        .client()
        .get_connection()
        .expect("connect after restart");
    let pong: String = redis::cmd("PING").query(&mut con).expect("PING");
    assert_eq!(pong, "PONG");
    let gone: Option<String> = con.get("survivor").expect("GET");
    assert_eq!(gone, None, "nothing is persisted across a restart");
    let keys: u64 = redis::cmd("DBSIZE").query(&mut con).expect("DBSIZE");
    assert_eq!(keys, 0);
}

// `start`, `pause` and `resume` block for milliseconds only: fine on a worker thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_makes_commands_time_out_and_resume_answers_again() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_millis(300)));
    let client = server.client();
    let mut con = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("connect");
    let () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut con)
        .await
        .expect("SET");

    server.pause();
    assert!(server.is_running(), "a paused server is still running");
    let started = Instant::now();
    let err = redis::cmd("GET")
        .arg("k")
        .query_async::<Option<String>>(&mut con)
        .await
        .expect_err("a paused server cannot answer");
    let waited = started.elapsed();
    assert!(err.is_timeout(), "expected a timeout, got {err:?}");
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(2),
        "the response timeout bounds the wait: {waited:?}"
    );

    server.resume();
    let value: Option<String> = redis::cmd("GET")
        .arg("k")
        .query_async(&mut con)
        .await
        .expect("the same connection answers after resume");
    assert_eq!(value.as_deref(), Some("v"));
    let mut fresh = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("connect after resume");
    let pong: String = redis::cmd("PING")
        .query_async(&mut fresh)
        .await
        .expect("PING");
    assert_eq!(pong, "PONG");
}

#[test]
fn command_count_counts_gets_since_reset_stats() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let mut con = server.client().get_connection().expect("connect");
    let _: Option<String> = con.get("before-reset").expect("GET");

    server.reset_stats();
    assert_eq!(server.command_count("get"), 0);
    for key in ["a", "b", "c"] {
        let _: Option<String> = con.get(key).expect("GET");
    }
    assert_eq!(server.command_count("get"), 3);
    assert_eq!(
        server.command_count("GET"),
        3,
        "command names are case-insensitive"
    );
    assert_eq!(
        server.command_count("hgetall"),
        0,
        "absent commands count 0"
    );
}

#[test]
fn start_with_passes_configuration_to_the_server() {
    let Some(server) =
        RedisServer::start_with(&[("maxmemory", "1mb"), ("maxmemory-policy", "allkeys-lru")])
    else {
        return;
    };
    let maxmemory: Vec<String> = server.query(redis::cmd("CONFIG").arg("GET").arg("maxmemory"));
    assert_eq!(maxmemory, ["maxmemory", "1048576"]);
    let policy: Vec<String> = server.query(redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy"));
    assert_eq!(policy, ["maxmemory-policy", "allkeys-lru"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_of_three_masters_serves_keys_in_every_slot_range() {
    // Cluster start-up takes seconds: keep it off the runtime's workers.
    let started = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .expect("cluster start-up panicked");
    let Some(cluster) = started else {
        return;
    };
    let ports: HashSet<u16> = cluster.nodes().iter().map(RedisServer::port).collect();
    assert_eq!(ports.len(), 3);
    assert!(!ports.contains(&6379));
    assert_eq!(cluster.urls().len(), 3);

    for node in cluster.nodes() {
        let info: String = node.query(redis::cmd("CLUSTER").arg("INFO"));
        assert!(
            info.contains("cluster_state:ok"),
            "node {} reports:\n{info}",
            node.port()
        );
    }

    let client = redis::cluster::ClusterClient::new(cluster.urls()).expect("cluster client");
    let mut con = client.get_async_connection().await.expect("connect");
    // Forty keys hash to slots all over the 0..16384 range, so every master gets some.
    let keys: Vec<String> = (0..40).map(|i| format!("key-{i}")).collect();
    for key in &keys {
        let () = redis::cmd("SET")
            .arg(key)
            .arg(format!("value of {key}"))
            .query_async(&mut con)
            .await
            .expect("SET");
    }
    for key in &keys {
        let value: String = redis::cmd("GET")
            .arg(key)
            .query_async(&mut con)
            .await
            .expect("GET");
        assert_eq!(value, format!("value of {key}"));
    }
    for node in cluster.nodes() {
        let held: u64 = node.query(&redis::cmd("DBSIZE"));
        assert!(held > 0, "node {} holds none of the keys", node.port());
    }
}

#[test]
fn ten_servers_started_in_parallel_get_distinct_ports() {
    let servers: Vec<Option<RedisServer>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10).map(|_| scope.spawn(RedisServer::start)).collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("start panicked"))
            .collect()
    });
    let Some(servers) = servers.into_iter().collect::<Option<Vec<_>>>() else {
        return;
    };
    let ports: HashSet<u16> = servers.iter().map(RedisServer::port).collect();
    assert_eq!(ports.len(), 10, "ports: {ports:?}");
    assert!(!ports.contains(&6379));
    for server in &servers {
        let pong: String = server.query(&redis::cmd("PING"));
        assert_eq!(pong, "PONG");
    }
}

#[test]
fn drop_kills_the_server_and_removes_its_directory_even_when_the_test_panics() {
    let mut seen: Option<(u16, u32, PathBuf)> = None;
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        let Some(server) = RedisServer::start() else {
            return;
        };
        seen = Some((
            server.port(),
            server.pid().expect("running"),
            server.dir().to_owned(),
        ));
        // Unwinds like a failed assertion, without printing a panic message.
        panic::resume_unwind(Box::new("the test failed"));
    }));
    let Some((port, pid, dir)) = seen else {
        return;
    };
    assert!(outcome.is_err());
    assert!(!accepts_connections(port), "port {port} still answers");
    assert!(
        !server_process_exists(pid, port),
        "pid {pid} was not reaped"
    );
    assert!(!dir.exists(), "{} was not removed", dir.display());
}

#[test]
fn drop_kills_a_paused_server() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (port, pid) = (server.port(), server.pid().expect("running"));
    server.pause();
    drop(server);
    assert!(
        !accepts_connections(port),
        "port {port} still accepts connections"
    );
    assert!(
        !server_process_exists(pid, port),
        "pid {pid} was not reaped"
    );
}

#[test]
fn restart_waits_for_its_port_to_be_free_again() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let port = server.port();
    server.kill();
    // Something else holds the port for a moment (as a lingering socket would).
    let squatter = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("bind");
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(squatter);
    });
    let started = Instant::now();
    server.restart();
    release.join().expect("release thread");
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(server.port(), port);
    let pong: String = server.query(&redis::cmd("PING"));
    assert_eq!(pong, "PONG");
}
