//! Connecting to the database named by `DATABASE_URL`, and migrating it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection};

use super::{AppError, schema};

/// Connects (SQLite: creating the file and its directory; WAL and a busy timeout so that
/// concurrent requests wait for each other's writes instead of failing), migrates, and
/// counts every statement in `queries`. Returns the connection and a printable label.
pub async fn connect(
    url: &str,
    queries: Arc<AtomicU64>,
) -> Result<(DatabaseConnection, String), AppError> {
    let label = redact(url);
    let is_sqlite = url.starts_with("sqlite:");
    if is_sqlite {
        create_data_dir(url)?;
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10));
    if is_sqlite {
        options.max_connections(8).map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    } else {
        options.max_connections(16);
    }
    let database_error = |source| AppError::Database {
        url: label.clone(),
        source,
    };
    let mut db = Database::connect(options).await.map_err(database_error)?;
    schema::migrate(&db).await.map_err(database_error)?;
    db.set_metric_callback(move |_| {
        queries.fetch_add(1, Ordering::Relaxed);
    });
    Ok((db, label))
}

/// The directory of a `sqlite://path/file.db` URL, created if missing.
fn create_data_dir(url: &str) -> Result<(), AppError> {
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|source| AppError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

/// The URL with any password replaced by `***`.
fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((credentials, host)) = rest.rsplit_once('@')
        && let Some((user, _password)) = credentials.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_owned()
}
