//! One call of a `#[cached_query]` function, as the generated code builds it: its options,
//! its connections' state, its key, the memory-tier hit path that returns before anything
//! else is built, and the run methods that read, compute and store. Reached by generated
//! code through `querycache::__private`.

// What generated code calls, reached through the hidden `querycache::__private`: its
// signatures are for the macro, not for readers of the public docs.
#![allow(missing_docs)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::databases::{CallDatabase, Namespace};
use crate::cache::observe::Relay;
use crate::key::HitKey;
use crate::orm::probes::{Identified, TxProbe};
use crate::orm::write::PendingWrites;
use crate::runtime::Bridge;
use crate::stats::NamespaceName;
use crate::{Cache, CacheValue, EntryOptions, Error, Key, Tag};

/// `Call`'s freshness options and its run methods for computations that own their
/// arguments.
mod fresh;
pub use fresh::TimeoutError;
/// The hit check that runs before a call is built.
mod quick;
pub use quick::{
    KeyHash, PathId, Site, key_hash, quick_conn_hit, quick_conn_hit_ok, quick_hit, quick_hit_ok,
};

/// What the connection arguments of a call say about the cache.
#[derive(Debug, Default)]
enum ConnState {
    /// Not in a transaction.
    #[default]
    Free,
    /// In a transaction whose writes are tracked.
    Tracked(Vec<Arc<PendingWrites>>),
    /// In a transaction whose writes are not visible to querycache.
    Untracked,
}

/// One call of a cached function, built by the generated code.
///
/// The generated code sets the call's options, probes its connections and hashes its key
/// arguments, then asks [`hit`](Self::hit) (or [`hit_ok`](Self::hit_ok)) for a fresh
/// memory-tier value — a hit returns before anything else is built; only then does it add
/// the tags (models, rows, application tags) and run the body through one of the `run`
/// methods.
pub struct Call {
    /// The cache it reads through: `cache = ..`'s, its connection's, or (resolved only when
    /// neither is given, so that a function whose connection has a cache never creates the
    /// global one) the global cache.
    cache: CallCache,
    /// A connection argument's cache while `cache = ..`'s is not given yet
    /// ([`CacheChoice::Later`]): compared with it by [`named`](Self::named).
    conn_cache: Option<Cache>,
    /// Where `cache` came from: `cache = ..`, the global cache, or a connection argument.
    cache_source: CacheSource,
    /// `cache_errors` without a TTL: the TTL is the configured one of the cache the call
    /// ends up using.
    default_error_ttl: bool,
    path: &'static str,
    namespace: &'static str,
    /// For methods: the type of `self`, which names the key instead of the module.
    owner: Option<&'static str>,
    options: EntryOptions,
    /// The model and row tags of `models`/`row`, in the default database's terms: put in
    /// the connection's database namespace when the call is planned.
    model_tags: Vec<Tag>,
    key: KeySpec,
    /// Boxed, as in `key`: an error is rare, and the call is moved into the caller's
    /// future, whose size it adds to.
    invalid: Option<Box<Error>>,
    conn: ConnState,
    /// The relays of its connection arguments, lent the computation while it runs.
    relays: Vec<Arc<Relay>>,
    /// The database of the first connection argument that knows its own.
    database: Option<CallDatabase>,
}

/// The cache a `#[cached_query]` call is given before its connections are probed: the one
/// `cache = ..` names, or the global cache. The cache of a connection argument (a
/// `CachedConnection`, a Diesel connection's `CacheInstrumentation`) replaces the global
/// one, so a function reads through the cache its connection invalidates.
pub enum CacheChoice {
    /// `cache = ..`: kept, with a warning if a connection argument invalidates another.
    Named(Cache),
    /// `cache = ..`, given after the hit check ([`Call::hit_in`], then [`Call::named`]):
    /// a hit reads the cache where it is, without cloning its `Arc` (a write to a line
    /// every thread calling the function shares).
    Later,
    /// No `cache = ..`: the global cache (resolved when first needed), unless a connection
    /// argument has its own.
    Global,
}

