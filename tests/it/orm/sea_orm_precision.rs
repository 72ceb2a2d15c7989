//! What a SeaORM write through `CachedConnection` must *not* invalidate, on SQLite and on
//! PostgreSQL (`super::DB`): by-id entries of rows it did not write, other tables, anything
//! at all for reads, writes the wrapper cannot see (unless declared, for cascades), and ORM
//! writes under the `manual` and `ttl` strategies. (What it must invalidate is in `sea_orm_writes`.)

use querycache::{Cache, EntryOptions, Tag, config::InvalidationStrategy};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, ModelTrait,
    PaginatorTrait, QueryFilter, Set,
};

use super::DB;
use super::common::{
    CALL_REFRESH_SONG_STATS, Fixture, refresh_song_stats_procedure, refreshed, title, titles,
    user_by_id, user_list,
};
use crate::support::{Db, song, user};

// --- Row-level precision -------------------------------------------------------------

#[tokio::test]
async fn active_model_update_of_b_keeps_a_cached_and_invalidates_b_and_the_list() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let mut b = f.b.clone().into_active_model();
    b.title = Set("B2".into());
    b.update(f.db()).await.expect("update");

    let s = f.state().await;
    assert!(
        !s.a.computed,
        "a write to row B must not invalidate A's by-id entry"
    );
    assert!(s.b.computed && s.list.computed);
    assert_eq!(title(&s.a.value), Some("A"));
    assert_eq!(title(&s.b.value), Some("B2"));
    assert_eq!(titles(&s.list.value), ["A", "B2"]);
}

#[tokio::test]
async fn delete_by_id_of_b_keeps_a_cached_and_invalidates_b_and_the_list() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    song::Entity::delete_by_id(f.b.id)
        .exec(f.db())
        .await
        .expect("delete_by_id");

    let s = f.state().await;
    assert!(
        !s.a.computed,
        "deleting row B must not invalidate A's by-id entry"
    );
    assert!(s.b.computed && s.list.computed);
    assert_eq!(s.b.value, None);
    assert_eq!(titles(&s.list.value), ["A"]);
}

#[tokio::test]
async fn active_model_delete_of_b_keeps_a_cached_and_invalidates_b_and_the_list() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    f.b.clone()
        .into_active_model()
        .delete(f.db())
        .await
        .expect("delete");

    let s = f.state().await;
    assert!(
        !s.a.computed,
        "deleting row B must not invalidate A's by-id entry"
    );
    assert!(s.b.computed && s.list.computed);
    assert_eq!(s.b.value, None);
}

#[tokio::test]
async fn execute_raw_update_of_b_with_a_bound_id_keeps_a_cached() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let stmt = DB.statement(
        "UPDATE songs SET title = ? WHERE id = ?",
        ["B2".into(), f.b.id.into()],
    );
    f.db().execute_raw(stmt).await.expect("update");

    let s = f.state().await;
    assert!(
        !s.a.computed,
        "a write to row B must not invalidate A's by-id entry"
    );
    assert!(s.b.computed && s.list.computed);
    assert_eq!(title(&s.b.value), Some("B2"));
}

#[tokio::test]
async fn update_many_of_unknown_rows_invalidates_by_id_entries_of_rows_it_did_not_touch() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let result = song::Entity::update_many()
        .col_expr(song::Column::Title, Expr::value("B2"))
        .filter(song::Column::Title.eq("B"))
        .exec(f.db())
        .await
        .expect("update_many");
    assert_eq!(result.rows_affected, 1, "premise: only B matched");

    let s = f.state().await;
    assert!(
        s.a.computed && s.b.computed && s.list.computed,
        "a write whose rows are unknown must invalidate every by-id entry of the table"
    );
    assert_eq!(title(&s.a.value), Some("A"));
    assert_eq!(title(&s.b.value), Some("B2"));
}

#[tokio::test]
async fn a_write_to_songs_keeps_cached_users_entries() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let (cache, db) = (&f.t.cache, f.db());
    user_list(cache, db).await;
    user_by_id(cache, db, f.author.id).await;

    let mut b = f.b.clone().into_active_model();
    b.title = Set("B2".into());
    b.update(db).await.expect("update");

    assert!(
        !user_list(cache, db).await.computed,
        "users list must survive a songs write"
    );
    assert!(!user_by_id(cache, db, f.author.id).await.computed);
    assert!(f.state().await.b.computed);
}

#[tokio::test]
async fn an_unclassifiable_statement_invalidates_every_model_tagged_entry_and_nothing_else() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let (cache, db) = (&f.t.cache, f.db());
    let uid = f.author.id;
    user_by_id(cache, db, uid).await;
    let app_options = EntryOptions::new().tag(Tag::new("app:banner").unwrap());
    cache
        .set("app:banner", "hello".to_owned(), app_options)
        .await
        .unwrap();

    // A stored procedure may write anything. SQLite rejects the statement; on PostgreSQL
    // and MariaDB it runs and writes songs. Invalidation happens whatever the outcome.
    refresh_song_stats_procedure(&f.t).await;
    let called = db.execute_unprepared(CALL_REFRESH_SONG_STATS).await;
    assert_eq!(called.is_ok(), DB != Db::Sqlite, "premise: {called:?}");

    let s = f.state().await;
    assert!(
        s.list.computed && s.a.computed && s.b.computed,
        "every songs entry must be invalidated"
    );
    assert_eq!(titles(&s.list.value), [refreshed("A"), refreshed("B")]);
    assert_eq!(title(&s.a.value), Some(refreshed("A").as_str()));
    assert!(
        user_by_id(cache, db, uid).await.computed,
        "every users entry must be invalidated"
    );
    assert_eq!(
        cache
            .get::<String>("app:banner")
            .await
            .as_deref()
            .map(String::as_str),
        Some("hello"),
        "an entry without model tags does not depend on model:#all"
    );
}

