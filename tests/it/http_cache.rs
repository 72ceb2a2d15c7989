//! Whole-response caching for axum (`querycache::http`), over real HTTP: routers served on
//! free loopback ports, called with reqwest.
//!
//! The "database" is a map of song titles with a counter of the queries the handlers
//! ran; "writes" change the map and invalidate the tags an ORM write would.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use parking_lot::Mutex;
use querycache::http::{
    ApiError, ApiResponse, CacheControl, CacheResponse, CacheResponseLayer, ConditionalGet,
    cache_api_response, cache_row_response,
};
use querycache::tags::write_tags;
use querycache::{Cache, Tag};
use reqwest::Response;

const TTL: Duration = Duration::from_secs(60);

/// The handlers' data and the number of queries they ran.
#[derive(Default)]
struct Db {
    titles: Mutex<HashMap<u32, String>>,
    queries: AtomicUsize,
}

impl Db {
    fn with_songs(songs: &[(u32, &str)]) -> Arc<Db> {
        let db = Db::default();
        db.titles
            .lock()
            .extend(songs.iter().map(|(id, t)| (*id, (*t).to_owned())));
        Arc::new(db)
    }

    fn title(&self, id: u32) -> Option<String> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        self.titles.lock().get(&id).cloned()
    }

    fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }

    /// A write to one row, as the ORM integration would invalidate it.
    async fn write(&self, cache: &Cache, id: u32, title: &str) {
        self.titles.lock().insert(id, title.to_owned());
        cache
            .invalidate_tags(write_tags("songs", Some(&[id.to_string()])))
            .await;
    }
}

#[derive(serde::Serialize)]
struct Song {
    id: u32,
    title: String,
}

async fn get_song(
    State(db): State<Arc<Db>>,
    Path(id): Path<u32>,
) -> Result<ApiResponse<Song>, ApiError> {
    match db.title(id) {
        Some(title) => Ok(ApiResponse::new(Song { id, title })),
        None => Err(ApiError::not_found(format!("song {id} does not exist"))),
    }
}

/// `/songs/{id}` cached with `layer`.
fn songs(db: &Arc<Db>, layer: CacheResponseLayer) -> Router {
    Router::new()
        .route("/songs/{id}", get(get_song))
        .route_layer(layer)
        .with_state(db.clone())
}

/// Serves `router` on a free port; returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("server runs");
    });
    format!("http://{addr}")
}

async fn fetch(url: &str, headers: &[(&str, &str)]) -> Response {
    let mut request = reqwest::Client::new().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request sent")
}

fn header_of(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("text").to_owned())
        .unwrap_or_default()
}

fn etag(response: &Response) -> String {
    header_of(response, "etag")
}

fn x_cache(response: &Response) -> String {
    header_of(response, "x-cache")
}

#[tokio::test]
async fn miss_then_hit_then_invalidation_gives_a_new_etag() {
    let cache = Cache::new();
    let db = Db::with_songs(&[(7, "Seven")]);
    let base = serve(songs(
        &db,
        cache_row_response(&cache, TTL, "songs", "id").unwrap(),
    ))
    .await;
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
    let base = serve(songs(
        &db,
        cache_row_response(&cache, TTL, "songs", "id").unwrap(),
    ))
    .await;
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
    let base = serve(songs(
        &db,
        cache_row_response(&cache, TTL, "songs", "id").unwrap(),
    ))
    .await;
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
    let base = serve(songs(
        &db,
        cache_row_response(&cache, TTL, "songs", "id").unwrap(),
    ))
    .await;
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
    let cache = Cache::builder().enabled(false).build_cache().unwrap();
    let db = Db::with_songs(&[(7, "Seven")]);
    let base = serve(songs(
        &db,
        cache_row_response(&cache, TTL, "songs", "id").unwrap(),
    ))
    .await;
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
        .invalidation_strategy(querycache::InvalidationStrategy::Ttl)
        .build_cache()
        .unwrap();
    assert_eq!(ttl_only.tag_fingerprint(&row7).await, None);
}

/// Two app instances on one Redis (tiered caches): the same ETag for the same data, a 304
/// on one for an ETag the other minted, and an invalidation on one seen by the other.
#[cfg(feature = "redis")]
#[tokio::test]
async fn instances_sharing_redis_agree_on_deep_etags() {
    use crate::support::redis::RedisServer;

    let Some(server) = RedisServer::start() else {
        return;
    };
    let instance = || {
        Cache::builder()
            .redis_url(server.url())
            .store(querycache::StoreKind::Tiered)
            .key_prefix("qchttp")
            .redis_timeout(Duration::from_millis(2000))
            .build_cache()
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
#[cfg(feature = "redis")]
#[tokio::test]
async fn a_conditional_get_never_gets_an_entry_older_than_redis_versions() {
    use crate::support::redis::RedisServer;

    let Some(server) = RedisServer::start() else {
        return;
    };
    let cache = Cache::builder()
        .redis_url(server.url())
        .store(querycache::StoreKind::Tiered)
        .key_prefix("qchttp")
        .redis_timeout(Duration::from_millis(2000))
        .build_cache()
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

/// Under CACHE_INVALIDATION_STRATEGY=ttl nothing moves a fingerprint, so there are no deep
/// ETags: a body hash, validated from the entry while it lives.
#[tokio::test]
async fn the_ttl_strategy_uses_body_hashes_checked_against_the_entry() {
    let cache = Cache::builder()
        .invalidation_strategy(querycache::InvalidationStrategy::Ttl)
        .build_cache()
        .unwrap();
    let db = Db::with_songs(&[(7, "Seven")]);
    let base = serve(songs(
        &db,
        cache_row_response(&cache, TTL, "songs", "id").unwrap(),
    ))
    .await;
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
    let base = serve(songs(
        &db,
        cache_row_response(&cache, TTL, "songs", "id").unwrap(),
    ))
    .await;
    let url = format!("{base}/songs/07");
    let tag = etag(&fetch(&url, &[]).await);
    db.write(&cache, 7, "Seven, edited").await;
    let after = fetch(&url, &[("if-none-match", &tag)]).await;
    assert_eq!(after.status(), 200);
    assert!(after.text().await.unwrap().contains("edited"));
}
