//! Issue 18, item 1: a cached `Option<Option<String>>` — a row that exists with a NULL
//! column — read back from the Redis and tiered stores. serde_json wrote `Some(None)` as
//! `null`, which read back as `None` ("no such row"): the miss said `Some(None)` and the
//! hit `None`. The hit must give what the miss gave, from Redis itself (the tiered store is
//! read through a second instance, whose memory tier is empty).

use std::sync::atomic::{AtomicUsize, Ordering};

use querycache::orm::sea_orm::CachedConnection;
use querycache::{Cache, cached_query};
use sea_orm::sea_query::Expr;
use sea_orm::{DbErr, EntityTrait, QuerySelect};

use super::DB;
use crate::support::stores::{Kind, another_instance, cache_with};
use crate::support::{TestDb, song, subscribed};

/// The song's subtitle: `None` when there is no such song, `Some(None)` when its subtitle
/// is NULL (here always: `NULLIF(title, title)`, the schema has no nullable text column).
#[cached_query(cache = cache, models = [song::Entity], row = id)]
async fn subtitle(
    #[cache_skip] cache: &Cache,
    #[cache_skip] runs: &AtomicUsize,
    db: &CachedConnection,
    id: i32,
) -> Result<Option<Option<String>>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    song::Entity::find_by_id(id)
        .select_only()
        .column_as(Expr::cust("NULLIF(title, title)"), "subtitle")
        .into_tuple::<Option<String>>()
        .one(db)
        .await
}

async fn a_null_column_reads_back_as_some_none(kind: Kind) {
    let Some(store) = cache_with(kind, |b| b) else {
        return;
    };
    let Some(t) = TestDb::create(DB, store.cache.clone()).await else {
        return;
    };
    let author = t.user("ann").await;
    let song = t.song(&author, "A").await;
    let runs = AtomicUsize::new(0);

    let miss = subtitle(&t.cache, &runs, &t.db, song.id).await.unwrap();
    assert_eq!(miss, Some(None), "the row exists, its column is NULL");
    let hit = subtitle(&t.cache, &runs, &t.db, song.id).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the second read is a hit");
    assert_eq!(hit, Some(None), "the hit gives what the miss gave");

    // Another instance on the same Redis: nothing in its memory, the entry comes from Redis.
    let second = another_instance(kind, &store);
    if kind == Kind::Tiered {
        subscribed(&second).await;
    }
    let db = CachedConnection::new(t.raw.clone(), second.clone());
    let from_redis = subtitle(&second, &runs, &db, song.id).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1, "a hit from Redis");
    assert_eq!(from_redis, Some(None), "Redis gives what the miss gave");

    let gone = song.id + 1000;
    let missing = subtitle(&t.cache, &runs, &t.db, gone).await.unwrap();
    let missing_hit = subtitle(&second, &runs, &db, gone).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2, "a hit from Redis");
    assert_eq!(
        (missing, missing_hit),
        (None, None),
        "no such row stays None"
    );
}

#[tokio::test]
async fn on_redis_a_cached_some_none_is_served_as_some_none() {
    a_null_column_reads_back_as_some_none(Kind::Redis).await;
}

#[tokio::test]
async fn on_tiered_a_cached_some_none_is_served_as_some_none() {
    a_null_column_reads_back_as_some_none(Kind::Tiered).await;
}
