//! Writes whose tags must name what the database really changed (issue 17, items 4–7), on
//! SQLite, PostgreSQL and MariaDB (`super::DB`): every row a multi-row insert created when
//! only one comes back (a `RETURNING` row, or MySQL's generated id), ids bound as text that
//! the database reads as another number, table names in another spelling, and tables whose
//! writes change other rows of their own (self-referencing cascades, `INSERT OR REPLACE`
//! and MySQL's `REPLACE` whatever separates their words). Each test caches a by-id read,
//! writes, and checks the read runs again.

use std::sync::atomic::{AtomicUsize, Ordering};

use querycache::orm::sea_orm::CachedConnection;
use querycache::{Cache, CacheConfig, EntryOptions, Tag, cached_query};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, TryInsert, Value};

use super::DB;
use super::common::{Fixture, cached, song_by_id, title};
use crate::support::{Db, TestDb};

// --- Item 4: multi-row inserts read back through `query_one` ---------------------------

/// Caches "no song `id`" for the next two ids and returns them.
async fn cache_absent_next_two(f: &Fixture) -> [i32; 2] {
    let next = [f.b.id + 1, f.b.id + 2];
    for id in next {
        assert!(song_by_id(&f.t.cache, f.db(), id).await.value.is_none());
        let again = song_by_id(&f.t.cache, f.db(), id).await;
        assert!(
            !again.computed,
            "premise: the absence of song {id} is cached"
        );
    }
    next
}

/// `TryInsert::many(..).exec_with_returning` sends a two-row INSERT through `query_one`:
/// only the first returned row is seen, so the write must not be narrowed to it. (On MySQL,
/// without `RETURNING`, SeaORM executes the INSERT and reads back the one id it generated
/// first: the same holds.)
#[tokio::test]
async fn try_insert_many_exec_with_returning_invalidates_every_inserted_row() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let [c, d] = cache_absent_next_two(&f).await;
    let inserted = TryInsert::many([f.new_song("C"), f.new_song("D")])
        .exec_with_returning(f.db())
        .await
        .expect("insert");
    assert!(matches!(inserted, sea_orm::TryInsertResult::Inserted(_)));
    for (id, expected) in [(c, "C"), (d, "D")] {
        let read = song_by_id(&f.t.cache, f.db(), id).await;
        assert!(
            read.computed,
            "song {id} was inserted: its cached absence must be invalidated"
        );
        assert_eq!(title(&read.value), Some(expected));
    }
}

/// The same through `insert_many(..).on_conflict_do_nothing()`, a `TryInsert`: `DO NOTHING`
/// only skips rows, but the rows read back are still not all the rows inserted.
#[tokio::test]
async fn insert_many_on_conflict_do_nothing_exec_with_returning_invalidates_every_inserted_row() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let [_, d] = cache_absent_next_two(&f).await;
    crate::support::song::Entity::insert_many([f.new_song("C"), f.new_song("D")])
        .on_conflict_do_nothing()
        .exec_with_returning(f.db())
        .await
        .expect("insert");
    let read = song_by_id(&f.t.cache, f.db(), d).await;
    assert!(read.computed, "the second inserted row must be invalidated");
    assert_eq!(title(&read.value), Some("D"));
}

/// When every inserted row comes back (`InsertMany::exec_with_returning` reads them all),
/// the write stays narrowed to them: by-id entries of other rows are kept.
#[tokio::test]
async fn insert_many_returning_every_row_keeps_other_rows_cached() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let [c, d] = cache_absent_next_two(&f).await;
    let rows = crate::support::song::Entity::insert_many([f.new_song("C"), f.new_song("D")])
        .exec_with_returning(f.db())
        .await;
    if DB == Db::MySql {
        // No case on MySQL: SeaORM reads inserted rows back only through `RETURNING`, which
        // it does not use there, so it refuses before sending anything.
        assert!(
            matches!(rows, Err(DbErr::BackendNotSupported { .. })),
            "premise: SeaORM returns no inserted rows on MySQL: {rows:?}"
        );
        return;
    }
    let rows = rows.expect("insert");
    assert_eq!(rows.iter().map(|s| s.id).collect::<Vec<_>>(), [c, d]);
    let s = f.state().await;
    assert!(
        !s.a.computed && !s.b.computed,
        "rows A and B were not written"
    );
    assert!(s.list.computed);
    for id in [c, d] {
        assert!(
            song_by_id(&f.t.cache, f.db(), id).await.computed,
            "song {id}"
        );
    }
}

// --- Item 5: ids bound as text -----------------------------------------------------------

/// How an id bound as text may be spelled so that SQLite reads it as the integer `id`
/// (and MySQL, which compares text with an integer column as a number).
fn numeric_spellings(id: i32) -> Vec<String> {
    vec![
        format!("0{id}"),
        format!(" {id}"),
        format!("+{id}"),
        format!("{id}.0"),
        format!("{id} "),
    ]
}

