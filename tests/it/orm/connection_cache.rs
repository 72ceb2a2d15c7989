//! One cache per connection, by construction: a `#[cached_query]` function that names no
//! `cache = ..` reads through the cache its connection argument invalidates (a
//! `CachedConnection`'s or `CachedTransaction`'s, a Diesel connection's
//! `CacheInstrumentation`'s), whatever the global cache is; one that names another cache
//! keeps it (and a warning naming the function says so, once).
//!
//! These tests never install a global cache (one test of the binary does); the connection's
//! cache is a fresh one, never the global, so each holds whichever way the global was made.

use querycache::orm::sea_orm::CachedConnection;
use querycache::{Cache, cached_query};
use sea_orm::{ActiveModelTrait, DbErr, EntityTrait, IntoActiveModel, Set, TransactionTrait};

use super::DB;
use crate::support::{TestDb, song};

/// A song's title, as a new user writes it: no `cache = ..`.
#[cached_query(ttl = "1h", models = [song::Entity], row = id)]
async fn title_of(db: &CachedConnection, id: i32) -> Result<Option<String>, DbErr> {
    Ok(song::Entity::find_by_id(id).one(db).await?.map(|s| s.title))
}

/// The same inside a transaction.
#[cached_query(ttl = "1h", models = [song::Entity], row = id)]
async fn title_in(
    tx: &querycache::orm::sea_orm::CachedTransaction,
    id: i32,
) -> Result<Option<String>, DbErr> {
    Ok(song::Entity::find_by_id(id).one(tx).await?.map(|s| s.title))
}

/// The same, reading through a cache of its own, not the connection's.
#[cached_query(cache = other, ttl = "1h", models = [song::Entity], row = id)]
async fn title_elsewhere(
    #[cache_skip] other: &Cache,
    db: &CachedConnection,
    id: i32,
) -> Result<Option<String>, DbErr> {
    Ok(song::Entity::find_by_id(id).one(db).await?.map(|s| s.title))
}

/// The same through any SeaORM connection, in a cache of its own: the quick hit check asks
/// the connection first (a plain `DatabaseTransaction` may hold writes the cache never saw).
#[cached_query(cache = cache, ttl = "1h", models = [song::Entity], row = id)]
async fn title_through<C: sea_orm::ConnectionTrait>(
    #[cache_skip] cache: &Cache,
    db: &C,
    id: i32,
) -> Result<Option<String>, DbErr> {
    Ok(song::Entity::find_by_id(id).one(db).await?.map(|s| s.title))
}

/// Renames song `id` through `db`, so that its cache is invalidated.
async fn rename(db: &CachedConnection, song: &song::Model, title: &str) {
    let mut active = song.clone().into_active_model();
    active.title = Set(title.to_owned());
    active.update(db).await.expect("rename");
}

#[tokio::test]
async fn a_function_without_a_cache_reads_through_its_connections_cache() {
    // `CachedConnection::new(db, cache)` and no `install()`: the new user.
    let Some(t) = TestDb::create(DB, Cache::new()).await else {
        return;
    };
    let author = t.user("ann").await;
    let song = t.song(&author, "Old").await;

    assert_eq!(
        title_of(&t.db, song.id).await.unwrap().as_deref(),
        Some("Old")
    );
    assert_eq!(
        title_of(&t.db, song.id).await.unwrap().as_deref(),
        Some("Old")
    );
    let stats = t.cache.stats();
    assert_eq!(
        (stats.misses, stats.hits),
        (1, 1),
        "both reads went through the connection's cache"
    );

    rename(&t.db, &song, "New").await;
    assert_eq!(
        title_of(&t.db, song.id).await.unwrap().as_deref(),
        Some("New"),
        "the connection's write invalidated the entry its function cached"
    );

    // In a transaction, the transaction's cache (the connection's) answers, and after the
    // COMMIT the read sees the transaction's write.
    let tx = t.db.begin().await.unwrap();
    assert_eq!(
        title_in(&tx, song.id).await.unwrap().as_deref(),
        Some("New")
    );
    let mut active = song.clone().into_active_model();
    active.title = Set("Newer".to_owned());
    active.update(&tx).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        title_of(&t.db, song.id).await.unwrap().as_deref(),
        Some("Newer")
    );
}

