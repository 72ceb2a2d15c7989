//! The cache warmers: `songs` and `users`, run at start-up when `CACHE_WARM_ON_STARTUP=true`
//! and on `POST /api/v1/cache/warm`.
//!
//! A warmer sends the app's own hot GETs through its router, in process: both the cached
//! queries and the cached whole answers (with their ETags) are filled, exactly as the first
//! real request would fill them. A forced run recomputes them even when present.

use std::sync::{Arc, Weak};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use querycache::warm::{BoxError, WarmContext};
use sea_orm::{EntityTrait, QueryOrder, QuerySelect};
use tower::ServiceExt;

use super::schema::{song, user};
use super::{App, Inner};

/// How many songs and users a run warms.
pub const WARM_ROWS: u64 = 100;

/// Registers the app's warmers on its cache. They hold the app weakly: a warmer never
/// keeps a stopped app alive.
pub fn register(app: &App) {
    let weak = Arc::downgrade(&app.inner);
    app.cache().register_warmer("songs", {
        let weak = weak.clone();
        move |ctx| warm_songs(weak.clone(), ctx)
    });
    app.cache()
        .register_warmer("users", move |ctx| warm_users(weak.clone(), ctx));
}

fn upgrade(weak: &Weak<Inner>) -> Result<App, BoxError> {
    weak.upgrade()
        .map(|inner| App { inner })
        .ok_or_else(|| "the app has stopped".into())
}

/// The newest songs one by one, the default list, and the count.
async fn warm_songs(weak: Weak<Inner>, _ctx: WarmContext) -> Result<usize, BoxError> {
    let app = upgrade(&weak)?;
    let ids: Vec<i32> = song::Entity::find()
        .select_only()
        .column(song::Column::Id)
        .order_by_desc(song::Column::CreatedAt)
        .order_by_desc(song::Column::Id)
        .limit(WARM_ROWS)
        .into_tuple()
        .all(app.db())
        .await?;
    let mut paths = vec!["/api/v1/songs".to_owned(), "/api/v1/songs/count".to_owned()];
    paths.extend(ids.iter().map(|id| format!("/api/v1/songs/{id}")));
    get_all(&app, &paths).await
}

/// The first users, and each one's songs.
async fn warm_users(weak: Weak<Inner>, _ctx: WarmContext) -> Result<usize, BoxError> {
    let app = upgrade(&weak)?;
    let ids: Vec<i32> = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .order_by_asc(user::Column::Id)
        .limit(WARM_ROWS)
        .into_tuple()
        .all(app.db())
        .await?;
    let paths: Vec<String> = ids
        .iter()
        .flat_map(|id| {
            [
                format!("/api/v1/users/{id}"),
                format!("/api/v1/users/{id}/songs"),
            ]
        })
        .collect();
    get_all(&app, &paths).await
}

/// GETs every path through the router; returns how many answered 200.
async fn get_all(app: &App, paths: &[String]) -> Result<usize, BoxError> {
    let router = app.router()?;
    let mut warmed = 0;
    for path in paths {
        let request = Request::get(path.as_str()).body(Body::empty())?;
        let response = router.clone().oneshot(request).await?;
        if response.status() == StatusCode::OK {
            warmed += 1;
        } else {
            tracing::debug!(path, status = %response.status(), "not warmed");
        }
    }
    Ok(warmed)
}
