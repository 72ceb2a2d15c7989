//! Every kind of SeaORM write, made through `CachedConnection`, invalidates the cached
//! queries that depend on what it wrote — with no application code — and nothing else.
//!
//! Each test caches a list query (`model:songs`) and by-id queries for songs A and B (row
//! tag + `#bulk`), performs one write, then re-reads through the cache: `computed` says
//! whether the query ran again (a miss), and the value must reflect the write.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use querycache::orm::sea_orm::CachedConnection;
use querycache::{Cache, CacheConfig, CacheValue, EntryOptions, InvalidationStrategy, Tag};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, IntoActiveModel,
    ModelTrait, PaginatorTrait, QueryFilter, QueryOrder, Set, Statement,
};

use crate::support::{TestDb, song, user};

const SONG_LIST: &str = "songs:list";
const USER_LIST: &str = "users:list";

/// A value read through the cache, and whether the read ran the query (a miss).
#[derive(Debug)]
struct Read<T> {
    value: T,
    computed: bool,
}

async fn cached<T, Fut>(
    cache: &Cache,
    key: &str,
    options: EntryOptions,
    query: impl FnOnce() -> Fut,
) -> Read<T>
where
    T: CacheValue + Clone,
    Fut: Future<Output = Result<T, DbErr>>,
{
    let computed = AtomicBool::new(false);
    let value = cache
        .try_get_or_compute(key, options, || {
            computed.store(true, Ordering::SeqCst);
            query()
        })
        .await
        .unwrap_or_else(|e| panic!("query behind {key} failed: {e}"));
    Read {
        value: (*value).clone(),
        computed: computed.into_inner(),
    }
}

fn song_key(id: i32) -> String {
    format!("songs:{id}")
}

fn user_key(id: i32) -> String {
    format!("users:{id}")
}

/// All songs, by id: depends on the whole table.
async fn song_list(cache: &Cache, db: &CachedConnection) -> Read<Vec<song::Model>> {
    let options = EntryOptions::new().tag(Tag::model("songs"));
    cached(cache, SONG_LIST, options, || {
        song::Entity::find().order_by_asc(song::Column::Id).all(db)
    })
    .await
}

/// One song: depends on its row and on bulk writes to the table.
async fn song_by_id(cache: &Cache, db: &CachedConnection, id: i32) -> Read<Option<song::Model>> {
    let options = EntryOptions::new().tags([Tag::row("songs", id), Tag::bulk("songs")]);
    cached(cache, &song_key(id), options, || {
        song::Entity::find_by_id(id).one(db)
    })
    .await
}

async fn user_list(cache: &Cache, db: &CachedConnection) -> Read<Vec<user::Model>> {
    let options = EntryOptions::new().tag(Tag::model("users"));
    cached(cache, USER_LIST, options, || {
        user::Entity::find().order_by_asc(user::Column::Id).all(db)
    })
    .await
}

async fn user_by_id(cache: &Cache, db: &CachedConnection, id: i32) -> Read<Option<user::Model>> {
    let options = EntryOptions::new().tags([Tag::row("users", id), Tag::bulk("users")]);
    cached(cache, &user_key(id), options, || {
        user::Entity::find_by_id(id).one(db)
    })
    .await
}

fn titles(songs: &[song::Model]) -> Vec<&str> {
    songs.iter().map(|s| s.title.as_str()).collect()
}

fn title(song: &Option<song::Model>) -> Option<&str> {
    song.as_ref().map(|s| s.title.as_str())
}

/// A database with one author and songs "A" and "B", whose list and by-id queries are
/// cached (and checked to be hits).
struct Fixture {
    t: TestDb,
    author: user::Model,
    a: song::Model,
    b: song::Model,
}

/// The three song queries, read back through the cache.
struct State {
    list: Read<Vec<song::Model>>,
    a: Read<Option<song::Model>>,
    b: Read<Option<song::Model>>,
}

