//! Per-query caching: a SeaORM query cached where it is written, without a
//! `#[cached_query]` function around it.
//!
//! The rules are on [`CacheQueryExt`].

use std::future::Future;
use std::marker::PhantomData;
use std::time::Duration;

use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, EntityTrait, PaginatorTrait, QueryTrait, Select, SelectTwo,
    SelectTwoMany, Selector, SelectorTrait, Statement,
};

use super::{CachedConnection, CachedTransaction};
use crate::cache::call::{CacheChoice, Call};
use crate::{Cache, CacheValue, EntryOptions, Tag, TimedOut};

/// The namespace of per-query entries that name none (see [`CachedQuery::namespace`]).
pub const QUERY_NAMESPACE: &str = "query";

/// Caches a SeaORM query where it is written: `.cached(&db)` on a [`Select`] (what
/// `Entity::find()`, `find_by_id` and `filter` build), a [`SelectTwo`]
/// (`find_also_related`), a [`SelectTwoMany`] (`find_with_related`) or a [`Selector`]
/// (`into_model`, `into_tuple`, `into_json`), then the freshness options, then
/// [`one`](CachedQuery::one), [`all`](CachedQuery::all) or [`count`](CachedQuery::count).
///
/// * **The key** is the statement as built for the connection's backend (SQL text and bound
///   values), the result shape (`one`, `all`, `count`) and the Rust type the rows decode
///   into , under the entry's namespace (default
///   [`QUERY_NAMESPACE`]): two decodings of the same SQL never share an entry. A connection
///   to another database than the cache's first one puts its namespace in front, as for
///   `#[cached_query]`.
/// * **Dependencies are observed**: the query runs through the [`CachedConnection`] inside
///   the cache's computation, so the entry depends on what the statement read — every table
///   of a join, the row a by-id read pinned — exactly as a `#[cached_query]` body does; plus
///   any [`tag`](CachedQuery::tag) given.
/// * **Transactions** are treated as `#[cached_query]` treats them: given a
///   [`CachedTransaction`], a query is served from the cache while the transaction has
///   written nothing, and never stores what it computes; once it has written, the query goes
///   to the database. A query given the [`CachedConnection`] runs on the pool, outside any
///   transaction, and sees only committed rows.
/// * **Cache trouble never fails the caller**: a key that cannot be made, a store that
///   fails, a value that cannot be encoded run the query uncached. [`DbErr`] passes through
///   and is not cached.
///
/// The rows must be `Serialize + DeserializeOwned` (derive serde's traits on the models).
///
/// ```
/// # mod song {
/// #     use sea_orm::entity::prelude::*;
/// #     #[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
/// #     #[sea_orm(table_name = "songs")]
/// #     pub struct Model { #[sea_orm(primary_key)] pub id: i32, pub title: String }
/// #     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// #     pub enum Relation {}
/// #     impl ActiveModelBehavior for ActiveModel {}
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm::DbErr> {
/// use std::time::Duration;
/// use querycache::{Cache, orm::sea_orm::{CacheQueryExt, CachedConnection}};
/// use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, QueryOrder, Set};
///
/// let db = CachedConnection::new(sea_orm::Database::connect("sqlite::memory:").await?, Cache::new());
/// db.execute_unprepared("CREATE TABLE songs (id INTEGER PRIMARY KEY, title TEXT NOT NULL)").await?;
/// db.execute_unprepared("INSERT INTO songs (id, title) VALUES (1, 'Blue'), (2, 'Green')").await?;
///
/// let list = || song::Entity::find().order_by_asc(song::Column::Id).cached(&db).ttl(Duration::from_secs(60));
/// assert_eq!(list().all().await?.len(), 2);
/// assert_eq!(list().all().await?.len(), 2); // a hit
///
/// // A write through the connection invalidates what read the table.
/// song::ActiveModel { title: Set("Red".into()), ..Default::default() }.insert(&db).await?;
/// assert_eq!(list().all().await?.len(), 3);
/// # Ok(()) }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be cached with `.cached(&db)`",
    note = "`.cached(&db)` takes a `Select`, `SelectTwo`, `SelectTwoMany` or `Selector` of SeaORM"
)]
pub trait CacheQueryExt: sealed::Cacheable {
    /// This query, read through the cache of `db` (a [`CachedConnection`] or a
    /// [`CachedTransaction`]). Nothing runs until [`one`](CachedQuery::one),
    /// [`all`](CachedQuery::all) or [`count`](CachedQuery::count) is awaited.
    fn cached<C: QueryConnection>(self, db: &C) -> CachedQuery<'_, Self, C>;
}

