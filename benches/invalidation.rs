//! Question 4: invalidating a table — `invalidate_tags([model:songs])` — with 1 k, 100 k and
//! 1 M cached entries depending on it, on the memory store and on the Redis store (a private
//! redis-server). Tag versioning makes it O(tags), not O(entries): the time should not grow
//! with the entries.
//!
//! Run: `cargo bench --bench invalidation --features redis` (`cargo test --benches` runs it
//! once, with 1 k and 10 k entries).

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use querycache::{Cache, EntryOptions, Tag, config::StoreKind};

/// Entry counts: the under `cargo bench`, small ones in criterion's test mode.
fn sizes() -> Vec<usize> {
    if std::env::args().any(|arg| arg == "--bench") {
        vec![1_000, 100_000, 1_000_000]
    } else {
        vec![1_000, 10_000]
    }
}

/// Fills `cache` with `n` entries that depend on `model:songs` (64 writers at a time).
fn fill(runtime: &tokio::runtime::Runtime, cache: &Cache, n: usize) {
    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for writer in 0..64 {
            let cache = cache.clone();
            tasks.spawn(async move {
                let options = EntryOptions::new().ttl_secs(3600).tag(Tag::model("songs"));
                for i in (writer..n).step_by(64) {
                    cache
                        .set(&format!("songs:{i}"), i as u64, options.clone())
                        .await
                        .expect("a valid entry");
                }
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.expect("writer finished");
        }
    });
}

fn invalidation(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let server = support::redis::RedisServer::start();
    let mut group = c.benchmark_group("invalidate_model_tag");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(3));
    for n in sizes() {
        let memory = Cache::builder()
            .memory_max_bytes(2 << 30)
            .build()
            .expect("valid configuration");
        fill(&runtime, &memory, n);
        assert_eq!(memory.stats().keys_count, n as u64, "every entry is held");
        group.bench_with_input(BenchmarkId::new("memory", n), &n, |b, _| {
            b.to_async(&runtime)
                .iter(|| async { black_box(memory.invalidate_tags([Tag::model("songs")]).await) });
        });
        drop(memory);
        let Some(server) = &server else { continue };
        let redis = Cache::builder()
            .redis_url(server.url())
            .store(StoreKind::Redis)
            .key_prefix(format!("bench{n}"))
            .redis_timeout(Duration::from_secs(2))
            .build()
            .expect("valid configuration");
        fill(&runtime, &redis, n);
        let stats = redis.stats();
        assert_eq!(
            (stats.sets, stats.errors),
            (n as u64, 0),
            "every entry is in Redis"
        );
        group.bench_with_input(BenchmarkId::new("redis", n), &n, |b, _| {
            b.to_async(&runtime)
                .iter(|| async { black_box(redis.invalidate_tags([Tag::model("songs")]).await) });
        });
    }
    group.finish();
}

criterion_group!(benches, invalidation);
criterion_main!(benches);
