//! Throwaway databases on the shared servers: one per [`ThrowawayDb`], created on the shared
//! PostgreSQL or MariaDB server and dropped when the fixture is dropped — also when the test
//! panics.
//!
//! The harness connects to a maintenance database only to run `CREATE DATABASE
//! qc_test_<random hex>` and, on Drop, `DROP DATABASE` (PostgreSQL's `WITH (FORCE)` also ends
//! connections the test's pool still holds):
//!
//! | server | maintenance database | overridden by |
//! | --- | --- | --- |
//! | PostgreSQL ([`PgDatabase`]) | `postgres://postgres@127.0.0.1:5432/postgres` | `QUERYCACHE_TEST_PG_URL` |
//! | MariaDB or MySQL ([`ThrowawayDb::mysql`]) | `mysql://root@127.0.0.1:3306/test` | `QUERYCACHE_TEST_MYSQL_URL` |
//!
//! Tests talk to their own database through [`ThrowawayDb::url`]; nothing else on the shared
//! servers is touched.
//!
//! Skipping follows the Redis harness: when the server cannot be reached, the constructors say
//! why on stderr and return `None` (the test returns early), unless
//! `QUERYCACHE_REQUIRE_SERVICES=1`, where they panic with the reason. A server that answers but
//! refuses to create the database is always a panic.
//!
//! Drop is synchronous and may run on a runtime's thread (the end of an async test): the drop
//! runs on a thread of its own with a small current-thread runtime, is bounded by a timeout,
//! and reports failures on stderr instead of panicking. A process killed before its fixtures
//! drop leaves its `qc_test_*` databases behind; they are harmless and can be dropped by hand.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};

use super::services::unavailable;

/// The environment variable naming PostgreSQL's maintenance database.
pub const PG_URL_VAR: &str = "QUERYCACHE_TEST_PG_URL";
/// The environment variable naming MariaDB's (or MySQL's) maintenance database.
pub const MYSQL_URL_VAR: &str = "QUERYCACHE_TEST_MYSQL_URL";
/// How long connecting to the server may take before it counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long dropping a database may take (it waits for the server to end its sessions).
const DROP_TIMEOUT: Duration = Duration::from_secs(30);
/// Prefix of every database this harness creates.
pub const NAME_PREFIX: &str = "qc_test_";

/// Why the shared PostgreSQL (first) and MariaDB (second) could not be reached, once they
/// could not: the tests after the first one skip at once instead of each waiting for the
/// connect timeout.
static UNREACHABLE: Mutex<[Option<String>; 2]> = Mutex::new([None, None]);

/// Which kind of server a [`ThrowawayDb`] lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// PostgreSQL.
    Postgres,
    /// MariaDB or MySQL.
    MySql,
}