impl<Q: sealed::Cacheable> CacheQueryExt for Q {
    fn cached<C: QueryConnection>(self, db: &C) -> CachedQuery<'_, Self, C> {
        let (prepared, statement) = self.prepare(db.get_database_backend());
        CachedQuery {
            prepared,
            statement,
            db,
            options: EntryOptions::new(),
        }
    }
}

/// The connections a query can be [`cached`](CacheQueryExt::cached) through: a
/// [`CachedConnection`] (read, compute, store) and a [`CachedTransaction`] (read only, and
/// not even that once the transaction has written). Sealed.
pub trait QueryConnection: ConnectionTrait + sealed::Runs {}

impl QueryConnection for CachedConnection {}

impl QueryConnection for CachedTransaction {}

/// A query on its way through the cache: set its options, then await
/// [`one`](Self::one), [`all`](Self::all) or [`count`](Self::count). Built by
/// [`CacheQueryExt::cached`].
///
/// The options are those of [`EntryOptions`] (the same as `#[cached_query]`'s): give a
/// whole [`EntryOptions`] with [`options`](Self::options), or set them one by one.
///
/// ```
/// # mod song {
/// #     use sea_orm::entity::prelude::*;
/// #     #[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
/// #     #[sea_orm(table_name = "songs")]
/// #     pub struct Model { #[sea_orm(primary_key)] pub id: i32, pub title: String }
/// #     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// #     pub enum Relation {}
/// #     impl ActiveModelBehavior for ActiveModel {}
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use querycache::{Cache, EntryOptions, Tag, orm::sea_orm::{CacheQueryExt, CachedConnection}};
/// use sea_orm::{ConnectionTrait, EntityTrait};
///
/// let db = CachedConnection::new(sea_orm::Database::connect("sqlite::memory:").await?, Cache::new());
/// db.execute_unprepared("CREATE TABLE songs (id INTEGER PRIMARY KEY, title TEXT NOT NULL)").await?;
///
/// let songs = song::Entity::find()
///     .cached(&db)
///     .ttl(Duration::from_secs(300))
///     .swr(Duration::from_secs(60))
///     .fail_safe(Duration::from_secs(3600))
///     .tag(Tag::new("catalogue")?)
///     .namespace("songs")
///     .all()
///     .await?;
/// assert!(songs.is_empty());
///
/// // The same, from an `EntryOptions` kept by the application.
/// let policy = EntryOptions::new().ttl_secs(300).namespace("songs");
/// let count = song::Entity::find().cached(&db).options(policy).count().await?;
/// assert_eq!(count, 0);
/// # Ok(()) }
/// ```
#[must_use = "a cached query runs when `.one()`, `.all()` or `.count()` is awaited"]
pub struct CachedQuery<'c, Q: sealed::Cacheable, C> {
    prepared: Q::Prepared,
    /// The statement as built for the connection's backend: the key is derived from it.
    statement: Statement,
    db: &'c C,
    options: EntryOptions,
}

impl<Q: sealed::Cacheable, C> std::fmt::Debug for CachedQuery<'_, Q, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedQuery")
            .field("sql", &self.statement.sql)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The setters of [`CachedQuery`] that set one option of its [`EntryOptions`] through
