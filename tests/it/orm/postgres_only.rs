//! Write forms only PostgreSQL has, sent as raw SQL through `CachedConnection`
//! (`execute_unprepared`, and `execute_raw` with bound values): `UPDATE ... FROM`,
//! `INSERT ... ON CONFLICT`, `DELETE ... USING`, a data-modifying CTE, `TRUNCATE`, and tables
//! in a schema other than `public`.
//!
//! Each test caches the song list (`model:songs`) and songs A and B by id (row tag +
//! `#bulk`) — and, where the write concerns them, user or other tables' entries — performs
//! one write, then checks which entries were recomputed, which were kept, and that the
//! values read back reflect the write.

use std::sync::atomic::{AtomicUsize, Ordering};

use querycache::orm::sea_orm::CachedConnection;
use querycache::tags::table_key;
use querycache::{Cache, EntryOptions, Tag, cached_query};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DbErr, EntityTrait, QueryOrder, Set, TransactionTrait,
};

use super::DB;
use super::common::{Fixture, Read, cached, song_by_id, title, titles, user_by_id, user_list};
use crate::support::{song, user};

/// Titles from a raw query, cached under `key` with `options`.
async fn raw_titles(f: &Fixture, key: &str, options: EntryOptions, sql: &str) -> Read<Vec<String>> {
    cached(&f.t.cache, key, options, || async {
        let rows = f.db().query_all_raw(DB.text(sql)).await?;
        rows.iter()
            .map(|row| row.try_get::<String>("", "title"))
            .collect()
    })
    .await
}

/// Caches the users list and the author by id, and checks they are hits.
async fn cache_users(f: &Fixture) {
    let (cache, db) = (&f.t.cache, f.db());
    user_list(cache, db).await;
    user_by_id(cache, db, f.author.id).await;
    assert!(!user_list(cache, db).await.computed, "premise: cached");
    assert!(!user_by_id(cache, db, f.author.id).await.computed);
}

/// The users entries were not invalidated.
async fn users_kept(f: &Fixture, what: &str) {
    let (cache, db) = (&f.t.cache, f.db());
    assert!(
        !user_list(cache, db).await.computed && !user_by_id(cache, db, f.author.id).await.computed,
        "{what} reads users but does not write it: its entries must stay cached"
    );
}

/// A second author, "bob", with a song "C"; the song list is cached again (it now has C)
/// and A and B stay cached (the insert named its new row).
async fn with_bob(f: &Fixture) -> (user::Model, song::Model) {
    let bob = f.t.user("bob").await;
    let c = f.t.song(&bob, "C").await;
    let s = f.state().await;
    assert!(s.list.computed && !s.a.computed && !s.b.computed, "premise");
    assert_eq!(titles(&s.list.value), ["A", "B", "C"]);
    assert!(!f.state().await.list.computed, "premise: cached");
    (bob, c)
}

// --- UPDATE ... FROM, DELETE ... USING ---------------------------------------------------

#[tokio::test]
async fn update_from_another_table_invalidates_every_song_entry_and_keeps_users() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let (_, c) = with_bob(&f).await;
    cache_users(&f).await;

    let result = f
        .db()
        .execute_unprepared(
            "UPDATE songs SET archived = TRUE FROM users \
             WHERE songs.author_id = users.id AND users.name = 'bob'",
        )
        .await
        .expect("update ... from");
    assert_eq!(result.rows_affected(), 1, "premise: only bob's song C");

    let s = f.state().await;
    assert!(
        s.list.computed && s.a.computed && s.b.computed,
        "which songs the join selects is not known: every song entry must be invalidated"
    );
    let archived: Vec<(&str, bool)> = s
        .list
        .value
        .iter()
        .map(|s| (&*s.title, s.archived))
        .collect();
    assert_eq!(archived, [("A", false), ("B", false), ("C", true)]);
    assert!(!s.a.value.unwrap().archived);
    let c = song_by_id(&f.t.cache, f.db(), c.id).await;
    assert!(c.computed && c.value.unwrap().archived);
    users_kept(&f, "UPDATE songs ... FROM users").await;
}

#[tokio::test]
async fn delete_using_another_table_invalidates_every_song_entry_and_keeps_users() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let (bob, c) = with_bob(&f).await;
    cache_users(&f).await;

    let stmt = f.t.statement(
        "DELETE FROM songs USING users WHERE songs.author_id = users.id AND users.name = ?",
        ["bob".into()],
    );
    let result = f.db().execute_raw(stmt).await.expect("delete ... using");
    assert_eq!(
        result.rows_affected(),
        1,
        "premise: only {}'s song C",
        bob.name
    );

    let s = f.state().await;
    assert!(s.list.computed && s.a.computed && s.b.computed);
    assert_eq!(titles(&s.list.value), ["A", "B"]);
    assert_eq!(
        (title(&s.a.value), title(&s.b.value)),
        (Some("A"), Some("B"))
    );
    let c = song_by_id(&f.t.cache, f.db(), c.id).await;
    assert!(c.computed);
    assert_eq!(c.value, None);
    users_kept(&f, "DELETE FROM songs USING users").await;
}

