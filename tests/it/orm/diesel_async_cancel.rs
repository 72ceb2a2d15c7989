//! diesel-async: a write, a transaction's COMMIT or a savepoint's RELEASE whose future is
//! dropped (`tokio::time::timeout`, an aborted handler) may still complete in the database.
//! The connection's instrumentation never sees that statement finish; an unknown outcome
//! must invalidate. Each test cuts the same write off at growing timeouts (0, 25, 50 .. µs,
//! until it completes within one), drops the connection as a pool would, waits until the
//! database shows the write (or until it clearly never happened), and checks that a cached
//! read started afterwards returns what the database holds.

use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use querycache::orm::diesel::CacheInstrumentation;

use super::DB;
use crate::support::diesel::reads::song_title;
use crate::support::diesel::schema::songs;
use crate::support::diesel::{AnyConnection, DieselDb, with_async_conn};

/// Where the cut-off write sits.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A plain autocommit `UPDATE`.
    Plain,
    /// An `UPDATE` in `transaction(..)`: cut off anywhere up to its COMMIT.
    Commit,
    /// An `UPDATE` in a nested `transaction(..)` (a savepoint) inside another.
    Release,
}

/// The write of `kind` on `$conn`, setting song `$id`'s title to `$title`.
macro_rules! write {
    ($conn:expr, $kind:expr, $id:expr, $title:expr) => {{
        let (id, title) = ($id, $title);
        macro_rules! update {
            ($c:expr) => {
                diesel::update(songs::table.find(id))
                    .set(songs::title.eq(title))
                    .execute($c)
                    .await
                    .map(drop)
            };
        }
        match $kind {
            Kind::Plain => update!($conn),
            Kind::Commit => {
                $conn
                    .transaction::<_, diesel::result::Error, _>(async |conn| update!(conn))
                    .await
            }
            Kind::Release => {
                $conn
                    .transaction::<_, diesel::result::Error, _>(async |conn| {
                        conn.transaction::<_, diesel::result::Error, _>(async |inner| {
                            update!(inner)
                        })
                        .await
                    })
                    .await
            }
        }
    }};
}

/// Song `id`'s title as the database has it now.
fn stored(raw: &mut AnyConnection, id: i32) -> String {
    diesel::RunQueryDsl::first(songs::table.find(id).select(songs::title), raw)
        .expect("read the database")
}

/// Polls until the database shows `title` for `id` (true) or `within` has passed (false).
async fn shows(raw: &mut AnyConnection, id: i32, title: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if stored(raw, id) == title {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn cut_off_at_growing_timeouts(kind: Kind) {
    let Some(t) = DieselDb::new(DB) else { return };
    let cache = t.cache.clone();
    let (mut reader, mut raw) = (t.conn(), t.raw());
    let id = {
        let author = t.user(&mut raw, "ann");
        t.song(&mut raw, author, "T")
    };
    let runs = AtomicUsize::new(0);
    let mut cut = 0;
    for step in 0u64..4000 {
        let title = format!("T{step}");
        // The cache holds the title the database holds.
        let before = song_title(&cache, &runs, &mut reader, id).expect("read");
        assert_eq!(before.as_deref(), Some(stored(&mut raw, id).as_str()));
        let budget = Duration::from_micros(step * 25);
        let done = with_async_conn!(DB, t.url, |conn: Conn| {
            conn.set_instrumentation(CacheInstrumentation::new(cache.clone()));
            let done = tokio::time::timeout(budget, async {
                write!(&mut conn, kind, id, title.as_str())
            })
            .await;
            // A pool drops a connection whose future was cut off.
            drop(conn);
            done
        });
        let completed = matches!(done, Ok(Ok(())));
        let within = if completed { 5_000 } else { 300 };
        let applied = shows(&mut raw, id, &title, Duration::from_millis(within)).await;
        assert!(
            !completed || applied,
            "a completed write is in the database"
        );
        if applied && !completed {
            cut += 1;
        }
        let after = song_title(&cache, &runs, &mut reader, id).expect("read");
        assert_eq!(
            after.as_deref(),
            Some(stored(&mut raw, id).as_str()),
            "{kind:?} cut off after {budget:?}: a read started after the database showed \
             the write returns it"
        );
        if completed {
            eprintln!("{kind:?}: {cut} writes cut off and applied before step {step}");
            return;
        }
    }
    panic!("{kind:?}: the write never completed within its timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_plain_write_that_completes_is_invalidated() {
    cut_off_at_growing_timeouts(Kind::Plain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_commit_that_completes_is_invalidated() {
    cut_off_at_growing_timeouts(Kind::Commit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_savepoint_release_and_commit_is_invalidated() {
    cut_off_at_growing_timeouts(Kind::Release).await;
}