/// `EntryOptions`' own setter of the same name.
macro_rules! entry_options {
    ($($(#[doc = $doc:expr])* $name:ident($arg:ident: $ty:ty);)+) => {$(
        $(#[doc = $doc])*
        #[doc = concat!("\n\nSee [`EntryOptions::", stringify!($name), "`].")]
        pub fn $name(self, $arg: $ty) -> Self {
            self.with(|options| options.$name($arg))
        }
    )+};
}

impl<'c, Q: sealed::Cacheable, C: QueryConnection> CachedQuery<'c, Q, C> {
    /// Replaces every option with `options` (TTL, tags, namespace, freshness).
    pub fn options(mut self, options: EntryOptions) -> Self {
        self.options = options;
        self
    }

    /// One option, through [`EntryOptions`]' own setter.
    fn with(mut self, set: impl FnOnce(EntryOptions) -> EntryOptions) -> Self {
        self.options = set(std::mem::take(&mut self.options));
        self
    }

    entry_options! {
        /// The entry's TTL.
        ttl(ttl: Duration);
        /// Stale-while-revalidate; the refresh runs in the background.
        swr(window: Duration);
        /// Early refresh of hot entries (XFetch's `beta`).
        early_refresh(beta: f64);
        /// When the query fails, the last good value (not invalidated) is served for up to
        /// `max_stale` past its TTL.
        fail_safe(max_stale: Duration);
        /// With `fail_safe`: how often a failing query is tried again.
        fail_safe_throttle(every: Duration);
        /// Past `after`, a stale value (if one may be served) is, and the query finishes in
        /// the background.
        soft_timeout(after: Duration);
        /// Past `after`, the caller stops waiting: the stale value if one may be served,
        /// else [`DbErr::Custom`] naming the timeout.
        hard_timeout(after: Duration);
        /// Up to this percentage of the TTL is taken off at random.
        jitter_percent(percent: u8);
        /// The entry's namespace (default [`QUERY_NAMESPACE`]), which is the key's prefix too.
        namespace(namespace: impl AsRef<str>);
        /// A dependency beyond what the query is observed to read.
        tag(tag: Tag);
        /// Dependencies beyond what the query is observed to read.
        tags(tags: impl IntoIterator<Item = Tag>);
    }

    /// The statement the key is derived from, as built for the connection's backend.
    ///
    /// ```
    /// # mod song {
    /// #     use sea_orm::entity::prelude::*;
    /// #     #[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
    /// #     #[sea_orm(table_name = "songs")]
    /// #     pub struct Model { #[sea_orm(primary_key)] pub id: i32, pub title: String }
    /// #     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    /// #     pub enum Relation {}
    /// #     impl ActiveModelBehavior for ActiveModel {}
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sea_orm::DbErr> {
    /// use querycache::{Cache, orm::sea_orm::{CacheQueryExt, CachedConnection}};
    /// use sea_orm::EntityTrait;
    ///
    /// let db = CachedConnection::new(sea_orm::Database::connect("sqlite::memory:").await?, Cache::new());
    /// let query = song::Entity::find_by_id(7).cached(&db);
    /// assert_eq!(query.statement().to_string(),
    ///     r#"SELECT "songs"."id", "songs"."title" FROM "songs" WHERE "songs"."id" = 7"#);
    /// # Ok(()) }
    /// ```
    pub fn statement(&self) -> &Statement {
        &self.statement
    }

    /// Reads `T` (the `op` of the query, run by `work`) through the cache, as a
    /// `#[cached_query]` call of the connection would.
    async fn run<T, W>(
        self,
        op: &'static str,
        work: impl FnOnce(Q::Prepared) -> W,
    ) -> Result<T, DbErr>
    where
        T: CacheValue + Clone,
        W: sealed::Fetch<T>,
    {
        let CachedQuery {
            prepared,
            statement,
            db,
            options,
        } = self;
        let namespace = options.namespace.as_deref().unwrap_or(QUERY_NAMESPACE);
        let key = super::query_key::key(namespace, op, std::any::type_name::<T>(), &statement);
        tracing::debug!(key = %crate::key::shown(&key), sql = %statement.sql, op, "cached query");
        let mut call = Call::new(
            CacheChoice::Named(db.cache_of().clone()),
            std::any::type_name::<Q>(),
            QUERY_NAMESPACE,
        );
        call.entry_options(options);
        call.key_template(key);
        call.connection(db);
        // Boxed: the read path's future is large, and an application's future awaiting
        // several cached queries would embed one each (a stack overflow on a 2 MiB thread
        // in debug builds), as `Call::run` explains.
        Box::pin(db.run_cached(call, work(prepared))).await
    }
}

impl<E, C> CachedQuery<'_, Select<E>, C>
where
    E: EntityTrait,
    E::Model: CacheValue,
    C: QueryConnection,
{
    /// The first model, as [`Select::one`] reads it (with `LIMIT 1`).
    pub async fn one(self) -> Result<Option<E::Model>, DbErr> {
        self.run("one", One).await
    }

    /// Every model, as [`Select::all`] reads them.
    pub async fn all(self) -> Result<Vec<E::Model>, DbErr> {
        self.run("all", All).await
    }

    /// How many rows the query selects, as [`PaginatorTrait::count`] counts them; an entry
    /// marked as a count query ([`EntryOptions::count_query`]: `CACHE_COUNT_TTL` unless a
    /// TTL is given).
    pub async fn count(self) -> Result<u64, DbErr> {
        self.with(EntryOptions::count_query)
            .run("count", Count)
            .await
    }
}

impl<E, F, C> CachedQuery<'_, SelectTwo<E, F>, C>
where
    E: EntityTrait,
    F: EntityTrait,
    E::Model: CacheValue,
    F::Model: CacheValue,
    C: QueryConnection,
{
    /// The first pair, as [`SelectTwo::one`] reads it.
    pub async fn one(self) -> Result<Option<(E::Model, Option<F::Model>)>, DbErr> {
        self.run("one", One).await
    }

    /// Every pair, as [`SelectTwo::all`] reads them.
    pub async fn all(self) -> Result<Vec<(E::Model, Option<F::Model>)>, DbErr> {
        self.run("all", All).await
    }
}

impl<E, F, C> CachedQuery<'_, SelectTwoMany<E, F>, C>
where
    E: EntityTrait,
    F: EntityTrait,
    E::Model: CacheValue,
    F::Model: CacheValue,
    C: QueryConnection,
{
    /// Every model with its related ones, as [`SelectTwoMany::all`] reads them.
    pub async fn all(self) -> Result<Vec<(E::Model, Vec<F::Model>)>, DbErr> {
        self.run("all", All).await
    }
}

impl<S, C> CachedQuery<'_, Selector<S>, C>
where
    S: SelectorTrait + Send + 'static,
    S::Item: CacheValue + Clone,
    C: QueryConnection,
{
    /// The first row, decoded as the selector decodes it. Unlike [`Selector::one`], the
    /// statement is sent as built, without `LIMIT 1` (a [`Selector`] does not let it be
    /// changed): the database returns the first row of the whole statement; add
    /// `.limit(1)` before `into_model`/`into_tuple` if that matters.
    pub async fn one(self) -> Result<Option<S::Item>, DbErr> {
        self.run("one", One).await
    }

    /// Every row, decoded as [`Selector::all`] decodes them.
    pub async fn all(self) -> Result<Vec<S::Item>, DbErr> {
        self.run("all", All).await
    }
}

/// The `one` of a query.
pub struct One<Q>(Q);
/// The `all` of a query.
pub struct All<Q>(Q);
/// The `count` of a query.
pub struct Count<Q>(Q);

/// A [`Selector`] as its built statement and the type that decodes its rows.
pub struct SelectorRows<S>(Statement, PhantomData<fn() -> S>);

/// A hard timeout, as the error of a query.
fn timed_out(timed_out: TimedOut) -> DbErr {
    DbErr::Custom(format!("querycache: {timed_out}"))
}

macro_rules! built_by_query_trait {
    ($($query:ident<$($param:ident),+>),+) => {$(
        impl<$($param: EntityTrait),+> sealed::Cacheable for $query<$($param),+> {
            type Prepared = Self;
            fn prepare(self, backend: DbBackend) -> (Self, Statement) {
                let statement = QueryTrait::build(&self, backend);
                (self, statement)
            }
        }
    )+};
}

built_by_query_trait!(Select<E>, SelectTwo<E, F>, SelectTwoMany<E, F>);

impl<S: SelectorTrait + Send + 'static> sealed::Cacheable for Selector<S> {
    type Prepared = SelectorRows<S>;
    fn prepare(self, backend: DbBackend) -> (SelectorRows<S>, Statement) {
        let statement = self.into_statement(backend);
        (SelectorRows(statement.clone(), PhantomData), statement)
    }
}

/// The shapes of the queries SeaORM runs itself: `One<Select<E>>` is `Select::one`, ...
macro_rules! run_by_sea_orm {
    ($($shape:ident<$query:ident<$($param:ident),+>> = $method:ident -> $item:ty;)+) => {$(
        impl<$($param: EntityTrait),+> sealed::Fetch<$item> for $shape<$query<$($param),+>>
        where
            $(<$param as EntityTrait>::Model: Sync),+
        {
            fn fetch<'a, C: ConnectionTrait>(
                self,
                db: &'a C,
            ) -> impl Future<Output = Result<$item, DbErr>> + Send + 'a {
                <$query<$($param),+>>::$method(self.0, db)
            }
        }
    )+};
}

