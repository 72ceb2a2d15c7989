//! Every option of #[cached_query] on free functions.
#![deny(warnings)]

use std::sync::{Arc, LazyLock};

use crate::entities::{song, user};
use querycache::{Cache, CacheModel, cached_query};
use sea_orm::{DatabaseConnection, DbErr, EntityTrait};

static CACHE: LazyLock<Cache> = LazyLock::new(Cache::new);
static SHARED: LazyLock<Arc<Cache>> = LazyLock::new(|| Arc::new(Cache::new()));

struct TopSongs;
impl CacheModel for TopSongs {
    const TABLE: &'static str = "top_songs";
}

#[cached_query]
async fn no_options(db: &DatabaseConnection, id: i32) -> Result<Option<song::Model>, DbErr> {
    song::Entity::find_by_id(id).one(db).await
}

#[cached_query(ttl = 3600)]
async fn ttl_seconds(x: u32) -> u32 {
    x
}

#[cached_query(ttl = "90s")]
async fn ttl_90s(x: u32) -> u32 {
    x
}

#[cached_query(ttl = "30m")]
async fn ttl_30m(x: u32) -> u32 {
    x
}

#[cached_query(ttl = "30m", jitter = 10)]
async fn ttl_with_jitter(x: u32) -> u32 {
    x
}

#[cached_query(ttl = "2h")]
async fn ttl_2h(x: u32) -> u32 {
    x
}

#[cached_query(ttl = "1d")]
async fn ttl_1d(x: u32) -> u32 {
    x
}

#[cached_query(ttl = "1h30m")]
async fn ttl_1h30m(x: u32) -> u32 {
    x
}

#[cached_query(ttl = 3600u64, error_ttl = 30)]
async fn suffixed_ttl(x: u32) -> Result<u32, String> {
    Ok(x)
}

#[cached_query(models = [song::Entity, user::Entity, TopSongs], ttl = "10m")]
async fn several_models(
    db: &DatabaseConnection,
    author_id: i32,
) -> Result<Vec<song::Model>, DbErr> {
    let _ = author_id;
    song::Entity::find().all(db).await
}

#[cached_query(models = [song::Entity, user::Entity], row = id)]
async fn by_id(db: &DatabaseConnection, id: i32) -> Result<Option<song::Model>, DbErr> {
    song::Entity::find_by_id(id).one(db).await
}

#[cached_query(models = [TopSongs,], row = id, tags = ["user:{user_id}", "global", "{{literal}}"])]
async fn with_tags(id: u64, user_id: i64) -> String {
    format!("{id}{user_id}")
}

#[cached_query(key = "songs:popular:limit:{limit}", namespace = "songs")]
async fn popular(db: &DatabaseConnection, limit: u64) -> Result<Vec<song::Model>, DbErr> {
    let _ = limit;
    song::Entity::find().all(db).await
}

#[cached_query(error_ttl = "5m", cache = *CACHE)]
async fn error_ttl(db: &DatabaseConnection, id: i32) -> Result<Option<String>, String> {
    let _ = db;
    Ok(Some(id.to_string()))
}

#[cached_query(cache_errors, cache = &*CACHE)]
async fn cache_errors(id: i32) -> Result<i32, String> {
    if id < 0 {
        Err("negative".into())
    } else {
        Ok(id)
    }
}

#[cached_query(cache = SHARED.clone())]
async fn arc_cache(id: i32) -> i32 {
    id
}

#[cached_query(cache = Arc::clone(&SHARED), ttl = 5)]
async fn arc_cache_ref(id: i32) -> i32 {
    id
}

mod db {
    pub type Result<T> = std::result::Result<T, sea_orm::DbErr>;
}

/// A path ending in `Result<..>` with one argument: still the `Result` mode (here the
/// error type is not serializable, which only error caching would need).
#[cached_query(ttl = 60)]
async fn alias_result(db: &DatabaseConnection) -> db::Result<u64> {
    let _ = db;
    Ok(1)
}

#[cached_query(ttl = 60)]
async fn io_result(path: String) -> std::io::Result<u64> {
    Ok(path.len() as u64)
}

/// `?` and `return` inside the body behave as in the function.
#[cached_query]
async fn early_return(text: String) -> Result<u32, std::num::ParseIntError> {
    if text.is_empty() {
        return Ok(0);
    }
    let value: u32 = text.parse()?;
    Ok(value)
}

/// No key arguments at all, and a raw identifier.
#[cached_query(namespace = "stats")]
async fn r#unit() -> u64 {
    7
}

/// A value of unit type is still a value.
#[cached_query]
async fn returns_unit(x: u8) -> () {
    let _ = x;
}

pub(crate) fn main() {
    let _ = (
        no_options,
        ttl_seconds,
        ttl_90s,
        ttl_30m,
        ttl_with_jitter,
        ttl_2h,
        ttl_1d,
        ttl_1h30m,
        suffixed_ttl,
    );
    let _ = (
        several_models,
        by_id,
        with_tags,
        popular,
        error_ttl,
        cache_errors,
        arc_cache,
    );
    let _ = (
        arc_cache_ref,
        alias_result,
        io_result,
        early_return,
        r#unit,
        returns_unit,
    );
}
