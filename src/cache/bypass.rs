//! Going around the cache for one call or a whole scope — django-cachalot's
//! `cachalot_disabled()`, cacheops' `.nocache()`: [`bypass`] (async) and [`bypass_sync`].
//!
//! Inside a scope every read of the cache — `#[cached_query]` functions (async and plain),
//! [`Cache::get_or_compute`](crate::Cache::get_or_compute) and its flavours,
//! [`Cache::fetch`](crate::Cache::fetch), [`Cache::get`](crate::Cache::get) and the
//! blocking forms — neither reads nor stores: computations run straight against the
//! database, and `get` finds nothing. Each is counted as a bypass
//! ([`CacheStats::bypassed`](crate::stats::CacheStats::bypassed)) and traced at debug level.
//! Writes are untouched: they still invalidate, so entries stored before the scope are
//! invalidated as usual, and one that was not written stays, to be served again after the
//! scope. Explicit [`Cache::set`](crate::Cache::set) and invalidations still apply.
//!
//! The hit path pays for this with one relaxed atomic load while no scope is open anywhere
//! in the process (the count of [`scopes`](crate::scopes)), and a task-local read while one is.

use std::cell::Cell;
use std::future::Future;

use crate::scopes::Open;

tokio::task_local! {
    static BYPASS: ();
}

thread_local! {
    static BYPASS_SYNC: Cell<u32> = const { Cell::new(0) };
}

/// Runs `future` without the cache: no cached read inside it reads or stores: `#[cached_query]`
/// functions, `get_or_compute` and its flavours, `fetch`, `get` and the blocking forms run
/// straight against the database (or find nothing), each counted as a bypass; writes still
/// invalidate, and an entry stored before the scope that no write touched stays. Wrap one call (the per-call form) or a
/// whole block (the per-scope form); scopes nest.
///
/// The scope belongs to the task polling `future`, across its `.await`s: work spawned from
/// inside (`tokio::spawn`) runs outside it unless wrapped itself.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use querycache::{Cache, EntryOptions};
///
/// let cache = Cache::new();
/// let cached = cache.get_or_compute("k", EntryOptions::new(), || async { 1_u32 }).await;
/// let fresh = querycache::bypass(async {
///     cache.get_or_compute("k", EntryOptions::new(), || async { 2_u32 }).await
/// })
/// .await;
/// assert_eq!((*cached, *fresh), (1, 2), "inside the scope, the computation runs");
/// let after = cache.get_or_compute("k", EntryOptions::new(), || async { 3_u32 }).await;
/// assert_eq!(*after, 1, "nothing was stored inside: the earlier entry stays");
/// assert_eq!(cache.stats().bypassed, 1);
/// # }
/// ```
pub async fn bypass<F: Future>(future: F) -> F::Output {
    let _open = Open::enter();
    BYPASS.scope((), future).await
}

/// [`bypass`] for synchronous code (a plain `#[cached_query] fn` with Diesel, a worker):
/// runs `body` on this thread without the cache. The scope is this thread's, for the time
/// `body` runs; scopes nest, with each other and with [`bypass`].
///
/// ```
/// use querycache::{Cache, EntryOptions};
///
/// let cache = Cache::new();
/// let stored = cache.try_get_or_compute_blocking("k", EntryOptions::new(), || Ok::<_, ()>(1_u32));
/// let fresh = querycache::bypass_sync(|| {
///     cache.try_get_or_compute_blocking("k", EntryOptions::new(), || Ok::<_, ()>(2_u32))
/// });
/// assert_eq!((*stored.unwrap(), *fresh.unwrap()), (1, 2));
/// assert_eq!(querycache::bypass_sync(|| cache.get_blocking::<u32>("k")), None);
/// assert_eq!(cache.get_blocking::<u32>("k").as_deref(), Some(&1));
/// ```
pub fn bypass_sync<R>(body: impl FnOnce() -> R) -> R {
    struct Depth(#[allow(dead_code)] Open);
    impl Drop for Depth {
        fn drop(&mut self) {
            BYPASS_SYNC.with(|depth| depth.set(depth.get().saturating_sub(1)));
        }
    }
    BYPASS_SYNC.with(|depth| depth.set(depth.get() + 1));
    let _depth = Depth(Open::enter());
    body()
}

/// Whether a read starting here is inside a [`bypass`] / [`bypass_sync`] scope.
#[inline]
pub(crate) fn active() -> bool {
    crate::scopes::any_open() && in_scope()
}

#[cold]
fn in_scope() -> bool {
    BYPASS.try_with(|()| ()).is_ok() || BYPASS_SYNC.with(|depth| depth.get() > 0)
}
