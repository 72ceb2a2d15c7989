//! Freshness on cached routes: stale-while-revalidate, fail-safe, soft and hard timeouts.
//! Expiry may be softened, invalidation may not: a stale answer is marked `X-Cache: STALE`
//! and keeps its deep ETag; an invalidated one is never served.
//!
//! Handlers that must be slow wait at a gate the test opens, and the cache's time is a
//! manual clock the test advances past the TTLs, so nothing depends on timing (`until`
//! polls for what lands in the background).

use querycache::testing::ManualClock;
use tokio::sync::Semaphore;

use super::*;
use crate::support::until;

/// The handler's side: what it answers, how often it ran, and an optional gate it waits at.
struct Backend {
    runs: AtomicUsize,
    answer: Mutex<(StatusCode, String)>,
    gate: Mutex<Option<Arc<Semaphore>>>,
}

impl Backend {
    fn new(body: &str) -> Arc<Backend> {
        Arc::new(Backend {
            runs: AtomicUsize::new(0),
            answer: Mutex::new((StatusCode::OK, body.to_owned())),
            gate: Mutex::new(None),
        })
    }

    fn answer(&self, status: StatusCode, body: &str) {
        *self.answer.lock() = (status, body.to_owned());
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    /// From now on the handler waits until the returned gate is opened.
    fn close_gate(&self) -> Arc<Semaphore> {
        let gate = Arc::new(Semaphore::new(0));
        *self.gate.lock() = Some(gate.clone());
        gate
    }

    /// Lets every waiting and later run through.
    fn open_gate(&self, gate: &Semaphore) {
        *self.gate.lock() = None;
        gate.add_permits(Semaphore::MAX_PERMITS / 2);
    }
}

async fn handler(State(backend): State<Arc<Backend>>) -> (StatusCode, String) {
    backend.runs.fetch_add(1, Ordering::SeqCst);
    let gate = backend.gate.lock().clone();
    if let Some(gate) = gate {
        gate.acquire().await.expect("gate open").forget();
    }
    backend.answer.lock().clone()
}

/// `/songs` (tag `model:songs`) answered by `backend`, cached by `layer`, served on a free
/// port; returns its URL.
async fn serve_songs(backend: &Arc<Backend>, layer: CacheResponseLayer) -> String {
    let router = Router::new()
        .route("/songs", get(handler))
        .route_layer(layer)
        .with_state(backend.clone());
    format!("{}/songs", serve(router).await)
}

/// A memory cache whose time is `clock`'s.
fn clocked() -> (Cache, ManualClock) {
    let clock = ManualClock::new();
    let cache = Cache::builder()
        .clock(clock.clone())
        .build()
        .expect("valid configuration");
    (cache, clock)
}

fn builder(cache: &Cache, ttl: Duration) -> CacheResponse {
    CacheResponse::new(cache).ttl(ttl).tags(["model:songs"])
}

fn cache_status(response: &Response) -> String {
    header_of(response, "cache-status")
}

/// Status, `X-Cache` and body of a GET.
async fn get_answer(url: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let response = fetch(url, headers).await;
    let (status, marked) = (response.status().as_u16(), x_cache(&response));
    (status, marked, response.text().await.expect("a body"))
}

fn songs_written() -> [Tag; 1] {
    [Tag::model("songs")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swr_serves_stale_at_once_then_the_background_refresh() {
    let (cache, clock) = clocked();
    let backend = Backend::new("v1");
    let ttl = Duration::from_millis(500);
    let layer = builder(&cache, ttl)
        .swr(Duration::from_secs(60))
        .build()
        .unwrap();
    let url = serve_songs(&backend, layer).await;

    let first = fetch(&url, &[]).await;
    assert_eq!(x_cache(&first), "MISS");
    assert_eq!(cache_status(&first), "querycache; fwd=miss; stored");
    let first_etag = etag(&first);
    let hit = fetch(&url, &[]).await;
    assert_eq!(x_cache(&hit), "HIT");
    assert_eq!(cache_status(&hit), "querycache; hit");

    // The data changes without a write the tags see; the refresh will wait at the gate.
    backend.answer(StatusCode::OK, "v2");
    let gate = backend.close_gate();
    clock.advance(ttl + Duration::from_millis(200));

    let stale = fetch(&url, &[]).await;
    assert_eq!(stale.status(), 200);
    assert_eq!(x_cache(&stale), "STALE", "served while the refresh waits");
    assert_eq!(cache_status(&stale), "querycache; hit; fwd=stale");
    assert_eq!(etag(&stale), first_etag, "its tags did not move: same ETag");
    assert_eq!(stale.text().await.unwrap(), "v1");
    until(Duration::from_secs(10), "the refresh starts", async || {
        backend.runs() == 2
    })
    .await;
    let (_, again, body) = get_answer(&url, &[]).await;
    assert_eq!((again.as_str(), body.as_str()), ("STALE", "v1"));
    assert_eq!(backend.runs(), 2, "one refresh at a time");

    backend.open_gate(&gate);
    until(Duration::from_secs(10), "the refresh lands", async || {
        let (_, marked, body) = get_answer(&url, &[]).await;
        marked == "HIT" && body == "v2"
    })
    .await;
    assert_eq!(backend.runs(), 2, "one miss, one background refresh");
}

#[tokio::test]
async fn an_invalidated_answer_is_never_stale_and_a_stale_etag_still_304s() {
    let (cache, clock) = clocked();
    let backend = Backend::new("v1");
    let ttl = Duration::from_millis(300);
    let layer = builder(&cache, ttl)
        .swr(Duration::from_secs(60))
        .fail_safe(Duration::from_secs(60))
        .build()
        .unwrap();
    let url = serve_songs(&backend, layer).await;
    let first_etag = etag(&fetch(&url, &[]).await);
    clock.advance(ttl + Duration::from_millis(100));

    // Stale but valid: the tags did not move, so the client's copy is current — a 304,
    // without the handler (and without starting a refresh).
    let revalidated = fetch(&url, &[("if-none-match", &first_etag)]).await;
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(etag(&revalidated), first_etag);
    assert_eq!(backend.runs(), 1);

    // A write: the stale answer is dead, within the swr window or not.
    backend.answer(StatusCode::OK, "v2");
    cache.invalidate_tags(songs_written()).await;
    let after = fetch(&url, &[("if-none-match", &first_etag)]).await;
    assert_eq!(after.status(), 200, "the old ETag no longer validates");
    assert_eq!(
        x_cache(&after),
        "MISS",
        "the handler ran; nothing stale served"
    );
    assert_ne!(etag(&after), first_etag);
    assert_eq!(after.text().await.unwrap(), "v2");
    assert_eq!(backend.runs(), 2);

    // Nor is it a fail-safe answer: stale, invalidated, and the handler failing.
    clock.advance(ttl + Duration::from_millis(100));
    backend.answer(StatusCode::SERVICE_UNAVAILABLE, "down");
    cache.invalidate_tags(songs_written()).await;
    let (status, marked, body) = get_answer(&url, &[]).await;
    assert_eq!(
        (status, marked.as_str(), body.as_str()),
        (503, "MISS", "down")
    );
}

#[tokio::test]
async fn fail_safe_serves_the_last_good_answer_within_its_bound() {
    let (cache, clock) = clocked();
    let backend = Backend::new("v1");
    let ttl = Duration::from_millis(200);
    let bound = Duration::from_secs(2);
    let layer = builder(&cache, ttl).fail_safe(bound).build().unwrap();
    let url = serve_songs(&backend, layer).await;
    let first = fetch(&url, &[]).await;
    let first_etag = etag(&first);
    assert_eq!(first.text().await.unwrap(), "v1");
    clock.advance(ttl + Duration::from_millis(100));

    // A 4xx is an answer, not a failure: it goes through (and is not kept).
    backend.answer(StatusCode::NOT_FOUND, "gone?");
    let (status, marked, _) = get_answer(&url, &[]).await;
    assert_eq!((status, marked.as_str()), (404, "MISS"));
    assert_eq!(backend.runs(), 2);

    // A 5xx is a failure: the last good answer — status, body, ETag — stands in.
    backend.answer(StatusCode::SERVICE_UNAVAILABLE, "down");
    let stale = fetch(&url, &[]).await;
    assert_eq!(stale.status(), 200, "not the handler's 503");
    assert_eq!(x_cache(&stale), "STALE");
    assert_eq!(cache_status(&stale), "querycache; hit; fwd=stale");
    assert_eq!(etag(&stale), first_etag);
    assert_eq!(
        header_of(&stale, "content-type"),
        "text/plain; charset=utf-8"
    );
    assert_eq!(stale.text().await.unwrap(), "v1");
    assert_eq!(backend.runs(), 3, "the handler ran, and failed");
    // Within the throttle (10 s by default) the failing handler is not run again.
    let (_, marked, body) = get_answer(&url, &[]).await;
    assert_eq!((marked.as_str(), body.as_str()), ("STALE", "v1"));
    assert_eq!(backend.runs(), 3);

    // Past the bound the stored answer is gone: the 503 comes through.
    clock.advance(bound);
    let (status, marked, body) = get_answer(&url, &[]).await;
    assert_eq!(
        (status, marked.as_str(), body.as_str()),
        (503, "MISS", "down")
    );

    // Recovery: the next answer is computed, stored and served.
    backend.answer(StatusCode::OK, "v2");
    let (status, marked, body) = get_answer(&url, &[]).await;
    assert_eq!(
        (status, marked.as_str(), body.as_str()),
        (200, "MISS", "v2")
    );
    let (_, marked, body) = get_answer(&url, &[]).await;
    assert_eq!((marked.as_str(), body.as_str()), ("HIT", "v2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_soft_timeout_the_stale_answer_then_the_slow_one() {
    let (cache, clock) = clocked();
    let backend = Backend::new("v1");
    let ttl = Duration::from_millis(500);
    let layer = builder(&cache, ttl)
        .fail_safe(Duration::from_secs(60))
        .soft_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let url = serve_songs(&backend, layer).await;
    assert_eq!(get_answer(&url, &[]).await.1, "MISS");

    backend.answer(StatusCode::OK, "v2");
    let gate = backend.close_gate();
    clock.advance(ttl + Duration::from_millis(200));
    let stale = fetch(&url, &[]).await;
    assert_eq!(x_cache(&stale), "STALE", "the handler is held at the gate");
    assert_eq!(cache_status(&stale), "querycache; hit; fwd=stale");
    assert_eq!(stale.text().await.unwrap(), "v1");
    assert_eq!(backend.runs(), 2);

    // The handler goes on in the background; its answer lands.
    backend.open_gate(&gate);
    until(
        Duration::from_secs(10),
        "the slow answer lands",
        async || {
            let (_, marked, body) = get_answer(&url, &[]).await;
            marked == "HIT" && body == "v2"
        },
    )
    .await;
    assert_eq!(backend.runs(), 2, "the slow run was not repeated");
}

#[tokio::test]
async fn past_the_hard_timeout_a_504_or_the_fail_safe_answer() {
    let (cache, clock) = clocked();
    let backend = Backend::new("v1");
    let ttl = Duration::from_millis(300);
    let layer = builder(&cache, ttl)
        .fail_safe(Duration::from_secs(60))
        .hard_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let url = serve_songs(&backend, layer).await;

    let gate = backend.close_gate();
    let timed_out = fetch(&url, &[]).await;
    assert_eq!(timed_out.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(x_cache(&timed_out), "MISS");
    let body: serde_json::Value = timed_out.json().await.unwrap();
    assert_eq!(body["error"]["code"], "timeout");
    backend.open_gate(&gate);

    assert_eq!(get_answer(&url, &[]).await.1, "MISS");
    let gate = backend.close_gate();
    clock.advance(ttl + Duration::from_millis(100));
    let (status, marked, body) = get_answer(&url, &[]).await;
    assert_eq!(
        (status, marked.as_str(), body.as_str()),
        (200, "STALE", "v1")
    );
    backend.open_gate(&gate);
}

/// RFC 5861 in the emitted `Cache-Control`: a layer with an swr window tells the browser
/// `stale-while-revalidate=<secs>` (as its namespace's `CACHE_SWR_<NAMESPACE>` does), a
/// fail-safe one `stale-if-error=<secs>`, on the miss, the hit, the stale answer and the
/// `304`; an explicit `cache_control` is sent as written; without either window nothing is
/// added.
#[tokio::test]
async fn cache_control_carries_the_stale_windows() {
    let (cache, clock) = clocked();
    let backend = Backend::new("[]");
    let layer = CacheResponse::new(&cache)
        .ttl(Duration::from_secs(60))
        .swr(Duration::from_secs(30))
        .fail_safe(Duration::from_secs(3600))
        .tags(["model:songs"])
        .build()
        .expect("valid layer");
    let url = serve_songs(&backend, layer).await;
    let expected = "private, max-age=60, stale-while-revalidate=30, stale-if-error=3600";

    let miss = fetch(&url, &[]).await;
    assert_eq!(x_cache(&miss), "MISS");
    assert_eq!(header_of(&miss, "cache-control"), expected);
    let hit = fetch(&url, &[]).await;
    assert_eq!(x_cache(&hit), "HIT");
    assert_eq!(header_of(&hit, "cache-control"), expected);
    let not_modified = fetch(&url, &[("if-none-match", &etag(&hit))]).await;
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header_of(&not_modified, "cache-control"), expected);
    clock.advance(Duration::from_secs(70)); // past the TTL, within the swr window
    let stale = fetch(&url, &[]).await;
    assert_eq!(x_cache(&stale), "STALE");
    assert_eq!(header_of(&stale, "cache-control"), expected);

    // The namespace's window, when the layer has none of its own.
    let cache = Cache::builder()
        .namespace_swr("http", Duration::from_secs(15))
        .build()
        .expect("valid configuration");
    let layer = CacheResponse::new(&cache)
        .ttl(Duration::from_secs(60))
        .tags(["model:songs"])
        .build()
        .expect("valid layer");
    let url = serve_songs(&Backend::new("[]"), layer).await;
    assert_eq!(
        header_of(&fetch(&url, &[]).await, "cache-control"),
        "private, max-age=60, stale-while-revalidate=15"
    );

    // Neither window: nothing added. An explicit value: sent as written.
    let plain = CacheResponse::new(&cache)
        .namespace("plain")
        .ttl(Duration::from_secs(60))
        .tags(["model:songs"])
        .build()
        .expect("valid layer");
    let url = serve_songs(&Backend::new("[]"), plain).await;
    assert_eq!(
        header_of(&fetch(&url, &[]).await, "cache-control"),
        "private, max-age=60"
    );
    let explicit = CacheResponse::new(&cache)
        .swr(Duration::from_secs(30))
        .cache_control(CacheControl::no_cache())
        .tags(["model:songs"])
        .build()
        .expect("valid layer");
    let url = serve_songs(&Backend::new("[]"), explicit).await;
    assert_eq!(
        header_of(&fetch(&url, &[]).await, "cache-control"),
        "no-cache"
    );
}
