//! Which database a Diesel connection talks to, learnt once with the query SeaORM's
//! connections send (`orm::identity`): the first time a cached call is given the
//! connection, or when [`identify`](super::identify) is called. Connections established
//! while [`install_default`](super::install_default) is in force share the answer with
//! every other connection to the same URL (a pool's connections learn it once).

use std::sync::Arc;

use diesel::QueryableByName;
use diesel::connection::LoadConnection;
use diesel::query_builder::SqlQuery;
use diesel::query_dsl::LoadQuery;

use super::instrumentation_mut;
use crate::Cache;
use crate::cache::databases::{CallDatabase, DatabaseId, Fingerprint, SettleDatabase, Settling};
use crate::orm::catalog::Catalog;
use crate::orm::identity::Dialect;

/// The row of the query a connection sends to learn which database it talks to (see
/// [`identify`]); it appears in the bounds of [`identify`] only.
///
/// ```
/// fn identity_row_is_loadable<DB: diesel::backend::Backend>()
/// where
///     querycache::orm::diesel::Identity: diesel::QueryableByName<DB>,
///     Option<String>: diesel::deserialize::FromSql<
///         diesel::sql_types::Nullable<diesel::sql_types::Text>,
///         DB,
///     >,
/// {
/// }
/// identity_row_is_loadable::<diesel::sqlite::Sqlite>();
/// ```
#[derive(Debug, QueryableByName)]
pub struct Identity {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    identity: Option<String>,
}

/// The dialect of Diesel backend `DB`, by its type (`diesel::pg::Pg`, `..::Sqlite`,
/// `..::Mysql`, and Diesel 2.4's `..::Mariadb`): querycache is built without Diesel's backend
/// features, so it cannot name the types themselves.
fn dialect_of<DB>() -> Option<Dialect> {
    match std::any::type_name::<DB>().rsplit("::").next() {
        Some("Pg") => Some(Dialect::Postgres),
        Some("Sqlite") => Some(Dialect::Sqlite),
        Some("Mysql" | "Mariadb") => Some(Dialect::MySql),
        _ => None,
    }
}

/// A connection whose fingerprint is known: settling its namespace asks the cache (and,
/// on a shared store, Redis, which records the default database).
struct Known {
    cache: Cache,
    id: Arc<DatabaseId>,
    fingerprint: Fingerprint,
}

impl SettleDatabase for Known {
    fn settle(&self) -> Settling {
        let (cache, id, fingerprint) = (
            self.cache.clone(),
            Arc::clone(&self.id),
            self.fingerprint.clone(),
        );
        Box::pin(async move {
            let namespace = cache.database_namespace(fingerprint).await?;
            Some(id.settle(namespace).clone())
        })
    }
}

/// What an instrumented connection knows of its database: its id, and how to settle it
/// from `answer` to the identity query (`None`: no answer, the query failed).
fn call_database(
    cache: Cache,
    id: Arc<DatabaseId>,
    fingerprint: Option<Fingerprint>,
) -> CallDatabase {
    let settle = fingerprint.map(|fingerprint| {
        Arc::new(Known {
            cache,
            id: Arc::clone(&id),
            fingerprint,
        }) as Arc<dyn SettleDatabase>
    });
    CallDatabase { id, settle }
}

/// What an instrumented connection whose database is not known yet needs to learn it.
struct Parts {
    cache: Cache,
    id: Arc<DatabaseId>,
    wrapper: u64,
}

impl Parts {
    /// `None`: not querycache's instrumentation; `Ok`: the database is known already.
    fn of(
        instrumentation: &mut dyn diesel::connection::Instrumentation,
    ) -> Option<Result<CallDatabase, Parts>> {
        let ours = instrumentation_mut(instrumentation)?;
        let id = Arc::clone(&ours.database);
        if id.get().is_some() {
            return Some(Ok(CallDatabase { id, settle: None }));
        }
        Some(Err(Parts {
            cache: ours.cache.clone(),
            id,
            wrapper: ours.wrapper,
        }))
    }

    /// The connection's database, from the identity query's `answer`.
    fn answered(self, answer: diesel::QueryResult<Option<Fingerprint>>) -> CallDatabase {
        let fingerprint = answer.unwrap_or_else(|error| {
            tracing::warn!(
                %error,
                "cannot learn which database this Diesel connection talks to; its cached calls \
                 run uncached until it can"
            );
            None
        });
        call_database(self.cache, self.id, fingerprint)
    }
}

/// The database of a Diesel connection given to a cached call: when it is not known yet,
/// the identity query is sent now, on this thread (the call is about to use the
/// connection anyway).
pub(crate) fn identified_database_of<C>(conn: &mut C) -> Option<CallDatabase>
where
    C: LoadConnection,
    for<'a> SqlQuery: LoadQuery<'a, C, Identity>,
{
    let database = match Parts::of(conn.instrumentation())? {
        Ok(known) => known,
        Err(parts) => {
            let outside = outside_transactions(conn);
            let answer = ask(conn, parts.wrapper, outside);
            parts.answered(answer)
        }
    };
    learn_keys(conn, &database.id);
    Some(database)
}

