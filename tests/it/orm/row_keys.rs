//! Row precision on real schemas (issue 22 item 9): tables keyed `song_id`, `uuid` and
//! `(tenant_id, id)`, whose keys the connection learns from the catalog. A cached read that
//! declares nothing and pins one row is invalidated by a write to that row, left by a write
//! to another row of the same table, and invalidated by a write that pins no row — through
//! SeaORM's `CachedConnection` and Diesel's `CacheInstrumentation`.

use super::DB;
use crate::support::Db;

/// The UUID of the row read; written in other spellings by the writes below.
const THING: &str = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
/// Another row of the same table. Led by a digit other than 0: where the key's type is not
/// known (MariaDB), text is also the integer MySQL would compare it as with an integer key,
/// and `THING`, led by a letter, is 0.
const OTHER_THING: &str = "1f0e0d0c-0b0a-4909-8807-060504030201";

/// The three tables, with rows `1`/`2`, `THING`/`OTHER_THING`, `(1, 7)`/`(1, 8)`/`(2, 7)`.
fn schema(db: Db) -> String {
    let uuid = match db {
        Db::Postgres => "UUID",
        Db::Sqlite => "TEXT",
        // Text under the server's default collation, which ignores case.
        Db::MySql => "CHAR(36)",
    };
    format!(
        "CREATE TABLE tracks (song_id INTEGER PRIMARY KEY, title TEXT NOT NULL);
         CREATE TABLE things (uuid {uuid} PRIMARY KEY, title TEXT NOT NULL);
         CREATE TABLE members (tenant_id INTEGER NOT NULL, id INTEGER NOT NULL,
             title TEXT NOT NULL, PRIMARY KEY (tenant_id, id));
         INSERT INTO tracks (song_id, title) VALUES (1, 'a'), (2, 'b');
         INSERT INTO things (uuid, title) VALUES ('{THING}', 'a'), ('{OTHER_THING}', 'b');
         INSERT INTO members (tenant_id, id, title) VALUES (1, 7, 'a'), (1, 8, 'b'), (2, 7, 'c');"
    )
}

/// The writes of one key form: to the row read, to other rows, and pinning no row.
struct Writes {
    same_row: Vec<String>,
    other_rows: Vec<String>,
    no_row: String,
}

/// `title` with `'!'` appended, in `db`'s SQL (`||` is OR to MySQL).
fn banged(db: Db) -> &'static str {
    match db {
        Db::MySql => "CONCAT(title, '!')",
        Db::Postgres | Db::Sqlite => "title || '!'",
    }
}

/// The writes to `tracks`, keyed `song_id`.
fn track_writes(db: Db) -> Writes {
    Writes {
        same_row: vec!["UPDATE tracks SET title = 'a2' WHERE song_id = 1".into()],
        other_rows: vec!["UPDATE tracks SET title = 'b2' WHERE song_id = 2".into()],
        no_row: format!(
            "UPDATE tracks SET title = {} WHERE title <> 'none'",
            banged(db)
        ),
    }
}

/// The writes to `things`, keyed `uuid`: the row read written in upper case on PostgreSQL
/// (the same UUID there) and MariaDB (the same text under its collation, trailing space
/// included); SQLite compares text as written.
fn thing_writes(db: Db) -> Writes {
    let same = match db {
        Db::Postgres => THING.to_uppercase(),
        Db::Sqlite => THING.to_owned(),
        Db::MySql => format!("{} ", THING.to_uppercase()),
    };
    Writes {
        same_row: vec![format!(
            "UPDATE things SET title = 'a2' WHERE uuid = '{same}'"
        )],
        other_rows: vec![format!(
            "UPDATE things SET title = 'b2' WHERE uuid = '{OTHER_THING}'"
        )],
        no_row: format!(
            "UPDATE things SET title = {} WHERE title <> 'none'",
            banged(db)
        ),
    }
}

/// The writes to `members`, keyed `(tenant_id, id)`: writing `id = 7` alone pins no row.
fn member_writes(db: Db) -> Writes {
    Writes {
        same_row: vec!["UPDATE members SET title = 'a2' WHERE id = 7 AND tenant_id = 1".into()],
        other_rows: vec![
            "UPDATE members SET title = 'b2' WHERE tenant_id = 1 AND id = 8".into(),
            "UPDATE members SET title = 'c2' WHERE tenant_id = 2 AND id = 7".into(),
        ],
        no_row: format!("UPDATE members SET title = {} WHERE id = 7", banged(db)),
    }
}

