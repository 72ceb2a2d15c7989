//! One cache, two databases (a database per tenant): each database's cached reads hold its
//! own rows, and a write to `songs` in one neither invalidates nor keeps valid the other's
//! entries. On the memory and tiered stores; the second database is of the suite's kind
//! (`super::DB`: on MariaDB another database of the same server) or of another kind (a
//! SQLite file beside a PostgreSQL database, a PostgreSQL database beside a MariaDB one).

use std::sync::atomic::{AtomicUsize, Ordering};

use querycache::cached_query;
use querycache::orm::sea_orm::CachedConnection;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DbErr, EntityTrait, QueryOrder, Set, TransactionTrait,
};

use super::DB;
use crate::support::stores::Kind;
use crate::support::{Db, TestDb, song};

/// Every song title, by id: the function of the issue, cached on the connection's cache.
#[cached_query(cache = db.cache(), models = [song::Entity])]
async fn all_songs(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
) -> Result<Vec<String>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    let songs = song::Entity::find()
        .order_by_asc(song::Column::Id)
        .all(db)
        .await?;
    Ok(songs.into_iter().map(|s| s.title).collect())
}

/// One song's title: depends on its row (and bulk writes to the table).
#[cached_query(cache = db.cache(), models = [song::Entity], row = id)]
async fn song_title(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
    id: i32,
) -> Result<Option<String>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    Ok(song::Entity::find_by_id(id).one(db).await?.map(|s| s.title))
}

