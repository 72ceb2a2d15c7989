//! The live invalidation stream (`GET <management>/events`) and the browser client
//! (`GET <management>/client.js`) over real HTTP: a write's tags arrive as an `invalidate`
//! event, the default filter keeps `user:*` tags out, a listener that falls behind gets
//! `reset`, a clear is a `reset`, and client.js is served with its ETag (304 on a match).

use std::time::{Duration, Instant};

use axum::Router;
use querycache::http::{ManagementOptions, TagFilter, management_router};
use querycache::{Cache, INVALIDATION_EVENTS_CAPACITY, Tag};
use reqwest::StatusCode;
use serde_json::Value;

use super::PREFIX;
use crate::support::http::TestServer;

const DEADLINE: Duration = Duration::from_secs(10);

/// One Server-Sent Event: its `event`, `id` and `data` fields.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    event: String,
    id: Option<String>,
    data: Value,
}

/// A client of the stream: reads chunks, splits them into events (comments skipped).
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    async fn open(server: &TestServer) -> Stream {
        let response = reqwest::get(server.url(&format!("{PREFIX}/events")))
            .await
            .expect("GET /events");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "{:?}",
            response.headers()
        );
        assert_eq!(response.headers()["cache-control"], "no-store");
        Stream {
            response,
            buffer: String::new(),
        }
    }

    /// The next event, within [`DEADLINE`].
    async fn next(&mut self) -> Sse {
        tokio::time::timeout(DEADLINE, self.read())
            .await
            .expect("an event within the deadline")
    }

    async fn read(&mut self) -> Sse {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse(&frame) {
                    return event;
                }
            }
            let chunk = self
                .response
                .chunk()
                .await
                .expect("read the stream")
                .expect("the stream stays open");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }
}

/// An event of one frame; `None` for a comment (keep-alive).
fn parse(frame: &str) -> Option<Sse> {
    let (mut event, mut id, mut data) = (None, None, String::new());
    for line in frame.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            event = Some(value.trim().to_owned());
        } else if let Some(value) = line.strip_prefix("id:") {
            id = Some(value.trim().to_owned());
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push_str(value.trim());
        }
    }
    Some(Sse {
        event: event?,
        id,
        data: serde_json::from_str(&data).expect("JSON data"),
    })
}

async fn serve(cache: &Cache, options: ManagementOptions) -> TestServer {
    TestServer::start(Router::new().nest(PREFIX, management_router(cache.clone(), options))).await
}

/// Waits until `cache` has a listener besides the test's own probes: the server's handler
/// subscribed (the `ready` event is sent after it did, so reading `ready` is enough).
async fn ready(stream: &mut Stream, cache: &Cache) {
    let ready = stream.next().await;
    assert_eq!(ready.event, "ready");
    assert_eq!(ready.data["instance"], cache.instance_id());
}

#[tokio::test]
async fn http_events_stream_sends_model_tags_and_filters_user_tags() {
    let cache = Cache::new();
    let server = serve(&cache, ManagementOptions::new()).await;
    let mut stream = Stream::open(&server).await;
    ready(&mut stream, &cache).await;

    // A batch mixing model and user tags: only the model ones are sent.
    cache
        .invalidate_tags([
            Tag::model("songs"),
            Tag::new("user:7").unwrap(),
            Tag::row("songs", 42),
        ])
        .await;
    // A batch of user tags only: nothing is sent for it.
    cache.invalidate_tags([Tag::new("user:8").unwrap()]).await;
    cache.invalidate_tags([Tag::row("songs", 43)]).await;

    let first = stream.next().await;
    assert_eq!(first.event, "invalidate");
    assert_eq!(
        first.data,
        serde_json::json!({ "tags": ["model:songs", "model:songs:42"] })
    );
    let second = stream.next().await;
    assert_eq!(
        second.data,
        serde_json::json!({ "tags": ["model:songs:43"] }),
        "the user-only batch was not sent"
    );
    let (first_id, second_id): (u64, u64) = (
        first.id.expect("an id").parse().unwrap(),
        second.id.expect("an id").parse().unwrap(),
    );
    assert_eq!(
        second_id,
        first_id + 2,
        "ids are the cache's sequence numbers"
    );

    // A clear: anything may have changed.
    cache.clear().await;
    let reset = stream.next().await;
    assert_eq!(reset.event, "reset");
    assert_eq!(reset.data, serde_json::json!({}));
}

#[tokio::test]
async fn http_events_filter_can_allow_more_prefixes() {
    let cache = Cache::new();
    let options =
        ManagementOptions::from_vars([("CACHE_EVENTS_TAG_PREFIXES", "model:, team:")]).unwrap();
    let server = serve(&cache, options).await;
    let mut stream = Stream::open(&server).await;
    ready(&mut stream, &cache).await;
    cache
        .invalidate_tags([Tag::new("team:3").unwrap(), Tag::new("user:1").unwrap()])
        .await;
    let event = stream.next().await;
    assert_eq!(event.data, serde_json::json!({ "tags": ["team:3"] }));

    let none = ManagementOptions::new().event_tags(TagFilter::none());
    let server = serve(&cache, none).await;
    let mut quiet = Stream::open(&server).await;
    ready(&mut quiet, &cache).await;
    cache.invalidate_tags([Tag::model("songs")]).await;
    cache.clear().await;
    assert_eq!(
        quiet.next().await.event,
        "reset",
        "no tag passes TagFilter::none(): the model batch was skipped, the clear's reset came"
    );
}

