//! The autoref probes the code `#[cached_query]` generates uses to learn, at compile time
//! where it can and at run time where it must, what its arguments are: which table a type
//! in `models = [..]` names (a `CacheModel`, a SeaORM entity, a Diesel table), and what a
//! connection argument says about the cache (in a tracked transaction or not, which
//! database). Reached by generated code through `querycache::__private`.

// What generated code calls, reached through the hidden `querycache::__private`: its
// signatures are for the macro, not for readers of the public docs.
#![allow(missing_docs)]

use std::future::Future;
use std::marker::PhantomData;

use crate::CacheModel;
use crate::cache::databases::CallDatabase;

/// Resolves a model type named in `models = [..]` to its table, by autoref: a
/// [`CacheModel`] impl first, then a SeaORM entity.
pub struct ModelProbe<M: ?Sized>(PhantomData<M>);

impl<M: ?Sized> ModelProbe<M> {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        ModelProbe(PhantomData)
    }
}

/// The traits the generated code imports to resolve model tables and connection states.
pub mod probe_traits {
    pub use super::ViaAnyIdentify;
    pub use super::ViaCacheModel;
    #[cfg(feature = "diesel-async")]
    pub use super::ViaDieselAsync;
    #[cfg(feature = "diesel-async")]
    pub use super::ViaDieselAsyncIdentify;
    pub use super::ViaRef;
    #[cfg(feature = "sea-orm")]
    pub use super::ViaSeaOrm;
    #[cfg(feature = "diesel")]
    pub use super::{ViaDiesel, ViaDieselIdentified, ViaDieselTable};
}

/// The transaction state, the database and the cache of a connection argument, as the
/// probes report them.
pub struct TxProbe(
    pub(crate) crate::orm::TxState,
    pub(crate) Option<CallDatabase>,
    /// The cache the connection invalidates (a `CachedConnection`'s, a Diesel connection's
    /// `CacheInstrumentation`'s): the call reads through it unless told otherwise.
    pub(crate) Option<crate::Cache>,
    /// Where the connection looks for the computation it serves when it runs statements
    /// on a thread of its own (a Diesel connection's instrumentation).
    pub(crate) Option<std::sync::Arc<crate::cache::observe::Relay>>,
);

impl TxProbe {
    pub(crate) fn of<C: ?Sized>(conn: &C) -> Self {
        TxProbe(
            crate::orm::transaction_state(conn),
            crate::orm::database_of(conn),
            crate::orm::cache_of(conn),
            None,
        )
    }
}

/// A `&mut` connection argument, probed by autoref: a Diesel connection first (through
/// `ViaDiesel`), then a diesel-async one (`ViaDieselAsync`), then any other type (through
/// [`ViaRef`]).
pub struct ConnProbe<'a, C: ?Sized>(std::cell::Cell<Option<&'a mut C>>);

impl<'a, C: ?Sized> ConnProbe<'a, C> {
    pub fn new(conn: &'a mut C) -> Self {
        ConnProbe(std::cell::Cell::new(Some(conn)))
    }

    /// The state `read` finds in the connection (probed once: the reborrow is taken).
    fn state(&self, read: impl FnOnce(&mut C) -> TxProbe) -> TxProbe {
        self.0
            .take()
            .map_or(TxProbe(crate::orm::TxState::None, None, None, None), read)
    }
}

/// State of a Diesel connection that can load rows (every real one): its instrumentation,
/// its transaction manager, and its database, asked with one query the first time.
#[cfg(feature = "diesel")]
pub trait ViaDieselIdentified {
    fn __querycache_tx_state(&self) -> TxProbe;
}

#[cfg(feature = "diesel")]
impl<C> ViaDieselIdentified for &&&ConnProbe<'_, C>
where
    C: diesel::connection::LoadConnection,
    for<'a> diesel::query_builder::SqlQuery:
        diesel::query_dsl::LoadQuery<'a, C, crate::orm::diesel::Identity>,
{
    fn __querycache_tx_state(&self) -> TxProbe {
        self.state(|conn| {
            TxProbe(
                crate::orm::diesel::tx_state(conn),
                crate::orm::diesel::identified_database_of(conn),
                crate::orm::diesel::cache_of(conn),
                crate::orm::diesel::relay_of(conn),
            )
        })
    }
}

/// State of a Diesel connection: its querycache instrumentation, or its transaction manager.
#[cfg(feature = "diesel")]
pub trait ViaDiesel {
    fn __querycache_tx_state(&self) -> TxProbe;
}

#[cfg(feature = "diesel")]
impl<C: diesel::Connection> ViaDiesel for &&ConnProbe<'_, C> {
    fn __querycache_tx_state(&self) -> TxProbe {
        self.state(|conn| {
            TxProbe(
                crate::orm::diesel::tx_state(conn),
                crate::orm::diesel::database_of(conn),
                crate::orm::diesel::cache_of(conn),
                crate::orm::diesel::relay_of(conn),
            )
        })
    }
}

/// State of a diesel-async connection: its querycache instrumentation, or its transaction
/// manager.
#[cfg(feature = "diesel-async")]
pub trait ViaDieselAsync {
    fn __querycache_tx_state(&self) -> TxProbe;
}

