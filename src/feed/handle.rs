//! A running feed: its handle (which stops it) and what it reports.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::FeedMode;

/// What a feed is doing.
///
/// ```
/// use querycache::feed::FeedState;
/// assert_ne!(FeedState::Following, FeedState::Standby);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FeedState {
    /// Connecting, or reconnecting after an error (see [`FeedStatus::last_error`]).
    Connecting,
    /// Following the database: every commit is applied as it arrives.
    Following,
    /// Another instance holds the consumer lease and follows the database for every
    /// instance sharing the store; this one takes over if that one goes away.
    Standby,
    /// Stopped through its handle.
    Stopped,
}

/// A feed's report ([`ChangeFeedHandle::status`]).
///
/// ```no_run
/// # async fn f(feed: querycache::feed::ChangeFeedHandle) {
/// let status = feed.status();
/// if status.gaps > 0 {
///     println!("the feed invalidated everything {} times: {:?}", status.gaps, status.last_error);
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct FeedStatus {
    /// The feed's mode.
    pub mode: FeedMode,
    /// What it is doing.
    pub state: FeedState,
    /// Transactions (or notifications, or `data_version` changes) applied.
    pub applied: u64,
    /// Times continuity could not be proven and every model tag was invalidated.
    pub gaps: u64,
    /// When the last change was applied (unix milliseconds; 0: none yet).
    pub last_applied_ms: u64,
    /// The database position applied last (logical mode: the commit's end LSN).
    pub position: u64,
    /// The last error the feed met, if it has not been following since.
    pub last_error: Option<String>,
}

/// The counters a feed's task updates and its handle reads.
#[derive(Debug)]
pub(crate) struct Reporter {
    mode: FeedMode,
    state: Mutex<(FeedState, Option<String>)>,
    applied: AtomicU64,
    gaps: AtomicU64,
    last_applied_ms: AtomicU64,
    position: AtomicU64,
}

pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg_attr(
    not(any(feature = "feed-postgres", feature = "feed-sqlite")),
    allow(dead_code)
)]
impl Reporter {
    pub(crate) fn new(mode: FeedMode) -> Arc<Self> {
        Arc::new(Reporter {
            mode,
            state: Mutex::new((FeedState::Connecting, None)),
            applied: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            last_applied_ms: AtomicU64::new(0),
            position: AtomicU64::new(0),
        })
    }

    pub(crate) fn state(&self, state: FeedState) {
        let mut s = self.state.lock();
        s.0 = state;
        if state == FeedState::Following {
            s.1 = None;
        }
    }

    pub(crate) fn error(&self, error: impl std::fmt::Display) {
        let mut s = self.state.lock();
        s.0 = FeedState::Connecting;
        s.1 = Some(error.to_string());
    }

    pub(crate) fn applied(&self, position: u64) {
        self.applied.fetch_add(1, Ordering::Relaxed);
        self.last_applied_ms.store(unix_ms(), Ordering::Relaxed);
        self.position.fetch_max(position, Ordering::Relaxed);
    }

    pub(crate) fn gap(&self) {
        self.gaps.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn status(&self) -> FeedStatus {
        let (state, last_error) = self.state.lock().clone();
        FeedStatus {
            mode: self.mode,
            state,
            applied: self.applied.load(Ordering::Relaxed),
            gaps: self.gaps.load(Ordering::Relaxed),
            last_applied_ms: self.last_applied_ms.load(Ordering::Relaxed),
            position: self.position.load(Ordering::Relaxed),
            last_error,
        }
    }
}

/// A running change feed. Dropping it stops the feed (an application keeps it for as long
/// as it serves); [`stop`](Self::stop) stops it and waits until it has.
#[must_use = "the feed stops when its handle is dropped"]
#[derive(Debug)]
pub struct ChangeFeedHandle {
    pub(crate) reporter: Arc<Reporter>,
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) task: Option<JoinHandle<()>>,
}

impl ChangeFeedHandle {
    /// What the feed is doing and has done.
    ///
    /// ```no_run
    /// # async fn f(cache: querycache::Cache) -> Result<(), querycache::Error> {
    /// let feed = querycache::feed::ChangeFeed::logical("postgres://db/app").start(&cache).await?;
    /// let status = feed.status();
    /// println!("{:?}: {} transactions, {} gaps", status.state, status.applied, status.gaps);
    /// # Ok(()) }
    /// ```
    pub fn status(&self) -> FeedStatus {
        self.reporter.status()
    }

    /// Stops the feed and waits for its task to end (its replication connection closed,
    /// its lease given back).
    ///
    /// ```no_run
    /// # async fn f(cache: querycache::Cache) -> Result<(), querycache::Error> {
    /// let feed = querycache::feed::ChangeFeed::logical("postgres://db/app").start(&cache).await?;
    /// feed.stop().await;
    /// # Ok(()) }
    /// ```
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.reporter.state(FeedState::Stopped);
    }
}

impl Drop for ChangeFeedHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
