//! A `#[cached_query]` plain `fn` wherever Diesel's sync API gets called: a plain thread
//! with no runtime, a multi-thread runtime's worker (by mistake), `spawn_blocking`, a
//! current-thread runtime; on the memory store and on the Redis-backed stores (which need a
//! runtime to talk to Redis: querycache brings its own when the caller has none).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use diesel::prelude::*;

use super::DB;
use crate::support::diesel::reads::song_title as title;
use crate::support::diesel::schema::songs;
use crate::support::diesel::{AnyConnection, DieselDb};
use crate::support::stores::{self, Kind};

/// Miss, hit, write, miss with the new value: the whole cycle on this thread.
fn cycle(t: &DieselDb, conn: &mut AnyConnection, id: i32) {
    let runs = AtomicUsize::new(0);
    let cache = &t.cache;
    assert_eq!(title(cache, &runs, conn, id).unwrap().as_deref(), Some("A"));
    assert_eq!(title(cache, &runs, conn, id).unwrap().as_deref(), Some("A"));
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the second call is a hit");
    diesel::update(songs::table.find(id))
        .set(songs::title.eq("A2"))
        .execute(conn)
        .unwrap();
    assert_eq!(
        title(cache, &runs, conn, id).unwrap().as_deref(),
        Some("A2")
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2, "the write invalidated it");
    diesel::update(songs::table.find(id))
        .set(songs::title.eq("A"))
        .execute(conn)
        .unwrap();
}

fn fixture(kind: Kind) -> Option<(DieselDb, Option<crate::support::redis::RedisServer>, i32)> {
    let test_cache = stores::cache_with(kind, |b| b)?;
    let t = DieselDb::with_cache(DB, test_cache.cache.clone())?;
    let mut conn = t.conn();
    let author = t.user(&mut conn, "ann");
    let id = t.song(&mut conn, author, "A");
    Some((t, test_cache.server, id))
}

fn on_every_thread_kind(kind: Kind) {
    let Some((t, _server, id)) = fixture(kind) else {
        return;
    };
    let t = Arc::new(t);

    // A plain thread: no runtime anywhere.
    let plain = {
        let t = Arc::clone(&t);
        std::thread::spawn(move || {
            assert!(tokio::runtime::Handle::try_current().is_err());
            let mut conn = t.conn();
            cycle(&t, &mut conn, id);
        })
    };
    plain.join().expect("plain thread");

    // A multi-thread runtime: from a worker (by mistake) and from spawn_blocking.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on({
        let t = Arc::clone(&t);
        async move {
            let on_worker = tokio::spawn({
                let t = Arc::clone(&t);
                async move {
                    let mut conn = t.conn();
                    cycle(&t, &mut conn, id);
                }
            });
            // Other tasks keep running while the worker waits on the database and cache.
            let ticker = tokio::spawn(async {
                for _ in 0..5 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            });
            on_worker.await.expect("worker");
            ticker.await.expect("ticker");
            tokio::task::spawn_blocking(move || {
                let mut conn = t.conn();
                cycle(&t, &mut conn, id);
            })
            .await
            .expect("spawn_blocking");
        }
    });

    // A current-thread runtime: on its own thread, and from spawn_blocking.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on({
        let t = Arc::clone(&t);
        async move {
            let mut conn = t.conn();
            cycle(&t, &mut conn, id);
            tokio::task::spawn_blocking(move || {
                let mut conn = t.conn();
                cycle(&t, &mut conn, id);
            })
            .await
            .expect("spawn_blocking");
        }
    });
    assert_eq!(t.cache.stats().errors, 0, "no store errors on {kind:?}");
}

#[test]
fn plain_fn_on_every_kind_of_thread_with_the_memory_store() {
    on_every_thread_kind(Kind::Memory);
}

#[cfg(feature = "redis")]
#[test]
fn plain_fn_on_every_kind_of_thread_with_the_redis_store() {
    on_every_thread_kind(Kind::Redis);
}

#[cfg(feature = "redis")]
#[test]
fn plain_fn_on_every_kind_of_thread_with_the_tiered_store() {
    on_every_thread_kind(Kind::Tiered);
}

