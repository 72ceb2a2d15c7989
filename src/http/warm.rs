//! `POST /warm` of the management router (admin).

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::Deserialize;

use super::auth::Admin;
use super::envelope::{ApiError, ApiResponse};
use super::management::Shared;
use crate::{
    Error,
    warm::{WarmRequest, WarmStarted},
};

/// The body of `POST /warm`: `{"types": [..], "force": bool}`, both optional (no types, or
/// an empty list: every registered warmer).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WarmBody {
    types: Option<Vec<String>>,
    force: Option<bool>,
}

/// `POST /warm`: starts a run in the background ([`Cache::warm`](crate::Cache::warm)) and
/// answers 202 with what it runs; 400 `unknown_warmer` naming a type that is not
/// registered, 409 `warm_in_progress` while another run is going. Its progress shows in
/// `GET /health` (`warming`).
pub(crate) async fn warm(
    State(shared): State<Shared>,
    _admin: Admin,
    body: Result<axum::Json<WarmBody>, JsonRejection>,
) -> Result<ApiResponse<WarmStarted>, ApiError> {
    let axum::Json(body) = body?;
    let request = WarmRequest {
        types: body.types,
        force: body.force.unwrap_or(false),
    };
    match shared.cache.warm(request) {
        Ok(started) => {
            tracing::info!(types = ?started.types, force = started.force, "admin warm started");
            Ok(ApiResponse::new(started).with_status(StatusCode::ACCEPTED))
        }
        Err(error @ Error::UnknownWarmer { .. }) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unknown_warmer",
            error.to_string(),
        )),
        Err(error @ Error::WarmInProgress { .. }) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "warm_in_progress",
            error.to_string(),
        )),
        Err(other) => Err(ApiError::internal(other)),
    }
}
