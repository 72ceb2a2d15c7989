//! Locking reads are never answered from the cache, nor stored (issue 18, item 3): a cached
//! function whose query takes row locks (`lock_exclusive()`, `FOR UPDATE`), called once
//! outside a transaction, must still send its query — and so take its lock — inside one.
//!
//! On PostgreSQL and MariaDB the lock itself is checked: while the transaction is open,
//! another connection's `UPDATE` of the row gives up after `lock_timeout` (MariaDB:
//! `innodb_lock_wait_timeout`, one second). SQLite has no row locks
//! (SeaORM leaves the clause out there, so the same function is an ordinary read and is
//! cached); there the mechanism is checked with text that MySQL would lock with and SQLite
//! runs as a plain read (`/*! FOR UPDATE */`: code to MySQL, a comment to SQLite — the
//! classifier unions the dialects, so it counts as locking).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use querycache::orm::sea_orm::CachedConnection;
use querycache::{Cache, cached_query};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, QuerySelect, TransactionTrait};

use super::DB;
use crate::support::diesel::{AnyConnection, DieselDb};
use crate::support::{Db, TestDb, song, until};

/// A song's title, read with `SELECT .. FOR UPDATE` (PostgreSQL; SQLite: see the module
/// docs).
#[cached_query(cache = cache, models = [song::Entity], row = id)]
async fn locked_title<C: ConnectionTrait>(
    #[cache_skip] cache: &Cache,
    #[cache_skip] runs: &AtomicUsize,
    conn: &C,
    id: i32,
) -> Result<Option<String>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    if conn.get_database_backend() == sea_orm::DbBackend::Sqlite {
        let row = conn
            .query_one_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DbBackend::Sqlite,
                "SELECT title FROM songs WHERE id = ? /*! FOR UPDATE */",
                [id.into()],
            ))
            .await?;
        return row.map(|r| r.try_get_by_index::<String>(0)).transpose();
    }
    Ok(song::Entity::find_by_id(id)
        .lock_exclusive()
        .one(conn)
        .await?
        .map(|s| s.title))
}

/// Whether another connection's `UPDATE` of song `id` is blocked (PostgreSQL: it fails
/// after a 200 ms `lock_timeout`; MariaDB: after a 1 s `innodb_lock_wait_timeout`).
async fn row_is_locked(t: &TestDb, id: i32) -> bool {
    let other = t.raw.begin().await.expect("begin on the other connection");
    let timeout = match t.kind {
        Db::MySql => "SET SESSION innodb_lock_wait_timeout = 1",
        Db::Postgres | Db::Sqlite => "SET LOCAL lock_timeout = '200ms'",
    };
    other
        .execute_unprepared(timeout)
        .await
        .expect("set the lock timeout");
    let update = other
        .execute_unprepared(&format!("UPDATE songs SET title = 'other' WHERE id = {id}"))
        .await;
    let _ = other.rollback().await;
    update.is_err()
}

async fn fixture() -> Option<(TestDb, i32)> {
    let t = TestDb::fresh(DB).await?;
    let author = t.user("ann").await;
    let song = t.song(&author, "A").await;
    Some((t, song.id))
}

#[tokio::test]
async fn a_locking_read_cached_outside_a_transaction_still_locks_inside_one() {
    let Some((t, id)) = fixture().await else {
        return;
    };
    let runs = AtomicUsize::new(0);
    let db: &CachedConnection = &t.db;
    assert_eq!(
        locked_title(&t.cache, &runs, db, id)
            .await
            .unwrap()
            .as_deref(),
        Some("A")
    );
    let tx = db.begin().await.expect("begin");
    assert_eq!(
        locked_title(&t.cache, &runs, &tx, id)
            .await
            .unwrap()
            .as_deref(),
        Some("A")
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "inside the transaction the locking read ran again (it was not stored outside)"
    );
    if t.kind != Db::Sqlite {
        assert!(
            row_is_locked(&t, id).await,
            "the transaction holds the row lock its read asked for"
        );
    }
    tx.commit().await.expect("commit");
    // Never stored: every later call runs it again, in or out of a transaction.
    locked_title(&t.cache, &runs, db, id).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert_eq!(t.cache.stats().sets, 0, "a locking read is never stored");
}