impl Server {
    /// Its name in messages.
    fn name(self) -> &'static str {
        match self {
            Server::Postgres => "PostgreSQL",
            Server::MySql => "MariaDB",
        }
    }

    /// The variable naming its maintenance database, and that database's default.
    fn admin_url(self) -> (&'static str, &'static str) {
        match self {
            Server::Postgres => (PG_URL_VAR, "postgres://postgres@127.0.0.1:5432/postgres"),
            Server::MySql => (MYSQL_URL_VAR, "mysql://root@127.0.0.1:3306/test"),
        }
    }

    /// The shared server's address in a maintenance URL: its unreachability is remembered.
    fn shared(self) -> &'static str {
        match self {
            Server::Postgres => ":5432/",
            Server::MySql => ":3306/",
        }
    }

    fn create_sql(self, name: &str) -> String {
        match self {
            Server::Postgres => format!("CREATE DATABASE \"{name}\""),
            Server::MySql => format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"),
        }
    }

    fn drop_sql(self, name: &str) -> String {
        match self {
            Server::Postgres => format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            Server::MySql => format!("DROP DATABASE IF EXISTS `{name}`"),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A freshly created, empty database, dropped on Drop.
pub struct ThrowawayDb {
    name: String,
    url: String,
    admin_url: String,
    server: Server,
}

/// A throwaway database on PostgreSQL (what most fixtures use).
pub type PgDatabase = ThrowawayDb;

impl ThrowawayDb {
    /// Creates one on the shared PostgreSQL; `None` (after printing why) when the server
    /// cannot be reached — unless `QUERYCACHE_REQUIRE_SERVICES=1`, then it panics with the
    /// reason.
    ///
    /// # Panics
    ///
    /// When the server answers but `CREATE DATABASE` fails.
    pub async fn create() -> Option<ThrowawayDb> {
        Self::on(Server::Postgres).await
    }

    /// [`create`](Self::create) on the shared MariaDB (or MySQL) server.
    pub async fn mysql() -> Option<ThrowawayDb> {
        Self::on(Server::MySql).await
    }

    /// [`create`](Self::create) on the shared `server` (its URL from the environment, or
    /// the default).
    pub async fn on(server: Server) -> Option<ThrowawayDb> {
        let (var, default) = server.admin_url();
        let admin_url = std::env::var(var).unwrap_or_else(|_| default.to_owned());
        Self::create_in(server, admin_url).await
    }

    /// [`create`](Self::create) on the PostgreSQL server of the maintenance database
    /// `admin_url` (a private server of `pg_server`, for instance).
    pub async fn create_at(admin_url: String) -> Option<ThrowawayDb> {
        Self::create_in(Server::Postgres, admin_url).await
    }

    /// [`create`](Self::create) on the MariaDB server of the maintenance URL `admin_url`
    /// (a private server of `mariadb_server`, for instance).
    pub async fn mysql_at(admin_url: String) -> Option<ThrowawayDb> {
        Self::create_in(Server::MySql, admin_url).await
    }

    async fn create_in(server: Server, admin_url: String) -> Option<ThrowawayDb> {
        let shared = admin_url.contains(server.shared());
        let known = lock(&UNREACHABLE)[server as usize].clone();
        if shared && let Some(reason) = known {
            return unavailable(reason);
        }
        let admin = match connect(&admin_url).await {
            Ok(admin) => admin,
            Err(err) => {
                let (var, _) = server.admin_url();
                let reason = format!(
                    "{} at {} cannot be reached ({err}); set {var} to use another server",
                    server.name(),
                    redact(&admin_url)
                );
                if shared {
                    lock(&UNREACHABLE)[server as usize] = Some(reason.clone());
                }
                return unavailable(reason);
            }
        };
        let name = format!("{NAME_PREFIX}{:016x}", rand::random::<u64>());
        let created = admin.execute_unprepared(&server.create_sql(&name)).await;
        let _ = admin.close().await;
        if let Err(err) = created {
            panic!(
                "{} at {} answers but cannot create {name}: {err}",
                server.name(),
                redact(&admin_url)
            );
        }
        let url = with_database(&admin_url, &name);
        Some(ThrowawayDb {
            name,
            url,
            admin_url,
            server,
        })
    }

    /// The URL of this database (the maintenance URL with its database name replaced).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The kind of server it is on.
    pub fn server(&self) -> Server {
        self.server
    }

    /// Its name, `qc_test_<16 hex digits>`.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ThrowawayDb {
    fn drop(&mut self) {
        let (admin_url, name, server) = (self.admin_url.clone(), self.name.clone(), self.server);
        let dropper = std::thread::Builder::new()
            .name(format!("drop {name}"))
            .spawn(move || -> Result<(), String> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|err| format!("no runtime: {err}"))?;
                runtime.block_on(async {
                    match tokio::time::timeout(
                        DROP_TIMEOUT,
                        drop_database(server, &admin_url, &name),
                    )
                    .await
                    {
                        Ok(result) => result.map_err(|err| err.to_string()),
                        Err(_) => Err(format!("no answer within {DROP_TIMEOUT:?}")),
                    }
                })
            });
        let outcome = match dropper {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|_| Err("the dropping thread panicked".to_owned())),
            Err(err) => Err(format!("cannot spawn a thread: {err}")),
        };
        if let Err(reason) = outcome {
            eprintln!(
                "warning: test database {} was not dropped: {reason}",
                self.name
            );
        }
    }
}

