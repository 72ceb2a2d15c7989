//! The quick hit check of a `#[cached_query]` call whose key needs nothing the call sets
//! up: no `key = ".."`, no early refresh, at least one key argument, and either no
//! connection argument or one taken by shared reference (SeaORM's), which then answers
//! [`quick_conn_hit`]'s question first: not a transaction, its database the cache's
//! default one (else the call tells, as usual). The generated code asks it before it builds
//! a [`Call`](super::Call): a hit returns without the call's options, vectors and their
//! drop. When it finds nothing (or cannot tell), the call is built and goes the usual way:
//! in an async function, as a boxed future of its own, so that the function's future (which
//! a hit still creates, and its caller moves into place) holds only the arguments and a
//! pointer, not the call's kilobytes.

use serde::Serialize;

use crate::key::HitKey;
use crate::{Cache, CacheValue, Error};

use super::OkOf;

/// Where a cached function is: what its default key is made of.
#[derive(Clone, Copy)]
pub struct Site {
    /// `module::fn`.
    pub path: &'static str,
    /// For a method: the type of `self` (its key names the type, not the module).
    pub owner: Option<&'static str>,
    /// The statistics namespace of its lookups.
    pub namespace: &'static str,
    /// For a function that is not a method: where its path's id is kept once computed (a
    /// static of its own). A method's depends on `Self`, and is remembered per thread.
    pub path_id: Option<&'static PathId>,
}

/// The id of a function's path, computed on first use and kept: see [`Site::path_id`].
pub struct PathId(std::sync::OnceLock<u128>);

impl PathId {
    /// Not computed yet.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        PathId(std::sync::OnceLock::new())
    }
}

/// The hash of a call's key arguments, taken once: by the quick check, then by the call
/// ([`Call::key_hashed`](super::Call::key_hashed)) when it goes on.
pub struct KeyHash(pub(super) Result<Option<u128>, Box<Error>>);

/// The hash of the key arguments `args` of the function at `site` (an error names the
/// function).
#[inline]
pub fn key_hash<A: Serialize + ?Sized>(site: &Site, args: &A) -> KeyHash {
    let (owner, path) = (site.owner, site.path);
    KeyHash(
        crate::key::args_hash_named(|| super::function_path(owner, path).into_owned(), args)
            .map_err(Box::new),
    )
}

/// A fresh memory-tier value of the function at `site` for the key arguments whose hash is
/// `key`, from `cache`; `None` when there is none or the quick check cannot tell (the
/// arguments did not serialize, or serialized to the unit value): the call then goes the
/// usual way.
#[inline]
pub fn quick_hit<T>(cache: &Cache, site: &Site, key: &KeyHash) -> Option<T>
where
    T: CacheValue + Clone,
{
    let Site {
        path,
        owner,
        namespace,
        path_id,
    } = *site;
    let text = || super::function_path(owner, path);
    // An error is reported by the call, which goes on.
    let hash = (*key.0.as_ref().ok()?)?;
    let path_id = match (owner, path_id) {
        (None, Some(kept)) => *kept.0.get_or_init(|| crate::key::path_id(path)),
        _ => crate::key::function_path_id(owner, path, text),
    };
    let key = HitKey::Args {
        path_id,
        path: &text,
        hash,
    };
    let take = |held: crate::store::Held<'_>| held.cloned::<T>();
    cache
        .memory_hit_with(
            key,
            crate::stats::NamespaceName::Static(namespace),
            false,
            take,
        )
        .map(|(value, _)| value)
}

/// [`quick_hit`] for a function returning `Result<T, E>` whose `T` is cached.
#[inline]
pub fn quick_hit_ok<R>(cache: &Cache, site: &Site, key: &KeyHash) -> Option<R>
where
    R: OkOf,
    R::Ok: CacheValue + Clone,
{
    quick_hit::<R::Ok>(cache, site, key).map(R::from_ok)
}

/// [`quick_hit`] for a function whose only connection argument, `conn`, is taken by shared
/// reference: a hit is looked up in the cache the call would read through (`named`, the
/// one of `cache = ..`; else a `CachedConnection`'s own; else the global one, created only
/// then), and only when the connection lets the call be served from the cache as it is (not
/// a transaction, its database the cache's default one).
#[inline]
pub fn quick_conn_hit<T, C>(
    conn: &C,
    named: Option<&Cache>,
    site: &Site,
    key: &KeyHash,
) -> Option<T>
where
    T: CacheValue + Clone,
    C: ?Sized,
{
    let own = crate::orm::quick_read(conn)?;
    let cache = match (named, own) {
        (Some(named), _) => named,
        (None, Some(own)) => own,
        (None, None) => crate::global(),
    };
    quick_hit::<T>(cache, site, key)
}

/// [`quick_conn_hit`] for a function returning `Result<T, E>` whose `T` is cached.
#[inline]
pub fn quick_conn_hit_ok<R, C>(
    conn: &C,
    named: Option<&Cache>,
    site: &Site,
    key: &KeyHash,
) -> Option<R>
where
    R: OkOf,
    R::Ok: CacheValue + Clone,
    C: ?Sized,
{
    quick_conn_hit::<R::Ok, C>(conn, named, site, key).map(R::from_ok)
}
