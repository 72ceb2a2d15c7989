//! The Redis store through the public `Cache` API, against a private redis-server.
//!
//! Each test starts its own server (never the shared one on 6379) and skips, saying why,
//! when redis-server is not installed — unless QUERYCACHE_REQUIRE_SERVICES=1.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use querycache::{Cache, EntryOptions, Tag};

use crate::support::redis::RedisServer;

/// A cache on `server`, with a prefix of its own.
fn cache_on(server: &RedisServer) -> Cache {
    Cache::builder()
        .redis_url(server.url())
        .store(querycache::config::StoreKind::Redis)
        .key_prefix("qctest")
        .redis_timeout(Duration::from_millis(500))
        .build()
        .expect("valid config")
}

fn raw(server: &RedisServer, cmd: &redis::Cmd) -> Option<Vec<u8>> {
    server.query(cmd)
}

#[tokio::test]
async fn set_get_and_compute_round_trip_through_redis() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cache = cache_on(&server);
    cache
        .set("greeting", "hello".to_string(), EntryOptions::new())
        .await
        .unwrap();
    assert_eq!(
        cache
            .get::<String>("greeting")
            .await
            .as_deref()
            .map(String::as_str),
        Some("hello")
    );
    let stored =
        raw(&server, redis::cmd("GET").arg("qctest:e:greeting")).expect("entry under the prefix");
    assert!(stored.starts_with(b"QC2\n"), "framed payload");

    let runs = AtomicUsize::new(0);
    for _ in 0..3 {
        let v = cache
            .get_or_compute("answer", EntryOptions::new(), || async {
                runs.fetch_add(1, Ordering::SeqCst);
                42_u64
            })
            .await;
        assert_eq!(*v, 42);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let stats = cache.stats();
    assert_eq!(stats.hits, 3, "greeting once, answer twice");
    assert_eq!(stats.errors, 0);
}

#[tokio::test]
async fn a_hit_costs_one_round_trip() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cache = cache_on(&server);
    let options = EntryOptions::new().tags([
        Tag::model("songs"),
        Tag::row("songs", 7),
        Tag::bulk("songs"),
    ]);
    cache
        .get_or_compute("song:7", options.clone(), || async { "seven".to_string() })
        .await;
    server.reset_stats();
    // The instance that stored the entry knows its version keys: each hit is one
    // pipeline reading the entry, then those versions (GET MGET), no transaction; no
    // PTTL either, which only a memory tier in front needs.
    for _ in 0..10 {
        assert!(cache.get::<String>("song:7").await.is_some());
    }
    assert_eq!(server.command_count("get"), 10);
    assert_eq!(server.command_count("mget"), 10, "one pipeline per hit");
    assert_eq!(server.command_count("pttl"), 0);
    assert_eq!(server.command_count("exec"), 0, "no transaction");
    assert_eq!(server.command_count("multi"), 0);
    assert_eq!(server.command_count("evalsha"), 0);
    assert_eq!(server.command_count("eval"), 0);
    assert_eq!(cache.stats().errors, 0);

    // Another instance does not know them yet: its first hit is one script call (after
    // the script's first load), the next ones pipelines.
    let other = cache_on(&server);
    assert!(other.get::<String>("song:7").await.is_some());
    server.reset_stats();
    for _ in 0..10 {
        assert!(other.get::<String>("song:7").await.is_some());
    }
    assert_eq!(server.command_count("mget"), 10);
    assert_eq!(server.command_count("evalsha"), 0);
    let third = cache_on(&server);
    server.reset_stats();
    assert!(third.get::<String>("song:7").await.is_some());
    // Before its first operation an instance checks the server's incarnation (`INFO
    // server`, then the rotate-epoch script): one more script call, once.
    assert_eq!(
        server.command_count("evalsha") + server.command_count("mget"),
        2,
        "a first hit: the incarnation check, then one script call"
    );
    assert_eq!(other.stats().errors + third.stats().errors, 0);
}

