//! The operator's surface of the songs app: admin auth, clear and warm through HTTP,
//! warming at start-up, health, metrics, analytics, Prometheus text, the dashboard page.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{DB, STORE};
use crate::support::songs::{Answer, SongsApp};

const TOKEN: &str = "s3cret-token";

async fn admin(app: &SongsApp, path: &str, body: Value, token: Option<&str>) -> Answer {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("authorization", b.as_str()))
        .collect();
    app.send(Method::POST, path, Some(body), &headers).await
}

/// Polls health until the warming run has finished (or fails after 20 s).
async fn warming_finished(app: &SongsApp) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let health = app.get("/api/v1/cache/health").await;
        // 503 while a tiered instance is starting (`ready: false`): the body is the same.
        let warming = health.body["data"]["warming"].clone();
        if warming["state"] == "finished" {
            return warming;
        }
        assert!(warming["state"] != "failed", "warming failed: {warming}");
        assert!(
            Instant::now() < deadline,
            "warming did not finish: {warming}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_need_the_token() {
    let Some(app) = SongsApp::start_with(STORE, DB, |b| b, Some(TOKEN)).await else {
        return;
    };
    for path in ["/api/v1/cache/clear", "/api/v1/cache/warm"] {
        let body = if path.ends_with("clear") {
            json!({"all": true})
        } else {
            json!({})
        };
        let none = admin(&app, path, body.clone(), None).await;
        assert_eq!(
            (none.status, none.error_code()),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{path}"
        );
        let wrong = admin(&app, path, body.clone(), Some("s3cret-tokeN")).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{path}");
        let right = admin(&app, path, body, Some(TOKEN)).await;
        assert!(right.status.is_success(), "{path}: {right:?}");
        assert_eq!(right.header("cache-control"), Some("no-store"), "{path}");
    }
    // Bodies are validated (after auth).
    for body in [
        json!({}),
        json!({"all": false}),
        json!({"tags": "model:songs"}),
        json!({"everything": true}),
    ] {
        let answer = admin(&app, "/api/v1/cache/clear", body.clone(), Some(TOKEN)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}: {answer:?}");
    }
    warming_finished(&app).await;
    let unknown = admin(
        &app,
        "/api/v1/cache/warm",
        json!({"types": ["playlists"]}),
        Some(TOKEN),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{unknown:?}");
    assert!(
        unknown.text.contains("playlists"),
        "the unknown type is named: {unknown:?}"
    );

    let Some(locked) = SongsApp::start(STORE, DB).await else {
        return;
    };
    for path in ["/api/v1/cache/clear", "/api/v1/cache/warm"] {
        let answer = admin(&locked, path, json!({"all": true}), Some(TOKEN)).await;
        assert_eq!(
            (answer.status, answer.error_code()),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{path}: no token configured"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_through_http_makes_cached_answers_misses() {
    let Some(app) = SongsApp::start_with(STORE, DB, |b| b, Some(TOKEN)).await else {
        return;
    };
    let author = app.user("Art").await;
    let song = app.song(author, "Moanin'").await;
    let song_path = format!("/api/v1/songs/{song}");
    let user_path = format!("/api/v1/users/{author}");
    for path in [&song_path, &user_path] {
        app.get(path).await;
        assert_eq!(app.get(path).await.x_cache(), "HIT");
    }
    let cleared = admin(
        &app,
        "/api/v1/cache/clear",
        json!({"tags": [format!("model:songs:{song}")]}),
        Some(TOKEN),
    )
    .await;
    assert_eq!(cleared.status, StatusCode::OK, "{cleared:?}");
    assert_eq!(app.get(&song_path).await.x_cache(), "MISS");
    assert_eq!(
        app.get(&user_path).await.x_cache(),
        "HIT",
        "another tag is untouched"
    );

    let all = admin(
        &app,
        "/api/v1/cache/clear",
        json!({"all": true}),
        Some(TOKEN),
    )
    .await;
    assert_eq!(all.status, StatusCode::OK, "{all:?}");
    assert_eq!(app.get(&user_path).await.x_cache(), "MISS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_then_hit_without_a_query() {
    let Some(app) = SongsApp::start_with(STORE, DB, |b| b, Some(TOKEN)).await else {
        return;
    };
    let author = app.user("Lee").await;
    let songs = [
        app.song(author, "Speak No Evil").await,
        app.song(author, "Infant Eyes").await,
    ];
    let started = admin(
        &app,
        "/api/v1/cache/warm",
        json!({"types": ["songs", "users"]}),
        Some(TOKEN),
    )
    .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{started:?}");
    let warming = warming_finished(&app).await;
    assert_eq!(warming["warmers_done"], 2, "{warming}");
    // songs: the list, the count, 2 songs; users: the user and their songs.
    assert_eq!(warming["entries"], 6, "{warming}");

    let queries = app.app.database_queries();
    let mut paths: Vec<String> = songs
        .iter()
        .map(|id| format!("/api/v1/songs/{id}"))
        .collect();
    paths.extend([
        "/api/v1/songs".to_owned(),
        "/api/v1/songs/count".to_owned(),
        format!("/api/v1/users/{author}"),
        format!("/api/v1/users/{author}/songs"),
    ]);
    for path in &paths {
        let answer = app.get(path).await;
        assert_eq!(
            (answer.status, answer.x_cache()),
            (StatusCode::OK, "HIT"),
            "{path} after warming"
        );
    }
    assert_eq!(
        app.app.database_queries(),
        queries,
        "warmed answers run no query"
    );

    // A forced run recomputes what is present.
    let computations = app.cache.stats().computations;
    let forced = admin(
        &app,
        "/api/v1/cache/warm",
        json!({"types": ["songs"], "force": true}),
        Some(TOKEN),
    )
    .await;
    assert_eq!(forced.status, StatusCode::ACCEPTED, "{forced:?}");
    warming_finished(&app).await;
    assert!(
        app.cache.stats().computations > computations,
        "force recomputed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_warm_on_startup_warms_before_the_first_request() {
    let Some(app) = SongsApp::start_with(STORE, DB, |b| b.warm_on_startup(true), None).await else {
        return;
    };
    let warming = warming_finished(&app).await;
    assert_eq!(warming["types"], json!(["songs", "users"]), "{warming}");
    for path in ["/api/v1/songs", "/api/v1/songs/count"] {
        assert_eq!(
            app.get(path).await.x_cache(),
            "HIT",
            "{path} was warmed at start-up"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_analytics_and_prometheus_reflect_the_traffic() {
    let Some(app) = SongsApp::start(STORE, DB).await else {
        return;
    };
    let author = app.user("Joe").await;
    let song = app.song(author, "Song for My Father").await;
    let path = format!("/api/v1/songs/{song}");
    for _ in 0..200 {
        app.get(&path).await;
    }
    app.get("/api/v1/songs/count").await;

    let health = app.get("/api/v1/cache/health").await;
    assert_eq!(health.status, StatusCode::OK);
    let data = health.data();
    assert_eq!(data["healthy"], true, "{data}");
    assert_eq!(data["fallback_available"], true);
    assert_eq!(data["fallback_active"], false);
    assert_eq!(data["redis_connected"], data["store"] != "memory", "{data}");
    assert!(data.get("error").is_some());

    let metrics = app.get("/api/v1/cache/metrics").await;
    let m = metrics.data();
    for field in crate::support::http::METRICS_FIELDS {
        assert!(m[field].is_number(), "metrics has {field}: {m}");
    }
    assert!(m["hits"].as_u64().unwrap() >= 199, "{m}");
    assert!(m["hit_rate"].as_f64().unwrap() > 0.8, "{m}");
    assert!(m["keys_count"].as_u64().unwrap() >= 2, "{m}");

    let analytics = app.get("/api/v1/cache/analytics").await;
    let a = analytics.data();
    assert!(a["efficiency"]["hit_rate"].as_f64().unwrap() > 0.8, "{a}");
    let top = a["usage"]["top_keys"].as_array().expect("top keys");
    assert!(
        !top.is_empty(),
        "200 lookups of one answer make a top key: {a}"
    );
    assert!(
        a["recommendations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["message"]
                .as_str()
                .unwrap_or("")
                .to_lowercase()
                .contains("excellent")),
        "a hit rate above 80% is called excellent: {a}"
    );
    assert!(!a["timeline"].as_array().unwrap().is_empty(), "{a}");

    let prometheus = app.get("/metrics").await;
    assert_eq!(prometheus.status, StatusCode::OK);
    assert!(prometheus.header("content-type").is_some_and(|c| {
        c.starts_with("application/openmetrics-text") || c.starts_with("text/plain")
    }));
    let hits_line = prometheus
        .text
        .lines()
        .find(|l| l.starts_with("querycache_hits_total{") && l.contains("namespace=\"http\""))
        .unwrap_or_else(|| panic!("a hits line for the http namespace:\n{}", prometheus.text));
    let value: f64 = hits_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(value >= 199.0, "{hits_line}");

    let dashboard = app.get("/api/v1/cache/dashboard").await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert!(
        dashboard
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/html"))
    );
    assert!(dashboard.text.contains("<canvas") || dashboard.text.contains("<svg"));
}
