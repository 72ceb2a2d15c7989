//! The app's reads, each cached with `#[cached_query]` in the cache the connection carries.
//! None declares what it depends on: each depends on what its SQL was observed to read (the
//! tables of every join, the rows a by-id read pins). Writes need no code here either:
//! every write through the `CachedConnection` invalidates exactly the reads it touches.

use querycache::orm::sea_orm::CachedConnection;
use querycache::{cache_count_query, cached_query};
use sea_orm::{
    ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::schema::{song, user};

/// One song. Depends on its own row only (its SQL pins it by primary key): writes to other
/// songs keep it cached.
#[cached_query(ttl = "10m")]
pub async fn song_by_id(db: &CachedConnection, id: i32) -> Result<Option<song::Model>, DbErr> {
    song::Entity::find_by_id(id).one(db).await
}

/// The newest songs, newest first. Any write to `songs` invalidates it.
///
/// The front page's list: for a minute past its TTL it is served stale while one background
/// refresh runs (`swr`), and should the database fail it is served up to an hour stale
/// (`fail_safe`). Neither ever serves a list a write has invalidated.
#[cached_query(ttl = "5m", swr = "1m", fail_safe = "1h")]
pub async fn newest_songs(db: &CachedConnection, limit: u64) -> Result<Vec<song::Model>, DbErr> {
    song::Entity::find()
        .order_by_desc(song::Column::CreatedAt)
        .order_by_desc(song::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// How many songs there are (count queries default to the shorter `CACHE_COUNT_TTL`).
#[cache_count_query(song::Entity)]
pub async fn song_count(db: &CachedConnection) -> Result<u64, DbErr> {
    song::Entity::find().count(db).await
}

/// One user. Depends on that user's row.
#[cached_query(ttl = "10m")]
pub async fn user_by_id(db: &CachedConnection, id: i32) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find_by_id(id).one(db).await
}

/// A user's songs, newest first. Any write to `songs` invalidates it.
#[cached_query(ttl = "5m")]
pub async fn songs_by_author(
    db: &CachedConnection,
    author_id: i32,
) -> Result<Vec<song::Model>, DbErr> {
    song::Entity::find()
        .filter(song::Column::AuthorId.eq(author_id))
        .order_by_desc(song::Column::CreatedAt)
        .order_by_desc(song::Column::Id)
        .all(db)
        .await
}

/// The first `limit` users by id (the `users` warmer reads them).
#[cached_query(ttl = "10m")]
pub async fn first_users(db: &CachedConnection, limit: u64) -> Result<Vec<user::Model>, DbErr> {
    user::Entity::find()
        .order_by_asc(user::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// A song's card: the song and its author (one query, a join). Nothing declared: it depends
/// on the song's row and on the `users` table it joined, so renaming the author changes it.
#[cached_query(ttl = "10m")]
pub async fn song_card(
    db: &CachedConnection,
    id: i32,
) -> Result<Option<(song::Model, Option<user::Model>)>, DbErr> {
    song::Entity::find_by_id(id)
        .find_also_related(user::Entity)
        .one(db)
        .await
}
