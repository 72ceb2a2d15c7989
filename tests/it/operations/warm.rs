//! Cache warming: registered warmers run (with `#[cached_query]` fns), their entries then
//! hit, force recomputes, errors and panics are reported, one run at a time, progress in
//! health, start-up warming only when configured.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use querycache::{
    Cache, CacheConfig, EntryOptions, Error, Tag, cached_query,
    warm::{BoxError, WarmContext, WarmRequest, WarmState},
};
use tokio::sync::{Notify, Semaphore};

use crate::support::until;

static SONGS_CACHE: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(Cache::new);
static SONG_QUERIES: AtomicUsize = AtomicUsize::new(0);

#[cached_query(cache = *SONGS_CACHE, namespace = "songs", tags = ["model:songs"])]
async fn song_title(id: u32) -> String {
    SONG_QUERIES.fetch_add(1, Ordering::SeqCst);
    format!("song {id} v{}", SONG_QUERIES.load(Ordering::SeqCst))
}

fn request(types: &[&str], force: bool) -> WarmRequest {
    WarmRequest {
        types: Some(types.iter().map(|t| t.to_string()).collect()),
        force,
    }
}

/// Waits until the cache's warming run is no longer running.
async fn finished(cache: &Cache) -> querycache::warm::WarmStatus {
    until(Duration::from_secs(10), "warming finished", async || {
        cache.health().await.warming.state != WarmState::Running
    })
    .await;
    cache.health().await.warming
}

#[tokio::test]
async fn a_warmer_calling_cached_fns_fills_the_cache_then_reads_hit_and_force_recomputes() {
    let cache = SONGS_CACHE.clone();
    cache.register_warmer("songs", |_: WarmContext| async {
        for id in 1..=3 {
            song_title(id).await;
        }
        Ok::<usize, BoxError>(3)
    });
    let report = cache
        .warm_and_wait(request(&["songs"], false))
        .await
        .unwrap();
    assert!(report.succeeded(), "{report:?}");
    assert_eq!((report.entries, report.warmers.len()), (3, 1));
    assert_eq!(report.warmers[0].name, "songs");
    assert!(!report.force);
    assert_eq!(SONG_QUERIES.load(Ordering::SeqCst), 3);

    // The application's reads now hit.
    let hits = cache.stats().hits;
    assert_eq!(song_title(2).await, "song 2 v2");
    assert_eq!(cache.stats().hits, hits + 1);
    assert_eq!(SONG_QUERIES.load(Ordering::SeqCst), 3);

    // An unforced run finds everything present: no query.
    cache.warm_and_wait(WarmRequest::default()).await.unwrap();
    assert_eq!(SONG_QUERIES.load(Ordering::SeqCst), 3);

    // A forced run recomputes and overwrites what is present.
    let report = cache
        .warm_and_wait(request(&["songs"], true))
        .await
        .unwrap();
    assert!(report.force && report.succeeded());
    assert_eq!(SONG_QUERIES.load(Ordering::SeqCst), 6);
    assert_eq!(
        song_title(1).await,
        "song 1 v4",
        "the refreshed value is served"
    );
    assert_eq!(SONG_QUERIES.load(Ordering::SeqCst), 6, "and it is a hit");
}

#[tokio::test]
async fn a_forced_refresh_racing_a_write_leaves_no_stale_entry() {
    let cache = Cache::new();
    let options = EntryOptions::new().tag(Tag::model("charts"));
    cache.set("chart", 1_u32, options.clone()).await.unwrap();
    let writer = cache.clone();
    cache.register_warmer("charts", move |ctx: WarmContext| {
        let (writer, options) = (writer.clone(), options.clone());
        async move {
            let value = ctx
                .cache()
                .get_or_compute("chart", options, || async move {
                    // A write lands while the refresh computes (it read the old rows).
                    writer.invalidate_tags([Tag::model("charts")]).await;
                    2_u32
                })
                .await;
            assert_eq!(
                *value, 2,
                "the computation ran despite the entry being present"
            );
            Ok::<usize, BoxError>(1)
        }
    });
    let report = cache
        .warm_and_wait(request(&["charts"], true))
        .await
        .unwrap();
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(
        cache.get::<u32>("chart").await,
        None,
        "born stale: never served"
    );
    assert_eq!(cache.stats().wasted_computations, 1);
}

