//! Diesel fixtures: a throwaway database (SQLite file, or a database on the PostgreSQL or
//! MariaDB server), migrated, whose connections report their writes to a cache of the test's
//! own.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use querycache::Cache;
use querycache::orm::diesel::CacheInstrumentation;

#[path = "../../../examples/support/diesel_schema.rs"]
pub mod schema;

use super::Db;

/// Held by the tests that set Diesel's process-wide default instrumentation, one at a time.
pub static PROCESS_DEFAULT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// One connection type for the three databases, as an application supporting them all would
/// write. MySQL has no `RETURNING`, so neither has this type: [`returning!`] runs a query
/// that has one on the PostgreSQL or SQLite connection inside.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
    Mysql(diesel::MysqlConnection),
}

/// Evaluates `$body` with `$conn` bound to the PostgreSQL or SQLite connection inside
/// `$any` (an [`AnyConnection`]), for the queries with a `RETURNING` clause MySQL lacks.
/// Panics on MySQL: the caller runs such a query only on the other two.
macro_rules! returning {
    ($any:expr, |$conn:ident| $body:expr) => {
        match $any {
            $crate::support::diesel::AnyConnection::Postgresql($conn) => $body,
            $crate::support::diesel::AnyConnection::Sqlite($conn) => $body,
            $crate::support::diesel::AnyConnection::Mysql(_) => {
                panic!("MySQL has no RETURNING: this query runs on PostgreSQL and SQLite only")
            }
        }
    };
}
pub(crate) use returning;

/// A migrated database and a cache its instrumented connections invalidate.
pub struct DieselDb {
    pub url: String,
    pub db: Db,
    pub cache: Cache,
    _sqlite_dir: Option<tempfile::TempDir>,
    _server: Option<super::throwaway::ThrowawayDb>,
}

impl DieselDb {
    /// A fresh database of kind `db` with a fresh memory cache; `None` when its server
    /// (PostgreSQL, MariaDB) is not reachable (the test returns early) unless
    /// QUERYCACHE_REQUIRE_SERVICES=1.
    pub fn new(db: Db) -> Option<DieselDb> {
        Self::with_cache(db, Cache::new())
    }

    /// A fresh database of kind `db` whose connections invalidate `cache`.
    pub fn with_cache(db: Db, cache: Cache) -> Option<DieselDb> {
        let (url, dir, server) = match db {
            Db::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = dir.path().join("diesel.db").display().to_string();
                (url, Some(dir), None)
            }
            Db::Postgres | Db::MySql => {
                let database = create_on_server(db)?;
                (database.url().to_owned(), None, Some(database))
            }
        };
        let this = DieselDb {
            url,
            db,
            cache,
            _sqlite_dir: dir,
            _server: server,
        };
        let mut conn = this.raw();
        for (name, sql) in schema::migrations(&this.url) {
            conn.batch_execute(sql)
                .unwrap_or_else(|e| panic!("migration {name}: {e}"));
        }
        Some(this)
    }

    /// An existing, migrated database at `url` (a SQLite path or a server's URL), owned by
    /// someone else (a SeaORM [`TestDb`](super::TestDb)), whose connections invalidate `cache`.
    pub fn attach(db: Db, url: String, cache: Cache) -> DieselDb {
        DieselDb {
            url,
            db,
            cache,
            _sqlite_dir: None,
            _server: None,
        }
    }

    /// A connection without querycache's instrumentation ("another process").
    pub fn raw(&self) -> AnyConnection {
        let mut conn = AnyConnection::establish(&self.url)
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.url));
        // Whatever Diesel's process-wide default is at this moment (a test of
        // `install_default` sets one briefly), this connection reports to nobody.
        conn.set_instrumentation(None::<Box<dyn diesel::connection::Instrumentation>>);
        if self.db == Db::Sqlite {
            // No fsync for a throwaway file (see the SQLite pool's options).
            conn.batch_execute(
                "PRAGMA busy_timeout = 30000; PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;",
            )
            .expect("pragmas");
        }
        conn
    }

    /// A connection whose writes invalidate the cache.
    pub fn conn(&self) -> AnyConnection {
        let mut conn = self.raw();
        conn.set_instrumentation(CacheInstrumentation::new(self.cache.clone()));
        conn
    }

    /// The placeholder of the `n`-th (1-based) bound value in raw SQL.
    pub fn ph(&self, n: usize) -> String {
        match self.db {
            Db::Sqlite | Db::MySql => "?".to_owned(),
            Db::Postgres => format!("${n}"),
        }
    }

    /// Inserts a user, returning its id.
    pub fn user(&self, conn: &mut AnyConnection, name: &str) -> i32 {
        use schema::users::dsl;
        let insert = diesel::insert_into(dsl::users).values((
            dsl::name.eq(name),
            dsl::email.eq(format!("{name}@example.test")),
        ));
        if let AnyConnection::Mysql(mysql) = conn {
            insert.execute(mysql).expect("insert user");
            return last_insert_id(mysql);
        }
        returning!(conn, |conn| insert
            .returning(dsl::id)
            .get_result(conn)
            .expect("insert user"))
    }

    /// Inserts a song, returning its id.
    pub fn song(&self, conn: &mut AnyConnection, author: i32, title: &str) -> i32 {
        use schema::songs::dsl;
        let insert = diesel::insert_into(dsl::songs).values((
            dsl::title.eq(title),
            dsl::artist.eq(format!("{title} artist")),
            dsl::author_id.eq(author),
        ));
        if let AnyConnection::Mysql(mysql) = conn {
            insert.execute(mysql).expect("insert song");
            return last_insert_id(mysql);
        }
        returning!(conn, |conn| insert
            .returning(dsl::id)
            .get_result(conn)
            .expect("insert song"))
    }
}

