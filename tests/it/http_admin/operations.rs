//! Warming, analytics and the Prometheus route over real HTTP.

use std::time::{Duration, Instant};

use axum::Router;
use querycache::{Cache, EntryOptions, Tag};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Answer, PREFIX, TOKEN, get, post_raw, seed, serve};
use crate::support::http::TestServer;

/// `POST /warm` with `body`, the right token.
async fn warm(server: &TestServer, body: Value) -> Answer {
    let body = body.to_string();
    post_raw(
        server,
        "/warm",
        Some(TOKEN),
        Some("application/json"),
        &body,
    )
    .await
}

#[tokio::test]
async fn http_admin_warm() {
    use std::sync::Arc;

    use querycache::warm::{BoxError, WarmContext};
    use tokio::sync::Notify;

    let cache = Cache::new();
    cache.register_warmer("songs", |ctx: WarmContext| async move {
        let options = EntryOptions::new().tag(Tag::model("songs"));
        ctx.cache()
            .set("song:42", "warm".to_string(), options)
            .await?;
        Ok::<usize, BoxError>(1)
    });
    let gate = Arc::new(Notify::new());
    let held = Arc::clone(&gate);
    cache.register_warmer("slow", move |_: WarmContext| {
        let held = Arc::clone(&held);
        async move {
            held.notified().await;
            Ok::<usize, BoxError>(0)
        }
    });
    let server = serve(&cache, Some(TOKEN)).await;

    let answer = warm(&server, json!({"types": ["songs"]})).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    assert_eq!(answer.body["data"]["types"], json!(["songs"]));
    assert_eq!(answer.body["data"]["force"], false);
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&server, "/health").await.data()["warming"]["state"] != "finished" {
        assert!(Instant::now() < deadline, "warming did not finish");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(cache.get::<String>("song:42").await.is_some(), "warmed");

    let answer = warm(&server, json!({"types": ["songs", "nope"]})).await;
    let message = answer.error(StatusCode::BAD_REQUEST, "unknown_warmer");
    assert!(message.contains("nope"), "{message}");

    // Every warmer, "slow" held until the gate opens: a second run is a conflict.
    let answer = warm(&server, json!({"force": true})).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    assert_eq!(answer.body["data"]["types"], json!(["songs", "slow"]));
    let answer = warm(&server, json!({})).await;
    let message = answer.error(StatusCode::CONFLICT, "warm_in_progress");
    assert!(message.contains("in progress"), "{message}");
    gate.notify_one();

    for (body, named) in [
        (r#"{"types": "songs"}"#, "types"),
        (r#"{"force": 1}"#, "force"),
        (r#"{"kinds": ["songs"]}"#, "kinds"),
    ] {
        let answer = post_raw(
            &server,
            "/warm",
            Some(TOKEN),
            Some("application/json"),
            body,
        )
        .await;
        let message = answer.error(StatusCode::BAD_REQUEST, "invalid_body");
        assert!(message.contains(named), "{body}: {message}");
    }
    let answer = post_raw(&server, "/warm", None, Some("application/json"), "{}").await;
    answer.error(StatusCode::UNAUTHORIZED, "unauthorized");
    let answer = post_raw(
        &server,
        "/warm",
        Some("nope"),
        Some("application/json"),
        "{}",
    )
    .await;
    answer.error(StatusCode::UNAUTHORIZED, "unauthorized");
    let disabled = serve(&cache, None).await;
    let answer = post_raw(
        &disabled,
        "/warm",
        Some(TOKEN),
        Some("application/json"),
        "{}",
    )
    .await;
    answer.error(StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn http_admin_analytics_after_traffic() {
    let cache = Cache::new();
    seed(&cache).await;
    for _ in 0..500 {
        assert!(cache.get::<String>("song:1").await.is_some());
    }
    let _ = cache.get::<String>("absent").await;
    let server = serve(&cache, Some(TOKEN)).await;
    let answer = get(&server, "/analytics").await;
    let data = answer.data();
    assert_eq!(data["efficiency"]["lookups"], 501);
    assert!(data["efficiency"]["hit_rate"].as_f64().unwrap() > 0.99);
    let timeline = data["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 90, "15 minutes of 10 s buckets");
    assert_eq!(timeline.last().unwrap()["hits"], 500);
    // Public: the top keys' namespaces and counts, not their texts.
    let top = &data["usage"]["top_keys"][0];
    assert_eq!(top["key"], querycache::analytics::REDACTED_KEY, "{data}");
    assert_eq!(top["namespace"], querycache::DEFAULT_NAMESPACE);
    assert!(top["hits"].as_u64().unwrap() > 0, "{data}");
    assert_eq!(data["usage"]["keys_redacted"], true);
    assert_eq!(data["usage"]["keys_count"], 3);
    assert!(data["namespaces"]["users"].is_object());
    assert!(data["recommendations"].is_array());

    // With the admin token: the texts.
    let response = reqwest::Client::new()
        .get(server.url(&format!("{PREFIX}/analytics")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("GET");
    let admin = Answer::from(response).await;
    let data = admin.data();
    assert_eq!(data["usage"]["top_keys"][0]["key"], "song:1", "{data}");
    assert_eq!(data["usage"]["keys_redacted"], false);
}

#[tokio::test]
async fn http_admin_prometheus_route() {
    let cache = Cache::new();
    seed(&cache).await;
    let _ = cache.get::<String>("song:1").await;
    let app = Router::new().route(
        "/metrics",
        querycache::http::prometheus_route(cache.clone()),
    );
    let server = TestServer::start(app).await;
    let response = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        querycache::stats::OPENMETRICS_CONTENT_TYPE
    );
    let text = response.text().await.unwrap();
    assert!(text.contains("querycache_hits_total"), "{text}");
    assert!(text.ends_with("# EOF\n"));
}