/// `UPDATE songs SET title = ? WHERE id = ?` with the id bound as `"05"` updates row 5 on
/// SQLite and MySQL: the write must invalidate row 5, not a row `05` nobody reads.
/// (PostgreSQL refuses text for an integer column: nothing is written.)
#[tokio::test]
async fn sea_orm_id_bound_as_text_invalidates_the_row_the_database_reads_it_as() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    for (n, id) in numeric_spellings(f.b.id).into_iter().enumerate() {
        let new_title = format!("B{n}");
        let stmt = DB.statement(
            "UPDATE songs SET title = ? WHERE id = ?",
            [Value::from(new_title.as_str()), Value::from(id.as_str())],
        );
        let result = f.db().execute_raw(stmt).await;
        if DB == Db::Postgres {
            assert!(result.is_err(), "PostgreSQL compares no integer with text");
            return;
        }
        let affected = result.expect("update").rows_affected();
        assert_eq!(affected, 1, "premise: {DB:?} reads {id:?} as {}", f.b.id);
        let s = f.state().await;
        assert!(
            s.b.computed,
            "row {} was written through the id {id:?}: its entry must be invalidated",
            f.b.id
        );
        assert_eq!(title(&s.b.value), Some(new_title.as_str()));
    }
}

/// The same through Diesel's `sql_query` with a `Text` bind.
#[cfg(feature = "diesel")]
#[test]
fn diesel_id_bound_as_text_invalidates_the_row_the_database_reads_it_as() {
    use diesel::RunQueryDsl;
    use diesel::sql_types::Text;

    use crate::support::diesel::DieselDb;
    use crate::support::diesel::reads::song_title;

    let Some(t) = DieselDb::new(DB) else { return };
    let mut conn = t.conn();
    let author = t.user(&mut conn, "ann");
    let b = t.song(&mut conn, author, "B");
    let runs = AtomicUsize::new(0);
    song_title(&t.cache, &runs, &mut conn, b).expect("read");
    song_title(&t.cache, &runs, &mut conn, b).expect("read");
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "premise: the read is cached"
    );
    let sql = format!(
        "UPDATE songs SET title = {} WHERE id = {}",
        t.ph(1),
        t.ph(2)
    );
    for (n, id) in numeric_spellings(b).into_iter().enumerate() {
        let new_title = format!("B{n}");
        let result = diesel::sql_query(&sql)
            .bind::<Text, _>(&new_title)
            .bind::<Text, _>(&id)
            .execute(&mut conn);
        if DB == Db::Postgres {
            assert!(result.is_err(), "PostgreSQL compares no integer with text");
            return;
        }
        assert_eq!(
            result.expect("update"),
            1,
            "premise: {DB:?} reads {id:?} as {b}"
        );
        let before = runs.load(Ordering::SeqCst);
        let read = song_title(&t.cache, &runs, &mut conn, b).expect("read");
        assert_eq!(
            runs.load(Ordering::SeqCst),
            before + 1,
            "row {b} was written through the id {id:?}: its entry must be invalidated"
        );
        assert_eq!(read.as_deref(), Some(new_title.as_str()));
    }
}

// --- Item 6: table names in another case -------------------------------------------------

/// On MySQL, the test database's name, and whether the server finds a table whatever the
/// case of its name (`lower_case_table_names` 1 or 2; with 0, Linux's default, `SONGS` is
/// another table).
async fn mysql_database_and_folding(db: &impl ConnectionTrait) -> (String, bool) {
    let sql = "SELECT DATABASE() AS db, CAST(@@lower_case_table_names AS SIGNED) AS lower";
    let row = db
        .query_one_raw(DB.text(sql))
        .await
        .expect("the database's name")
        .expect("a row");
    let name: String = row.try_get("", "db").expect("db");
    let lower: i64 = row.try_get("", "lower").expect("lower_case_table_names");
    (name, lower != 0)
}

/// SQLite finds `songs` under `"Songs"`, `SONGS` and `` `Songs` ``: each write must
/// invalidate a read declared on `songs`. (PostgreSQL folds only the unquoted `SONGS`;
/// MySQL finds it quoted in backticks and under its database's name, and in another case
/// only where the server folds table names.)
#[tokio::test]
async fn a_write_naming_the_table_in_another_case_invalidates_reads_of_it() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let spellings: Vec<String> = match DB {
        Db::Sqlite => vec![
            "\"Songs\"".into(),
            "SONGS".into(),
            "`Songs`".into(),
            "\"main\".\"SONGS\"".into(),
        ],
        Db::Postgres => vec!["SONGS".into(), "\"public\".songs".into()],
        Db::MySql => {
            let (database, folds) = mysql_database_and_folding(&f.t.raw).await;
            let mut spellings = vec![
                "`songs`".to_owned(),
                format!("{database}.songs"),
                format!("`{database}`.`songs`"),
            ];
            if folds {
                spellings.extend(["SONGS".to_owned(), "`Songs`".to_owned()]);
            }
            spellings
        }
    };
    for (n, table) in spellings.iter().enumerate() {
        let sql = format!("UPDATE {table} SET title = 'B{n}' WHERE id = {}", f.b.id);
        f.db().execute_unprepared(&sql).await.expect("update");
        let s = f.state().await;
        assert!(
            s.b.computed,
            "{sql} wrote row B: its entry must be invalidated"
        );
        assert!(!s.a.computed, "{sql} wrote row B only");
        assert_eq!(title(&s.b.value), Some(format!("B{n}").as_str()));
    }
}