/// Asks the catalog for the primary keys and relations of the database's tables, when they
/// were never asked for or a table the last answer did not list was named since (see
/// `orm::catalog`); only outside any transaction, as the identity query. A failure is
/// logged and answers nothing: every key is then guessed, and every write invalidates every model tag.
fn learn_keys<C>(conn: &mut C, id: &DatabaseId)
where
    C: LoadConnection,
    for<'a> SqlQuery: LoadQuery<'a, C, Identity>,
{
    use diesel::RunQueryDsl;

    if !id.catalog.wanted() {
        return;
    }
    let outside = outside_transactions(conn);
    let mut last = None;
    for &dialect in dialects::<C::Backend>(outside) {
        match diesel::sql_query(dialect.catalog_sql()).load::<Identity>(conn) {
            Ok(rows) => return install_keys(id, dialect, rows),
            Err(error) => last = Some(error),
        }
    }
    if let Some(error) = last {
        keys_unreadable(id, &error);
    }
}

/// The dialects to try for backend `DB`, only outside any transaction (a query that fails
/// would abort the caller's PostgreSQL transaction; a cached call inside one runs uncached
/// until the connection is asked outside): its own; for a backend querycache cannot name
/// (Diesel's `MultiConnection`), each in turn (each query fails on the other dialects).
fn dialects<DB>(outside_transactions: bool) -> &'static [Dialect] {
    if !outside_transactions {
        return &[];
    }
    match dialect_of::<DB>() {
        Some(Dialect::Postgres) => &[Dialect::Postgres],
        Some(Dialect::Sqlite) => &[Dialect::Sqlite],
        Some(Dialect::MySql) => &[Dialect::MySql],
        None => &[Dialect::Postgres, Dialect::Sqlite, Dialect::MySql],
    }
}

/// Sends the identity query; `Ok(None)`: it cannot be sent now (inside a transaction).
fn ask<C>(conn: &mut C, wrapper: u64, outside: bool) -> diesel::QueryResult<Option<Fingerprint>>
where
    C: LoadConnection,
    for<'a> SqlQuery: LoadQuery<'a, C, Identity>,
{
    use diesel::RunQueryDsl;

    let mut last = None;
    for dialect in dialects::<C::Backend>(outside) {
        match diesel::sql_query(dialect.identity_sql()).get_result::<Identity>(conn) {
            Ok(row) => return Ok(Some(dialect.fingerprint(row.identity, wrapper))),
            Err(error) => last = Some(error),
        }
    }
    last.map_or(Ok(None), Err)
}

/// Whether `conn` is outside any transaction, as Diesel and the instrumentation see it.
fn outside_transactions<C: diesel::Connection>(conn: &mut C) -> bool {
    use diesel::connection::TransactionManager;

    let diesel_depth =
        <C::TransactionManager as TransactionManager<C>>::transaction_manager_status_mut(conn)
            .transaction_depth();
    matches!(diesel_depth, Ok(None))
        && instrumentation_mut(conn.instrumentation()).is_some_and(|ours| ours.outside_levels())
}

/// Learns the database of an instrumented connection now (one query), rather than at the
/// first cached call given the connection. Until its database is known, a connection's
/// writes invalidate the written tables' entries in every database the cache serves (more
/// than needed, never less): a connection that writes before any cached call is given it,
/// in an application whose cache serves several databases, is better identified (or
/// named).
///
/// Returns whether the connection's database is known now: `false` when the connection has
/// no [`CacheInstrumentation`](super::CacheInstrumentation), when it is inside a
/// transaction (the query is only sent outside one, where its failure cannot abort
/// anything), or when a store shared with other processes (Redis) cannot say yet which
/// database is their default one.
///
/// ```
/// use diesel::{Connection, SqliteConnection};
/// use querycache::{Cache, orm::diesel::{CacheInstrumentation, identify}};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut conn = SqliteConnection::establish(":memory:")?;
/// conn.set_instrumentation(CacheInstrumentation::new(Cache::new()));
/// assert!(identify(&mut conn)?);
/// # Ok(()) }
/// ```
///
/// # Errors
/// The identity query's error (for a backend querycache cannot name, Diesel's
/// `MultiConnection`, the last dialect's error).
pub fn identify<C>(conn: &mut C) -> diesel::QueryResult<bool>
where
    C: LoadConnection,
    for<'a> SqlQuery: LoadQuery<'a, C, Identity>,
{
    let parts = match Parts::of(conn.instrumentation()) {
        None => return Ok(false),
        Some(Ok(known)) => {
            learn_keys(conn, &known.id);
            return Ok(true);
        }
        Some(Err(parts)) => parts,
    };
    learn_keys(conn, &parts.id);
    let outside = outside_transactions(conn);
    let fingerprint = ask(conn, parts.wrapper, outside)?;
    let CallDatabase { settle, .. } = call_database(parts.cache, parts.id, fingerprint);
    let Some(settle) = settle else {
        return Ok(false);
    };
    let settled = crate::runtime::Bridge::current().wait(settle.settle());
    Ok(settled.is_some())
}