/// Called from async code on a current-thread runtime while an async task computes the same
/// key: the sync call does not wait for that task (which could not run while it waits).
#[test]
fn on_a_current_thread_runtime_a_sync_call_never_waits_for_a_task_of_its_own_thread() {
    let Some((t, _server, id)) = fixture(Kind::Memory) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let options = querycache::EntryOptions::new();
    let key = "slow";
    runtime.block_on(async {
        let cache = t.cache.clone();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        // An async computation of `key` that parks until the sync call below is done.
        let slow = tokio::spawn({
            let (cache, options) = (cache.clone(), options.clone());
            async move {
                cache
                    .get_or_compute(key, options, || async {
                        let _ = started_tx.send(());
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        1_u32
                    })
                    .await
            }
        });
        started_rx.await.unwrap();
        // The same key, synchronously, on this very thread: must not deadlock.
        let value = cache
            .try_get_or_compute_blocking(key, options.clone(), || Ok::<_, ()>(2_u32))
            .unwrap();
        assert_eq!(
            *value, 2,
            "computed here rather than waiting for the parked task"
        );
        assert_eq!(*slow.await.unwrap(), 1);
        let mut conn = t.conn();
        cycle(&t, &mut conn, id);
    });
}

/// An r2d2 pool whose connections get the instrumentation from their manager's
/// `on_acquire`-free path: `install_default` before the pool connects. The cached function
/// takes `&mut PooledConnection<..>`.
#[test]
fn r2d2_pooled_connections_report_their_writes_and_transactions() {
    use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};

    #[querycache::cached_query(cache = cache, models = [songs::table], row = id)]
    fn pooled_title(
        #[cache_skip] cache: &querycache::Cache,
        #[cache_skip] runs: &AtomicUsize,
        conn: &mut PooledConnection<ConnectionManager<AnyConnection>>,
        id: i32,
    ) -> QueryResult<Option<String>> {
        runs.fetch_add(1, Ordering::SeqCst);
        songs::table
            .find(id)
            .select(songs::title)
            .first(conn)
            .optional()
    }

    let Some((t, _server, id)) = fixture(Kind::Memory) else {
        return;
    };
    // Connections made while the default is installed report to this test's cache; the
    // default is removed again at once (other tests make connections of their own).
    let _default = crate::support::diesel::PROCESS_DEFAULT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    querycache::orm::diesel::install_default(&t.cache).unwrap();
    let pool = Pool::builder()
        .max_size(2)
        .min_idle(Some(2))
        .build(ConnectionManager::<AnyConnection>::new(&t.url));
    diesel::connection::set_default_instrumentation(|| None).unwrap();
    let pool = pool.expect("pool");

    let runs = AtomicUsize::new(0);
    let mut conn = pool.get().unwrap();
    assert_eq!(
        pooled_title(&t.cache, &runs, &mut conn, id)
            .unwrap()
            .as_deref(),
        Some("A")
    );
    assert_eq!(
        pooled_title(&t.cache, &runs, &mut conn, id)
            .unwrap()
            .as_deref(),
        Some("A")
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let mut other = pool.get().unwrap();
    diesel::update(songs::table.find(id))
        .set(songs::title.eq("A2"))
        .execute(&mut other)
        .unwrap();
    assert_eq!(
        pooled_title(&t.cache, &runs, &mut conn, id)
            .unwrap()
            .as_deref(),
        Some("A2")
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "a pooled connection's write invalidates"
    );

    let result = conn.transaction::<(), _, _>(|conn| {
        diesel::update(songs::table.find(id))
            .set(songs::title.eq("never"))
            .execute(conn)?;
        let inside = pooled_title(&t.cache, &runs, conn, id)?;
        assert_eq!(
            inside.as_deref(),
            Some("never"),
            "the transaction's own write"
        );
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert!(result.is_err());
    assert_eq!(
        pooled_title(&t.cache, &runs, &mut conn, id)
            .unwrap()
            .as_deref(),
        Some("A2")
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        3,
        "only the read inside the transaction ran"
    );
}

/// Called by mistake on the only worker of a multi-thread runtime, a sync cached call does
/// not hold the worker: another task runs while the call's computation waits for it.
#[test]
fn a_sync_call_on_the_only_worker_lets_other_tasks_run() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let cache = querycache::Cache::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let value = runtime.block_on(async move {
        let blocked = tokio::spawn(async move {
            cache.try_get_or_compute_blocking("waits", querycache::EntryOptions::new(), || {
                let _ = started_tx.send(());
                // Only the other task can send this, and only if the worker is free.
                rx.recv_timeout(Duration::from_secs(10))
                    .map_err(|_| "the other task never ran: the worker was blocked")
            })
        });
        // Spawned once the first task is inside its computation, on the only worker.
        started_rx.await.expect("the computation started");
        let other = tokio::spawn(async move { tx.send(7_u32).expect("receiver alive") });
        let value = blocked.await.expect("blocked task");
        other.await.expect("other task");
        value
    });
    assert_eq!(*value.unwrap(), 7);
}
