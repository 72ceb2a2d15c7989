//! The freshness options: `swr`, `early_refresh`, `fail_safe`, `fail_safe_throttle`,
//! `soft_timeout`, `hard_timeout`, on every kind of function that accepts them.
#![deny(warnings)]

use std::sync::LazyLock;

use querycache::{Cache, CacheModel, TimedOut, cache_count_query, cache_model_query, cached_query};

static CACHE: LazyLock<Cache> = LazyLock::new(Cache::new);

struct Songs;
impl CacheModel for Songs {
    const TABLE: &'static str = "songs";
}

/// A connection handle that is cheap to clone (recognized as a connection by its name).
#[derive(Clone)]
struct AppConnection {
    url: String,
}

#[derive(Debug)]
enum AppError {
    Db(String),
    TimedOut(TimedOut),
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppError::Db(message) => f.write_str(message),
            AppError::TimedOut(timed_out) => timed_out.fmt(f),
        }
    }
}

impl From<TimedOut> for AppError {
    fn from(timed_out: TimedOut) -> Self {
        AppError::TimedOut(timed_out)
    }
}

/// Cacheable, and converts a timeout.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Failure(String);

impl From<TimedOut> for Failure {
    fn from(timed_out: TimedOut) -> Self {
        Failure(timed_out.to_string())
    }
}

/// Every option, on an async fn taking a `&str`, an owned argument and a connection by
/// reference: both references are cloned into the computation.
#[cached_query(
    ttl = "10m",
    models = [Songs],
    swr = "5m",
    early_refresh = 1.0,
    fail_safe = "1h",
    fail_safe_throttle = 30,
    soft_timeout = "250ms",
    hard_timeout = "2s",
    cache = *CACHE
)]
async fn everything(db: &AppConnection, title: &str, limit: u32) -> Result<Vec<String>, AppError> {
    if db.url.is_empty() {
        return Err(AppError::Db("no database".into()));
    }
    let title: &str = title;
    Ok(vec![format!("{title} {limit}")])
}

/// Integers are seconds, the timeouts also take milliseconds alone; an integer beta.
#[cached_query(swr = 30, early_refresh = 2, soft_timeout = 1, hard_timeout = "1500ms")]
async fn integers(id: u64) -> Result<u64, AppError> {
    Ok(id)
}

/// A plain value: no hard timeout, but a soft one (it only ever serves a stale value).
#[cached_query(swr = "1m", soft_timeout = "100ms")]
async fn plain_value(name: &str, bytes: &[u8]) -> usize {
    name.len() + bytes.len()
}

/// Only `swr`: a `&mut` argument cannot be owned, so the refresh runs in the foreground.
#[cached_query(swr = "1m", early_refresh = 0.5)]
async fn borrows_mutably(#[cache_skip] buffer: &mut Vec<u8>, id: u32) -> u32 {
    buffer.push(1);
    id
}

/// `mut` on a `&T` argument still works in the body.
#[cached_query(early_refresh = 1.5)]
async fn mutable_reference(mut text: &str) -> String {
    text = text.trim();
    text.to_owned()
}

/// A type parameter (it must be `Clone + Send + Sync + 'static` for the clone).
#[cached_query(swr = 60, hard_timeout = 3)]
async fn generic<C: Clone + Send + Sync + 'static>(
    #[cache_skip] conn: &C,
    id: u32,
) -> Result<u32, AppError> {
    let _ = conn;
    Ok(id)
}

/// Errors cached, with a hard timeout: the timeout's error is `E::from(TimedOut)`.
#[cached_query(error_ttl = 30, hard_timeout = "5s", swr = 10)]
async fn cached_errors(id: u32) -> Result<u32, Failure> {
    if id == 0 {
        Err(Failure("zero".into()))
    } else {
        Ok(id)
    }
}

/// Errors cached, no timeout.
#[cached_query(cache_errors, early_refresh = 1.0)]
async fn cached_errors_no_timeout(id: u32) -> Result<u32, Failure> {
    Ok(id)
}

/// `fail_safe` alone: the existing path, options only.
#[cached_query(fail_safe = "30m")]
async fn fail_safe_only(id: u32) -> Result<u32, AppError> {
    Ok(id)
}

/// A plain `fn`: `swr`, `early_refresh` and `fail_safe` travel in the options.
#[cached_query(
    swr = 30,
    early_refresh = 1.0,
    fail_safe = "1h",
    fail_safe_throttle = "10s"
)]
fn sync_query(id: u32) -> Result<u32, String> {
    Ok(id)
}

#[cache_model_query(Songs, swr = "2m", hard_timeout = "1s")]
async fn model_query(id: u32) -> Result<Option<u32>, AppError> {
    Ok(Some(id))
}

#[cache_count_query(Songs, early_refresh = 1.0, soft_timeout = "50ms")]
async fn count_query() -> u64 {
    3
}

struct Repo {
    cache: Cache,
}

impl Repo {
    /// `&self` cannot be owned: with `swr` only, the foreground path.
    #[cached_query(cache = self.cache, swr = "1m", fail_safe = "10m")]
    async fn by_ref(&self, id: u32) -> Result<u32, AppError> {
        Ok(id)
    }

    /// `self` by value moves into the computation.
    #[cached_query(cache = self.cache, hard_timeout = "1s")]
    async fn by_value(self, name: &str) -> Result<String, AppError> {
        let _ = &self.cache;
        Ok(name.to_owned())
    }
}

pub(crate) fn main() {
    let _ = (
        everything,
        integers,
        plain_value,
        borrows_mutably,
        mutable_reference,
    );
    let _ = (
        generic::<AppConnection>,
        cached_errors,
        cached_errors_no_timeout,
    );
    let _ = (fail_safe_only, sync_query, model_query, count_query);
    let _ = (Repo::by_ref, Repo::by_value);
    let _ = AppError::Db(String::new()).to_string();
}