#[tokio::test]
async fn an_entry_stored_by_another_instance_under_other_tags_is_still_checked() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (a, b) = (cache_on(&server), cache_on(&server));
    a.set("k", 1_u32, EntryOptions::new().tag(Tag::model("songs")))
        .await
        .unwrap();
    // B replaces the entry with one that depends on another table: A's idea of the entry's
    // version keys is now wrong.
    b.set("k", 2_u32, EntryOptions::new().tag(Tag::model("users")))
        .await
        .unwrap();
    assert_eq!(a.get::<u32>("k").await.as_deref(), Some(&2));
    b.invalidate_tags([Tag::model("users")]).await;
    assert!(a.get::<u32>("k").await.is_none(), "its real tag moved");
    a.set("k", 3_u32, EntryOptions::new().tag(Tag::model("songs")))
        .await
        .unwrap();
    a.invalidate_tags([Tag::model("users")]).await;
    assert_eq!(
        b.get::<u32>("k").await.as_deref(),
        Some(&3),
        "a tag the entry does not record moved"
    );
    assert_eq!(a.stats().errors + b.stats().errors, 0);
}

#[tokio::test]
async fn an_outdated_entry_read_by_the_transaction_is_unlinked() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cache = cache_on(&server);
    cache
        .set("k", 1_u32, EntryOptions::new().tag(Tag::model("songs")))
        .await
        .unwrap();
    assert!(cache.get::<u32>("k").await.is_some());
    // Bumped behind this instance's back (another instance, no message needed: the
    // versions live in Redis).
    let other = cache_on(&server);
    other.invalidate_tags([Tag::model("songs")]).await;
    assert!(cache.get::<u32>("k").await.is_none());
    assert!(
        raw(&server, redis::cmd("GET").arg("qctest:e:k")).is_none(),
        "unlinked on the spot"
    );
    assert_eq!(cache.stats().errors, 0);
}

#[tokio::test]
async fn invalidation_and_row_precision_hold_on_redis() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cache = cache_on(&server);
    let by_id = |id: i32| EntryOptions::new().tags([Tag::row("songs", id), Tag::bulk("songs")]);
    let list = EntryOptions::new().tag(Tag::model("songs"));
    cache.set("song:7", 7, by_id(7)).await.unwrap();
    cache.set("song:8", 8, by_id(8)).await.unwrap();
    cache.set("songs", vec![7, 8], list).await.unwrap();

    cache
        .invalidate_tags([Tag::model("songs"), Tag::row("songs", 8)])
        .await;
    assert!(
        cache.get::<i32>("song:7").await.is_some(),
        "another row's write keeps it"
    );
    assert!(cache.get::<i32>("song:8").await.is_none());
    assert!(cache.get::<Vec<i32>>("songs").await.is_none());

    cache
        .invalidate_tags([Tag::model("songs"), Tag::bulk("songs")])
        .await;
    assert!(
        cache.get::<i32>("song:7").await.is_none(),
        "a bulk write drops every row"
    );
    // An outdated entry is reclaimed by the lookup that finds it.
    assert_eq!(raw(&server, redis::cmd("GET").arg("qctest:e:song:7")), None);
    assert_eq!(
        cache.stats().errors,
        0,
        "outdated entries are misses, not store errors"
    );
}

#[tokio::test]
async fn a_lost_tag_version_never_resurrects_old_entries() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cache = cache_on(&server);
    let options = EntryOptions::new().tag(Tag::model("songs"));
    cache.set("count", 1_u64, options.clone()).await.unwrap();
    assert!(cache.get::<u64>("count").await.is_some());
    // Redis loses the version key (eviction, a restart without persistence...).
    let _: i64 = server.query(redis::cmd("DEL").arg("qctest:v:model:songs"));
    assert!(
        cache.get::<u64>("count").await.is_none(),
        "recorded under a version that is gone"
    );
    // A new snapshot mints a fresh token; entries stored under it are served.
    cache.set("count", 2_u64, options).await.unwrap();
    assert_eq!(cache.get::<u64>("count").await.as_deref(), Some(&2));
    assert_eq!(cache.stats().errors, 0);
}

