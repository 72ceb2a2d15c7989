//! The songs app's page (`GET /`) in headless Chromium, end to end: the browser client
//! served by the management router (`/api/v1/cache/client.js`) lists the newest songs with
//! `cachedFetch` (persisted in localStorage), a second load revalidates them with a `304` that
//! runs no query, a PUT from another client reaches the page over the event stream
//! (`/api/v1/cache/events`) and the new title is shown; over 200 PUTs, the delay from the
//! PUT's answer to the page's entry being gone is measured (p50/p99 printed); a reload
//! restores the persisted entry; a localStorage filled to its quota degrades the cache to
//! memory without an error; and no page ever throws.
//!
//! `cargo test --all-features --test it songs_browser -- --nocapture` prints the figures.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::support::Db;
use crate::support::chromium::{Chromium, Page};
use crate::support::songs::SongsApp;
use crate::support::stores::Kind;

/// Generous: Chromium shares two cores with everything else.
const DEADLINE: Duration = Duration::from_secs(30);
/// PUTs measured.
const PUTS: usize = 200;

/// Milliseconds since the epoch, by this process's clock.
fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
        * 1000.0
}

/// Resolves in the page once `condition` (a JS expression) holds, polling every
/// millisecond; panics past [`DEADLINE`].
async fn until(page: &Page, condition: &str) {
    let ms = DEADLINE.as_millis();
    let met = page
        .eval(&format!(
            "new Promise(resolve => {{ const end = performance.now() + {ms}; \
             const check = () => {{ let ok = false; try {{ ok = !!({condition}); }} catch (_) {{}} \
             if (ok) resolve(true); else if (performance.now() > end) resolve(false); \
             else setTimeout(check, 1); }}; check(); }})"
        ))
        .await;
    assert_eq!(
        met,
        json!(true),
        "`{condition}` still false after {DEADLINE:?}; exceptions: {:?}; console: {:?}",
        page.exceptions(),
        page.console()
    );
}

/// Loads (or reloads) the page and waits for its first render with the stream connected.
async fn load(page: &Page, url: &str) {
    // A mark on the old document, so that the wait below cannot be satisfied by it.
    let _ = page.eval("window.__old = true").await;
    page.navigate(url).await;
    page.wait_for(
        "!window.__old && window.__qc && window.__qc.renders >= 1 && window.__qc.live",
        DEADLINE,
    )
    .await;
}

/// The titles the page shows, in order.
async fn titles(page: &Page) -> Vec<String> {
    let value = page
        .eval("[...document.querySelectorAll('#songs .title')].map(e => e.textContent)")
        .await;
    serde_json::from_value(value).expect("a list of titles")
}

