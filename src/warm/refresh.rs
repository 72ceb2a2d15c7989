//! The "refresh" scope of a forced warming run: while it is set on a task, the read path
//! (`compute_with`) skips the lookup and single-flight, runs the computation and stores its
//! value — still under the tag snapshot taken before the computation, so a write racing the
//! refresh leaves a born-stale entry, as on any miss.

use std::future::Future;

tokio::task_local! {
    static REFRESH: bool;
}

/// Whether the current task is in a refresh scope (one relaxed load while no scope of
/// [`scopes`](crate::scopes) is open anywhere).
#[inline]
pub(crate) fn refreshing() -> bool {
    crate::scopes::any_open() && REFRESH.try_with(|on| *on).unwrap_or(false)
}

/// Runs `future` with the refresh scope set to `on`, counted among the open
/// [`scopes`](crate::scopes) while it runs.
pub(crate) async fn scope<F: Future>(on: bool, future: F) -> F::Output {
    let _open = crate::scopes::Open::enter();
    REFRESH.scope(on, future).await
}
