//! Writes whose callers stop waiting, on SQLite, PostgreSQL and MariaDB (`super::DB`): a
//! plain write, an insert, a COMMIT, a savepoint's release and a statement inside a
//! transaction are cut short at many points (right after their first poll, then at deadlines
//! of growing length, up to "after the write finished"), as a timeout, `select!` or a dropped
//! request would. The database finishes what it was sent; the cache must follow it: once the
//! write has finished in the background (`Health::writes_in_flight` back to 0), a cached read
//! equals the database.
//!
//! And explicit invalidations made on behalf of a transaction
//! (`CachedTransaction::invalidate_tags`) apply again after its COMMIT.

use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};

use super::DB;
use super::common::{Fixture, song_by_id, title};
use crate::support::{Db, cut_after, song, until};

/// Where the writes are cut after the first-poll rounds: at deadlines growing by half from
/// 20 µs to 200 ms (the loop stops early once writes finish within their deadline three times
/// in a row).
fn timeouts() -> impl Iterator<Item = Duration> {
    std::iter::successors(Some(20_u64), |&us| {
        let next = us + us / 2;
        (next <= 200_000).then_some(next)
    })
    .map(Duration::from_micros)
}

/// Rounds that cut right after the first poll: at least this many...
const FIRST_POLL_ROUNDS: usize = 8;
/// ...and more, up to this many, until one really cut the write short (a fast statement may
/// finish within its first poll: SQLite's worker thread can answer before the poll returns).
const FIRST_POLL_ROUNDS_MAX: usize = 400;

/// How long background work may take on a loaded machine.
const SETTLE: Duration = Duration::from_secs(30);

/// The title of song `id` in the database, read without the cache.
async fn stored_title(f: &Fixture, id: i32) -> Option<String> {
    song::Entity::find_by_id(id)
        .one(&f.t.raw)
        .await
        .expect("read the database")
        .map(|s| s.title)
}

/// Caches song A by id (and checks the entry is a hit), so that a write must invalidate it.
async fn cache_a(f: &Fixture) {
    song_by_id(&f.t.cache, f.db(), f.a.id).await;
    assert!(
        !song_by_id(&f.t.cache, f.db(), f.a.id).await.computed,
        "premise: song A's entry is a hit"
    );
}

/// Waits until nothing is finishing in the background and the database shows one of
/// `expected` for song A (the write cut short may have landed or not, as `expected` says);
/// then a cached read of song A must equal the database.
async fn settled_and_fresh(f: &Fixture, expected: &[&str], what: &str) {
    until(SETTLE, "background writes finished", async || {
        f.t.cache.health().await.writes_in_flight == 0
    })
    .await;
    let stored = stored_title(f, f.a.id).await;
    assert!(
        stored.as_deref().is_some_and(|t| expected.contains(&t)),
        "{what}: the database holds {stored:?}, expected one of {expected:?}"
    );
    let read = song_by_id(&f.t.cache, f.db(), f.a.id).await;
    assert_eq!(
        title(&read.value),
        stored.as_deref(),
        "{what}: a read after the write finished must see the database's row"
    );
}

fn retitle(id: i32, title: &str) -> sea_orm::UpdateMany<song::Entity> {
    song::Entity::update_many()
        .col_expr(song::Column::Title, Expr::value(title.to_owned()))
        .filter(song::Column::Id.eq(id))
}

