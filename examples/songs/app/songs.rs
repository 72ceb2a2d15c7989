//! `/api/v1/songs`: create, read, update, delete, the newest songs, and the count.

use axum::extract::State;
use axum::http::StatusCode;
use querycache::http::{ApiError, ApiResponse};

use super::extract::{ApiJson, ApiPath, ApiQuery};

use sea_orm::{ActiveModelTrait, EntityTrait, ModelTrait, Set};
use serde::{Deserialize, Serialize};

use super::schema::{song, user};
use super::{App, queries, users::no_user};

/// Longest title or artist accepted, in characters.
const MAX_NAME: usize = 200;
/// Largest `content` accepted, in bytes.
const MAX_CONTENT: usize = 64 * 1024;
/// `GET /api/v1/songs` returns this many songs unless `limit` says otherwise.
pub const DEFAULT_LIMIT: u64 = 20;
/// The largest `limit` accepted.
pub const MAX_LIMIT: u64 = 100;

/// The body of `POST /api/v1/songs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSong {
    title: String,
    artist: String,
    author_id: i32,
    #[serde(default)]
    content: String,
}

/// The body of `PUT /api/v1/songs/{id}`: the fields to change (at least one).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SongChanges {
    title: Option<String>,
    artist: Option<String>,
    content: Option<String>,
    archived: Option<bool>,
}

/// The query string of `GET /api/v1/songs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    limit: Option<u64>,
}

/// The answer of `GET /api/v1/songs/count`.
#[derive(Debug, Serialize)]
pub struct Count {
    count: u64,
}

/// The answer of `DELETE /api/v1/songs/{id}`.
#[derive(Debug, Serialize)]
pub struct Deleted {
    id: i32,
    deleted: bool,
}

/// 400 when `value` holds a control character (a NUL, an escape...): PostgreSQL refuses
/// NUL in text (a 500 otherwise), and none belongs in a name. `layout`: tabs and line
/// breaks are allowed (a song's lyrics).
pub(super) fn check_no_control(field: &str, value: &str, layout: bool) -> Result<(), ApiError> {
    let allowed = |c: char| layout && matches!(c, '\n' | '\r' | '\t');
    match value.chars().find(|&c| c.is_control() && !allowed(c)) {
        Some(c) => Err(ApiError::invalid_body(format!(
            "{field}: control characters are not allowed (found U+{:04X})",
            u32::from(c)
        ))),
        None => Ok(()),
    }
}

fn check_name(field: &str, value: &str) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > MAX_NAME {
        return Err(ApiError::invalid_body(format!(
            "{field}: must be 1 to {MAX_NAME} characters"
        )));
    }
    check_no_control(field, value, false)?;
    Ok(value.to_owned())
}

fn check_content(value: String) -> Result<String, ApiError> {
    if value.len() > MAX_CONTENT {
        return Err(ApiError::invalid_body(format!(
            "content: at most {MAX_CONTENT} bytes, got {}",
            value.len()
        )));
    }
    check_no_control("content", &value, true)?;
    Ok(value)
}

fn no_song(id: i32) -> ApiError {
    ApiError::not_found(format!("song {id} does not exist"))
}