run_by_sea_orm! {
    One<Select<E>> = one -> Option<E::Model>;
    All<Select<E>> = all -> Vec<E::Model>;
    Count<Select<E>> = count -> u64;
    One<SelectTwo<E, F>> = one -> Option<(E::Model, Option<F::Model>)>;
    All<SelectTwo<E, F>> = all -> Vec<(E::Model, Option<F::Model>)>;
    All<SelectTwoMany<E, F>> = all -> Vec<(E::Model, Vec<F::Model>)>;
}

impl<S: SelectorTrait + Send + 'static> sealed::Fetch<Option<S::Item>> for One<SelectorRows<S>>
where
    S::Item: Send,
{
    async fn fetch<C: ConnectionTrait>(self, db: &C) -> Result<Option<S::Item>, DbErr> {
        match db.query_one_raw(self.0.0).await? {
            Some(row) => S::from_raw_query_result(row).map(Some),
            None => Ok(None),
        }
    }
}

impl<S: SelectorTrait + Send + 'static> sealed::Fetch<Vec<S::Item>> for All<SelectorRows<S>>
where
    S::Item: Send,
{
    async fn fetch<C: ConnectionTrait>(self, db: &C) -> Result<Vec<S::Item>, DbErr> {
        db.query_all_raw(self.0.0)
            .await?
            .into_iter()
            .map(S::from_raw_query_result)
            .collect()
    }
}

