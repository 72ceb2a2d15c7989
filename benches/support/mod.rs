//! What the benchmarks share: the payload (a song of about 1 KB, as JSON), the key set and
//! the order keys are read in.

#![allow(dead_code)]

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Private `redis-server`s on free loopback ports, stopped on drop: the test suite's harness.
#[path = "../../tests/it/support/redis.rs"]
pub mod redis;
/// The example app's schema (users and songs), for the query benchmarks.
#[path = "../../examples/support/schema.rs"]
pub mod schema;
#[path = "../../tests/it/support/services.rs"]
pub mod services;
/// Throwaway databases on the shared PostgreSQL (and MariaDB), dropped on drop: the test
/// suite's harness.
#[path = "../../tests/it/support/throwaway.rs"]
pub mod throwaway;

/// Songs in the key set.
pub const KEYS: u32 = 10_000;

/// A song of about 1 KB: id, title, artist, ~900 bytes of content, a few tags, timestamps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Song {
    pub id: u32,
    pub title: String,
    pub artist: String,
    pub content: String,
    pub tags: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Song {
    pub fn new(id: u32) -> Song {
        let line = format!("la la la, song number {id}, ");
        let content: String = line.chars().cycle().take(900).collect();
        Song {
            id,
            title: format!("Song {id}"),
            artist: format!("Artist {}", id % 97),
            content,
            tags: vec![
                "pop".into(),
                format!("decade:{}", 1960 + (id % 7) * 10),
                "live".into(),
            ],
            created_at: "2026-11-24T05:00:00Z".into(),
            updated_at: "2026-11-24T05:00:00Z".into(),
        }
    }

    /// The JSON size of a song: about 1 KB (checked by every bench before it measures).
    pub fn json_len(id: u32) -> usize {
        serde_json::to_vec(&Song::new(id)).map_or(0, |json| json.len())
    }

    pub fn shared(id: u32) -> Arc<Song> {
        Arc::new(Song::new(id))
    }
}

/// `KEYS` ids in a fixed pseudo-random order (a full-period LCG permutation): every bench
/// reads the same sequence, with no RNG cost inside the measured loop.
///
/// `QUERYCACHE_BENCH_HOT_KEYS=n` keeps the ids below `n` only (same order): with a few
/// dozen keys everything stays in the CPU's caches, which separates the instructions a hit
/// runs from the cache misses it takes (a profiling aid; the figures of BENCHMARKS.md use
/// all `KEYS`).
pub fn read_order() -> Vec<u32> {
    let mut order = full_order();
    if let Some(hot) = std::env::var("QUERYCACHE_BENCH_HOT_KEYS")
        .ok()
        .and_then(|n| n.parse::<u32>().ok())
    {
        order.retain(|&id| id < hot.max(1));
    }
    order
}

fn full_order() -> Vec<u32> {
    let mut order: Vec<u32> = (0..KEYS).collect();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..order.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = (state >> 33) as usize % (i + 1);
        order.swap(i, j);
    }
    order
}

/// Cycles through `read_order()`.
pub struct Reader {
    order: Vec<u32>,
    next: usize,
}

impl Reader {
    pub fn new() -> Reader {
        Reader {
            order: read_order(),
            next: 0,
        }
    }

    #[inline]
    pub fn next_id(&mut self) -> u32 {
        let id = self.order[self.next];
        self.next = (self.next + 1) % self.order.len();
        id
    }
}