/// Adds a user `author` and a song `title` of theirs through `db`.
async fn add_song(db: &CachedConnection, author: &str, title: &str) {
    let author = crate::support::user::ActiveModel {
        name: Set(author.to_owned()),
        email: Set(format!("{author}@example.test")),
        created_at: Set(chrono::Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    crate::support::new_song(&author, title)
        .insert(db)
        .await
        .unwrap();
}

/// Another kind of database than the suite's: PostgreSQL beside SQLite and MariaDB (two
/// servers' identities on one cache), SQLite beside PostgreSQL.
fn other_kind() -> Db {
    match DB {
        Db::Sqlite | Db::MySql => Db::Postgres,
        Db::Postgres => Db::Sqlite,
    }
}

/// Two fresh databases, `first` of the suite's kind on a cache of `store` and `second` of
/// kind `second_kind` on the same cache; `first` holds two songs, `second` none. `None`:
/// a server is missing here (the test skips unless QUERYCACHE_REQUIRE_SERVICES=1).
async fn two_databases(store: Kind, second_kind: Db) -> Option<(TestDb, TestDb)> {
    let first = TestDb::on_store(DB, store).await?;
    if store == Kind::Tiered {
        crate::support::subscribed(&first.cache).await;
    }
    let second = TestDb::create(second_kind, first.cache.clone()).await?;
    let author = first.user("ann").await;
    first.song(&author, "A").await;
    first.song(&author, "B").await;
    Some((first, second))
}

/// The scenario: `all_songs(&db2)` on an empty database reads it, rather than
/// `db1`'s rows; both stay cached, each with its own rows.
async fn each_database_reads_its_own_rows(store: Kind, second_kind: Db) {
    let Some((one, two)) = two_databases(store, second_kind).await else {
        return;
    };
    let (runs1, runs2) = (AtomicUsize::new(0), AtomicUsize::new(0));
    assert_eq!(all_songs(&one.db, &runs1).await.unwrap(), ["A", "B"]);
    assert_eq!(
        all_songs(&two.db, &runs2).await.unwrap(),
        Vec::<String>::new(),
        "the second database is empty: its read must not be the first one's entry"
    );
    assert_eq!(
        runs2.load(Ordering::SeqCst),
        1,
        "the second database was queried"
    );
    // Both are cached now, each with its own rows.
    assert_eq!(all_songs(&one.db, &runs1).await.unwrap(), ["A", "B"]);
    assert_eq!(
        all_songs(&two.db, &runs2).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        (runs1.load(Ordering::SeqCst), runs2.load(Ordering::SeqCst)),
        (1, 1),
        "second reads are hits"
    );
    // By id: song 1 exists in the first database only.
    let (rows1, rows2) = (AtomicUsize::new(0), AtomicUsize::new(0));
    assert_eq!(
        song_title(&one.db, &rows1, 1).await.unwrap().as_deref(),
        Some("A")
    );
    assert_eq!(song_title(&two.db, &rows2, 1).await.unwrap(), None);
    assert_eq!(song_title(&two.db, &rows2, 1).await.unwrap(), None);
    assert_eq!(rows2.load(Ordering::SeqCst), 1);
}

/// A write to `songs` in one database invalidates that database's entries only, in both
/// directions, and through a transaction as well as outside one.
async fn writes_stay_in_their_database(store: Kind, second_kind: Db) {
    let Some((one, two)) = two_databases(store, second_kind).await else {
        return;
    };
    let (runs1, runs2) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let (rows1, rows2) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let warm = async || {
        all_songs(&one.db, &runs1).await.unwrap();
        all_songs(&two.db, &runs2).await.unwrap();
        song_title(&one.db, &rows1, 1).await.unwrap();
        song_title(&two.db, &rows2, 1).await.unwrap();
    };
    warm().await;
    let counts = || [&runs1, &runs2, &rows1, &rows2].map(|runs| runs.load(Ordering::SeqCst));
    assert_eq!(counts(), [1, 1, 1, 1]);

    // A write in the second database: its entries are recomputed, the first's are hits.
    let author = two.user("bob").await;
    two.song(&author, "Z").await;
    assert_eq!(
        all_songs(&two.db, &runs2).await.unwrap(),
        ["Z"],
        "the write was seen"
    );
    assert_eq!(
        song_title(&two.db, &rows2, 1).await.unwrap().as_deref(),
        Some("Z")
    );
    assert_eq!(all_songs(&one.db, &runs1).await.unwrap(), ["A", "B"]);
    assert_eq!(
        song_title(&one.db, &rows1, 1).await.unwrap().as_deref(),
        Some("A")
    );
    assert_eq!(
        counts(),
        [1, 2, 1, 2],
        "only the second database's entries were invalidated"
    );

    // A write in the first database, the other way round.
    song::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(1),
        title: Set("A2".into()),
        ..Default::default()
    }
    .update(&one.db)
    .await
    .unwrap();
    assert_eq!(all_songs(&one.db, &runs1).await.unwrap(), ["A2", "B"]);
    assert_eq!(
        song_title(&one.db, &rows1, 1).await.unwrap().as_deref(),
        Some("A2")
    );
    assert_eq!(all_songs(&two.db, &runs2).await.unwrap(), ["Z"]);
    assert_eq!(
        song_title(&two.db, &rows2, 1).await.unwrap().as_deref(),
        Some("Z")
    );
    assert_eq!(
        counts(),
        [2, 2, 2, 2],
        "only the first database's entries were invalidated"
    );

    // A committed transaction in the second database.
    let tx = two.db.begin().await.unwrap();
    tx.execute_unprepared("UPDATE songs SET title = 'Y'")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(all_songs(&two.db, &runs2).await.unwrap(), ["Y"]);
    assert_eq!(
        song_title(&two.db, &rows2, 1).await.unwrap().as_deref(),
        Some("Y")
    );
    assert_eq!(all_songs(&one.db, &runs1).await.unwrap(), ["A2", "B"]);
    assert_eq!(counts(), [2, 3, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cache_two_databases_each_reads_its_own_rows_on_memory() {
    each_database_reads_its_own_rows(Kind::Memory, DB).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cache_two_databases_each_reads_its_own_rows_on_tiered() {
    each_database_reads_its_own_rows(Kind::Tiered, DB).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cache_databases_of_two_kinds_each_read_their_own_rows() {
    each_database_reads_its_own_rows(Kind::Memory, other_kind()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_in_one_database_invalidates_only_its_own_entries_on_memory() {
    writes_stay_in_their_database(Kind::Memory, DB).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_in_one_database_invalidates_only_its_own_entries_on_tiered() {
    writes_stay_in_their_database(Kind::Tiered, DB).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_in_one_of_two_kinds_of_database_invalidates_only_its_own_entries() {
    writes_stay_in_their_database(Kind::Memory, other_kind()).await;
}

/// A database given a name keeps its own namespace, and its model tag invalidates its
/// entries only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_database_has_its_own_tags() {
    let Some((one, two)) = two_databases(Kind::Memory, DB).await else {
        return;
    };
    let two_db = CachedConnection::new(two.raw.clone(), two.cache.clone())
        .database("tenant_2")
        .unwrap();
    let tag = two_db.model_tag("songs").unwrap();
    assert_eq!(tag.as_str(), "model:@tenant_2/songs");
    let (runs1, runs2) = (AtomicUsize::new(0), AtomicUsize::new(0));
    all_songs(&one.db, &runs1).await.unwrap();
    all_songs(&two_db, &runs2).await.unwrap();
    one.cache.invalidate_tags([tag]).await;
    all_songs(&one.db, &runs1).await.unwrap();
    all_songs(&two_db, &runs2).await.unwrap();
    assert_eq!(
        (runs1.load(Ordering::SeqCst), runs2.load(Ordering::SeqCst)),
        (1, 2),
        "the named database's tag invalidated its entry only"
    );
}

/// Diesel, two databases on one cache: each connection learns its database at its first
/// cached call (or keeps the name it was given); each database's entries hold its own rows,
/// and a write in one invalidates its own entries only.
#[cfg(feature = "diesel")]
fn diesel_each_database_keeps_its_rows_and_its_writes(name: Option<&str>) {
    use diesel::prelude::*;
    use querycache::orm::diesel::CacheInstrumentation;

    use crate::support::diesel::DieselDb;
    use crate::support::diesel::reads::song_titles;
    use crate::support::diesel::schema::songs;

    let Some(one) = DieselDb::new(DB) else {
        return;
    };
    let Some(two) = DieselDb::with_cache(DB, one.cache.clone()) else {
        return;
    };
    let mut c1 = one.conn();
    let mut c2 = match name {
        None => two.conn(),
        Some(name) => {
            let mut c2 = two.raw();
            c2.set_instrumentation(
                CacheInstrumentation::new(two.cache.clone())
                    .database(name)
                    .unwrap(),
            );
            c2
        }
    };
    let author = one.user(&mut c1, "ann");
    one.song(&mut c1, author, "A");
    let (runs1, runs2) = (AtomicUsize::new(0), AtomicUsize::new(0));
    assert_eq!(song_titles(&one.cache, &runs1, &mut c1).unwrap(), ["A"]);
    assert_eq!(
        song_titles(&one.cache, &runs2, &mut c2).unwrap(),
        Vec::<String>::new(),
        "the second database is empty: its read must not be the first one's entry"
    );
    assert_eq!(
        song_titles(&one.cache, &runs2, &mut c2).unwrap(),
        Vec::<String>::new()
    );
    let author = two.user(&mut c2, "bob");
    two.song(&mut c2, author, "Z");
    assert_eq!(song_titles(&one.cache, &runs1, &mut c1).unwrap(), ["A"]);
    assert_eq!(song_titles(&one.cache, &runs2, &mut c2).unwrap(), ["Z"]);
    assert_eq!(
        (runs1.load(Ordering::SeqCst), runs2.load(Ordering::SeqCst)),
        (1, 2),
        "the second database's write invalidated its entry only"
    );
    diesel::update(songs::table)
        .set(songs::title.eq("A2"))
        .execute(&mut c1)
        .unwrap();
    assert_eq!(song_titles(&one.cache, &runs1, &mut c1).unwrap(), ["A2"]);
    assert_eq!(song_titles(&one.cache, &runs2, &mut c2).unwrap(), ["Z"]);
    assert_eq!(
        (runs1.load(Ordering::SeqCst), runs2.load(Ordering::SeqCst)),
        (2, 2),
        "the first database's write invalidated its entry only"
    );
}

#[cfg(feature = "diesel")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diesel_two_databases_without_names_each_read_their_own_rows_and_keep_their_writes() {
    tokio::task::block_in_place(|| diesel_each_database_keeps_its_rows_and_its_writes(None));
}

#[cfg(feature = "diesel")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diesel_a_named_second_database_reads_its_own_rows_and_keeps_its_writes() {
    tokio::task::block_in_place(|| {
        diesel_each_database_keeps_its_rows_and_its_writes(Some("second"))
    });
}

/// SeaORM and Diesel connections to one database agree on its namespace (they send the
/// same identity query), so a write through either invalidates the other's entries of
/// that database, and only those.
#[cfg(feature = "diesel")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sea_orm_and_diesel_agree_on_a_database_they_share() {
    use crate::support::diesel::DieselDb;
    use crate::support::diesel::reads::song_titles;

    let Some((one, two)) = two_databases(Kind::Memory, DB).await else {
        return;
    };
    let (runs1, runs2, diesel_runs) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    assert_eq!(all_songs(&one.db, &runs1).await.unwrap(), ["A", "B"]);
    assert!(all_songs(&two.db, &runs2).await.unwrap().is_empty());
    let diesel_two = DieselDb::attach(DB, two.diesel_url(), two.cache.clone());
    let cache = two.cache.clone();
    let mut conn = tokio::task::block_in_place(|| {
        let mut conn = diesel_two.conn();
        assert!(
            querycache::orm::diesel::identify(&mut conn).unwrap(),
            "the Diesel connection learns its database"
        );
        // A Diesel write to the second database...
        let author = diesel_two.user(&mut conn, "zed");
        diesel_two.song(&mut conn, author, "Z");
        conn
    });
    // ...invalidates SeaORM's entry of it, and nothing of the first database.
    assert_eq!(all_songs(&two.db, &runs2).await.unwrap(), ["Z"]);
    assert_eq!(all_songs(&one.db, &runs1).await.unwrap(), ["A", "B"]);
    assert_eq!(
        (runs1.load(Ordering::SeqCst), runs2.load(Ordering::SeqCst)),
        (1, 2),
        "the Diesel write invalidated the SeaORM entry of its database only"
    );
    // A Diesel read of the second database, then a SeaORM write to it.
    tokio::task::block_in_place(|| {
        assert_eq!(song_titles(&cache, &diesel_runs, &mut conn).unwrap(), ["Z"]);
    });
    two.song(&two.user("yan").await, "Y").await;
    tokio::task::block_in_place(|| {
        assert_eq!(
            song_titles(&cache, &diesel_runs, &mut conn).unwrap(),
            ["Z", "Y"]
        );
    });
    assert_eq!(diesel_runs.load(Ordering::SeqCst), 2);
    assert_eq!(all_songs(&one.db, &runs1).await.unwrap(), ["A", "B"]);
    assert_eq!(
        runs1.load(Ordering::SeqCst),
        1,
        "the first database's entry stays"
    );
}

/// Two processes sharing Redis meet two databases in opposite orders: the default
/// database is the one recorded in Redis by the first to meet one, so both agree on every
/// database's keys and tags (an entry one caches is the other's hit, with the right rows;
/// a write through one invalidates the other's entries of that database only).
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_sharing_redis_agree_on_which_database_is_the_default() {
    let Some((one, two)) = two_databases(Kind::Tiered, DB).await else {
        return;
    };
    let server = one.redis_url().expect("a tiered cache has a redis-server");
    let other = querycache::Cache::builder()
        .redis_url(server)
        .store(querycache::config::StoreKind::Tiered)
        .redis_timeout(std::time::Duration::from_millis(2000))
        .build()
        .unwrap();
    crate::support::subscribed(&other).await;
    // The other process's connections to the same databases.
    let other_one = CachedConnection::new(one.raw.clone(), other.clone());
    let other_two = CachedConnection::new(two.raw.clone(), other.clone());
    let (runs, other_runs) = (AtomicUsize::new(0), AtomicUsize::new(0));
    // This process meets `one` first, the other process `two`.
    assert_eq!(all_songs(&one.db, &runs).await.unwrap(), ["A", "B"]);
    assert!(all_songs(&other_two, &other_runs).await.unwrap().is_empty());
    assert!(all_songs(&two.db, &runs).await.unwrap().is_empty());
    assert_eq!(
        all_songs(&other_one, &other_runs).await.unwrap(),
        ["A", "B"]
    );
    assert_eq!(
        (
            runs.load(Ordering::SeqCst),
            other_runs.load(Ordering::SeqCst)
        ),
        (1, 1),
        "each process found the other's entry of each database: they agree on its keys"
    );
    // A write to `two` through the other process invalidates this process's entry of it.
    add_song(&other_two, "cy", "C").await;
    crate::support::until(
        std::time::Duration::from_secs(10),
        "this process sees the other's write to `two`",
        async || all_songs(&two.db, &runs).await.unwrap() == ["C"],
    )
    .await;
    assert_eq!(all_songs(&one.db, &runs).await.unwrap(), ["A", "B"]);
    assert_eq!(
        all_songs(&other_one, &other_runs).await.unwrap(),
        ["A", "B"],
        "`one`'s entry stays"
    );
    assert_eq!(other_runs.load(Ordering::SeqCst), 1);
}

/// A Diesel connection that writes before any cached call is given it (its database not
/// known yet) still invalidates the written table's entries of the database it wrote to,
/// even when that is not the cache's default one.
#[cfg(feature = "diesel")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diesel_write_before_the_connection_knows_its_database_reaches_that_database() {
    use crate::support::diesel::DieselDb;

    let Some((one, two)) = two_databases(Kind::Memory, DB).await else {
        return;
    };
    let (runs1, runs2) = (AtomicUsize::new(0), AtomicUsize::new(0));
    assert_eq!(all_songs(&one.db, &runs1).await.unwrap(), ["A", "B"]);
    assert!(all_songs(&two.db, &runs2).await.unwrap().is_empty());
    let writer = DieselDb::attach(DB, two.diesel_url(), two.cache.clone());
    tokio::task::block_in_place(|| {
        let mut conn = writer.conn();
        let author = writer.user(&mut conn, "wes");
        writer.song(&mut conn, author, "W");
    });
    assert_eq!(
        all_songs(&two.db, &runs2).await.unwrap(),
        ["W"],
        "the second database's entry must not survive a write to it"
    );
    assert_eq!(all_songs(&one.db, &runs1).await.unwrap(), ["A", "B"]);
}