/// Runs `round(i, timeout)`: first-poll rounds (`Duration::ZERO`), then each timeout until
/// three rounds in a row finished in time; `round` says whether its write finished within
/// its timeout. Checks that some rounds were really cut short.
async fn cut_at_growing_points(mut round: impl AsyncFnMut(usize, Duration) -> bool) {
    let (mut cut, mut in_time_in_a_row) = (0, 0);
    let mut i = 0;
    while i < FIRST_POLL_ROUNDS || (cut == 0 && i < FIRST_POLL_ROUNDS_MAX) {
        if !round(i, Duration::ZERO).await {
            cut += 1;
        }
        i += 1;
    }
    for timeout in timeouts() {
        if round(i, timeout).await {
            in_time_in_a_row += 1;
            if in_time_in_a_row >= 3 {
                break;
            }
        } else {
            cut += 1;
            in_time_in_a_row = 0;
        }
        i += 1;
    }
    assert!(
        cut > 0,
        "no write was cut short in {i} rounds: the test proves nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_write_cut_short_by_a_timeout_still_invalidates() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    cut_at_growing_points(async |i, timeout| {
        cache_a(&f).await;
        let new = format!("plain {i}");
        let done = cut_after(timeout, retitle(f.a.id, &new).exec(f.db())).await;
        // A timeout polls the write first: it was sent, so it lands.
        settled_and_fresh(&f, &[&new], &format!("update cut after {timeout:?}")).await;
        done.is_some()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_returning_cut_short_still_invalidates_the_list_and_the_new_row() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let mut next = f.b.id + 1;
    cut_at_growing_points(async |i, timeout| {
        // The absence of the next row is cached: the insert must invalidate it.
        let absent = song_by_id(&f.t.cache, f.db(), next).await;
        assert!(
            absent.value.is_none(),
            "premise: song {next} does not exist"
        );
        let insert = song::Entity::insert(f.new_song(&format!("new {i}"))).exec(f.db());
        let done = cut_after(timeout, insert).await;
        until(SETTLE, "background writes finished", async || {
            f.t.cache.health().await.writes_in_flight == 0
        })
        .await;
        let stored = stored_title(&f, next).await;
        assert_eq!(stored, Some(format!("new {i}")), "the insert landed");
        let read = song_by_id(&f.t.cache, f.db(), next).await;
        assert_eq!(
            title(&read.value),
            stored.as_deref(),
            "cut after {timeout:?}"
        );
        next += 1;
        done.is_some()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_cut_short_by_a_timeout_still_invalidates() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    cut_at_growing_points(async |i, timeout| {
        cache_a(&f).await;
        let new = format!("committed {i}");
        let tx = f.db().begin().await.expect("begin");
        retitle(f.a.id, &new).exec(&tx).await.expect("update");
        let done = cut_after(timeout, tx.commit()).await;
        settled_and_fresh(&f, &[&new], &format!("commit cut after {timeout:?}")).await;
        done.is_some()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_savepoint_release_cut_short_still_invalidates_at_the_outer_commit() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let mut before = "A".to_owned();
    cut_at_growing_points(async |i, timeout| {
        cache_a(&f).await;
        let new = format!("released {i}");
        let tx = f.db().begin().await.expect("begin");
        let savepoint = tx.begin().await.expect("savepoint");
        retitle(f.a.id, &new)
            .exec(&savepoint)
            .await
            .expect("update");
        let done = cut_after(timeout, savepoint.commit()).await;
        // A release cut short may have released the savepoint or rolled it back; the outer
        // COMMIT may fail after it. Whatever the database holds, the cache must follow.
        let _ = tx.commit().await;
        settled_and_fresh(
            &f,
            &[&new, &before],
            &format!("release cut after {timeout:?}"),
        )
        .await;
        before = stored_title(&f, f.a.id).await.expect("song A exists");
        done.is_some()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_cut_short_inside_a_transaction_is_invalidated_by_its_commit() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let mut before = "A".to_owned();
    cut_at_growing_points(async |i, timeout| {
        cache_a(&f).await;
        let new = format!("in transaction {i}");
        let tx = f.db().begin().await.expect("begin");
        let done = cut_after(timeout, retitle(f.a.id, &new).exec(&tx)).await;
        let _ = tx.commit().await;
        settled_and_fresh(
            &f,
            &[&new, &before],
            &format!("statement cut after {timeout:?}"),
        )
        .await;
        before = stored_title(&f, f.a.id).await.expect("song A exists");
        done.is_some()
    })
    .await;
}

/// A write the cache cannot see inside a transaction (on PostgreSQL and MySQL, a function
/// called from a `SELECT`; SQLite has no stored functions, and a write through another handle
/// of the same transaction is not possible, so the write goes through the unwrapped
/// transaction), invalidated on behalf of the transaction: another connection re-caching the
/// pre-commit row before COMMIT must not keep it past COMMIT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_on_behalf_of_a_transaction_applies_again_at_commit() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let function = match DB {
        Db::Postgres => Some(
            "CREATE FUNCTION archive_all() RETURNS integer LANGUAGE SQL \
             AS $$ UPDATE songs SET title = 'archived' RETURNING 1 $$",
        ),
        // Created before the transaction: DDL would commit it on MySQL.
        Db::MySql => Some(
            "CREATE FUNCTION archive_all() RETURNS INT MODIFIES SQL DATA BEGIN \
             UPDATE songs SET title = 'archived'; RETURN 1; END",
        ),
        Db::Sqlite => None,
    };
    if let Some(function) = function {
        f.t.raw
            .execute_unprepared(function)
            .await
            .expect("create function");
    }
    cache_a(&f).await;
    let tx = f.db().begin().await.expect("begin");
    match DB {
        Db::Postgres | Db::MySql => {
            tx.query_one_raw(DB.text("SELECT archive_all()"))
                .await
                .expect("the function writes");
        }
        Db::Sqlite => {
            // Unseen: sent through the transaction SeaORM holds, not through the wrapper.
            tx.inner()
                .execute_unprepared("UPDATE songs SET title = 'archived'")
                .await
                .expect("an unseen write");
        }
    }
    tx.invalidate_tags(querycache::Tag::table_write("songs"))
        .await;
    // Another connection still reads the committed row, and caches it again.
    let other = song_by_id(&f.t.cache, f.db(), f.a.id).await;
    assert_eq!(title(&other.value), Some("A"), "premise: not committed yet");
    assert!(
        !song_by_id(&f.t.cache, f.db(), f.a.id).await.computed,
        "premise: the pre-commit row is cached again"
    );
    tx.commit().await.expect("commit");
    let read = song_by_id(&f.t.cache, f.db(), f.a.id).await;
    assert_eq!(
        title(&read.value),
        Some("archived"),
        "after COMMIT, the invalidation made on behalf of the transaction applies again"
    );
}

/// A rolled-back transaction's explicit invalidation applies once (at once), not again.
#[tokio::test]
async fn an_invalidation_on_behalf_of_a_rolled_back_transaction_is_not_repeated() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    cache_a(&f).await;
    let tx = f.db().begin().await.expect("begin");
    tx.invalidate_tags(querycache::Tag::table_write("songs"))
        .await;
    assert!(
        song_by_id(&f.t.cache, f.db(), f.a.id).await.computed,
        "the first invalidation applies at once"
    );
    tx.rollback().await.expect("rollback");
    assert!(
        !song_by_id(&f.t.cache, f.db(), f.a.id).await.computed,
        "a rollback does not invalidate again"
    );
}

/// Statements cut short at many points, in transactions and on the pool, each hand their
/// connection back: on a pool of one connection, every round begins a transaction and
/// reads on the pool, so a single connection lost to a statement dropped half-way (sqlx's
/// MySQL driver waits forever for the answer to a command it never finished sending) makes
/// the next round time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_cut_short_give_their_connection_back_to_the_pool() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let pool = f.t.pool_of(1).await;
    let db = querycache::orm::sea_orm::CachedConnection::new(pool, f.t.cache.clone());
    let list = || song::Entity::find().order_by_asc(song::Column::Id);
    let (mut cut, mut rounds) = (0, 0);
    let mut round = async |timeout: Duration| {
        rounds += 1;
        let tx = tokio::time::timeout(SETTLE, db.begin())
            .await
            .unwrap_or_else(|_| panic!("round {rounds}: no connection within {SETTLE:?}"))
            .expect("begin");
        if cut_after(timeout, list().all(&tx)).await.is_none() {
            cut += 1;
        }
        if cut_after(timeout, retitle(f.a.id, "in a transaction").exec(&tx))
            .await
            .is_none()
        {
            cut += 1;
        }
        // A connection left half-way may never answer the ROLLBACK either.
        let rolled_back = tokio::time::timeout(SETTLE, tx.rollback()).await;
        assert!(
            rolled_back.is_ok(),
            "round {rounds}: no answer to ROLLBACK within {SETTLE:?}"
        );
        if cut_after(timeout, list().all(&db)).await.is_none() {
            cut += 1;
        }
    };
    for _ in 0..FIRST_POLL_ROUNDS {
        round(Duration::ZERO).await;
    }
    for timeout in timeouts().take_while(|t| *t < Duration::from_millis(5)) {
        round(timeout).await;
    }
    assert!(
        cut > 0,
        "no statement was cut short: the test proves nothing"
    );
    until(SETTLE, "background statements finished", async || {
        f.t.cache.health().await.writes_in_flight == 0
    })
    .await;
    let songs = tokio::time::timeout(SETTLE, list().all(&db))
        .await
        .unwrap_or_else(|_| panic!("after {rounds} rounds ({cut} cut short), no connection"))
        .expect("read");
    assert_eq!(
        songs.len(),
        2,
        "the rolled back title change left both songs"
    );
    assert_eq!(stored_title(&f, f.a.id).await.as_deref(), Some("A"));
}
