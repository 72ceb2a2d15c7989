//! The management router over real HTTP (reqwest against a server on a free port): every
//! route's answers, the admin token, and that clearing really makes entries misses.

use std::time::{Duration, Instant};

use axum::Router;
use querycache::http::{ManagementOptions, management_router};
use querycache::{Cache, EntryOptions, Tag};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::http::TestServer;

mod events;
mod operations;

const TOKEN: &str = "test-admin-token";
const PREFIX: &str = "/api/v1/cache";

/// `cache`'s management router nested under [`PREFIX`], with `token` as admin token.
async fn serve(cache: &Cache, token: Option<&str>) -> TestServer {
    let options = match token {
        Some(token) => ManagementOptions::new().admin_token(token),
        None => ManagementOptions::new(),
    };
    TestServer::start(Router::new().nest(PREFIX, management_router(cache.clone(), options))).await
}

/// An answer: status, headers, JSON body.
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    async fn from(response: reqwest::Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {status}: {text}"));
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Asserts the error envelope with `status` and `code`; returns the message.
    fn error(&self, status: StatusCode, code: &str) -> String {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body["status"], "error", "{}", self.body);
        assert_eq!(self.body["error"]["code"], code, "{}", self.body);
        let message = self.body["error"]["message"].as_str().expect("a message");
        assert!(!message.is_empty());
        message.to_owned()
    }

    /// Asserts a success envelope with 200; returns `data`.
    fn data(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        assert_eq!(self.body["status"], "success", "{}", self.body);
        assert_eq!(self.headers["cache-control"], "no-store");
        &self.body["data"]
    }
}

async fn get(server: &TestServer, route: &str) -> Answer {
    let response = reqwest::get(server.url(&format!("{PREFIX}{route}")))
        .await
        .expect("GET");
    Answer::from(response).await
}

/// `POST /clear` with a raw body and content type, and `token` as bearer token.
async fn clear_raw(
    server: &TestServer,
    token: Option<&str>,
    content_type: Option<&str>,
    body: &str,
) -> Answer {
    post_raw(server, "/clear", token, content_type, body).await
}

/// `POST <route>` with a raw body and content type, and `token` as bearer token.
async fn post_raw(
    server: &TestServer,
    route: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: &str,
) -> Answer {
    let mut request = reqwest::Client::new()
        .post(server.url(&format!("{PREFIX}{route}")))
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    Answer::from(request.send().await.expect("POST")).await
}

async fn clear(server: &TestServer, body: Value) -> Answer {
    clear_raw(
        server,
        Some(TOKEN),
        Some("application/json"),
        &body.to_string(),
    )
    .await
}

/// Entries in two namespaces, with tags and keys to clear by:
/// `user:1:profile` (tag `user:1`, namespace `users`), `user:2:profile` (tag `user:2`,
/// namespace `users`), `song:1` (tag `model:songs`, namespace `songs`).
async fn seed(cache: &Cache) {
    let user = |id: u32| {
        EntryOptions::new()
            .namespace("users")
            .tag(Tag::new(format!("user:{id}")).unwrap())
    };
    cache
        .set("user:1:profile", "Ada".to_string(), user(1))
        .await
        .unwrap();
    cache
        .set("user:2:profile", "Grace".to_string(), user(2))
        .await
        .unwrap();
    let song = EntryOptions::new()
        .namespace("songs")
        .tag(Tag::model("songs"));
    cache.set("song:1", "Song".to_string(), song).await.unwrap();
}

/// Which of the seeded keys are still hits.
async fn present(cache: &Cache) -> Vec<&'static str> {
    let mut found = Vec::new();
    for key in ["user:1:profile", "user:2:profile", "song:1"] {
        if cache.get::<String>(key).await.is_some() {
            found.push(key);
        }
    }
    found
}

