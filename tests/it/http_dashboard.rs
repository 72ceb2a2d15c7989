//! The dashboard in headless Chromium: it loads without JS exceptions, shows health, draws
//! the hit-rate chart, lists the top keys (redacted until the admin token is given, then as
//! text — a planted key with markup stays text) and namespaces, and its admin buttons reach
//! the server — a wrong token shows the 401 message, the right one invalidates the tag
//! (checked on the server: the entry is then a miss).

use std::time::Duration;

use axum::Router;
use querycache::http::{ManagementOptions, management_router};
use querycache::{Cache, EntryOptions, Tag};

use crate::support::chromium::Chromium;
use crate::support::http::TestServer;

const TOKEN: &str = "dashboard-test-token";
/// Generous: Chromium shares two cores with everything else.
const DEADLINE: Duration = Duration::from_secs(30);
/// A key any client could make (a cached route's path or query): markup that runs script if
/// the page ever parsed it as HTML.
const PLANTED: &str = "planted:<img src=x onerror=\"window.planted=1\">";

/// A cache with traffic: three keys read often (so that the sampled top-keys sketch sees
/// them), some misses, in two namespaces.
async fn cache_with_traffic() -> Cache {
    let cache = Cache::new();
    let songs = EntryOptions::new()
        .namespace("songs")
        .tag(Tag::model("songs"));
    let users = EntryOptions::new()
        .namespace("users")
        .tag(Tag::new("user:7").unwrap());
    for (key, options) in [
        ("song:1", &songs),
        ("song:2", &songs),
        ("user:7:profile", &users),
    ] {
        cache
            .set(key, format!("value of {key}"), options.clone())
            .await
            .unwrap();
    }
    for (key, reads) in [("song:1", 800), ("user:7:profile", 600), ("song:2", 400)] {
        for _ in 0..reads {
            assert!(cache.get::<String>(key).await.is_some());
        }
    }
    for i in 0..100 {
        assert!(cache.get::<String>(&format!("absent:{i}")).await.is_none());
    }
    for _ in 0..300 {
        assert!(cache.get::<String>(PLANTED).await.is_none());
    }
    cache
}

#[tokio::test]
async fn http_dashboard_in_headless_chromium() {
    let Some(chromium) = Chromium::launch().await else {
        return;
    };
    let cache = cache_with_traffic().await;
    let options = ManagementOptions::new().admin_token(TOKEN);
    let app = Router::new().nest("/api/v1/cache", management_router(cache.clone(), options));
    let server = TestServer::start(app).await;

    let page = chromium.new_page().await;
    page.navigate(&server.url("/api/v1/cache/dashboard")).await;
    assert_eq!(page.eval("document.title").await, "querycache dashboard");

    // Health.
    page.wait_for(
        "document.getElementById('health-store').textContent === 'memory'",
        DEADLINE,
    )
    .await;
    assert_eq!(page.text("#health-status").await, "healthy");
    assert_eq!(page.text("#health-redis").await, "not used");
    assert!(page.text("#health-fallback").await.starts_with("available"));

    // The chart has drawn the analytics timeline (one bucket with lookups, at least).
    let points = page
        .wait_for(
            "Number(document.getElementById('hit-chart').dataset.points)",
            DEADLINE,
        )
        .await;
    assert!(points.as_f64().unwrap() >= 1.0, "points drawn: {points}");

    // Top keys: without the token, their namespaces and counts, the texts redacted.
    page.wait_for(
        "(rows => rows.length >= 4 && rows.every(td => td.textContent === '<redacted>'))\
         ([...document.querySelectorAll('#top-keys td.key:first-child')])",
        DEADLINE,
    )
    .await;
    let redacted = page.text("#top-keys").await;
    assert!(
        // `Cache::get` reads count under the default namespace.
        redacted.contains("default")
            && !redacted.contains("song:1")
            && !redacted.contains("planted"),
        "{redacted}"
    );
    assert!(page.text("#keys-note").await.contains("hidden"));

    // With the token (Show keys), the key texts — a planted one as text, not markup.
    page.type_into("#token", TOKEN).await;
    page.click("#show-keys").await;
    page.wait_for(
        "['song:1', 'song:2', 'user:7:profile'].every(k => \
         [...document.querySelectorAll('#top-keys td.key')].some(td => td.textContent === k))",
        DEADLINE,
    )
    .await;
    let first = page.text("#top-keys tr:first-child td.key").await;
    assert_eq!(first, "song:1", "the most read key first");
    let planted = serde_json::to_string(PLANTED).unwrap();
    page.wait_for(
        &format!("[...document.querySelectorAll('#top-keys td.key')].some(td => td.textContent === {planted})"),
        DEADLINE,
    )
    .await;
    assert_eq!(
        page.eval("document.querySelectorAll('#top-keys img').length")
            .await,
        0,
        "the planted key made no element"
    );
    assert_eq!(
        page.eval("typeof window.planted").await,
        "undefined",
        "no planted script ran"
    );
    let namespaces = page.text("#namespaces").await;
    assert!(
        namespaces.contains("songs") && namespaces.contains("users"),
        "{namespaces}"
    );
    let figures = page.text("#figures").await;
    assert!(figures.contains("hit rate"), "{figures}");

    // A wrong token: the server's 401 is shown, nothing is invalidated.
    page.type_into("#token", "not-the-token").await;
    page.type_into("#clear-tag-input", "user:7").await;
    page.click("#clear-tag").await;
    let shown = page
        .wait_for(
            "(t => t.includes('401') && t)(document.getElementById('admin-result').textContent)",
            DEADLINE,
        )
        .await;
    let shown = shown.as_str().unwrap();
    assert!(shown.contains("unauthorized"), "{shown}");
    assert!(shown.contains("invalid bearer token"), "{shown}");
    assert!(cache.get::<String>("user:7:profile").await.is_some());

    // The right token: the tag is invalidated on the server.
    page.type_into("#token", TOKEN).await;
    page.click("#clear-tag").await;
    let shown = page
        .wait_for(
            "(t => t.includes('200') && t)(document.getElementById('admin-result').textContent)",
            DEADLINE,
        )
        .await;
    assert!(
        shown.as_str().unwrap().contains("invalidated 1 tags"),
        "{shown}"
    );
    assert!(
        cache.get::<String>("user:7:profile").await.is_none(),
        "user:7 invalidated: a miss"
    );
    assert!(
        cache.get::<String>("song:1").await.is_some(),
        "other tags untouched"
    );

    // The token stays out of the URL and, unasked, out of storage.
    let href = page.eval("location.href").await;
    assert!(!href.as_str().unwrap().contains(TOKEN), "{href}");
    let stored = page
        .eval("sessionStorage.getItem('querycache.token')")
        .await;
    assert!(stored.is_null(), "{stored}");

    let exceptions = page.exceptions();
    assert!(
        exceptions.is_empty(),
        "JS exceptions: {exceptions:?}; console: {:?}",
        page.console()
    );
}