#[tokio::test]
async fn a_value_computed_while_its_tag_moved_is_not_stored() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cache = cache_on(&server);
    let options = EntryOptions::new().tag(Tag::model("songs"));
    let value = cache
        .get_or_compute("count", options, || async {
            // The write lands while the query runs.
            cache.invalidate_tags([Tag::model("songs")]).await;
            "before the write".to_string()
        })
        .await;
    assert_eq!(*value, "before the write");
    assert!(cache.get::<String>("count").await.is_none());
    assert_eq!(cache.stats().wasted_computations, 1);
}

#[tokio::test]
async fn garbage_under_a_key_is_a_miss_then_overwritten() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cache = cache_on(&server);
    for garbage in [
        &b"not a payload"[..],
        b"QC2\n0\n",
        b"QC2\n1\n0\n0\nnot lz4",
        b"QC9\n0\n0\n0\n1",
    ] {
        let _: () = server.query(redis::cmd("SET").arg("qctest:e:k").arg(garbage));
        assert!(cache.get::<u64>("k").await.is_none());
    }
    // A well-framed body of another type is a miss too.
    cache
        .set("k", "text".to_string(), EntryOptions::new())
        .await
        .unwrap();
    assert!(cache.get::<u64>("k").await.is_none());
    assert_eq!(cache.stats().errors, 5);
    let v = cache
        .get_or_compute("k", EntryOptions::new(), || async { 9_u64 })
        .await;
    assert_eq!(*v, 9);
    assert_eq!(
        cache.get::<u64>("k").await.as_deref(),
        Some(&9),
        "overwritten"
    );
}

#[tokio::test]
async fn compression_above_the_threshold() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let big = "lyrics ".repeat(2000);
    for (on, prefix) in [(true, "qcz"), (false, "qcplain")] {
        let cache = Cache::builder()
            .redis_url(server.url())
            .key_prefix(prefix)
            .compression_enabled(on)
            .compression_threshold(1024)
            .build()
            .unwrap();
        cache
            .set("big", big.clone(), EntryOptions::new())
            .await
            .unwrap();
        assert_eq!(cache.get::<String>("big").await.as_deref(), Some(&big));
        let stored = raw(&server, redis::cmd("GET").arg(format!("{prefix}:e:big"))).unwrap();
        if on {
            assert!(
                stored.len() < big.len() / 4,
                "compressed: {} bytes",
                stored.len()
            );
        } else {
            assert!(
                stored.len() > big.len(),
                "plain JSON: {} bytes",
                stored.len()
            );
        }
    }
}

#[tokio::test]
async fn patterns_namespaces_delete_and_clear_on_redis() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cache = cache_on(&server);
    for key in ["user:1", "user:2:songs", "song:1"] {
        cache
            .set(key, 1_u8, EntryOptions::new().namespace("ns_a"))
            .await
            .unwrap();
    }
    cache
        .set("other", 1_u8, EntryOptions::new().namespace("ns_b"))
        .await
        .unwrap();
    assert_eq!(cache.invalidate_pattern("user:*").await.unwrap(), 2);
    assert!(cache.get::<u8>("user:1").await.is_none());
    assert!(cache.get::<u8>("song:1").await.is_some());
    cache.invalidate_namespace("ns_a").await;
    assert!(cache.get::<u8>("song:1").await.is_none());
    assert!(cache.get::<u8>("other").await.is_some());
    assert!(cache.delete("other").await);
    cache.set("x", 1_u8, EntryOptions::new()).await.unwrap();
    cache.clear().await;
    assert!(cache.get::<u8>("x").await.is_none());
    let left: Vec<String> = server.query(redis::cmd("KEYS").arg("qctest:*"));
    assert!(
        left.is_empty(),
        "clear removes entries and versions: {left:?}"
    );
}