/// A SeaORM entity naming `songs` as `Songs` (SQLite finds the same table).
mod capital_song {
    use sea_orm::entity::prelude::*;
    use serde::{Deserialize, Serialize};

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
    #[sea_orm(table_name = "Songs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub title: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

#[cached_query(models = [capital_song::Entity], row = id, cache = db.cache())]
async fn capital_song_title(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
    id: i32,
) -> Result<Option<String>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    let song = capital_song::Entity::find_by_id(id).one(db).await?;
    Ok(song.map(|s| s.title))
}

/// An entity whose table name has capitals depends on the tags a lower-case write bumps.
/// (Not on PostgreSQL, where `"Songs"` is another table, nor on a MySQL server that keeps
/// table names as written, `lower_case_table_names = 0`, Linux's default.)
#[tokio::test]
async fn an_entity_named_in_capitals_is_invalidated_by_a_lower_case_write() {
    if DB == Db::Postgres {
        return;
    }
    let Some(f) = Fixture::new().await else {
        return;
    };
    if DB == Db::MySql && !mysql_database_and_folding(&f.t.raw).await.1 {
        return;
    }
    let runs = AtomicUsize::new(0);
    let id = f.b.id;
    capital_song_title(f.db(), &runs, id).await.expect("read");
    capital_song_title(f.db(), &runs, id).await.expect("read");
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "premise: the read is cached"
    );
    let stmt = DB.statement(
        "UPDATE songs SET title = ? WHERE id = ?",
        ["B2".into(), id.into()],
    );
    f.db().execute_raw(stmt).await.expect("update");
    let read = capital_song_title(f.db(), &runs, id).await.expect("read");
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "the write must invalidate the read"
    );
    assert_eq!(read.as_deref(), Some("B2"));
}

// --- Item 7: writes that change other rows of their own table ----------------------------

/// A self-referencing table: deleting a folder deletes its children. (A table constraint:
/// MySQL ignores a `REFERENCES` clause written after a column, as MariaDB did before 10.5.)
async fn create_folders(t: &TestDb) {
    let sql = "CREATE TABLE folders (id INTEGER PRIMARY KEY, parent_id INTEGER, \
               name TEXT NOT NULL, \
               FOREIGN KEY (parent_id) REFERENCES folders (id) ON DELETE CASCADE)";
    t.raw.execute_unprepared(sql).await.expect("create folders");
    t.raw
        .execute_unprepared(
            "INSERT INTO folders (id, parent_id, name) VALUES (1, NULL, 'root'), (2, 1, 'child')",
        )
        .await
        .expect("seed folders");
}

/// A by-id read of `table`'s `name` column, through the cache.
async fn name_by_id(t: &TestDb, table: &str, id: i32) -> (Option<String>, bool) {
    let options = EntryOptions::new().tags([Tag::row(table, id), Tag::bulk(table)]);
    let sql = format!("SELECT name FROM {table} WHERE id = ?");
    cached(&t.cache, &format!("{table}:{id}"), options, || async {
        let row = t.db.query_one_raw(DB.statement(&sql, [id.into()])).await?;
        row.map(|r| r.try_get::<String>("", "name")).transpose()
    })
    .await
    .pair()
}

/// A cache whose config declares `folders` (and `labels`) as writing themselves, by the
/// builder or by `CACHE_TABLE_DEPENDENCIES`.
fn self_writing_caches() -> [Cache; 2] {
    let built = Cache::builder()
        .table_also_writes("folders", ["folders"])
        .table_also_writes("labels", ["labels"])
        .build()
        .expect("a table may be declared to write itself");
    let from_env =
        CacheConfig::from_vars([("CACHE_TABLE_DEPENDENCIES", "folders=folders;labels=labels")])
            .expect("CACHE_TABLE_DEPENDENCIES=folders=folders is accepted");
    [built, Cache::with_config(from_env)]
}

