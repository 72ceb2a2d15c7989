//! Views and cascades from the catalog (issue 22 item 4): a cached read that declares
//! nothing and reads a view (of a view) is invalidated by a write to any table the view
//! reads, and left by a write to a table it does not read; a cached read of a table a
//! cascading foreign key writes is invalidated by the DELETE that cascades into it, and left
//! by writes that fire no action (an INSERT into the parent, an UPDATE of a parent whose key
//! acts on deletes only). Through SeaORM's `CachedConnection`, Diesel's
//! `CacheInstrumentation` and diesel-async; on PostgreSQL and MariaDB also a view calling a
//! user function (not cached), on PostgreSQL a materialized view (MariaDB has none), and a
//! write sent by a Diesel connection that has not read the catalog yet.

use super::DB;
use crate::support::Db;

/// `r_users` ← `r_songs` (ON DELETE CASCADE) ← `r_listens` (ON DELETE SET NULL), `r_albums`
/// unrelated, `r_cards` a view joining songs and users, `r_top` a view of `r_cards`. On
/// PostgreSQL and MariaDB also `r_shouts`, a view calling a user function; on PostgreSQL
/// `r_counts`, a materialized view of songs per user. The foreign keys are table constraints:
/// MySQL ignores a `REFERENCES` clause written in a column's definition.
fn schema(db: Db) -> String {
    let common = "CREATE TABLE r_users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE r_songs (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,
             title TEXT NOT NULL,
             FOREIGN KEY (user_id) REFERENCES r_users (id) ON DELETE CASCADE);
         CREATE TABLE r_listens (id INTEGER PRIMARY KEY, song_id INTEGER,
             FOREIGN KEY (song_id) REFERENCES r_songs (id) ON DELETE SET NULL);
         CREATE TABLE r_albums (id INTEGER PRIMARY KEY, title TEXT NOT NULL);
         CREATE VIEW r_cards AS SELECT s.id, s.title, u.name FROM r_songs s
             JOIN r_users u ON u.id = s.user_id;
         CREATE VIEW r_top AS SELECT id, title, name FROM r_cards WHERE id < 100;
         INSERT INTO r_users (id, name) VALUES (1, 'Ann'), (2, 'Bob');
         INSERT INTO r_songs (id, user_id, title) VALUES (1, 1, 'a'), (2, 2, 'b');
         INSERT INTO r_listens (id, song_id) VALUES (1, 1), (2, 2);
         INSERT INTO r_albums (id, title) VALUES (1, 'z');";
    match db {
        Db::Sqlite => common.to_owned(),
        Db::Postgres => format!(
            "{common}
             CREATE MATERIALIZED VIEW r_counts AS
                 SELECT user_id, count(*)::INTEGER AS n FROM r_songs GROUP BY user_id;
             CREATE FUNCTION r_shout(t TEXT) RETURNS TEXT LANGUAGE sql AS 'SELECT upper(t)';
             CREATE VIEW r_shouts AS SELECT id, r_shout(title) AS title FROM r_songs;"
        ),
        Db::MySql => format!(
            "{common}
             CREATE FUNCTION r_shout(t TEXT) RETURNS TEXT DETERMINISTIC RETURN upper(t);
             CREATE VIEW r_shouts AS SELECT id, r_shout(title) AS title FROM r_songs;"
        ),
    }
}

/// The card of song 1 through the view of a view, as `title by name` (MySQL's `||` is OR).
fn card() -> &'static str {
    match DB {
        Db::MySql => "SELECT CONCAT(title, ' by ', name) AS text FROM r_top WHERE id = 1",
        Db::Sqlite | Db::Postgres => {
            "SELECT title || ' by ' || name AS text FROM r_top WHERE id = 1"
        }
    }
}

/// `count(*)` as text (MySQL casts to `CHAR`, not `TEXT`).
fn count_text() -> &'static str {
    match DB {
        Db::MySql => "CAST(count(*) AS CHAR)",
        Db::Sqlite | Db::Postgres => "CAST(count(*) AS TEXT)",
    }
}

/// How many listens still name a song.
fn listened() -> String {
    format!(
        "SELECT {} AS text FROM r_listens WHERE song_id IS NOT NULL",
        count_text()
    )
}