#[tokio::test]
async fn a_named_cache_is_kept() {
    // `cache = ..` wins over the connection's cache (a warning, once per function, says
    // that the connection's writes do not reach it).
    let Some(t) = TestDb::create(DB, Cache::new()).await else {
        return;
    };
    let other = Cache::new();
    let author = t.user("ann").await;
    let song = t.song(&author, "Old").await;

    for _ in 0..2 {
        let title = title_elsewhere(&other, &t.db, song.id).await.unwrap();
        assert_eq!(title.as_deref(), Some("Old"));
    }
    assert_eq!((other.stats().misses, other.stats().hits), (1, 1));
    assert_eq!(t.cache.stats().misses + t.cache.stats().hits, 0);
}

#[tokio::test]
async fn a_plain_transaction_reads_its_own_writes_never_the_cached_value() {
    let Some(t) = TestDb::create(DB, Cache::new()).await else {
        return;
    };
    let author = t.user("ann").await;
    let song = t.song(&author, "Old").await;
    for _ in 0..2 {
        let title = title_through(&t.cache, &t.db, song.id).await.unwrap();
        assert_eq!(title.as_deref(), Some("Old"));
    }
    assert_eq!((t.cache.stats().misses, t.cache.stats().hits), (1, 1));

    // A transaction querycache cannot see into, with a write the cache never heard of.
    let tx = t.raw.begin().await.unwrap();
    let mut active = song.clone().into_active_model();
    active.title = Set("Uncommitted".to_owned());
    active.update(&tx).await.unwrap();
    let title = title_through(&t.cache, &tx, song.id).await.unwrap();
    assert_eq!(
        title.as_deref(),
        Some("Uncommitted"),
        "inside the transaction, its own write"
    );
    assert_eq!(
        t.cache.stats().hits,
        1,
        "the cached value was not served inside it"
    );
    tx.rollback().await.unwrap();

    let title = title_through(&t.cache, &t.db, song.id).await.unwrap();
    assert_eq!(
        title.as_deref(),
        Some("Old"),
        "rolled back: the cached value"
    );
    assert_eq!(t.cache.stats().hits, 2);
}

#[cfg(feature = "diesel")]
mod diesel_connections {
    use diesel::prelude::*;
    use querycache::{Cache, cached_query};

    use super::DB;
    use crate::support::diesel::schema::songs;
    use crate::support::diesel::{AnyConnection, DieselDb};

    /// A song's title through Diesel's sync API, with no `cache = ..`.
    #[cached_query(ttl = "1h", models = [songs::table], row = id)]
    fn title_of(conn: &mut AnyConnection, id: i32) -> QueryResult<Option<String>> {
        songs::table
            .find(id)
            .select(songs::title)
            .first(conn)
            .optional()
    }

    #[test]
    fn a_diesel_function_without_a_cache_reads_through_its_connections_cache() {
        let Some(t) = DieselDb::with_cache(DB, Cache::new()) else {
            return;
        };
        let mut conn = t.conn();
        let author = t.user(&mut conn, "ann");
        let id = t.song(&mut conn, author, "Old");

        assert_eq!(title_of(&mut conn, id).unwrap().as_deref(), Some("Old"));
        assert_eq!(title_of(&mut conn, id).unwrap().as_deref(), Some("Old"));
        let stats = t.cache.stats();
        assert_eq!((stats.misses, stats.hits), (1, 1));

        diesel::update(songs::table.find(id))
            .set(songs::title.eq("New"))
            .execute(&mut conn)
            .unwrap();
        assert_eq!(title_of(&mut conn, id).unwrap().as_deref(), Some("New"));
    }
}
