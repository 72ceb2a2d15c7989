//! What the cache does for the songs app, seen through HTTP: MISS → HIT → write → fresh
//! MISS for a song, the list, the count and the author's list; row precision; the bulk
//! archive route; ETags, 304s that run no query, and the headers.

use reqwest::StatusCode;
use serde_json::json;

use super::{DB, STORE};
use crate::support::songs::{Answer, SongsApp};

async fn app() -> Option<SongsApp> {
    SongsApp::start(STORE, DB).await
}

/// GETs `path` and checks `X-Cache`.
async fn expect(app: &SongsApp, path: &str, x_cache: &str) -> Answer {
    let answer = app.get(path).await;
    assert_eq!(answer.status, StatusCode::OK, "{path}: {answer:?}");
    assert_eq!(answer.x_cache(), x_cache, "{path}: {answer:?}");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miss_hit_then_fresh_after_update_for_song_list_count_and_author_list() {
    let Some(app) = app().await else { return };
    let author = app.user("Ada").await;
    let song = app.song(author, "Blue in Green").await;
    let paths = [
        format!("/api/v1/songs/{song}"),
        "/api/v1/songs?limit=10".to_owned(),
        "/api/v1/songs/count".to_owned(),
        format!("/api/v1/users/{author}/songs"),
    ];
    let mut etags = Vec::new();
    for path in &paths {
        let first = expect(&app, path, "MISS").await;
        let second = expect(&app, path, "HIT").await;
        assert_eq!(first.etag(), second.etag(), "{path}: a HIT keeps its ETag");
        assert_eq!(first.body, second.body, "{path}");
        etags.push(first.etag());
    }

    let updated = app
        .put(
            &format!("/api/v1/songs/{song}"),
            json!({"title": "Blue in Green (take 2)"}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK);

    for (path, old_etag) in paths.iter().zip(&etags) {
        let fresh = expect(&app, path, "MISS").await;
        assert_ne!(&fresh.etag(), old_etag, "{path}: a write changes the ETag");
        expect(&app, path, "HIT").await;
    }
    assert_eq!(
        app.get(&paths[0]).await.data()["title"],
        "Blue in Green (take 2)"
    );
    let list = app.get(&paths[1]).await;
    assert_eq!(list.data()[0]["title"], "Blue in Green (take 2)");
    let mine = app.get(&paths[3]).await;
    assert_eq!(mine.data()[0]["title"], "Blue in Green (take 2)");

    // A new song: the count, the list and the author's list move; the first song stays.
    app.song(author, "Nardis").await;
    expect(&app, &paths[0], "HIT").await;
    let count = expect(&app, &paths[2], "MISS").await;
    assert_eq!(count.data()["count"], 2);
    assert_eq!(
        expect(&app, &paths[1], "MISS")
            .await
            .data()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        expect(&app, &paths[3], "MISS")
            .await
            .data()
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // A delete: gone at once, and the count follows.
    assert_eq!(app.delete(&paths[0]).await.status, StatusCode::OK);
    assert_eq!(app.get(&paths[0]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&paths[2]).await.data()["count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updating_song_b_keeps_song_a_a_hit() {
    let Some(app) = app().await else { return };
    let author = app.user("Bill").await;
    let a = app.song(author, "Peace Piece").await;
    let b = app.song(author, "Waltz for Debby").await;
    let (path_a, path_b) = (format!("/api/v1/songs/{a}"), format!("/api/v1/songs/{b}"));
    let etag_a = expect(&app, &path_a, "MISS").await.etag();
    expect(&app, &path_b, "MISS").await;

    app.put(&path_b, json!({"artist": "Bill Evans Trio"})).await;
    let still = expect(&app, &path_a, "HIT").await;
    assert_eq!(
        still.etag(),
        etag_a,
        "song A's ETag survives a write to song B"
    );
    let b_fresh = expect(&app, &path_b, "MISS").await;
    assert_eq!(b_fresh.data()["artist"], "Bill Evans Trio");

    // A conditional GET of A with its old ETag is still a 304.
    let conditional = app.get_with(&path_a, &[("if-none-match", &etag_a)]).await;
    assert_eq!(conditional.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bulk_archive_route_invalidates_every_song_read() {
    let Some(app) = app().await else { return };
    let author = app.user("Herbie").await;
    let other = app.user("Wayne").await;
    let a = app.song(author, "Maiden Voyage").await;
    let c = app.song(other, "Footprints").await;
    let paths = [
        format!("/api/v1/songs/{a}"),
        format!("/api/v1/songs/{c}"),
        "/api/v1/songs?limit=5".to_owned(),
        format!("/api/v1/users/{author}/songs"),
        "/api/v1/songs/count".to_owned(),
    ];
    for path in &paths {
        expect(&app, path, "MISS").await;
        expect(&app, path, "HIT").await;
    }
    let archived = app.archive(author).await;
    assert_eq!(archived.data()["archived"], 1);
    // update_many's rows are unknown to the cache: every song read is invalidated, song C's
    // by-id entry included (a bulk write cannot promise row precision).
    for path in &paths {
        expect(&app, path, "MISS").await;
    }
    assert_eq!(app.get(&paths[0]).await.data()["archived"], true);
    assert_eq!(app.get(&paths[2]).await.data()[1]["archived"], true);
    // The user row was not written: the user stays cached.
    let user_path = format!("/api/v1/users/{author}");
    expect(&app, &user_path, "MISS").await;
    app.archive(author).await;
    expect(&app, &user_path, "HIT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conditional_get_is_a_304_that_runs_no_query() {
    let Some(app) = app().await else { return };
    let author = app.user("Dexter").await;
    let song = app.song(author, "Cheese Cake").await;
    let path = format!("/api/v1/songs/{song}");
    let first = expect(&app, &path, "MISS").await;
    let etag = first.etag();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "a strong ETag: {etag}"
    );
    assert_eq!(
        first.header("cache-control"),
        Some("private, no-cache"),
        "{first:?}"
    );
    assert!(
        first
            .header("vary")
            .is_some_and(|v| v.eq_ignore_ascii_case("authorization")),
        "{first:?}"
    );

    let queries = app.app.database_queries();
    for _ in 0..5 {
        let not_modified = app.get_with(&path, &[("if-none-match", &etag)]).await;
        assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
        assert!(not_modified.text.is_empty(), "a 304 has no body");
        assert_eq!(not_modified.etag(), etag);
        assert_eq!(not_modified.x_cache(), "HIT");
    }
    assert_eq!(app.app.database_queries(), queries, "304s ran no query");

    // Another ETag, or none: the full answer.
    let other = app
        .get_with(&path, &[("if-none-match", "\"something-else\"")])
        .await;
    assert_eq!(other.status, StatusCode::OK);

    app.put(&path, json!({"title": "Cheese Cake (alternate)"}))
        .await;
    let changed = app.get_with(&path, &[("if-none-match", &etag)]).await;
    assert_eq!(
        changed.status,
        StatusCode::OK,
        "the old ETag no longer validates"
    );
    assert_ne!(changed.etag(), etag);
    assert_eq!(changed.data()["title"], "Cheese Cake (alternate)");
    let again = app
        .get_with(&path, &[("if-none-match", &changed.etag())])
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);

    // Writes are never cached.
    let put = app.put(&path, json!({"content": "x"})).await;
    assert_eq!(put.header("x-cache"), None, "{put:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cache_disabled_every_read_queries_and_304s_cost_a_query() {
    let Some(app) = SongsApp::start_with(STORE, DB, |b| b.enabled(false), None).await else {
        return;
    };
    let author = app.user("Sonny").await;
    let song = app.song(author, "St. Thomas").await;
    let path = format!("/api/v1/songs/{song}");
    let first = app.get(&path).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_ne!(first.x_cache(), "HIT");
    let etag = first.etag();
    let queries = app.app.database_queries();
    let not_modified = app.get_with(&path, &[("if-none-match", &etag)]).await;
    assert_eq!(
        not_modified.status,
        StatusCode::NOT_MODIFIED,
        "a body-hash ETag still validates"
    );
    assert!(
        app.app.database_queries() > queries,
        "but, unlike a deep ETag, it had to run the query to render the body it hashed"
    );
    assert_eq!(app.cache.stats().hits, 0);
}

#[tokio::test]
async fn the_card_route_computed_over_an_inner_hit_follows_a_rename_of_its_author() {
    // The card's query is cached before the route computes its answer: the route's
    // computation uses that hit, and takes on the versions it was computed under, so the
    // rename still reaches the route's answer and its ETag.
    use sea_orm::ConnectionTrait;
    let Some(app) = app().await else { return };
    let author = app.user("Mingus").await;
    let song = app.song(author, "Fables").await;
    let id = i32::try_from(song).expect("a small id");
    let card = crate::support::songs::app::queries::song_card(app.app.db(), id)
        .await
        .unwrap()
        .expect("the song");
    assert_eq!(card.1.map(|u| u.name).as_deref(), Some("Mingus"));
    let path = format!("/api/v1/songs/{song}/card");
    let queries = app.app.database_queries();
    let first = expect(&app, &path, "MISS").await;
    assert_eq!(
        app.app.database_queries(),
        queries,
        "the route's computation used the query's hit"
    );
    assert_eq!(first.data()["author"]["name"], "Mingus");
    let etag = first.etag();
    assert_eq!(expect(&app, &path, "HIT").await.etag(), etag);

    app.app
        .db()
        .execute_unprepared(&format!(
            "UPDATE users SET name = 'Charles Mingus' WHERE id = {author}"
        ))
        .await
        .unwrap();
    let renamed = app.get_with(&path, &[("if-none-match", &etag)]).await;
    assert_eq!(
        renamed.status,
        StatusCode::OK,
        "the old ETag no longer validates"
    );
    assert_eq!(renamed.x_cache(), "MISS");
    assert_eq!(renamed.data()["author"]["name"], "Charles Mingus");
    assert_ne!(renamed.etag(), etag, "the rename changed the ETag");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_card_route_declares_nothing_and_follows_a_rename_of_its_author_at_once() {
    // `GET /songs/{id}/card` joins the song and its author; neither its query nor its
    // route declares a dependency. Renaming the author changes its answer and its ETag at
    // once; a write to another song does not touch it.
    use sea_orm::ConnectionTrait;
    let Some(app) = app().await else { return };
    let author = app.user("Dexter").await;
    let song = app.song(author, "Cheese Cake").await;
    let other = app.song(author, "Apple Pie").await;
    let path = format!("/api/v1/songs/{song}/card");
    let first = expect(&app, &path, "MISS").await;
    assert_eq!(first.data()["title"], "Cheese Cake");
    assert_eq!(first.data()["author"]["name"], "Dexter");
    let etag = first.etag();
    assert_eq!(expect(&app, &path, "HIT").await.etag(), etag);

    let queries = app.app.database_queries();
    let not_modified = app.get_with(&path, &[("if-none-match", &etag)]).await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
    assert_eq!(app.app.database_queries(), queries, "the 304 ran no query");

    app.put(
        &format!("/api/v1/songs/{other}"),
        json!({"title": "Apple Tart"}),
    )
    .await;
    let still = app.get_with(&path, &[("if-none-match", &etag)]).await;
    assert_eq!(
        still.status,
        StatusCode::NOT_MODIFIED,
        "another song's write leaves the card"
    );

    app.app
        .db()
        .execute_unprepared(&format!(
            "UPDATE users SET name = 'Dexter II' WHERE id = {author}"
        ))
        .await
        .unwrap();
    let renamed = app.get_with(&path, &[("if-none-match", &etag)]).await;
    assert_eq!(
        renamed.status,
        StatusCode::OK,
        "the old ETag no longer validates"
    );
    assert_eq!(renamed.x_cache(), "MISS");
    assert_eq!(renamed.data()["author"]["name"], "Dexter II");
    assert_ne!(renamed.etag(), etag, "the rename changed the ETag");
    let again = app
        .get_with(&path, &[("if-none-match", &renamed.etag())])
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
}