#[tokio::test]
async fn redis_down_never_fails_the_caller() {
    // A port where nothing listens: every cache operation fails fast; callers still get
    // their values.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cache = Cache::builder()
        .redis_url(format!("redis://127.0.0.1:{port}"))
        .redis_timeout(Duration::from_millis(100))
        .breaker_threshold(1)
        .build()
        .unwrap();
    let started = Instant::now();
    let runs = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let runs = runs.clone();
        let v = cache
            .get_or_compute(
                "k",
                EntryOptions::new().tag(Tag::model("songs")),
                || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    5_u8
                },
            )
            .await;
        assert_eq!(*v, 5);
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the first failure opened the breaker; memory served the rest"
    );
    let health = cache.health().await;
    assert!(health.fallback_active && !health.redis_connected && !health.healthy);
    assert!(health.error.is_some(), "{health:?}");
    // A write during the outage reaches the memory tier and is kept for Redis.
    assert_eq!(cache.invalidate_tags([Tag::model("songs")]).await, 1);
    assert!(cache.get::<u8>("k").await.is_none(), "read-your-writes");
    assert_eq!(cache.health().await.pending_invalidations, 1);
    assert!(cache.set("k", 1_u8, EntryOptions::new()).await.is_ok());
    assert_eq!(cache.get::<u8>("k").await.as_deref(), Some(&1));
    assert!(cache.stats().errors >= 1);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded: {:?}",
        started.elapsed()
    );
}

/// Serializes only when `ok`: stands for a value serde cannot encode.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
struct Fragile {
    ok: bool,
}

impl serde::Serialize for Fragile {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.ok {
            serde::Serialize::serialize(&true, s)
        } else {
            Err(serde::ser::Error::custom("cannot encode this one"))
        }
    }
}

#[tokio::test]
async fn an_unserializable_value_is_returned_and_counted_not_stored() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cache = cache_on(&server);
    let v = cache
        .get_or_compute("fragile", EntryOptions::new(), || async {
            Fragile { ok: false }
        })
        .await;
    assert_eq!(*v, Fragile { ok: false });
    assert_eq!(cache.stats().errors, 1);
    assert_eq!(cache.stats().sets, 0);
    assert_eq!(
        raw(&server, redis::cmd("GET").arg("qctest:e:fragile")),
        None,
        "nothing parked in Redis"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn auth_in_the_url_works_and_a_wrong_password_falls_back_without_leaking_it() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let () = server.query(
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("requirepass")
            .arg("s3cret"),
    );
    let port = server.port();
    let good = Cache::builder()
        .redis_url(format!("redis://:s3cret@127.0.0.1:{port}"))
        .store(querycache::config::StoreKind::Redis)
        .build()
        .unwrap();
    good.set("k", 1_u8, EntryOptions::new()).await.unwrap();
    assert_eq!(good.get::<u8>("k").await.as_deref(), Some(&1));
    let health = good.health().await;
    assert!(health.healthy && health.redis_connected, "{health:?}");
    assert_eq!(good.stats().redis_hits, 1);

    let bad = Cache::builder()
        .redis_url(format!("redis://:wrong-pass@127.0.0.1:{port}"))
        .store(querycache::config::StoreKind::Redis)
        .breaker_threshold(1)
        .build()
        .unwrap();
    let v = bad
        .get_or_compute("k2", EntryOptions::new(), || async { 2_u8 })
        .await;
    assert_eq!(*v, 2, "the caller still gets its value");
    let health = bad.health().await;
    assert!(
        !health.redis_connected && health.fallback_active,
        "{health:?}"
    );
    let error = health.error.expect("the failure is reported");
    assert!(!error.contains("wrong-pass"), "{error}");
}

