//! Deep ETags: MISS → HIT → invalidation, 304s without a query (and the body-hash
//! contrast), row precision, a write racing the handler, fingerprints, the ttl strategy.

use super::*;

#[tokio::test]
async fn miss_then_hit_then_invalidation_gives_a_new_etag() {
    let cache = Cache::new();
    let db = Db::with_songs(&[(7, "Seven")]);
    let base = serve_rows(&cache, &db).await;
    let url = format!("{base}/songs/7");

    let first = fetch(&url, &[]).await;
    assert_eq!(first.status(), 200);
    assert_eq!(x_cache(&first), "MISS");
    assert_eq!(header_of(&first, "cache-control"), "private, max-age=60");
    let first_etag = etag(&first);
    assert!(first_etag.starts_with("\"qc-"), "{first_etag}");
    assert!(first.text().await.unwrap().contains("Seven"));

    let second = fetch(&url, &[]).await;
    assert_eq!(x_cache(&second), "HIT");
    assert_eq!(etag(&second), first_etag);
    assert_eq!(header_of(&second, "content-type"), "application/json");
    assert!(second.text().await.unwrap().contains("Seven"));
    assert_eq!(db.queries(), 1);

    db.write(&cache, 7, "Seven (remastered)").await;
    let third = fetch(&url, &[]).await;
    assert_eq!(x_cache(&third), "MISS");
    assert_ne!(etag(&third), first_etag);
    let third_etag = etag(&third);
    assert!(third.text().await.unwrap().contains("remastered"));
    assert_eq!(db.queries(), 2);

    cache.clear().await;
    let fourth = fetch(&url, &[("if-none-match", &third_etag)]).await;
    assert_eq!(fourth.status(), 200, "clear() changes every ETag");
    assert_ne!(etag(&fourth), third_etag);
}

#[tokio::test]
async fn a_conditional_get_is_answered_304_without_a_query() {
    let cache = Cache::new();
    let db = Db::with_songs(&[(7, "Seven")]);
    let base = serve_rows(&cache, &db).await;
    let url = format!("{base}/songs/7");
    let tag = etag(&fetch(&url, &[]).await);
    assert_eq!(db.queries(), 1);

    // The entry is gone: the 304 does not need it, only the tags' versions.
    cache.invalidate_pattern("http:*").await.unwrap();
    for condition in [
        tag.clone(),
        format!("\"other\", W/{tag}"),
        format!("W/\"x\",{tag}"),
    ] {
        let answer = fetch(&url, &[("if-none-match", &condition)]).await;
        assert_eq!(answer.status(), StatusCode::NOT_MODIFIED, "{condition}");
        assert_eq!(etag(&answer), tag);
        assert_eq!(x_cache(&answer), "HIT");
        assert_eq!(header_of(&answer, "cache-control"), "private, max-age=60");
        assert!(answer.headers().get("content-length").is_none());
        assert!(answer.bytes().await.unwrap().is_empty());
    }
    assert_eq!(db.queries(), 1, "no 304 ran the query");

    let stale = fetch(&url, &[("if-none-match", "\"qc-0000\"")]).await;
    assert_eq!(stale.status(), 200);
    assert_eq!(db.queries(), 2, "entry removed above: the handler ran");
    let star = fetch(&url, &[("if-none-match", "*")]).await;
    assert_eq!(
        star.status(),
        StatusCode::NOT_MODIFIED,
        "`*`: a current answer exists"
    );
    assert_eq!(db.queries(), 2, "answered from the entry");
}

#[tokio::test]
async fn a_body_hash_etag_still_runs_the_query_for_a_304() {
    let db = Db::with_songs(&[(7, "Seven")]);
    let router = Router::new()
        .route("/songs/{id}", get(get_song))
        .route(
            "/admin",
            get(|| async { ([(header::CACHE_CONTROL, "no-store")], "admin page") }),
        )
        .layer(
            ConditionalGet::new()
                .cache_control(CacheControl::private_max_age(30))
                .vary([header::ACCEPT_LANGUAGE]),
        )
        .with_state(db.clone());
    let base = serve(router).await;
    let url = format!("{base}/songs/7");

    let first = fetch(&url, &[]).await;
    let tag = etag(&first);
    assert!(tag.starts_with('"') && !tag.starts_with("\"qc-"), "{tag}");
    assert_eq!(header_of(&first, "cache-control"), "private, max-age=30");
    assert!(
        first.headers().get("x-cache").is_none(),
        "not a cached route"
    );

    let again = fetch(&url, &[("if-none-match", &tag)]).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header_of(&again, "cache-control"), "private, max-age=30");
    assert_eq!(header_of(&again, "vary"), "accept-language");
    assert!(again.bytes().await.unwrap().is_empty());
    assert_eq!(
        db.queries(),
        2,
        "a body-hash ETag saves the bytes, not the query: that is what deep ETags add"
    );

    db.titles.lock().insert(7, "Changed".into());
    let changed = fetch(&url, &[("if-none-match", &tag)]).await;
    assert_eq!(changed.status(), 200);
    assert_ne!(etag(&changed), tag);

    // A handler's own Cache-Control wins, on the 304 too.
    let admin = fetch(&format!("{base}/admin"), &[]).await;
    assert_eq!(header_of(&admin, "cache-control"), "no-store");
    let admin = fetch(
        &format!("{base}/admin"),
        &[("if-none-match", &etag(&admin))],
    )
    .await;
    assert_eq!(admin.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header_of(&admin, "cache-control"), "no-store");
}

