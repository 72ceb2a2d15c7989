//! The `Cache` API where the memory store is the subject: its byte budget, shared
//! allocations, configuration errors, the brief's log lines, the global cache.

use std::sync::Arc;
use std::time::Duration;

use querycache::{Cache, CacheConfig, EntryOptions, Error, Tag};

fn cache_with(
    f: impl FnOnce(querycache::config::CacheBuilder) -> querycache::config::CacheBuilder,
) -> Cache {
    f(Cache::builder()).build().expect("valid config")
}

#[tokio::test]
async fn disabled_from_the_environment() {
    let config = CacheConfig::from_vars([("CACHE_ENABLED", "false")]).unwrap();
    assert!(!Cache::with_config(config).config().enabled());
}

#[tokio::test]
async fn memory_budget_is_respected() {
    let cache = cache_with(|b| b.memory_max_bytes(256 * 1024));
    let payload = "x".repeat(1000);
    for i in 0..2000 {
        cache
            .set(&format!("k{i}"), payload.clone(), EntryOptions::new())
            .await
            .unwrap();
    }
    let stats = cache.stats();
    assert!(
        stats.memory_usage_bytes <= 256 * 1024,
        "{}",
        stats.memory_usage_bytes
    );
    assert!(
        stats.keys_count < 2000 && stats.keys_count > 50,
        "{}",
        stats.keys_count
    );
}

#[tokio::test]
async fn hits_share_one_allocation() {
    let cache = Cache::new();
    let a = cache
        .get_or_compute("k", EntryOptions::new(), || async { vec![0_u8; 64] })
        .await;
    let b = cache.get::<Vec<u8>>("k").await.unwrap();
    assert!(
        Arc::ptr_eq(&a, &b),
        "a hit hands back the stored Arc, not a decoded copy"
    );
}

#[test]
fn config_errors_name_variable_and_value() {
    let err = CacheConfig::from_vars([("CACHE_MAX_TTL", "ten")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration: CACHE_MAX_TTL=\"ten\": expected a number followed by a unit \
         (`s`, `m`, `h` or `d`); write a whole number of seconds (`3600`) or a duration (`30m`, \
         `1h30m`, `1d`)"
    );
    let err = CacheConfig::from_vars([("CACHE_DEFAULT_TTL", "7200"), ("CACHE_MAX_TTL", "3600")])
        .unwrap_err();
    assert!(
        err.to_string().contains("CACHE_DEFAULT_TTL") && err.to_string().contains("CACHE_MAX_TTL"),
        "{err}"
    );
    let err = CacheConfig::from_vars([("REDIS_URL", "no-such-scheme://127.0.0.1:1")]).unwrap_err();
    assert!(err.to_string().contains("REDIS_URL"), "{err}");
}

/// Captures what `tracing` prints while a test runs on the current thread.
fn capture_logs() -> (
    Arc<std::sync::Mutex<Vec<u8>>>,
    tracing::subscriber::DefaultGuard,
) {
    #[derive(Clone)]
    struct Sink(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Sink(buf.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    (buf, tracing::subscriber::set_default(subscriber))
}

#[tokio::test(flavor = "current_thread")]
async fn tracing_events_in_the_briefs_words() {
    let (logs, _guard) = capture_logs();
    let cache = cache_with(|b| {
        b.max_ttl(Duration::from_secs(60))
            .default_ttl(Duration::from_secs(60))
    });
    let options = EntryOptions::new()
        .namespace("songs")
        .ttl_secs(7200)
        .tag(Tag::model("songs"));
    cache
        .get_or_compute("songs:1", options.clone(), || async { 1_u8 })
        .await;
    cache
        .get_or_compute("songs:1", options, || async { 1_u8 })
        .await;
    cache
        .invalidate_tags([Tag::model("songs"), Tag::bulk("songs")])
        .await;
    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("TTL clamped to CACHE_MAX_TTL"), "{logs}");
    assert!(logs.contains("requested_secs=7200"), "{logs}");
    assert!(
        logs.contains("Cache SET: songs songs:1 (TTL: 60s)"),
        "{logs}"
    );
    assert!(logs.contains("Cache MISS: songs:1"), "{logs}");
    assert!(logs.contains("Cache HIT: songs:1 (age: 0s)"), "{logs}");
    assert!(logs.contains("Cache INVALIDATED: 2 tags"), "{logs}");
}

#[tokio::test]
async fn the_global_cache_is_the_installed_one() {
    // The only test in this binary that touches the global cache.
    let cache = Cache::new();
    querycache::install(cache.clone()).expect("first install");
    assert!(matches!(
        querycache::install(Cache::new()),
        Err(Error::AlreadyInstalled)
    ));
    cache
        .set("global:probe", 1_u8, EntryOptions::new())
        .await
        .unwrap();
    assert!(
        querycache::global()
            .get::<u8>("global:probe")
            .await
            .is_some()
    );
}

/// A minimal executor that is not tokio: polls `future` on this thread, parking between
/// wake-ups.
fn block_on_without_tokio<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

#[test]
fn fetch_with_every_freshness_option_works_under_another_executor() {
    let clock = querycache::testing::ManualClock::new();
    let cache = querycache::Cache::builder()
        .clock(clock.clone())
        .build()
        .unwrap();
    let options = querycache::EntryOptions::new()
        .ttl(std::time::Duration::from_millis(50))
        .swr(std::time::Duration::from_secs(60))
        .early_refresh(1.0)
        .fail_safe(std::time::Duration::from_secs(60))
        .soft_timeout(std::time::Duration::from_millis(10))
        .hard_timeout(std::time::Duration::from_secs(1));
    let first = block_on_without_tokio(
        cache.fetch("k", options.clone(), || async { Ok::<_, String>(1_u32) }),
    )
    .unwrap();
    assert_eq!((*first, first.is_stale()), (1, false));
    clock.advance(std::time::Duration::from_millis(80));
    // Stale within the window: no runtime to refresh in the background, so this caller
    // refreshes in the foreground and gets the new value.
    let refreshed = block_on_without_tokio(
        cache.fetch("k", options.clone(), || async { Ok::<_, String>(2_u32) }),
    )
    .unwrap();
    assert_eq!(*refreshed, 2);
    clock.advance(std::time::Duration::from_millis(80));
    let failing = block_on_without_tokio(
        cache.fetch("k", options, || async { Err::<u32, _>("down".to_owned()) }),
    );
    assert_eq!(
        failing.map(|f| *f),
        Ok(2),
        "stale, never a panic for want of a runtime"
    );
}

/// Issue 20, item 9: a log line quotes at most 200 bytes of a key, however long the key
/// (a request path of kilobytes made log lines of kilobytes).
#[tokio::test(flavor = "current_thread")]
async fn log_lines_quote_a_bounded_part_of_a_long_key() {
    let (logs, _guard) = capture_logs();
    let cache = cache_with(|b| b);
    let key = format!("songs:{}", "x".repeat(4000));
    cache
        .get_or_compute(&key, EntryOptions::new(), || async { 1_u8 })
        .await;
    cache
        .get_or_compute(&key, EntryOptions::new(), || async { 1_u8 })
        .await;
    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("Cache MISS: songs:xxx"), "{logs}");
    assert!(logs.contains("(4006 bytes)"), "{logs}");
    for line in logs.lines() {
        assert!(
            line.len() < 1_000,
            "a log line of {} bytes: {line}",
            line.len()
        );
    }
}