impl Fixture {
    async fn new() -> Fixture {
        Self::with(TestDb::new().await).await
    }

    async fn with(t: TestDb) -> Fixture {
        let author = t.user("ann").await;
        let a = t.song(&author, "A").await;
        let b = t.song(&author, "B").await;
        let f = Fixture { t, author, a, b };
        f.warm().await;
        f
    }

    /// Caches the three queries and checks that a second read is a hit: reads through the
    /// wrapper must not invalidate what they just stored.
    async fn warm(&self) {
        let first = self.state().await;
        assert_eq!(titles(&first.list.value), ["A", "B"]);
        let again = self.state().await;
        assert!(
            !again.list.computed && !again.a.computed && !again.b.computed,
            "a second read must be a hit (list {}, A {}, B {} recomputed): \
             reads through the wrapper must not invalidate",
            again.list.computed,
            again.a.computed,
            again.b.computed
        );
    }

    async fn state(&self) -> State {
        let (cache, db) = (&self.t.cache, &self.t.db);
        State {
            list: song_list(cache, db).await,
            a: song_by_id(cache, db, self.a.id).await,
            b: song_by_id(cache, db, self.b.id).await,
        }
    }

    fn db(&self) -> &CachedConnection {
        &self.t.db
    }

    fn new_song(&self, title: &str) -> song::ActiveModel {
        let now = chrono::Utc::now();
        song::ActiveModel {
            title: Set(title.to_owned()),
            artist: Set(format!("{title} artist")),
            author_id: Set(self.author.id),
            content: Set(String::new()),
            archived: Set(false),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
    }

    /// Caches "song `id` does not exist" and returns `id`: the id SQLite's AUTOINCREMENT
    /// gives the next inserted row.
    async fn cache_absent_next_song(&self) -> i32 {
        let next = self.b.id + 1;
        let absent = song_by_id(&self.t.cache, self.db(), next).await;
        assert!(absent.value.is_none());
        let again = song_by_id(&self.t.cache, self.db(), next).await;
        assert!(!again.computed, "the absence of song {next} must be cached");
        next
    }
}

// --- ActiveModel ---------------------------------------------------------------------

#[tokio::test]
async fn active_model_insert_invalidates_the_list_and_a_cached_absence_of_the_new_row() {
    let f = Fixture::new().await;
    let next = f.cache_absent_next_song().await;

    let c = f.new_song("C").insert(f.db()).await.expect("insert");
    assert_eq!(c.id, next, "premise: the new row takes the next id");

    let s = f.state().await;
    assert!(s.list.computed, "the insert must invalidate the list");
    assert_eq!(titles(&s.list.value), ["A", "B", "C"]);
    let new_row = song_by_id(&f.t.cache, f.db(), next).await;
    assert!(
        new_row.computed,
        "a by-id entry that cached the absence of the inserted row must be invalidated"
    );
    assert_eq!(title(&new_row.value), Some("C"));
}

#[tokio::test]
async fn an_insert_returning_its_id_keeps_other_rows_cached() {
    // SQLite and PostgreSQL return the new row's id (RETURNING): the insert touches that
    // row, not every by-id entry of the table.
    let f = Fixture::new().await;
    let next = f.cache_absent_next_song().await;
    f.new_song("C").insert(f.db()).await.expect("insert");

    let s = f.state().await;
    assert!(s.list.computed, "the list depends on the table");
    assert!(
        !s.a.computed && !s.b.computed,
        "A and B were not written: still hits"
    );
    assert!(
        song_by_id(&f.t.cache, f.db(), next).await.computed,
        "the new row's entry moved"
    );
}

#[tokio::test]
async fn an_upsert_on_the_primary_key_touches_the_row_it_names() {
    // The returned ids are not used for upserts (a conflict on another unique key could
    // update a row the statement does not name); `ON CONFLICT (id)` with the id given
    // names its row itself.
    let f = Fixture::new().await;
    let sql = format!(
        "INSERT INTO songs (id, title, artist, author_id) VALUES ({}, 'A2', 'x', {}) \
         ON CONFLICT (id) DO UPDATE SET title = excluded.title RETURNING id",
        f.a.id, f.author.id
    );
    f.db()
        .query_all_raw(Statement::from_string(DbBackend::Sqlite, sql))
        .await
        .expect("upsert");
    let s = f.state().await;
    assert!(s.a.computed, "A was updated");
    assert_eq!(title(&s.a.value), Some("A2"));
    assert!(!s.b.computed, "B was not");
}

#[tokio::test]
async fn an_upsert_on_another_key_invalidates_the_conflicting_row() {
    let f = Fixture::new().await;
    let sql = format!(
        "INSERT INTO users (name, email) VALUES ('ann2', '{}') \
         ON CONFLICT (email) DO UPDATE SET name = excluded.name RETURNING id",
        f.author.email
    );
    let cache = &f.t.cache;
    assert!(user_by_id(cache, f.db(), f.author.id).await.computed);
    assert!(!user_by_id(cache, f.db(), f.author.id).await.computed);
    f.db()
        .query_all_raw(Statement::from_string(DbBackend::Sqlite, sql))
        .await
        .expect("upsert");
    let author = user_by_id(cache, f.db(), f.author.id).await;
    assert!(
        author.computed,
        "the conflicting row was updated through its email"
    );
    assert_eq!(author.value.map(|u| u.name).as_deref(), Some("ann2"));
}

#[tokio::test]
async fn active_model_update_invalidates_its_row_and_the_list() {
    let f = Fixture::new().await;
    let mut a = f.a.clone().into_active_model();
    a.title = Set("A2".into());
    a.update(f.db()).await.expect("update");

    let s = f.state().await;
    assert!(s.list.computed && s.a.computed);
    assert_eq!(titles(&s.list.value), ["A2", "B"]);
    assert_eq!(title(&s.a.value), Some("A2"));
}

#[tokio::test]
async fn active_model_save_of_a_new_model_inserts_and_invalidates_the_list() {
    let f = Fixture::new().await;
    let next = f.cache_absent_next_song().await;

    let saved = f.new_song("C").save(f.db()).await.expect("save (insert)");
    assert_eq!(saved.id.clone().unwrap(), next);

    let s = f.state().await;
    assert!(s.list.computed);
    assert_eq!(titles(&s.list.value), ["A", "B", "C"]);
    let new_row = song_by_id(&f.t.cache, f.db(), next).await;
    assert!(new_row.computed);
    assert_eq!(title(&new_row.value), Some("C"));
}

#[tokio::test]
async fn active_model_save_of_an_existing_model_updates_and_invalidates_its_row_and_the_list() {
    let f = Fixture::new().await;
    let mut b = f.b.clone().into_active_model();
    b.title = Set("B2".into());
    b.save(f.db()).await.expect("save (update)");

    let s = f.state().await;
    assert!(s.list.computed && s.b.computed);
    assert_eq!(titles(&s.list.value), ["A", "B2"]);
    assert_eq!(title(&s.b.value), Some("B2"));
}

#[tokio::test]
async fn active_model_delete_invalidates_its_row_and_the_list() {
    let f = Fixture::new().await;
    f.a.clone()
        .into_active_model()
        .delete(f.db())
        .await
        .expect("delete");

    let s = f.state().await;
    assert!(s.list.computed && s.a.computed);
    assert_eq!(titles(&s.list.value), ["B"]);
    assert_eq!(s.a.value, None);
}

#[tokio::test]
async fn model_delete_invalidates_its_row_and_the_list() {
    let f = Fixture::new().await;
    f.b.clone().delete(f.db()).await.expect("delete");

    let s = f.state().await;
    assert!(s.list.computed && s.b.computed);
    assert_eq!(titles(&s.list.value), ["A"]);
    assert_eq!(s.b.value, None);
}

// --- Entity-level writes (no ActiveModel hooks run for these) --------------------------

#[tokio::test]
async fn entity_insert_exec_with_an_explicit_id_invalidates_the_list_and_that_row() {
    let f = Fixture::new().await;
    let absent = song_by_id(&f.t.cache, f.db(), 100).await;
    assert_eq!(absent.value, None);

    let mut c = f.new_song("C");
    c.id = Set(100);
    let result = song::Entity::insert(c).exec(f.db()).await.expect("insert");
    assert_eq!(result.last_insert_id, 100);

    let s = f.state().await;
    assert!(s.list.computed);
    assert_eq!(titles(&s.list.value), ["A", "B", "C"]);
    let row = song_by_id(&f.t.cache, f.db(), 100).await;
    assert!(
        row.computed,
        "the cached absence of row 100 must be invalidated"
    );
    assert_eq!(title(&row.value), Some("C"));
}

#[tokio::test]
async fn insert_many_invalidates_the_list_and_cached_absences_of_the_new_rows() {
    let f = Fixture::new().await;
    let next = f.cache_absent_next_song().await;

    song::Entity::insert_many([f.new_song("C"), f.new_song("D")])
        .exec(f.db())
        .await
        .expect("insert_many");

    let s = f.state().await;
    assert!(s.list.computed);
    assert_eq!(titles(&s.list.value), ["A", "B", "C", "D"]);
    let new_row = song_by_id(&f.t.cache, f.db(), next).await;
    assert!(new_row.computed);
    assert_eq!(title(&new_row.value), Some("C"));
}

#[tokio::test]
async fn update_many_with_a_filter_invalidates_the_list_and_every_by_id_entry() {
    let f = Fixture::new().await;
    let result = song::Entity::update_many()
        .col_expr(song::Column::Archived, Expr::value(true))
        .filter(song::Column::AuthorId.eq(f.author.id))
        .exec(f.db())
        .await
        .expect("update_many");
    assert_eq!(result.rows_affected, 2);

    let s = f.state().await;
    assert!(s.list.computed && s.a.computed && s.b.computed);
    assert!(s.list.value.iter().all(|s| s.archived));
    assert!(s.a.value.unwrap().archived);
    assert!(s.b.value.unwrap().archived);
}

#[tokio::test]
async fn delete_many_with_a_filter_invalidates_the_list_and_every_by_id_entry() {
    let f = Fixture::new().await;
    let result = song::Entity::delete_many()
        .filter(song::Column::Title.eq("A"))
        .exec(f.db())
        .await
        .expect("delete_many");
    assert_eq!(result.rows_affected, 1);

    let s = f.state().await;
    assert!(s.list.computed && s.a.computed);
    assert!(
        s.b.computed,
        "rows unknown (filter on title): the bulk tag must invalidate B's entry too"
    );
    assert_eq!(titles(&s.list.value), ["B"]);
    assert_eq!(s.a.value, None);
    assert_eq!(title(&s.b.value), Some("B"));
}

#[tokio::test]
async fn delete_by_id_invalidates_its_row_and_the_list() {
    let f = Fixture::new().await;
    let result = song::Entity::delete_by_id(f.a.id)
        .exec(f.db())
        .await
        .expect("delete_by_id");
    assert_eq!(result.rows_affected, 1);

    let s = f.state().await;
    assert!(s.list.computed && s.a.computed);
    assert_eq!(titles(&s.list.value), ["B"]);
    assert_eq!(s.a.value, None);
}

// --- Raw SQL ---------------------------------------------------------------------------

#[tokio::test]
async fn raw_unprepared_insert_invalidates_the_list_and_a_cached_absence_of_the_new_row() {
    let f = Fixture::new().await;
    let next = f.cache_absent_next_song().await;

    f.db()
        .execute_unprepared(&format!(
            "INSERT INTO songs (title, artist, author_id, content) VALUES ('C', 'x', {}, '')",
            f.author.id
        ))
        .await
        .expect("insert");

    let s = f.state().await;
    assert!(s.list.computed);
    assert_eq!(titles(&s.list.value), ["A", "B", "C"]);
    let new_row = song_by_id(&f.t.cache, f.db(), next).await;
    assert!(new_row.computed);
    assert_eq!(title(&new_row.value), Some("C"));
}

#[tokio::test]
async fn raw_unprepared_update_invalidates_its_row_and_the_list() {
    let f = Fixture::new().await;
    f.db()
        .execute_unprepared(&format!(
            "UPDATE songs SET title = 'A2' WHERE id = {}",
            f.a.id
        ))
        .await
        .expect("update");

    let s = f.state().await;
    assert!(s.list.computed && s.a.computed);
    assert_eq!(titles(&s.list.value), ["A2", "B"]);
    assert_eq!(title(&s.a.value), Some("A2"));
}

#[tokio::test]
async fn raw_unprepared_delete_invalidates_its_row_and_the_list() {
    let f = Fixture::new().await;
    f.db()
        .execute_unprepared(&format!("DELETE FROM songs WHERE id = {}", f.b.id))
        .await
        .expect("delete");

    let s = f.state().await;
    assert!(s.list.computed && s.b.computed);
    assert_eq!(titles(&s.list.value), ["A"]);
    assert_eq!(s.b.value, None);
}

#[tokio::test]
async fn raw_upsert_on_an_existing_id_invalidates_that_row_and_the_list() {
    let f = Fixture::new().await;
    f.db()
        .execute_unprepared(&format!(
            "INSERT INTO songs (id, title, artist, author_id) VALUES ({}, 'A2', 'x', {}) \
             ON CONFLICT (id) DO UPDATE SET title = excluded.title",
            f.a.id, f.author.id
        ))
        .await
        .expect("upsert");

    let s = f.state().await;
    assert!(s.list.computed && s.a.computed);
    assert_eq!(titles(&s.list.value), ["A2", "B"]);
    assert_eq!(title(&s.a.value), Some("A2"));
}

#[tokio::test]
async fn execute_raw_update_with_a_bound_id_invalidates_its_row_and_the_list() {
    let f = Fixture::new().await;
    let stmt = Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "UPDATE songs SET title = ? WHERE id = ?",
        ["B2".into(), f.b.id.into()],
    );
    let result = f.db().execute_raw(stmt).await.expect("update");
    assert_eq!(result.rows_affected(), 1);