/// Invariant 2 at the HTTP edge: a write that lands while the handler runs (after it read
/// the row) must leave the answer's ETag stale — the fingerprint is read before the
/// handler, never after.
#[tokio::test]
async fn a_write_during_the_handler_leaves_its_etag_stale() {
    let cache = Cache::new();
    let db = Db::with_songs(&[(7, "Seven")]);
    let racing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (handler_db, handler_cache, race) = (db.clone(), cache.clone(), racing.clone());
    let router = Router::new()
        .route(
            "/songs/{id}",
            get(move |Path(id): Path<u32>| async move {
                let title = handler_db.title(id).unwrap_or_default();
                if race.swap(false, Ordering::SeqCst) {
                    // A writer commits and bumps between this read and the answer.
                    handler_db.write(&handler_cache, id, "Seven, newer").await;
                }
                ApiResponse::new(title)
            }),
        )
        .route_layer(cache_row_response(&cache, TTL, "songs", "id").unwrap());
    let url = format!("{}/songs/7", serve(router).await);

    let raced = fetch(&url, &[]).await;
    let tag = etag(&raced);
    assert!(
        raced.text().await.unwrap().contains("\"Seven\""),
        "the old row"
    );
    let again = fetch(&url, &[("if-none-match", &tag)]).await;
    assert_eq!(
        again.status(),
        200,
        "an ETag minted before the write never validates"
    );
    assert_eq!(
        x_cache(&again),
        "MISS",
        "the raced answer was not stored either"
    );
    assert!(again.text().await.unwrap().contains("newer"));
}

#[tokio::test]
async fn a_write_to_another_row_keeps_the_etag_valid() {
    let cache = Cache::new();
    let db = Db::with_songs(&[(7, "Seven"), (8, "Eight")]);
    let base = serve_rows(&cache, &db).await;
    let (url7, url8) = (format!("{base}/songs/7"), format!("{base}/songs/8"));
    let (tag7, tag8) = (
        etag(&fetch(&url7, &[]).await),
        etag(&fetch(&url8, &[]).await),
    );
    assert_ne!(tag7, tag8);

    db.write(&cache, 8, "Eight, again").await;
    let seven = fetch(&url7, &[("if-none-match", &tag7)]).await;
    assert_eq!(seven.status(), StatusCode::NOT_MODIFIED, "row 7 untouched");
    let eight = fetch(&url8, &[("if-none-match", &tag8)]).await;
    assert_eq!(eight.status(), 200, "row 8 written");
    assert!(eight.text().await.unwrap().contains("again"));
    assert_eq!(db.queries(), 3);

    // A write to unknown rows (update_many, raw SQL) reaches every by-id answer.
    cache.invalidate_tags(write_tags("songs", None)).await;
    let seven = fetch(&url7, &[("if-none-match", &tag7)]).await;
    assert_eq!(seven.status(), 200);
    assert_eq!(x_cache(&seven), "MISS");
}

#[tokio::test]
async fn tag_fingerprints_follow_invalidations() {
    let cache = Cache::new();
    let row7 = [Tag::row("songs", 7), Tag::bulk("songs")];
    let before = cache.tag_fingerprint(&row7).await.unwrap();
    cache.invalidate_tags([Tag::model("songs")]).await;
    assert_eq!(
        cache.tag_fingerprint(&row7).await,
        Some(before),
        "list tag only"
    );
    cache.invalidate_tags([Tag::all_models()]).await;
    assert_ne!(
        cache.tag_fingerprint(&row7).await,
        Some(before),
        "an unclassified write reaches every model tag"
    );
    let ttl_only = Cache::builder()
        .invalidation_strategy(querycache::config::InvalidationStrategy::Ttl)
        .build()
        .unwrap();
    assert_eq!(ttl_only.tag_fingerprint(&row7).await, None);
}

/// Under CACHE_INVALIDATION_STRATEGY=ttl nothing moves a fingerprint, so there are no deep
/// ETags: a body hash, validated from the entry while it lives.
#[tokio::test]
async fn the_ttl_strategy_uses_body_hashes_checked_against_the_entry() {
    let cache = Cache::builder()
        .invalidation_strategy(querycache::config::InvalidationStrategy::Ttl)
        .build()
        .unwrap();
    let db = Db::with_songs(&[(7, "Seven")]);
    let base = serve_rows(&cache, &db).await;
    let url = format!("{base}/songs/07");

    let first = fetch(&url, &[]).await;
    let tag = etag(&first);
    assert!(!tag.is_empty() && !tag.starts_with("\"qc-"), "{tag}");
    let again = fetch(&url, &[("if-none-match", &tag)]).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(x_cache(&again), "HIT");
    assert_eq!(db.queries(), 1);
}

/// `/songs/07` is song 7 to the handler: a write to row 7 must reach it.
#[tokio::test]
async fn a_row_id_written_unusually_is_invalidated_by_its_row() {
    let cache = Cache::new();
    let db = Db::with_songs(&[(7, "Seven")]);
    let base = serve_rows(&cache, &db).await;
    let url = format!("{base}/songs/07");
    let tag = etag(&fetch(&url, &[]).await);
    db.write(&cache, 7, "Seven, edited").await;
    let after = fetch(&url, &[("if-none-match", &tag)]).await;
    assert_eq!(after.status(), 200);
    assert!(after.text().await.unwrap().contains("edited"));
}
