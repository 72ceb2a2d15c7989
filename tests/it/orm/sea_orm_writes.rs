//! Every kind of SeaORM write, made through `CachedConnection`, invalidates the cached
//! queries that depend on what it wrote — with no application code — on SQLite, on
//! PostgreSQL and on MariaDB (`super::DB`).
//!
//! Each test caches a list query (`model:songs`) and by-id queries for songs A and B (row
//! tag + `#bulk`), performs one write, then re-reads through the cache: `computed` says
//! whether the query ran again (a miss), and the value must reflect the write. What a write
//! must *not* invalidate is in `sea_orm_precision`.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, ModelTrait,
    QueryFilter, Set,
};

use super::DB;
use super::common::{Fixture, song_by_id, title, titles, user_by_id, user_list};
use crate::support::{Db, song};

// --- ActiveModel ---------------------------------------------------------------------

#[tokio::test]
async fn active_model_insert_invalidates_the_list_and_a_cached_absence_of_the_new_row() {
    let Some(f) = Fixture::new().await else {
        return;
    };
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
    // SQLite and PostgreSQL return the new row's id (RETURNING); MariaDB reports the id
    // AUTO_INCREMENT generated, which is the key of `songs`: the insert touches that row,
    // not every by-id entry of the table.
    let Some(f) = Fixture::new().await else {
        return;
    };
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
    let Some(f) = Fixture::new().await else {
        return;
    };
    let sql = upsert_song(f.a.id, f.author.id, "RETURNING id");
    f.db().query_all_raw(DB.text(&sql)).await.expect("upsert");
    let s = f.state().await;
    assert!(s.a.computed, "A was updated");
    assert_eq!(title(&s.a.value), Some("A2"));
    if DB == Db::MySql {
        // `ON DUPLICATE KEY UPDATE` names no conflict target: a conflict on any unique key
        // updates that row, whatever its id, so every row counts as written.
        assert!(s.b.computed, "on MariaDB, the whole table");
    } else {
        assert!(!s.b.computed, "B was not");
    }
}

/// An upsert of song `id` (title `A2`) by `author`, on the primary key: `ON CONFLICT (id)`,
/// or MySQL's `ON DUPLICATE KEY UPDATE`; `returning` is appended (MariaDB returns rows from
/// an insert too).
fn upsert_song(id: i32, author: i32, returning: &str) -> String {
    let values = format!(
        "INSERT INTO songs (id, title, artist, author_id) VALUES ({id}, 'A2', 'x', {author})"
    );
    match DB {
        Db::MySql => {
            format!("{values} ON DUPLICATE KEY UPDATE title = VALUES(title) {returning}")
        }
        Db::Sqlite | Db::Postgres => {
            format!("{values} ON CONFLICT (id) DO UPDATE SET title = excluded.title {returning}")
        }
    }
}

#[tokio::test]
async fn an_upsert_on_another_key_invalidates_the_conflicting_row() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let conflict = match DB {
        Db::MySql => "ON DUPLICATE KEY UPDATE name = VALUES(name)",
        Db::Sqlite | Db::Postgres => "ON CONFLICT (email) DO UPDATE SET name = excluded.name",
    };
    let sql = format!(
        "INSERT INTO users (name, email) VALUES ('ann2', '{}') {conflict} RETURNING id",
        f.author.email
    );
    let cache = &f.t.cache;
    assert!(user_by_id(cache, f.db(), f.author.id).await.computed);
    assert!(!user_by_id(cache, f.db(), f.author.id).await.computed);
    f.db().query_all_raw(DB.text(&sql)).await.expect("upsert");
    let author = user_by_id(cache, f.db(), f.author.id).await;
    assert!(
        author.computed,
        "the conflicting row was updated through its email"
    );
    assert_eq!(author.value.map(|u| u.name).as_deref(), Some("ann2"));
}

#[tokio::test]
async fn active_model_update_invalidates_its_row_and_the_list() {
    let Some(f) = Fixture::new().await else {
        return;
    };
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
    let Some(f) = Fixture::new().await else {
        return;
    };
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
    let Some(f) = Fixture::new().await else {
        return;
    };
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
    let Some(f) = Fixture::new().await else {
        return;
    };
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
    let Some(f) = Fixture::new().await else {
        return;
    };
    f.b.clone().delete(f.db()).await.expect("delete");

    let s = f.state().await;
    assert!(s.list.computed && s.b.computed);
    assert_eq!(titles(&s.list.value), ["A"]);
    assert_eq!(s.b.value, None);
}

// --- Entity-level writes (no ActiveModel hooks run for these) --------------------------

