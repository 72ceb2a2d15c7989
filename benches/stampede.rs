//! Question 5: a stampede — 1 000 concurrent callers on one cold key. How many times the
//! query runs (querycache: must be 1), and how long until every caller has its value;
//! beside the `cached` crate's `#[cached]` as it comes (no synchronization: every caller
//! runs the query) and with `sync_writes = "default"` (callers of a cold key queue on a lock),
//! and moka's `get_with` (its single-flight). The query is a stand-in that takes 1 ms and
//! counts its calls.
//!
//! Run: `cargo bench --bench stampede`.

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use querycache::{Cache, EntryOptions};
use support::Song;

const CALLERS: usize = 1_000;

/// Calls of the stand-in query, per benchmark.
static QUERIES: AtomicUsize = AtomicUsize::new(0);
/// A fresh key per round: every round starts cold.
static ROUND: AtomicU32 = AtomicU32::new(0);

async fn query(id: u32) -> Arc<Song> {
    QUERIES.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1)).await;
    Song::shared(id)
}

#[cached::proc_macro::cached(size = 100_000)]
async fn cached_plain(id: u32) -> Arc<Song> {
    query(id).await
}

#[cached::proc_macro::cached(size = 100_000, sync_writes = "default")]
async fn cached_synchronized(id: u32) -> Arc<Song> {
    query(id).await
}

static CACHE: LazyLock<Cache> = LazyLock::new(Cache::new);

/// Runs `rounds` stampedes of `CALLERS` tasks calling `call(round)`; returns the total time
/// and checks how many queries each round made.
fn stampede<F, Fut>(
    runtime: &tokio::runtime::Runtime,
    rounds: u64,
    call: F,
    queries_per_round: Option<usize>,
) -> Duration
where
    F: Fn(u32) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Arc<Song>> + Send + 'static,
{
    let mut total = Duration::ZERO;
    for _ in 0..rounds {
        let round = ROUND.fetch_add(1, Ordering::SeqCst);
        QUERIES.store(0, Ordering::SeqCst);
        let started = Instant::now();
        runtime.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..CALLERS {
                let call = call.clone();
                tasks.spawn(async move { black_box(call(round).await) });
            }
            while let Some(joined) = tasks.join_next().await {
                assert_eq!(joined.expect("caller finished").id, round);
            }
        });
        total += started.elapsed();
        if let Some(expected) = queries_per_round {
            assert_eq!(
                QUERIES.load(Ordering::SeqCst),
                expected,
                "queries in one stampede"
            );
        }
    }
    total
}

fn stampedes(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let moka: moka::future::Cache<u32, Arc<Song>> = moka::future::Cache::new(100_000);

    // How many queries a stampede makes without single-flight, said once.
    stampede(&runtime, 1, cached_plain, None);
    eprintln!(
        "cached #[cached] as it comes: {} queries for {CALLERS} callers of one cold key",
        QUERIES.load(Ordering::SeqCst)
    );

    let mut group = c.benchmark_group("stampede_1000_callers");
    group.sample_size(10);
    group.bench_function("querycache get_or_compute (1 query)", |b| {
        b.iter_custom(|rounds| {
            stampede(
                &runtime,
                rounds,
                |id| async move {
                    CACHE
                        .get_or_compute(&format!("song:{id}"), EntryOptions::new(), || query(id))
                        .await
                        .as_ref()
                        .clone()
                },
                Some(1),
            )
        });
    });
    group.bench_function("moka get_with (1 query)", |b| {
        let moka = moka.clone();
        b.iter_custom(|rounds| {
            let moka = moka.clone();
            stampede(
                &runtime,
                rounds,
                move |id| {
                    let moka = moka.clone();
                    async move { moka.get_with(id, query(id)).await }
                },
                Some(1),
            )
        });
    });
    group.bench_function("cached #[cached] sync_writes (1 query)", |b| {
        b.iter_custom(|rounds| stampede(&runtime, rounds, cached_synchronized, Some(1)));
    });
    group.bench_function("cached #[cached] as it comes (up to 1 000 queries)", |b| {
        b.iter_custom(|rounds| stampede(&runtime, rounds, cached_plain, None));
    });
    group.finish();
}

criterion_group!(benches, stampedes);
criterion_main!(benches);