/// The page clock's offset from this process's (ms), from the round trip with the smallest
/// uncertainty of a few; and that uncertainty.
async fn clock_offset(page: &Page) -> (f64, f64) {
    let mut best = (0.0, f64::INFINITY);
    for _ in 0..10 {
        let before = now_ms();
        let at = page
            .eval("performance.timeOrigin + performance.now()")
            .await
            .as_f64()
            .expect("a number");
        let after = now_ms();
        let half = (after - before) / 2.0;
        if half < best.1 {
            best = (at - (before + half), half);
        }
    }
    best
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn songs_page_in_headless_chromium() {
    let Some(chromium) = Chromium::launch().await else {
        return;
    };
    let Some(app) = SongsApp::start(Kind::Memory, Db::Sqlite).await else {
        return;
    };
    let author = app.user("Ada").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.song(author, &format!("Song {i}")).await);
    }
    let url = format!("{}/", app.base);
    let page = chromium.new_page().await;

    // First load: the songs, newest first, through cachedFetch (a miss, then persisted).
    load(&page, &url).await;
    assert_eq!(
        titles(&page).await,
        ["Song 4", "Song 3", "Song 2", "Song 1", "Song 0"]
    );
    let persisted = page
        .eval("window.__qcCache.getEntries().filter(e => e.persisted).length")
        .await;
    assert_eq!(persisted, json!(1), "the list is kept in localStorage");

    // Second load: the persisted entry is restored and revalidated with its deep ETag — a
    // 304 that runs no query.
    let queries = app.app.database_queries();
    load(&page, &url).await;
    assert_eq!(titles(&page).await[0], "Song 4");
    let metrics = page.eval("window.__qcCache.getMetrics()").await;
    assert_eq!(metrics["revalidated"], json!(1), "{metrics}");
    assert_eq!(
        app.app.database_queries(),
        queries,
        "the second load ran no query"
    );
    let entries = page.eval("window.__qcCache.getEntries()").await;
    assert!(
        entries[0]["persisted"] == json!(true)
            && entries[0]["tags"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("model:songs"))),
        "restored, with the X-Cache-Tags tags: {entries}"
    );

    // Another client changes a title: the page shows it.
    let renamed = app
        .put(
            &format!("/api/v1/songs/{}", ids[4]),
            json!({"title": "Renamed"}),
        )
        .await;
    assert_eq!(renamed.status, 200, "{renamed:?}");
    until(
        &page,
        "document.querySelector('#songs .title')?.textContent === 'Renamed'",
    )
    .await;

    // The delay, over PUTS writes, from the PUT's answer (and from its start) to the page's
    // entry being gone: the page stamps each invalidation with its clock; the clocks are
    // compared by a handshake.
    let (offset, uncertainty) = clock_offset(&page).await;
    let mut from_answer = Vec::with_capacity(PUTS);
    let mut from_start = Vec::with_capacity(PUTS);
    for i in 0..PUTS {
        let seen = page
            .eval("window.__qc.invalidations.length")
            .await
            .as_u64()
            .unwrap();
        let renders = page.eval("window.__qc.renders").await.as_u64().unwrap();
        let start = now_ms();
        let answer = app
            .put(
                &format!("/api/v1/songs/{}", ids[i % ids.len()]),
                json!({"title": format!("Take {i}")}),
            )
            .await;
        let answered = now_ms();
        assert_eq!(answer.status, 200, "{answer:?}");
        // Gone, and drawn again (so that the next PUT finds an entry to drop).
        until(
            &page,
            &format!(
                "window.__qc.invalidations.slice({seen}).some(x => x.removed > 0) \
                 && window.__qc.renders > {renders} \
                 && window.__qcCache.getEntries().length === 1"
            ),
        )
        .await;
        let gone = page
            .eval(&format!(
                "window.__qc.invalidations.slice({seen}).find(x => x.removed > 0).at"
            ))
            .await
            .as_f64()
            .unwrap()
            - offset;
        from_answer.push(gone - answered);
        from_start.push(gone - start);
    }
    from_answer.sort_by(f64::total_cmp);
    from_start.sort_by(f64::total_cmp);
    println!(
        "songs page: {PUTS} PUTs; delay from the PUT's answer to the page's entry gone: \
         p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; from the PUT's start: p50 {:.2} ms, \
         p99 {:.2} ms (clock handshake ±{uncertainty:.2} ms)",
        percentile(&from_answer, 50.0),
        percentile(&from_answer, 99.0),
        from_answer[PUTS - 1],
        percentile(&from_start, 50.0),
        percentile(&from_start, 99.0),
    );
    // Live: well within a second (a page polling instead would see it only on its next poll).
    assert!(
        percentile(&from_start, 99.0) < 1000.0,
        "p99 from the PUT's start: {:.1} ms",
        percentile(&from_start, 99.0)
    );
    let last = format!("Take {}", PUTS - 1);
    assert!(titles(&page).await.contains(&last));

    // A reload restores the persisted entry (the newest titles) before revalidating it.
    load(&page, &url).await;
    let restored = page
        .eval("window.__qcCache.getEntries().filter(e => e.persisted).length")
        .await;
    assert_eq!(restored, json!(1));
    assert!(titles(&page).await.contains(&last));

    // localStorage full to its quota: the page still lists the songs, from memory.
    let fillers = page
        .eval(
            "(() => { for (const k of Object.keys(localStorage)) localStorage.removeItem(k); \
             let n = 0; for (let size = 1 << 20; size >= 4; size >>= 2) { \
             const chunk = 'x'.repeat(size); \
             try { for (;;) { localStorage.setItem('filler:' + n, chunk); n++; } } catch (_) {} } \
             return n; })()",
        )
        .await;
    assert!(fillers.as_u64().unwrap() > 0, "{fillers}");
    load(&page, &url).await;
    assert!(titles(&page).await.contains(&last));
    let health = page.eval("window.__qcCache.healthCheck()").await;
    let metrics = page.eval("window.__qcCache.getMetrics()").await;
    assert!(
        metrics["storageErrors"].as_u64().unwrap() >= 1 && health["status"] == "degraded",
        "health {health}, metrics {metrics}"
    );
    assert_eq!(page.eval("window.__qc.failures").await, json!(0));
    // And it still follows writes.
    app.put(
        &format!("/api/v1/songs/{}", ids[0]),
        json!({"title": "While full"}),
    )
    .await;
    until(
        &page,
        "[...document.querySelectorAll('#songs .title')].some(e => e.textContent === 'While full')",
    )
    .await;
    page.eval("localStorage.clear()").await;

    assert!(
        page.exceptions().is_empty(),
        "JS exceptions: {:?}",
        page.exceptions()
    );
}
