//! What is cached and for whom: cookies and errors, Authorization and Vary, HEAD, other
//! methods, a disabled cache, single flight, configuration errors.

use super::*;

#[tokio::test]
async fn answers_that_set_a_cookie_or_fail_are_not_cached() {
    let cache = Cache::new();
    let db = Db::with_songs(&[(7, "Seven")]);
    let login_runs = Arc::new(AtomicUsize::new(0));
    let runs = login_runs.clone();
    let router = Router::new()
        .route(
            "/session",
            get(move || async move {
                runs.fetch_add(1, Ordering::SeqCst);
                ([(header::SET_COOKIE, "session=abc")], "welcome")
            }),
        )
        .route("/songs/{id}", get(get_song))
        .route_layer(cache_api_response(&cache, TTL, ["model:songs"]).unwrap())
        .with_state(db.clone());
    let base = serve(router).await;

    for _ in 0..2 {
        let answer = fetch(&format!("{base}/session"), &[]).await;
        assert_eq!(x_cache(&answer), "MISS");
        assert_eq!(header_of(&answer, "set-cookie"), "session=abc");
        assert!(answer.headers().get("etag").is_none(), "passed on as it is");
    }
    assert_eq!(login_runs.load(Ordering::SeqCst), 2);

    for _ in 0..2 {
        let missing = fetch(&format!("{base}/songs/99"), &[]).await;
        assert_eq!(missing.status(), 404);
        assert_eq!(x_cache(&missing), "MISS");
        let body: serde_json::Value = missing.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found");
    }
    assert_eq!(db.queries(), 2, "the 404 ran its query twice");

    // With cache_errors, the 404 is kept (and carries no ETag).
    let cache = Cache::new();
    let layer = CacheResponse::new(&cache)
        .tags(["model:songs:{id}", "model:songs#bulk"])
        .cache_errors(true)
        .build()
        .unwrap();
    let db = Db::with_songs(&[]);
    let url = format!("{}/songs/99", serve(songs(&db, layer)).await);
    let first = fetch(&url, &[]).await;
    let second = fetch(&url, &[]).await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (404, 404)
    );
    assert_eq!(
        (x_cache(&first), x_cache(&second)),
        ("MISS".into(), "HIT".into())
    );
    assert!(second.headers().get("etag").is_none());
    assert_eq!(db.queries(), 1);
    db.write(&cache, 99, "Ninety-nine").await;
    let created = fetch(&url, &[]).await;
    assert_eq!(created.status(), 200, "the write ends the cached 404");
}

async fn whoami(headers: HeaderMap) -> impl IntoResponse {
    let who = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("anonymous")
        .to_owned();
    let language = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("en")
        .to_owned();
    ApiResponse::new(format!("{who} in {language}"))
}

#[tokio::test]
async fn authorization_values_never_share_an_answer() {
    let cache = Cache::new();
    let router = Router::new()
        .route("/me", get(whoami))
        .route_layer(cache_api_response(&cache, TTL, ["user:me"]).unwrap());
    let url = format!("{}/me", serve(router).await);

    let alice = fetch(&url, &[("authorization", "Bearer alice")]).await;
    assert_eq!(x_cache(&alice), "MISS");
    assert_eq!(header_of(&alice, "vary"), "authorization");
    let alice_tag = etag(&alice);
    assert!(alice.text().await.unwrap().contains("alice"));

    let bob = fetch(&url, &[("authorization", "Bearer bob")]).await;
    assert_eq!(
        x_cache(&bob),
        "MISS",
        "another Authorization: another entry"
    );
    assert_ne!(etag(&bob), alice_tag);
    assert!(bob.text().await.unwrap().contains("bob"));

    let anonymous = fetch(&url, &[]).await;
    assert_eq!(x_cache(&anonymous), "MISS");
    assert!(anonymous.headers().get("vary").is_none());
    assert!(anonymous.text().await.unwrap().contains("anonymous"));

    let bob_with_alices_tag = fetch(
        &url,
        &[
            ("authorization", "Bearer bob"),
            ("if-none-match", &alice_tag),
        ],
    )
    .await;
    assert_eq!(bob_with_alices_tag.status(), 200);
    assert!(bob_with_alices_tag.text().await.unwrap().contains("bob"));

    let alice_again = fetch(&url, &[("authorization", "Bearer alice")]).await;
    assert_eq!(x_cache(&alice_again), "HIT");
    assert!(alice_again.text().await.unwrap().contains("alice"));
}

#[tokio::test]
async fn vary_header_values_split_entries() {
    let cache = Cache::new();
    let layer = CacheResponse::new(&cache)
        .tags(["user:me"])
        .vary(["accept-language"])
        .build()
        .unwrap();
    let router = Router::new().route("/me", get(whoami)).route_layer(layer);
    let url = format!("{}/me", serve(router).await);

    let en = fetch(&url, &[("accept-language", "en")]).await;
    let fr = fetch(&url, &[("accept-language", "fr")]).await;
    assert_eq!((x_cache(&en), x_cache(&fr)), ("MISS".into(), "MISS".into()));
    assert_eq!(header_of(&fr, "vary"), "accept-language");
    assert_ne!(etag(&en), etag(&fr));
    assert!(fr.text().await.unwrap().contains("in fr"));
    let en_again = fetch(&url, &[("accept-language", "en")]).await;
    assert_eq!(x_cache(&en_again), "HIT");
    assert!(en_again.text().await.unwrap().contains("in en"));
}

