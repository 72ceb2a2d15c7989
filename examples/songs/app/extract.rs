//! The songs app's extractors: axum's `Json`, `Path` and `Query`, with their rejections
//! answered in the JSON error envelope (`querycache::http::ApiError`, which converts each of
//! axum's rejections) instead of axum's plain text. They are this app's convention, not the
//! library's: any handler can take `Result<Json<T>, JsonRejection>` and `?` it instead.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use querycache::http::ApiError;
use serde::de::DeserializeOwned;

/// Like [`axum::Json`], but a body that is missing, not JSON, or of the wrong shape is
/// answered with 400 `invalid_body` in the JSON envelope; one sent without
/// `Content-Type: application/json` with 415 `unsupported_media_type`, and one over the
/// body limit (axum's `DefaultBodyLimit`) with 413 `payload_too_large`. The message is
/// axum's, which names the field at fault.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<T>::from_request(request, state).await?;
        Ok(ApiJson(value))
    }
}

/// Like [`axum::extract::Path`], but a segment that does not parse (`/songs/abc` for an
/// integer id) is answered with 400 `bad_request` in the JSON envelope.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(value))
    }
}

/// Like [`axum::extract::Query`], but a query string that does not deserialize (an unknown
/// parameter with `deny_unknown_fields`, a value of the wrong type) is answered with 400
/// `bad_request` in the JSON envelope.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(value))
    }
}
