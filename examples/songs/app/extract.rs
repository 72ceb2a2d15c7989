//! axum's extractors, with their rejections turned into the app's JSON error shape (axum
//! answers plain text by default).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use querycache::http::ApiError;
use serde::de::DeserializeOwned;

/// A JSON body: malformed JSON, a wrong type, an unknown field or a missing
/// `Content-Type: application/json` is a 400 `invalid_body` naming what is wrong.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Json(value))
    }
}

/// Path parameters: a segment that does not parse (`/songs/abc`) is a 400.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(value))
    }
}

/// A query string: an unknown parameter or a value that does not parse is a 400.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(value))
    }
}
