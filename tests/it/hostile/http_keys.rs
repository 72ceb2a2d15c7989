//! Issue 20, item 2: the public analytics page was an offline password oracle. Keys of
//! cached HTTP answers hashed `Authorization` and the `Vary` values with an unkeyed xxh3,
//! and `GET /analytics` listed the top keys to anyone: a few offline guesses recovered a
//! Basic-auth password, and the same list showed other users' paths and planted text.
//!
//! Pinned here, through the public API: the hash is keyed with `CACHE_KEY_SECRET` (an
//! attacker who knows the algorithm cannot recompute it, instances with one secret agree on
//! it); the public analytics view shows no path, query or hash a client sent, the admin
//! view does; a short secret is refused naming the variable and `Debug` never shows it; the
//! dashboard renders keys as text.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use querycache::http::{CacheResponse, ManagementOptions, management_router};
use querycache::{Cache, CacheConfig, Key, analytics::REDACTED_KEY, config::MIN_KEY_SECRET_LEN};
use serde_json::Value;
use tower::ServiceExt;

const TOKEN: &str = "http-keys-admin-token";
const SECRET_A: &str = "secret-a-4f0c9e2b7d1a6e58";
const SECRET_B: &str = "secret-b-93d7a1c05e2f4b86";
/// `alice:hunter2`, as a browser sends it.
const BASIC: &str = "Basic YWxpY2U6aHVudGVyMg==";
/// Enough lookups of one key for the sampled top-keys sketch (one lookup in 1 to 31,
/// drawn per thread) to record it at least twice.
const LOOKUPS: usize = 64;

/// `/api/v1/songs/{id}` cached (namespace `http`, varying on `Accept-Language`), and the
/// management router under `/api/v1/cache` with admin token [`TOKEN`] (or none).
fn app(cache: &Cache, token: Option<&str>) -> Router {
    let layer = CacheResponse::new(cache)
        .ttl(Duration::from_secs(60))
        .tags(["model:songs:{id}"])
        .vary(["accept-language"])
        .build()
        .expect("a valid layer");
    let options = match token {
        Some(token) => ManagementOptions::new().admin_token(token),
        None => ManagementOptions::new(),
    };
    Router::new()
        .route(
            "/api/v1/songs/{id}",
            get(|Path(id): Path<String>| async move { format!("song {id}") }).route_layer(layer),
        )
        .nest("/api/v1/cache", management_router(cache.clone(), options))
}

fn cache_with_secret(secret: &str) -> Cache {
    Cache::builder()
        .key_secret(secret)
        .build()
        .expect("a valid configuration")
}

/// Sends `GET uri` with `headers` [`LOOKUPS`] times, each answered 200.
async fn traffic(app: &Router, uri: &str, headers: &[(header::HeaderName, &str)]) {
    for _ in 0..LOOKUPS {
        let mut request = Request::get(uri);
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        let request = request.body(Body::empty()).expect("a request");
        let response = app.clone().oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
    }
}

