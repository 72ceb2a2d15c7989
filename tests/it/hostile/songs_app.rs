//! The songs app (`examples/songs`, SQLite, memory store) under malformed requests: every
//! answer is a 4xx, the app keeps serving, and memory stays within the cache's budget.

use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use reqwest::StatusCode;
use serde_json::json;

use super::cases;
use super::raw_http::{Raw, Reply};
use crate::support::Db;
use crate::support::songs::SongsApp;
use crate::support::stores::Kind;

const TOKEN: &str = "hostile-secret";
/// The memory store's budget in these tests (the smallest accepted).
const BUDGET: u64 = 64 * 1024;
/// The app's request body limit (`MAX_BODY_BYTES`, axum's default).
const BODY_LIMIT: usize = crate::support::songs::app::MAX_BODY_BYTES;
const TEN_MB: usize = 10 * 1024 * 1024;

async fn app() -> SongsApp {
    SongsApp::start_with(
        Kind::Memory,
        Db::Sqlite,
        |b| b.memory_max_bytes(BUDGET),
        Some(TOKEN),
    )
    .await
    .expect("a memory-store app always starts")
}

fn addr(app: &SongsApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// A JSON song whose title is `len` bytes long.
fn song_of(len: usize) -> Vec<u8> {
    let mut body = br#"{"title":""#.to_vec();
    body.resize(body.len() + len, b'x');
    body.extend_from_slice(br#"","artist":"a","author_id":1}"#);
    body
}

fn nested(depth: usize, open: &str, close: &str) -> Vec<u8> {
    let mut body = open.repeat(depth).into_bytes();
    body.extend_from_slice(close.repeat(depth).as_bytes());
    body
}

/// The batch: what is sent, and the statuses that are right for it.
fn batch() -> Vec<(&'static str, Raw, &'static [u16])> {
    let auth = format!("Bearer {TOKEN}");
    let user = br#"{"name":"A","email":"a@example.test"}"#.to_vec();
    let mut invalid_utf8 = br#"{"name":""#.to_vec();
    invalid_utf8.extend_from_slice(b"\xff\xfe\xc0\xaf");
    invalid_utf8.extend_from_slice(br#"","email":"a@example.test"}"#);
    let deep_objects = {
        let mut body = br#"{"name":"#.to_vec();
        body.extend_from_slice(&nested(50_000, r#"{"a":"#, "}"));
        body.extend_from_slice(br#","email":"a@example.test"}"#);
        body
    };
    vec![
        // Oversized bodies: refused with 413 on the announced length (whatever the route,
        // method or content type) or while reading, never buffered whole.
        (
            "10 MB song",
            Raw::new("POST", "/api/v1/songs").json(song_of(TEN_MB)),
            &[413],
        ),
        (
            "10 MB update",
            Raw::new("PUT", "/api/v1/songs/1").json(song_of(TEN_MB)),
            &[413],
        ),
        (
            "10 MB user, chunked",
            Raw::new("POST", "/api/v1/users")
                .header("content-type", "application/json")
                .chunked(song_of(TEN_MB)),
            &[413],
        ),
        (
            "10 MB announced, nothing sent",
            Raw::new("POST", "/api/v1/users")
                .header("content-type", "application/json")
                .claimed(TEN_MB),
            &[413],
        ),
        (
            "just over the body limit",
            Raw::new("POST", "/api/v1/songs").json(song_of(BODY_LIMIT)),
            &[413],
        ),
        (
            "10 MB without a content type",
            Raw::new("POST", "/api/v1/songs").body(song_of(TEN_MB)),
            &[413],
        ),
        (
            "10 MB admin clear",
            Raw::new("POST", "/api/v1/cache/clear")
                .header("authorization", auth.clone())
                .json(song_of(TEN_MB)),
            &[413],
        ),
        (
            "10 MB to an unknown route",
            Raw::new("POST", "/api/v1/nope").json(song_of(TEN_MB)),
            &[413],
        ),
        (
            "10 MB with a bad id",
            Raw::new("GET", "/api/v1/songs/abc").json(song_of(TEN_MB)),
            &[413],
        ),
        // Invalid UTF-8.
        (
            "invalid UTF-8 in JSON",
            Raw::new("POST", "/api/v1/users").json(invalid_utf8),
            &[400],
        ),
        (
            "invalid UTF-8 bytes in the path",
            Raw::new("GET", b"/api/v1/songs/\xff\xfe".to_vec()),
            &[400, 404],
        ),
        (
            "encoded invalid UTF-8 in the path",
            Raw::new("GET", "/api/v1/songs/%FF%FE"),
            &[400],
        ),
        (
            "encoded overlong UTF-8 in a user path",
            Raw::new("GET", "/api/v1/users/%C0%AF/songs"),
            &[400],
        ),
        (
            "encoded invalid UTF-8 in the query",
            Raw::new("GET", "/api/v1/songs?limit=%FF"),
            &[400],
        ),
        (
            "invalid UTF-8 bytes in the query",
            Raw::new("GET", b"/api/v1/songs?limit=\xff".to_vec()),
            &[400],
        ),
        (
            "encoded newline in the path",
            Raw::new("GET", "/api/v1/songs/%0A"),
            &[400],
        ),
        (
            "encoded NUL in a user path",
            Raw::new("GET", "/api/v1/users/%00/songs"),
            &[400],
        ),
        (
            "encoded C1 control in the path",
            Raw::new("GET", "/api/v1/songs/%C2%85"),
            &[400],
        ),
        // Huge numbers.
        (
            "id beyond i32",
            Raw::new("GET", "/api/v1/songs/2147483648"),
            &[400],
        ),
        (
            "id beyond i64",
            Raw::new("GET", "/api/v1/songs/99999999999999999999"),
            &[400],
        ),
        (
            "id beyond i128",
            Raw::new("GET", format!("/api/v1/songs/{}", "9".repeat(60))),
            &[400],
        ),
        (
            "id of 5000 digits",
            Raw::new("GET", format!("/api/v1/songs/{}", "9".repeat(5000))),
            &[400],
        ),
        ("id 1e400", Raw::new("GET", "/api/v1/songs/1e400"), &[400]),
        ("id -0", Raw::new("GET", "/api/v1/songs/-0"), &[404]),
        (
            "archive id beyond i64",
            Raw::new("POST", "/api/v1/users/99999999999999999999/songs/archive"),
            &[400],
        ),
        (
            "limit 1e400",
            Raw::new("GET", "/api/v1/songs?limit=1e400"),
            &[400],
        ),
        (
            "limit beyond u64",
            Raw::new("GET", "/api/v1/songs?limit=18446744073709551616"),
            &[400],
        ),
        (
            "limit negative",
            Raw::new("GET", "/api/v1/songs?limit=-1"),
            &[400],
        ),
        (
            "limit twice",
            Raw::new("GET", "/api/v1/songs?limit=1&limit=2"),
            &[400],
        ),
        (
            "author_id beyond i32",
            Raw::new("POST", "/api/v1/songs")
                .json(r#"{"title":"t","artist":"a","author_id":2147483648}"#),
            &[400],
        ),
        (
            "author_id 1e400",
            Raw::new("POST", "/api/v1/songs")
                .json(r#"{"title":"t","artist":"a","author_id":1e400}"#),
            &[400],
        ),
        (
            "author_id of 400 digits",
            Raw::new("POST", "/api/v1/songs").json(format!(
                r#"{{"title":"t","artist":"a","author_id":{}}}"#,
                "9".repeat(400)
            )),
            &[400],
        ),
        (
            "archived 1e400",
            Raw::new("PUT", "/api/v1/songs/1").json(r#"{"archived":1e400}"#),
            &[400],
        ),
        // Path traversal.
        (
            "encoded traversal as an id",
            Raw::new("GET", "/api/v1/songs/..%2F..%2Fetc%2Fpasswd"),
            &[400],
        ),
        ("dot segments", Raw::new("GET", "/api/v1/../../x"), &[404]),
        (
            "dot segments after a route",
            Raw::new("GET", "/api/v1/songs/../../../etc/passwd"),
            &[404],
        ),
        (
            "encoded dot segments",
            Raw::new("GET", "/api/v1/songs/%2e%2e/%2e%2e/etc/passwd"),
            &[404],
        ),
        (
            "encoded backslashes",
            Raw::new("GET", "/api/v1/songs/..%5C..%5Cwindows%5Cwin.ini"),
            &[400],
        ),
        (
            "traversal past the dashboard",
            Raw::new("GET", "/api/v1/cache/dashboard/../../../../etc/passwd"),
            &[404],
        ),
        ("double slash", Raw::new("GET", "//api/v1/songs"), &[404]),
        // Wrong or missing content types.
        (
            "text/plain JSON",
            Raw::new("POST", "/api/v1/users")
                .header("content-type", "text/plain")
                .body(user.clone()),
            &[415],
        ),
        (
            "XML",
            Raw::new("POST", "/api/v1/users")
                .header("content-type", "application/xml")
                .body("<user/>"),
            &[415],
        ),
        (
            "a form",
            Raw::new("POST", "/api/v1/users")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("name=A&email=a%40example.test"),
            &[415],
        ),
        (
            "no content type",
            Raw::new("POST", "/api/v1/users").body(user.clone()),
            &[415],
        ),
        (
            "garbage content type",
            Raw::new("POST", "/api/v1/users")
                .header("content-type", b"\xff;;==".to_vec())
                .body(user),
            &[415],
        ),
        // Malformed JSON.
        (
            "truncated JSON",
            Raw::new("POST", "/api/v1/users").json(r#"{"name":"A","email":"#),
            &[400],
        ),
        (
            "empty JSON body",
            Raw::new("POST", "/api/v1/users").json(""),
            &[400],
        ),
        (
            "JSON null",
            Raw::new("POST", "/api/v1/songs").json("null"),
            &[400],
        ),
        (
            "JSON trailing garbage",
            Raw::new("POST", "/api/v1/users").json(r#"{"name":"A","email":"a@example.test"} x"#),
            &[400],
        ),
        (
            "JSON duplicate field",
            Raw::new("POST", "/api/v1/users")
                .json(r#"{"name":"A","name":"B","email":"a@example.test"}"#),
            &[400],
        ),
        (
            "100 000 nested arrays",
            Raw::new("POST", "/api/v1/users").json(nested(100_000, "[", "]")),
            &[400],
        ),
        (
            "50 000 nested objects",
            Raw::new("POST", "/api/v1/users").json(deep_objects),
            &[400],
        ),
        (
            "a 1.5 MB name",
            Raw::new("POST", "/api/v1/songs").json(song_of(1_500_000)),
            &[400],
        ),
        // Methods, admin routes, headers, request lines.
        (
            "an unknown method",
            Raw::new("BREW", "/api/v1/songs"),
            &[405],
        ),
        (
            "DELETE on a collection",
            Raw::new("DELETE", "/api/v1/songs"),
            &[405],
        ),
        (
            "clear without a token",
            Raw::new("POST", "/api/v1/cache/clear").json(r#"{"all":true}"#),
            &[401],
        ),
        (
            "clear with a wrong token",
            Raw::new("POST", "/api/v1/cache/clear")
                .header("authorization", b"Bearer \xff\xfe".to_vec())
                .json(r#"{"all":true}"#),
            &[401],
        ),
        (
            "clear with an invalid pattern",
            Raw::new("POST", "/api/v1/cache/clear")
                .header("authorization", auth.clone())
                .json(r#"{"pattern":"[a-"}"#),
            &[400],
        ),
        (
            "clear with a control character in a tag",
            Raw::new("POST", "/api/v1/cache/clear")
                .header("authorization", auth.clone())
                .json(r#"{"tags":["model:songs\n"]}"#),
            &[400],
        ),
        (
            "warm with an unknown type",
            Raw::new("POST", "/api/v1/cache/warm")
                .header("authorization", auth)
                .json(r#"{"types":["../../etc/passwd"]}"#),
            &[400, 404],
        ),
        (
            "a garbage If-None-Match",
            Raw::new("GET", "/api/v1/songs/abc")
                .header("if-none-match", b"W/\"\xff\", *, \"".to_vec()),
            &[400],
        ),
        (
            "a 1 MB header",
            Raw::new("GET", "/api/v1/songs/1").header("x-junk", "j".repeat(1 << 20)),
            &[431],
        ),
        ("no request target", Raw::new("GET", ""), &[400]),
        (
            "a request target of bytes",
            Raw::new("GET", b"\x00\x01\xff".to_vec()),
            &[400],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_a_4xx_and_the_app_keeps_serving() {
    let app = app().await;
    let addr = addr(&app);
    let mut wrong = Vec::new();
    for (what, request, expected) in batch() {
        match request.send(&addr).await {
            Some(Reply { status, body }) => {
                // The app answers in its JSON envelope; the HTTP server itself (a request
                // line or header it cannot parse) with an empty body.
                let envelope = body["status"] == "error" || body.is_null();
                if !expected.contains(&status) || !envelope {
                    wrong.push(format!(
                        "{what}: {status} {body}, expected one of {expected:?}"
                    ));
                }
            }
            None => wrong.push(format!("{what}: no answer")),
        }
    }
    assert!(wrong.is_empty(), "wrong answers:\n{}", wrong.join("\n"));
    still_serving(&app).await;
}

/// The app answers ordinary requests, and its cache is within its budget.
async fn still_serving(app: &SongsApp) {
    let author = app.user("Still Here").await;
    let song = app.song(author, "Alive").await;
    let got = app.get(&format!("/api/v1/songs/{song}")).await;
    assert_eq!(got.status, StatusCode::OK, "{got:?}");
    assert_eq!(got.data()["title"], "Alive");
    let stats = app.app.cache().stats();
    assert!(
        stats.memory_usage_bytes <= BUDGET,
        "{} bytes cached, budget {BUDGET}",
        stats.memory_usage_bytes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_distinct_urls_stays_within_the_cache_budget() {
    // Every distinct query string is a distinct cached answer: 2000 of them would hold
    // far more than the budget; eviction keeps the store within it.
    let app = app().await;
    for i in 0..2000 {
        let answer = app.get(&format!("/api/v1/songs/count?n={i}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    }
    let stats = app.app.cache().stats();
    assert!(stats.memory_usage_bytes <= BUDGET, "{stats:?}");
    assert!(
        stats.keys_count < 2000,
        "the budget evicted entries: {} kept",
        stats.keys_count
    );
    still_serving(&app).await;
}

/// Any bytes as an id segment, any query string, any JSON-ish body: never a 5xx.
#[test]
fn generated_garbage_never_gets_a_5xx() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let app = runtime.block_on(app());
    let addr = addr(&app);
    let segment = proptest::collection::vec(any::<u8>(), 1..40).prop_map(|bytes| {
        bytes
            .iter()
            .map(|b| format!("%{b:02X}"))
            .collect::<String>()
    });
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        "\\PC{0,80}".prop_map(String::into_bytes),
        (
            "\\PC{0,30}",
            prop_oneof![
                "-?[0-9]{1,60}(\\.[0-9]{0,5})?(e[-+]?[0-9]{1,4})?",
                Just("null".to_owned()),
            ],
        )
            .prop_map(|(title, id)| format!(
                r#"{{"title":{title:?},"artist":"a","author_id":{id}}}"#
            )
            .into_bytes()),
    ];
    let route = prop::sample::select(vec![
        ("GET", "/api/v1/songs/"),
        ("GET", "/api/v1/users/"),
        ("PUT", "/api/v1/songs/"),
        ("DELETE", "/api/v1/songs/"),
        ("POST", "/api/v1/songs?limit="),
        ("GET", "/api/v1/songs?limit="),
    ]);
    let mut runner = TestRunner::new(cases(64));
    runner
        .run(
            &(route, segment, body),
            |((method, prefix), segment, body)| {
                let request = Raw::new(method, format!("{prefix}{segment}")).json(body);
                let reply = runtime.block_on(request.send(&addr));
                let status = reply.as_ref().map_or(0, |r| r.status);
                prop_assert!(
                    (200..500).contains(&status),
                    "{method} {prefix}{segment}: {reply:?}"
                );
                Ok(())
            },
        )
        .unwrap_or_else(|failure| panic!("{failure}"));
    runtime.block_on(still_serving(&app));
    drop(app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_limit_is_2_mib() {
    // Just under the limit a body is read and judged (here: a title too long); just over,
    // it is refused unread.
    let app = app().await;
    let addr = addr(&app);
    let under = Raw::new("POST", "/api/v1/songs").json(song_of(BODY_LIMIT - 100));
    let reply = under.send(&addr).await.expect("an answer");
    assert_eq!(reply.status, 400, "{reply:?}");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("title")
    );
    let over = Raw::new("POST", "/api/v1/songs").json(song_of(BODY_LIMIT));
    let reply = over.send(&addr).await.expect("an answer");
    assert_eq!(
        (reply.status, &reply.body["error"]["code"]),
        (413, &json!("payload_too_large"))
    );
}

/// Issue 20, item 5: a NUL (or any control character) in a text field is a 400, not a
/// 500 from PostgreSQL (which refuses NUL in text); line breaks in lyrics stay allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_text_fields_are_a_400_on_postgres() {
    let Some(app) = SongsApp::start_with(Kind::Memory, Db::Postgres, |b| b, None).await else {
        return;
    };
    let answer = app
        .post(
            "/api/v1/users",
            json!({"name": "a\u{0}b", "email": "nul@example.test"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    let author = app.user("Ann").await;
    for (field, value) in [
        ("title", "x\u{0}y"),
        ("artist", "esc\u{1b}[31m"),
        ("content", "lyrics\u{0}"),
    ] {
        let mut song = json!({"title": "t", "artist": "a", "author_id": author});
        song[field] = json!(value);
        let answer = app.post("/api/v1/songs", song).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{field}: {}",
            answer.body
        );
        assert_eq!(
            answer.body["error"]["code"], "invalid_body",
            "{}",
            answer.body
        );
    }
    let id = app.song(author, "Fine").await;
    let answer = app
        .put(&format!("/api/v1/songs/{id}"), json!({"content": "a\u{0}"}))
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    let answer = app
        .put(
            &format!("/api/v1/songs/{id}"),
            json!({"content": "line one\nline two\tend"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}
