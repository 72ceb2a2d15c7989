//! Waiting until transactions read from the binlog are visible to other sessions, before
//! their tags are bumped.
//!
//! A server with a binary log commits in two phases: the transaction is written to the
//! binlog (and can be sent to replicas, this feed among them), *then* committed in the
//! storage engine, where new reads start to see it. In that window a reader still gets the
//! old rows; if the feed bumped the tags then, the reader would store those old rows under
//! the new versions, and they would be served until the next write (a stale set:
//! DESIGN.md's invariant 2).
//!
//! The storage engines commit in binlog order (MariaDB's `commit_ordered`, MySQL's
//! `binlog_order_commits = ON`, which the feed checks). So the feed commits a write of its
//! own, the *fence* (one row of the table [`FENCE_TABLE`](super::FENCE_TABLE), in the
//! followed database): it is written to the binlog after every transaction the feed has
//! received, and when its `COMMIT` returns, every one of them is committed in the engine too.
//! One fence covers every transaction received before it began, so a backlog costs one.
//! The fence's own transactions come back through the binlog; the feed skips them.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};

/// How long the fence's statement may take before the session is given up (and its
/// transactions replayed by the next one).
const DEADLINE: Duration = Duration::from_secs(10);

/// "Table doesn't exist".
const ER_NO_SUCH_TABLE: u16 = 1146;

/// A connection of its own for the fence.
pub(crate) struct Fence {
    opts: Opts,
    table: String,
    conn: Option<Conn>,
}

impl Fence {
    pub(crate) fn new(opts: Opts) -> Fence {
        Fence {
            opts,
            table: format!("`{}`", super::FENCE_TABLE),
            conn: None,
        }
    }

    /// The SQL that creates the fence table where it does not exist.
    pub(crate) fn create_sql(&self) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {} (id INT NOT NULL PRIMARY KEY, n BIGINT NOT NULL) \
             ENGINE = InnoDB COMMENT = 'querycache binlog feed: the visibility fence'",
            self.table
        )
    }

    async fn conn(&mut self) -> Result<&mut Conn, String> {
        match &mut self.conn {
            Some(conn) => Ok(conn),
            slot => {
                let conn = Conn::new(self.opts.clone())
                    .await
                    .map_err(|e| format!("cannot connect for the visibility fence: {e}"))?;
                Ok(slot.insert(conn))
            }
        }
    }

    /// Commits one fence write: once it returns, every transaction the binlog held when it
    /// began is visible to new reads.
    pub(crate) async fn pass(&mut self) -> Result<(), String> {
        let sql = format!(
            "INSERT INTO {} (id, n) VALUES (1, 1) ON DUPLICATE KEY UPDATE n = n + 1",
            self.table
        );
        let create = self.create_sql();
        let conn = self.conn().await?;
        let mut result = tokio::time::timeout(DEADLINE, conn.query_drop(sql.as_str())).await;
        if let Ok(Err(mysql_async::Error::Server(e))) = &result
            && e.code == ER_NO_SUCH_TABLE
        {
            // Dropped since the feed started: made again.
            result = tokio::time::timeout(DEADLINE, async {
                conn.query_drop(create.as_str()).await?;
                conn.query_drop(sql.as_str()).await
            })
            .await;
        }
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.conn = None;
                Err(format!("the visibility fence failed ({sql}): {e}"))
            }
            Err(_) => {
                self.conn = None;
                Err(format!("the visibility fence took more than {DEADLINE:?}"))
            }
        }
    }
}
