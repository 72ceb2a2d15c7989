//! Installing and removing the trigger feed's function and triggers (see
//! [`triggers`](super::triggers) for the SQL): documented, idempotent calls an application
//! (or its migration step) makes once, with a role allowed to create triggers on its tables.

use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection, Row};

use super::triggers::{TriggerTable, install_sql, tables_sql, uninstall_all_sql};
use crate::Error;
use crate::feed::{ChangeFeed, FeedMode};

/// The schema the notify function lives in.
pub(crate) const FUNCTION_SCHEMA: &str = "public";

pub(crate) fn feed_error(feed: &ChangeFeed, reason: impl Into<String>) -> Error {
    Error::ChangeFeed {
        mode: FeedMode::Triggers.to_string(),
        database: crate::feed::config::redact(&feed.url),
        reason: reason.into(),
    }
}

pub(crate) async fn connect(feed: &ChangeFeed) -> Result<PgConnection, Error> {
    PgConnection::connect(&feed.url)
        .await
        .map_err(|e| feed_error(feed, format!("cannot connect: {e}")))
}

/// The tables the triggers go on: every user table with its primary key (see
/// `triggers::tables_sql`).
pub(crate) async fn tables(
    feed: &ChangeFeed,
    conn: &mut PgConnection,
) -> Result<Vec<TriggerTable>, Error> {
    let rows = sqlx::query(AssertSqlSafe(tables_sql(None)))
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| feed_error(feed, format!("cannot list the tables: {e}")))?;
    rows.iter()
        .map(|row| {
            Ok(TriggerTable {
                schema: row.try_get(0)?,
                name: row.try_get(1)?,
                key: row.try_get(2)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(|e| feed_error(feed, format!("cannot read the tables: {e}")))
}

/// Installs the trigger feed on every table of the database `feed` follows: the notify
/// function, and on each table four statement-level triggers (`INSERT`, `UPDATE`,
/// `DELETE`, `TRUNCATE`) that `NOTIFY` [`ChangeFeed::channel`] with the primary keys a
/// statement changed. Idempotent: run it again after migrations that add tables or change
/// primary keys. Returns how many tables are followed. Runs in one transaction, with a
/// 5-second `lock_timeout` (a trigger is created under an exclusive lock on its table).
///
/// Writes to a partition *addressed directly* fire the partition's triggers, not its
/// parent's; partitions get none, so write through the partitioned table.
///
/// ```no_run
/// # async fn f() -> Result<(), querycache::Error> {
/// use querycache::feed::{ChangeFeed, postgres};
///
/// let feed = ChangeFeed::triggers("postgres://owner@db/app");
/// let tables = postgres::install_triggers(&feed).await?;
/// println!("{tables} tables followed");
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::ChangeFeed`] saying what failed (a missing privilege names the statement).
pub async fn install_triggers(feed: &ChangeFeed) -> Result<usize, Error> {
    let mut conn = connect(feed).await?;
    let tables = tables(feed, &mut conn).await?;
    let mut tx = conn
        .begin()
        .await
        .map_err(|e| feed_error(feed, e.to_string()))?;
    // `DROP TRIGGER IF EXISTS` of a trigger not there yet is a NOTICE: not worth a log line.
    sqlx::query("SET LOCAL client_min_messages = warning")
        .execute(&mut *tx)
        .await
        .map_err(|e| feed_error(feed, e.to_string()))?;
    sqlx::query("SET LOCAL lock_timeout = '5s'")
        .execute(&mut *tx)
        .await
        .map_err(|e| feed_error(feed, e.to_string()))?;
    for sql in install_sql(FUNCTION_SCHEMA, &feed.channel, &tables) {
        sqlx::query(AssertSqlSafe(sql.clone()))
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                let head: String = sql.chars().take(160).collect();
                feed_error(
                    feed,
                    format!("installing the triggers failed at `{head}`: {e}"),
                )
            })?;
    }
    tx.commit()
        .await
        .map_err(|e| feed_error(feed, e.to_string()))?;
    tracing::info!(tables = tables.len(), channel = %feed.channel, "change feed: triggers installed");
    Ok(tables.len())
}

/// Removes what [`install_triggers`] installed: every trigger it named on any table, then
/// the notify function. Idempotent.
///
/// ```no_run
/// # async fn f() -> Result<(), querycache::Error> {
/// use querycache::feed::{ChangeFeed, postgres};
///
/// postgres::remove_triggers(&ChangeFeed::triggers("postgres://owner@db/app")).await?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::ChangeFeed`] saying what failed.
pub async fn remove_triggers(feed: &ChangeFeed) -> Result<(), Error> {
    let mut conn = connect(feed).await?;
    let mut tx = conn
        .begin()
        .await
        .map_err(|e| feed_error(feed, e.to_string()))?;
    for sql in uninstall_all_sql(FUNCTION_SCHEMA) {
        sqlx::query(AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .map_err(|e| feed_error(feed, format!("removing the triggers failed: {e}")))?;
    }
    tx.commit()
        .await
        .map_err(|e| feed_error(feed, e.to_string()))?;
    Ok(())
}
