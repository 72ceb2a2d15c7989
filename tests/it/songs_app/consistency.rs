//! Invariant 1 through HTTP: a read issued after a write's response has arrived never
//! returns data from before that write — 50 concurrent clients, hundreds of writes, by-id
//! reads, lists, per-author lists and counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use rand::Rng;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{DB, STORE};
use crate::support::songs::SongsApp;

const SONGS: usize = 8;
const CLIENTS: usize = 50;
const OPS_PER_CLIENT: usize = 40;

/// The version a song's title carries: `"<index> v<version>"`.
fn version_of(title: &str) -> i64 {
    title
        .rsplit_once(" v")
        .and_then(|(_, v)| v.parse().ok())
        .expect("a versioned title")
}

struct Shared {
    ids: Vec<i64>,
    author: i64,
    /// Per song: the highest version whose PUT has answered.
    committed: Vec<AtomicI64>,
    /// Per song: the writers' lock, so that versions of one song are written in order.
    writers: Vec<tokio::sync::Mutex<i64>>,
    /// Songs whose POST has answered (the count may only grow: nothing is deleted).
    created: AtomicU64,
    reads: AtomicU64,
    writes: AtomicU64,
}

fn check_titles(shared: &Shared, floors: &[i64], songs: &Value, what: &str) {
    for song in songs.as_array().expect("a list") {
        let id = song["id"].as_i64().unwrap();
        if let Some(index) = shared.ids.iter().position(|&i| i == id) {
            let seen = version_of(song["title"].as_str().unwrap());
            assert!(
                seen >= floors[index],
                "{what}: song {id} at v{seen}, but v{} had been written before the read began",
                floors[index]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_read_after_a_write_returns_pre_write_data() {
    let Some(app) = SongsApp::start(STORE, DB).await else {
        return;
    };
    let app = Arc::new(app);
    let author = app.user("Writer").await;
    let mut ids = Vec::new();
    for index in 0..SONGS {
        ids.push(app.song(author, &format!("{index} v0")).await);
    }
    let shared = Arc::new(Shared {
        ids,
        author,
        committed: (0..SONGS).map(|_| AtomicI64::new(0)).collect(),
        writers: (0..SONGS).map(|_| tokio::sync::Mutex::new(0)).collect(),
        created: AtomicU64::new(SONGS as u64),
        reads: AtomicU64::new(0),
        writes: AtomicU64::new(0),
    });

    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let app = Arc::clone(&app);
        let shared = Arc::clone(&shared);
        clients.push(tokio::spawn(async move {
            for _ in 0..OPS_PER_CLIENT {
                let (op, index) = {
                    let mut rng = rand::rng();
                    (rng.random_range(0..100u32), rng.random_range(0..SONGS))
                };
                let id = shared.ids[index];
                match op {
                    // A write: the next version of one song.
                    0..25 => {
                        let mut version = shared.writers[index].lock().await;
                        *version += 1;
                        let title = format!("{index} v{version}");
                        let answer = app
                            .put(&format!("/api/v1/songs/{id}"), json!({"title": title}))
                            .await;
                        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
                        shared.committed[index].fetch_max(*version, Ordering::SeqCst);
                        shared.writes.fetch_add(1, Ordering::Relaxed);
                    }
                    // A new song (the count grows).
                    25..28 => {
                        app.song(shared.author, "extra v0").await;
                        shared.created.fetch_add(1, Ordering::SeqCst);
                        shared.writes.fetch_add(1, Ordering::Relaxed);
                    }
                    // A by-id read.
                    28..70 => {
                        let floor = shared.committed[index].load(Ordering::SeqCst);
                        let answer = app.get(&format!("/api/v1/songs/{id}")).await;
                        let seen = version_of(answer.data()["title"].as_str().unwrap());
                        assert!(
                            seen >= floor,
                            "GET /songs/{id} returned v{seen} after v{floor} was written ({})",
                            answer.x_cache()
                        );
                        shared.reads.fetch_add(1, Ordering::Relaxed);
                    }
                    // The newest songs, and the author's list.
                    70..90 => {
                        let floors: Vec<i64> = shared
                            .committed
                            .iter()
                            .map(|c| c.load(Ordering::SeqCst))
                            .collect();
                        let path = if op % 2 == 0 {
                            "/api/v1/songs?limit=100".to_owned()
                        } else {
                            format!("/api/v1/users/{}/songs", shared.author)
                        };
                        let answer = app.get(&path).await;
                        check_titles(&shared, &floors, answer.data(), &path);
                        shared.reads.fetch_add(1, Ordering::Relaxed);
                    }
                    // The count.
                    _ => {
                        let floor = shared.created.load(Ordering::SeqCst);
                        let answer = app.get("/api/v1/songs/count").await;
                        let count = answer.data()["count"].as_u64().unwrap();
                        assert!(
                            count >= floor,
                            "count {count} after {floor} songs were created"
                        );
                        shared.reads.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for client in clients {
        client
            .await
            .expect("a client panicked: see its message above");
    }
    let writes = shared.writes.load(Ordering::Relaxed);
    let reads = shared.reads.load(Ordering::Relaxed);
    assert!(writes >= 300, "hundreds of writes: {writes}");
    assert!(reads >= 1000, "reads: {reads}");
    let stats = app.cache.stats();
    assert!(
        stats.hits > 0,
        "the cache served some of the reads: {stats:?}"
    );
    eprintln!(
        "{writes} writes, {reads} reads, {} hits, {} misses",
        stats.hits, stats.misses
    );
}