/// [`identified_database_of`] for a diesel-async connection: the identity query is awaited.
#[cfg(feature = "diesel-async")]
pub(crate) async fn identified_async_database_of<C>(conn: &mut C) -> Option<CallDatabase>
where
    C: diesel_async::AsyncConnection + Send,
    for<'a> SqlQuery: diesel_async::methods::LoadQuery<'a, C, Identity>,
{
    let database = match Parts::of(conn.instrumentation())? {
        Ok(known) => known,
        Err(parts) => {
            let outside = async_outside_transactions(conn);
            let answer = ask_async(conn, parts.wrapper, outside).await;
            parts.answered(answer)
        }
    };
    learn_keys_async(conn, &database.id).await;
    Some(database)
}

/// The catalog's answer, in `dialect`'s rows: the database's primary keys and relations
/// from now on.
fn install_keys(id: &DatabaseId, dialect: Dialect, rows: Vec<Identity>) {
    let rows = rows.into_iter().filter_map(|row| row.identity);
    id.catalog.install(Catalog::from_rows(dialect, rows));
}

/// No dialect's catalog query answered: logged, and from now on every key is guessed and
/// every write invalidates every model tag.
fn keys_unreadable(id: &DatabaseId, error: &diesel::result::Error) {
    tracing::warn!(
        %error,
        "cannot read this database's catalog; rows are pinned by a column named `id` only, \
         and every write invalidates every cached entry"
    );
    id.catalog.install(Catalog::default());
}

/// [`learn_keys`] for a diesel-async connection.
#[cfg(feature = "diesel-async")]
async fn learn_keys_async<C>(conn: &mut C, id: &DatabaseId)
where
    C: diesel_async::AsyncConnection + Send,
    for<'a> SqlQuery: diesel_async::methods::LoadQuery<'a, C, Identity>,
{
    use diesel_async::RunQueryDsl;

    if !id.catalog.wanted() {
        return;
    }
    let outside = async_outside_transactions(conn);
    let mut last = None;
    for &dialect in dialects::<C::Backend>(outside) {
        match diesel::sql_query(dialect.catalog_sql())
            .load::<Identity>(conn)
            .await
        {
            Ok(rows) => return install_keys(id, dialect, rows),
            Err(error) => last = Some(error),
        }
    }
    if let Some(error) = last {
        keys_unreadable(id, &error);
    }
}

#[cfg(feature = "diesel-async")]
async fn ask_async<C>(
    conn: &mut C,
    wrapper: u64,
    outside: bool,
) -> diesel::QueryResult<Option<Fingerprint>>
where
    C: diesel_async::AsyncConnection + Send,
    for<'a> SqlQuery: diesel_async::methods::LoadQuery<'a, C, Identity>,
{
    use diesel_async::RunQueryDsl;

    let mut last = None;
    for dialect in dialects::<C::Backend>(outside) {
        match diesel::sql_query(dialect.identity_sql())
            .get_result::<Identity>(conn)
            .await
        {
            Ok(row) => return Ok(Some(dialect.fingerprint(row.identity, wrapper))),
            Err(error) => last = Some(error),
        }
    }
    last.map_or(Ok(None), Err)
}

#[cfg(feature = "diesel-async")]
fn async_outside_transactions<C: diesel_async::AsyncConnection>(conn: &mut C) -> bool {
    use diesel_async::TransactionManager;

    let diesel_depth =
        <C::TransactionManager as TransactionManager<C>>::transaction_manager_status_mut(conn)
            .transaction_depth();
    matches!(diesel_depth, Ok(None))
        && instrumentation_mut(conn.instrumentation()).is_some_and(|ours| ours.outside_levels())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_are_told_by_their_type() {
        assert_eq!(
            dialect_of::<diesel::sqlite::Sqlite>(),
            Some(Dialect::Sqlite)
        );
        assert_eq!(dialect_of::<diesel::pg::Pg>(), Some(Dialect::Postgres));
        assert_eq!(dialect_of::<diesel::mysql::Mysql>(), Some(Dialect::MySql));
        // Diesel 2.4's `diesel::mysql::Mariadb` (feature `mariadb_backend`), by its name.
        struct Mariadb;
        assert_eq!(dialect_of::<Mariadb>(), Some(Dialect::MySql));
        assert_eq!(dialect_of::<u8>(), None);
    }
}