// --- INSERT ... ON CONFLICT ------------------------------------------------------------

#[tokio::test]
async fn on_conflict_do_update_with_bound_values_invalidates_the_named_row_only() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let stmt = f.t.statement(
        "INSERT INTO songs (id, title, artist, author_id) VALUES (?, ?, 'x', ?) \
         ON CONFLICT (id) DO UPDATE SET title = excluded.title",
        [f.a.id.into(), "A2".into(), f.author.id.into()],
    );
    let result = f.db().execute_raw(stmt).await.expect("upsert");
    assert_eq!(result.rows_affected(), 1);

    let s = f.state().await;
    assert!(s.list.computed && s.a.computed);
    assert!(
        !s.b.computed,
        "the conflict target is the id the statement gives: B is kept"
    );
    assert_eq!(titles(&s.list.value), ["A2", "B"]);
    assert_eq!(title(&s.a.value), Some("A2"));
}

#[tokio::test]
async fn on_conflict_do_update_of_a_new_id_invalidates_its_cached_absence() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let absent = song_by_id(&f.t.cache, f.db(), 500).await;
    assert!(absent.computed && absent.value.is_none());
    f.db()
        .execute_unprepared(&format!(
            "INSERT INTO songs (id, title, artist, author_id) VALUES (500, 'Z', 'x', {}) \
             ON CONFLICT (id) DO UPDATE SET title = excluded.title",
            f.author.id
        ))
        .await
        .expect("upsert");

    let s = f.state().await;
    assert!(s.list.computed && !s.a.computed && !s.b.computed);
    assert_eq!(titles(&s.list.value), ["A", "B", "Z"]);
    let new_row = song_by_id(&f.t.cache, f.db(), 500).await;
    assert!(
        new_row.computed,
        "the cached absence of row 500 must be invalidated"
    );
    assert_eq!(title(&new_row.value), Some("Z"));
}

#[tokio::test]
async fn on_conflict_do_nothing_invalidates_the_row_it_names_even_when_nothing_changed() {
    // Whether the row conflicted is not in the statement: the named row and the table are
    // invalidated either way (a recomputation, never a stale value); other rows are kept.
    let Some(f) = Fixture::new().await else {
        return;
    };
    let absent = song_by_id(&f.t.cache, f.db(), 600).await;
    assert!(absent.value.is_none());
    let result = f
        .db()
        .execute_unprepared(&format!(
            "INSERT INTO songs (id, title, artist, author_id) VALUES ({a}, 'A2', 'x', {author}), \
             (600, 'Y', 'x', {author}) ON CONFLICT DO NOTHING",
            a = f.a.id,
            author = f.author.id
        ))
        .await
        .expect("insert ... on conflict do nothing");
    assert_eq!(
        result.rows_affected(),
        1,
        "premise: A conflicted, 600 was inserted"
    );

    let s = f.state().await;
    assert!(s.list.computed && s.a.computed);
    assert!(!s.b.computed, "B is not named by the statement");
    assert_eq!(
        title(&s.a.value),
        Some("A"),
        "the conflicting row is unchanged"
    );
    assert_eq!(titles(&s.list.value), ["A", "B", "Y"]);
    let new_row = song_by_id(&f.t.cache, f.db(), 600).await;
    assert!(new_row.computed);
    assert_eq!(title(&new_row.value), Some("Y"));
}

// --- Data-modifying CTE, TRUNCATE --------------------------------------------------------

#[tokio::test]
async fn a_cte_that_moves_rows_invalidates_both_tables_and_keeps_users() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    f.t.raw
        .execute_unprepared(
            "CREATE TABLE archived_songs (id INTEGER PRIMARY KEY, title TEXT NOT NULL, \
             author_id INTEGER NOT NULL)",
        )
        .await
        .expect("create archived_songs");
    let archive_options = || EntryOptions::new().tag(Tag::model("archived_songs"));
    let archive_sql = "SELECT title FROM archived_songs ORDER BY id";
    let empty = raw_titles(&f, "archive", archive_options(), archive_sql).await;
    assert!(empty.value.is_empty());
    assert!(
        !raw_titles(&f, "archive", archive_options(), archive_sql)
            .await
            .computed
    );
    cache_users(&f).await;

    let stmt = f.t.statement(
        "WITH moved AS (DELETE FROM songs WHERE author_id = ? AND title = ? RETURNING *) \
         INSERT INTO archived_songs (id, title, author_id) SELECT id, title, author_id FROM moved",
        [f.author.id.into(), "B".into()],
    );
    let result = f.db().execute_raw(stmt).await.expect("move B");
    assert_eq!(result.rows_affected(), 1, "premise: B was moved");

    let archive = raw_titles(&f, "archive", archive_options(), archive_sql).await;
    assert!(
        archive.computed,
        "the CTE's INSERT must invalidate archived_songs"
    );
    assert_eq!(archive.value, ["B"]);
    let s = f.state().await;
    assert!(
        s.list.computed && s.a.computed && s.b.computed,
        "the CTE's DELETE (rows unknown) must invalidate every song entry"
    );
    assert_eq!(titles(&s.list.value), ["A"]);
    assert_eq!(s.b.value, None);
    users_kept(&f, "the CTE").await;
}

