//! Issue 20, item 4: identical concurrent requests whose answer is not stored (a 404, an
//! answer that sets a cookie) must not run one after another. The single flight's leader
//! has nothing to hand over then; its followers are released together, each running the
//! handler at once (and taking no Redis lease), instead of queueing behind each other.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use querycache::Cache;
use querycache::http::CacheResponse;
use tokio::sync::Notify;
use tower::ServiceExt;

/// What the handler saw: how many calls, and how many ran at once at most.
#[derive(Default)]
struct Seen {
    calls: AtomicUsize,
    running: AtomicUsize,
    most_at_once: AtomicUsize,
    /// Opens the first call (the leader's).
    leader_gate: Notify,
}

const CALLERS: usize = 8;
/// How long a follower's handler waits for a second one to run beside it: far longer than
/// it takes when they run together, and what each one costs when they run one by one.
const PATIENCE: Duration = Duration::from_secs(5);

/// A route whose answer is never stored: `answer()` (a 404, or a 200 that sets a cookie).
fn app(cache: &Cache, seen: Arc<Seen>, answer: fn() -> axum::response::Response) -> Router {
    let layer = CacheResponse::new(cache)
        .ttl(Duration::from_secs(60))
        .tags(["model:songs:{id}"])
        .path::<i32>()
        .build()
        .expect("a valid layer");
    let handler = move || {
        let seen = Arc::clone(&seen);
        async move {
            let call = seen.calls.fetch_add(1, Ordering::SeqCst);
            let running = seen.running.fetch_add(1, Ordering::SeqCst) + 1;
            seen.most_at_once.fetch_max(running, Ordering::SeqCst);
            if call == 0 {
                seen.leader_gate.notified().await;
            } else {
                // Wait (boundedly) for company: released together, the others are here.
                let deadline = Instant::now() + PATIENCE;
                while seen.most_at_once.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            seen.running.fetch_sub(1, Ordering::SeqCst);
            answer()
        }
    };
    Router::new()
        .route(
            "/songs/{id}",
            get(move |_: axum::extract::Path<i32>| handler()),
        )
        .route_layer(layer)
}

/// Sends `CALLERS` identical requests while the leader's handler is held, then lets it
/// answer; returns the statuses and what the handler saw.
async fn burst(answer: fn() -> axum::response::Response) -> (Vec<StatusCode>, Arc<Seen>) {
    let cache = Cache::new();
    let seen = Arc::new(Seen::default());
    let app = app(&cache, Arc::clone(&seen), answer);
    let requests: Vec<_> = (0..CALLERS)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                let request = Request::get("/songs/404").body(Body::empty()).unwrap();
                app.oneshot(request).await.unwrap().status()
            })
        })
        .collect();
    // The leader is in its handler; the others reach the flight and wait there (on this
    // single-threaded runtime, every task runs until it waits before this one goes on).
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.calls.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the leader never ran");
        tokio::task::yield_now().await;
    }
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    seen.leader_gate.notify_one();
    let mut statuses = Vec::new();
    for request in requests {
        statuses.push(request.await.unwrap());
    }
    (statuses, seen)
}

#[tokio::test(flavor = "current_thread")]
async fn followers_of_a_404_are_released_together_not_one_by_one() {
    let started = Instant::now();
    let (statuses, seen) = burst(|| StatusCode::NOT_FOUND.into_response()).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::NOT_FOUND),
        "{statuses:?}"
    );
    assert_eq!(
        seen.calls.load(Ordering::SeqCst),
        CALLERS,
        "a 404 is not stored"
    );
    assert!(
        seen.most_at_once.load(Ordering::SeqCst) >= 2,
        "the followers ran one after another ({:?} for {CALLERS} requests)",
        started.elapsed()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn followers_of_an_answer_that_sets_a_cookie_are_released_together() {
    let (statuses, seen) =
        burst(|| ([(header::SET_COOKIE, "session=secret; HttpOnly")], "hello").into_response())
            .await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(
        seen.calls.load(Ordering::SeqCst),
        CALLERS,
        "an answer that sets a cookie is neither stored nor shared"
    );
    assert!(
        seen.most_at_once.load(Ordering::SeqCst) >= 2,
        "the followers ran one after another"
    );
}