#[tokio::test]
async fn entity_insert_exec_with_an_explicit_id_invalidates_the_list_and_that_row() {
    let Some(f) = Fixture::new().await else {
        return;
    };
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
    let Some(f) = Fixture::new().await else {
        return;
    };
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
    let Some(f) = Fixture::new().await else {
        return;
    };
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
    let Some(f) = Fixture::new().await else {
        return;
    };
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
    let Some(f) = Fixture::new().await else {
        return;
    };
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
    let Some(f) = Fixture::new().await else {
        return;
    };
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

/// MySQL gives an `AUTO_INCREMENT` key written as 0 the next number: the row created is
/// not row 0, and the cached absence of that next row must go. (PostgreSQL and SQLite
/// create row 0; the cached absence of the next row is then still right.)
#[tokio::test]
async fn a_raw_insert_of_key_zero_invalidates_the_row_mysql_generates() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let next = f.cache_absent_next_song().await;

    f.db()
        .execute_unprepared(&format!(
            "INSERT INTO songs (id, title, artist, author_id, content) VALUES (0, 'C', 'x', {}, '')",
            f.author.id
        ))
        .await
        .expect("insert");

    let s = f.state().await;
    assert!(s.list.computed);
    let (list, expected) = match DB {
        Db::MySql => (["A", "B", "C"], Some("C")),
        // Row 0 comes first in the list, by id.
        Db::Postgres | Db::Sqlite => (["C", "A", "B"], None),
    };
    assert_eq!(titles(&s.list.value), list);
    let new_row = song_by_id(&f.t.cache, f.db(), next).await;
    assert_eq!(title(&new_row.value), expected, "song {next}");
}

#[tokio::test]
async fn raw_unprepared_update_invalidates_its_row_and_the_list() {
    let Some(f) = Fixture::new().await else {
        return;
    };
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
    let Some(f) = Fixture::new().await else {
        return;
    };
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
    let Some(f) = Fixture::new().await else {
        return;
    };
    f.db()
        .execute_unprepared(&upsert_song(f.a.id, f.author.id, ""))
        .await
        .expect("upsert");

    let s = f.state().await;
    assert!(s.list.computed && s.a.computed);
    assert_eq!(titles(&s.list.value), ["A2", "B"]);
    assert_eq!(title(&s.a.value), Some("A2"));
}

#[tokio::test]
async fn execute_raw_update_with_a_bound_id_invalidates_its_row_and_the_list() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let stmt = DB.statement(
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
async fn delete_without_where_invalidates_every_song_entry() {
    let Some(f) = Fixture::new().await else {
        return;
    };
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
    let Some(f) = Fixture::new().await else {
        return;
    };
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
async fn raw_text_that_fails_midway_invalidates_what_its_first_statement_may_have_written() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let result = f
        .db()
        .execute_unprepared(&format!(
            "UPDATE songs SET title = 'A2' WHERE id = {}; INSERT INTO no_such_table VALUES (1)",
            f.a.id
        ))
        .await;
    assert!(result.is_err(), "premise: the second statement fails");

    let in_db = song::Entity::find_by_id(f.a.id)
        .one(&f.t.raw)
        .await
        .unwrap()
        .unwrap()
        .title;
    match DB {
        // SQLite and MariaDB run the statements one by one, each in its own implicit
        // transaction.
        Db::Sqlite | Db::MySql => {
            assert_eq!(in_db, "A2", "premise: the first statement committed")
        }
        // A multi-statement simple query is one implicit transaction on PostgreSQL: the
        // failure of the second statement rolls the first one back.
        Db::Postgres => assert_eq!(in_db, "A", "premise: the first statement was rolled back"),
    }
    let s = f.state().await;
    assert!(
        s.list.computed && s.a.computed,
        "a text that failed is invalidated all the same: what part of it committed is not known"
    );
    assert_eq!(titles(&s.list.value), [in_db.as_str(), "B"]);
    assert_eq!(title(&s.a.value), Some(in_db.as_str()));
}

/// A table whose key is not its auto-numbered column: MySQL's generated id names no row of
/// it, so an insert that leaves both to the database is a bulk write. (Read as the key, the
/// id would narrow the insert to row `1`, and the cached absence of row 7, which the insert
/// made, would stay.)
#[tokio::test]
async fn an_insert_into_a_table_keyed_by_another_column_than_the_generated_one_is_bulk() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let ddl = match DB {
        Db::MySql => {
            "CREATE TABLE coded (code INT PRIMARY KEY DEFAULT 7, \
             seq INT AUTO_INCREMENT UNIQUE, title VARCHAR(20) NOT NULL)"
        }
        Db::Postgres => {
            "CREATE TABLE coded (code INT PRIMARY KEY DEFAULT 7, seq SERIAL UNIQUE, \
             title TEXT NOT NULL)"
        }
        Db::Sqlite => {
            "CREATE TABLE coded (code INT PRIMARY KEY DEFAULT 7, seq INTEGER, \
             title TEXT NOT NULL)"
        }
    };
    f.db().execute_unprepared(ddl).await.expect("create coded");
    let by_code = || async {
        let options = querycache::EntryOptions::new().tags([
            querycache::Tag::row("coded", 7),
            querycache::Tag::bulk("coded"),
        ]);
        super::common::cached(&f.t.cache, "coded:7", options, || async {
            let sql = "SELECT title FROM coded WHERE code = ?";
            let row = f.db().query_one_raw(DB.statement(sql, [7.into()])).await?;
            row.map(|row| row.try_get::<String>("", "title"))
                .transpose()
        })
        .await
    };
    assert_eq!(by_code().await.value, None, "premise: no row 7 yet");
    assert!(!by_code().await.computed, "premise: its absence is cached");
    f.db()
        .execute_unprepared("INSERT INTO coded (title) VALUES ('seven')")
        .await
        .expect("insert");
    let after = by_code().await;
    assert!(after.computed, "the insert made row 7: its entry moved");
    assert_eq!(after.value.as_deref(), Some("seven"));
}
