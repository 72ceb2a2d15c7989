//! The Redis store in cluster mode (`CACHE_CLUSTER_MODE`), through the public `Cache` API,
//! against a private three-master cluster.
//!
//! Each test starts its own cluster (never the shared Redis on 6379) and skips, saying why,
//! when redis-server or redis-cli is not installed — unless QUERYCACHE_REQUIRE_SERVICES=1.
//! Tests run both the Redis-only store and the default tiered store where both apply.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use querycache::{Cache, EntryOptions, Tag, config::StoreKind};
use redis::AsyncCommands;

use crate::support::redis::{RedisCluster, RedisServer};

const KINDS: [StoreKind; 2] = [StoreKind::Redis, StoreKind::Tiered];

/// Starts a cluster off the runtime's workers (it takes seconds).
async fn start_cluster() -> Option<RedisCluster> {
    tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .expect("cluster start-up panicked")
}

/// A cache in cluster mode on `cluster`, with the store `kind`.
fn cache_on(cluster: &RedisCluster, kind: StoreKind) -> Cache {
    Cache::builder()
        .redis_url(cluster.urls().join(","))
        .cluster_mode(true)
        .store(kind)
        .key_prefix("qcc")
        .redis_timeout(Duration::from_millis(500))
        .build()
        .expect("valid config")
}

/// A connection of our own to the cluster, to look at and tamper with what the cache keeps.
async fn raw_conn(cluster: &RedisCluster) -> redis::cluster_async::ClusterConnection {
    cluster
        .client()
        .get_async_connection()
        .await
        .expect("connect to the cluster")
}

async fn raw_get(conn: &mut redis::cluster_async::ClusterConnection, key: &str) -> Option<Vec<u8>> {
    conn.get(key).await.expect("GET")
}