#[tokio::test]
async fn rediss_tls_works() {
    // A self-signed certificate for 127.0.0.1, and a server that speaks TLS on a second port.
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    match made {
        Ok(out) if out.status.success() => {}
        other => {
            assert!(
                std::env::var("QUERYCACHE_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "openssl is needed to make a test certificate: {other:?}"
            );
            eprintln!("skipping: openssl cannot make a test certificate: {other:?}");
            return;
        }
    }
    let tls_port = free_port();
    let (cert_s, key_s) = (cert.display().to_string(), key.display().to_string());
    let tls_port_s = tls_port.to_string();
    let Some(_server) = RedisServer::start_with(&[
        ("tls-port", tls_port_s.as_str()),
        ("tls-cert-file", cert_s.as_str()),
        ("tls-key-file", key_s.as_str()),
        ("tls-ca-cert-file", cert_s.as_str()),
        ("tls-auth-clients", "no"),
    ]) else {
        return;
    };
    // `#insecure`: the certificate is self-signed (a real deployment trusts its CA instead).
    let cache = Cache::builder()
        .redis_url(format!("rediss://127.0.0.1:{tls_port}/#insecure"))
        .store(querycache::config::StoreKind::Redis)
        .redis_timeout(Duration::from_millis(2000))
        .build()
        .unwrap();
    cache
        .set("over-tls", 7_u32, EntryOptions::new())
        .await
        .unwrap();
    assert_eq!(cache.get::<u32>("over-tls").await.as_deref(), Some(&7));
    assert_eq!(cache.stats().redis_hits, 1, "served by Redis, over TLS");
    assert_eq!(cache.stats().errors, 0);
}

/// `jitter_percent` spreads the expiries of entries written together: measured as the
/// PTTLs Redis holds for 300 entries written in one burst with a 1000 s TTL and 20% jitter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jitter_spreads_the_expiries_of_entries_written_together() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cache = cache_on(&server);
    let options = EntryOptions::new().ttl_secs(1000).jitter_percent(20);
    for i in 0..300 {
        cache
            .set(&format!("burst:{i}"), i, options.clone())
            .await
            .expect("stored");
    }
    let mut ttls: Vec<i64> = (0..300)
        .map(|i| server.query(redis::cmd("PTTL").arg(format!("qctest:e:burst:{i}"))))
        .collect();
    ttls.sort_unstable();
    let (min, max) = (ttls[0], ttls[ttls.len() - 1]);
    let median = ttls[ttls.len() / 2];
    eprintln!("PTTL over 300 entries: min {min} ms, median {median} ms, max {max} ms");
    assert!(min > 800_000 - 1_000, "at most 20% early: {min} ms");
    assert!(max <= 1_000_000, "never later than the TTL: {max} ms");
    assert!(
        max - min > 100_000,
        "spread over more than half the window: {min}..{max} ms"
    );
    // Without jitter, the same burst expires within the burst's own duration.
    let plain = EntryOptions::new().ttl_secs(1000);
    for i in 0..50 {
        cache
            .set(&format!("plain:{i}"), i, plain.clone())
            .await
            .expect("stored");
    }
    let plain_ttls: Vec<i64> = (0..50)
        .map(|i| server.query(redis::cmd("PTTL").arg(format!("qctest:e:plain:{i}"))))
        .collect();
    let spread = plain_ttls.iter().max().unwrap() - plain_ttls.iter().min().unwrap();
    assert!(spread < 10_000, "no jitter: {spread} ms of spread");
}

