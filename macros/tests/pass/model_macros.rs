//! #[cache_model_query] and #[cache_count_query] with their options.
#![deny(warnings)]

use crate::entities::{song, user};
use querycache::{CacheModel, cache_count_query, cache_model_query};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter};

struct TopSongs;
impl CacheModel for TopSongs {
    const TABLE: &'static str = "top_songs";
    const SCHEMA: Option<&'static str> = Some("charts");
}

#[cache_model_query(song::Entity)]
async fn song_by_id_bare(db: &DatabaseConnection, id: i32) -> Result<Option<song::Model>, DbErr> {
    song::Entity::find_by_id(id).one(db).await
}

#[cache_model_query(song::Entity, row = id, ttl = "1h", namespace = "song_by_id")]
async fn song_by_id(db: &DatabaseConnection, id: i32) -> Result<Option<song::Model>, DbErr> {
    song::Entity::find_by_id(id).one(db).await
}

#[cache_model_query(user::Entity, tags = ["user:{id}"], key = "user:{id}", error_ttl = 10)]
async fn user_by_id(db: &DatabaseConnection, id: i32) -> Result<Option<user::Model>, String> {
    user::Entity::find_by_id(id)
        .one(db)
        .await
        .map_err(|e| e.to_string())
}

#[cache_model_query(TopSongs, cache_errors)]
async fn top_songs(limit: u32) -> Result<Vec<String>, String> {
    Ok(vec![limit.to_string()])
}

#[cache_count_query(song::Entity)]
async fn song_count(db: &DatabaseConnection) -> Result<u64, DbErr> {
    song::Entity::find().count(db).await
}

#[cache_count_query(song::Entity, ttl = 30, tags = ["author:{author_id}"])]
async fn songs_by_author(db: &DatabaseConnection, author_id: i32) -> Result<u64, DbErr> {
    song::Entity::find()
        .filter(song::Column::AuthorId.eq(author_id))
        .count(db)
        .await
}

#[cache_count_query(TopSongs)]
async fn top_count() -> u64 {
    10
}

pub(crate) fn main() {
    let _ = (
        song_by_id_bare,
        song_by_id,
        user_by_id,
        top_songs,
        song_count,
        songs_by_author,
    );
    let _ = top_count;
}