#[tokio::test]
async fn http_events_lagging_listener_gets_reset_then_goes_on() {
    let cache = Cache::new();
    let server = serve(&cache, ManagementOptions::new()).await;
    let mut stream = Stream::open(&server).await;
    ready(&mut stream, &cache).await;

    // More batches than the channel holds, published without yielding to the runtime (this
    // test's single thread also runs the server's stream): the listener falls behind.
    let burst = INVALIDATION_EVENTS_CAPACITY as u64 + 10;
    for i in 0..burst {
        cache.invalidate_tags([Tag::row("songs", i)]).await;
    }
    let reset = stream.next().await;
    assert_eq!(reset.event, "reset", "{reset:?}");
    assert_eq!(reset.id, None, "a lost-events reset has no sequence number");
    // Then the batches still held, the newest last.
    let mut last = None;
    let started = Instant::now();
    while last != Some(burst - 1) {
        assert!(started.elapsed() < DEADLINE, "the newest batch arrives");
        let event = stream.next().await;
        assert_eq!(event.event, "invalidate");
        let tag = event.data["tags"][0].as_str().unwrap().to_owned();
        last = tag
            .strip_prefix("model:songs:")
            .and_then(|id| id.parse().ok());
    }
    cache.invalidate_tags([Tag::model("users")]).await;
    assert_eq!(
        stream.next().await.data,
        serde_json::json!({ "tags": ["model:users"] })
    );
}

#[tokio::test]
async fn http_client_js_is_served_with_a_strong_etag() {
    let cache = Cache::new();
    let server = serve(&cache, ManagementOptions::new()).await;
    let client = reqwest::Client::new();
    let url = server.url(&format!("{PREFIX}/client.js"));
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    assert!(
        etag.starts_with("\"js-") && etag.ends_with('"'),
        "strong: {etag}"
    );
    let body = response.text().await.unwrap();
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/js/dist/querycache.js"),
    )
    .unwrap();
    assert_eq!(body, committed, "the committed bundle");
    assert!(body.contains("export") && body.contains("liveInvalidation"));

    let again = client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()["etag"], etag.as_str());
    assert!(again.text().await.unwrap().is_empty());

    let other = client
        .get(&url)
        .header("if-none-match", "\"js-0000\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
}

/// With the tiered store, another instance's invalidations (heard on the channel) are
/// published on this instance's stream too: its browsers learn of writes made elsewhere.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_events_include_other_instances_invalidations() {
    use crate::support::stores::{self, Kind};
    use querycache::{InvalidationEvent, Received};

    let Some(first) = stores::ready(Kind::Tiered, |b| b).await else {
        return;
    };
    let second = stores::another_instance(Kind::Tiered, &first);
    crate::support::subscribed(&second).await;
    let server = serve(&second, ManagementOptions::new()).await;
    let mut stream = Stream::open(&server).await;
    ready(&mut stream, &second).await;
    let mut events = second.invalidation_events();

    first
        .invalidate_tags([Tag::row("songs", 9), Tag::new("user:9").unwrap()])
        .await;
    // In process: the whole batch, as heard (a reconnection's reset may come first).
    let batch = tokio::time::timeout(DEADLINE, async {
        loop {
            match events.recv().await {
                Some(Received::Event(InvalidationEvent::Tags { tags, .. })) => break tags,
                Some(_) => continue,
                None => panic!("the cache is alive"),
            }
        }
    })
    .await
    .expect("the other instance's batch within the deadline");
    let names: Vec<&str> = batch.iter().map(Tag::as_str).collect();
    assert_eq!(names, ["model:songs:9", "user:9"]);
    // Over HTTP: filtered.
    let mut event = stream.next().await;
    while event.event == "reset" {
        event = stream.next().await;
    }
    assert_eq!(event.event, "invalidate");
    assert_eq!(event.data, serde_json::json!({ "tags": ["model:songs:9"] }));

    first.clear().await;
    assert_eq!(
        stream.next().await.event,
        "reset",
        "another instance's clear"
    );
}

/// Served by `querycache::http::serve`, an open stream ends when the server starts shutting
/// down: the shutdown does not wait for its deadline because a page is open.
#[tokio::test]
async fn http_events_stream_ends_on_graceful_shutdown() {
    use querycache::http::{ServeOptions, serve};

    let cache = Cache::new();
    let router = Router::new().nest(
        PREFIX,
        management_router(cache.clone(), ManagementOptions::new()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // A shutdown deadline far above this test's: only the stream ending lets it finish.
    let options = ServeOptions::new().shutdown_timeout(Duration::from_secs(120));
    let server = tokio::spawn(serve(listener, router, options, async {
        let _ = stopped.await;
    }));

    let response = reqwest::get(format!("{base}{PREFIX}/events"))
        .await
        .unwrap();
    let mut stream = Stream {
        response,
        buffer: String::new(),
    };
    assert_eq!(stream.next().await.event, "ready");
    let started = Instant::now();
    stop.send(()).unwrap();
    let ended = tokio::time::timeout(DEADLINE, async {
        while let Some(chunk) = stream.response.chunk().await.ok().flatten() {
            assert!(
                String::from_utf8_lossy(&chunk).starts_with(':'),
                "nothing but a keep-alive: {chunk:?}"
            );
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream ended within {DEADLINE:?}");
    tokio::time::timeout(DEADLINE, server)
        .await
        .expect("the server stopped within the deadline")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < DEADLINE);
}