#[tokio::test]
async fn an_entry_stored_before_the_computation_locked_is_removed_when_it_runs() {
    let Some((t, id)) = fixture().await else {
        return;
    };
    let key = "locking_reads::legacy";
    let options = querycache::EntryOptions::new()
        .ttl(Duration::from_millis(50))
        .swr(Duration::from_secs(60));
    // An earlier version of the code cached this key without locking.
    t.cache
        .set(key, Some("old".to_owned()), options.clone())
        .await
        .unwrap();
    until(
        Duration::from_secs(5),
        "the entry to go stale",
        async || t.cache.get::<Option<String>>(key).await.is_none(),
    )
    .await;
    assert_eq!(
        t.cache.stats().keys_count,
        1,
        "premise: kept, stale, to be refreshed"
    );
    // Stale within the swr window: served, and refreshed by the computation, which now locks.
    let runs = AtomicUsize::new(0);
    t.cache
        .get_or_compute(key, options, || locked_title_uncached(&t.db, &runs, id))
        .await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "premise: the refresh ran");
    assert_eq!(
        t.cache.stats().keys_count,
        0,
        "the old entry is gone (and nothing stored): the next call takes the lock"
    );
}

async fn locked_title_uncached(
    db: &CachedConnection,
    runs: &AtomicUsize,
    id: i32,
) -> Option<String> {
    runs.fetch_add(1, Ordering::SeqCst);
    let sql = if db.get_database_backend() == sea_orm::DbBackend::Sqlite {
        format!("SELECT title FROM songs WHERE id = {id} /*! FOR UPDATE */")
    } else {
        format!("SELECT title FROM songs WHERE id = {id} FOR UPDATE")
    };
    db.query_one_raw(sea_orm::Statement::from_string(
        db.get_database_backend(),
        sql,
    ))
    .await
    .expect("locking read")
    .and_then(|row| row.try_get_by_index::<String>(0).ok())
}

#[derive(QueryableByName)]
struct Title {
    #[diesel(sql_type = Text)]
    title: String,
}

/// Diesel: a song's title read with `FOR UPDATE` (SQLite: see the module docs).
#[cached_query(cache = cache, models = [crate::support::diesel::schema::songs::table], row = id)]
fn diesel_locked_title(
    #[cache_skip] cache: &Cache,
    #[cache_skip] runs: &AtomicUsize,
    #[cache_skip] db: Db,
    conn: &mut AnyConnection,
    id: i32,
) -> QueryResult<Option<String>> {
    runs.fetch_add(1, Ordering::SeqCst);
    let sql = match db {
        Db::Sqlite => "SELECT title FROM songs WHERE id = ? /*! FOR UPDATE */",
        Db::Postgres => "SELECT title FROM songs WHERE id = $1 FOR UPDATE",
        Db::MySql => "SELECT title FROM songs WHERE id = ? FOR UPDATE",
    };
    diesel::sql_query(sql)
        .bind::<Integer, _>(id)
        .load::<Title>(conn)
        .map(|rows| rows.into_iter().next().map(|r| r.title))
}

#[test]
fn diesel_a_locking_read_cached_outside_a_transaction_still_locks_inside_one() {
    let Some(t) = DieselDb::new(DB) else {
        return;
    };
    let mut conn = t.conn();
    let author = t.user(&mut conn, "ann");
    let id = t.song(&mut conn, author, "A");
    let runs = AtomicUsize::new(0);
    let first = diesel_locked_title(&t.cache, &runs, t.db, &mut conn, id).unwrap();
    assert_eq!(first.as_deref(), Some("A"));
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        let inside = diesel_locked_title(&t.cache, &runs, t.db, conn, id)?;
        assert_eq!(inside.as_deref(), Some("A"));
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "inside the transaction the locking read ran again"
        );
        if t.db != Db::Sqlite {
            let mut other = t.raw();
            let timeout = match t.db {
                Db::MySql => "SET SESSION innodb_lock_wait_timeout = 1",
                Db::Postgres | Db::Sqlite => "SET lock_timeout = '200ms'",
            };
            diesel::connection::SimpleConnection::batch_execute(&mut other, timeout)
                .expect("set the lock timeout");
            let update =
                diesel::sql_query(format!("UPDATE songs SET title = 'other' WHERE id = {id}"))
                    .execute(&mut other);
            assert!(update.is_err(), "the transaction holds the row lock");
        }
        Ok(())
    })
    .expect("transaction");
    diesel_locked_title(&t.cache, &runs, t.db, &mut conn, id).unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 3, "never stored");
}