/// Songs per user 1 in the materialized view (PostgreSQL).
const COUNTED: &str = "SELECT CAST(n AS TEXT) AS text FROM r_counts WHERE user_id = 1";
/// The shouted title of song 1 (PostgreSQL and MariaDB).
const SHOUTED: &str = "SELECT title AS text FROM r_shouts WHERE id = 1";

/// One scenario: reads of `read`, which counts its runs, around writes through `write`.
/// `writes_cascade_without_the_catalog` runs one DELETE on a connection that never read it.
macro_rules! scenarios {
    ($read:expr, $write:expr, $runs:expr) => {{
        let ran =
            || std::sync::atomic::AtomicUsize::load(&$runs, std::sync::atomic::Ordering::SeqCst);
        // A view of a view: its tables' writes reach it, others do not.
        assert_eq!($read(card()).await, "a by Ann");
        assert_eq!($read(card()).await, "a by Ann");
        assert_eq!(ran(), 1, "cached although nothing was declared");
        $write("UPDATE r_albums SET title = 'y' WHERE id = 1").await;
        $write("INSERT INTO r_albums (id, title) VALUES (2, 'w')").await;
        assert_eq!($read(card()).await, "a by Ann");
        assert_eq!(ran(), 1, "a table the view does not read leaves it");
        $write("UPDATE r_users SET name = 'Ann2' WHERE id = 1").await;
        assert_eq!(
            $read(card()).await,
            "a by Ann2",
            "a base table of the view's view"
        );
        assert_eq!(ran(), 2);
        $write("UPDATE r_songs SET title = 'a2' WHERE id = 1").await;
        assert_eq!($read(card()).await, "a2 by Ann2", "the other base table");
        assert_eq!(ran(), 3);

        // A cascade: deleting user 2 deletes song 2, which sets listen 2's song to NULL.
        assert_eq!($read(&listened()).await, "2");
        $write("INSERT INTO r_users (id, name) VALUES (3, 'Cy')").await;
        $write("UPDATE r_users SET name = 'Bob2' WHERE id = 2").await;
        $write("UPDATE r_albums SET title = 'x'").await;
        assert_eq!($read(&listened()).await, "2");
        assert_eq!(ran(), 4, "writes that fire no action leave it");
        $write("DELETE FROM r_users WHERE id = 2").await;
        assert_eq!(
            $read(&listened()).await,
            "1",
            "the DELETE cascaded into r_listens"
        );
        assert_eq!(ran(), 5);
    }};
}

/// The materialized view (PostgreSQL): a write to its table invalidates it (more than
/// needed: the view keeps its rows until it is refreshed), and so does `REFRESH`.
macro_rules! materialized {
    ($read:expr, $write:expr, $runs:expr) => {{
        let ran =
            || std::sync::atomic::AtomicUsize::load(&$runs, std::sync::atomic::Ordering::SeqCst);
        let before = ran();
        assert_eq!($read(COUNTED).await, "1");
        assert_eq!($read(COUNTED).await, "1");
        assert_eq!(ran(), before + 1);
        $write("INSERT INTO r_songs (id, user_id, title) VALUES (3, 1, 'c')").await;
        assert_eq!($read(COUNTED).await, "1", "not refreshed yet");
        assert_eq!(ran(), before + 2);
        $write("REFRESH MATERIALIZED VIEW r_counts").await;
        assert_eq!($read(COUNTED).await, "2");
        assert_eq!(ran(), before + 3);
    }};
}

/// A view calling a user function (PostgreSQL and MariaDB; SQLite's SQL defines none): what
/// it reads is not known, so it is not cached (song 1 is titled `a2` by now).
macro_rules! calls_a_function {
    ($read:expr, $runs:expr) => {{
        let ran =
            || std::sync::atomic::AtomicUsize::load(&$runs, std::sync::atomic::Ordering::SeqCst);
        let before = ran();
        assert_eq!($read(SHOUTED).await, "A2");
        assert_eq!($read(SHOUTED).await, "A2");
        assert_eq!(
            ran(),
            before + 2,
            "a view calling a user function is not cached"
        );
    }};
}

/// What runs after the scenarios on each database: MariaDB has no materialized views.
macro_rules! after_scenarios {
    ($read:expr, $write:expr, $runs:expr) => {{
        if DB == Db::Postgres {
            materialized!($read, $write, $runs);
        }
        if DB != Db::Sqlite {
            calls_a_function!($read, $runs);
        }
    }};
}

