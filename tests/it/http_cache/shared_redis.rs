//! Two app instances on one Redis (tiered caches, a private redis-server): the ETags they
//! mint and validate for each other.

use super::*;

/// Two app instances on one Redis (tiered caches): the same ETag for the same data, a 304
/// on one for an ETag the other minted, and an invalidation on one seen by the other.
#[tokio::test]
async fn instances_sharing_redis_agree_on_deep_etags() {
    use crate::support::redis::RedisServer;

    let Some(server) = RedisServer::start() else {
        return;
    };
    // One key secret, as instances of one deployment share it (`CACHE_KEY_SECRET`).
    let instance = || {
        Cache::builder()
            .redis_url(server.url())
            .store(querycache::config::StoreKind::Tiered)
            .key_prefix("qchttp")
            .redis_timeout(Duration::from_millis(2000))
            .key_secret("shared-secret-0123456789")
            .build()
            .expect("valid config")
    };
    let (cache_a, cache_b) = (instance(), instance());
    let db = Db::with_songs(&[(7, "Seven")]);
    let base_a = serve(songs(
        &db,
        cache_row_response(&cache_a, TTL, "songs", "id").unwrap(),
    ))
    .await;
    let base_b = serve(songs(
        &db,
        cache_row_response(&cache_b, TTL, "songs", "id").unwrap(),
    ))
    .await;
    let (url_a, url_b) = (format!("{base_a}/songs/7"), format!("{base_b}/songs/7"));

    let from_a = fetch(&url_a, &[]).await;
    assert_eq!(x_cache(&from_a), "MISS");
    let tag = etag(&from_a);
    let from_b = fetch(&url_b, &[]).await;
    assert_eq!(
        etag(&from_b),
        tag,
        "same data, same ETag, on either instance"
    );
    assert_eq!(x_cache(&from_b), "HIT", "B found A's answer in Redis");
    assert_eq!(db.queries(), 1);

    let on_b = fetch(&url_b, &[("if-none-match", &tag)]).await;
    assert_eq!(
        on_b.status(),
        StatusCode::NOT_MODIFIED,
        "B validates A's ETag"
    );
    assert_eq!(db.queries(), 1);

    db.write(&cache_a, 7, "Seven, edited on A").await;
    // B reads the versions from Redis: no wait for the invalidation message.
    let on_b = fetch(&url_b, &[("if-none-match", &tag)]).await;
    assert_eq!(on_b.status(), 200, "A's write makes the ETag stale on B");
    let new_tag = etag(&on_b);
    assert_ne!(new_tag, tag);
    assert!(on_b.text().await.unwrap().contains("edited on A"));
    let on_a = fetch(&url_a, &[("if-none-match", &new_tag)]).await;
    assert_eq!(
        on_a.status(),
        StatusCode::NOT_MODIFIED,
        "B's new ETag holds on A"
    );
}

/// A tiered instance whose memory tier still holds an answer from before a write (the
/// invalidation message not yet arrived — here, never sent) serves it to plain GETs until
/// the message comes (the documented cross-instance bound), but a conditional GET knows the
/// current versions from Redis: it neither validates the old ETag nor serves the old entry.
#[tokio::test]
async fn a_conditional_get_never_gets_an_entry_older_than_redis_versions() {
    use crate::support::redis::RedisServer;

    let Some(server) = RedisServer::start() else {
        return;
    };
    let cache = Cache::builder()
        .redis_url(server.url())
        .store(querycache::config::StoreKind::Tiered)
        .key_prefix("qchttp")
        .redis_timeout(Duration::from_millis(2000))
        .build()
        .expect("valid config");
    let db = Db::with_songs(&[(7, "Seven")]);
    let url = format!(
        "{}/songs/7",
        serve(songs(
            &db,
            cache_row_response(&cache, TTL, "songs", "id").unwrap()
        ))
        .await
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while cache.health().await.invalidation_channel != Some(true) {
        assert!(std::time::Instant::now() < deadline, "never subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let tag = etag(&fetch(&url, &[]).await);
    assert_eq!(x_cache(&fetch(&url, &[]).await), "HIT");

    // Another instance's write, as Redis sees it, without its message.
    db.titles.lock().insert(7, "Seven, edited elsewhere".into());
    let () = server.query(
        redis::cmd("SET")
            .arg("qchttp:v:model:songs:7")
            .arg("a-version-no-entry-has"),
    );
    let plain = fetch(&url, &[]).await;
    assert_eq!(
        x_cache(&plain),
        "HIT",
        "the memory tier answers until the message"
    );
    assert_eq!(etag(&plain), tag);

    let conditional = fetch(&url, &[("if-none-match", &tag)]).await;
    assert_eq!(conditional.status(), 200);
    assert_eq!(x_cache(&conditional), "MISS");
    assert_ne!(etag(&conditional), tag);
    assert!(
        conditional
            .text()
            .await
            .unwrap()
            .contains("edited elsewhere")
    );
    let plain = fetch(&url, &[]).await;
    assert!(
        plain.text().await.unwrap().contains("edited elsewhere"),
        "the old entry is gone"
    );
}

/// Instances on one Redis key the credentials of a request with their key secret
/// (`CACHE_KEY_SECRET`): with one secret they share the answer to a request carrying
/// `Authorization`; with different secrets they cannot find each other's (and a request
/// without credentials is shared either way).
#[tokio::test]
async fn instances_share_answers_to_credentialed_requests_only_with_one_key_secret() {
    use crate::support::redis::RedisServer;

    let Some(server) = RedisServer::start() else {
        return;
    };
    let instance = |secret: &str| {
        Cache::builder()
            .redis_url(server.url())
            .store(querycache::config::StoreKind::Tiered)
            .key_prefix("qchttp")
            .redis_timeout(Duration::from_millis(2000))
            .key_secret(secret)
            .build()
            .expect("valid config")
    };
    let db = Db::with_songs(&[(7, "Seven"), (8, "Eight")]);
    let mut urls = Vec::new();
    for secret in [
        "shared-secret-0123456789",
        "shared-secret-0123456789",
        "another-secret-9876543210",
    ] {
        let cache = instance(secret);
        let layer = cache_row_response(&cache, TTL, "songs", "id").unwrap();
        urls.push(serve(songs(&db, layer)).await);
    }
    let credentials = [("authorization", "Basic YWxpY2U6aHVudGVyMg==")];

    let on = |i: usize, id: u32| format!("{}/songs/{id}", urls[i]);
    assert_eq!(x_cache(&fetch(&on(0, 7), &credentials).await), "MISS");
    assert_eq!(
        x_cache(&fetch(&on(1, 7), &credentials).await),
        "HIT",
        "the same secret: the same key, found in Redis"
    );
    assert_eq!(
        x_cache(&fetch(&on(2, 7), &credentials).await),
        "MISS",
        "another secret: another key"
    );
    assert_eq!(db.queries(), 2);

    assert_eq!(x_cache(&fetch(&on(2, 8), &[]).await), "MISS");
    assert_eq!(
        x_cache(&fetch(&on(0, 8), &[]).await),
        "HIT",
        "no credentials, no secret in the key: shared across secrets"
    );
}