#[cfg(feature = "diesel-async")]
impl<C: diesel_async::AsyncConnection> ViaDieselAsync for &ConnProbe<'_, C> {
    fn __querycache_tx_state(&self) -> TxProbe {
        self.state(|conn| {
            TxProbe(
                crate::orm::diesel::async_tx_state(conn),
                crate::orm::diesel::async_database_of(conn),
                crate::orm::diesel::async_cache_of(conn),
                crate::orm::diesel::async_relay_of(conn),
            )
        })
    }
}

/// A diesel-async connection given to a cached `async fn`: its database, asked with one
/// query the first time (the probe of its state cannot await it).
pub struct AsyncConnProbe<'a, C: ?Sized>(std::cell::Cell<Option<&'a mut C>>);

impl<'a, C: ?Sized> AsyncConnProbe<'a, C> {
    pub fn new(conn: &'a mut C) -> Self {
        AsyncConnProbe(std::cell::Cell::new(Some(conn)))
    }
}

/// The database of a diesel-async connection that can load rows.
#[cfg(feature = "diesel-async")]
pub trait ViaDieselAsyncIdentify<'a> {
    fn __querycache_identify(&self) -> Identify<'a>;
}

/// What [`ViaAnyIdentify`] (and `ViaDieselAsyncIdentify`) return: nothing to ask (no
/// allocation on a hit's path), or the query to await.
pub enum Identify<'a> {
    Nothing,
    Ask(std::pin::Pin<Box<dyn Future<Output = Identified> + Send + 'a>>),
}

/// The database an async probe learnt, if any.
pub struct Identified(pub(crate) Option<CallDatabase>);

impl Future for Identify<'_> {
    type Output = Identified;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.get_mut() {
            Identify::Nothing => std::task::Poll::Ready(Identified(None)),
            Identify::Ask(ask) => ask.as_mut().poll(cx),
        }
    }
}

#[cfg(feature = "diesel-async")]
impl<'a, C> ViaDieselAsyncIdentify<'a> for &AsyncConnProbe<'a, C>
where
    C: diesel_async::AsyncConnection + Send,
    for<'q> diesel::query_builder::SqlQuery:
        diesel_async::methods::LoadQuery<'q, C, crate::orm::diesel::Identity>,
{
    fn __querycache_identify(&self) -> Identify<'a> {
        let Some(conn) = self.0.take() else {
            return Identify::Nothing;
        };
        if crate::orm::diesel::async_database_known(&mut *conn) {
            return Identify::Nothing;
        }
        Identify::Ask(Box::pin(async move {
            Identified(crate::orm::diesel::identified_async_database_of(conn).await)
        }))
    }
}

/// Any other connection: nothing to ask.
pub trait ViaAnyIdentify<'a> {
    fn __querycache_identify(&self) -> Identify<'a>;
}

impl<'a, C: ?Sized> ViaAnyIdentify<'a> for AsyncConnProbe<'a, C> {
    fn __querycache_identify(&self) -> Identify<'a> {
        Identify::Nothing
    }
}

/// State of any other connection type (SeaORM's, by type).
pub trait ViaRef {
    fn __querycache_tx_state(&self) -> TxProbe;
}

impl<C: ?Sized> ViaRef for ConnProbe<'_, C> {
    fn __querycache_tx_state(&self) -> TxProbe {
        self.state(|conn| TxProbe::of::<C>(conn))
    }
}

/// The SQL name of a Diesel table type, for `#[derive(CacheModel)]` with
/// `#[diesel(table_name = ..)]`. Tables declared in a schema do not implement it.
#[cfg(feature = "diesel")]
pub trait DieselTableName {
    const NAME: &'static str;
}

#[cfg(feature = "diesel")]
impl<T> DieselTableName for T
where
    T: diesel::Table
        + diesel::internal::table_macro::StaticQueryFragment<
            Component = diesel::internal::table_macro::Identifier<'static>,
        >,
{
    const NAME: &'static str = T::STATIC_COMPONENT.0;
}

/// Table of a Diesel table type (`songs::table`), unqualified (a table declared in a
/// schema names itself through [`CacheModel`] instead).
#[cfg(feature = "diesel")]
pub trait ViaDieselTable {
    fn __querycache_table(&self) -> String;
}

#[cfg(feature = "diesel")]
impl<T: DieselTableName> ViaDieselTable for ModelProbe<T> {
    fn __querycache_table(&self) -> String {
        crate::tags::table_key(None, T::NAME)
    }
}

/// Table of a type implementing [`CacheModel`].
pub trait ViaCacheModel {
    fn __querycache_table(&self) -> String;
}

impl<M: CacheModel + ?Sized> ViaCacheModel for &ModelProbe<M> {
    fn __querycache_table(&self) -> String {
        crate::tags::table_key(M::SCHEMA, M::TABLE)
    }
}

/// Table of a SeaORM entity.
#[cfg(feature = "sea-orm")]
pub trait ViaSeaOrm {
    fn __querycache_table(&self) -> String;
}

#[cfg(feature = "sea-orm")]
impl<E: sea_orm::EntityTrait> ViaSeaOrm for ModelProbe<E> {
    fn __querycache_table(&self) -> String {
        let entity = E::default();
        crate::tags::table_key(
            sea_orm::EntityName::schema_name(&entity),
            sea_orm::EntityName::table_name(&entity),
        )
    }
}