/// `GET /api/v1/cache/analytics` with `authorization`: the status and the JSON body.
async fn analytics(app: &Router, authorization: Option<&str>) -> (StatusCode, Value) {
    let mut request = Request::get("/api/v1/cache/analytics");
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let request = request.body(Body::empty()).expect("a request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("a body");
    (status, serde_json::from_slice(&body).expect("JSON"))
}

/// The top keys' texts in an analytics answer.
fn top_keys(body: &Value) -> Vec<String> {
    body["data"]["usage"]["top_keys"]
        .as_array()
        .unwrap_or_else(|| panic!("top keys in {body}"))
        .iter()
        .map(|k| k["key"].as_str().expect("a key text").to_owned())
        .collect()
}

/// The one key of the admin analytics view that starts with `prefix`.
async fn admin_key(app: &Router, prefix: &str) -> String {
    let (status, body) = analytics(app, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<String> = top_keys(&body)
        .into_iter()
        .filter(|k| k.starts_with(prefix))
        .collect();
    assert_eq!(keys.len(), 1, "one key under {prefix}: {body}");
    keys[0].clone()
}

/// The key the old code made: `Key::for_args` over the query, the `Vary` values, and the
/// unkeyed xxh3-128 of the `Authorization` values — what an attacker who knows the
/// algorithm computes for each guess.
fn unkeyed_key(
    path: &str,
    vary: &[&[u8]],
    authorization: Option<&str>,
) -> (String, Option<String>) {
    let hash = authorization.map(|value| {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(value.as_bytes());
        hasher.update(b"\n");
        format!("{:032x}", hasher.digest128())
    });
    let vary: Vec<Vec<&[u8]>> = vec![vary.to_vec()];
    let key = Key::for_args(path, &(None::<&str>, vary, hash.clone())).expect("a key");
    (key.as_str().to_owned(), hash)
}

/// The key of `GET /api/v1/songs/1` with `headers` on a fresh cache with `secret`, as the
/// admin analytics view shows it.
async fn key_of(secret: &str, headers: &[(header::HeaderName, &str)]) -> String {
    let cache = cache_with_secret(secret);
    let app = app(&cache, Some(TOKEN));
    traffic(&app, "/api/v1/songs/1", headers).await;
    admin_key(&app, "http:/api/v1/songs/1:").await
}

#[tokio::test]
async fn http_entry_keys_hash_credentials_and_vary_values_with_the_key_secret() {
    const PATH: &str = "http:/api/v1/songs/1";
    let credentials = [(header::AUTHORIZATION, BASIC)];
    let language = [(header::ACCEPT_LANGUAGE, "de-CH")];

    let mut under = Vec::new();
    for secret in [SECRET_A, SECRET_B, SECRET_A] {
        // A fresh cache for each key: another instance, with the secret of its configuration.
        under.push((
            key_of(secret, &credentials).await,
            key_of(secret, &language).await,
            key_of(secret, &[]).await,
        ));
    }
    let (a, b, a_again) = (&under[0], &under[1], &under[2]);

    assert_ne!(a.0, b.0, "the credentials' key depends on the secret");
    assert_ne!(a.1, b.1, "the Vary values' key depends on the secret");
    assert_eq!(a, a_again, "instances with one secret agree on every key");
    assert_eq!(
        a.2, b.2,
        "a request without credentials or Vary values needs no secret: shared by all"
    );

    // The attacker's offline check, with the right guess: it reproduces neither the key nor
    // the header's hash, under either secret.
    let (guessed, hash) = unkeyed_key(PATH, &[], Some(BASIC));
    let hash = hash.expect("a hash");
    let (guessed_language, _) = unkeyed_key(PATH, &[b"de-CH"], None);
    for key in [&a.0, &b.0] {
        assert_ne!(
            key, &guessed,
            "the key cannot be recomputed without the secret"
        );
        assert!(!key.contains(&hash), "{key} holds the xxh3 of the header");
        assert!(
            !key.contains("YWxpY2U6aHVudGVyMg"),
            "{key} holds the header"
        );
    }
    for key in [&a.1, &b.1] {
        assert_ne!(
            key, &guessed_language,
            "the key cannot be recomputed without the secret"
        );
    }
}

#[tokio::test]
async fn public_analytics_show_no_path_query_or_hash_a_client_sent() {
    let cache = cache_with_secret(SECRET_A);
    let app = app(&cache, Some(TOKEN));
    traffic(&app, "/api/v1/songs/123456789", &[]).await;
    // Text planted in a path (a key's readable part) and in a query (hashed into it).
    traffic(
        &app,
        "/api/v1/songs/planted%3Cscript%3E?q=planted%3Cscript%3Ealert(1)%3C/script%3E",
        &[],
    )
    .await;
    traffic(&app, "/api/v1/songs/8", &[(header::AUTHORIZATION, BASIC)]).await;

    let (status, admin) = analytics(&app, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(admin["data"]["usage"]["keys_redacted"], false);
    let keys = top_keys(&admin);
    for sent in [
        "http:/api/v1/songs/123456789:",
        "http:/api/v1/songs/planted%3Cscript%3E:",
        "http:/api/v1/songs/8:",
    ] {
        assert!(
            keys.iter().any(|k| k.contains(sent)),
            "admin view lists {sent}: {keys:?}"
        );
    }

    // No token, a wrong token, a malformed header: the public view, never a 401.
    for authorization in [None, Some("Bearer not-the-token"), Some(BASIC)] {
        let (status, public) = analytics(&app, authorization).await;
        assert_eq!(status, StatusCode::OK, "{authorization:?}: the public view");
        let data = &public["data"];
        assert_eq!(data["usage"]["keys_redacted"], true, "{authorization:?}");
        let top = data["usage"]["top_keys"].as_array().expect("top keys");
        assert_eq!(top.len(), keys.len(), "the same rows, redacted");
        for row in top {
            assert_eq!(row["key"], REDACTED_KEY, "{row}");
            assert_eq!(row["namespace"], "http", "{row}");
            assert!(row["hits"].as_u64().unwrap() + row["misses"].as_u64().unwrap() > 0);
        }
        let text = public.to_string();
        for sent in [
            "123456789",
            "planted",
            "script",
            "/api/v1/songs",
            "YWxpY2U6",
        ] {
            assert!(!text.contains(sent), "{authorization:?}: {sent} in {text}");
        }
        for key in &keys {
            let hash = key.rsplit(':').next().expect("a hash part");
            assert!(!text.contains(hash), "{authorization:?}: {hash} in {text}");
        }
    }
}

#[tokio::test]
async fn wrong_tokens_on_analytics_count_as_failed_admin_attempts() {
    let cache = cache_with_secret(SECRET_A);
    let app = app(&cache, Some(TOKEN));
    traffic(&app, "/api/v1/songs/123456789", &[]).await;
    // Guessing the token through analytics is throttled like guessing it anywhere else:
    // after the allowed failures, even the right token gets the public view for a while.
    for _ in 0..10 {
        let (status, body) = analytics(&app, Some("Bearer guess-guess-guess")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["data"]["usage"]["keys_redacted"], true);
    }
    let (status, body) = analytics(&app, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["data"]["usage"]["keys_redacted"], true,
        "throttled: the token is not even checked"
    );
    let clear = Request::post("/api/v1/cache/clear")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"all": true}"#))
        .expect("a request");
    let response = app.clone().oneshot(clear).await.expect("infallible");
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "one throttle for both"
    );

    // Without an admin token configured, nobody sees keys.
    let open = self::app(&cache, None);
    let (status, body) = analytics(&open, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["usage"]["keys_redacted"], true);
}

#[test]
fn a_short_cache_key_secret_is_refused_naming_the_variable_and_never_shown() {
    let short = "s".repeat(MIN_KEY_SECRET_LEN - 1);
    let err = CacheConfig::from_vars([("CACHE_KEY_SECRET", short.as_str())])
        .unwrap_err()
        .to_string();
    assert!(err.contains("CACHE_KEY_SECRET"), "{err}");
    assert!(
        err.contains(&format!("at least {MIN_KEY_SECRET_LEN}")),
        "{err}"
    );
    assert!(!err.contains(&short), "the value is not shown: {err}");
    let err = Cache::builder()
        .key_secret(&short)
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("CACHE_KEY_SECRET") && !err.contains(&short),
        "{err}"
    );

    let blank = CacheConfig::from_vars([("CACHE_KEY_SECRET", "  ")]).expect("blank: unset");
    assert!(!blank.has_key_secret());

    let config = CacheConfig::from_vars([("CACHE_KEY_SECRET", SECRET_A)]).expect("long enough");
    assert!(config.has_key_secret());
    for shown in [
        format!("{config:?}"),
        format!("{:?}", CacheConfig::builder().key_secret(SECRET_A)),
        format!("{:?}", cache_with_secret(SECRET_A)),
    ] {
        assert!(!shown.contains(SECRET_A), "Debug shows the secret: {shown}");
        assert!(
            !shown.contains("4f0c9e2b"),
            "Debug shows part of the secret: {shown}"
        );
    }
    assert!(format!("{config:?}").contains("key_secret: Some(<redacted>)"));
}

/// The dashboard's script inserts data as text only: nothing in it parses a string as HTML,
/// and each top key goes through `textContent`. (The page in a browser, with a planted key:
/// `http_dashboard`.)
#[tokio::test]
async fn the_dashboard_renders_keys_as_text() {
    let app = app(&Cache::new(), Some(TOKEN));
    let request = Request::get("/api/v1/cache/dashboard")
        .body(Body::empty())
        .expect("a request");
    let response = app.oneshot(request).await.expect("infallible");
    let page = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("the page");
    let page = String::from_utf8(page.to_vec()).expect("UTF-8");
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "createContextualFragment",
        "DOMParser",
        "srcdoc",
        "eval(",
        "new Function",
    ] {
        assert!(!page.contains(sink), "the dashboard uses {sink}");
    }
    assert!(page.contains("td.textContent = text;"), "cells are text");
    assert!(
        page.contains(r#"cell(String(k.key), "key")"#),
        "a key is a text cell"
    );
    assert!(
        page.contains(r#"headers.Authorization = "Bearer " + token"#),
        "analytics are asked for with the token once given"
    );
}