/// Issue 20, item 1: a version key made for a read lives only as long as an entry that
/// records it. A read that stores nothing leaves it for minutes (not `CACHE_MAX_TTL` plus
/// an hour, as it did); storing an entry extends it to the entry's lifetime; a bump keeps
/// the lifetime it had; an absent value (`None`) is kept at most `CACHE_NEGATIVE_TTL`.
#[tokio::test]
async fn versions_live_as_long_as_their_entries_and_absent_values_briefly() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cache = cache_on(&server);
    let pttl = |key: &str| -> i64 { server.query(redis::cmd("PTTL").arg(key)) };
    const MINUTE: i64 = 60_000;
    let tagged = || EntryOptions::new().tags([Tag::new("user:1").unwrap()]);

    // A computation that fails stores nothing; its snapshot made the version.
    let failed: Result<Arc<u32>, &str> = cache
        .try_get_or_compute("user-1:failing", tagged(), || async { Err("no such user") })
        .await;
    assert!(failed.is_err());
    let provisional = pttl("qctest:v:user:1");
    assert!(
        provisional > 0 && provisional <= 5 * MINUTE,
        "a version nobody recorded lives {provisional} ms"
    );

    // An entry that records it, for two hours: the version lives at least as long.
    let two_hours = Duration::from_secs(2 * 3600);
    cache
        .get_or_compute("user-1", tagged().ttl(two_hours), || async { 1_u32 })
        .await;
    let extended = pttl("qctest:v:user:1");
    assert!(
        (119 * MINUTE..=122 * MINUTE).contains(&extended),
        "the version of a 2 h entry lives {extended} ms"
    );

    // A bump gives a fresh token and keeps the lifetime.
    cache.invalidate_tags([Tag::new("user:1").unwrap()]).await;
    let bumped = pttl("qctest:v:user:1");
    assert!(
        bumped > 0 && bumped <= extended,
        "the bumped version lives {bumped} ms (had {extended} ms)"
    );

    // An absent value: at most a minute (`CACHE_NEGATIVE_TTL`), whatever the TTL asked.
    let none = cache
        .get_or_compute("user-2", tagged().ttl(two_hours), || async { None::<u32> })
        .await;
    assert_eq!(*none, None);
    let absent = pttl("qctest:e:user-2");
    assert!(
        absent > 0 && absent <= MINUTE,
        "an absent value is kept {absent} ms"
    );
    let present = cache
        .get_or_compute("user-3", tagged().ttl(two_hours), || async { Some(3_u32) })
        .await;
    assert_eq!(*present, Some(3));
    assert!(
        pttl("qctest:e:user-3") > 119 * MINUTE,
        "a present value keeps its TTL"
    );
}

/// `CacheBuilder::redis_client`: a client the application made (here with a database
/// number of its own) is what the store connects with, for commands and for the
/// invalidation channel: an instance on the client and one on `REDIS_URL` share entries,
/// and an invalidation made by one reaches the other's memory tier.
#[tokio::test]
async fn a_client_made_by_the_application() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = format!("redis://127.0.0.1:{}/3", server.port());
    let client = redis::Client::open(url.as_str()).expect("valid URL");
    let on_client = Cache::builder()
        .redis_client(client)
        .key_prefix("qcclient")
        .redis_timeout(Duration::from_millis(2000))
        .build()
        .expect("valid config");
    assert_eq!(
        on_client.config().store_kind(),
        querycache::config::StoreKind::Tiered
    );
    let shown = format!("{:?}", on_client.config());
    assert!(
        shown.contains(&format!("127.0.0.1:{} db 3", server.port())),
        "{shown}"
    );
    let on_url = Cache::builder()
        .redis_url(url)
        .key_prefix("qcclient")
        .redis_timeout(Duration::from_millis(2000))
        .build()
        .expect("valid config");
    crate::support::subscribed(&on_client).await;
    crate::support::subscribed(&on_url).await;

    let songs = || EntryOptions::new().tag(Tag::model("songs"));
    on_client
        .set("k", 1_u32, songs())
        .await
        .expect("stored through the client");
    assert_eq!(
        on_url.get::<u32>("k").await.as_deref(),
        Some(&1),
        "one store"
    );
    // The database came from the client: the entry is in db 3, none in db 0.
    let db0: u64 = server.query(&redis::cmd("DBSIZE"));
    assert_eq!(db0, 0);
    let mut db3 = redis::Client::open(format!("redis://127.0.0.1:{}/3", server.port()))
        .expect("valid URL")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let in_db3: u64 = redis::cmd("DBSIZE")
        .query_async(&mut db3)
        .await
        .expect("DBSIZE");
    assert!(in_db3 > 0, "the entry and its tag version are in db 3");
    assert!(on_client.health().await.redis_connected);

    // In both memory tiers now; an invalidation through one reaches the other.
    assert_eq!(on_client.get::<u32>("k").await.as_deref(), Some(&1));
    on_url.invalidate_tags([Tag::model("songs")]).await;
    crate::support::until(
        Duration::from_secs(5),
        "the invalidation arrives",
        async || on_client.get::<u32>("k").await.is_none(),
    )
    .await;
}
