//! An application that exposes its own metrics with prometheus-client 0.26 and registers the
//! cache's into the same registry: a miss, a hit, a write (its tag invalidated), a miss;
//! then the exposition must show them, with the histogram's `+Inf` bucket.

use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use querycache::{Cache, EntryOptions, Tag};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cache = Cache::new();
    let mut registry = Registry::with_prefix("app");
    let requests = Counter::<u64>::default();
    registry.register("requests", "Requests served", requests.clone());
    cache.register_metrics(registry.sub_registry_with_prefix("querycache"));

    let runs = AtomicUsize::new(0);
    let options = || EntryOptions::new().tags([Tag::row("songs", "7")]);
    let read = async || {
        requests.inc();
        cache
            .get_or_compute("song:7", options(), async || {
                runs.fetch_add(1, Ordering::SeqCst);
                "Blue in Green".to_owned()
            })
            .await
    };
    read().await;
    read().await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the second read is a hit");
    cache.invalidate_tags([Tag::row("songs", "7")]).await; // the write
    read().await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "the write invalidated the entry"
    );

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    print!("{text}");
    let value = |series: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok())
            .ok_or_else(|| format!("no series {series} in the exposition"))
    };
    assert_eq!(value("app_requests_total ")?, 3.0);
    assert_eq!(
        value("app_querycache_hits_total{namespace=\"default\",tier=\"memory\"} ")?,
        1.0
    );
    assert_eq!(
        value("app_querycache_misses_total{namespace=\"default\"} ")?,
        2.0
    );
    assert!(
        text.contains("le=\"+Inf\""),
        "a histogram without its +Inf bucket breaks histogram_quantile"
    );
    println!("ok: the cache's metrics in the application's prometheus-client 0.26 registry");
    Ok(())
}