/// The cache a call holds.
enum CallCache {
    /// `cache = ..`'s, not given yet.
    Later,
    /// The global cache.
    Global,
    /// Its own handle.
    Owned(Cache),
}

/// Where a call's cache came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CacheSource {
    Named,
    Global,
    Connection,
}

/// How a call's key is made.
enum KeySpec {
    /// The function's path alone (no key arguments were given).
    Path,
    /// The path and the hash of the key arguments (`None`: the unit value, the path alone).
    Args(Result<Option<u128>, Box<Error>>),
    /// An explicit key from `key = ".."`.
    Explicit(Result<Key, Box<Error>>),
}

/// A `Result`, as the return type of a function whose cached value is its `Ok` value:
/// lets [`Call::hit_ok`] name `T` from the declared return type (which may be an alias).
pub trait OkOf {
    /// The `Ok` type.
    type Ok;
    /// `Ok(value)`.
    fn from_ok(value: Self::Ok) -> Self;
}

impl<T, E> OkOf for Result<T, E> {
    type Ok = T;
    fn from_ok(value: T) -> Self {
        Ok(value)
    }
}

/// `path` (`module::fn`), or `Type::fn` for a method of `owner`.
fn function_path(
    owner: Option<&'static str>,
    path: &'static str,
) -> std::borrow::Cow<'static, str> {
    match owner {
        None => path.into(),
        Some(owner) => {
            let name = path.rsplit("::").next().unwrap_or(path);
            format!("{owner}::{name}").into()
        }
    }
}

/// What to do with a call.
enum CallPlan {
    /// Read and store.
    Cache(Key),
    /// Serve a hit, but do not store a computed value (inside a transaction: its reads
    /// may see a snapshot older than other readers').
    ReadOnly(Key),
    /// Straight to the computation.
    Bypass,
}

impl Call {
    pub fn new(cache: CacheChoice, path: &'static str, namespace: &'static str) -> Self {
        let (cache, cache_source) = match cache {
            CacheChoice::Named(cache) => (CallCache::Owned(cache), CacheSource::Named),
            CacheChoice::Later => (CallCache::Later, CacheSource::Named),
            CacheChoice::Global => (CallCache::Global, CacheSource::Global),
        };
        Call {
            cache,
            conn_cache: None,
            cache_source,
            default_error_ttl: false,
            path,
            namespace,
            owner: None,
            options: EntryOptions {
                origin: Some(path),
                ..EntryOptions::new()
            },
            model_tags: Vec::new(),
            key: KeySpec::Path,
            invalid: None,
            conn: ConnState::Free,
            relays: Vec::new(),
            database: None,
        }
    }

    /// Every option of `options` (per-query caching, `orm::sea_orm::cached_select`): the
    /// call keeps its origin for the audit.
    #[cfg_attr(not(feature = "sea-orm"), allow(dead_code))]
    pub(crate) fn entry_options(&mut self, options: EntryOptions) {
        self.options = EntryOptions {
            origin: self.options.origin,
            ..options
        };
    }

    pub fn ttl_secs(&mut self, secs: u64) {
        self.options.ttl = Some(Duration::from_secs(secs));
    }

    pub fn count_query(&mut self) {
        self.options.count_query = true;
    }

    pub fn jitter_percent(&mut self, percent: u8) {
        self.options.jitter = Some(percent.min(100));
    }

    pub fn error_ttl_secs(&mut self, secs: u64) {
        self.options.error_ttl = Some(Duration::from_secs(secs));
    }

    /// `cache_errors` without a TTL: the configured `CACHE_ERROR_TTL` of the cache the call
    /// ends up using (set when the call is planned).
    pub fn cache_errors(&mut self) {
        self.default_error_ttl = true;
    }

    /// The cache the call reads through (the global one when no other was given).
    fn cache(&self) -> &Cache {
        match &self.cache {
            CallCache::Owned(cache) => cache,
            // `Later` is given before anything reads it (the generated code calls `named`
            // right after the hit check).
            CallCache::Global | CallCache::Later => crate::global(),
        }
    }