#[tokio::test]
async fn truncate_invalidates_every_song_entry_and_keeps_users() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    cache_users(&f).await;
    f.db()
        .execute_unprepared("TRUNCATE TABLE songs RESTART IDENTITY")
        .await
        .expect("truncate");

    let s = f.state().await;
    assert!(s.list.computed && s.a.computed && s.b.computed);
    assert!(s.list.value.is_empty());
    assert_eq!((s.a.value, s.b.value), (None, None));
    users_kept(&f, "TRUNCATE songs").await;
}

// --- Schemas -------------------------------------------------------------------------------

/// `app.songs`, a table in another schema with the same name as `public.songs`.
mod app_song {
    use sea_orm::entity::prelude::*;
    use serde::{Deserialize, Serialize};

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
    #[sea_orm(schema_name = "app", table_name = "songs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub title: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Cached queries on `app.songs`, declared with the entity: their tags are named by the
/// macro from the entity's schema and table, as a user's would be.
struct AppSongs {
    cache: Cache,
    runs: AtomicUsize,
}

impl AppSongs {
    #[cached_query(models = [app_song::Entity], cache = self.cache)]
    async fn titles(&self, db: &CachedConnection) -> Result<Vec<String>, DbErr> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let songs = app_song::Entity::find()
            .order_by_asc(app_song::Column::Id)
            .all(db)
            .await?;
        Ok(songs.into_iter().map(|s| s.title).collect())
    }

    #[cached_query(models = [app_song::Entity], row = id, cache = self.cache)]
    async fn title(&self, db: &CachedConnection, id: i32) -> Result<Option<String>, DbErr> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        Ok(app_song::Entity::find_by_id(id)
            .one(db)
            .await?
            .map(|s| s.title))
    }

    /// Reads all three app entries; returns which were recomputed (list, 1, 2).
    async fn read(&self, db: &CachedConnection) -> (Vec<String>, [bool; 3]) {
        let mut recomputed = [false; 3];
        let before = self.runs.load(Ordering::SeqCst);
        let titles = self.titles(db).await.expect("app titles");
        recomputed[0] = self.runs.load(Ordering::SeqCst) > before;
        for (slot, id) in [(1, 1), (2, 2)] {
            let before = self.runs.load(Ordering::SeqCst);
            self.title(db, id).await.expect("app title");
            recomputed[slot] = self.runs.load(Ordering::SeqCst) > before;
        }
        (titles, recomputed)
    }
}

/// A fixture on `cache` with `app.songs` holding "app 1" and "app 2" (ids 1 and 2), its
/// entries cached next to the public ones.
async fn with_app_schema(cache: Cache) -> Option<(Fixture, AppSongs)> {
    let f = Fixture::with_cache(cache).await?;
    f.t.raw
        .execute_unprepared(
            "CREATE SCHEMA app; \
             CREATE TABLE app.songs (id SERIAL PRIMARY KEY, title TEXT NOT NULL); \
             INSERT INTO app.songs (title) VALUES ('app 1'), ('app 2');",
        )
        .await
        .expect("create app.songs");
    let app = AppSongs {
        cache: f.t.cache.clone(),
        runs: AtomicUsize::new(0),
    };
    let (titles, recomputed) = app.read(f.db()).await;
    assert_eq!(titles, ["app 1", "app 2"]);
    assert_eq!(recomputed, [true; 3]);
    assert_eq!(app.read(f.db()).await.1, [false; 3], "premise: cached");
    Some((f, app))
}

#[test]
fn schema_qualified_tables_are_named_schema_dot_table_and_public_is_the_default() {
    assert_eq!(table_key(Some("app"), "songs"), "app.songs");
    assert_eq!(table_key(Some("public"), "songs"), "songs");
    assert_eq!(table_key(None, "songs"), "songs");
}