    let s = f.state().await;
    assert!(s.list.computed && s.b.computed);
    assert_eq!(titles(&s.list.value), ["A", "B2"]);
    assert_eq!(title(&s.b.value), Some("B2"));
}

#[tokio::test]
async fn delete_without_where_the_sqlite_truncate_invalidates_every_song_entry() {
    let f = Fixture::new().await;
    f.db()
        .execute_unprepared("DELETE FROM songs")
        .await
        .expect("delete all");

    let s = f.state().await;
    assert!(s.list.computed && s.a.computed && s.b.computed);
    assert!(s.list.value.is_empty());
    assert_eq!((s.a.value, s.b.value), (None, None));
}

#[tokio::test]
async fn multi_statement_raw_text_invalidates_both_tables_it_writes() {
    let f = Fixture::new().await;
    let (cache, db) = (&f.t.cache, f.db());
    let uid = f.author.id;
    user_list(cache, db).await;
    user_by_id(cache, db, uid).await;
    assert!(!user_by_id(cache, db, uid).await.computed);

    db.execute_unprepared(&format!(
        "UPDATE users SET name = 'bea' WHERE id = {uid}; \
         UPDATE songs SET title = 'A2' WHERE id = {}",
        f.a.id
    ))
    .await
    .expect("two updates");

    let users = user_list(cache, db).await;
    let user = user_by_id(cache, db, uid).await;
    assert!(
        users.computed && user.computed,
        "the users entries must be invalidated"
    );
    assert_eq!(user.value.map(|u| u.name).as_deref(), Some("bea"));
    assert_eq!(users.value[0].name, "bea");
    let s = f.state().await;
    assert!(
        s.list.computed && s.a.computed,
        "the songs entries must be invalidated"
    );
    assert_eq!(titles(&s.list.value), ["A2", "B"]);
}