#[tokio::test]
async fn an_unknown_type_is_an_error_naming_it_and_the_known_ones() {
    let cache = Cache::new();
    let runs = Arc::new(AtomicUsize::new(0));
    for name in ["songs", "users"] {
        let runs = runs.clone();
        cache.register_warmer(name, move |_: WarmContext| {
            runs.fetch_add(1, Ordering::SeqCst);
            async { Ok::<usize, BoxError>(0) }
        });
    }
    let err = cache
        .warm(request(&["songs", "albums"], false))
        .unwrap_err();
    match &err {
        Error::UnknownWarmer { name, known } => {
            assert_eq!(name, "albums");
            assert_eq!(known, &["songs", "users"]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        r#"unknown warmer "albums"; registered warmers: ["songs", "users"]"#
    );
    assert!(
        cache
            .warm_and_wait(request(&["albums"], false))
            .await
            .is_err()
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0, "nothing started");
    assert_eq!(cache.health().await.warming.state, WarmState::Idle);
}

#[tokio::test]
async fn progress_shows_in_health_and_a_second_run_is_refused_meanwhile() {
    let cache = Cache::new();
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Semaphore::new(0));
    cache.register_warmer("quick", |ctx: WarmContext| async move {
        ctx.cache().set("quick", 1_u8, EntryOptions::new()).await?;
        Ok::<usize, BoxError>(1)
    });
    let (e, r) = (entered.clone(), release.clone());
    cache.register_warmer("slow", move |_: WarmContext| {
        let (entered, release) = (e.clone(), r.clone());
        async move {
            entered.notify_one();
            release.acquire().await?.forget();
            Ok::<usize, BoxError>(5)
        }
    });

    let started = cache.warm(WarmRequest::default()).unwrap();
    assert_eq!(started.types, ["quick", "slow"]);
    assert!(!started.force);
    entered.notified().await;

    let warming = cache.health().await.warming;
    assert_eq!(warming.state, WarmState::Running);
    assert_eq!(warming.types, ["quick", "slow"]);
    assert_eq!(
        (warming.warmers_done, warming.warmers_total, warming.entries),
        (1, 2, 1)
    );
    assert_eq!(warming.started_at_ms, Some(started.started_at_ms));
    assert_eq!(warming.finished_at_ms, None);
    let serialized = serde_json::to_value(cache.health().await).unwrap();
    assert_eq!(serialized["warming"]["state"], "running");

    match cache.warm(request(&["quick"], true)) {
        Err(Error::WarmInProgress {
            types,
            started_at_ms,
        }) => {
            assert_eq!(types, ["quick", "slow"]);
            assert_eq!(started_at_ms, started.started_at_ms);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        cache.warm_and_wait(WarmRequest::default()).await,
        Err(Error::WarmInProgress { .. })
    ));

    release.add_permits(1);
    let warming = finished(&cache).await;
    assert_eq!(warming.state, WarmState::Finished);
    assert_eq!((warming.warmers_done, warming.entries), (2, 6));
    assert!(warming.finished_at_ms.unwrap() >= warming.started_at_ms.unwrap());
    assert_eq!(warming.last_error, None);

    // Once finished, a new run is accepted.
    release.add_permits(1);
    let report = cache.warm_and_wait(WarmRequest::default()).await.unwrap();
    assert_eq!(report.entries, 6);
}

#[tokio::test]
async fn failing_and_panicking_warmers_are_reported_and_the_others_still_run() {
    let cache = Cache::new();
    cache.register_warmer("fails", |_: WarmContext| async {
        Err::<usize, BoxError>("database unreachable".into())
    });
    cache.register_warmer("panics", |_: WarmContext| async {
        let nothing: Option<usize> = std::hint::black_box(None);
        Ok::<usize, BoxError>(nothing.expect("a warmer bug"))
    });
    cache.register_warmer(
        "panics_early",
        |_: WarmContext| -> std::future::Ready<Result<usize, BoxError>> {
            panic!("before any future")
        },
    );
    cache.register_warmer("works", |ctx: WarmContext| async move {
        ctx.cache().set("w", 1_u8, EntryOptions::new()).await?;
        Ok::<usize, BoxError>(1)
    });

    let report = cache.warm_and_wait(WarmRequest::default()).await.unwrap();
    assert!(!report.succeeded());
    assert_eq!(report.entries, 1);
    let errors: Vec<Option<&str>> = report.warmers.iter().map(|w| w.error.as_deref()).collect();
    assert_eq!(
        errors,
        [
            Some("database unreachable"),
            Some("panicked: a warmer bug"),
            Some("panicked: before any future"),
            None
        ]
    );
    assert_eq!(cache.get::<u8>("w").await.as_deref(), Some(&1));

    let warming = cache.health().await.warming;
    assert_eq!(warming.state, WarmState::Failed);
    assert_eq!((warming.warmers_done, warming.warmers_total), (4, 4));
    assert_eq!(
        warming.last_error.as_deref(),
        Some("panics_early: panicked: before any future")
    );

    // In the background too: the process carries on, health says what failed.
    cache.warm(request(&["panics"], false)).unwrap();
    let warming = finished(&cache).await;
    assert_eq!(warming.state, WarmState::Failed);
    assert_eq!(
        warming.last_error.as_deref(),
        Some("panics: panicked: a warmer bug")
    );
}

#[tokio::test]
async fn warm_on_startup_runs_every_warmer_only_when_configured() {
    let runs = Arc::new(AtomicUsize::new(0));
    let register = |cache: &Cache| {
        for name in ["a", "b"] {
            let runs = runs.clone();
            cache.register_warmer(name, move |_: WarmContext| {
                let runs = runs.clone();
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok::<usize, BoxError>(1)
                }
            });
        }
    };

    let off =
        Cache::with_config(CacheConfig::from_vars([("CACHE_WARM_ON_STARTUP", "false")]).unwrap());
    register(&off);
    assert_eq!(off.warm_on_startup().unwrap(), None);
    assert_eq!(
        Cache::new().warm_on_startup().unwrap(),
        None,
        "off by default"
    );

    let on =
        Cache::with_config(CacheConfig::from_vars([("CACHE_WARM_ON_STARTUP", "true")]).unwrap());
    register(&on);
    let started = on.warm_on_startup().unwrap().expect("configured on");
    assert_eq!(started.types, ["a", "b"]);
    let warming = finished(&on).await;
    assert_eq!((warming.state, warming.entries), (WarmState::Finished, 2));
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "only the configured cache warmed"
    );
    assert_eq!(off.health().await.warming.state, WarmState::Idle);
}

#[test]
fn warm_outside_a_runtime_is_an_error_not_a_panic() {
    let cache = Cache::new();
    cache.register_warmer("w", |_: WarmContext| async { Ok::<usize, BoxError>(0) });
    let err = cache.warm(WarmRequest::default()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NoRuntime {
                operation: "Cache::warm"
            }
        ),
        "{err:?}"
    );
    assert_eq!(cache.warmers(), ["w"]);
}
