//! Waiting until a decoded transaction is visible to other sessions, before its tags are
//! bumped.
//!
//! PostgreSQL hands a commit to logical decoding once its WAL record is flushed, which is
//! *before* the committing backend leaves the process array, when new snapshots start to
//! see it. In that window a reader still gets the old rows; if the feed bumped the tags
//! then, the reader would store those old rows under the new versions, and they would be
//! served until the next write (a stale set: DESIGN.md's invariant 2). So the feed waits
//! until a fresh snapshot sees the transaction, then bumps.
//!
//! One query answers for a transaction (`txid_visible_in_snapshot` on a fresh snapshot)
//! and also gives that snapshot's `xmin`: every transaction older than it is finished, so
//! replaying a backlog costs one query for all of it.

use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The transaction `$1` (a 32-bit xid, widened with the snapshot's epoch) is visible in a
/// fresh snapshot; and that snapshot's `xmin` (64-bit).
const VISIBLE: &str = "
WITH s AS (SELECT txid_current_snapshot() AS s),
     x AS (SELECT s,
                  ((txid_snapshot_xmax(s) >> 32)
                   - CASE WHEN $1 > (txid_snapshot_xmax(s) & 4294967295) THEN 1 ELSE 0 END)
                  * 4294967296 + $1 AS xid
           FROM s)
SELECT txid_visible_in_snapshot(xid, s), txid_snapshot_xmin(s) FROM x";

/// How long a transaction decoded as committed may take to become visible before the
/// session is given up (and the transaction replayed by the next one).
const DEADLINE: Duration = Duration::from_secs(10);

/// A connection of its own, and the horizon below which every transaction is finished.
pub(crate) struct Visibility {
    url: String,
    conn: Option<PgConnection>,
    /// The low 32 bits of the last snapshot's `xmin`, once one was taken.
    horizon: Option<u32>,
}

impl Visibility {
    pub(crate) fn new(url: &str) -> Visibility {
        Visibility {
            url: url.to_owned(),
            conn: None,
            horizon: None,
        }
    }

    /// The probe connection, connected again if the last query lost it.
    async fn conn(&mut self) -> Result<&mut PgConnection, String> {
        match &mut self.conn {
            Some(conn) => Ok(conn),
            slot => {
                let conn = PgConnection::connect(&self.url)
                    .await
                    .map_err(|e| format!("cannot connect to check visibility: {e}"))?;
                Ok(slot.insert(conn))
            }
        }
    }

    /// Returns once transaction `xid` is visible to new snapshots.
    pub(crate) async fn wait(&mut self, xid: u32) -> Result<(), String> {
        if self.horizon.is_some_and(|horizon| older(xid, horizon)) {
            return Ok(());
        }
        let started = Instant::now();
        loop {
            let conn = self.conn().await?;
            let answer: Result<(bool, i64), sqlx::Error> = sqlx::query_as(VISIBLE)
                .bind(i64::from(xid))
                .fetch_one(&mut *conn)
                .await;
            let (visible, xmin) = match answer {
                Ok(answer) => answer,
                Err(e) => {
                    self.conn = None;
                    return Err(format!("cannot check visibility of transaction {xid}: {e}"));
                }
            };
            // The low 32 bits, as xids compare (wrapping).
            self.horizon = Some(xmin as u32);
            if visible {
                return Ok(());
            }
            if started.elapsed() > DEADLINE {
                return Err(format!(
                    "transaction {xid} was decoded as committed but is not visible after {DEADLINE:?}"
                ));
            }
            tokio::task::yield_now().await;
        }
    }
}

/// Committed transactions that new snapshots do not see yet: in the current snapshot's
/// in-progress list, but committed in the commit log.
const IN_THE_WINDOW: &str = "
SELECT count(*) FROM txid_snapshot_xip(txid_current_snapshot()) AS x
WHERE txid_status(x) = 'committed'";

impl Visibility {
    /// Returns once no committed transaction is invisible to new snapshots: after a gap,
    /// the feed bumps everything only then, so that no transaction committed before the
    /// stream's start (which the stream will not bring) is read as not yet there after the
    /// bump.
    pub(crate) async fn settle(&mut self) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let conn = self.conn().await?;
            let waiting: i64 = match sqlx::query_scalar(IN_THE_WINDOW)
                .fetch_one(&mut *conn)
                .await
            {
                Ok(waiting) => waiting,
                Err(e) => {
                    self.conn = None;
                    return Err(format!("cannot check visibility: {e}"));
                }
            };
            if waiting == 0 {
                return Ok(());
            }
            if started.elapsed() > DEADLINE {
                return Err(format!(
                    "{waiting} committed transactions still invisible after {DEADLINE:?}"
                ));
            }
            tokio::task::yield_now().await;
        }
    }
}

/// Whether xid `a` is older than `b`, as PostgreSQL compares 32-bit xids (modulo 2^32).
fn older(a: u32, b: u32) -> bool {
    let d = b.wrapping_sub(a);
    d != 0 && d < 1 << 31
}

#[cfg(test)]
mod tests {
    use super::older;

    #[test]
    fn xids_compare_modulo_2_32() {
        assert!(older(5, 6));
        assert!(!older(6, 6));
        assert!(!older(7, 6));
        assert!(older(u32::MAX - 3, 2));
        assert!(!older(2, u32::MAX - 3));
    }
}