mod sea_orm_part {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use querycache::cached_query;
    use querycache::orm::sea_orm::CachedConnection;
    use sea_orm::{ConnectionTrait, DbErr};

    use super::*;
    use crate::support::TestDb;

    #[cached_query(ttl = "1h")]
    async fn text(
        db: &CachedConnection,
        #[cache_skip] runs: &AtomicUsize,
        sql: String,
    ) -> Result<String, DbErr> {
        runs.fetch_add(1, Ordering::SeqCst);
        let row = db.query_one_raw(DB.text(&sql)).await?;
        let row = row.ok_or_else(|| DbErr::RecordNotFound(sql.clone()))?;
        row.try_get::<String>("", "text")
    }

    #[tokio::test]
    async fn views_and_cascades_reach_reads_that_declare_nothing() {
        let Some(t) = TestDb::fresh(DB).await else {
            return;
        };
        t.db.execute_unprepared(&schema(DB)).await.unwrap();
        let runs = AtomicUsize::new(0);
        let read = async |sql: &str| text(&t.db, &runs, sql.to_owned()).await.unwrap();
        let write = async |sql: &str| {
            t.db.execute_unprepared(sql).await.unwrap();
        };
        scenarios!(read, write, runs);
        after_scenarios!(read, write, runs);
    }

