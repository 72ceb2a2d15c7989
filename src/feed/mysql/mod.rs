//! The MySQL and MariaDB change feed ([`FeedMode::Binlog`](super::FeedMode::Binlog)): the
//! server's binary log in row format, read as a replica reads it, each committed
//! transaction's rows turned into the tags an ORM write of those rows bumps.
//!
//! # What the server needs
//!
//! | need | why | how |
//! | --- | --- | --- |
//! | `log_bin` on, `binlog_format = ROW` | the rows each transaction changed | server options (`log_bin`, `binlog_format=ROW`) |
//! | `REPLICATION SLAVE` | the binlog stream | `GRANT REPLICATION SLAVE ON *.* TO app` |
//! | `BINLOG MONITOR` (MariaDB) or `REPLICATION CLIENT` (MySQL) | where the binlog is now (`SHOW MASTER STATUS`) | `GRANT BINLOG MONITOR ON *.* TO app` |
//! | the fence table | visibility (below) | created by the feed at start (`CREATE`), or by you: `INSERT` and `UPDATE` on it |
//! | `binlog_order_commits = ON` (MySQL; MariaDB always) | visibility (below) | the default |
//!
//! [`ChangeFeed::start`](super::ChangeFeed::start) checks each and says what is missing.
//!
//! # Which rows
//!
//! Row events name the table and carry the rows' images; the primary key comes from
//! `information_schema` (read once per table, again after DDL). A change to a row whose
//! key is integers bumps that row's tag; any other key (strings compare under collations,
//! so their bytes need not be the text a read was keyed by), a table without a key, more
//! than 1024 rows of a table in one transaction, and statements logged as text (DDL, or a
//! session that set `binlog_format = STATEMENT`) bump the whole table; DDL and what cannot
//! be read at all bump every model tag. Tables of the followed database are named as the
//! ORM names them (`model:songs`); tables of other databases with their database
//! (`model:billing.invoices`), as a query that names them does.
//!
//! # Visible before bumped
//!
//! The server sends a transaction to replicas before its storage engine has made it
//! visible. The feed bumps a transaction's tags only once it is visible: it commits a write
//! of its own to the fence table ([`FENCE_TABLE`], one row) after the transactions it
//! received, and storage engines commit in binlog order, so when that write returns they
//! are visible. One fence serves every transaction at hand (a backlog costs one).
//!
//! # Nothing missed
//!
//! The feed applies a transaction's invalidations before it records the transaction's end
//! as its position; a session that breaks asks the server for the binlog again from there.
//! When it cannot (no position recorded, another database's, older than
//! [`max_gap`](super::ChangeFeed::max_gap), or purged from the server), it starts where the
//! binlog is now and invalidates every model tag first: a gap, counted in
//! [`FeedStatus::gaps`](super::FeedStatus::gaps). With the memory store the position lives in
//! the process (a new process starts with a gap: its cache is new too); with the tiered
//! store one instance follows (a lease in Redis named by
//! [`slot`](super::ChangeFeed::slot)) and records the position beside the entries.
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> Result<(), querycache::Error> {
//! use querycache::Cache;
//! use querycache::feed::ChangeFeed;
//!
//! let cache = Cache::new();
//! let feed = ChangeFeed::binlog("mysql://app:secret@db:3306/app").start(&cache).await?;
//! // ... serve; every commit from anywhere invalidates what it changed.
//! println!("{:?}", feed.status());
//! # Ok(()) }
//! ```

pub(crate) mod binlog;
mod fence;
pub(crate) mod tables;

/// The table (in the followed database) the feed writes to learn that what it received is
/// visible: `(id INT PRIMARY KEY, n BIGINT)`, one row.
///
/// ```
/// assert_eq!(querycache::feed::mysql::FENCE_TABLE, "querycache_feed_fence");
/// ```
pub const FENCE_TABLE: &str = "querycache_feed_fence";