#[tokio::test]
async fn raw_text_that_fails_midway_still_invalidates_what_its_first_statement_wrote() {
    let f = Fixture::new().await;
    let result = f
        .db()
        .execute_unprepared(&format!(
            "UPDATE songs SET title = 'A2' WHERE id = {}; INSERT INTO no_such_table VALUES (1)",
            f.a.id
        ))
        .await;
    assert!(result.is_err(), "premise: the second statement fails");

    let s = f.state().await;
    assert_eq!(
        titles(&s.list.value),
        ["A2", "B"],
        "premise: the first one committed"
    );
    assert!(s.list.computed && s.a.computed);
    assert_eq!(title(&s.a.value), Some("A2"));
}

// --- Row-level precision -------------------------------------------------------------

#[tokio::test]
async fn active_model_update_of_b_keeps_a_cached_and_invalidates_b_and_the_list() {
    let f = Fixture::new().await;
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
    let f = Fixture::new().await;
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
    let f = Fixture::new().await;
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
    let f = Fixture::new().await;
    let stmt = Statement::from_sql_and_values(
        DbBackend::Sqlite,
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
    let f = Fixture::new().await;
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
    let f = Fixture::new().await;
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
    let f = Fixture::new().await;
    let (cache, db) = (&f.t.cache, f.db());
    let uid = f.author.id;
    user_by_id(cache, db, uid).await;
    let app_options = EntryOptions::new().tag(Tag::new("app:banner").unwrap());
    cache
        .set("app:banner", "hello".to_owned(), app_options)
        .await
        .unwrap();

    // A stored procedure may write anything. SQLite rejects the statement; invalidation
    // happens whatever the outcome.
    let _ = db.execute_unprepared("CALL refresh_song_stats()").await;

    let s = f.state().await;
    assert!(
        s.list.computed && s.a.computed && s.b.computed,
        "every songs entry must be invalidated"
    );
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
    let f = Fixture::new().await;
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
    let f = Fixture::new().await;
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
    db.query_all_raw(Statement::from_string(
        DbBackend::Sqlite,
        "SELECT id, updated_at FROM songs WHERE title <> 'deleted'",
    ))
    .await
    .unwrap();
    db.query_one_raw(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "SELECT COUNT(*) FROM songs WHERE id = ?",
        [f.a.id.into()],
    ))
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

// --- CACHE_INVALIDATION_STRATEGY -------------------------------------------------------

#[tokio::test]
async fn manual_strategy_ignores_orm_writes_but_honours_invalidate_tags() {
    let cache = CacheConfig::builder()
        .invalidation_strategy(InvalidationStrategy::Manual)
        .build_cache()
        .expect("config");
    let f = Fixture::with(TestDb::with_cache(cache).await).await;

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
    let cache = CacheConfig::builder()
        .invalidation_strategy(InvalidationStrategy::Ttl)
        .build_cache()
        .expect("config");
    let f = Fixture::with(TestDb::with_cache(cache).await).await;

    let mut a = f.a.clone().into_active_model();
    a.title = Set("A2".into());
    a.update(f.db()).await.expect("update");
    assert_eq!(f.t.cache.invalidate_tags([Tag::model("songs")]).await, 0);

    let s = f.state().await;
    assert!(!s.list.computed && !s.a.computed);
    assert_eq!(title(&s.a.value), Some("A"));
}
