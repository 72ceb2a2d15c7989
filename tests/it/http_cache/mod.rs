//! Whole-response caching for axum (`querycache::http`), over real HTTP: routers served on
//! free loopback ports, called with reqwest.
//!
//! The "database" is a map of song titles with a counter of the queries the handlers
//! ran; "writes" change the map and invalidate the tags an ORM write would.

mod deep_etags;
mod freshness;
#[cfg(feature = "redis")]
mod shared_redis;
mod tags_header;
mod what_is_cached;

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

/// `/songs/{id}` cached by row (`cache_row_response`), served on a free port.
async fn serve_rows(cache: &Cache, db: &Arc<Db>) -> String {
    let layer = cache_row_response(cache, TTL, "songs", "id").expect("a valid layer");
    serve(songs(db, layer)).await
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
