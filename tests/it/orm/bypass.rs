//! `querycache::bypass` / `bypass_sync` (issue 18, item 4): inside a scope, cached reads go
//! straight to the database without reading or storing; writes still invalidate; an entry
//! stored before the scope that no write touched stays.

use std::sync::atomic::{AtomicUsize, Ordering};

use querycache::orm::sea_orm::CachedConnection;
use querycache::{Cache, EntryOptions, cached_query};
use sea_orm::{ActiveModelTrait, DbErr, EntityTrait, IntoActiveModel, Set};

use super::DB;
use crate::support::{TestDb, song};

#[cached_query(cache = cache, models = [song::Entity], row = id)]
async fn title(
    #[cache_skip] cache: &Cache,
    #[cache_skip] runs: &AtomicUsize,
    conn: &CachedConnection,
    id: i32,
) -> Result<Option<String>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    Ok(song::Entity::find_by_id(id)
        .one(conn)
        .await?
        .map(|s| s.title))
}

/// A song "A", its title cached (`None`: no database here, and the test may skip).
async fn cached_song() -> Option<(TestDb, song::Model, AtomicUsize)> {
    let t = TestDb::fresh(DB).await?;
    let author = t.user("ann").await;
    let a = t.song(&author, "A").await;
    let runs = AtomicUsize::new(0);
    title(&t.cache, &runs, &t.db, a.id).await.unwrap();
    Some((t, a, runs))
}

#[tokio::test]
async fn inside_bypass_a_cached_function_runs_every_time_and_stores_nothing() {
    let Some((t, a, runs)) = cached_song().await else {
        return;
    };
    let bypassed_before = t.cache.stats().bypassed;
    querycache::bypass(async {
        for _ in 0..2 {
            title(&t.cache, &runs, &t.db, a.id).await.unwrap();
        }
        // Nested scopes, and a direct read: nothing comes from the cache.
        querycache::bypass(async {
            title(&t.cache, &runs, &t.db, a.id).await.unwrap();
        })
        .await;
        assert!(t.cache.get::<Option<String>>("anything").await.is_none());
    })
    .await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        4,
        "every call inside ran its query"
    );
    assert_eq!(
        t.cache.stats().bypassed - bypassed_before,
        4,
        "counted as bypasses"
    );
    assert_eq!(t.cache.stats().sets, 1, "nothing stored inside the scope");
    // After the scope: the entry stored before it is served again.
    title(&t.cache, &runs, &t.db, a.id).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 4, "the earlier entry stayed");
}

#[tokio::test]
async fn writes_inside_bypass_still_invalidate() {
    let Some((t, a, runs)) = cached_song().await else {
        return;
    };
    querycache::bypass(async {
        let mut am = a.clone().into_active_model();
        am.title = Set("B".to_owned());
        am.update(&t.db).await.unwrap();
    })
    .await;
    let after = title(&t.cache, &runs, &t.db, a.id).await.unwrap();
    assert_eq!(
        after.as_deref(),
        Some("B"),
        "the write inside invalidated the entry"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[cached_query(cache = cache)]
fn counted(#[cache_skip] cache: &Cache, #[cache_skip] runs: &AtomicUsize) -> usize {
    runs.fetch_add(1, Ordering::SeqCst) + 1
}

#[test]
fn bypass_sync_covers_plain_cached_functions_and_blocking_reads() {
    let cache = Cache::new();
    let runs = AtomicUsize::new(0);
    assert_eq!(counted(&cache, &runs), 1);
    let inside = querycache::bypass_sync(|| {
        let nested = querycache::bypass_sync(|| counted(&cache, &runs));
        let blocking = cache
            .try_get_or_compute_blocking("k", EntryOptions::new(), || Ok::<_, ()>(7_u32))
            .unwrap();
        (counted(&cache, &runs), nested, *blocking)
    });
    assert_eq!(inside, (3, 2, 7), "each call inside ran");
    assert!(
        cache.get_blocking::<u32>("k").is_none(),
        "nothing stored inside"
    );
    assert_eq!(
        counted(&cache, &runs),
        1,
        "the entry from before is served after"
    );
}

/// Diesel: inside `bypass_sync`, a cached read runs every time and stores nothing, and a
/// write still invalidates the entry stored before the scope.
#[cfg(feature = "diesel")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diesel_reads_inside_bypass_sync_run_every_time_and_writes_still_invalidate() {
    use crate::support::diesel::DieselDb;
    use crate::support::diesel::reads::song_titles;

    let Some(d) = DieselDb::new(DB) else {
        return;
    };
    tokio::task::block_in_place(|| {
        let mut conn = d.conn();
        let author = d.user(&mut conn, "ann");
        d.song(&mut conn, author, "A");
        let runs = AtomicUsize::new(0);
        assert_eq!(song_titles(&d.cache, &runs, &mut conn).unwrap(), ["A"]);
        let sets = d.cache.stats().sets;
        querycache::bypass_sync(|| {
            for _ in 0..2 {
                assert_eq!(song_titles(&d.cache, &runs, &mut conn).unwrap(), ["A"]);
            }
            d.song(&mut conn, author, "B");
            assert_eq!(song_titles(&d.cache, &runs, &mut conn).unwrap(), ["A", "B"]);
        });
        assert_eq!(runs.load(Ordering::SeqCst), 4, "every call inside ran");
        assert_eq!(
            d.cache.stats().sets,
            sets,
            "nothing stored inside the scope"
        );
        assert_eq!(
            song_titles(&d.cache, &runs, &mut conn).unwrap(),
            ["A", "B"],
            "the write inside invalidated the entry from before"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 5);
        assert_eq!(song_titles(&d.cache, &runs, &mut conn).unwrap(), ["A", "B"]);
        assert_eq!(
            runs.load(Ordering::SeqCst),
            5,
            "stored again after the scope"
        );
    });
}