/// `POST /api/v1/songs` → 201 with the song; 404 when `author_id` names no user.
pub async fn create(
    State(app): State<App>,
    ApiJson(body): ApiJson<NewSong>,
) -> Result<ApiResponse<song::Model>, ApiError> {
    let title = check_name("title", &body.title)?;
    let artist = check_name("artist", &body.artist)?;
    let content = check_content(body.content)?;
    if user::Entity::find_by_id(body.author_id)
        .one(app.db())
        .await
        .map_err(ApiError::internal)?
        .is_none()
    {
        return Err(no_user(body.author_id));
    }
    let now = chrono::Utc::now();
    let created = song::ActiveModel {
        title: Set(title),
        artist: Set(artist),
        author_id: Set(body.author_id),
        content: Set(content),
        archived: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(app.db())
    .await
    .map_err(ApiError::internal)?;
    Ok(ApiResponse::new(created).with_status(StatusCode::CREATED))
}

/// `GET /api/v1/songs/{id}` → the song, or 404.
pub async fn get(
    State(app): State<App>,
    ApiPath(id): ApiPath<i32>,
) -> Result<ApiResponse<song::Model>, ApiError> {
    let found = queries::song_by_id(app.db(), id)
        .await
        .map_err(ApiError::internal)?;
    found.map(ApiResponse::new).ok_or_else(|| no_song(id))
}

/// The body of `GET /api/v1/songs/{id}/card`: a song with its author's name.
#[derive(Debug, Serialize)]
pub struct Card {
    id: i32,
    title: String,
    artist: String,
    author: Option<Author>,
}

/// The author on a [`Card`].
#[derive(Debug, Serialize)]
pub struct Author {
    id: i32,
    name: String,
}

/// `GET /api/v1/songs/{id}/card` → the song and its author's name, or 404. Its route
/// declares no tags: the answer (and its deep ETag) depends on what the handler read.
pub async fn card(
    State(app): State<App>,
    ApiPath(id): ApiPath<i32>,
) -> Result<ApiResponse<Card>, ApiError> {
    let found = queries::song_card(app.db(), id)
        .await
        .map_err(ApiError::internal)?;
    let (song, author) = found.ok_or_else(|| no_song(id))?;
    Ok(ApiResponse::new(Card {
        id: song.id,
        title: song.title,
        artist: song.artist,
        author: author.map(|a| Author {
            id: a.id,
            name: a.name,
        }),
    }))
}

/// `PUT /api/v1/songs/{id}` → the updated song; 400 for an empty change, 404 for an
/// unknown song.
pub async fn update(
    State(app): State<App>,
    ApiPath(id): ApiPath<i32>,
    ApiJson(changes): ApiJson<SongChanges>,
) -> Result<ApiResponse<song::Model>, ApiError> {
    if changes.title.is_none()
        && changes.artist.is_none()
        && changes.content.is_none()
        && changes.archived.is_none()
    {
        return Err(ApiError::invalid_body(
            "nothing to change: give at least one of title, artist, content, archived",
        ));
    }
    let title = changes
        .title
        .as_deref()
        .map(|t| check_name("title", t))
        .transpose()?;
    let artist = changes
        .artist
        .as_deref()
        .map(|a| check_name("artist", a))
        .transpose()?;
    let content = changes.content.map(check_content).transpose()?;
    // Read from the database, not the cache: an update starts from the current row.
    let current = song::Entity::find_by_id(id)
        .one(app.db())
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| no_song(id))?;
    let mut active: song::ActiveModel = current.into();
    if let Some(title) = title {
        active.title = Set(title);
    }
    if let Some(artist) = artist {
        active.artist = Set(artist);
    }
    if let Some(content) = content {
        active.content = Set(content);
    }
    if let Some(archived) = changes.archived {
        active.archived = Set(archived);
    }
    active.updated_at = Set(chrono::Utc::now());
    let updated = active.update(app.db()).await.map_err(ApiError::internal)?;
    Ok(ApiResponse::new(updated))
}

/// `DELETE /api/v1/songs/{id}` → `{id, deleted: true}`, or 404.
pub async fn delete(
    State(app): State<App>,
    ApiPath(id): ApiPath<i32>,
) -> Result<ApiResponse<Deleted>, ApiError> {
    let current = song::Entity::find_by_id(id)
        .one(app.db())
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| no_song(id))?;
    current.delete(app.db()).await.map_err(ApiError::internal)?;
    Ok(ApiResponse::new(Deleted { id, deleted: true }))
}

/// `GET /api/v1/songs?limit=N` → the newest songs (N in 1..=100, default 20).
pub async fn list(
    State(app): State<App>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<ApiResponse<Vec<song::Model>>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: must be between 1 and {MAX_LIMIT}, got {limit}"
        )));
    }
    let songs = queries::newest_songs(app.db(), limit)
        .await
        .map_err(ApiError::internal)?;
    Ok(ApiResponse::new(songs))
}

/// `GET /api/v1/songs/count` → `{count}`.
pub async fn count(State(app): State<App>) -> Result<ApiResponse<Count>, ApiError> {
    let count = queries::song_count(app.db())
        .await
        .map_err(ApiError::internal)?;
    Ok(ApiResponse::new(Count { count }))
}