#[tokio::test]
async fn head_is_answered_from_the_get_entry() {
    let cache = Cache::new();
    let db = Db::with_songs(&[(7, "Seven"), (8, "Eight")]);
    let base = serve_rows(&cache, &db).await;
    let client = reqwest::Client::new();

    let full = fetch(&format!("{base}/songs/7"), &[]).await;
    let tag = etag(&full);
    let body_len = full.bytes().await.unwrap().len();
    let head = client.head(format!("{base}/songs/7")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(x_cache(&head), "HIT");
    assert_eq!(etag(&head), tag);
    assert_eq!(header_of(&head, "content-length"), body_len.to_string());
    assert!(head.bytes().await.unwrap().is_empty());
    assert_eq!(db.queries(), 1);

    // A cold HEAD fills the entry a GET then uses.
    let head = client.head(format!("{base}/songs/8")).send().await.unwrap();
    assert_eq!(x_cache(&head), "MISS");
    assert!(head.bytes().await.unwrap().is_empty());
    let full = fetch(&format!("{base}/songs/8"), &[]).await;
    assert_eq!(x_cache(&full), "HIT");
    assert!(full.text().await.unwrap().contains("Eight"));
    assert_eq!(db.queries(), 2);
}

#[tokio::test]
async fn other_methods_pass_through() {
    let cache = Cache::new();
    let posts = Arc::new(AtomicUsize::new(0));
    let counter = posts.clone();
    let router = Router::new()
        .route(
            "/songs",
            get(|| async { "list" }).post(move || async move {
                counter.fetch_add(1, Ordering::SeqCst);
                (StatusCode::CREATED, "created")
            }),
        )
        .route_layer(cache_api_response(&cache, TTL, ["model:songs"]).unwrap());
    let url = format!("{}/songs", serve(router).await);
    let client = reqwest::Client::new();
    for _ in 0..2 {
        let created = client.post(&url).send().await.unwrap();
        assert_eq!(created.status(), 201);
        assert!(created.headers().get("x-cache").is_none());
        assert!(created.headers().get("etag").is_none());
    }
    assert_eq!(posts.load(Ordering::SeqCst), 2);
    assert_eq!(x_cache(&fetch(&url, &[]).await), "MISS");
    assert_eq!(x_cache(&fetch(&url, &[]).await), "HIT");
}

#[tokio::test]
async fn a_disabled_cache_passes_through_with_body_hash_etags() {
    let cache = Cache::builder().enabled(false).build().unwrap();
    let db = Db::with_songs(&[(7, "Seven")]);
    let base = serve_rows(&cache, &db).await;
    let url = format!("{base}/songs/7");

    let first = fetch(&url, &[]).await;
    let second = fetch(&url, &[]).await;
    assert_eq!(
        (x_cache(&first), x_cache(&second)),
        ("MISS".into(), "MISS".into())
    );
    assert_eq!(header_of(&first, "cache-control"), "private, max-age=60");
    let tag = etag(&first);
    assert!(
        !tag.is_empty() && !tag.starts_with("\"qc-"),
        "a body hash: {tag}"
    );
    assert_eq!(etag(&second), tag);
    let conditional = fetch(&url, &[("if-none-match", &tag)]).await;
    assert_eq!(conditional.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(x_cache(&conditional), "MISS");
    assert_eq!(db.queries(), 3, "every request ran the query");
}

#[tokio::test]
async fn concurrent_requests_for_a_cold_key_run_the_handler_once() {
    let cache = Cache::new();
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let router = Router::new()
        .route(
            "/slow",
            get(move || async move {
                counter.fetch_add(1, Ordering::SeqCst);
                // Long enough for every request to arrive while the first computes.
                tokio::time::sleep(Duration::from_millis(300)).await;
                "slow answer"
            }),
        )
        .route_layer(cache_api_response(&cache, TTL, ["model:songs"]).unwrap());
    let url = format!("{}/slow", serve(router).await);
    let answers = futures_util::future::join_all((0..8).map(|_| fetch(&url, &[]))).await;
    let tags: Vec<String> = answers.iter().map(etag).collect();
    for answer in answers {
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.text().await.unwrap(), "slow answer");
    }
    assert!(tags.windows(2).all(|w| w[0] == w[1]), "{tags:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_template_naming_a_missing_parameter_is_a_clear_500() {
    let cache = Cache::new();
    let db = Db::with_songs(&[(7, "Seven")]);
    let layer = cache_api_response(&cache, TTL, ["model:songs:{song_id}"]).unwrap();
    let url = format!("{}/songs/7", serve(songs(&db, layer)).await);
    let answer = fetch(&url, &[]).await;
    assert_eq!(answer.status(), 500);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["status"], "error");
    assert_eq!(body["error"]["code"], "internal");
    assert_eq!(db.queries(), 0);

    // Syntax is checked when the layer is built.
    let error = cache_api_response(&cache, TTL, ["model:songs:{id"]).unwrap_err();
    assert!(error.to_string().contains("model:songs:{id"), "{error}");
}