/// `DELETE FROM folders WHERE id = 1` names row 1, and the cascade deletes row 2: with
/// `folders` declared as writing itself, row 2's cached entry is invalidated.
#[tokio::test]
async fn a_self_referencing_cascade_declared_as_a_self_write_invalidates_the_child_row() {
    for cache in self_writing_caches() {
        let Some(t) = TestDb::create(DB, cache).await else {
            return;
        };
        create_folders(&t).await;
        assert_eq!(
            name_by_id(&t, "folders", 2).await.0.as_deref(),
            Some("child")
        );
        assert!(!name_by_id(&t, "folders", 2).await.1, "premise: cached");
        let stmt = DB.statement("DELETE FROM folders WHERE id = ?", [1.into()]);
        t.db.execute_raw(stmt).await.expect("delete the root");
        let (child, computed) = name_by_id(&t, "folders", 2).await;
        assert!(
            computed,
            "the cascade deleted row 2: its entry must be invalidated"
        );
        assert_eq!(child, None, "premise: the cascade ran");
    }
}

/// `INSERT\nOR REPLACE` (SQLite) or `REPLACE\nINTO` (MySQL) deletes the row whose UNIQUE
/// name conflicts (id 1) and inserts id 3: whatever separates its words, it is no plain
/// insert narrowed to the new id (returned, or on MySQL generated).
#[tokio::test]
async fn insert_or_replace_spelled_with_any_whitespace_invalidates_the_replaced_row() {
    if DB == Db::Postgres {
        return; // No statement of PostgreSQL's replaces a row (`ON CONFLICT` updates it).
    }
    for separator in ["\n", "\t", " /* upsert */ ", " -- upsert\n"] {
        let Some(t) = TestDb::fresh(DB).await else {
            return;
        };
        let ddl = match DB {
            // A TEXT column can be no key on MySQL; the id must be generated.
            Db::MySql => {
                "CREATE TABLE labels (id INTEGER AUTO_INCREMENT PRIMARY KEY, \
                 name VARCHAR(20) NOT NULL UNIQUE)"
            }
            Db::Sqlite | Db::Postgres => {
                "CREATE TABLE labels (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)"
            }
        };
        t.raw.execute_unprepared(ddl).await.expect("create labels");
        t.raw
            .execute_unprepared("INSERT INTO labels (id, name) VALUES (1, 'a'), (2, 'b')")
            .await
            .expect("seed labels");
        assert_eq!(name_by_id(&t, "labels", 1).await.0.as_deref(), Some("a"));
        assert!(!name_by_id(&t, "labels", 1).await.1, "premise: cached");
        let (sql, id) = if DB == Db::MySql {
            let sql = format!("REPLACE{separator}INTO labels (name) VALUES ('a')");
            let done = t.db.execute_raw(DB.text(&sql)).await.expect("replace");
            (sql, i64::try_from(done.last_insert_id()).expect("an id"))
        } else {
            let sql =
                format!("INSERT{separator}OR REPLACE INTO labels (name) VALUES ('a') RETURNING id");
            let row = t.db.query_one_raw(DB.text(&sql)).await.expect("replace");
            let id: i64 = row.expect("a returned row").try_get("", "id").expect("id");
            (sql, id)
        };
        assert_eq!(id, 3, "premise: the replaced row got a new id");
        let (old, computed) = name_by_id(&t, "labels", 1).await;
        assert!(
            computed,
            "{sql:?} deleted row 1: its entry must be invalidated"
        );
        assert_eq!(old, None);
    }
}

/// A plain INSERT into a table with `UNIQUE .. ON CONFLICT REPLACE` deletes the conflicting
/// row: the text cannot say so, the declaration does.
#[tokio::test]
async fn a_unique_on_conflict_replace_table_declared_as_a_self_write_invalidates_the_replaced_row()
{
    if DB != Db::Sqlite {
        // SQLite's constraint clause: neither PostgreSQL nor MySQL can declare that a plain
        // INSERT replaces the row it conflicts with.
        return;
    }
    for cache in self_writing_caches() {
        let Some(t) = TestDb::create(DB, cache).await else {
            return;
        };
        t.raw
            .execute_unprepared(
                "CREATE TABLE labels (id INTEGER PRIMARY KEY, \
                 name TEXT NOT NULL UNIQUE ON CONFLICT REPLACE); \
                 INSERT INTO labels (id, name) VALUES (1, 'a'), (2, 'b')",
            )
            .await
            .expect("create labels");
        assert_eq!(name_by_id(&t, "labels", 1).await.0.as_deref(), Some("a"));
        let sql = "INSERT INTO labels (name) VALUES ('a') RETURNING id";
        t.db.query_one_raw(DB.text(sql)).await.expect("insert");
        let (old, computed) = name_by_id(&t, "labels", 1).await;
        assert!(
            computed,
            "the insert replaced row 1: its entry must be invalidated"
        );
        assert_eq!(old, None);
    }
}
