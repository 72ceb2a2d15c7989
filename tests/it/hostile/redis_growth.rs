//! Issue 20, item 1: a client cannot grow Redis. The songs app on a tiered store in front
//! of its own redis-server is sent ids its handlers reject (`/songs/99999999991`, not an
//! `i32`) and ids that are valid but absent; the first must leave no key at all, the
//! second only keys that die within minutes (version keys made for a read that stored
//! nothing live [`PROVISIONAL`], absent rows are kept at most `CACHE_NEGATIVE_TTL`).
//!
//! `QUERYCACHE_HOSTILE_REQUESTS=10000 cargo test --all-features -- hostile::redis_growth
//! --nocapture` prints Redis's memory per 10 000 requests of each kind (the README's
//! figure); the suite sends fewer.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;

use crate::support::Db;
use crate::support::redis::RedisServer;
use crate::support::songs::SongsApp;
use crate::support::stores::Kind;

/// How long a version key made by a read that stores nothing lives (the store's
/// `PROVISIONAL_VERSION_TTL_MS`).
const PROVISIONAL: Duration = Duration::from_secs(5 * 60);
/// `CACHE_NEGATIVE_TTL`'s default.
const NEGATIVE_TTL: Duration = Duration::from_secs(60);

fn requests() -> usize {
    std::env::var("QUERYCACHE_HOSTILE_REQUESTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500)
}

fn keys(server: &RedisServer) -> HashSet<String> {
    server
        .query::<Vec<String>>(redis::cmd("KEYS").arg("*"))
        .into_iter()
        .collect()
}

fn used_memory(server: &RedisServer) -> i64 {
    let info: String = server.query(redis::cmd("INFO").arg("memory"));
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("INFO memory says used_memory")
}

/// Sends GET `paths` (16 at a time) and checks every answer has `status`.
async fn send_all(app: &SongsApp, paths: Vec<String>, status: StatusCode) {
    let answers: Vec<(String, StatusCode)> = futures_util::stream::iter(paths)
        .map(|path| async move {
            let answer = app.get(&path).await;
            (path, answer.status)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for (path, got) in answers {
        assert_eq!(got, status, "GET {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_ids_leave_redis_nothing_or_keys_that_die_within_minutes() {
    let Some(app) = SongsApp::start(Kind::Tiered, Db::Sqlite).await else {
        return;
    };
    let server = app
        .cache
        .server
        .as_ref()
        .expect("a tiered app has its server");
    let author = app.user("Grower").await;
    let song = app.song(author, "Known").await;
    // Warm: the routes' shared tags (`model:songs#bulk`, the epoch...) exist.
    assert_eq!(
        app.get(&format!("/api/v1/songs/{song}")).await.status,
        StatusCode::OK
    );
    let n = requests();

    // 1. Ids the handlers reject (not an i32): a 400 each, and not one key more.
    let before = keys(server);
    let memory_before = used_memory(server);
    let rejected: Vec<String> = (0..n)
        .map(|i| match i % 3 {
            0 => format!("/api/v1/songs/{}", 99_999_999_991_u64 + i as u64),
            1 => format!("/api/v1/users/{}", 88_888_888_881_u64 + i as u64),
            _ => format!("/api/v1/users/x{i}/songs"),
        })
        .collect();
    send_all(&app, rejected, StatusCode::BAD_REQUEST).await;
    let rejected_keys: Vec<String> = keys(server).difference(&before).cloned().collect();
    let rejected_bytes = used_memory(server) - memory_before;

    // 2. Valid ids of absent rows: a 404 each; what they leave dies within minutes.
    let before = keys(server);
    let memory_before = used_memory(server);
    let absent: Vec<String> = (0..n)
        .map(|i| format!("/api/v1/songs/{}", 1_000_000 + i))
        .collect();
    send_all(&app, absent, StatusCode::NOT_FOUND).await;
    let added: Vec<String> = keys(server).difference(&before).cloned().collect();
    let absent_bytes = used_memory(server) - memory_before;
    let per_10k = |bytes: i64| bytes as f64 * 10_000.0 / n as f64 / 1024.0;
    eprintln!(
        "Redis growth per 10 000 hostile requests ({n} sent of each kind): rejected ids \
         {:.0} KiB, {} keys; absent ids {:.0} KiB, {} keys",
        per_10k(rejected_bytes),
        rejected_keys.len() * 10_000 / n,
        per_10k(absent_bytes),
        added.len() * 10_000 / n,
    );
    assert!(
        rejected_keys.is_empty(),
        "{n} rejected requests added {} keys to Redis, e.g. {:?}",
        rejected_keys.len(),
        rejected_keys.iter().take(5).collect::<Vec<_>>()
    );
    assert!(
        added.len() <= 3 * n,
        "{n} absent ids added {} keys (more than 3 each)",
        added.len()
    );
    for key in &added {
        let pttl: i64 = server.query(redis::cmd("PTTL").arg(key));
        let bound = if key.contains(":e:") {
            NEGATIVE_TTL
        } else {
            PROVISIONAL
        };
        assert!(
            pttl > 0 && pttl <= bound.as_millis() as i64,
            "{key} lives {pttl} ms after {n} requests for absent ids (bound: {bound:?})"
        );
    }
}
