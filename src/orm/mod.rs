//! ORM integrations: each sees every statement an application runs through it and turns
//! writes into tag invalidations.
//!
//! | ORM | module | feature |
//! | --- | --- | --- |
//! | SeaORM 2.0 | [`sea_orm`] | `sea-orm` |
//! | Diesel 2.3 | [`diesel`] | `diesel` |
//!
//! Both read statements with the SQL classifier, the [`querycache_sql`] crate (`sql/` in this
//! workspace, no dependency on querycache): what a text writes ([`querycache_sql::classify`],
//! tables as names and rows as id strings, turned into tags by `written`), whether it takes
//! row locks ([`querycache_sql::locks`]), and where it begins or ends a transaction
//! ([`querycache_sql::transaction_walk`]); and what a text reads ([`querycache_sql::reads`],
//! turned into the tags a computation that sent it depends on by `observed`).

#[cfg(any(feature = "sea-orm", feature = "diesel"))]
pub(crate) mod catalog;
#[cfg(feature = "diesel")]
pub mod diesel;
#[cfg(any(feature = "sea-orm", feature = "diesel", feature = "feed-mysql"))]
pub(crate) mod identity;
#[cfg(any(feature = "sea-orm", feature = "diesel"))]
pub(crate) mod observed;
pub(crate) mod probes;
#[cfg(feature = "sea-orm")]
pub(crate) mod replica;
#[cfg(feature = "sea-orm")]
pub mod sea_orm;
pub(crate) mod write;
#[cfg(any(feature = "sea-orm", feature = "diesel"))]
pub(crate) mod written;

use std::sync::Arc;

use crate::cache::databases::CallDatabase;
use crate::orm::write::PendingWrites;

/// Marks the cached computation running here uncacheable when `sql` is a locking read
/// (`SELECT .. FOR UPDATE`, see [`querycache_sql::locks`]): its lock is its point, so its result must
/// never be served from the cache. Outside a computation (a hit sends no statement, a
/// call in a transaction or a bypass stores nothing) it costs one thread-local read.
#[cfg(any(feature = "sea-orm", feature = "diesel"))]
pub(crate) fn note_locking_read(sql: &str) {
    if crate::store::in_computation() && querycache_sql::locks(sql) {
        tracing::debug!(
            sql,
            "locking read in a cached computation: its value is returned, not cached"
        );
        crate::store::mark_uncacheable();
    }
}

/// Marks the cached computation running here uncacheable when it reads inside a
/// transaction: the value may hold the transaction's uncommitted writes (gone if it rolls
/// back), and under `REPEATABLE READ` or `SERIALIZABLE` it reads a database snapshot older
/// than the tag versions read before the statement, so neither could be depended on. (A
/// `#[cached_query]` called with a transaction never computes into the cache; this is for
/// `Cache::get_or_compute` and its kin around code that reads through a transaction.)
#[cfg(any(feature = "sea-orm", feature = "diesel"))]
pub(crate) fn note_read_in_transaction(sql: &str) {
    if crate::store::in_computation() {
        tracing::debug!(
            sql,
            "read inside a transaction in a cached computation: its value is returned, not cached"
        );
        crate::store::mark_uncacheable();
    }
}

/// What a connection argument of a cached call says about transactions.
#[cfg_attr(not(any(feature = "sea-orm", feature = "diesel")), allow(dead_code))]
pub(crate) enum TxState {
    /// Not a transaction (a pool, a plain connection, or a type querycache does not know).
    None,
    /// A transaction whose writes querycache records.
    Tracked(Arc<PendingWrites>),
    /// A transaction querycache cannot see into (a plain `sea_orm::DatabaseTransaction`).
    Untracked,
}

/// Where a cached call with the connection argument `conn` (its only one, taken by shared
/// reference) finds its hits, when that needs none of the call's set-up: `Some(Some(cache))`
/// the connection's own cache, `Some(None)` the function's (the connection is not one of
/// ours); `None` when only the call can tell (a transaction, a database not settled yet or
/// other than the cache's default).
pub(crate) fn quick_read<C: ?Sized>(conn: &C) -> Option<Option<&crate::Cache>> {
    #[cfg(feature = "sea-orm")]
    {
        sea_orm::quick_read(conn)
    }
    #[cfg(not(feature = "sea-orm"))]
    {
        let _ = conn;
        Some(None)
    }
}

/// Inspects a connection argument of a cached call.
pub(crate) fn transaction_state<C: ?Sized>(conn: &C) -> TxState {
    #[cfg(feature = "sea-orm")]
    {
        sea_orm::transaction_state(conn)
    }
    #[cfg(not(feature = "sea-orm"))]
    {
        let _ = conn;
        TxState::None
    }
}

/// The cache a connection argument of a cached call invalidates, when it is one of ours.
pub(crate) fn cache_of<C: ?Sized>(conn: &C) -> Option<crate::Cache> {
    #[cfg(feature = "sea-orm")]
    {
        sea_orm::cache_of(conn)
    }
    #[cfg(not(feature = "sea-orm"))]
    {
        let _ = conn;
        None
    }
}

/// The database of a connection argument of a cached call, when the connection knows it.
pub(crate) fn database_of<C: ?Sized>(conn: &C) -> Option<CallDatabase> {
    #[cfg(feature = "sea-orm")]
    {
        sea_orm::database_of(conn)
    }
    #[cfg(not(feature = "sea-orm"))]
    {
        let _ = conn;
        None
    }
}
