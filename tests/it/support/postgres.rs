//! Throwaway PostgreSQL databases: one per [`PgDatabase`], created on the shared server and
//! dropped when the fixture is dropped — also when the test panics.
//!
//! The harness connects to the maintenance database `postgres://postgres@127.0.0.1:5432/postgres`
//! (or the URL in `QUERYCACHE_TEST_PG_URL`) only to run `CREATE DATABASE qc_test_<random hex>`
//! and, on Drop, `DROP DATABASE ... WITH (FORCE)` (which also ends connections the test's pool
//! still holds). Tests talk to their own database through [`PgDatabase::url`]; nothing else on
//! the shared server is touched.
//!
//! Skipping follows the Redis harness: when the server cannot be reached, [`PgDatabase::create`]
//! says why on stderr and returns `None` (the test returns early), unless
//! `QUERYCACHE_REQUIRE_SERVICES=1`, where it panics with the reason. A server that answers but
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

/// The environment variable naming the maintenance database to connect to.
pub const PG_URL_VAR: &str = "QUERYCACHE_TEST_PG_URL";
/// The maintenance database used when [`PG_URL_VAR`] is not set.
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// How long connecting to the server may take before it counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long dropping a database may take (it waits for the server to end its sessions).
const DROP_TIMEOUT: Duration = Duration::from_secs(30);
/// Prefix of every database this harness creates.
pub const NAME_PREFIX: &str = "qc_test_";

/// Why the server could not be reached, once it could not: the tests after the first one
/// skip at once instead of each waiting for the connect timeout.
static UNREACHABLE: Mutex<Option<String>> = Mutex::new(None);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A freshly created, empty PostgreSQL database, dropped on Drop.
pub struct PgDatabase {
    name: String,
    url: String,
    admin_url: String,
}

impl PgDatabase {
    /// Creates one; `None` (after printing why) when the server cannot be reached — unless
    /// `QUERYCACHE_REQUIRE_SERVICES=1`, then it panics with the reason.
    ///
    /// # Panics
    ///
    /// When the server answers but `CREATE DATABASE` fails.
    pub async fn create() -> Option<PgDatabase> {
        let admin_url = std::env::var(PG_URL_VAR).unwrap_or_else(|_| DEFAULT_URL.to_owned());
        Self::create_at(admin_url).await
    }

    /// [`create`](Self::create) on the server of the maintenance database `admin_url` (a
    /// private server of `pg_server`, for instance).
    pub async fn create_at(admin_url: String) -> Option<PgDatabase> {
        if admin_url.contains(":5432/")
            && let Some(reason) = lock(&UNREACHABLE).clone()
        {
            return unavailable(reason);
        }
        let admin = match connect(&admin_url).await {
            Ok(admin) => admin,
            Err(err) => {
                let reason = format!(
                    "PostgreSQL at {} cannot be reached ({err}); set {PG_URL_VAR} to use another server",
                    redact(&admin_url)
                );
                if admin_url.contains(":5432/") {
                    *lock(&UNREACHABLE) = Some(reason.clone());
                }
                return unavailable(reason);
            }
        };
        let name = format!("{NAME_PREFIX}{:016x}", rand::random::<u64>());
        let created = admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await;
        let _ = admin.close().await;
        if let Err(err) = created {
            panic!(
                "PostgreSQL at {} answers but cannot create {name}: {err}",
                redact(&admin_url)
            );
        }
        let url = with_database(&admin_url, &name);
        Some(PgDatabase {
            name,
            url,
            admin_url,
        })
    }

    /// The URL of this database (the maintenance URL with its database name replaced).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its name, `qc_test_<16 hex digits>`.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropper = std::thread::Builder::new()
            .name(format!("drop {name}"))
            .spawn(move || -> Result<(), String> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|err| format!("no runtime: {err}"))?;
                runtime.block_on(async {
                    match tokio::time::timeout(DROP_TIMEOUT, drop_database(&admin_url, &name)).await
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

async fn drop_database(admin_url: &str, name: &str) -> Result<(), DbErr> {
    let admin = connect(admin_url).await?;
    let dropped = admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
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
