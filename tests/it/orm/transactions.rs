//! Transactions through `CachedConnection`: writes invalidate after the outermost COMMIT
//! returns and never on rollback; savepoints hand their writes to their parent; cached reads
//! inside a transaction bypass the cache for the tables it wrote and never store.
//!
//! Runs on SQLite, PostgreSQL and MariaDB (`super::DB`).
//!
//! The in-transaction reads are `#[cached_query]` functions whose connection argument is the
//! transaction.

use std::sync::atomic::{AtomicUsize, Ordering};

use querycache::orm::sea_orm::CachedConnection;
use querycache::{Cache, EntryOptions, Key, Tag, cached_query};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryOrder, Set,
    TransactionError, TransactionTrait,
};

use super::DB;
use super::common::{CALL_REFRESH_SONG_STATS, SONG_LIST, cached, refresh_song_stats_procedure};
use super::common::{refreshed, song_key, user_key};
use crate::support::{Db, TestDb, song, user};

async fn titles_cached(t: &TestDb) -> (Vec<String>, bool) {
    let options = EntryOptions::new().tag(Tag::model("songs"));
    cached(&t.cache, SONG_LIST, options, || async {
        let songs = song::Entity::find()
            .order_by_asc(song::Column::Id)
            .all(&t.db)
            .await?;
        Ok(songs.into_iter().map(|s| s.title).collect())
    })
    .await
    .pair()
}

async fn title_cached(t: &TestDb, id: i32) -> (Option<String>, bool) {
    let options = EntryOptions::new().tags([Tag::row("songs", id), Tag::bulk("songs")]);
    cached(&t.cache, &song_key(id), options, || async {
        Ok(song::Entity::find_by_id(id)
            .one(&t.db)
            .await?
            .map(|s| s.title))
    })
    .await
    .pair()
}

async fn user_name_cached(t: &TestDb, id: i32) -> (Option<String>, bool) {
    let options = EntryOptions::new().tags([Tag::row("users", id), Tag::bulk("users")]);
    cached(&t.cache, &user_key(id), options, || async {
        Ok(user::Entity::find_by_id(id)
            .one(&t.db)
            .await?
            .map(|u| u.name))
    })
    .await
    .pair()
}

/// A by-id read whose connection argument is `conn`: in a transaction the expansion
/// bypasses the cache for what the transaction wrote, and never stores.
#[cached_query(models = [song::Entity], row = id, namespace = "songs", cache = cache, key = "transactions::song_by_id:{id}")]
async fn song_by_id<C>(
    #[cache_skip] cache: &Cache,
    conn: &C,
    id: i32,
    #[cache_skip] computed: &AtomicUsize,
) -> Result<Option<song::Model>, DbErr>
where
    C: ConnectionTrait,
{
    computed.fetch_add(1, Ordering::SeqCst);
    song::Entity::find_by_id(id).one(conn).await
}

/// A list read (`models = [song::Entity]`) whose connection argument is `conn`.
#[cached_query(models = [song::Entity], namespace = "songs", cache = cache, key = "transactions::song_titles")]
async fn song_titles<C>(
    #[cache_skip] cache: &Cache,
    conn: &C,
    #[cache_skip] computed: &AtomicUsize,
) -> Result<Vec<String>, DbErr>
where
    C: ConnectionTrait,
{
    computed.fetch_add(1, Ordering::SeqCst);
    let songs = song::Entity::find()
        .order_by_asc(song::Column::Id)
        .all(conn)
        .await?;
    Ok(songs.into_iter().map(|s| s.title).collect())
}

async fn song_by_id_call<C: ConnectionTrait>(
    cache: &Cache,
    conn: &C,
    id: i32,
    computed: &AtomicUsize,
) -> Option<song::Model> {
    song_by_id(cache, conn, id, computed)
        .await
        .expect("song_by_id")
}

async fn song_titles_call<C: ConnectionTrait>(
    cache: &Cache,
    conn: &C,
    computed: &AtomicUsize,
) -> Vec<String> {
    song_titles(cache, conn, computed)
        .await
        .expect("song_titles")
}

