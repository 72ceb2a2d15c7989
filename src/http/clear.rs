//! `POST /clear` of the management router (admin).

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::auth::Admin;
use super::envelope::{ApiError, ApiResponse};
use super::management::Shared;
use crate::config::InvalidationStrategy;
use crate::key::validate_name;
use crate::{Error, Tag};

/// The longest namespace accepted, in bytes (the same bound as a tag's).
const MAX_NAMESPACE_LEN: usize = crate::tags::MAX_TAG_LEN;

/// The body of `POST /clear`: any combination of the four; at least one must ask for
/// something.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClearRequest {
    /// Invalidate every entry of this namespace.
    namespace: Option<String>,
    /// Remove every key matching this glob.
    pattern: Option<String>,
    /// Invalidate these tags.
    tags: Option<Vec<String>>,
    /// Remove every entry.
    all: Option<bool>,
}

/// What `POST /clear` did.
#[derive(Debug, Serialize)]
pub(crate) struct ClearReport {
    /// The tags invalidated (as given).
    tags_invalidated: Vec<String>,
    /// How many of them were given a new version: with Redis, those something had depended
    /// on; the memory store versions every tag it is given.
    tags_with_entries: usize,
    /// The pattern applied, if any.
    pattern: Option<String>,
    /// Keys removed by the pattern (`null` without a pattern).
    keys_removed: Option<usize>,
    /// The namespace invalidated, if any.
    namespace_cleared: Option<String>,
    /// Whether every entry was removed.
    all_cleared: bool,
    /// The same in words, for people.
    message: String,
}

/// `POST /clear`: validates everything first, then removes by pattern, invalidates the
/// tags, the namespace, and clears everything — in that order, so that a pattern rejected
/// by [`Cache::invalidate_pattern`](crate::Cache::invalidate_pattern) leaves the cache
/// untouched.
pub(crate) async fn clear(
    State(shared): State<Shared>,
    _admin: Admin,
    request: Result<axum::Json<ClearRequest>, JsonRejection>,
) -> Result<ApiResponse<ClearReport>, ApiError> {
    let axum::Json(request) = request?;
    let all = request.all.unwrap_or(false);
    let tags = request
        .tags
        .unwrap_or_default()
        .into_iter()
        .map(|tag| {
            Tag::new(&tag).map_err(|error| {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_tag", error.to_string())
            })
        })
        .collect::<Result<Vec<Tag>, ApiError>>()?;
    if let Some(namespace) = &request.namespace {
        validate_name("namespace", namespace, MAX_NAMESPACE_LEN).map_err(|error| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_namespace",
                error.to_string(),
            )
        })?;
    }
    if tags.is_empty() && request.namespace.is_none() && request.pattern.is_none() && !all {
        return Err(ApiError::invalid_body(
            "nothing to clear: give `namespace`, `pattern`, a non-empty `tags` list, or `\"all\": true`",
        ));
    }

    let cache = &shared.cache;
    let mut done = Vec::new();
    let keys_removed = match &request.pattern {
        Some(pattern) => {
            let removed = cache.invalidate_pattern(pattern).await.map_err(|error| {
                let message = match &error {
                    Error::Pattern { .. } => error.to_string(),
                    other => format!("invalid key pattern {pattern:?}: {other}"),
                };
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_pattern", message)
            })?;
            done.push(format!("removed {removed} keys matching {pattern:?}"));
            Some(removed)
        }
        None => None,
    };
    let tags_with_entries = if tags.is_empty() {
        0
    } else {
        if cache.config().invalidation_strategy() == InvalidationStrategy::Ttl {
            done.push("tags not invalidated: CACHE_INVALIDATION_STRATEGY=ttl".to_owned());
        } else {
            done.push(format!("invalidated {} tags", tags.len()));
        }
        cache.invalidate_tags(tags.iter().cloned()).await
    };
    if let Some(namespace) = &request.namespace {
        cache.invalidate_namespace(namespace).await;
        done.push(format!("cleared namespace {namespace:?}"));
    }
    if all {
        cache.clear().await;
        done.push("cleared every entry".to_owned());
    }
    let message = done.join("; ");
    tracing::info!(%message, "admin clear");
    Ok(ApiResponse::new(ClearReport {
        tags_invalidated: tags.iter().map(|tag| tag.as_str().to_owned()).collect(),
        tags_with_entries,
        pattern: request.pattern,
        keys_removed,
        namespace_cleared: request.namespace,
        all_cleared: all,
        message,
    }))
}
