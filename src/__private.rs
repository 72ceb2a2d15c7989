//! Support for the code `#[cached_query]` generates, as tracing's `__macro_support`: re-exports
//! and one-line functions, no logic a reader must find here. The call path lives in
//! `cache/call/` (a hit is served by `quick_hit` or `Call::hit`), the probes of models and
//! connections in `orm/probes.rs`. Not a public API: names and signatures here change without
//! notice.

use std::future::Future;

use crate::Cache;

pub use serde;

pub use crate::cache::call::{
    CacheChoice, Call, KeyHash, OkOf, PathId, Site, TimeoutError, key_hash, quick_conn_hit,
    quick_conn_hit_ok, quick_hit, quick_hit_ok,
};
pub use crate::orm::probes::*;

/// What each key argument of a `#[cached_query]` function must be: serializable, since the
/// default key hashes the arguments' JSON. Implemented for every `Serialize` type; a missing
/// `Serialize` is reported on the argument, with what to do about it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be part of a cache key: it does not implement `serde::Serialize`",
    label = "this argument is part of the `#[cached_query]` key, so it must implement `Serialize`",
    note = "derive it (`#[derive(serde::Serialize)]` on `{Self}`), or leave the argument out of the key with `#[cache_skip]` (one entry for all its values), or write the key yourself with `key = \"...{{name}}...\"` (its `Display`)"
)]
pub trait KeyArgument {
    /// What the key serializes: the argument itself.
    type Key: ?Sized + serde::Serialize;
    /// The argument, as [`Key`](Self::Key).
    fn key(&self) -> &Self::Key;
}

impl<T: ?Sized + serde::Serialize> KeyArgument for T {
    type Key = T;
    #[inline]
    fn key(&self) -> &T {
        self
    }
}

/// A key argument, checked to be [`KeyArgument`] where it is written: the first error is
/// reported on the argument, with the trait's message. (The compiler still adds a second,
/// plain one about the key's tuple: returning the trait's projection did not suppress it.)
#[inline]
pub fn key_argument<T: ?Sized + KeyArgument>(arg: &T) -> &T::Key {
    arg.key()
}

/// Pins the output type of the generated `async move` block, so `?` and `return` inside the
/// user's body infer as they would in the original function.
#[inline]
pub fn typed<R, F: Future<Output = R>>(future: F) -> F {
    future
}

/// Pins the return type of the closure a plain `fn`'s body becomes.
#[inline]
pub fn typed_fn<R, F: FnOnce() -> R>(body: F) -> F {
    body
}

/// The cache named by `cache = <expr>`: a `Cache`, a `&Cache`, an `Arc<Cache>`...
#[inline]
pub fn cache_of<C: AsRef<Cache> + ?Sized>(cache: &C) -> CacheChoice {
    CacheChoice::Named(cache.as_ref().clone())
}

/// The cache named by `cache = <expr>`, given to the call after its hit check
/// ([`Call::named`]).
#[inline]
pub fn named_later() -> CacheChoice {
    CacheChoice::Later
}

/// The cache named by `cache = <expr>`, borrowed for the quick hit check.
#[inline]
pub fn cache_ref<C: AsRef<Cache> + ?Sized>(cache: &C) -> &Cache {
    cache.as_ref()
}

/// The global cache, for the quick hit check of a call without `cache = ..` (created on
/// first use, as the call's own check would).
#[inline]
pub fn global_ref() -> &'static Cache {
    crate::global()
}

/// The global cache, resolved when the call needs it (a connection argument's own cache
/// replaces it, and then the global cache is never created).
#[inline]
pub fn global() -> CacheChoice {
    CacheChoice::Global
}