    /// `cache = ..`'s cache, after a [`CacheChoice::Later`] call's hit check: the call
    /// reads and stores through it, and says once if a connection argument invalidates
    /// another cache.
    pub fn named<C: AsRef<Cache> + ?Sized>(&mut self, cache: &C) {
        let cache = cache.as_ref().clone();
        if let Some(conn) = self.conn_cache.take()
            && !conn.same_as(&cache)
        {
            warn_named_elsewhere(self.path);
        }
        self.cache = CallCache::Owned(cache);
    }

    /// A table-level dependency on `table`.
    pub fn model(&mut self, table: String) {
        self.model_tags.push(Tag::model(&table));
    }

    /// A row-level dependency on row `id` of `table`.
    pub fn model_row<I: std::fmt::Display + ?Sized>(&mut self, table: String, id: &I) {
        self.model_tags.push(Tag::row(&table, id));
        self.model_tags.push(Tag::bulk(&table));
    }

    /// An application tag from `tags = [..]`.
    pub fn tag(&mut self, tag: String) {
        match Tag::new(tag) {
            Ok(tag) => self.options.tags.push(tag),
            Err(error) => self.invalid = Some(Box::new(error)),
        }
    }

    /// A connection argument: is the call inside a transaction?
    pub fn connection<C: ?Sized>(&mut self, conn: &C) {
        self.connection_state(TxProbe::of(conn));
    }

    /// A connection argument's state, as a probe found it.
    pub fn connection_state(&mut self, state: TxProbe) {
        let TxProbe(state, database, cache, relay) = state;
        if let Some(cache) = cache {
            self.connection_cache(cache);
        }
        if let Some(relay) = relay {
            self.relays.push(relay);
        }
        if self.database.is_none() {
            self.database = database;
        }
        self.conn = match (std::mem::take(&mut self.conn), state) {
            (ConnState::Untracked, _) | (_, crate::orm::TxState::Untracked) => ConnState::Untracked,
            (current, crate::orm::TxState::None) => current,
            (ConnState::Free, crate::orm::TxState::Tracked(p)) => ConnState::Tracked(vec![p]),
            (ConnState::Tracked(mut all), crate::orm::TxState::Tracked(p)) => {
                all.push(p);
                ConnState::Tracked(all)
            }
        };
    }

    /// A connection argument's cache: the one the call reads through, unless `cache = ..`
    /// named another (then a warning, once per function, says that this connection's writes
    /// do not invalidate what the function caches).
    fn connection_cache(&mut self, cache: Cache) {
        let current = match &self.cache {
            CallCache::Owned(current) => Some(current),
            CallCache::Global => None,
            CallCache::Later => {
                // Compared when `cache = ..`'s is given.
                if self.conn_cache.is_none() {
                    self.conn_cache = Some(cache);
                }
                return;
            }
        };
        if current.is_some_and(|current| current.same_as(&cache)) {
            return;
        }
        match self.cache_source {
            CacheSource::Named => warn_named_elsewhere(self.path),
            CacheSource::Connection => warn_once(
                self.path,
                "has connection arguments that invalidate different caches: it reads through \
                 the first one's, and writes through the others do not invalidate its entries",
            ),
            CacheSource::Global => {
                // The connection's cache *is* the installed one (the usual set-up: `install`
                // then wrap the connection): nothing to say.
                if crate::cache::global::installed()
                    && !crate::cache::global::global().same_as(&cache)
                {
                    warn_once(
                        self.path,
                        "reads through the cache of its connection argument, not through the \
                         installed global cache: the connection invalidates only its own",
                    );
                }
                self.cache = CallCache::Owned(cache);
                self.cache_source = CacheSource::Connection;
            }
        }
    }

    /// A connection argument's database, as an async probe learnt it.
    pub fn identified(&mut self, database: Identified) {
        if let Identified(Some(database)) = database {
            self.database = Some(database);
        }
    }

