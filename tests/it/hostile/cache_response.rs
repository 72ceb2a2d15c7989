//! `CacheResponse` on a route whose tag templates take path parameters: a request whose
//! parameter makes no valid tag is the request's fault, answered by the handler uncached —
//! it used to be a 500 "internal" answer, as if the layer were misconfigured.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use querycache::Cache;
use querycache::http::{ApiError, ApiResponse, cache_api_response};
use tower::ServiceExt;

fn router(cache: &Cache) -> Router {
    let layer = |tags: [&str; 2]| {
        cache_api_response(cache, Duration::from_secs(60), tags).expect("valid templates")
    };
    Router::new()
        .route(
            "/songs/{id}",
            get(|id: Result<Path<i32>, PathRejection>| async move {
                let Path(id) = id?;
                Ok::<_, ApiError>(ApiResponse::new(id))
            })
            .route_layer(layer(["model:songs:{id}", "model:songs#bulk"])),
        )
        .route(
            "/names/{name}",
            get(|Path(name): Path<String>| async move { ApiResponse::new(name) })
                .route_layer(layer(["name:{name}", "names"])),
        )
}

async fn get_status(router: &Router, path: &str) -> (StatusCode, Option<String>) {
    let request = Request::get(path).body(Body::empty()).expect("a request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let x_cache = response
        .headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (response.status(), x_cache)
}

#[tokio::test]
async fn path_parameters_that_make_no_tag_are_the_handlers_to_judge() {
    let cache = Cache::new();
    let router = router(&cache);
    let long = "9".repeat(2000);
    for path in [
        "/songs/%0A".to_owned(),
        "/songs/%7F".to_owned(),
        "/songs/%C2%85".to_owned(),
        "/songs/%FF%FE".to_owned(),
        format!("/songs/{long}"),
    ] {
        assert_eq!(
            get_status(&router, &path).await.0,
            StatusCode::BAD_REQUEST,
            "{path}: the id extractor's 400, not a 500"
        );
    }
    // A handler that takes any text answers; nothing is cached for a path with no tag.
    let long_name = format!("/names/{}", "n".repeat(2000));
    for path in ["/names/a%0Ab", long_name.as_str()] {
        for _ in 0..2 {
            let (status, x_cache) = get_status(&router, path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_ne!(
                x_cache.as_deref(),
                Some("HIT"),
                "{path}: never from the cache"
            );
        }
    }
    assert_eq!(
        cache.stats().keys_count,
        0,
        "nothing stored for untaggable paths"
    );
    // A path that makes a tag is cached as before.
    assert_eq!(
        get_status(&router, "/names/ok").await,
        (StatusCode::OK, Some("MISS".into()))
    );
    assert_eq!(
        get_status(&router, "/names/ok").await,
        (StatusCode::OK, Some("HIT".into()))
    );
}
