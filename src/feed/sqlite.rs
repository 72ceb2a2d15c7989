//! The SQLite feed: `PRAGMA data_version` on a connection of its own, read every
//! [`interval`](crate::feed::ChangeFeed::interval). SQLite changes the value a connection
//! reads whenever *another* connection (another process, or this application's own pool)
//! commits to the file, so a change means "someone wrote": every model tag of that database
//! is bumped. Cheap (one pragma per interval), coarse (any write invalidates everything),
//! safe (nothing is missed).
//!
//! The value only compares within one connection. The probe keeps a temporary table on its
//! connection as a marker: if it is gone, the connection was replaced (reconnected after an
//! error) and changes in between cannot be told, which is a gap.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tokio::sync::watch;

use crate::cache::databases::{Fingerprint, Namespace};
use crate::feed::handle::Reporter;
use crate::feed::{ChangeFeed, ChangeFeedHandle, FeedMode, FeedState};
use crate::{Cache, Error, Tag};

/// Creates the marker (see the module docs).
const CREATE_MARKER: &str = "CREATE TEMP TABLE IF NOT EXISTS querycache_feed_probe (x)";
/// Whether the marker is there: 1 on the connection that created it.
const FIND_MARKER: &str =
    "SELECT count(*) FROM temp.sqlite_master WHERE name = 'querycache_feed_probe'";

/// Starts the `data_version` feed of `feed` on `cache`: opens the probe connection first
/// (an error says why it cannot), then polls in a task of its own.
pub(crate) async fn start(feed: ChangeFeed, cache: &Cache) -> Result<ChangeFeedHandle, Error> {
    let fail = |reason: String| Error::ChangeFeed {
        mode: FeedMode::DataVersion.to_string(),
        database: feed.url.clone(),
        reason,
    };
    let options = SqliteConnectOptions::from_str(&feed.url)
        .map_err(|e| Error::config(crate::feed::config::URL_VAR, &feed.url, e.to_string()))?
        .create_if_missing(false)
        .disable_statement_logging();
    let mut probe = Probe::open(&options)
        .await
        .map_err(|e| fail(format!("cannot open the database file: {e}")))?;
    let file: String = sqlx::query_scalar(
        "SELECT COALESCE(file, '') FROM pragma_database_list WHERE name = 'main'",
    )
    .fetch_one(&mut probe.conn)
    .await
    .map_err(|e| fail(e.to_string()))?;
    if file.is_empty() {
        return Err(fail(
            "an in-memory database has no other writers to follow: give a file".into(),
        ));
    }
    let namespace = cache
        .database_namespace(Fingerprint::Known(format!("Sqlite|{file}")))
        .await;
    let reporter = Reporter::new(FeedMode::DataVersion);
    cache.register_feed(&reporter);
    let (stop, stopped) = watch::channel(false);
    let poller = Poller {
        cache: cache.clone(),
        reporter: reporter.clone(),
        options,
        namespace,
        every: feed.interval,
    };
    reporter.state(FeedState::Following);
    let task = tokio::spawn(poller.run(probe, stopped));
    Ok(ChangeFeedHandle {
        reporter,
        stop,
        task: Some(task),
    })
}

/// The probe connection and the last value it read.
struct Probe {
    conn: SqliteConnection,
    version: i64,
}

impl Probe {
    async fn open(options: &SqliteConnectOptions) -> Result<Probe, sqlx::Error> {
        let mut conn = options.connect().await?;
        sqlx::query(CREATE_MARKER).execute(&mut conn).await?;
        let version = sqlx::query_scalar("PRAGMA data_version")
            .fetch_one(&mut conn)
            .await?;
        Ok(Probe { conn, version })
    }

    /// Whether anyone committed since the last read; an error when the connection is not
    /// the one that read last (its marker is gone) or cannot answer.
    async fn changed(&mut self) -> Result<bool, String> {
        let marked: i64 = sqlx::query_scalar(FIND_MARKER)
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| e.to_string())?;
        if marked != 1 {
            return Err("the probe connection was replaced".into());
        }
        let version: i64 = sqlx::query_scalar("PRAGMA data_version")
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| e.to_string())?;
        let changed = version != self.version;
        self.version = version;
        Ok(changed)
    }
}

struct Poller {
    cache: Cache,
    reporter: Arc<Reporter>,
    options: SqliteConnectOptions,
    namespace: Option<Namespace>,
    every: Duration,
}

impl Poller {
    async fn run(self, probe: Probe, mut stop: watch::Receiver<bool>) {
        let mut probe = Some(probe);
        let mut ticks = tokio::time::interval(self.every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = ticks.tick() => {}
            }
            let (changed, gap) = match probe.as_mut() {
                Some(p) => match p.changed().await {
                    Ok(changed) => (changed, None),
                    Err(e) => {
                        probe = None;
                        (false, Some(e))
                    }
                },
                None => match Probe::open(&self.options).await {
                    Ok(p) => {
                        probe = Some(p);
                        (false, Some("the probe connection was reopened".to_owned()))
                    }
                    Err(e) => {
                        self.reporter
                            .error(format!("cannot reopen the probe connection: {e}"));
                        continue;
                    }
                },
            };
            if !changed && gap.is_none() {
                continue;
            }
            match self
                .cache
                .invalidate_feed_in(self.namespace.as_ref(), vec![Tag::all_models()])
                .await
            {
                Ok(_) => {
                    if let Some(reason) = gap {
                        self.reporter.gap();
                        tracing::warn!(%reason, "change feed: continuity not proven; every model tag invalidated");
                    } else {
                        tracing::debug!(
                            "change feed: the SQLite file changed; every model tag invalidated"
                        );
                        self.reporter.applied(0);
                    }
                    self.reporter.state(FeedState::Following);
                }
                Err(e) => {
                    // Not applied: look again next time, as a gap.
                    self.reporter.error(format!("cannot invalidate: {e}"));
                    probe = None;
                }
            }
        }
        self.reporter.state(FeedState::Stopped);
    }
}