fn call_key(id: i32) -> Key {
    Key::new(format!("transactions::song_by_id:{id}")).expect("key")
}

async fn set_title<C: ConnectionTrait>(conn: &C, song: &song::Model, title: &str) {
    let mut am = song.clone().into_active_model();
    am.title = Set(title.to_owned());
    am.update(conn).await.expect("update song");
}

async fn set_name<C: ConnectionTrait>(conn: &C, user: &user::Model, name: &str) {
    let mut am = user.clone().into_active_model();
    am.name = Set(name.to_owned());
    am.update(conn).await.expect("update user");
}

struct Fixture {
    t: TestDb,
    author: user::Model,
    a: song::Model,
    b: song::Model,
}

impl Fixture {
    /// Songs "A" and "B" by "ann"; the song list, both songs and the user cached (`None`: no
    /// PostgreSQL here, and the test may skip).
    async fn new() -> Option<Fixture> {
        let t = TestDb::fresh(DB).await?;
        let author = t.user("ann").await;
        let a = t.song(&author, "A").await;
        let b = t.song(&author, "B").await;
        let f = Fixture { t, author, a, b };
        f.read_all().await;
        let (_, list, a, b, user) = f.read_all().await;
        assert!(
            !(list || a || b || user),
            "premise: everything is cached (recomputed: list {list}, A {a}, B {b}, user {user})"
        );
        Some(f)
    }

    /// (titles, recomputed list?, recomputed A?, recomputed B?, recomputed user?)
    async fn read_all(&self) -> (Vec<String>, bool, bool, bool, bool) {
        let (titles, list) = titles_cached(&self.t).await;
        let (_, a) = title_cached(&self.t, self.a.id).await;
        let (_, b) = title_cached(&self.t, self.b.id).await;
        let (_, user) = user_name_cached(&self.t, self.author.id).await;
        (titles, list, a, b, user)
    }

    fn db(&self) -> &CachedConnection {
        &self.t.db
    }

    async fn cached_list(&self) -> Option<Vec<String>> {
        self.t
            .cache
            .get::<Vec<String>>(SONG_LIST)
            .await
            .map(|v| (*v).clone())
    }
}

// --- Commit, rollback, drop ----------------------------------------------------------------

#[tokio::test]
async fn writes_in_a_transaction_invalidate_only_after_commit_returns() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let tx = f.db().begin().await.unwrap();
    set_title(&tx, &f.b, "B2").await;
    tx.execute_unprepared("DELETE FROM songs WHERE title = 'A'")
        .await
        .unwrap();

    assert_eq!(
        f.cached_list().await,
        Some(vec!["A".to_owned(), "B".to_owned()]),
        "before commit the cached (committed) value is still served"
    );
    let (_, list, a, b, _) = f.read_all().await;
    assert!(!(list || a || b), "nothing is invalidated before commit");

    tx.commit().await.unwrap();

    assert_eq!(
        f.cached_list().await,
        None,
        "commit returned: the list is a miss"
    );
    let (titles, list, a, b, user) = f.read_all().await;
    assert!(list && a && b);
    assert!(!user, "the transaction did not write users");
    assert_eq!(titles, ["B2"]);
}

#[tokio::test]
async fn explicit_rollback_invalidates_nothing() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let tx = f.db().begin().await.unwrap();
    set_title(&tx, &f.a, "A2").await;
    song::Entity::delete_many().exec(&tx).await.unwrap();
    set_name(&tx, &f.author, "bea").await;
    tx.rollback().await.unwrap();

    let (titles, list, a, b, user) = f.read_all().await;
    assert!(
        !(list || a || b || user),
        "a rolled-back transaction invalidates nothing"
    );
    assert_eq!(titles, ["A", "B"]);
    let in_db = song::Entity::find().all(&f.t.raw).await.unwrap();
    assert_eq!(in_db.len(), 2, "premise: the rollback happened");
}

