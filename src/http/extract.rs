//! A JSON body extractor whose rejections are the crate's error envelope.

use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::envelope::ApiError;

/// Like [`axum::Json`], but a body that is missing, not JSON, of the wrong shape, or sent
/// without `Content-Type: application/json` is answered with 400 `invalid_body` in the
/// JSON envelope. The message is axum's, which names the field at fault (through
/// `serde_path_to_error`).
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(ApiError::from(rejection).into_response()),
        }
    }
}
