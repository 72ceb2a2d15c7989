//! diesel-async: the same `CacheInstrumentation` on an async connection
//! (`AsyncPgConnection` on PostgreSQL, `SyncConnectionWrapper<SqliteConnection>` on SQLite),
//! with `#[cached_query]` on `async fn`s taking `&mut` that connection. The instrumentation
//! runs inside the connection's future, on a tokio worker: the tests run on multi-thread and
//! on current-thread runtimes.

use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use querycache::orm::diesel::CacheInstrumentation;
use querycache::{Cache, cached_query};

use super::DB;
use crate::support::diesel::schema::{songs, users};
use crate::support::diesel::{DieselDb, with_async_conn};

/// Cached reads and writes through `$conn` (of type `$ty`): a miss, a hit, a write outside
/// a transaction, a committed transaction, a rolled-back one with a read inside it.
macro_rules! scenario {
    ($t:expr, $conn:ident, $ty:ident, $id:expr) => {{
        #[cached_query(cache = cache, models = [songs::table], row = id)]
        async fn title(
            #[cache_skip] cache: &Cache,
            #[cache_skip] runs: &AtomicUsize,
            conn: &mut $ty,
            id: i32,
        ) -> QueryResult<Option<String>> {
            runs.fetch_add(1, Ordering::SeqCst);
            songs::table
                .find(id)
                .select(songs::title)
                .first(conn)
                .await
                .optional()
        }

        let (cache, id, runs) = ($t.cache.clone(), $id, AtomicUsize::new(0));
        $conn.set_instrumentation(CacheInstrumentation::new(cache.clone()));
        let read = async |conn: &mut $ty| title(&cache, &runs, conn, id).await.unwrap();
        assert_eq!(read(&mut $conn).await.as_deref(), Some("A"));
        assert_eq!(read(&mut $conn).await.as_deref(), Some("A"));
        assert_eq!(AtomicUsize::load(&runs, Ordering::SeqCst), 1, "a hit");

        diesel::update(songs::table.find(id))
            .set(songs::title.eq("A2"))
            .execute(&mut $conn)
            .await
            .unwrap();
        assert_eq!(read(&mut $conn).await.as_deref(), Some("A2"));
        assert_eq!(
            AtomicUsize::load(&runs, Ordering::SeqCst),
            2,
            "the write invalidated it"
        );

        let invalidations = cache.stats().invalidations;
        $conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                diesel::update(songs::table.find(id))
                    .set(songs::title.eq("A3"))
                    .execute(conn)
                    .await?;
                assert_eq!(
                    cache.stats().invalidations,
                    invalidations,
                    "not before COMMIT"
                );
                Ok(())
            })
            .await
            .unwrap();
        assert!(cache.stats().invalidations > invalidations);
        assert_eq!(read(&mut $conn).await.as_deref(), Some("A3"));
        assert_eq!(AtomicUsize::load(&runs, Ordering::SeqCst), 3);

        let before = AtomicUsize::load(&runs, Ordering::SeqCst);
        let rolled_back = $conn
            .transaction::<(), diesel::result::Error, _>(async |conn| {
                diesel::update(songs::table.find(id))
                    .set(songs::title.eq("never"))
                    .execute(conn)
                    .await?;
                // Inside the transaction that wrote it: its own write, not the cache.
                let inside = title(&cache, &runs, conn, id).await?;
                assert_eq!(inside.as_deref(), Some("never"));
                Err(diesel::result::Error::RollbackTransaction)
            })
            .await;
        assert!(rolled_back.is_err());
        assert_eq!(
            AtomicUsize::load(&runs, Ordering::SeqCst),
            before + 1,
            "the read inside bypassed"
        );
        assert_eq!(
            read(&mut $conn).await.as_deref(),
            Some("A3"),
            "nothing uncommitted stored"
        );
        assert_eq!(
            AtomicUsize::load(&runs, Ordering::SeqCst),
            before + 1,
            "and the entry is still good"
        );
    }};
}

/// Observed dependencies through `$conn`: a join with nothing declared (the function uses
/// the connection's cache) is left by writes to a table it did not read or to another song,
/// and invalidated by a write to each table it read.
macro_rules! observed {
    ($t:expr, $conn:ident, $ty:ident, $a:expr, $b:expr, $author:expr) => {{
        #[cached_query(ttl = "1h")]
        async fn card(
            conn: &mut $ty,
            #[cache_skip] runs: &AtomicUsize,
            id: i32,
        ) -> QueryResult<Option<(String, String)>> {
            runs.fetch_add(1, Ordering::SeqCst);
            songs::table
                .inner_join(users::table)
                .filter(songs::id.eq(id))
                .select((songs::title, users::name))
                .first(conn)
                .await
                .optional()
        }

        let (a, b, author, runs) = ($a, $b, $author, AtomicUsize::new(0));
        $conn.set_instrumentation(CacheInstrumentation::new($t.cache.clone()));
        let ran = || AtomicUsize::load(&runs, Ordering::SeqCst);
        let card_of = |title: &str, name: &str| Some((title.to_owned(), name.to_owned()));
        assert_eq!(
            card(&mut $conn, &runs, a).await.unwrap(),
            card_of("A", "ann")
        );
        assert_eq!(
            card(&mut $conn, &runs, a).await.unwrap(),
            card_of("A", "ann")
        );
        assert_eq!(ran(), 1, "cached although nothing was declared");

        diesel::sql_query("INSERT INTO notes (id, body) VALUES (1, 'unrelated')")
            .execute(&mut $conn)
            .await
            .unwrap();
        assert_eq!(
            card(&mut $conn, &runs, a).await.unwrap(),
            card_of("A", "ann")
        );
        assert_eq!(ran(), 1, "left by a write to a table it did not read");
        diesel::update(songs::table.find(b))
            .set(songs::title.eq("B2"))
            .execute(&mut $conn)
            .await
            .unwrap();
        assert_eq!(
            card(&mut $conn, &runs, a).await.unwrap(),
            card_of("A", "ann")
        );
        assert_eq!(ran(), 1, "left by writes to what it did not read");

        diesel::update(users::table.find(author))
            .set(users::name.eq("anne"))
            .execute(&mut $conn)
            .await
            .unwrap();
        assert_eq!(
            card(&mut $conn, &runs, a).await.unwrap(),
            card_of("A", "anne")
        );
        assert_eq!(ran(), 2, "a write to the joined table invalidates it");

        diesel::update(songs::table.find(a))
            .set(songs::title.eq("A2"))
            .execute(&mut $conn)
            .await
            .unwrap();
        assert_eq!(
            card(&mut $conn, &runs, a).await.unwrap(),
            card_of("A2", "anne")
        );
        assert_eq!(ran(), 3, "a write to the song it read invalidates it");
        assert_eq!(
            card(&mut $conn, &runs, a).await.unwrap(),
            card_of("A2", "anne")
        );
        assert_eq!(ran(), 3);
    }};
}

