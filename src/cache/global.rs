//! The process-wide cache used by `#[cached_query]` functions that name no `cache = ..`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{Cache, CacheConfig, Error};

static GLOBAL: OnceLock<Cache> = OnceLock::new();

/// Whether the global cache was [`install`]ed (rather than made from the environment on
/// first use).
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Makes `cache` the process-wide cache returned by [`global`]. Call it once at start-up,
/// before the first cached call.
///
/// ```
/// let cache = querycache::Cache::from_env().unwrap();
/// querycache::install(cache.clone()).unwrap();
/// assert!(querycache::install(cache).is_err());
/// ```
///
/// # Errors
/// [`Error::AlreadyInstalled`] when a global cache exists already (installed, or created
/// by a call to [`global`]).
pub fn install(cache: Cache) -> Result<(), Error> {
    GLOBAL.set(cache).map_err(|_| Error::AlreadyInstalled)?;
    INSTALLED.store(true, Ordering::Relaxed);
    Ok(())
}

/// Whether the application [`install`]ed the global cache.
pub(crate) fn installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

/// The process-wide cache: the one [`install`]ed, or else one configured from the
/// environment on first use. If the environment's configuration is invalid, the error is
/// logged and the global cache is *disabled* (every cached function runs straight through)
/// rather than running with settings nobody asked for; call [`Cache::from_env`] and
/// [`install`] at start-up to fail fast instead.
///
/// ```
/// let cache = querycache::global();
/// assert!(cache.config().default_ttl().as_secs() > 0);
/// ```
pub fn global() -> &'static Cache {
    GLOBAL.get_or_init(|| match Cache::from_env() {
        Ok(cache) => cache,
        Err(error) => {
            tracing::error!(%error, "querycache: invalid configuration; the global cache is disabled");
            let disabled = CacheConfig::builder().enabled(false).build();
            Cache::with_config(disabled.unwrap_or_default())
        }
    })
}