/// Every key on one node matching `pattern` (SCAN runs on that node only).
fn keys_on(node: &RedisServer, pattern: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut cursor = 0_u64;
    loop {
        let (next, batch): (u64, Vec<String>) = node.query(
            redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000),
        );
        keys.extend(batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

/// How many times `command` ran on all the nodes together since their last reset.
fn count_all(cluster: &RedisCluster, command: &str) -> u64 {
    cluster
        .nodes()
        .iter()
        .map(|node| node.command_count(command))
        .sum()
}

fn reset_all(cluster: &RedisCluster) {
    for node in cluster.nodes() {
        node.reset_stats();
    }
}

/// How many incarnation checks the cache ran since the nodes' last reset: each asks one
/// node for `CLUSTER SLOTS`.
fn checks_since_reset(cluster: &RedisCluster) -> u64 {
    count_all(cluster, "cluster|slots")
}

/// The version keys recorded in a framed entry's header (`QC2`, flags, created, the timing
/// line when flag 2 is set, n, pairs).
fn header_version_keys(framed: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(framed);
    let mut lines = text.split('\n');
    assert_eq!(lines.next(), Some("QC2"));
    let flags: u32 = lines.next().expect("flags").parse().expect("numeric flags");
    let _created = lines.next();
    if flags & 2 != 0 {
        let _timing = lines.next();
    }
    let n: usize = lines.next().expect("count").parse().expect("numeric count");
    (0..n)
        .map(|_| {
            let key = lines.next().expect("version key").to_owned();
            let _token = lines.next().expect("token");
            key
        })
        .collect()
}

/// Polls `check` every 10 ms until it holds or `within` passes; returns whether it held.
async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_get_and_compute_hit_on_a_cluster() {
    let Some(cluster) = start_cluster().await else {
        return;
    };
    let mut raw = raw_conn(&cluster).await;
    for kind in KINDS {
        let cache = cache_on(&cluster, kind);
        cache
            .set("greeting", "hello".to_string(), EntryOptions::new())
            .await
            .unwrap();
        assert_eq!(
            cache.get::<String>("greeting").await.as_deref(),
            Some(&"hello".to_string()),
            "{kind:?}"
        );
        let stored = raw_get(&mut raw, "qcc:e:greeting")
            .await
            .expect("entry under the prefix");
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
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{kind:?}");
        let stats = cache.stats();
        assert_eq!(stats.hits, 3, "{kind:?}: greeting once, answer twice");
        if kind == StoreKind::Redis {
            assert_eq!(stats.redis_hits, 3, "every hit came from the cluster");
        }
        assert_eq!(stats.errors, 0, "{kind:?}");
        cache.clear().await;
        assert_eq!(raw_get(&mut raw, "qcc:e:answer").await, None, "{kind:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidation_and_row_precision_hold_on_a_cluster() {
    let Some(cluster) = start_cluster().await else {
        return;
    };
    let mut raw = raw_conn(&cluster).await;
    for kind in KINDS {
        let cache = cache_on(&cluster, kind);
        let by_id = |id: i32| EntryOptions::new().tags([Tag::row("songs", id), Tag::bulk("songs")]);
        let list = EntryOptions::new().tag(Tag::model("songs"));
        cache.set("song:7", 7, by_id(7)).await.unwrap();
        cache.set("song:8", 8, by_id(8)).await.unwrap();
        cache.set("songs", vec![7, 8], list).await.unwrap();

        cache
            .invalidate_tags([Tag::model("songs"), Tag::row("songs", 8)])
            .await;
        assert_eq!(
            cache.get::<i32>("song:7").await.as_deref(),
            Some(&7),
            "{kind:?}: another row's write keeps it"
        );
        assert!(cache.get::<i32>("song:8").await.is_none(), "{kind:?}");
        assert!(cache.get::<Vec<i32>>("songs").await.is_none(), "{kind:?}");

        cache
            .invalidate_tags([Tag::model("songs"), Tag::bulk("songs")])
            .await;
        assert!(
            cache.get::<i32>("song:7").await.is_none(),
            "{kind:?}: a bulk write drops every row"
        );
        if kind == StoreKind::Redis {
            // The lookup that found it outdated unlinked it.
            assert_eq!(raw_get(&mut raw, "qcc:e:song:7").await, None);
            assert_eq!(raw_get(&mut raw, "qcc:e:song:8").await, None);
        }
        assert_eq!(
            cache.stats().errors,
            0,
            "{kind:?}: outdated entries are misses, not store errors"
        );
        cache.clear().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_version_key_makes_the_entry_a_miss() {
    let Some(cluster) = start_cluster().await else {
        return;
    };
    let mut raw = raw_conn(&cluster).await;
    // Redis-only: a tiered cache's memory tier keeps its own versions, which Redis losing a
    // key does not touch.
    let cache = cache_on(&cluster, StoreKind::Redis);
    let options = EntryOptions::new().tag(Tag::model("songs"));
    cache.set("count", 1_u64, options.clone()).await.unwrap();
    assert_eq!(cache.get::<u64>("count").await.as_deref(), Some(&1));
    let stored = raw_get(&mut raw, "qcc:e:count").await.expect("stored");
    let version = header_version_keys(&stored)
        .into_iter()
        .find(|key| key.contains("songs"))
        .expect("the model tag's version is in the header");
    let deleted: u64 = raw.del(&version).await.expect("DEL");
    assert_eq!(deleted, 1, "{version} existed");
    assert!(
        cache.get::<u64>("count").await.is_none(),
        "recorded under a version that is gone"
    );
    // A new snapshot mints a fresh token; entries stored under it are served.
    cache.set("count", 2_u64, options).await.unwrap();
    assert_eq!(cache.get::<u64>("count").await.as_deref(), Some(&2));
    let token: Option<String> = raw.get(&version).await.expect("GET");
    assert!(token.is_some_and(|t| t.len() == 32), "a fresh random token");
    assert_eq!(cache.stats().errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_computed_while_its_tag_moved_is_not_stored() {
    let Some(cluster) = start_cluster().await else {
        return;
    };
    let mut raw = raw_conn(&cluster).await;
    for kind in KINDS {
        let cache = cache_on(&cluster, kind);
        let writer = cache_on(&cluster, kind);
        let options = EntryOptions::new().tag(Tag::model("songs"));
        let value = cache
            .get_or_compute("count", options.clone(), || async {
                // Another instance's write lands while the query runs.
                writer.invalidate_tags([Tag::model("songs")]).await;
                "before the write".to_string()
            })
            .await;
        assert_eq!(*value, "before the write");
        assert_eq!(raw_get(&mut raw, "qcc:e:count").await, None, "{kind:?}");
        assert!(cache.get::<String>("count").await.is_none(), "{kind:?}");
        assert_eq!(cache.stats().wasted_computations, 1, "{kind:?}");
        // With nothing moving, the next computation is stored.
        let value = cache
            .get_or_compute("count", options, || async { "after".to_string() })
            .await;
        assert_eq!(*value, "after");
        assert!(raw_get(&mut raw, "qcc:e:count").await.is_some(), "{kind:?}");
        cache.clear().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patterns_namespaces_delete_and_clear_reach_every_master() {
    let Some(cluster) = start_cluster().await else {
        return;
    };
    for kind in KINDS {
        let cache = cache_on(&cluster, kind);
        const N: usize = 30;
        for i in 0..N {
            for key in [format!("user:{i}"), format!("song:{i}")] {
                cache
                    .set(&key, 1_u8, EntryOptions::new().namespace("ns_a"))
                    .await
                    .unwrap();
            }
            cache
                .set(
                    &format!("other:{i}"),
                    1_u8,
                    EntryOptions::new().namespace("ns_b"),
                )
                .await
                .unwrap();
        }
        for node in cluster.nodes() {
            assert!(
                !keys_on(node, "qcc:e:user:*").is_empty(),
                "{kind:?}: node {} holds some of the {N} user entries",
                node.port()
            );
        }

        assert_eq!(
            cache.invalidate_pattern("user:*").await.unwrap(),
            N,
            "{kind:?}"
        );
        for node in cluster.nodes() {
            assert!(
                keys_on(node, "qcc:e:user:*").is_empty(),
                "{kind:?}: node {} still holds user entries",
                node.port()
            );
        }
        let songs: usize = cluster
            .nodes()
            .iter()
            .map(|node| keys_on(node, "qcc:e:song:*").len())
            .sum();
        assert_eq!(songs, N, "{kind:?}: the pattern spared the others");
        assert!(cache.get::<u8>("user:3").await.is_none(), "{kind:?}");
        assert_eq!(cache.get::<u8>("song:3").await.as_deref(), Some(&1));

        cache.invalidate_namespace("ns_a").await;
        for i in 0..N {
            assert!(
                cache.get::<u8>(&format!("song:{i}")).await.is_none(),
                "{kind:?}"
            );
        }
        assert_eq!(cache.get::<u8>("other:3").await.as_deref(), Some(&1));

        assert!(cache.delete("other:3").await, "{kind:?}");
        assert!(cache.get::<u8>("other:3").await.is_none(), "{kind:?}");
        let others: usize = cluster
            .nodes()
            .iter()
            .map(|node| keys_on(node, "qcc:e:other:*").len())
            .sum();
        assert_eq!(others, N - 1, "{kind:?}");

        cache.clear().await;
        for node in cluster.nodes() {
            let left = keys_on(node, "qcc:*");
            assert!(
                left.is_empty(),
                "{kind:?}: clear removes entries and versions on node {}: {left:?}",
                node.port()
            );
        }
        assert_eq!(cache.stats().errors, 0, "{kind:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_and_versions_spread_over_the_masters() {
    let Some(cluster) = start_cluster().await else {
        return;
    };
    let cache = cache_on(&cluster, StoreKind::Redis);
    for i in 0..40 {
        cache
            .set(
                &format!("song:{i}"),
                i,
                EntryOptions::new().tag(Tag::row("songs", i)),
            )
            .await
            .unwrap();
    }
    let sizes: Vec<u64> = cluster
        .nodes()
        .iter()
        .map(|node| node.query(&redis::cmd("DBSIZE")))
        .collect();
    assert_eq!(
        sizes.iter().sum::<u64>(),
        40 + 40 + 2 + 1 + 1,
        "entries, row versions, the namespace's and the global model's, the removal marker, \
         the store epoch: {sizes:?}"
    );
    assert!(
        sizes.iter().filter(|&&n| n > 0).count() >= 2,
        "keys on at least two masters: {sizes:?}"
    );
    for pattern in ["qcc:e:*", "qcc:v:*"] {
        let holding = cluster
            .nodes()
            .iter()
            .filter(|node| !keys_on(node, pattern).is_empty())
            .count();
        assert!(holding >= 2, "{pattern} on {holding} master(s)");
    }
    for i in 0..40 {
        assert_eq!(
            cache.get::<i32>(&format!("song:{i}")).await.as_deref(),
            Some(&i)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_per_hit_miss_put_and_bump() {
    let Some(cluster) = start_cluster().await else {
        return;
    };
    let mut raw = raw_conn(&cluster).await;
    let cache = cache_on(&cluster, StoreKind::Redis);
    let options = EntryOptions::new().tags([
        Tag::model("songs"),
        Tag::row("songs", 7),
        Tag::bulk("songs"),
    ]);
    cache
        .get_or_compute("song:7", options.clone(), || async { "seven".to_string() })
        .await;
    assert!(cache.get::<String>("song:7").await.is_some());

    // The MGET of the versions is split by slot: one MGET per distinct slot.
    let stored = raw_get(&mut raw, "qcc:e:song:7").await.expect("stored");
    let versions = header_version_keys(&stored);
    // Three tags, the namespace's and the global "every model" tag, and the store epoch.
    assert_eq!(versions.len(), 6, "{versions:?}");
    assert!(
        versions.contains(&"qcc:v:querycache:#epoch".to_owned()),
        "every entry records the epoch: {versions:?}"
    );
    let tags = versions.len() as u64;
    let mut slots = HashSet::new();
    for key in &versions {
        let slot: u16 = cluster
            .node(0)
            .query(redis::cmd("CLUSTER").arg("KEYSLOT").arg(key));
        slots.insert(slot);
    }
    let removal_slot: u16 = cluster
        .node(0)
        .query(redis::cmd("CLUSTER").arg("KEYSLOT").arg("qcc:removals"));
    // A put also checks the removal marker.
    let put_slots = (slots.len() + usize::from(!slots.contains(&removal_slot))) as u64;
    let slots = slots.len() as u64;

    // Hit: round trip 1 = GET + PTTL pipelined to the entry's master; round trip 2 = the
    // MGETs, in parallel.
    reset_all(&cluster);
    for _ in 0..10 {
        assert!(cache.get::<String>("song:7").await.is_some());
    }
    // The incarnation check runs again at most once a second (CLUSTER SLOTS, INFO to each
    // master, GET of the epoch); a slow run may cross one.
    let checks = checks_since_reset(&cluster);
    assert_eq!(
        count_all(&cluster, "get"),
        10 + checks,
        "one GET per hit (and the epoch's per check)"
    );
    assert_eq!(
        count_all(&cluster, "pttl"),
        10,
        "one PTTL per hit, pipelined"
    );
    assert_eq!(
        count_all(&cluster, "mget"),
        10 * slots,
        "one MGET per version slot"
    );
    assert_eq!(count_all(&cluster, "evalsha"), 0);
    assert_eq!(count_all(&cluster, "eval"), 0);
    assert_eq!(count_all(&cluster, "unlink"), 0);

    // Miss: one round trip.
    reset_all(&cluster);
    assert!(cache.get::<String>("absent").await.is_none());
    assert_eq!(count_all(&cluster, "get"), 1 + checks_since_reset(&cluster));
    assert_eq!(count_all(&cluster, "pttl"), 1);
    assert_eq!(count_all(&cluster, "mget"), 0);

    // Put (snapshot, then check and SET): SET NX GET + PEXPIRE per tag, then the MGETs,
    // then the entry's SET, then a PEXPIRE … GT per version.
    reset_all(&cluster);
    cache
        .set("song:8", "eight".to_string(), options.clone())
        .await
        .unwrap();
    assert_eq!(
        count_all(&cluster, "set"),
        tags + 2,
        "a version SET per tag, the removal marker's, the entry"
    );
    assert_eq!(
        count_all(&cluster, "pexpire"),
        (tags + 1) + tags,
        "the snapshot's, per tag and for the removal marker; then the put's, per version it \
         records (extended to the entry's lifetime)"
    );
    assert_eq!(count_all(&cluster, "mget"), put_slots);

    // Bump: one SET XX per tag in parallel, then one PUBLISH.
    reset_all(&cluster);
    assert_eq!(
        cache
            .invalidate_tags([Tag::model("songs"), Tag::row("songs", 7)])
            .await,
        2
    );
    assert_eq!(count_all(&cluster, "set"), 2);
    assert_eq!(count_all(&cluster, "publish"), 1);
    assert_eq!(count_all(&cluster, "evalsha"), 0);
    assert_eq!(cache.stats().errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tiered_instances_see_each_others_writes() {
    let Some(cluster) = start_cluster().await else {
        return;
    };
    let a = cache_on(&cluster, StoreKind::Tiered);
    let b = cache_on(&cluster, StoreKind::Tiered);
    let options = EntryOptions::new().tag(Tag::model("songs"));
    assert!(b.get::<String>("shared").await.is_none());

    a.set("shared", "v1".to_string(), options.clone())
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            b.get::<String>("shared").await.as_deref() == Some(&"v1".to_string())
        })
        .await,
        "b reads a's write from the cluster"
    );
    // Now in b's memory tier too: only the invalidation message can drop it there.
    a.invalidate_tags([Tag::model("songs")]).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            b.get::<String>("shared").await.is_none()
        })
        .await,
        "a's invalidation reaches b's memory tier over pub/sub"
    );
    a.set("shared", "v2".to_string(), options).await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            b.get::<String>("shared").await.as_deref() == Some(&"v2".to_string())
        })
        .await,
        "b sees the new value"
    );
    assert_eq!(a.stats().errors + b.stats().errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_under_a_key_is_a_miss_then_recomputed() {
    let Some(cluster) = start_cluster().await else {
        return;
    };
    let mut raw = raw_conn(&cluster).await;
    for kind in KINDS {
        let cache = cache_on(&cluster, kind);
        let garbage: [&[u8]; 4] = [
            b"not a payload",
            b"QC2\n0\n",
            b"QC2\n1\n0\n0\nnot lz4",
            b"QC9\n0\n0\n0\n1",
        ];
        for (i, bytes) in garbage.iter().enumerate() {
            let () = raw.set("qcc:e:k", *bytes).await.expect("SET");
            assert!(cache.get::<u64>("k").await.is_none(), "{kind:?}: {i}");
            assert_eq!(cache.stats().errors, i as u64 + 1, "{kind:?}: counted");
        }
        let v = cache
            .get_or_compute("k", EntryOptions::new(), || async { 9_u64 })
            .await;
        assert_eq!(*v, 9);
        assert_eq!(cache.get::<u64>("k").await.as_deref(), Some(&9), "{kind:?}");
        let stored = raw_get(&mut raw, "qcc:e:k").await.expect("overwritten");
        assert!(stored.starts_with(b"QC2\n"), "{kind:?}");
        cache.clear().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_computation_across_instances_and_stale_reads_on_a_cluster() {
    let Some(cluster) = start_cluster().await else {
        return;
    };
    let instances: Vec<Cache> = (0..3)
        .map(|_| cache_on(&cluster, StoreKind::Tiered))
        .collect();
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    // Cold callers: a TTL no caller outlives however slowly the machine starts them (an
    // entry gone stale while callers still arrive would rightly be refreshed once more).
    let cold = EntryOptions::new()
        .ttl(Duration::from_secs(600))
        .tag(Tag::model("songs"));
    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..60 {
        let (cache, runs, options) = (instances[caller % 3].clone(), runs.clone(), cold.clone());
        callers.spawn(async move {
            cache
                .fetch("cluster:cold", options, move || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Ok::<_, String>(1_u32)
                })
                .await
                .map(|fetched| *fetched)
        });
    }
    while let Some(joined) = callers.join_next().await {
        assert_eq!(joined.unwrap(), Ok(1));
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "one computation across the cluster"
    );
    // Past the TTL: stale from the entry's header, with the timing line read through the
    // cluster's GET + PTTL path on the Redis-only store.
    let options = EntryOptions::new()
        .ttl(Duration::from_millis(500))
        .swr(Duration::from_secs(30))
        .tag(Tag::model("songs"));
    let seeded = instances[0]
        .fetch("cluster:stale", options.clone(), || async {
            Ok::<_, String>(1_u32)
        })
        .await
        .unwrap();
    assert_eq!((*seeded, seeded.is_stale()), (1, false));
    let redis_only = cache_on(&cluster, StoreKind::Redis);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let stale = redis_only
        .fetch("cluster:stale", options.clone(), || async {
            Ok::<_, String>(2_u32)
        })
        .await
        .unwrap();
    assert_eq!((*stale, stale.is_stale()), (1, true));
    // The background refresh lands; once it has expired too, an invalidation kills it.
    assert!(
        eventually(Duration::from_secs(5), || async {
            redis_only.get::<u32>("cluster:stale").await == Some(std::sync::Arc::new(2))
        })
        .await,
        "the refresh lands"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    // Invalidated: dead, not stale.
    redis_only.invalidate_tags([Tag::model("songs")]).await;
    let fresh = redis_only
        .fetch("cluster:stale", options, || async {
            Ok::<_, String>(3_u32)
        })
        .await
        .unwrap();
    assert_eq!((*fresh, fresh.is_stale()), (3, false));
}

/// Issue 20, item 1, on a cluster (plain commands instead of scripts): a version made for
/// a read that stores nothing lives minutes; an entry that records it extends it to its
/// own lifetime (`PEXPIRE … GT` on the version's master); a bump keeps that lifetime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_live_as_long_as_their_entries_on_a_cluster() {
    let Some(cluster) = start_cluster().await else {
        return;
    };
    let mut raw = raw_conn(&cluster).await;
    let cache = cache_on(&cluster, StoreKind::Redis);
    const MINUTE: i64 = 60_000;
    let tagged = || EntryOptions::new().tag(Tag::new("user:1").unwrap());
    let version = "qcc:v:user:1";

    let failed: Result<std::sync::Arc<u32>, &str> = cache
        .try_get_or_compute("user-1:failing", tagged(), || async { Err("no such user") })
        .await;
    assert!(failed.is_err());
    let provisional: i64 = raw.pttl(version).await.expect("PTTL");
    assert!(
        provisional > 0 && provisional <= 5 * MINUTE,
        "a version nobody recorded lives {provisional} ms"
    );

    let two_hours = Duration::from_secs(2 * 3600);
    cache
        .get_or_compute("user-1", tagged().ttl(two_hours), || async { 1_u32 })
        .await;
    let extended: i64 = raw.pttl(version).await.expect("PTTL");
    assert!(
        (119 * MINUTE..=122 * MINUTE).contains(&extended),
        "the version of a 2 h entry lives {extended} ms"
    );

    cache.invalidate_tags([Tag::new("user:1").unwrap()]).await;
    let bumped: i64 = raw.pttl(version).await.expect("PTTL");
    assert!(
        bumped > 0 && bumped <= extended,
        "the bumped version lives {bumped} ms (had {extended} ms)"
    );
    assert_eq!(cache.stats().errors, 0);
}

/// The store epoch on a cluster: a master restarted from its RDB file comes back with the
/// versions it had when it saved, so an entry recorded under a version bumped since would
/// be current again. Every entry records the epoch, which the first incarnation check after
/// the restart rotates (the master's `run_id` is new), so the entry is dead. Two instances:
/// `writer` bumped the tag; `idle` sent nothing while the master was down, and finds the new
/// incarnation by its periodic check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_restarted_from_its_snapshot_brings_back_no_invalidated_entry() {
    let Some(mut cluster) = start_cluster().await else {
        return;
    };
    let mut raw = raw_conn(&cluster).await;
    let writer = cache_on(&cluster, StoreKind::Redis);
    let idle = cache_on(&cluster, StoreKind::Redis);
    let tag = Tag::row("songs", 7);
    let version = "qcc:v:model:songs:7";
    writer
        .set(
            "song:7",
            "old title".to_string(),
            EntryOptions::new().tag(tag.clone()),
        )
        .await
        .unwrap();
    assert_eq!(
        idle.get::<String>("song:7")
            .await
            .as_deref()
            .map(String::as_str),
        Some("old title")
    );
    let holder = (0..cluster.nodes().len())
        .find(|&i| keys_on(cluster.node(i), version).contains(version))
        .expect("a master holds the tag's version");
    let saved: Option<String> = raw.get(version).await.expect("GET");
    let () = cluster.node(holder).query(&redis::cmd("SAVE"));
    // The bump reaches Redis after the save: the file keeps the old version. Nobody reads
    // the entry before the restart (a read would unlink it).
    writer.invalidate_tags([tag]).await;
    let bumped: Option<String> = raw.get(version).await.expect("GET");
    assert_ne!(bumped, saved, "the bump moved the version");
    tokio::task::block_in_place(|| {
        cluster.node_mut(holder).restart();
        cluster.wait_until_ok();
    });
    let restored: Option<String> = cluster.node(holder).query(redis::cmd("GET").arg(version));
    assert_eq!(
        restored, saved,
        "the restarted master loaded the version from before the bump"
    );
    // Either instance's check rotates the epoch, for both: the epoch's version is one key.
    // Their reads go on meanwhile (the periodic check begins with an operation).
    let restarted = Instant::now();
    let rotated = eventually(Duration::from_secs(5), || async {
        let _ = writer.get::<String>("song:7").await;
        let _ = idle.get::<String>("song:7").await;
        writer.health().await.redis_epoch_rotations + idle.health().await.redis_epoch_rotations >= 1
    })
    .await;
    assert!(
        rotated,
        "no instance found the restarted master a new incarnation"
    );
    eprintln!(
        "the epoch rotated {:?} after the restart",
        restarted.elapsed()
    );
    let errors = writer.stats().errors + idle.stats().errors;
    // Once dead, dead: no read brings it back.
    for _ in 0..20 {
        assert!(idle.get::<String>("song:7").await.is_none());
        assert!(writer.get::<String>("song:7").await.is_none());
    }
    assert_eq!(
        writer.stats().errors + idle.stats().errors,
        errors,
        "those reads were answered by Redis, not failed"
    );
}
