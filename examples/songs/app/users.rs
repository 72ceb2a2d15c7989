//! `/api/v1/users`: create a user, read one, list their songs, archive their songs in bulk.

use axum::extract::State;
use axum::http::StatusCode;
use querycache::http::{ApiError, ApiResponse};

use super::extract::{ApiJson, ApiPath};

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};

use super::schema::{song, user};
use super::{App, queries};

/// The body of `POST /api/v1/users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    name: String,
    email: String,
}

/// `POST /api/v1/users` → 201 with the user; 400 for an empty name or an invalid email,
/// 409 when the email is taken.
pub async fn create(
    State(app): State<App>,
    ApiJson(body): ApiJson<NewUser>,
) -> Result<ApiResponse<user::Model>, ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid_body("name: must be 1 to 200 characters"));
    }
    super::songs::check_no_control("name", name, false)?;
    let email = body.email.trim();
    super::songs::check_no_control("email", email, false)?;
    if !is_email(email) {
        return Err(ApiError::invalid_body(format!(
            "email: {email:?} is not an email address"
        )));
    }
    let created = user::ActiveModel {
        name: Set(name.to_owned()),
        email: Set(email.to_owned()),
        created_at: Set(chrono::Utc::now()),
        ..Default::default()
    }
    .insert(app.db())
    .await
    .map_err(|e| match e.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("email: {email:?} is already taken"),
        ),
        _ => ApiError::internal(e),
    })?;
    Ok(ApiResponse::new(created).with_status(StatusCode::CREATED))
}

/// `GET /api/v1/users/{id}` → the user, or 404.
pub async fn get(
    State(app): State<App>,
    ApiPath(id): ApiPath<i32>,
) -> Result<ApiResponse<user::Model>, ApiError> {
    let found = queries::user_by_id(app.db(), id)
        .await
        .map_err(ApiError::internal)?;
    found.map(ApiResponse::new).ok_or_else(|| no_user(id))
}

/// `GET /api/v1/users/{id}/songs` → the user's songs, newest first; 404 for an unknown user.
pub async fn songs(
    State(app): State<App>,
    ApiPath(id): ApiPath<i32>,
) -> Result<ApiResponse<Vec<song::Model>>, ApiError> {
    if queries::user_by_id(app.db(), id)
        .await
        .map_err(ApiError::internal)?
        .is_none()
    {
        return Err(no_user(id));
    }
    let songs = queries::songs_by_author(app.db(), id)
        .await
        .map_err(ApiError::internal)?;
    Ok(ApiResponse::new(songs))
}

/// What `POST /api/v1/users/{id}/songs/archive` did.
#[derive(Debug, Serialize)]
pub struct Archived {
    user_id: i32,
    archived: u64,
}

/// `POST /api/v1/users/{id}/songs/archive` → archives every song of the user in one
/// `update_many` (a bulk write: querycache cannot know the rows, so it invalidates the
/// whole `songs` table, by-id entries included); 404 for an unknown user.
pub async fn archive_songs(
    State(app): State<App>,
    ApiPath(id): ApiPath<i32>,
) -> Result<ApiResponse<Archived>, ApiError> {
    if user::Entity::find_by_id(id)
        .one(app.db())
        .await
        .map_err(ApiError::internal)?
        .is_none()
    {
        return Err(no_user(id));
    }
    let result = song::Entity::update_many()
        .col_expr(song::Column::Archived, Expr::value(true))
        .col_expr(song::Column::UpdatedAt, Expr::value(chrono::Utc::now()))
        .filter(song::Column::AuthorId.eq(id))
        .filter(song::Column::Archived.eq(false))
        .exec(app.db())
        .await
        .map_err(ApiError::internal)?;
    Ok(ApiResponse::new(Archived {
        user_id: id,
        archived: result.rows_affected,
    }))
}

pub(super) fn no_user(id: i32) -> ApiError {
    ApiError::not_found(format!("user {id} does not exist"))
}

/// A plausible address: one `@`, something on each side, a dot in the domain, no spaces.
fn is_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && email.len() <= 254
        && !email.chars().any(char::is_whitespace)
}
