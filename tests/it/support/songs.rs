//! The songs app (`examples/songs`), started for real on a free loopback port with its own
//! SQLite file and cache, and an HTTP client for it.

#![cfg(all(feature = "axum", feature = "sea-orm"))]

#[path = "../../../examples/songs/app/mod.rs"]
pub mod app;

use std::time::Duration;

use querycache::http::ServeOptions;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::Db;
use super::stores::{self, Kind, TestCache};
use super::throwaway::PgDatabase;

/// A running songs app. Stopped (gracefully) on drop; its database is a SQLite file in a
/// temporary directory or a throwaway PostgreSQL database, its Redis (tiered store) a private
/// redis-server.
pub struct SongsApp {
    pub base: String,
    pub client: reqwest::Client,
    pub app: app::App,
    pub cache: TestCache,
    shutdown: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
    /// Last: the database is dropped after the app's handles.
    _postgres: Option<PgDatabase>,
}

/// An answer: status, headers and the JSON body (`Value::Null` when empty or not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `X-Cache`: `HIT` or `MISS`.
    pub fn x_cache(&self) -> &str {
        self.header("x-cache").unwrap_or("(none)")
    }

    pub fn etag(&self) -> String {
        self.header("etag").expect("an ETag").to_owned()
    }

    /// `data` of a success envelope.
    pub fn data(&self) -> &Value {
        assert_eq!(self.body["status"], "success", "not a success: {self:?}");
        &self.body["data"]
    }

    /// `error.code` of an error envelope, checking its shape.
    pub fn error_code(&self) -> &str {
        assert_eq!(self.body["status"], "error", "not an error: {self:?}");
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "an error has a message: {self:?}"
        );
        self.body["error"]["code"].as_str().expect("an error code")
    }
}

impl SongsApp {
    /// The app on a memory cache, or on a tiered cache in front of a private redis-server
    /// (`None` when redis-server is missing and services are not required).
    pub async fn start(kind: Kind, db: Db) -> Option<SongsApp> {
        Self::start_with(kind, db, |b| b, None).await
    }

    /// The same, with the cache configured by `f` and an admin token.
    pub async fn start_with(
        kind: Kind,
        db: Db,
        f: impl FnOnce(querycache::config::CacheBuilder) -> querycache::config::CacheBuilder,
        admin_token: Option<&str>,
    ) -> Option<SongsApp> {
        Self::start_serving(kind, db, f, admin_token, ServeOptions::new()).await
    }

    /// The same, served within the limits of `serve` (timeouts, connections).
    pub async fn start_serving(
        kind: Kind,
        db: Db,
        f: impl FnOnce(querycache::config::CacheBuilder) -> querycache::config::CacheBuilder,
        admin_token: Option<&str>,
        serve: ServeOptions,
    ) -> Option<SongsApp> {
        let cache = stores::cache_with(kind, f)?;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (url, postgres) = match db {
            Db::Sqlite => {
                let path = dir.path().join("songs.db");
                (format!("sqlite://{}?mode=rwc", path.display()), None)
            }
            Db::Postgres => {
                let database = PgDatabase::create().await?;
                (database.url().to_owned(), Some(database))
            }
            Db::MySql => {
                let database = super::throwaway::ThrowawayDb::mysql().await?;
                (database.url().to_owned(), Some(database))
            }
        };
        let mut config = app::AppConfig::new(url, cache.cache.clone());
        if let Some(token) = admin_token {
            config.management = config.management.admin_token(token);
        }
        config.serve = serve;
        let app = app::App::start(config).await.expect("the app starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let (tx, rx) = oneshot::channel::<()>();
        let serving = app.clone();
        tokio::spawn(async move {
            let _ = serving
                .serve(listener, async {
                    let _ = rx.await;
                })
                .await;
        });
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            // Below the app's header timeout (10 s), which also closes idle keep-alive
            // connections: a pooled connection is never reused as the server closes it.
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client");
        Some(SongsApp {
            base,
            client,
            app,
            cache,
            shutdown: Some(tx),
            _dir: dir,
            _postgres: postgres,
        })
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the app answers");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None, &[]).await
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.send(Method::GET, path, None, headers).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(body), &[]).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.send(Method::PUT, path, Some(body), &[]).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send(Method::DELETE, path, None, &[]).await
    }

    /// `POST /api/v1/users/{author}/songs/archive`.
    pub async fn archive(&self, author: impl std::fmt::Display) -> Answer {
        let path = format!("/api/v1/users/{author}/songs/archive");
        self.send(Method::POST, &path, None, &[]).await
    }

    /// Creates a user and returns its id.
    pub async fn user(&self, name: &str) -> i64 {
        let email = format!("{}@example.test", name.to_lowercase().replace(' ', "."));
        let answer = self
            .post("/api/v1/users", json!({"name": name, "email": email}))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
        answer.data()["id"].as_i64().expect("an id")
    }

    /// Creates a song by `author` and returns its id.
    pub async fn song(&self, author: i64, title: &str) -> i64 {
        let answer = self
            .post(
                "/api/v1/songs",
                json!({"title": title, "artist": "Someone", "author_id": author}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
        answer.data()["id"].as_i64().expect("an id")
    }
}

impl Drop for SongsApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