mod sea_orm_part {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use querycache::cached_query;
    use querycache::orm::sea_orm::CachedConnection;
    use sea_orm::{ConnectionTrait, DbErr, Value};

    use super::*;
    use crate::support::TestDb;

    async fn title_of(
        db: &CachedConnection,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Option<String>, DbErr> {
        let row = db.query_one_raw(DB.statement(sql, values)).await?;
        row.map(|row| row.try_get::<String>("", "title"))
            .transpose()
    }

    #[cached_query(ttl = "1h")]
    async fn track(
        db: &CachedConnection,
        #[cache_skip] runs: &AtomicUsize,
        id: i32,
    ) -> Result<Option<String>, DbErr> {
        runs.fetch_add(1, Ordering::SeqCst);
        title_of(
            db,
            "SELECT title FROM tracks WHERE song_id = ?",
            vec![id.into()],
        )
        .await
    }

    #[cached_query(ttl = "1h")]
    async fn thing(
        db: &CachedConnection,
        #[cache_skip] runs: &AtomicUsize,
        uuid: String,
    ) -> Result<Option<String>, DbErr> {
        runs.fetch_add(1, Ordering::SeqCst);
        // PostgreSQL: a typed UUID; SQLite and MariaDB: text.
        let value = match DB {
            Db::Postgres => {
                let uuid = sea_orm::prelude::Uuid::parse_str(&uuid)
                    .map_err(|e| DbErr::Custom(e.to_string()))?;
                Value::from(uuid)
            }
            Db::Sqlite | Db::MySql => Value::from(uuid),
        };
        title_of(db, "SELECT title FROM things WHERE uuid = ?", vec![value]).await
    }

    #[cached_query(ttl = "1h")]
    async fn member(
        db: &CachedConnection,
        #[cache_skip] runs: &AtomicUsize,
        tenant: i32,
        id: i32,
    ) -> Result<Option<String>, DbErr> {
        runs.fetch_add(1, Ordering::SeqCst);
        let sql = "SELECT title FROM members WHERE tenant_id = ? AND id = ?";
        title_of(db, sql, vec![tenant.into(), id.into()]).await
    }

    async fn fixture() -> Option<TestDb> {
        let t = TestDb::fresh(DB).await?;
        t.db.execute_unprepared(&schema(DB)).await.unwrap();
        Some(t)
    }

    /// Reads with `read` (which counts its runs in `runs`) around each of `writes`.
    async fn check(
        t: &TestDb,
        runs: &AtomicUsize,
        read: impl AsyncFn() -> Option<String>,
        writes: Writes,
    ) {
        let ran = || runs.load(Ordering::SeqCst);
        assert_eq!(read().await.as_deref(), Some("a"));
        assert_eq!(read().await.as_deref(), Some("a"));
        assert_eq!(ran(), 1, "cached although nothing was declared");
        for sql in &writes.other_rows {
            t.db.execute_unprepared(sql).await.unwrap();
            assert_eq!(read().await.as_deref(), Some("a"));
            assert_eq!(ran(), 1, "a write to another row leaves it: {sql}");
        }
        for sql in &writes.same_row {
            t.db.execute_unprepared(sql).await.unwrap();
            assert_eq!(read().await.as_deref(), Some("a2"), "{sql}");
            assert_eq!(ran(), 2, "a write to its row invalidates it: {sql}");
        }
        t.db.execute_unprepared(&writes.no_row).await.unwrap();
        assert_eq!(read().await.as_deref(), Some("a2!"));
        assert_eq!(ran(), 3, "a write pinning no row invalidates it");
    }

    #[tokio::test]
    async fn a_table_keyed_song_id() {
        let Some(t) = fixture().await else { return };
        let runs = AtomicUsize::new(0);
        let read = async || track(&t.db, &runs, 1).await.unwrap();
        check(&t, &runs, read, track_writes(DB)).await;
    }

    #[tokio::test]
    async fn a_table_keyed_by_a_uuid() {
        let Some(t) = fixture().await else { return };
        let runs = AtomicUsize::new(0);
        let read = async || thing(&t.db, &runs, THING.to_owned()).await.unwrap();
        check(&t, &runs, read, thing_writes(DB)).await;
    }

    #[tokio::test]
    async fn a_table_keyed_tenant_id_and_id() {
        let Some(t) = fixture().await else { return };
        let runs = AtomicUsize::new(0);
        let read = async || member(&t.db, &runs, 1, 7).await.unwrap();
        check(&t, &runs, read, member_writes(DB)).await;
    }

    #[cached_query(ttl = "1h")]
    async fn slug(
        db: &CachedConnection,
        #[cache_skip] runs: &AtomicUsize,
        slug: String,
    ) -> Result<Option<String>, DbErr> {
        runs.fetch_add(1, Ordering::SeqCst);
        let sql = "SELECT title FROM slugs WHERE slug = ?";
        title_of(db, sql, vec![slug.into()]).await
    }

    /// MariaDB compares a text key under its collation: `'ROCK'`, `'Rock  '` and `'róck'`
    /// are the row `'rock'`, and writes spelled so reach the read of `'rock'`. (A write to
    /// `'jazz'` reaches it too: the key's type is not known, and were it an integer both
    /// would be row 0, which `WHERE slug = 0` reads.)
    #[tokio::test]
    async fn a_text_key_meets_its_spellings_under_the_collation() {
        if DB != Db::MySql {
            return;
        }
        let Some(t) = fixture().await else { return };
        t.db.execute_unprepared(
            "CREATE TABLE slugs (slug VARCHAR(50) PRIMARY KEY, title TEXT NOT NULL);
             INSERT INTO slugs (slug, title) VALUES ('rock', 'a'), ('jazz', 'b');",
        )
        .await
        .unwrap();
        let runs = AtomicUsize::new(0);
        let read = async || slug(&t.db, &runs, "rock".to_owned()).await.unwrap();
        let writes = Writes {
            same_row: vec!["UPDATE slugs SET title = 'a2' WHERE slug = 'ROCK'".into()],
            other_rows: Vec::new(),
            no_row: "UPDATE slugs SET title = CONCAT(title, '!') WHERE slug = 'róck'".into(),
        };
        check(&t, &runs, read, writes).await;
        // Trailing spaces are ignored too.
        t.db.execute_unprepared("UPDATE slugs SET title = 'a3' WHERE slug = 'Rock  '")
            .await
            .unwrap();
        assert_eq!(read().await.as_deref(), Some("a3"));
    }

    /// A UUID bound as a typed value on the write side too (PostgreSQL), and a bound write
    /// to another row.
    #[tokio::test]
    async fn a_uuid_bound_on_both_sides() {
        let Some(t) = fixture().await else { return };
        if DB != Db::Postgres {
            return;
        }
        let runs = AtomicUsize::new(0);
        let read = async || thing(&t.db, &runs, THING.to_owned()).await.unwrap();
        let write = async |uuid: &str, title: &str| {
            let uuid = sea_orm::prelude::Uuid::parse_str(uuid).unwrap();
            let sql = "UPDATE things SET title = ? WHERE uuid = ?";
            t.db.execute_raw(DB.statement(sql, [title.into(), uuid.into()]))
                .await
                .unwrap();
        };
        assert_eq!(read().await.as_deref(), Some("a"));
        write(OTHER_THING, "b2").await;
        assert_eq!(read().await.as_deref(), Some("a"));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        write(THING, "a2").await;
        assert_eq!(read().await.as_deref(), Some("a2"));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }
}

#[cfg(feature = "diesel")]
mod diesel_part {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use diesel::sql_types::{Integer, Text};
    use querycache::cached_query;

