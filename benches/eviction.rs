//! Eviction quality (issue 25): the hit rate of the memory store's map on a Zipf workload,
//! beside the maps it was measured against — quick_cache (the map the store used before,
//! CLOCK-Pro) and moka (TinyLFU) — each holding the same number of entries.
//!
//! 100 000 keys, reads drawn from Zipf(s) for s = 0.8, 1.0 and 1.2; the store's byte budget
//! holds about 10 % of the keys, and the other maps get that many entries (what the store
//! kept once full). Every map sees the same reads; a miss inserts the key. Hit rates are
//! over the second half of the reads (the first half fills the maps).
//!
//! Run: `cargo bench --all-features --bench eviction` (about a minute; prints a table,
//! asserts that the store's hit rate is within 6 points of the best of the others: it is
//! 4.4 to 4.9 under quick_cache at s = 0.8 today).

use querycache::{Cache, EntryOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const KEYS: u32 = 100_000;

/// Zipf(s) over `0..n`: cumulative weights, searched with a uniform draw.
struct Zipf(Vec<f64>);

impl Zipf {
    fn new(n: u32, s: f64) -> Zipf {
        let mut total = 0.0;
        Zipf(
            (1..=n)
                .map(|rank| {
                    total += 1.0 / f64::from(rank).powf(s);
                    total
                })
                .collect(),
        )
    }

    fn sample(&self, rng: &mut StdRng) -> u32 {
        let draw = rng.random::<f64>() * self.0.last().copied().unwrap_or(1.0);
        u32::try_from(self.0.partition_point(|&c| c < draw)).unwrap_or(0)
    }
}

/// Hits over the second half of `reads`, for a map read through `get` and filled by `put`.
fn hit_rate(reads: &[u32], mut get: impl FnMut(u32) -> bool, mut put: impl FnMut(u32)) -> f64 {
    let half = reads.len() / 2;
    let mut hits = 0_u64;
    for (i, &key) in reads.iter().enumerate() {
        let hit = get(key);
        if !hit {
            put(key);
        }
        if i >= half && hit {
            hits += 1;
        }
    }
    hits as f64 / (reads.len() - half) as f64
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` (CI) runs it shorter.
    let full = std::env::args().any(|arg| arg == "--bench");
    let reads_count = if full { 2_000_000 } else { 1_000_000 };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let value = "x".repeat(200);
    println!("eviction: {KEYS} keys, {reads_count} reads, hit rate over the second half");
    println!(
        "{:<6} {:>8} {:>12} {:>12} {:>12}",
        "zipf s", "entries", "querycache", "quick_cache", "moka"
    );
    let mut worst_gap = 0.0_f64;
    for s in [0.8, 1.0, 1.2] {
        let zipf = Zipf::new(KEYS, s);
        let mut rng = StdRng::seed_from_u64(7);
        let reads: Vec<u32> = (0..reads_count).map(|_| zipf.sample(&mut rng)).collect();

        // The store: a budget of about a tenth of the keys' weight.
        let probe = Cache::builder().build().expect("a cache");
        runtime
            .block_on(probe.set("probe:0", value.clone(), EntryOptions::new()))
            .expect("stored");
        let per_entry = probe.stats().memory_usage_bytes.max(1);
        let cache = Cache::builder()
            .memory_max_bytes(per_entry * u64::from(KEYS) / 10)
            .build()
            .expect("a cache");
        let ours = runtime.block_on(async {
            let half = reads.len() / 2;
            let mut hits = 0_u64;
            for (i, &key) in reads.iter().enumerate() {
                let key = format!("probe:{key}");
                let hit = cache.get::<String>(&key).await.is_some();
                if !hit {
                    cache
                        .set(&key, value.clone(), EntryOptions::new())
                        .await
                        .expect("stored");
                }
                if i >= half && hit {
                    hits += 1;
                }
            }
            hits as f64 / (reads.len() - half) as f64
        });
        let entries = cache.stats().keys_count;

        let quick_cache = quick_cache::sync::Cache::<u32, ()>::new(entries as usize);
        let theirs = hit_rate(
            &reads,
            |key| quick_cache.get(&key).is_some(),
            |key| quick_cache.insert(key, ()),
        );
        let moka = moka::future::Cache::<u32, ()>::new(entries);
        let moka_rate = hit_rate(
            &reads,
            |key| runtime.block_on(moka.get(&key)).is_some(),
            |key| {
                runtime.block_on(async {
                    moka.insert(key, ()).await;
                    moka.run_pending_tasks().await;
                });
            },
        );
        println!(
            "{s:<6} {entries:>8} {:>11.1}% {:>11.1}% {:>11.1}%",
            ours * 100.0,
            theirs * 100.0,
            moka_rate * 100.0
        );
        worst_gap = worst_gap.max(theirs.max(moka_rate) - ours);
    }
    println!(
        "largest gap to the best other map: {:.1} points",
        worst_gap * 100.0
    );
    // Where it stands (BENCHMARKS.md, "Eviction quality"): 4.4 to 4.9 points under
    // quick_cache at s = 0.8, less at higher skew. The check keeps it from getting worse.
    assert!(
        worst_gap <= 0.06,
        "the store's hit rate is more than 6 points under the best other map"
    );
}