#[tokio::test]
async fn dropping_a_transaction_without_commit_invalidates_nothing() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    {
        let tx = f.db().begin().await.unwrap();
        set_title(&tx, &f.a, "A2").await;
        set_name(&tx, &f.author, "bea").await;
        // Dropped here: SeaORM rolls back.
    }

    let (titles, list, a, b, user) = f.read_all().await;
    assert!(
        !(list || a || b || user),
        "a dropped transaction invalidates nothing"
    );
    assert_eq!(titles, ["A", "B"]);
    let in_db = song::Entity::find_by_id(f.a.id)
        .one(&f.t.raw)
        .await
        .unwrap();
    assert_eq!(in_db.unwrap().title, "A", "premise: the drop rolled back");
}

#[tokio::test]
async fn transaction_closure_that_returns_ok_commits_then_invalidates() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let a = f.a.clone();
    let cache = f.t.cache.clone();
    let list_key = SONG_LIST;
    f.db()
        .transaction::<_, (), DbErr>(|tx| {
            Box::pin(async move {
                set_title(tx, &a, "A2").await;
                assert!(
                    cache.get::<Vec<String>>(list_key).await.is_some(),
                    "still cached inside the transaction"
                );
                Ok(())
            })
        })
        .await
        .unwrap();

    let (titles, list, a, _, user) = f.read_all().await;
    assert!(list && a, "committed by the closure: invalidated");
    assert!(!user);
    assert_eq!(titles, ["A2", "B"]);
}

#[tokio::test]
async fn transaction_closure_that_returns_err_rolls_back_and_invalidates_nothing() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let a = f.a.clone();
    let result = f
        .db()
        .transaction::<_, (), DbErr>(|tx| {
            Box::pin(async move {
                set_title(tx, &a, "A2").await;
                Err(DbErr::Custom("changed my mind".into()))
            })
        })
        .await;
    assert!(matches!(
        result,
        Err(TransactionError::Transaction(DbErr::Custom(_)))
    ));

    let (titles, list, a, b, _) = f.read_all().await;
    assert!(!(list || a || b), "rolled back: nothing invalidated");
    assert_eq!(titles, ["A", "B"]);
}

// --- Savepoints ------------------------------------------------------------------------------

#[tokio::test]
async fn savepoint_commit_then_outer_commit_invalidates_only_after_the_outer_commit() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let outer = f.db().begin().await.unwrap();
    let inner = outer.begin().await.unwrap();
    set_title(&inner, &f.a, "A2").await;
    inner.commit().await.unwrap();

    let (_, list, a, _, _) = f.read_all().await;
    assert!(
        !(list || a),
        "a savepoint's commit is not a commit: nothing invalidated yet"
    );

    outer.commit().await.unwrap();
    let (titles, list, a, _, user) = f.read_all().await;
    assert!(
        list && a,
        "the outer commit publishes the savepoint's writes"
    );
    assert!(!user);
    assert_eq!(titles, ["A2", "B"]);
}

#[tokio::test]
async fn savepoint_closure_inside_a_transaction_closure_invalidates_after_the_outer_commit() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let a = f.a.clone();
    let cache = f.t.cache.clone();
    f.db()
        .transaction::<_, (), DbErr>(|tx| {
            Box::pin(async move {
                tx.transaction::<_, (), DbErr>(|inner| {
                    Box::pin(async move {
                        set_title(inner, &a, "A2").await;
                        Ok(())
                    })
                })
                .await
                .map_err(|e| DbErr::Custom(e.to_string()))?;
                assert!(
                    cache.get::<Vec<String>>(SONG_LIST).await.is_some(),
                    "the savepoint committed, the transaction did not"
                );
                Ok(())
            })
        })
        .await
        .unwrap();

    let (titles, list, a, _, _) = f.read_all().await;
    assert!(list && a);
    assert_eq!(titles, ["A2", "B"]);
}

#[tokio::test]
async fn savepoint_commit_then_outer_rollback_invalidates_nothing() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let outer = f.db().begin().await.unwrap();
    let inner = outer.begin().await.unwrap();
    set_title(&inner, &f.a, "A2").await;
    set_name(&inner, &f.author, "bea").await;
    inner.commit().await.unwrap();
    outer.rollback().await.unwrap();

    let (titles, list, a, b, user) = f.read_all().await;
    assert!(
        !(list || a || b || user),
        "everything rolled back: nothing invalidated"
    );
    assert_eq!(titles, ["A", "B"]);
}

