//! The opt-in `X-Cache-Tags` header of cached answers: absent by default; when enabled,
//! the answer's tags the filter allows (model tags by default, never `user:*`) on misses,
//! hits and deep-ETag 304s, and none on answers that are not cached.

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use querycache::Cache;
use querycache::http::{CacheResponse, TagFilter};

use crate::support::http::TestServer;

/// `/songs/{id}` cached with tags `model:songs`, `model:songs:{id}` and `user:{id}`; ids
/// over 1000 answer 500 (not cached).
async fn serve(tags_header: Option<TagFilter>) -> TestServer {
    let cache = Cache::new();
    let mut layer =
        CacheResponse::new(&cache).tags(["model:songs", "model:songs:{id}", "user:{id}"]);
    if let Some(filter) = tags_header {
        layer = layer.tags_header(filter);
    }
    let app = Router::new()
        .route(
            "/songs/{id}",
            get(|Path(id): Path<u64>| async move {
                if id > 1000 {
                    (StatusCode::INTERNAL_SERVER_ERROR, "down".to_owned())
                } else {
                    (StatusCode::OK, format!("song {id}"))
                }
            }),
        )
        .route_layer(layer.build().unwrap());
    TestServer::start(app).await
}

#[tokio::test]
async fn http_tags_header_is_off_by_default() {
    let server = serve(None).await;
    for _ in 0..2 {
        let response = reqwest::get(server.url("/songs/42")).await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("x-cache").is_some());
        assert!(
            response.headers().get("x-cache-tags").is_none(),
            "{:?}",
            response.headers()
        );
    }
}

#[tokio::test]
async fn http_tags_header_when_enabled_shows_allowed_tags() {
    let server = serve(Some(TagFilter::default())).await;
    let client = reqwest::Client::new();
    let mut etag = None;
    for expected in ["MISS", "HIT"] {
        let response = client.get(server.url("/songs/42")).send().await.unwrap();
        assert_eq!(response.headers()["x-cache"], expected);
        assert_eq!(
            response.headers()["x-cache-tags"],
            "model:songs, model:songs:42",
            "no user:42 ({expected})"
        );
        etag = Some(response.headers()["etag"].to_str().unwrap().to_owned());
    }
    let not_modified = client
        .get(server.url("/songs/42"))
        .header("if-none-match", etag.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), 304);
    assert_eq!(
        not_modified.headers()["x-cache-tags"],
        "model:songs, model:songs:42"
    );

    let failed = client.get(server.url("/songs/1001")).send().await.unwrap();
    assert_eq!(failed.status(), 500);
    assert!(
        failed.headers().get("x-cache-tags").is_none(),
        "an answer not cached carries no tags"
    );

    let wider = serve(Some(TagFilter::all())).await;
    let response = reqwest::get(wider.url("/songs/7")).await.unwrap();
    assert_eq!(
        response.headers()["x-cache-tags"],
        "model:songs, model:songs:7, user:7"
    );
}