#[tokio::test]
async fn a_write_to_another_schemas_table_invalidates_its_entries_and_not_publics() {
    let Some((f, app)) = with_app_schema(Cache::new()).await else {
        return;
    };
    // Raw, schema-qualified, row named.
    f.db()
        .execute_unprepared("UPDATE app.songs SET title = 'app 1b' WHERE id = 1")
        .await
        .expect("update app.songs");
    let (titles, recomputed) = app.read(f.db()).await;
    assert_eq!(
        recomputed,
        [true, true, false],
        "app list and row 1; row 2 kept"
    );
    assert_eq!(titles, ["app 1b", "app 2"]);
    let s = f.state().await;
    assert!(
        !(s.list.computed || s.a.computed || s.b.computed),
        "public.songs was not written: its entries must stay cached"
    );

    // Through SeaORM (which quotes: "app"."songs"), bound values.
    app_song::ActiveModel {
        title: Set("app 3".to_owned()),
        ..Default::default()
    }
    .insert(f.db())
    .await
    .expect("insert into app.songs");
    let (titles, recomputed) = app.read(f.db()).await;
    assert_eq!(
        recomputed,
        [true, false, false],
        "the insert named its new row"
    );
    assert_eq!(titles, ["app 1b", "app 2", "app 3"]);
    let s = f.state().await;
    assert!(!(s.list.computed || s.a.computed || s.b.computed));
}

#[tokio::test]
async fn a_write_to_public_songs_qualified_or_not_invalidates_its_entries_and_not_apps() {
    let Some((f, app)) = with_app_schema(Cache::new()).await else {
        return;
    };
    // Qualified with the default schema: the same tag as the unqualified name.
    f.db()
        .execute_raw(f.t.statement(
            "UPDATE public.songs SET title = ? WHERE id = ?",
            ["A2".into(), f.a.id.into()],
        ))
        .await
        .expect("update public.songs");
    let s = f.state().await;
    assert!(s.list.computed && s.a.computed && !s.b.computed);
    assert_eq!(title(&s.a.value), Some("A2"));
    assert_eq!(
        app.read(f.db()).await.1,
        [false; 3],
        "app.songs entries must stay cached"
    );

    // Unqualified: `public` under the default search_path.
    f.db()
        .execute_unprepared(&format!("DELETE FROM songs WHERE id = {}", f.b.id))
        .await
        .expect("delete from songs");
    let s = f.state().await;
    assert!(s.list.computed && s.b.computed && !s.a.computed);
    assert_eq!(titles(&s.list.value), ["A2"]);
    let (titles, recomputed) = app.read(f.db()).await;
    assert_eq!(recomputed, [false; 3]);
    assert_eq!(titles, ["app 1", "app 2"]);
}

/// With `app` first in the search_path, renames song 1 of `app.songs` through the
/// unqualified name `songs`; returns the app entries' recomputations and titles after it.
async fn write_through_search_path(f: &Fixture, app: &AppSongs) -> ([bool; 3], Vec<String>) {
    let tx = f.db().begin().await.expect("begin");
    tx.execute_unprepared("SET LOCAL search_path TO app, public")
        .await
        .expect("search_path");
    tx.execute_unprepared("UPDATE songs SET title = 'app 1b' WHERE id = 1")
        .await
        .expect("update");
    tx.commit().await.expect("commit");
    let in_db =
        f.t.raw
            .query_one_raw(DB.text("SELECT title FROM app.songs WHERE id = 1"))
            .await
            .expect("read app.songs")
            .expect("row 1");
    assert_eq!(
        in_db.try_get::<String>("", "title").expect("title"),
        "app 1b",
        "premise: the unqualified name resolved to app.songs"
    );
    let (titles, recomputed) = app.read(f.db()).await;
    (recomputed, titles)
}

#[tokio::test]
async fn an_unqualified_name_means_public_whatever_the_search_path_unless_declared() {
    // The rule: an unqualified name is the table of the default schema, `public`; querycache
    // cannot see a connection's search_path. A session that puts another schema first
    // writes `app.songs` under the name `songs`, and `app.songs` entries stay stale...
    let Some((f, app)) = with_app_schema(Cache::new()).await else {
        return;
    };
    let (recomputed, titles) = write_through_search_path(&f, &app).await;
    assert_eq!(recomputed, [false; 3], "stale, as documented");
    assert_eq!(titles, ["app 1", "app 2"]);
    assert!(
        f.state().await.list.computed,
        "the write was taken for one to public.songs"
    );

    // ... unless the application declares that a write to `songs` may write `app.songs`.
    let cache = Cache::builder()
        .table_also_writes("songs", ["app.songs"])
        .build()
        .expect("config");
    let Some((f, app)) = with_app_schema(cache).await else {
        return;
    };
    let (recomputed, titles) = write_through_search_path(&f, &app).await;
    assert_eq!(
        recomputed, [true; 3],
        "declared: every app.songs entry is invalidated"
    );
    assert_eq!(titles, ["app 1b", "app 2"]);
}