#[tokio::test]
async fn savepoint_rollback_then_outer_commit_invalidates_only_the_outer_writes() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let outer = f.db().begin().await.unwrap();
    set_title(&outer, &f.b, "B2").await;
    let inner = outer.begin().await.unwrap();
    set_name(&inner, &f.author, "bea").await;
    set_title(&inner, &f.a, "A2").await;
    inner.rollback().await.unwrap();
    outer.commit().await.unwrap();

    let (titles, list, _, b, user) = f.read_all().await;
    assert!(list && b, "the outer transaction's own write is published");
    assert!(
        !user,
        "the users write was rolled back with its savepoint: its entry must stay cached"
    );
    assert_eq!(titles, ["A", "B2"]);
    let (name, _) = user_name_cached(&f.t, f.author.id).await;
    assert_eq!(name.as_deref(), Some("ann"));
}

#[tokio::test]
async fn savepoint_rollback_then_outer_commit_keeps_rows_only_the_savepoint_wrote() {
    // Row precision: A was written (and rolled back) only inside the savepoint.
    let Some(f) = Fixture::new().await else {
        return;
    };
    let outer = f.db().begin().await.unwrap();
    set_title(&outer, &f.b, "B2").await;
    let inner = outer.begin().await.unwrap();
    set_title(&inner, &f.a, "A2").await;
    inner.rollback().await.unwrap();
    outer.commit().await.unwrap();

    let (_, _, a, b, _) = f.read_all().await;
    assert!(b);
    assert!(
        !a,
        "A's only write was rolled back: its by-id entry must stay cached"
    );
}

// --- Reads inside transactions ---------------------------------------------------------

#[tokio::test]
async fn read_in_a_transaction_that_wrote_the_table_bypasses_the_cache_and_sees_its_own_write() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let computed = AtomicUsize::new(0);
    let before = song_by_id_call(&f.t.cache, f.db(), f.b.id, &computed).await;
    assert_eq!(before.unwrap().title, "B");
    let titles = song_titles_call(&f.t.cache, f.db(), &computed).await;
    assert_eq!(titles, ["A", "B"]);
    assert_eq!(computed.load(Ordering::SeqCst), 2);

    let tx = f.db().begin().await.unwrap();
    set_title(&tx, &f.b, "B2").await;
    let bypassed = f.t.cache.stats().bypassed;
    let inside = song_by_id_call(&f.t.cache, &tx, f.b.id, &computed).await;
    assert_eq!(
        inside.unwrap().title,
        "B2",
        "a read inside the transaction must see its uncommitted write, not the cached row"
    );
    let titles = song_titles_call(&f.t.cache, &tx, &computed).await;
    assert_eq!(titles, ["A", "B2"]);
    assert_eq!(computed.load(Ordering::SeqCst), 4);
    assert_eq!(f.t.cache.stats().bypassed, bypassed + 2);

    // Outside the transaction the committed value is still what is cached and served.
    let cached =
        f.t.cache
            .get::<Option<song::Model>>(call_key(f.b.id).as_str())
            .await
            .expect("the pre-write entry is still cached (not overwritten by the bypass)");
    assert_eq!(cached.as_ref().as_ref().unwrap().title, "B");
    tx.commit().await.unwrap();

    let after = song_by_id_call(&f.t.cache, f.db(), f.b.id, &computed).await;
    assert_eq!(after.unwrap().title, "B2");
    assert_eq!(
        computed.load(Ordering::SeqCst),
        5,
        "commit invalidated the entry"
    );
}