#[tokio::test]
async fn http_admin_health_on_memory() {
    let cache = Cache::new();
    let server = serve(&cache, None).await;
    let answer = get(&server, "/health").await;
    let data = answer.data();
    assert_eq!(data["healthy"], true);
    assert_eq!(data["store"], "memory");
    assert_eq!(data["redis_connected"], false);
    assert_eq!(data["fallback_available"], true);
    assert_eq!(data["fallback_active"], false);
    assert_eq!(data["error"], Value::Null);
    assert_eq!(data["invalidation_channel"], Value::Null);
    assert_eq!(data["pending_invalidations"], 0);
    assert_eq!(data["warming"]["state"], "idle");
    assert_eq!(data["ready"], true);
    assert_eq!(answer.headers["content-type"], "application/json");
    let strict = get(&server, "/health?strict=true").await;
    assert_eq!(strict.data()["healthy"], true);
    get(&server, "/health?strict=maybe")
        .await
        .error(StatusCode::BAD_REQUEST, "bad_request");
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn http_admin_health_on_tiered_then_degraded_when_redis_dies() {
    use crate::support::redis::RedisServer;

    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let cache = Cache::builder()
        .redis_url(redis.url())
        .store(querycache::config::StoreKind::Tiered)
        .redis_timeout(Duration::from_millis(300))
        .breaker_threshold(1)
        .breaker_cooldown(Duration::from_secs(60))
        .build()
        .unwrap();
    let server = serve(&cache, None).await;

    // The invalidation channel subscribes in the background: until it has, the instance
    // is starting (503, `ready: false`, for a load balancer); healthy once it has.
    let deadline = Instant::now() + Duration::from_secs(10);
    let data = loop {
        let answer = get(&server, "/health").await;
        let ready = answer.body["data"]["ready"] == true;
        let expected = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        assert_eq!(answer.status, expected, "{}", answer.body);
        let data = answer.body["data"].clone();
        if !ready {
            assert_eq!(data["healthy"], false, "starting is not healthy: {data}");
        }
        if data["healthy"] == true || Instant::now() > deadline {
            break data;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(data["ready"], true, "{data}");
    assert_eq!(data["healthy"], true, "{data}");
    assert_eq!(data["store"], "tiered");
    assert_eq!(data["redis_connected"], true);
    assert_eq!(data["fallback_active"], false);
    assert_eq!(data["invalidation_channel"], true);

    redis.kill();
    let deadline = Instant::now() + Duration::from_secs(10);
    let (status, data) = loop {
        let answer = get(&server, "/health").await;
        let data = answer.data().clone();
        if data["fallback_active"] == true || Instant::now() > deadline {
            break (answer.status, data);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        status,
        StatusCode::OK,
        "degraded is still 200: ready, memory serves"
    );
    assert_eq!(data["ready"], true, "{data}");
    assert_eq!(data["healthy"], false, "{data}");
    let strict = get(&server, "/health?strict=true").await;
    assert_eq!(
        strict.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "strict: 503 when not healthy"
    );
    assert_eq!(strict.body["data"]["healthy"], false, "{}", strict.body);
    assert_eq!(data["redis_connected"], false);
    assert_eq!(data["fallback_available"], true);
    assert_eq!(data["fallback_active"], true, "{data}");
    assert!(data["error"].is_string(), "the last error is shown: {data}");
}

#[tokio::test]
async fn http_admin_metrics_reflect_traffic() {
    let cache = Cache::new();
    let server = serve(&cache, None).await;
    let before = get(&server, "/metrics").await;
    let data = before.data();
    for field in crate::support::http::METRICS_FIELDS {
        assert!(data[field].is_number(), "{field} in {data}");
    }
    assert_eq!(data["hits"], 0);

    seed(&cache).await;
    for _ in 0..3 {
        assert!(cache.get::<String>("user:1:profile").await.is_some());
    }
    assert!(cache.get::<String>("absent").await.is_none());
    cache.invalidate_tags([Tag::model("songs")]).await;

    let after = get(&server, "/metrics").await;
    let data = after.data();
    assert_eq!(data["hits"], 3);
    assert_eq!(data["misses"], 1);
    assert_eq!(data["hit_rate"], 0.75);
    assert_eq!(data["sets"], 3);
    assert_eq!(data["invalidations"], 1);
    assert_eq!(data["errors"], 0);
    assert_eq!(data["keys_count"], 3);
    assert!(data["memory_usage_bytes"].as_u64().unwrap() > 0);
    assert!(data["avg_response_time_ms"].as_f64().unwrap() > 0.0);
    assert!(data["p99_response_time_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(data["namespaces"]["users"]["sets"], 2);
    assert_eq!(data["namespaces"]["songs"]["sets"], 1);
    for field in [
        "stale_served",
        "background_refreshes",
        "early_refreshes",
        "refresh_errors",
        "fail_safe_activations",
        "soft_timeouts",
        "hard_timeouts",
        "lease_waits",
        "lease_wait_total_ms",
        "lease_wait_max_ms",
    ] {
        assert_eq!(
            data["freshness"][field].as_f64(),
            Some(0.0),
            "{field} in {data}"
        );
    }
    // Direct reads have no namespace of their own: they count under the default one.
    let default = &data["namespaces"][querycache::DEFAULT_NAMESPACE];
    assert_eq!(
        (&default["hits"], &default["misses"]),
        (&json!(3), &json!(1))
    );
}

#[tokio::test]
async fn http_admin_clear_by_tags() {
    let cache = Cache::new();
    seed(&cache).await;
    let server = serve(&cache, Some(TOKEN)).await;
    let answer = clear(&server, json!({"tags": ["user:1", "user:9"]})).await;
    let data = answer.data();
    assert_eq!(data["tags_invalidated"], json!(["user:1", "user:9"]));
    // The memory store versions every tag given (with Redis only the ones something
    // depended on count).
    assert_eq!(data["tags_with_entries"], 2);
    assert_eq!(data["all_cleared"], false);
    assert_eq!(data["keys_removed"], Value::Null);
    assert!(
        data["message"]
            .as_str()
            .unwrap()
            .contains("invalidated 2 tags")
    );
    assert_eq!(present(&cache).await, ["user:2:profile", "song:1"]);
}

#[tokio::test]
async fn http_admin_clear_by_pattern() {
    let cache = Cache::new();
    seed(&cache).await;
    let server = serve(&cache, Some(TOKEN)).await;
    let answer = clear(&server, json!({"pattern": "user:*"})).await;
    let data = answer.data();
    assert_eq!(data["pattern"], "user:*");
    assert_eq!(data["keys_removed"], 2);
    assert_eq!(present(&cache).await, ["song:1"]);
}

#[tokio::test]
async fn http_admin_clear_by_namespace() {
    let cache = Cache::new();
    seed(&cache).await;
    let server = serve(&cache, Some(TOKEN)).await;
    let answer = clear(&server, json!({"namespace": "songs"})).await;
    assert_eq!(answer.data()["namespace_cleared"], "songs");
    assert_eq!(present(&cache).await, ["user:1:profile", "user:2:profile"]);
}

#[tokio::test]
async fn http_admin_clear_all() {
    let cache = Cache::new();
    seed(&cache).await;
    let server = serve(&cache, Some(TOKEN)).await;
    let answer = clear(&server, json!({"all": true})).await;
    let data = answer.data();
    assert_eq!(data["all_cleared"], true);
    assert!(present(&cache).await.is_empty());
    assert_eq!(cache.stats().keys_count, 0);
}

#[tokio::test]
async fn http_admin_clear_rejects_bad_requests() {
    let cache = Cache::new();
    seed(&cache).await;
    let server = serve(&cache, Some(TOKEN)).await;
    let json_type = Some("application/json");

    for body in [
        "{}",
        r#"{"all": false}"#,
        r#"{"tags": []}"#,
        r#"{"tags": null}"#,
    ] {
        let answer = clear_raw(&server, Some(TOKEN), json_type, body).await;
        let message = answer.error(StatusCode::BAD_REQUEST, "invalid_body");
        assert!(message.contains("nothing to clear"), "{body}: {message}");
    }
    let cases = [
        ("", "empty body", "EOF"),
        (r#"{"everything": true}"#, "unknown field", "everything"),
        (r#"{"all": "yes"}"#, "wrong type", "all"),
        (r#"{"tags": "user:1"}"#, "tags not a list", "tags"),
        ("tags=user:1", "not JSON", "as JSON"),
    ];
    for (body, what, named) in cases {
        let answer = clear_raw(&server, Some(TOKEN), json_type, body).await;
        let message = answer.error(StatusCode::BAD_REQUEST, "invalid_body");
        assert!(message.contains(named), "{what}: {message}");
    }
    for content_type in [None, Some("text/plain")] {
        let answer = clear_raw(&server, Some(TOKEN), content_type, r#"{"all": true}"#).await;
        let message = answer.error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
        assert!(message.contains("Content-Type"), "{message}");
    }

    let answer = clear(&server, json!({"pattern": "user:[", "all": true})).await;
    let message = answer.error(StatusCode::BAD_REQUEST, "invalid_pattern");
    assert!(message.contains("user:["), "{message}");
    let answer = clear(&server, json!({"tags": ["user:1", ""]})).await;
    let message = answer.error(StatusCode::BAD_REQUEST, "invalid_tag");
    assert!(message.contains("tag"), "{message}");
    let answer = clear(&server, json!({"tags": ["bad\ntag"]})).await;
    answer.error(StatusCode::BAD_REQUEST, "invalid_tag");
    let answer = clear(&server, json!({"namespace": ""})).await;
    answer.error(StatusCode::BAD_REQUEST, "invalid_namespace");

    assert_eq!(
        present(&cache).await.len(),
        3,
        "a rejected request clears nothing"
    );
}

#[tokio::test]
async fn http_admin_auth() {
    let cache = Cache::new();
    seed(&cache).await;
    let server = serve(&cache, Some(TOKEN)).await;
    let body = r#"{"tags": ["user:1"]}"#;
    let json_type = Some("application/json");

    let answer = clear_raw(&server, None, json_type, body).await;
    answer.error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(
        answer.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(answer.headers["cache-control"], "no-store");

    for wrong in ["wrong", "test-admin-toke", "test-admin-token2", ""] {
        let answer = clear_raw(&server, Some(wrong), json_type, body).await;
        answer.error(StatusCode::UNAUTHORIZED, "unauthorized");
        assert!(answer.headers.contains_key("www-authenticate"));
    }
    // Authentication comes before the body: a bad body without the token is a 401.
    let answer = clear_raw(&server, Some("wrong"), None, "not json").await;
    answer.error(StatusCode::UNAUTHORIZED, "unauthorized");
    let answer = reqwest::Client::new()
        .post(server.url(&format!("{PREFIX}/clear")))
        .header("authorization", format!("Basic {TOKEN}"))
        .json(&json!({"all": true}))
        .send()
        .await
        .unwrap();
    Answer::from(answer)
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(
        present(&cache).await.len(),
        3,
        "nothing cleared without the token"
    );

    let answer = clear_raw(&server, Some(TOKEN), json_type, body).await;
    answer.data();
    assert_eq!(present(&cache).await, ["user:2:profile", "song:1"]);

    // No token configured: the admin routes are disabled, whatever is sent.
    let disabled = serve(&cache, None).await;
    for token in [None, Some(TOKEN), Some("")] {
        let answer = clear_raw(&disabled, token, json_type, body).await;
        let message = answer.error(StatusCode::FORBIDDEN, "forbidden");
        assert!(message.contains("CACHE_ADMIN_TOKEN"), "{message}");
    }
    let options = ManagementOptions::from_vars([("CACHE_ADMIN_TOKEN", "")]).unwrap();
    assert!(!options.has_admin_token(), "empty counts as unset");
}

/// Issue 20, item 6: a pattern longer than any key is a 400, not a compiled pattern kept
/// in memory and published to every instance; the answer does not echo it whole.
#[tokio::test]
async fn http_admin_clear_refuses_a_pattern_longer_than_any_key() {
    let cache = Cache::new();
    seed(&cache).await;
    let server = serve(&cache, Some(TOKEN)).await;
    let pattern = "a*".repeat(900_000);
    let answer = clear(&server, json!({ "pattern": pattern })).await;
    let message = answer.error(StatusCode::BAD_REQUEST, "invalid_pattern");
    assert!(
        message.len() < 1_000,
        "the answer quotes a bounded part: {} bytes",
        message.len()
    );
    assert_eq!(present(&cache).await.len(), 3, "nothing removed");
}

/// Issue 20, item 8: two `Authorization` headers (the right one first) are refused, and
/// failed attempts are throttled — 429 with `Retry-After`, even for the right token, until
/// the window ends.
#[tokio::test]
async fn http_admin_auth_refuses_two_headers_and_throttles_guessing() {
    let cache = Cache::new();
    let server = serve(&cache, Some(TOKEN)).await;
    let body = r#"{"all": true}"#;
    let answer = reqwest::Client::new()
        .post(server.url(&format!("{PREFIX}/clear")))
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("authorization", "Bearer wrong")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    Answer::from(answer)
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");
    // Nine more guesses fill the window (ten failures, the two headers included).
    for guess in 0..9 {
        let answer = clear_raw(
            &server,
            Some(&format!("guess-{guess}")),
            Some("application/json"),
            body,
        )
        .await;
        answer.error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let answer = clear_raw(&server, Some(TOKEN), Some("application/json"), body).await;
    answer.error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
    let retry: u64 = answer.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
}

#[tokio::test]
async fn http_admin_unknown_routes_and_methods_answer_the_envelope() {
    let cache = Cache::new();
    let server = serve(&cache, Some(TOKEN)).await;
    let answer = get(&server, "/nothing-here").await;
    let message = answer.error(StatusCode::NOT_FOUND, "not_found");
    assert!(message.contains("/nothing-here"), "{message}");
    assert_eq!(answer.headers["cache-control"], "no-store");

    let answer = get(&server, "/clear").await;
    answer.error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let response = reqwest::Client::new()
        .post(server.url(&format!("{PREFIX}/health")))
        .send()
        .await
        .unwrap();
    Answer::from(response)
        .await
        .error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[tokio::test]
async fn http_admin_dashboard_is_one_self_contained_page() {
    let cache = Cache::new();
    let server = serve(&cache, None).await;
    let response = reqwest::get(server.url(&format!("{PREFIX}/dashboard")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-store");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"));
    let page = response.text().await.unwrap();
    assert!(page.starts_with("<!doctype html>"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external resource"
    );
    for relative in [r#""health""#, r#""metrics""#, r#""clear""#] {
        assert!(page.contains(relative), "polls {relative} relatively");
    }
}

#[tokio::test]
async fn http_admin_get_answers_carry_an_etag_and_revalidate() {
    let cache = Cache::new();
    let server = serve(&cache, None).await;
    let client = reqwest::Client::new();
    for route in ["dashboard", "health", "analytics"] {
        let url = server.url(&format!("{PREFIX}/{route}"));
        let first = client.get(&url).send().await.unwrap();
        assert_eq!(first.status(), StatusCode::OK, "{route}");
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"'), "{route}: a strong ETag, got {etag}");
        if route == "analytics" {
            // Its figures include the time of the answer: a new body, a new ETag.
            continue;
        }
        let again = client
            .get(&url)
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{route}");
        assert_eq!(again.headers()["cache-control"], "no-store", "{route}");
        assert!(
            again.text().await.unwrap().is_empty(),
            "{route}: a 304 has no body"
        );
    }
}