/// A cached function calling another through `$conn`: the inner hit is used, and a write to
/// what only the inner function read invalidates the outer entry.
macro_rules! nested {
    ($t:expr, $conn:ident, $ty:ident, $a:expr, $author:expr) => {{
        #[cached_query(ttl = "1h")]
        async fn author_named(
            conn: &mut $ty,
            #[cache_skip] runs: &AtomicUsize,
            id: i32,
        ) -> QueryResult<Option<String>> {
            runs.fetch_add(1, Ordering::SeqCst);
            users::table
                .find(id)
                .select(users::name)
                .first(conn)
                .await
                .optional()
        }

        #[cached_query(ttl = "1h")]
        async fn song_and_author(
            conn: &mut $ty,
            #[cache_skip] runs: &AtomicUsize,
            #[cache_skip] inner_runs: &AtomicUsize,
            id: i32,
        ) -> QueryResult<Option<String>> {
            runs.fetch_add(1, Ordering::SeqCst);
            let Some((title, author)) = songs::table
                .find(id)
                .select((songs::title, songs::author_id))
                .first::<(String, i32)>(conn)
                .await
                .optional()?
            else {
                return Ok(None);
            };
            let name = author_named(conn, inner_runs, author)
                .await?
                .unwrap_or_default();
            Ok(Some(format!("{title} by {name}")))
        }

        let (a, author) = ($a, $author);
        let (runs, inner_runs) = (AtomicUsize::new(0), AtomicUsize::new(0));
        $conn.set_instrumentation(CacheInstrumentation::new($t.cache.clone()));
        let ran = || {
            (
                AtomicUsize::load(&runs, Ordering::SeqCst),
                AtomicUsize::load(&inner_runs, Ordering::SeqCst),
            )
        };
        let name = author_named(&mut $conn, &inner_runs, author).await.unwrap();
        assert_eq!(name.as_deref(), Some("ann"));
        for _ in 0..2 {
            let card = song_and_author(&mut $conn, &runs, &inner_runs, a)
                .await
                .unwrap();
            assert_eq!(card.as_deref(), Some("A by ann"));
        }
        assert_eq!(ran(), (1, 1), "the outer computation used the inner hit");
        diesel::update(users::table.find(author))
            .set(users::name.eq("anne"))
            .execute(&mut $conn)
            .await
            .unwrap();
        let card = song_and_author(&mut $conn, &runs, &inner_runs, a)
            .await
            .unwrap();
        assert_eq!(card.as_deref(), Some("A by anne"));
        assert_eq!(ran(), (2, 2), "a write to what only the inner one read");
    }};
}

async fn run_nested() {
    let Some(t) = DieselDb::new(DB) else { return };
    let (a, author) = {
        let mut sync = t.conn();
        let author = t.user(&mut sync, "ann");
        (t.song(&mut sync, author, "A"), author)
    };
    with_async_conn!(DB, t.url, |conn: DbConnection| nested!(
        t,
        conn,
        DbConnection,
        a,
        author
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_cached_calls_on_a_multi_thread_runtime() {
    run_nested().await;
}

#[tokio::test]
async fn nested_cached_calls_on_a_current_thread_runtime() {
    run_nested().await;
}

async fn run_observed() {
    let Some(t) = DieselDb::new(DB) else { return };
    let (a, b, author) = {
        let mut sync = t.conn();
        diesel::connection::SimpleConnection::batch_execute(
            &mut sync,
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
        )
        .unwrap();
        let author = t.user(&mut sync, "ann");
        (
            t.song(&mut sync, author, "A"),
            t.song(&mut sync, author, "B"),
            author,
        )
    };
    with_async_conn!(DB, t.url, |conn: DbConnection| observed!(
        t,
        conn,
        DbConnection,
        a,
        b,
        author
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observed_reads_on_a_multi_thread_runtime() {
    run_observed().await;
}

#[tokio::test]
async fn observed_reads_on_a_current_thread_runtime() {
    run_observed().await;
}

async fn run() {
    let Some(t) = DieselDb::new(DB) else { return };
    let id = {
        let mut sync = t.conn();
        let author = t.user(&mut sync, "ann");
        t.song(&mut sync, author, "A")
    };
    with_async_conn!(DB, t.url, |conn: DbConnection| scenario!(
        t,
        conn,
        DbConnection,
        id
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diesel_async_on_a_multi_thread_runtime() {
    run().await;
}

#[tokio::test]
async fn diesel_async_on_a_current_thread_runtime() {
    run().await;
}