    use super::*;
    use crate::support::diesel::{AnyConnection, DieselDb};

    #[derive(QueryableByName)]
    struct Title {
        #[diesel(sql_type = Text)]
        title: String,
    }

    #[cached_query(ttl = "1h")]
    fn track(
        conn: &mut AnyConnection,
        #[cache_skip] runs: &AtomicUsize,
        id: i32,
    ) -> QueryResult<Option<String>> {
        runs.fetch_add(1, Ordering::SeqCst);
        let sql = DB.sql("SELECT title FROM tracks WHERE song_id = ?");
        let row = diesel::sql_query(sql)
            .bind::<Integer, _>(id)
            .get_result::<Title>(conn)
            .optional()?;
        Ok(row.map(|r| r.title))
    }

    #[cached_query(ttl = "1h")]
    fn thing(
        conn: &mut AnyConnection,
        #[cache_skip] runs: &AtomicUsize,
        uuid: String,
    ) -> QueryResult<Option<String>> {
        runs.fetch_add(1, Ordering::SeqCst);
        let sql = DB.sql("SELECT title FROM things WHERE uuid = ?");
        let row = match conn {
            // PostgreSQL: a typed UUID.
            AnyConnection::Postgresql(pg) => {
                let uuid = sea_orm::prelude::Uuid::parse_str(&uuid)
                    .map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))?;
                diesel::sql_query(sql)
                    .bind::<diesel::sql_types::Uuid, _>(uuid)
                    .get_result::<Title>(pg)
                    .optional()?
            }
            AnyConnection::Sqlite(sqlite) => diesel::sql_query(sql)
                .bind::<Text, _>(uuid)
                .get_result::<Title>(sqlite)
                .optional()?,
            // MySQL: the text form in a CHAR(36).
            AnyConnection::Mysql(mysql) => diesel::sql_query(sql)
                .bind::<Text, _>(uuid)
                .get_result::<Title>(mysql)
                .optional()?,
        };
        Ok(row.map(|r| r.title))
    }

    #[cached_query(ttl = "1h")]
    fn member(
        conn: &mut AnyConnection,
        #[cache_skip] runs: &AtomicUsize,
        tenant: i32,
        id: i32,
    ) -> QueryResult<Option<String>> {
        runs.fetch_add(1, Ordering::SeqCst);
        let sql = DB.sql("SELECT title FROM members WHERE tenant_id = ? AND id = ?");
        let row = diesel::sql_query(sql)
            .bind::<Integer, _>(tenant)
            .bind::<Integer, _>(id)
            .get_result::<Title>(conn)
            .optional()?;
        Ok(row.map(|r| r.title))
    }

    fn fixture() -> Option<(DieselDb, AnyConnection)> {
        let t = DieselDb::new(DB)?;
        let mut conn = t.conn();
        conn.batch_execute(&schema(DB)).unwrap();
        Some((t, conn))
    }

    /// Reads with `read` (which counts its runs in `runs`) around each of `writes`.
    fn check(
        conn: &mut AnyConnection,
        runs: &AtomicUsize,
        read: impl Fn(&mut AnyConnection) -> Option<String>,
        writes: Writes,
    ) {
        let ran = || runs.load(Ordering::SeqCst);
        assert_eq!(read(conn).as_deref(), Some("a"));
        assert_eq!(read(conn).as_deref(), Some("a"));
        assert_eq!(ran(), 1, "cached although nothing was declared");
        for sql in &writes.other_rows {
            conn.batch_execute(sql).unwrap();
            assert_eq!(read(conn).as_deref(), Some("a"));
            assert_eq!(ran(), 1, "a write to another row leaves it: {sql}");
        }
        for sql in &writes.same_row {
            conn.batch_execute(sql).unwrap();
            assert_eq!(read(conn).as_deref(), Some("a2"), "{sql}");
            assert_eq!(ran(), 2, "a write to its row invalidates it: {sql}");
        }
        conn.batch_execute(&writes.no_row).unwrap();
        assert_eq!(read(conn).as_deref(), Some("a2!"));
        assert_eq!(ran(), 3, "a write pinning no row invalidates it");
    }

    #[test]
    fn a_table_keyed_song_id() {
        let Some((_t, mut conn)) = fixture() else {
            return;
        };
        let runs = AtomicUsize::new(0);
        let read = |conn: &mut AnyConnection| track(conn, &runs, 1).unwrap();
        check(&mut conn, &runs, read, track_writes(DB));
    }

    #[test]
    fn a_table_keyed_by_a_uuid() {
        let Some((_t, mut conn)) = fixture() else {
            return;
        };
        let runs = AtomicUsize::new(0);
        let read = |conn: &mut AnyConnection| thing(conn, &runs, THING.to_owned()).unwrap();
        check(&mut conn, &runs, read, thing_writes(DB));
    }

    #[test]
    fn a_table_keyed_tenant_id_and_id() {
        let Some((_t, mut conn)) = fixture() else {
            return;
        };
        let runs = AtomicUsize::new(0);
        let read = |conn: &mut AnyConnection| member(conn, &runs, 1, 7).unwrap();
        check(&mut conn, &runs, read, member_writes(DB));
    }

    /// Bound writes (Diesel's `Debug` form of each bind value) pin rows as literals do.
    #[test]
    fn bound_writes_pin_rows_by_the_key() {
        let Some((_t, mut conn)) = fixture() else {
            return;
        };
        let runs = AtomicUsize::new(0);
        let read = |conn: &mut AnyConnection| member(conn, &runs, 1, 7).unwrap();
        let write = |conn: &mut AnyConnection, tenant: i32, id: i32, title: &str| {
            let sql = DB.sql("UPDATE members SET title = ? WHERE tenant_id = ? AND id = ?");
            diesel::sql_query(sql)
                .bind::<Text, _>(title)
                .bind::<Integer, _>(tenant)
                .bind::<Integer, _>(id)
                .execute(conn)
                .unwrap();
        };
        assert_eq!(read(&mut conn).as_deref(), Some("a"));
        write(&mut conn, 2, 7, "c2");
        write(&mut conn, 1, 8, "b2");
        assert_eq!(read(&mut conn).as_deref(), Some("a"));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        write(&mut conn, 1, 7, "a2");
        assert_eq!(read(&mut conn).as_deref(), Some("a2"));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }
}

