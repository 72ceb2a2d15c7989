//! axum's `Json`, `Path` and `Query` extractors, with their rejections answered in the JSON
//! error envelope ([`ApiError`]) instead of axum's plain text.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::envelope::ApiError;

/// Like [`axum::Json`], but a body that is missing, not JSON, or of the wrong shape is
/// answered with 400 `invalid_body` in the JSON envelope; one sent without
/// `Content-Type: application/json` with 415 `unsupported_media_type`, and one over the
/// body limit (axum's `DefaultBodyLimit`) with 413 `payload_too_large`. The message is
/// axum's, which names the field at fault.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use axum::{Router, body::Body, http::Request, routing::post};
/// use querycache::http::{ApiJson, ApiResponse};
/// use tower::ServiceExt;
///
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct NewSong { title: String }
///
/// let app = Router::new().route(
///     "/songs",
///     post(|ApiJson(song): ApiJson<NewSong>| async move { ApiResponse::new(song.title) }),
/// );
/// let request = Request::post("/songs")
///     .header("content-type", "application/json")
///     .body(Body::from(r#"{"titel": "typo"}"#))
///     .unwrap();
/// let response = app.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), 400);
/// let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
/// let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
/// assert_eq!(body["error"]["code"], "invalid_body");
/// assert!(body["error"]["message"].as_str().unwrap().contains("titel"));
/// # }
/// ```
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
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use axum::{Router, body::Body, http::Request, routing::get};
/// use querycache::http::{ApiPath, ApiResponse};
/// use tower::ServiceExt;
///
/// let app = Router::new()
///     .route("/songs/{id}", get(|ApiPath(id): ApiPath<i32>| async move { ApiResponse::new(id) }));
/// let request = Request::get("/songs/abc").body(Body::empty()).unwrap();
/// let response = app.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), 400);
/// # }
/// ```
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
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use axum::{Router, body::Body, http::Request, routing::get};
/// use querycache::http::{ApiQuery, ApiResponse};
/// use tower::ServiceExt;
///
/// #[derive(serde::Deserialize)]
/// struct Page { limit: Option<u64> }
///
/// let app = Router::new().route(
///     "/songs",
///     get(|ApiQuery(page): ApiQuery<Page>| async move { ApiResponse::new(page.limit) }),
/// );
/// let request = Request::get("/songs?limit=many").body(Body::empty()).unwrap();
/// let response = app.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), 400);
/// # }
/// ```
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