#[tokio::test]
async fn read_in_a_transaction_is_served_from_the_cache_until_the_transaction_writes() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let computed = AtomicUsize::new(0);
    song_by_id_call(&f.t.cache, f.db(), f.a.id, &computed).await;
    assert_eq!(computed.load(Ordering::SeqCst), 1);

    let tx = f.db().begin().await.unwrap();
    let hits = f.t.cache.stats().hits;
    let inside = song_by_id_call(&f.t.cache, &tx, f.a.id, &computed).await;
    assert_eq!(inside.unwrap().title, "A");
    assert_eq!(
        computed.load(Ordering::SeqCst),
        1,
        "the transaction wrote nothing: reads are served from the cache"
    );
    assert_eq!(f.t.cache.stats().hits, hits + 1);

    // Once it wrote anything (here only users), its reads bypass the cache: an entry
    // depends on what its computation was observed to read, which its declared models
    // need not name, so no write of the transaction can be ruled out.
    set_name(&tx, &f.author, "bea").await;
    let inside = song_by_id_call(&f.t.cache, &tx, f.a.id, &computed).await;
    assert_eq!(inside.unwrap().title, "A");
    assert_eq!(
        computed.load(Ordering::SeqCst),
        2,
        "computed, bypassing the cache"
    );
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn miss_computed_inside_a_transaction_is_not_stored() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let computed = AtomicUsize::new(0);
    let tx = f.db().begin().await.unwrap();
    set_name(&tx, &f.author, "bea").await;
    let sets = f.t.cache.stats().sets;

    let inside = song_by_id_call(&f.t.cache, &tx, f.a.id, &computed).await;
    assert_eq!(inside.unwrap().title, "A");
    assert_eq!(computed.load(Ordering::SeqCst), 1);
    assert_eq!(
        f.t.cache.stats().sets,
        sets,
        "nothing stored from inside a transaction"
    );
    assert!(
        f.t.cache
            .get::<Option<song::Model>>(call_key(f.a.id).as_str())
            .await
            .is_none()
    );
    // Again inside: still a miss, computed again.
    song_by_id_call(&f.t.cache, &tx, f.a.id, &computed).await;
    assert_eq!(computed.load(Ordering::SeqCst), 2);
    tx.commit().await.unwrap();

    // Outside, it is cached as usual.
    song_by_id_call(&f.t.cache, f.db(), f.a.id, &computed).await;
    song_by_id_call(&f.t.cache, f.db(), f.a.id, &computed).await;
    assert_eq!(computed.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn read_after_an_unclassifiable_statement_in_a_transaction_bypasses_every_table() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let computed = AtomicUsize::new(0);
    song_by_id_call(&f.t.cache, f.db(), f.a.id, &computed).await;

    refresh_song_stats_procedure(&f.t).await;

    let tx = f.db().begin().await.unwrap();
    // The call fails on SQLite, which may have written anything all the same (and leaves
    // the transaction usable); on PostgreSQL and MariaDB it runs and writes songs.
    let called = tx.execute_unprepared(CALL_REFRESH_SONG_STATS).await;
    assert_eq!(called.is_ok(), DB != Db::Sqlite, "premise: {called:?}");
    let inside = song_by_id_call(&f.t.cache, &tx, f.a.id, &computed).await;
    assert_eq!(
        computed.load(Ordering::SeqCst),
        2,
        "after a statement of unknown effect, every table counts as written"
    );
    assert_eq!(inside.unwrap().title, refreshed("A"));
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn read_in_a_savepoint_sees_the_outer_transactions_uncommitted_write() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let computed = AtomicUsize::new(0);
    song_by_id_call(&f.t.cache, f.db(), f.b.id, &computed).await;

    let outer = f.db().begin().await.unwrap();
    set_title(&outer, &f.b, "B2").await;
    let inner = outer.begin().await.unwrap();
    let inside = song_by_id_call(&f.t.cache, &inner, f.b.id, &computed).await;
    assert_eq!(
        inside.unwrap().title,
        "B2",
        "the savepoint's connection sees the outer write: the cached row is stale for it"
    );
    inner.commit().await.unwrap();
    outer.rollback().await.unwrap();
}

#[tokio::test]
async fn read_through_the_outer_transaction_sees_the_write_of_an_open_savepoint() {
    // The savepoint is still open: its write is part of what the outer transaction's
    // connection sees, though it has not been merged into the outer's pending writes yet.
    let Some(f) = Fixture::new().await else {
        return;
    };
    let computed = AtomicUsize::new(0);
    song_by_id_call(&f.t.cache, f.db(), f.b.id, &computed).await;

    let outer = f.db().begin().await.unwrap();
    let inner = outer.begin().await.unwrap();
    set_title(&inner, &f.b, "B2").await;
    let seen = song_by_id_call(&f.t.cache, &outer, f.b.id, &computed).await;
    assert_eq!(
        seen.unwrap().title,
        "B2",
        "the outer transaction's connection sees the savepoint's write: the cached row is stale for it"
    );
    inner.rollback().await.unwrap();
    outer.rollback().await.unwrap();
}

