//! Every route of the songs app: its success and its error cases, through real HTTP.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{DB, STORE};
use crate::support::songs::SongsApp;

async fn app() -> Option<SongsApp> {
    SongsApp::start(STORE, DB).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_create_get_and_errors() {
    let Some(app) = app().await else { return };
    let created = app
        .post(
            "/api/v1/users",
            json!({"name": " Ada ", "email": "ada@example.test"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.data()["id"].as_i64().unwrap();
    assert_eq!(created.data()["name"], "Ada", "the name is trimmed");

    let got = app.get(&format!("/api/v1/users/{id}")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.data()["email"], "ada@example.test");

    let taken = app
        .post(
            "/api/v1/users",
            json!({"name": "Other", "email": "ada@example.test"}),
        )
        .await;
    assert_eq!(
        (taken.status, taken.error_code()),
        (StatusCode::CONFLICT, "conflict")
    );

    for (body, field) in [
        (json!({"name": "", "email": "x@example.test"}), "name"),
        (json!({"name": "B", "email": "not-an-email"}), "email"),
        (json!({"name": "B"}), "email"),
        (json!({"name": 7, "email": "b@example.test"}), "name"),
        (
            json!({"name": "B", "email": "b@example.test", "role": "admin"}),
            "role",
        ),
    ] {
        let answer = app.post("/api/v1/users", body.clone()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}: {answer:?}");
        assert_eq!(answer.error_code(), "invalid_body");
        let message = answer.body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(field),
            "{body}: the message names {field}: {message}"
        );
    }
    let not_json = app
        .send(
            Method::POST,
            "/api/v1/users",
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(
        (not_json.status, not_json.error_code()),
        (StatusCode::BAD_REQUEST, "invalid_body")
    );
    let no_content_type = app
        .client
        .post(format!("{}/api/v1/users", app.base))
        .body(r#"{"name":"C","email":"c@example.test"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(no_content_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let missing = app.get("/api/v1/users/999999").await;
    assert_eq!(
        (missing.status, missing.error_code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let bad_id = app.get("/api/v1/users/abc").await;
    assert_eq!(
        (bad_id.status, bad_id.error_code()),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
    let missing_songs = app.get("/api/v1/users/999999/songs").await;
    assert_eq!(missing_songs.status, StatusCode::NOT_FOUND);
    let missing_archive = app.archive(999999).await;
    assert_eq!(missing_archive.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn songs_crud_and_errors() {
    let Some(app) = app().await else { return };
    let author = app.user("Miles").await;
    let created = app
        .post(
            "/api/v1/songs",
            json!({"title": "So What", "artist": "Miles Davis", "author_id": author, "content": "modal"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.data()["id"].as_i64().unwrap();
    assert_eq!(created.data()["archived"], false);

    let got = app.get(&format!("/api/v1/songs/{id}")).await;
    assert_eq!(got.data()["title"], "So What");

    let updated = app
        .put(
            &format!("/api/v1/songs/{id}"),
            json!({"title": "So What (live)", "archived": true}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{updated:?}");
    assert_eq!(updated.data()["title"], "So What (live)");
    assert_eq!(updated.data()["archived"], true);
    assert_eq!(
        updated.data()["content"],
        "modal",
        "fields not given are kept"
    );

    for body in [
        json!({}),
        json!({"title": ""}),
        json!({"title": 5}),
        json!({"titel": "typo"}),
        json!({"archived": "yes"}),
    ] {
        let answer = app.put(&format!("/api/v1/songs/{id}"), body.clone()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}: {answer:?}");
        assert_eq!(answer.error_code(), "invalid_body");
    }
    let unknown = app.put("/api/v1/songs/999999", json!({"title": "x"})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    for body in [
        json!({"title": "T", "artist": "A"}),
        json!({"title": "T", "artist": "A", "author_id": "one"}),
        json!({"title": "", "artist": "A", "author_id": author}),
        json!({"title": "T", "artist": "A", "author_id": author, "extra": 1}),
        json!({"title": "T", "artist": "A", "author_id": author, "content": "x".repeat(70_000)}),
    ] {
        let answer = app.post("/api/v1/songs", body.clone()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{answer:?}");
        assert_eq!(answer.error_code(), "invalid_body");
    }
    let no_author = app
        .post(
            "/api/v1/songs",
            json!({"title": "T", "artist": "A", "author_id": 999999}),
        )
        .await;
    assert_eq!(
        (no_author.status, no_author.error_code()),
        (StatusCode::NOT_FOUND, "not_found")
    );

    let deleted = app.delete(&format!("/api/v1/songs/{id}")).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.data()["deleted"], true);
    let gone = app.get(&format!("/api/v1/songs/{id}")).await;
    assert_eq!(
        gone.status,
        StatusCode::NOT_FOUND,
        "a deleted song is gone at once"
    );
    let again = app.delete(&format!("/api/v1/songs/{id}")).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let bad = app.delete("/api/v1/songs/x").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_count_limits_and_unknown_routes() {
    let Some(app) = app().await else { return };
    let author = app.user("Ella").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.song(author, &format!("Song {i}")).await);
    }
    let listed = app.get("/api/v1/songs?limit=3").await;
    let got: Vec<i64> = listed
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, vec![ids[4], ids[3], ids[2]], "newest first, limited");
    let all = app.get("/api/v1/songs").await;
    assert_eq!(all.data().as_array().unwrap().len(), 5, "default limit 20");
    assert_eq!(app.get("/api/v1/songs/count").await.data()["count"], 5);

    for query in ["limit=0", "limit=101", "limit=-1", "limit=abc", "limt=3"] {
        let answer = app.get(&format!("/api/v1/songs?{query}")).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{query}: {answer:?}"
        );
        assert_eq!(answer.error_code(), "bad_request");
    }
    assert_eq!(
        app.get("/api/v1/songs?limit=100").await.status,
        StatusCode::OK
    );

    let nowhere = app.get("/api/v1/nowhere").await;
    assert_eq!(
        (nowhere.status, nowhere.error_code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let patch = app.send(Method::PATCH, "/api/v1/songs/1", None, &[]).await;
    assert_eq!(patch.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(patch.error_code(), "method_not_allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_route_archives_with_update_many() {
    let Some(app) = app().await else { return };
    let author = app.user("Nina").await;
    let other = app.user("Chet").await;
    let a = app.song(author, "A").await;
    let b = app.song(author, "B").await;
    let c = app.song(other, "C").await;
    let archived = app.archive(author).await;
    assert_eq!(archived.status, StatusCode::OK, "{archived:?}");
    assert_eq!(archived.data()["archived"], 2);
    for id in [a, b] {
        assert_eq!(
            app.get(&format!("/api/v1/songs/{id}")).await.data()["archived"],
            true
        );
    }
    assert_eq!(
        app.get(&format!("/api/v1/songs/{c}")).await.data()["archived"],
        false
    );
    let twice = app.archive(author).await;
    assert_eq!(twice.data()["archived"], 0, "nothing left to archive");
}
