//! One computation across instances: a miss takes a lease in Redis (`SET NX PX`), the
//! other instances wait for its value, and a lease whose holder died expires.
//!
//! Three `Cache`s on one private redis-server stand for three app instances.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use querycache::{Cache, EntryOptions, config::StoreKind};

use crate::support::redis::RedisServer;

fn instance(server: &RedisServer, kind: StoreKind, lease: Duration) -> Cache {
    Cache::builder()
        .redis_url(server.url())
        .store(kind)
        .redis_timeout(Duration::from_millis(2000))
        .lease_ttl(lease)
        .build()
        .expect("valid test configuration")
}

async fn three_hundred_callers_on_three_instances_compute_once(kind: StoreKind) {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let instances: Vec<Cache> = (0..3)
        .map(|_| instance(&server, kind, Duration::from_secs(5)))
        .collect();
    let runs = Arc::new(AtomicU32::new(0));
    let options = EntryOptions::new().ttl_secs(60);
    let started = Instant::now();
    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..300 {
        let cache = instances[caller % 3].clone();
        let (runs, options) = (Arc::clone(&runs), options.clone());
        callers.spawn(async move {
            let asked = Instant::now();
            let value = cache
                .fetch("cold:key", options, move || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Ok::<_, String>(42_u32)
                })
                .await
                .expect("computed");
            (*value, asked.elapsed())
        });
    }
    let mut worst = Duration::ZERO;
    let mut answered = 0;
    while let Some(joined) = callers.join_next().await {
        let (value, waited) = joined.expect("caller finished");
        assert_eq!(value, 42);
        worst = worst.max(waited);
        answered += 1;
    }
    assert_eq!(answered, 300);
    let computations = runs.load(Ordering::SeqCst);
    assert_eq!(
        computations, 1,
        "one computation across the three instances"
    );
    let lease_waits: u64 = instances.iter().map(|c| c.stats().lease_waits).sum();
    assert!(
        lease_waits >= 2,
        "the two other instances waited on the lease"
    );
    assert!(
        worst < Duration::from_secs(5),
        "nobody waited past the lease: {worst:?}"
    );
    eprintln!(
        "leases ({kind:?}): 300 callers on 3 instances, {computations} computation, worst wait {} ms, \
         {lease_waits} lease waits, total {:?}",
        worst.as_millis(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hundred_callers_on_three_redis_instances_compute_once() {
    three_hundred_callers_on_three_instances_compute_once(StoreKind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hundred_callers_on_three_tiered_instances_compute_once() {
    three_hundred_callers_on_three_instances_compute_once(StoreKind::Tiered).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_left_by_a_dead_holder_expires_and_another_instance_computes() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let lease = Duration::from_millis(800);
    let other = instance(&server, StoreKind::Tiered, lease);
    // What an instance that died mid-computation leaves behind: its lease, which nobody
    // will give back
    // (the key is `<CACHE_KEY_PREFIX>:l:<run_id, 12 characters>:<key>`).
    let info: String = server.query(redis::cmd("INFO").arg("server"));
    let run_id = info
        .lines()
        .find_map(|line| line.strip_prefix("run_id:"))
        .expect("INFO server names the run_id")
        .trim()
        .to_owned();
    let taken: Option<String> = server.query(
        redis::cmd("SET")
            .arg(format!("querycache:l:{}:orphan", &run_id[..12]))
            .arg("token-of-a-dead-instance")
            .arg("NX")
            .arg("PX")
            .arg(lease.as_millis() as u64),
    );
    assert_eq!(taken.as_deref(), Some("OK"));
    let asked = Instant::now();
    let value = other
        .fetch("orphan", EntryOptions::new().ttl_secs(60), || async {
            Ok::<_, String>(7_u32)
        })
        .await
        .expect("computed");
    let waited = asked.elapsed();
    assert_eq!(*value, 7, "the other instance computed");
    assert!(
        waited >= Duration::from_millis(600) && waited < lease + Duration::from_millis(500),
        "it waited for the holder, then took over once the lease expired: {waited:?}"
    );
    assert_eq!(other.stats().lease_waits, 1);
    assert!(other.stats().lease_wait_max >= Duration::from_millis(600));
    eprintln!(
        "leases: a lease left by a dead holder (800 ms) held the other instance up {} ms",
        waited.as_millis()
    );
    assert_eq!(other.get::<u32>("orphan").await.as_deref(), Some(&7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_computation_gives_its_lease_back_at_once() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let holder = instance(&server, StoreKind::Tiered, Duration::from_secs(30));
    let other = instance(&server, StoreKind::Tiered, Duration::from_secs(30));
    let options = EntryOptions::new().ttl_secs(60);
    let started = Arc::new(AtomicU32::new(0));
    let holder_task = {
        let (holder, options, started) = (holder.clone(), options.clone(), started.clone());
        tokio::spawn(async move {
            holder
                .fetch("cancelled", options, move || async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Ok::<_, String>(0_u32)
                })
                .await
        })
    };
    crate::support::until(Duration::from_secs(5), "the holder computes", async || {
        started.load(Ordering::SeqCst) == 1
    })
    .await;
    // The caller goes away mid-computation (a dropped request, a hard timeout).
    holder_task.abort();
    let asked = Instant::now();
    let value = other
        .fetch("cancelled", options, || async { Ok::<_, String>(7_u32) })
        .await
        .expect("computed");
    assert_eq!(*value, 7);
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "the lease (30 s) was given back, not waited out: {:?}",
        asked.elapsed()
    );
}

#[tokio::test]
async fn leases_can_be_turned_off() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = instance(&server, StoreKind::Redis, Duration::ZERO);
    let b = instance(&server, StoreKind::Redis, Duration::ZERO);
    let runs = Arc::new(AtomicU32::new(0));
    let slow = |runs: Arc<AtomicU32>| {
        move || async move {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok::<_, String>(1_u32)
        }
    };
    let options = EntryOptions::new().ttl_secs(60);
    let (x, y) = tokio::join!(
        a.fetch("k", options.clone(), slow(runs.clone())),
        b.fetch("k", options, slow(runs.clone()))
    );
    assert_eq!((*x.unwrap(), *y.unwrap()), (1, 1));
    assert_eq!(runs.load(Ordering::SeqCst), 2, "each instance computed");
    assert_eq!(a.stats().lease_waits + b.stats().lease_waits, 0);
}

/// A lease taken before an outage cannot be given back during it: it would stay held with
/// nobody to release it, and every instance that missed the key after the outage would wait
/// for it until it expired. The instance that took it gives it back when it recovers, so
/// another instance computes at once. (A `SET NX` that timed out on a hung server and ran
/// when it woke up is handled the same way; the consistency checker's fault rounds catch
/// it by the slowest operation.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_orphaned_by_an_outage_is_given_back_on_recovery() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let server = Arc::new(server);
    let instance = || {
        Cache::builder()
            .redis_url(server.url())
            .store(StoreKind::Tiered)
            .redis_timeout(Duration::from_millis(200))
            .breaker_cooldown(Duration::from_millis(50))
            .lease_ttl(Duration::from_secs(5))
            .build()
            .expect("valid test configuration")
    };
    let (a, b) = (instance(), instance());
    let options = EntryOptions::new().ttl_secs(60);
    // A takes the lease, then Redis hangs while A computes: the put and the release fail.
    let value = a
        .fetch("orphan:key", options.clone(), {
            let server = Arc::clone(&server);
            move || async move {
                server.pause();
                Ok::<_, String>(1_u32)
            }
        })
        .await
        .expect("computed while Redis hangs");
    assert_eq!(*value, 1);
    assert!(
        a.health().await.fallback_active,
        "premise: the breaker opened"
    );
    server.resume();
    crate::support::until(Duration::from_secs(10), "A recovers", async || {
        let health = a.health().await;
        health.healthy && !health.fallback_active
    })
    .await;
    let started = Instant::now();
    let value = b
        .fetch("orphan:key", options, || async { Ok::<_, String>(2_u32) })
        .await
        .expect("computed");
    assert_eq!(*value, 2);
    assert_eq!(
        b.stats().lease_waits,
        0,
        "B waited {:?} for a lease nobody held",
        started.elapsed()
    );
}