impl sealed::Runs for CachedConnection {
    fn cache_of(&self) -> &Cache {
        &self.cache
    }

    fn run_cached<T, W>(
        &self,
        call: Call,
        work: W,
    ) -> impl Future<Output = Result<T, DbErr>> + Send + '_
    where
        T: CacheValue + Clone,
        W: sealed::Fetch<T>,
    {
        // The computation owns a clone of the connection, so that a refresh (`swr`,
        // `early_refresh`) or a computation past its soft timeout can finish in the
        // background; it runs inside the cache's computation, where the connection
        // reports what each statement reads.
        let db = self.clone();
        call.fetch_owned(async move { work.fetch(&db).await }, timed_out)
    }
}

impl sealed::Runs for CachedTransaction {
    fn cache_of(&self) -> &Cache {
        &self.cache
    }

    fn run_cached<T, W>(
        &self,
        call: Call,
        work: W,
    ) -> impl Future<Output = Result<T, DbErr>> + Send + '_
    where
        T: CacheValue + Clone,
        W: sealed::Fetch<T>,
    {
        // The call probed the transaction: a hit is served while it has written nothing,
        // nothing it computes is stored, and once it has written the query goes straight
        // to the database.
        call.run_result(work.fetch(self))
    }
}

/// What the public traits are built on; not nameable outside, so not implementable.
mod sealed {
    use std::future::Future;

    use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

    use crate::cache::call::Call;
    use crate::{Cache, CacheValue};

    /// A query that can be cached: what runs it, and the statement its key comes from.
    pub trait Cacheable: Sized {
        /// What runs the query once the key's statement was built.
        type Prepared: Send + 'static;
        /// The query, and its statement for `backend`.
        fn prepare(self, backend: DbBackend) -> (Self::Prepared, Statement);
    }

    /// One shape of a query (`one`, `all`, `count`), run on a connection.
    pub trait Fetch<T>: Send + 'static {
        /// Runs it on `db`.
        fn fetch<'a, C: ConnectionTrait>(
            self,
            db: &'a C,
        ) -> impl Future<Output = Result<T, DbErr>> + Send + 'a;
    }

    /// A connection a cached query runs on.
    pub trait Runs {
        /// The cache it invalidates, which its queries read through.
        fn cache_of(&self) -> &Cache;
        /// Runs `work` as the `call` (probed with this connection) plans it.
        fn run_cached<T, W>(
            &self,
            call: Call,
            work: W,
        ) -> impl Future<Output = Result<T, DbErr>> + Send + '_
        where
            T: CacheValue + Clone,
            W: Fetch<T>;
    }
}
