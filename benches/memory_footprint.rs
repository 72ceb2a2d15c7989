//! Question 7: process memory per cached 1 KB entry at 100 000 entries, counted by a counting
//! global allocator (live bytes), and whether the memory store's byte budget holds.
//!
//! Not a timing: it prints its figures. Run: `cargo bench --bench memory_footprint`
//! (`cargo test --benches` runs it with 10 000 entries).

#[path = "support/mod.rs"]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};

use querycache::{Cache, EntryOptions, Tag};
use support::Song;

/// The system allocator, counting the bytes live at any moment.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to `System` with the caller's own arguments, which satisfy
// `System`'s contract exactly as they satisfy ours; the counter is a side effect.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn main() {
    let entries: usize = if std::env::args().any(|arg| arg == "--bench") {
        100_000
    } else {
        10_000
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");

    // The values alone: what `entries` songs cost, held as the cache holds them.
    let before = live();
    let values: Vec<Arc<Song>> = (0..entries as u32).map(Song::shared).collect();
    let value_bytes = (live() - before) as f64 / entries as f64;
    drop(values);

    // The same songs in the memory store (budget large enough to hold them all), each
    // tagged with its table and its row, as `#[cached_query(row = id)]` tags them.
    let options = EntryOptions::new().ttl_secs(3600).tag(Tag::model("songs"));
    let cache = with_budget(1 << 30);
    let cached_bytes = fill(&runtime, &cache, entries, |id| {
        options.clone().tag(Tag::row("songs", id))
    }) as f64
        / entries as f64;
    // Again with the table's tag alone: what a row tag costs is the difference.
    let table_only = with_budget(1 << 30);
    let table_only_bytes =
        fill(&runtime, &table_only, entries, |_| options.clone()) as f64 / entries as f64;
    for held in [&cache, &table_only] {
        assert_eq!(
            held.stats().keys_count,
            entries as u64,
            "every entry is held"
        );
    }
    let overhead = cached_bytes - value_bytes;
    let accounted = cache.stats().memory_usage_bytes as f64 / entries as f64;

    // A budget smaller than the entries: it must hold.
    let budget: u64 = 16 << 20;
    let small = with_budget(budget);
    let small_live = fill(&runtime, &small, entries, |_| options.clone());
    let small_stats = small.stats();

    println!(
        "memory footprint, {entries} entries of a {} B (JSON) song",
        Song::json_len(1)
    );
    println!("  value alone (Arc<Song> and its strings)   {value_bytes:8.1} B per entry");
    println!("  cached in the memory store (live bytes)   {cached_bytes:8.1} B per entry");
    println!("  overhead beyond the value                 {overhead:8.1} B per entry");
    println!(
        "    of which the row tag (same entries without it: {:.1} B)   {:8.1} B per entry",
        table_only_bytes - value_bytes,
        cached_bytes - table_only_bytes
    );
    println!("  what the budget counts for it             {accounted:8.1} B per entry");
    println!(
        "  budget {} MiB: {} entries kept, {} B counted, {} B live ({})",
        budget >> 20,
        small_stats.keys_count,
        small_stats.memory_usage_bytes,
        small_live,
        if small_stats.memory_usage_bytes <= budget && (small_live as u64) <= budget + budget / 2 {
            "held"
        } else {
            "EXCEEDED"
        }
    );
    assert!(
        small_stats.memory_usage_bytes <= budget,
        "the budget is never exceeded"
    );
}

/// A memory cache holding at most `budget` bytes.
fn with_budget(budget: u64) -> Cache {
    Cache::builder()
        .memory_max_bytes(budget)
        .build()
        .expect("valid configuration")
}

/// Stores `entries` songs in `cache`, each with `options(id)`; the live bytes that took.
fn fill(
    runtime: &tokio::runtime::Runtime,
    cache: &Cache,
    entries: usize,
    options: impl Fn(u32) -> EntryOptions,
) -> isize {
    let before = live();
    runtime.block_on(async {
        for id in 0..entries as u32 {
            cache
                .set(&format!("songs:{id}"), Song::new(id), options(id))
                .await
                .expect("a valid entry");
        }
    });
    live() - before
}