// --- What does not invalidate ------------------------------------------------------------

#[tokio::test]
async fn writes_through_the_unwrapped_connection_are_not_seen_and_leave_stale_entries() {
    // Documented limitation: the plain DatabaseConnection (or another process) bypasses
    // the wrapper, so the cache keeps serving what it had.
    let Some(f) = Fixture::new().await else {
        return;
    };
    f.t.raw
        .execute_unprepared(&format!(
            "UPDATE songs SET title = 'A2' WHERE id = {}",
            f.a.id
        ))
        .await
        .expect("update");

    let in_db = song::Entity::find_by_id(f.a.id)
        .one(&f.t.raw)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(in_db.title, "A2", "premise: the database has the new title");
    let s = f.state().await;
    assert!(!s.list.computed && !s.a.computed);
    assert_eq!(title(&s.a.value), Some("A"), "stale, as documented");
    assert_eq!(titles(&s.list.value), ["A", "B"]);
}

#[tokio::test]
async fn reads_through_the_wrapper_invalidate_nothing() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let db = f.db();
    let invalidations = f.t.cache.stats().invalidations;

    song::Entity::find().all(db).await.unwrap();
    song::Entity::find_by_id(f.a.id).one(db).await.unwrap();
    song::Entity::find().count(db).await.unwrap();
    song::Entity::find()
        .find_also_related(user::Entity)
        .all(db)
        .await
        .unwrap();
    f.a.find_related(user::Entity).one(db).await.unwrap();
    db.query_all_raw(DB.text("SELECT id, updated_at FROM songs WHERE title <> 'deleted'"))
        .await
        .unwrap();
    db.query_one_raw(DB.statement("SELECT COUNT(*) FROM songs WHERE id = ?", [f.a.id.into()]))
        .await
        .unwrap();

    assert_eq!(
        f.t.cache.stats().invalidations,
        invalidations,
        "reads must not invalidate any tag"
    );
    let s = f.state().await;
    assert!(!s.list.computed && !s.a.computed && !s.b.computed);
}

/// Deletes the author, whose songs go with them (`ON DELETE CASCADE`); returns the song
/// entries read afterwards.
async fn delete_author_with_cascade(f: &Fixture) -> super::common::State {
    user::Entity::delete_by_id(f.author.id)
        .exec(f.db())
        .await
        .expect("delete user");
    let left = song::Entity::find()
        .all(&f.t.raw)
        .await
        .expect("read songs");
    assert!(left.is_empty(), "premise: the cascade deleted the songs");
    f.state().await
}

#[tokio::test]
async fn a_cascading_delete_reaches_the_tables_it_cascades_to_from_the_catalog() {
    // `songs.author_id REFERENCES users ON DELETE CASCADE`: deleting a user deletes rows of
    // songs that no statement names; the catalog says so, with nothing declared.
    let Some(f) = Fixture::new().await else {
        return;
    };
    let s = delete_author_with_cascade(&f).await;
    assert!(
        s.list.computed && s.a.computed && s.b.computed,
        "every songs entry is invalidated by the cascade"
    );
    assert!(s.list.value.is_empty());
    assert_eq!((s.a.value, s.b.value), (None, None));
}

// --- CACHE_INVALIDATION_STRATEGY -------------------------------------------------------

#[tokio::test]
async fn manual_strategy_ignores_orm_writes_but_honours_invalidate_tags() {
    let cache = Cache::builder()
        .invalidation_strategy(InvalidationStrategy::Manual)
        .build()
        .expect("config");
    let Some(f) = Fixture::with_cache(cache).await else {
        return;
    };

    let mut a = f.a.clone().into_active_model();
    a.title = Set("A2".into());
    a.update(f.db()).await.expect("update");
    song::Entity::delete_by_id(f.b.id)
        .exec(f.db())
        .await
        .expect("delete");

    let s = f.state().await;
    assert!(
        !s.list.computed && !s.a.computed && !s.b.computed,
        "manual strategy: ORM writes invalidate nothing"
    );
    assert_eq!(title(&s.a.value), Some("A"));

    let touched =
        f.t.cache
            .invalidate_tags([Tag::row("songs", f.a.id), Tag::model("songs")])
            .await;
    assert_eq!(touched, 2);
    let s = f.state().await;
    assert!(
        s.list.computed && s.a.computed,
        "explicit invalidation still works"
    );
    assert!(!s.b.computed, "B depends on neither tag");
    assert_eq!(title(&s.a.value), Some("A2"));
    assert_eq!(titles(&s.list.value), ["A2"]);
}

#[tokio::test]
async fn ttl_strategy_ignores_orm_writes_and_invalidate_tags() {
    let cache = Cache::builder()
        .invalidation_strategy(InvalidationStrategy::Ttl)
        .build()
        .expect("config");
    let Some(f) = Fixture::with_cache(cache).await else {
        return;
    };

    let mut a = f.a.clone().into_active_model();
    a.title = Set("A2".into());
    a.update(f.db()).await.expect("update");
    assert_eq!(f.t.cache.invalidate_tags([Tag::model("songs")]).await, 0);

    let s = f.state().await;
    assert!(!s.list.computed && !s.a.computed);
    assert_eq!(title(&s.a.value), Some("A"));
}