#[cfg(feature = "diesel-async")]
mod diesel_async_part {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use diesel::OptionalExtension;
    use diesel::sql_types::{Integer, Text};
    use diesel_async::{AsyncConnection, RunQueryDsl};
    use querycache::cached_query;
    use querycache::orm::diesel::CacheInstrumentation;

    use super::*;
    use crate::support::diesel::{DieselDb, with_async_conn};

    #[derive(diesel::QueryableByName)]
    struct Title {
        #[diesel(sql_type = Text)]
        title: String,
    }

    /// The composite-key scenario on an async connection `$conn` of type `$ty`.
    macro_rules! members {
        ($t:expr, $conn:ident, $ty:ident) => {{
            #[cached_query(ttl = "1h")]
            async fn member(
                conn: &mut $ty,
                #[cache_skip] runs: &AtomicUsize,
                tenant: i32,
                id: i32,
            ) -> diesel::QueryResult<Option<String>> {
                runs.fetch_add(1, Ordering::SeqCst);
                let sql = DB.sql("SELECT title FROM members WHERE tenant_id = ? AND id = ?");
                let row = diesel::sql_query(sql)
                    .bind::<Integer, _>(tenant)
                    .bind::<Integer, _>(id)
                    .get_result::<Title>(conn)
                    .await
                    .optional()?;
                Ok(row.map(|r| r.title))
            }

            $conn.set_instrumentation(CacheInstrumentation::new($t.cache.clone()));
            let runs = AtomicUsize::new(0);
            let writes = member_writes(DB);
            assert_eq!(
                member(&mut $conn, &runs, 1, 7).await.unwrap().as_deref(),
                Some("a")
            );
            for sql in &writes.other_rows {
                diesel::sql_query(sql).execute(&mut $conn).await.unwrap();
                assert_eq!(
                    member(&mut $conn, &runs, 1, 7).await.unwrap().as_deref(),
                    Some("a")
                );
                assert_eq!(AtomicUsize::load(&runs, Ordering::SeqCst), 1, "{sql}");
            }
            // Bound values, read back from each connection's bind list.
            let sql = DB.sql("UPDATE members SET title = ? WHERE tenant_id = ? AND id = ?");
            diesel::sql_query(sql)
                .bind::<Text, _>("a2")
                .bind::<Integer, _>(1)
                .bind::<Integer, _>(7)
                .execute(&mut $conn)
                .await
                .unwrap();
            assert_eq!(
                member(&mut $conn, &runs, 1, 7).await.unwrap().as_deref(),
                Some("a2")
            );
            assert_eq!(AtomicUsize::load(&runs, Ordering::SeqCst), 2);
            diesel::sql_query(writes.no_row.as_str())
                .execute(&mut $conn)
                .await
                .unwrap();
            assert_eq!(
                member(&mut $conn, &runs, 1, 7).await.unwrap().as_deref(),
                Some("a2!")
            );
            assert_eq!(AtomicUsize::load(&runs, Ordering::SeqCst), 3);
        }};
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_table_keyed_tenant_id_and_id_through_diesel_async() {
        let Some(t) = DieselDb::new(DB) else { return };
        {
            let mut sync = t.conn();
            diesel::connection::SimpleConnection::batch_execute(&mut sync, &schema(DB)).unwrap();
        }
        with_async_conn!(DB, t.url, |conn: DbConnection| members!(
            t,
            conn,
            DbConnection
        ));
    }
}