async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(1)
        .min_connections(0)
        .connect_timeout(CONNECT_TIMEOUT)
        .acquire_timeout(CONNECT_TIMEOUT)
        .sqlx_logging(false);
    Database::connect(options).await
}

async fn drop_database(server: Server, admin_url: &str, name: &str) -> Result<(), DbErr> {
    let admin = connect(admin_url).await?;
    let dropped = admin
        .execute_unprepared(&server.drop_sql(name))
        .await
        .map(drop);
    let _ = admin.close().await;
    dropped
}

/// `url` with its database (the path) replaced by `name`; the query string is kept.
fn with_database(url: &str, name: &str) -> String {
    let authority_start = url.find("://").map_or(0, |at| at + 3);
    let rest = &url[authority_start..];
    let authority_end = rest
        .find(['/', '?'])
        .map_or(url.len(), |at| authority_start + at);
    let query = url[authority_end..]
        .find('?')
        .map_or("", |at| &url[authority_end + at..]);
    format!("{}/{name}{query}", &url[..authority_end])
}

/// `url` with the password, if any, masked.
fn redact(url: &str) -> String {
    let authority_start = url.find("://").map_or(0, |at| at + 3);
    let rest = &url[authority_start..];
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..authority_start],
            &authority[..colon],
            &url[authority_start + at..]
        ),
        _ => url.to_owned(),
    }
}

#[test]
fn database_urls() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "qc_test_1"),
        "postgres://postgres@127.0.0.1:5432/qc_test_1"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(
        with_database("postgres://h:5432", "x"),
        "postgres://h:5432/x"
    );
    assert_eq!(
        with_database("postgres://h?sslmode=disable", "x"),
        "postgres://h/x?sslmode=disable"
    );
    assert_eq!(
        redact("postgres://u:secret@h:5432/db"),
        "postgres://u:***@h:5432/db"
    );
    assert_eq!(
        redact("postgres://postgres@127.0.0.1:5432/postgres"),
        "postgres://postgres@127.0.0.1:5432/postgres"
    );
}

/// The harness itself, on both servers.
#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the shared server behind `admin_url` lists a database called `name`.
    async fn exists(server: Server, admin_url: &str, name: &str) -> bool {
        let admin = connect(admin_url).await.expect("the maintenance database");
        let sql = match server {
            Server::Postgres => format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
            Server::MySql => {
                format!("SELECT 1 FROM information_schema.schemata WHERE schema_name = '{name}'")
            }
        };
        let found = admin
            .query_one_raw(sea_orm::Statement::from_string(
                admin.get_database_backend(),
                sql,
            ))
            .await
            .expect("the catalog answers");
        let _ = admin.close().await;
        found.is_some()
    }

    #[tokio::test]
    async fn databases_are_created_empty_and_dropped_on_both_servers() {
        for server in [Server::Postgres, Server::MySql] {
            let Some(db) = ThrowawayDb::on(server).await else {
                continue;
            };
            let (name, admin_url) = (db.name().to_owned(), db.admin_url.clone());
            assert!(name.starts_with(NAME_PREFIX), "{name}");
            assert!(exists(server, &admin_url, &name).await, "{name} created");
            let own = connect(db.url()).await.expect("its own database");
            own.execute_unprepared("CREATE TABLE t (id INTEGER PRIMARY KEY)")
                .await
                .expect("a table in it");
            let _ = own.close().await;
            drop(db);
            assert!(!exists(server, &admin_url, &name).await, "{name} dropped");
        }
    }
}