    /// A method of `S`: its key starts with `S`'s type name rather than the module path.
    pub fn method_of<S: ?Sized>(&mut self) {
        self.owner = Some(std::any::type_name::<S>());
    }

    /// `module::fn`, or `Type::fn` for a method.
    fn function_path(&self) -> std::borrow::Cow<'static, str> {
        function_path(self.owner, self.path)
    }

    /// The namespace of the connection's database: the default one without a connection
    /// that knows its database; `None` while it is not settled.
    fn namespace(&self) -> Option<&Namespace> {
        static DEFAULT: Namespace = Namespace::Default;
        match &self.database {
            None => Some(&DEFAULT),
            Some(database) => database.id.get(),
        }
    }

    /// The function's path, after the database namespace of a connection to another
    /// database than the cache's default (`@ab12/module::fn`).
    fn key_path(&self) -> std::borrow::Cow<'static, str> {
        let path = self.function_path();
        match self.namespace().and_then(Namespace::key_prefix) {
            None => path,
            Some(prefix) => format!("{prefix}/{path}").into(),
        }
    }

    /// Settles the database of the connection argument, when it is not yet (SeaORM: one
    /// query, once per connection).
    async fn settle_database(&self) {
        if let Some(CallDatabase {
            id,
            settle: Some(settle),
        }) = &self.database
            && id.get().is_none()
        {
            settle.settle().await;
        }
    }

    /// [`settle_database`](Self::settle_database) for a plain `fn` on a detached bridge.
    fn settle_database_detached(&self) {
        if let Some(CallDatabase {
            id,
            settle: Some(settle),
        }) = &self.database
            && id.get().is_none()
        {
            Bridge::Detached.wait(settle.settle());
        }
    }

    /// The default key: the function's path and the hash of its key arguments, taken by
    /// [`key_hash`] (once, for the quick hit check too when there is one).
    pub fn key_hashed(&mut self, hash: KeyHash) {
        self.key = KeySpec::Args(hash.0);
    }

    /// An explicit key from `key = ".."`.
    pub fn key_template(&mut self, key: String) {
        self.key = KeySpec::Explicit(Key::new(key).map_err(Box::new));
    }

    /// A fresh memory-tier value for this call, cloned; `None` when there is none (or the
    /// call cannot be served from the cache as it stands: inside a transaction, an invalid
    /// key, early refresh to consider), and the call goes on to `run`.
    pub fn hit<T: CacheValue + Clone>(&self) -> Option<T> {
        self.hit_from(self.cache())
    }

    /// [`hit`](Self::hit) in `cache = ..`'s cache, not given yet ([`CacheChoice::Later`]).
    #[inline]
    pub fn hit_in<T: CacheValue + Clone, C: AsRef<Cache> + ?Sized>(&self, cache: &C) -> Option<T> {
        self.hit_from(cache.as_ref())
    }

    /// [`hit_ok`](Self::hit_ok) in `cache = ..`'s cache, not given yet.
    #[inline]
    pub fn hit_ok_in<R, C>(&self, cache: &C) -> Option<R>
    where
        R: OkOf,
        R::Ok: CacheValue + Clone,
        C: AsRef<Cache> + ?Sized,
    {
        self.hit_from::<R::Ok>(cache.as_ref()).map(R::from_ok)
    }

    #[inline]
    fn hit_from<T: CacheValue + Clone>(&self, cache: &Cache) -> Option<T> {
        if self.invalid.is_some()
            || !matches!(self.conn, ConnState::Free)
            || self.options.fresh.early_refresh.is_some()
            || self.namespace().is_none()
        {
            return None;
        }
        let look = |key: HitKey<'_>| {
            let take = |held: crate::store::Held<'_>| held.cloned::<T>();
            let (value, _) =
                cache.memory_hit_with(key, NamespaceName::Static(self.namespace), false, take)?;
            Some(value)
        };
        match &self.key {
            // No key text: the store's id of the key comes from the path and the hash.
            KeySpec::Args(Ok(Some(hash))) => {
                let path = || self.key_path();
                let path_id = match self.namespace().and_then(Namespace::key_prefix) {
                    None => {
                        crate::key::function_path_id(self.owner, self.path, || self.function_path())
                    }
                    Some(_) => crate::key::path_id(&self.key_path()),
                };
                look(HitKey::Args {
                    path_id,
                    path: &path,
                    hash: *hash,
                })
            }
            KeySpec::Path | KeySpec::Args(Ok(None)) => look(HitKey::Text(&self.key_path())),
            KeySpec::Explicit(Ok(key)) => match self.namespace().and_then(Namespace::key_prefix) {
                None => look(HitKey::Text(key.as_str())),
                Some(prefix) => look(HitKey::Text(&format!("{prefix}/{}", key.as_str()))),
            },
            KeySpec::Args(Err(_)) | KeySpec::Explicit(Err(_)) => None,
        }
    }

    /// [`hit`](Self::hit) for a function returning `Result<T, E>` whose `T` is cached.
    pub fn hit_ok<R>(&self) -> Option<R>
    where
        R: OkOf,
        R::Ok: CacheValue + Clone,
    {
        self.hit::<R::Ok>().map(R::from_ok)
    }

    fn plan(&mut self) -> CallPlan {
        if self.default_error_ttl && self.options.error_ttl.is_none() {
            self.options.error_ttl = Some(self.cache().config().error_ttl());
        }
        if self.options.namespace.is_none() {
            self.options = std::mem::take(&mut self.options).namespace(self.namespace);
        }
        if let Some(error) = self.invalid.take() {
            return self.unusable(*error);
        }
        if crate::cache::bypass::active() {
            tracing::debug!(
                function = self.path,
                "Cache BYPASS: inside querycache::bypass"
            );
            return CallPlan::Bypass;
        }
        let Some(namespace) = self.namespace().cloned() else {
            tracing::debug!(
                function = self.path,
                "the connection's database is not known; running the call uncached"
            );
            return CallPlan::Bypass;
        };
        let model_tags = namespace.read_tags(std::mem::take(&mut self.model_tags));
        self.options.tags.extend(model_tags);
        let key = match self.take_key(&namespace) {
            Ok(key) => key,
            Err(error) => return self.unusable(error),
        };
        match &self.conn {
            ConnState::Free => CallPlan::Cache(key),
            ConnState::Untracked => CallPlan::Bypass,
            ConnState::Tracked(pending) => {
                // Any write of the transaction, not only to the declared tables: the entry
                // also depends on what its computation was observed to read, which the
                // declared tables need not name.
                if pending.iter().any(|p| p.wrote_anything()) {
                    CallPlan::Bypass
                } else {
                    CallPlan::ReadOnly(key)
                }
            }
        }
    }

    /// The key of the call (taken: built once), in the connection's database `namespace`.
    fn take_key(&mut self, namespace: &Namespace) -> Result<Key, Error> {
        match std::mem::replace(&mut self.key, KeySpec::Path) {
            KeySpec::Path | KeySpec::Args(Ok(None)) => Key::new(self.key_path()),
            KeySpec::Args(Ok(Some(hash))) => Key::from_args_hash(&self.key_path(), hash),
            KeySpec::Args(Err(error)) => Err(*error),
            KeySpec::Explicit(key) => match (key, namespace.key_prefix()) {
                (Ok(key), Some(prefix)) => Key::new(format!("{prefix}/{}", key.as_str())),
                (key, _) => key.map_err(|error| *error),
            },
        }
    }

    /// The key this call reads and stores under, as [`plan`](Self::plan) builds it (the
    /// connection's database prefix included); `None` when it cannot be built (the database
    /// not known, an invalid key).
    fn entry_key(&mut self) -> Option<Key> {
        let namespace = self.namespace().cloned()?;
        match self.take_key(&namespace) {
            Ok(key) => Some(key),
            Err(error) => {
                tracing::warn!(function = self.path, %error, "cannot build this call's key");
                None
            }
        }
    }

    /// The generated `<fn>_invalidate` companion: removes the entry this call would read
    /// (from its cache, under its key); whether there was one. A computation of it in flight
    /// will not store its result ([`Cache::delete`]).
    pub async fn invalidate(mut self) -> bool {
        self.settle_database().await;
        match self.entry_key() {
            Some(key) => self.cache().delete(key.as_str()).await,
            None => false,
        }
    }

    /// [`invalidate`](Self::invalidate) for the companion of a plain `fn`, waiting as
    /// [`run_result_sync`](Self::run_result_sync) does.
    pub fn invalidate_sync(mut self) -> bool {
        match Bridge::current() {
            Bridge::Here(here) => here.wait(self.invalidate()),
            Bridge::Detached => {
                self.settle_database_detached();
                let Some(key) = self.entry_key() else {
                    return false;
                };
                let cache = self.cache().clone();
                Bridge::Detached.wait(async move { cache.delete(key.as_str()).await })
            }
        }
    }

    fn unusable(&self, error: Error) -> CallPlan {
        tracing::warn!(function = self.path, %error, "cannot cache this call; running it uncached");
        self.cache().inner_stats_error();
        CallPlan::Bypass
    }

    /// Runs a function returning a plain value.
    pub async fn run<T, Fut>(mut self, future: Fut) -> T
    where
        T: CacheValue + Clone,
        Fut: Future<Output = T>,
    {
        self.settle_database().await;
        match self.plan() {
            CallPlan::Bypass => self.cache().bypass(future).await,
            CallPlan::ReadOnly(key) => match self.cache().read_only::<T>(&key, &self.options).await
            {
                Some(hit) => (*hit).clone(),
                None => future.await,
            },
            // Boxed, as below: the read path's future is large, and a cached function's
            // future embeds it; a cached function calling others would otherwise nest
            // them all in one frame (a stack overflow on a 2 MiB thread in debug builds).
            // Allocated only past the quick memory hit of the generated code.
            CallPlan::Cache(key) => (*Box::pin(self.cache().clone().get_or_compute(
                key.as_str(),
                self.options,
                || relayed(self.relays, future),
            ))
            .await)
                .clone(),
        }
    }

    /// Runs a function returning `Result<T, E>`; errors are not cached (unless
    /// `error_ttl`/`cache_errors` was given: see [`run_result_caching_errors`](Self::run_result_caching_errors)).
    pub async fn run_result<T, E, Fut>(mut self, future: Fut) -> Result<T, E>
    where
        T: CacheValue + Clone,
        Fut: Future<Output = Result<T, E>>,
    {
        self.settle_database().await;
        match self.plan() {
            CallPlan::Bypass => self.cache().bypass(future).await,
            CallPlan::ReadOnly(key) => match self.cache().read_only::<T>(&key, &self.options).await
            {
                Some(hit) => Ok((*hit).clone()),
                None => future.await,
            },
            CallPlan::Cache(key) => Box::pin(self.cache().clone().try_get_or_compute(
                key.as_str(),
                self.options,
                || relayed(self.relays, future),
            ))
            .await
            .map(|value| (*value).clone()),
        }
    }

    /// Runs a function returning `Result<T, E>`, caching errors for the error TTL.
    pub async fn run_result_caching_errors<T, E, Fut>(mut self, future: Fut) -> Result<T, E>
    where
        T: CacheValue + Clone,
        E: CacheValue + Clone,
        Fut: Future<Output = Result<T, E>>,
    {
        self.settle_database().await;
        match self.plan() {
            CallPlan::Bypass => self.cache().bypass(future).await,
            CallPlan::ReadOnly(key) => {
                match self
                    .cache()
                    .read_only::<Result<T, E>>(&key, &self.options)
                    .await
                {
                    Some(hit) => (*hit).clone(),
                    None => future.await,
                }
            }
            CallPlan::Cache(key) => (*Box::pin(self.cache().clone().get_or_compute_result(
                key.as_str(),
                self.options,
                || relayed(self.relays, future),
            ))
            .await)
                .clone(),
        }
    }

    /// Runs a plain (synchronous) function returning a plain value. See
    /// [`run_result_sync`](Self::run_result_sync).
    pub fn run_sync<T>(self, body: impl FnOnce() -> T) -> T
    where
        T: CacheValue + Clone,
    {
        let result: Result<T, std::convert::Infallible> = self.run_result_sync(|| Ok(body()));
        match result {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// Runs a plain function returning `Result<T, E>`; errors are not cached.
    ///
    /// The body runs on the calling thread (it holds the caller's connection). Waiting for
    /// the cache goes through [`Bridge`]: outside tokio on querycache's own runtime, on a
    /// multi-thread runtime through `block_in_place`, on a current-thread runtime detached
    /// (each cache operation on querycache's runtime, no single-flight wait).
    pub fn run_result_sync<T, E>(self, body: impl FnOnce() -> Result<T, E>) -> Result<T, E>
    where
        T: CacheValue + Clone,
    {
        match Bridge::current() {
            Bridge::Here(here) => here.wait(self.run_result(async move { body() })),
            Bridge::Detached => self.run_detached(body, |_: &T, ttl| ttl),
        }
    }

    /// Runs a plain function returning `Result<T, E>`, caching errors for the error TTL.
    pub fn run_result_caching_errors_sync<T, E>(
        self,
        body: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E>
    where
        T: CacheValue + Clone,
        E: CacheValue + Clone,
    {
        match Bridge::current() {
            Bridge::Here(here) => here.wait(self.run_result_caching_errors(async move { body() })),
            Bridge::Detached => {
                let ttl_of = self.cache().error_ttl_policy(&self.options);
                let result: Result<Result<T, E>, std::convert::Infallible> =
                    self.run_detached(|| Ok(body()), ttl_of);
                match result {
                    Ok(value) => value,
                    Err(never) => match never {},
                }
            }
        }
    }

    /// A synchronous call on a current-thread runtime's thread (see [`Bridge::Detached`]).
    fn run_detached<T, E>(
        mut self,
        body: impl FnOnce() -> Result<T, E>,
        ttl_of: impl Fn(&T, Duration) -> Duration,
    ) -> Result<T, E>
    where
        T: CacheValue + Clone,
    {
        self.settle_database_detached();
        match self.plan() {
            CallPlan::Bypass => {
                self.cache().count_bypass();
                body()
            }
            CallPlan::ReadOnly(key) => {
                let (cache, options) = (self.cache().clone(), self.options.clone());
                let hit = Bridge::Detached
                    .wait(async move { cache.read_only::<T>(&key, &options).await });
                match hit {
                    Some(hit) => Ok((*hit).clone()),
                    None => body(),
                }
            }
            CallPlan::Cache(key) => self
                .cache()
                .clone()
                .compute_detached(key.as_str(), self.options, body, ttl_of)
                .map(|value| (*value).clone()),
        }
    }
}

/// `future`, the computation of a call, with its observation lent to the relays of the
/// call's connection arguments while it runs.
pub(super) async fn relayed<F: Future>(relays: Vec<Arc<Relay>>, future: F) -> F::Output {
    if relays.is_empty() {
        return future.await;
    }
    let _lent = Relay::lend(relays);
    future.await
}

/// Logs `message` at warn level, once per function (`path`) for the process's life.
fn warn_once(path: &'static str, message: &'static str) {
    static WARNED: std::sync::LazyLock<
        parking_lot::Mutex<std::collections::HashSet<&'static str>>,
    > = std::sync::LazyLock::new(Default::default);
    if WARNED.lock().insert(path) {
        tracing::warn!(
            function = path,
            "querycache: #[cached_query] function {message}"
        );
    }
}

/// The warning of a function whose `cache = ..` is not the cache its connection argument
/// invalidates.
fn warn_named_elsewhere(path: &'static str) {
    warn_once(
        path,
        "reads through the cache named by `cache = ..`, but its connection argument \
         invalidates another cache: writes through that connection do not invalidate \
         this function's entries (drop `cache = ..` to use the connection's cache)",
    );
}
