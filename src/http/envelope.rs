//! The JSON envelope of every response: `{"status": "success", "data": ..}` or
//! `{"status": "error", "error": {"code": .., "message": ..}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A successful JSON answer: `{"status": "success", "data": <T>}` with status 200 (or the
/// one set with [`with_status`](Self::with_status)).
///
/// ```
/// use axum::response::IntoResponse;
/// use querycache::http::ApiResponse;
///
/// let response = ApiResponse::new(vec![1, 2, 3]).into_response();
/// assert_eq!(response.status(), 200);
/// assert_eq!(response.headers()["content-type"], "application/json");
/// ```
#[derive(Debug, Clone)]
pub struct ApiResponse<T> {
    status: StatusCode,
    data: T,
}

impl<T> ApiResponse<T> {
    /// `data` with status 200.
    pub fn new(data: T) -> Self {
        ApiResponse {
            status: StatusCode::OK,
            data,
        }
    }

    /// The same answer with another status, e.g. `201 Created`.
    ///
    /// ```
    /// use axum::{http::StatusCode, response::IntoResponse};
    /// use querycache::http::ApiResponse;
    ///
    /// let created = ApiResponse::new("ok").with_status(StatusCode::CREATED).into_response();
    /// assert_eq!(created.status(), StatusCode::CREATED);
    /// ```
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

#[derive(Serialize)]
struct SuccessBody<'a, T> {
    status: &'static str,
    data: &'a T,
}

impl<T: Serialize> IntoResponse for ApiResponse<T> {
    fn into_response(self) -> Response {
        let body = SuccessBody {
            status: "success",
            data: &self.data,
        };
        (self.status, Json(body)).into_response()
    }
}

/// An error answer: `{"status": "error", "error": {"code": .., "message": ..}}`.
///
/// `code` is a stable, machine-readable word (`not_found`, `invalid_body`, `unauthorized`,
/// …); `message` says what was wrong with the request, naming the field or value at fault.
///
/// ```
/// use axum::response::IntoResponse;
/// use querycache::http::ApiError;
///
/// let error = ApiError::not_found("song 7 does not exist");
/// assert_eq!(error.code(), "not_found");
/// assert_eq!(error.into_response().status(), 404);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// An error with any status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `bad_request`: the request is malformed (a query string, a path segment).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 400 `invalid_body`: the JSON body is missing, malformed, or of the wrong shape.
    pub fn invalid_body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_body", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 401 `unauthorized`: no bearer token, or a wrong one.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 429 `too_many_requests`: too many failed admin attempts lately.
    ///
    /// ```
    /// use querycache::http::ApiError;
    ///
    /// let error = ApiError::too_many_requests("slow down");
    /// assert_eq!(error.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
    /// ```
    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message)
    }

    /// 403 `forbidden`: the operation is disabled (no admin token configured).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 500 `internal`: something failed on the server; the message is logged, and the
    /// client gets a generic one.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        tracing::error!(error = %message, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server's log",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

#[derive(Serialize)]
struct ErrorBody<'a> {
    status: &'static str,
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            status: "error",
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    /// 413 `payload_too_large` for a body over the limit (axum's `DefaultBodyLimit`, 2 MiB
    /// unless the app says otherwise), 415 `unsupported_media_type` without
    /// `Content-Type: application/json`, 400 `invalid_body` for anything else (not JSON, or
    /// not of the expected shape).
    fn from(rejection: axum::extract::rejection::JsonRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                rejection.body_text(),
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                rejection.body_text(),
            ),
            _ => Self::invalid_body(rejection.body_text()),
        }
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::PathRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}