    /// A self-referencing cascade: deleting folder 1 deletes its child 2, which no
    /// statement names; the by-id read of folder 2 is invalidated (the table writes itself,
    /// so its bulk tag moves), while an update of folder 1 (no `ON UPDATE` action) leaves it.
    #[tokio::test]
    async fn a_self_referencing_cascade_reaches_rows_no_statement_names() {
        let Some(t) = TestDb::fresh(DB).await else {
            return;
        };
        t.db.execute_unprepared(
            "CREATE TABLE r_folders (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
                 parent_id INTEGER,
                 FOREIGN KEY (parent_id) REFERENCES r_folders (id) ON DELETE CASCADE);
             INSERT INTO r_folders (id, name, parent_id) VALUES (1, 'root', NULL), (2, 'child', 1),
                 (3, 'other', NULL);",
        )
        .await
        .unwrap();
        let runs = AtomicUsize::new(0);
        let read = async || {
            let sql = format!(
                "SELECT {} AS text FROM r_folders WHERE id = 2",
                count_text()
            );
            text(&t.db, &runs, sql).await.unwrap()
        };
        let ran = || runs.load(Ordering::SeqCst);
        assert_eq!(read().await, "1");
        t.db.execute_unprepared("UPDATE r_folders SET name = 'root2' WHERE id = 1")
            .await
            .unwrap();
        t.db.execute_unprepared("DELETE FROM r_folders WHERE id = 3")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read().await, "1");
        assert_eq!(
            ran(),
            2,
            "a DELETE of a folder may delete others through the cascade: by-id reads go"
        );
        t.db.execute_unprepared("UPDATE r_folders SET name = 'root3' WHERE id = 1")
            .await
            .unwrap();
        assert_eq!(read().await, "1");
        assert_eq!(ran(), 2, "an UPDATE fires no ON DELETE action");
        t.db.execute_unprepared("DELETE FROM r_folders WHERE id = 1")
            .await
            .unwrap();
        assert_eq!(read().await, "0", "the cascade deleted folder 2");
        assert_eq!(ran(), 3);
    }

    /// A view in another schema over the connection's tables, read qualified; its tables'
    /// writes reach it, whether they name their schema or not. PostgreSQL: a view in `app`
    /// over `public` tables. MariaDB, whose schemas are databases: a view in a second
    /// database of the server over the connection's database's tables. SQLite has no
    /// schemas but attached files, whose views cannot read `main`'s tables.
    #[tokio::test]
    async fn a_view_in_another_schema_reads_its_tables_wherever_they_are() {
        if DB == Db::Sqlite {
            return;
        }
        let Some(t) = TestDb::fresh(DB).await else {
            return;
        };
        t.db.execute_unprepared(&schema(DB)).await.unwrap();
        // MariaDB: the second database, dropped at the end of the test.
        let mut _app = None;
        let (app, public) = match DB {
            Db::MySql => {
                let app = crate::support::throwaway::ThrowawayDb::mysql()
                    .await
                    .expect("a second database on the server");
                let row = t.raw.query_one_raw(DB.text("SELECT DATABASE() AS d")).await;
                let public: String = row.unwrap().unwrap().try_get("", "d").unwrap();
                let app_name = app.name().to_owned();
                _app = Some(app);
                (app_name, public)
            }
            Db::Sqlite | Db::Postgres => ("app".to_owned(), "public".to_owned()),
        };
        if DB == Db::Postgres {
            t.db.execute_unprepared("CREATE SCHEMA app").await.unwrap();
        }
        t.db.execute_unprepared(&format!(
            "CREATE VIEW {app}.cards AS SELECT s.id, s.title, u.name FROM {public}.r_songs s
                 JOIN r_users u ON u.id = s.user_id"
        ))
        .await
        .unwrap();
        let runs = AtomicUsize::new(0);
        let read = async || {
            let sql = match DB {
                Db::MySql => format!(
                    "SELECT CONCAT(title, ' by ', name) AS text FROM {app}.cards WHERE id = 1"
                ),
                Db::Sqlite | Db::Postgres => {
                    format!("SELECT title || ' by ' || name AS text FROM {app}.cards WHERE id = 1")
                }
            };
            text(&t.db, &runs, sql).await.unwrap()
        };
        assert_eq!(read().await, "a by Ann");
        t.db.execute_unprepared("UPDATE r_albums SET title = 'y'")
            .await
            .unwrap();
        assert_eq!(read().await, "a by Ann");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        t.db.execute_unprepared(&format!(
            "UPDATE {public}.r_users SET name = 'Ann2' WHERE id = 1"
        ))
        .await
        .unwrap();
        assert_eq!(read().await, "a by Ann2");
        t.db.execute_unprepared("UPDATE r_songs SET title = 'a2' WHERE id = 1")
            .await
            .unwrap();
        assert_eq!(read().await, "a2 by Ann2");
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    /// MariaDB: a view in a second database of the server over the connection's tables
    /// (the catalog lists every database's views), read qualified by its database: a write
    /// to a table it does not read leaves it, writes to the tables it reads reach it.
    #[tokio::test]
    async fn a_view_in_another_database_reads_this_database_s_tables() {
        if DB != Db::MySql {
            return;
        }
        let Some(t) = TestDb::fresh(DB).await else {
            return;
        };
        t.db.execute_unprepared(&schema(DB)).await.unwrap();
        // Dropped at the end of the test.
        let second = crate::support::throwaway::ThrowawayDb::mysql()
            .await
            .expect("a second database on the server");
        let other = second.name();
        t.db.execute_unprepared(&format!(
            "CREATE VIEW {other}.cards AS SELECT s.id, s.title, u.name FROM r_songs s
                 JOIN r_users u ON u.id = s.user_id"
        ))
        .await
        .unwrap();
        let runs = AtomicUsize::new(0);
        let read = async || {
            let sql = format!(
                "SELECT CONCAT(title, ' by ', name) AS text FROM {other}.cards WHERE id = 1"
            );
            text(&t.db, &runs, sql).await.unwrap()
        };
        assert_eq!(read().await, "a by Ann");
        t.db.execute_unprepared("UPDATE r_albums SET title = 'y'")
            .await
            .unwrap();
        assert_eq!(read().await, "a by Ann");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        t.db.execute_unprepared("UPDATE r_users SET name = 'Ann2' WHERE id = 1")
            .await
            .unwrap();
        assert_eq!(read().await, "a by Ann2");
        t.db.execute_unprepared("UPDATE r_songs SET title = 'a2' WHERE id = 1")
            .await
            .unwrap();
        assert_eq!(read().await, "a2 by Ann2");
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }
}

#[cfg(feature = "diesel")]
mod diesel_part {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use diesel::sql_types::Text;
    use querycache::cached_query;

