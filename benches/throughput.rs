//! Question 6: throughput — 2 tasks on a 2-worker tokio runtime, 95 % reads and 5 % writes
//! over 10 000 songs with Zipf-distributed ids (s = 1): operations per second and hit rate,
//! on the memory store and on the tiered store (a private redis-server). A read is a cached
//! query of one song (`get_or_compute`, depending on its row); a write invalidates that row,
//! as an `UPDATE songs ... WHERE id = ?` through the ORM would.
//!
//! Run: `cargo bench --all-features --bench throughput`.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use querycache::{Cache, EntryOptions, Tag, config::StoreKind};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::{KEYS, Song};

/// Zipf(s = 1) over `0..KEYS`: the cumulative weights, searched with a uniform draw.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new() -> Zipf {
        let mut total = 0.0;
        let cumulative = (1..=KEYS)
            .map(|rank| {
                total += 1.0 / f64::from(rank);
                total
            })
            .collect::<Vec<_>>();
        Zipf { cumulative }
    }

    fn sample(&self, rng: &mut StdRng) -> u32 {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let draw = rng.random::<f64>() * total;
        self.cumulative.partition_point(|&c| c < draw) as u32
    }
}

/// Runs `ops` operations split over 2 tasks; returns the time they took.
fn run(runtime: &tokio::runtime::Runtime, cache: &Cache, zipf: &Arc<Zipf>, ops: u64) -> Duration {
    let started = Instant::now();
    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for worker in 0..2_u64 {
            let (cache, zipf) = (cache.clone(), Arc::clone(zipf));
            tasks.spawn(async move {
                let mut rng = StdRng::seed_from_u64(worker ^ ops);
                for _ in 0..ops / 2 {
                    let id = zipf.sample(&mut rng);
                    if rng.random_range(0..100) < 5 {
                        cache.invalidate_tags([Tag::row("songs", id)]).await;
                    } else {
                        let options = EntryOptions::new()
                            .ttl_secs(3600)
                            .tag(Tag::row("songs", id))
                            .tag(Tag::bulk("songs"));
                        let song = cache
                            .get_or_compute(&format!("song:{id}"), options, || async move {
                                Song::shared(id)
                            })
                            .await;
                        std::hint::black_box(song);
                    }
                }
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.expect("worker finished");
        }
    });
    started.elapsed()
}

fn throughput(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let zipf = Arc::new(Zipf::new());
    let server = support::redis::RedisServer::start();
    let mut stores = vec![("memory", Cache::new())];
    if let Some(server) = &server {
        let tiered = Cache::builder()
            .redis_url(server.url())
            .store(StoreKind::Tiered)
            .redis_timeout(Duration::from_secs(2))
            .build()
            .expect("valid configuration");
        stores.push(("tiered", tiered));
    }
    let mut group = c.benchmark_group("throughput_95_read_5_write_zipf");
    group.throughput(Throughput::Elements(1));
    for (name, cache) in &stores {
        group.bench_function(*name, |b| {
            b.iter_custom(|ops| run(&runtime, cache, &zipf, ops.max(2)));
        });
        let stats = cache.stats();
        eprintln!(
            "throughput on {name}: hit rate {:.1} % over {} lookups",
            stats.hit_rate * 100.0,
            stats.hits + stats.misses
        );
    }
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