/// The id MySQL generated for `conn`'s last insert (it has no `RETURNING`).
pub fn last_insert_id(conn: &mut diesel::MysqlConnection) -> i32 {
    let id: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "CAST(LAST_INSERT_ID() AS SIGNED)",
    ))
    .get_result(conn)
    .expect("LAST_INSERT_ID()");
    i32::try_from(id).expect("an id in i32's range")
}

/// A throwaway database on the server of `db` (PostgreSQL, MariaDB), created from a thread
/// of its own (the caller may be on a runtime's thread).
fn create_on_server(db: Db) -> Option<super::throwaway::ThrowawayDb> {
    use super::throwaway::{Server, ThrowawayDb};
    let server = match db {
        Db::Postgres => Server::Postgres,
        Db::MySql => Server::MySql,
        Db::Sqlite => unreachable!("SQLite has no server"),
    };
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(ThrowawayDb::on(server))
    })
    .join()
    .expect("creating the server database panicked")
}

/// The schema's rows as Diesel models, with the associations `belonging_to` needs.
pub mod models {
    use diesel::prelude::*;

    use super::schema::{songs, users};

    #[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable)]
    #[diesel(table_name = users)]
    pub struct User {
        pub id: i32,
        pub name: String,
        pub email: String,
    }

    #[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable, Associations)]
    #[diesel(table_name = songs, belongs_to(User, foreign_key = author_id))]
    pub struct Song {
        pub id: i32,
        pub title: String,
        pub artist: String,
        pub author_id: i32,
        pub content: String,
        pub archived: bool,
    }
}

/// Cached reads of the schema, each counting its runs in the `runs` it is given.
pub mod reads {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use diesel::prelude::*;
    use querycache::{Cache, cached_query};

    use super::AnyConnection;
    use super::schema::{songs, users};

    /// Every song's title, by id: depends on the songs table.
    #[cached_query(cache = cache, models = [songs::table])]
    pub fn song_titles(
        #[cache_skip] cache: &Cache,
        #[cache_skip] runs: &AtomicUsize,
        conn: &mut AnyConnection,
    ) -> QueryResult<Vec<String>> {
        runs.fetch_add(1, Ordering::SeqCst);
        songs::table
            .order(songs::id)
            .select(songs::title)
            .load(conn)
    }

    /// One song's title: depends on its row (and the table's bulk writes).
    #[cached_query(cache = cache, models = [songs::table], row = id)]
    pub fn song_title(
        #[cache_skip] cache: &Cache,
        #[cache_skip] runs: &AtomicUsize,
        conn: &mut AnyConnection,
        id: i32,
    ) -> QueryResult<Option<String>> {
        runs.fetch_add(1, Ordering::SeqCst);
        songs::table
            .find(id)
            .select(songs::title)
            .first(conn)
            .optional()
    }

    /// One user's name: depends on its row.
    #[cached_query(cache = cache, models = [users::table], row = id)]
    pub fn user_name(
        #[cache_skip] cache: &Cache,
        #[cache_skip] runs: &AtomicUsize,
        conn: &mut AnyConnection,
        id: i32,
    ) -> QueryResult<Option<String>> {
        runs.fetch_add(1, Ordering::SeqCst);
        users::table
            .find(id)
            .select(users::name)
            .first(conn)
            .optional()
    }
}

/// Runs `$body` with `$conn`, a new diesel-async connection of type `$ty` to the database
/// at `$url` of kind `$db`: `AsyncPgConnection` on PostgreSQL, `AsyncMysqlConnection` on
/// MariaDB, `SyncConnectionWrapper<SqliteConnection>` on SQLite.
#[cfg(feature = "diesel-async")]
macro_rules! with_async_conn {
    ($db:expr, $url:expr, |$conn:ident: $ty:ident| $body:expr) => {
        match $db {
            $crate::support::Db::Sqlite => {
                type $ty = diesel_async::sync_connection_wrapper::SyncConnectionWrapper<
                    diesel::SqliteConnection,
                >;
                #[allow(unused_mut)]
                let mut $conn = <$ty as diesel_async::AsyncConnection>::establish(&$url)
                    .await
                    .expect("connect");
                $body
            }
            $crate::support::Db::Postgres => {
                type $ty = diesel_async::AsyncPgConnection;
                #[allow(unused_mut)]
                let mut $conn = <$ty as diesel_async::AsyncConnection>::establish(&$url)
                    .await
                    .expect("connect");
                $body
            }
            $crate::support::Db::MySql => {
                type $ty = diesel_async::AsyncMysqlConnection;
                #[allow(unused_mut)]
                let mut $conn = <$ty as diesel_async::AsyncConnection>::establish(&$url)
                    .await
                    .expect("connect");
                $body
            }
        }
    };
}
#[cfg(feature = "diesel-async")]
pub(crate) use with_async_conn;