    use super::*;
    use crate::support::diesel::{AnyConnection, DieselDb};

    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        text: String,
    }

    #[cached_query(ttl = "1h")]
    fn text(
        conn: &mut AnyConnection,
        #[cache_skip] runs: &AtomicUsize,
        sql: String,
    ) -> QueryResult<String> {
        runs.fetch_add(1, Ordering::SeqCst);
        Ok(diesel::sql_query(sql).get_result::<Row>(conn)?.text)
    }

    fn fixture() -> Option<(DieselDb, AnyConnection)> {
        let t = DieselDb::new(DB)?;
        let mut conn = t.conn();
        // SQLite acts on foreign keys only when asked to, per connection.
        conn.batch_execute("PRAGMA foreign_keys = ON").ok();
        conn.batch_execute(&schema(DB)).unwrap();
        Some((t, conn))
    }

    #[tokio::test]
    async fn views_and_cascades_reach_reads_that_declare_nothing() {
        let Some((_t, conn)) = fixture() else {
            return;
        };
        let conn = std::cell::RefCell::new(conn);
        let runs = AtomicUsize::new(0);
        let read = async |sql: &str| text(&mut conn.borrow_mut(), &runs, sql.to_owned()).unwrap();
        let write = async |sql: &str| conn.borrow_mut().batch_execute(sql).unwrap();
        scenarios!(read, write, runs);
        after_scenarios!(read, write, runs);
    }

    /// A DELETE sent by a connection that never read the catalog (it was never given to a
    /// cached call): it cannot know what cascades, so it invalidates every model tag.
    #[test]
    fn a_write_before_the_catalog_was_read_still_reaches_cascaded_tables() {
        let Some((t, mut conn)) = fixture() else {
            return;
        };
        let runs = AtomicUsize::new(0);
        let read = |conn: &mut AnyConnection| text(conn, &runs, listened()).unwrap();
        assert_eq!(read(&mut conn), "2");
        assert_eq!(read(&mut conn), "2");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let mut stranger = t.conn();
        stranger.batch_execute("PRAGMA foreign_keys = ON").ok();
        stranger
            .batch_execute("UPDATE r_albums SET title = 'q'")
            .unwrap();
        assert_eq!(read(&mut conn), "2");
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "a write that cannot know its cascades invalidates every model tag"
        );
        stranger
            .batch_execute("DELETE FROM r_users WHERE id = 2")
            .unwrap();
        assert_eq!(read(&mut conn), "1");
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }
}

#[cfg(feature = "diesel-async")]
mod diesel_async_part {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use diesel::sql_types::Text;
    use diesel_async::{AsyncConnection, RunQueryDsl};
    use querycache::cached_query;
    use querycache::orm::diesel::CacheInstrumentation;

    use super::*;
    use crate::support::diesel::{DieselDb, with_async_conn};

    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        text: String,
    }

    /// The scenarios on an async connection `$conn` of type `$ty`.
    macro_rules! on_async {
        ($t:expr, $conn:ident, $ty:ty) => {{
            #[cached_query(ttl = "1h")]
            async fn text(
                conn: &mut $ty,
                #[cache_skip] runs: &AtomicUsize,
                sql: String,
            ) -> diesel::QueryResult<String> {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok(diesel::sql_query(sql).get_result::<Row>(conn).await?.text)
            }

            $conn.set_instrumentation(CacheInstrumentation::new($t.cache.clone()));
            if DB == Db::Sqlite {
                diesel::sql_query("PRAGMA foreign_keys = ON")
                    .execute(&mut $conn)
                    .await
                    .unwrap();
            }
            let conn = tokio::sync::Mutex::new($conn);
            let runs = AtomicUsize::new(0);
            let read = async |sql: &str| {
                text(&mut *conn.lock().await, &runs, sql.to_owned())
                    .await
                    .unwrap()
            };
            let write = async |sql: &str| {
                diesel::sql_query(sql)
                    .execute(&mut *conn.lock().await)
                    .await
                    .unwrap();
            };
            scenarios!(read, write, runs);
            after_scenarios!(read, write, runs);
        }};
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn views_and_cascades_reach_reads_that_declare_nothing() {
        let Some(t) = DieselDb::new(DB) else { return };
        {
            let mut sync = t.conn();
            diesel::connection::SimpleConnection::batch_execute(&mut sync, &schema(DB)).unwrap();
        }
        with_async_conn!(DB, t.url, |conn: DbConnection| on_async!(
            t,
            conn,
            DbConnection
        ));
    }
}