#[tokio::test]
async fn plain_sea_orm_transaction_as_connection_bypasses_the_cache() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let computed = AtomicUsize::new(0);
    song_by_id_call(&f.t.cache, f.db(), f.a.id, &computed).await;
    song_by_id_call(&f.t.cache, f.db(), f.a.id, &computed).await;
    assert_eq!(computed.load(Ordering::SeqCst), 1, "premise: cached");

    // Not begun through the wrapper: querycache cannot see what it writes.
    let tx = f.t.raw.begin().await.unwrap();
    set_title(&tx, &f.a, "A2").await;
    let bypassed = f.t.cache.stats().bypassed;
    let inside = song_by_id_call(&f.t.cache, &tx, f.a.id, &computed).await;
    assert_eq!(inside.unwrap().title, "A2");
    assert_eq!(computed.load(Ordering::SeqCst), 2);
    assert_eq!(f.t.cache.stats().bypassed, bypassed + 1);
    // Whatever the table: what it wrote is not known.
    let titles = song_titles_call(&f.t.cache, &tx, &computed).await;
    assert_eq!(titles, ["A2", "B"]);
    assert_eq!(computed.load(Ordering::SeqCst), 3);
    tx.rollback().await.unwrap();
}

// --- A transaction the database ends early -------------------------------------------------

/// Song titles as the database holds them now, in id order.
async fn stored_titles(t: &TestDb) -> Vec<String> {
    song::Entity::find()
        .order_by_asc(song::Column::Id)
        .all(&t.raw)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.title)
        .collect()
}

/// The cached list and both cached songs agree with the database; returns what it holds.
async fn agree(f: &Fixture, what: &str) -> Vec<String> {
    let stored = stored_titles(&f.t).await;
    let (titles, ..) = f.read_all().await;
    assert_eq!(titles, stored, "the list, {what}");
    let (a, _) = title_cached(&f.t, f.a.id).await;
    let (b, _) = title_cached(&f.t, f.b.id).await;
    let by_id: Vec<String> = [a, b].into_iter().flatten().collect();
    assert_eq!(by_id, stored, "by id, {what}");
    stored
}

#[tokio::test]
async fn ddl_in_a_transaction_leaves_no_stale_entry_after_its_rollback() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let tx = f.db().begin().await.unwrap();
    set_title(&tx, &f.a, "A2").await;
    agree(&f, "inside, before the DDL").await;
    // MySQL commits the open transaction before running it; the others run it inside.
    tx.execute_unprepared("CREATE TABLE early_commit (id INT PRIMARY KEY)")
        .await
        .unwrap();
    agree(&f, "after the DDL").await;
    set_title(&tx, &f.b, "B2").await;
    agree(&f, "after the write that follows").await;
    tx.rollback().await.unwrap();
    let kept = agree(&f, "after the rollback").await;
    let expected = if DB == Db::MySql {
        ["A2", "B2"]
    } else {
        ["A", "B"]
    };
    assert_eq!(kept, expected, "premise: what the database kept");
}

#[tokio::test]
async fn a_raw_commit_sent_through_a_transaction_ends_it_early() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let tx = f.db().begin().await.unwrap();
    set_title(&tx, &f.a, "A2").await;
    tx.execute_unprepared("COMMIT").await.unwrap();
    agree(&f, "after the raw COMMIT").await;
    // Outside any transaction now: the write commits at once.
    set_title(&tx, &f.b, "B2").await;
    agree(&f, "after the write that follows").await;
    // SeaORM's ROLLBACK finds no transaction (a warning on PostgreSQL, an error on SQLite).
    let _ = tx.rollback().await;
    let kept = agree(&f, "after the rollback").await;
    assert_eq!(kept, ["A2", "B2"], "premise: both writes committed");
}
