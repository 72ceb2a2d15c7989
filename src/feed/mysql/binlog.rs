//! The binlog feed's consumer: a replica's binlog stream (`COM_BINLOG_DUMP`, through
//! `mysql_async`), each committed transaction's row events turned into tag bumps, applied
//! once the transaction is visible (see `fence`), and its position recorded.
//!
//! One session's life:
//!
//! 1. learn the database's identity (the fingerprint the ORM integrations make, so that the
//!    feed bumps the tags of the right database in a cache serving several) and where the
//!    binlog is now;
//! 2. decide where to resume: the position this process applied last, or (shared store)
//!    the one recorded in Redis by the last consumer. Without one, or when it cannot be
//!    trusted (another database's, older than `max_gap`, purged from the server), it is a
//!    gap: the feed starts where the binlog is now and bumps every model tag, once what
//!    came before is visible;
//! 3. stream: `BEGIN`, table maps and row events, `XID` (or `COMMIT`); transactions are
//!    applied in batches (what has arrived when the stream pauses): one fence, one bump,
//!    one recorded position.
//!
//! A session that breaks resumes from the last transaction applied: the server sends it
//! again from there, so a break is never a gap while the server still has that binlog.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};
use mysql_async::binlog::events::{Event, EventData, RowsEventData};
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn, Opts, OptsBuilder, SslOpts};
use tokio::sync::watch;

use super::fence::Fence;
use super::tables::Keys;
use crate::cache::databases::Namespace;
use crate::feed::handle::{Reporter, unix_ms};
use crate::feed::shared::{self, End, Lease, Position, Sessions};
use crate::feed::url::{self, Target};
use crate::feed::{ChangeFeed, ChangeFeedHandle, Changes, FeedMode, FeedState};
use crate::orm::identity::Dialect;
use crate::{Cache, Error, Tag};

/// How long connecting and each check may take before the session counts as failed.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the server sends a heartbeat on an idle stream (`@master_heartbeat_period`).
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long the stream may stay silent (no event, no heartbeat) before it counts as lost.
const SILENCE: Duration = Duration::from_secs(15);
/// The most transactions applied in one batch.
const MAX_BATCH: usize = 512;
/// MySQL's "could not find first log file name in binary log index file" and friends:
/// the position asked for is not in the server's binlog (purged, or never there).
const ER_MASTER_FATAL_ERROR_READING_BINLOG: u16 = 1236;

/// Event types (MariaDB's, above 159) that change nothing a cache holds: annotations,
/// checkpoints, GTID lists, the encryption header.
const HARMLESS_MARIADB_EVENTS: [u8; 4] = [160, 161, 163, 164];
/// MariaDB's GTID event: it opens each event group (a transaction, or one DDL statement),
/// as `BEGIN` does for MySQL.
const MARIADB_GTID_EVENT: u8 = 162;

/// Starts the binlog feed of `feed` on `cache`: checks the server first (what is missing
/// comes back as [`Error::ChangeFeed`]), then follows it in a task of its own.
pub(crate) async fn start(feed: ChangeFeed, cache: &Cache) -> Result<ChangeFeedHandle, Error> {
    let target = url::parse(&feed.url, FeedMode::Binlog, &url::MYSQL)?;
    let mut consumer = Consumer {
        cache: cache.clone(),
        reporter: Reporter::new(FeedMode::Binlog),
        shared: shared::is_shared(cache),
        token: format!("{:032x}", rand::random::<u128>()),
        opts: Opts::from(OptsBuilder::default()),
        target,
        feed,
        applied: None,
        pending_gap: None,
    };
    if consumer.target.database.is_empty() {
        return Err(consumer.error(
            "the URL names no database: the feed follows one database (mysql://host/app), \
             and keeps its visibility fence there",
        ));
    }
    consumer.opts = consumer.opts().map_err(|e| consumer.error(e))?;
    consumer.preflight().await?;
    let reporter = consumer.reporter.clone();
    cache.register_feed(&reporter);
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(shared::follow(consumer, stopped));
    Ok(ChangeFeedHandle {
        reporter,
        stop,
        task: Some(task),
    })
}

/// A place in the binlog: a file and an offset in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BinlogPos {
    pub(crate) file: String,
    pub(crate) pos: u64,
}

impl BinlogPos {
    /// The position as the shared store records it: the file's base name joins the
    /// database's identity, its number and the offset make the `lsn` (`None` for a file
    /// name without a number, which servers do not make).
    pub(crate) fn to_position(&self, identity: &str) -> Option<Position> {
        let (base, digits) = self.file.rsplit_once('.')?;
        let number: u64 = digits.parse().ok()?;
        if number >= 1 << 31 || self.pos >= 1 << 32 {
            return None;
        }
        Some(Position {
            // The number's width too: `binlog.000042` is not `binlog.42`.
            database: format!("{identity}|{base}|{}", digits.len()),
            lsn: (number << 32) | self.pos,
            at_ms: unix_ms(),
        })
    }

    /// The position `p` records for the database `identity`; `None` when it is another
    /// database's.
    pub(crate) fn from_position(p: &Position, identity: &str) -> Option<BinlogPos> {
        let rest = p.database.strip_prefix(identity)?.strip_prefix('|')?;
        let (base, width) = rest.rsplit_once('|')?;
        let width: usize = width.parse().ok()?;
        let number = p.lsn >> 32;
        Some(BinlogPos {
            file: format!("{base}.{number:0width$}"),
            pos: p.lsn & 0xffff_ffff,
        })
    }

    /// One number for [`FeedStatus::position`](crate::feed::FeedStatus::position): the
    /// file's number in the high half, the offset in the low one.
    fn as_u64(&self) -> u64 {
        let number = self
            .file
            .rsplit_once('.')
            .and_then(|(_, n)| n.parse::<u64>().ok())
            .unwrap_or(0);
        (number << 32) | (self.pos & 0xffff_ffff)
    }
}

struct Consumer {
    cache: Cache,
    reporter: Arc<Reporter>,
    target: Target,
    opts: Opts,
    feed: ChangeFeed,
    /// Whether the store is shared (one consumer per deployment, the position in Redis).
    shared: bool,
    /// This instance's token for the consumer lease.
    token: String,
    /// The end of the last transaction this process applied.
    applied: Option<BinlogPos>,
    /// Why the next session must start with a gap.
    pending_gap: Option<String>,
}

/// What a session knows once its stream is open.
struct Opened {
    namespace: Option<Namespace>,
    identity: String,
    stream: BinlogStream,
    /// Where the stream starts.
    from: BinlogPos,
}

/// A transaction read to its end and not applied yet.
struct Committed {
    tags: Vec<Tag>,
    /// Where the next transaction begins.
    end: BinlogPos,
}

impl Consumer {
    fn error(&self, reason: impl Into<String>) -> Error {
        self.feed.error(reason)
    }

    fn opts(&self) -> Result<Opts, String> {
        let t = &self.target;
        let ssl = match t.sslmode.as_str() {
            "disable" | "disabled" | "prefer" | "preferred" | "" => None,
            "require" | "required" => Some(
                SslOpts::default()
                    .with_danger_accept_invalid_certs(true)
                    .with_danger_skip_domain_validation(true),
            ),
            "verify_ca" | "verify-ca" => {
                Some(SslOpts::default().with_danger_skip_domain_validation(true))
            }
            "verify_identity" | "verify-identity" | "verify-full" => Some(SslOpts::default()),
            other => {
                return Err(format!(
                    "ssl-mode {other:?} is not one of disabled, preferred, required, \
                     verify_ca, verify_identity"
                ));
            }
        };
        if ssl.is_some() {
            crate::tls::ensure_crypto_provider()?;
        }
        Ok(OptsBuilder::default()
            .ip_or_hostname(t.host.clone())
            .tcp_port(t.port)
            .user(Some(t.user.clone()))
            .pass((!t.password.is_empty()).then(|| t.password.clone()))
            .db_name(Some(t.database.clone()))
            .ssl_opts(ssl)
            .prefer_socket(false)
            .into())
    }

    /// What an error from the server means for a user.
    fn explain(&self, error: &mysql_async::Error) -> String {
        let text = error.to_string();
        let t = &self.target;
        if text.contains("REPLICATION SLAVE") {
            format!(
                "user {:?} may not read the binlog ({text}): GRANT REPLICATION SLAVE ON *.* TO \
                 the feed's user",
                t.user
            )
        } else if text.contains("BINLOG MONITOR") || text.contains("REPLICATION CLIENT") {
            format!(
                "user {:?} may not ask where the binlog is ({text}): GRANT BINLOG MONITOR \
                 (MariaDB) or REPLICATION CLIENT (MySQL) ON *.* TO the feed's user",
                t.user
            )
        } else {
            format!("{}:{} as {:?}: {text}", t.host, t.port, t.user)
        }
    }

    async fn connect(&self) -> Result<Conn, String> {
        match tokio::time::timeout(STEP_TIMEOUT, Conn::new(self.opts.clone())).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(format!("cannot connect: {}", self.explain(&e))),
            Err(_) => Err(format!(
                "no answer from {}:{} within {STEP_TIMEOUT:?}",
                self.target.host, self.target.port
            )),
        }
    }

    /// Runs `sql` (text protocol) with a bound: its rows, every value as text.
    async fn rows(&self, conn: &mut Conn, sql: &str) -> Result<Vec<Vec<String>>, String> {
        let rows: Vec<mysql_async::Row> = tokio::time::timeout(STEP_TIMEOUT, conn.query(sql))
            .await
            .map_err(|_| format!("no answer within {STEP_TIMEOUT:?} to {sql}"))?
            .map_err(|e| self.explain(&e))?;
        Ok(rows
            .into_iter()
            .map(|row| {
                row.unwrap_raw()
                    .into_iter()
                    .map(|v| match v {
                        Some(mysql_async::Value::Bytes(b)) => {
                            String::from_utf8_lossy(&b).into_owned()
                        }
                        Some(mysql_async::Value::NULL) | None => String::new(),
                        Some(other) => other.as_sql(true).trim_matches('\'').to_owned(),
                    })
                    .collect()
            })
            .collect())
    }

    /// Where the binlog is now (`SHOW MASTER STATUS`, or its MySQL 8.4 name).
    async fn current(&self, conn: &mut Conn) -> Result<BinlogPos, String> {
        let rows = match self.rows(conn, "SHOW MASTER STATUS").await {
            Ok(rows) => rows,
            Err(first) => self
                .rows(conn, "SHOW BINARY LOG STATUS")
                .await
                .map_err(|_| first)?,
        };
        let row = rows.into_iter().next().ok_or_else(|| {
            "the server keeps no binary log (SHOW MASTER STATUS is empty): start it with \
             log_bin and binlog_format = ROW"
                .to_owned()
        })?;
        let file = row.first().cloned().unwrap_or_default();
        let pos = row
            .get(1)
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("SHOW MASTER STATUS gave no position: {row:?}"))?;
        Ok(BinlogPos { file, pos })
    }

    /// Checks, once, that the server can feed us: the binlog is on, in row format, read
    /// by a user who may, and committed in binlog order; the fence table exists (created
    /// when it does not).
    async fn preflight(&mut self) -> Result<(), Error> {
        let mut conn = self.connect().await.map_err(|e| self.error(e))?;
        let result = self.check(&mut conn).await;
        let _ = conn.disconnect().await;
        result.map_err(|e| self.error(e))
    }

    async fn check(&self, conn: &mut Conn) -> Result<(), String> {
        let row = self
            .rows(conn, "SELECT @@log_bin, @@binlog_format")
            .await?
            .into_iter()
            .next()
            .unwrap_or_default();
        if row.first().map(String::as_str) != Some("1") {
            return Err(
                "binary logging is off (log_bin = 0): start the server with log_bin and \
                 binlog_format = ROW"
                    .into(),
            );
        }
        let format = row.get(1).cloned().unwrap_or_default();
        if !format.eq_ignore_ascii_case("ROW") {
            return Err(format!(
                "binlog_format is {format}, and the feed needs ROW (SET GLOBAL binlog_format = \
                 'ROW', and in the server's configuration)"
            ));
        }
        let order = self
            .rows(conn, "SHOW VARIABLES LIKE 'binlog_order_commits'")
            .await?;
        if let Some(row) = order.first()
            && row.get(1).is_some_and(|v| v.eq_ignore_ascii_case("OFF"))
        {
            return Err(
                "binlog_order_commits is OFF: transactions may become visible out of binlog \
                 order, and the feed could not tell when one is (SET GLOBAL \
                 binlog_order_commits = ON)"
                    .into(),
            );
        }
        self.current(conn).await?;
        let fence = Fence::new(self.opts.clone());
        tokio::time::timeout(STEP_TIMEOUT, conn.query_drop(fence.create_sql()))
            .await
            .map_err(|_| format!("no answer within {STEP_TIMEOUT:?} to CREATE TABLE"))?
            .map_err(|e| {
                format!(
                    "cannot create the visibility fence table {}.{} ({}): create it as a user \
                     who may, or grant CREATE on the database; the feed's user needs INSERT \
                     and UPDATE on it",
                    self.target.database,
                    super::FENCE_TABLE,
                    self.explain(&e)
                )
            })?;
        Ok(())
    }

    /// The name of the consumer lease and of the recorded position.
    fn lease_name(&self) -> &str {
        &self.feed.slot
    }

    /// One session, from connecting to its end.
    async fn run_session(&mut self, stop: &mut watch::Receiver<bool>) -> End {
        let mut fence = Fence::new(self.opts.clone());
        let opened = match self.open(&mut fence).await {
            Ok(opened) => opened,
            Err(e) => return End::Broken(e, false),
        };
        self.stream(opened, &mut fence, stop).await
    }

    /// Steps 1 and 2 of a session (see the module docs), then the dump request.
    async fn open(&mut self, fence: &mut Fence) -> Result<Opened, String> {
        let mut conn = self.connect().await?;
        let identity = self
            .rows(&mut conn, Dialect::MySql.identity_sql())
            .await?
            .into_iter()
            .next()
            .and_then(|row| row.into_iter().next())
            .unwrap_or_default();
        let namespace = self
            .cache
            .database_namespace(Dialect::MySql.fingerprint(Some(identity.clone()), 0))
            .await;
        let now = self.current(&mut conn).await?;
        let (from, gap) = self.resume_point(&identity, &now).await;
        if let Some(reason) = gap {
            // What the binlog held before `now` may not be visible yet: fence, then bump.
            fence.pass().await?;
            self.cache
                .invalidate_feed_in(namespace.as_ref(), vec![Tag::all_models()])
                .await
                .map_err(|e| format!("cannot invalidate after a gap: {e}"))?;
            self.reporter.gap();
            tracing::warn!(feed = %self.lease_name(), reason = %reason, "change feed: continuity not proven; every model tag invalidated");
        }
        self.applied = Some(from.clone());
        if self.shared
            && let Some(p) = from.to_position(&identity)
        {
            shared::record(&self.cache, self.lease_name(), &p)
                .await
                .map_err(|e| format!("cannot record the feed's position: {e}"))?;
        }
        // A heartbeat on an idle stream, so that a lost server shows as silence.
        let period = HEARTBEAT.as_nanos();
        tokio::time::timeout(
            STEP_TIMEOUT,
            // MariaDB: this replica reads GTID events (it sends them as they are, instead of
            // rewriting them as BEGIN and annotations as comments). A user variable to MySQL.
            conn.query_drop(format!(
                "SET @master_heartbeat_period = {period}, @mariadb_slave_capability = 4"
            )),
        )
        .await
        .map_err(|_| format!("no answer within {STEP_TIMEOUT:?} to SET"))?
        .map_err(|e| self.explain(&e))?;
        let own_id = self
            .rows(&mut conn, "SELECT @@server_id")
            .await?
            .into_iter()
            .next()
            .and_then(|r| r.first().and_then(|v| v.parse::<u32>().ok()))
            .unwrap_or(0);
        // A replica id of its own: the server drops an older replica with the same one.
        let mut server_id = rand::random::<u32>() | (1 << 30);
        if server_id == own_id {
            server_id ^= 1;
        }
        let request = BinlogStreamRequest::new(server_id)
            .with_filename(from.file.as_bytes())
            .with_pos(from.pos);
        let stream = tokio::time::timeout(STEP_TIMEOUT, conn.get_binlog_stream(request))
            .await
            .map_err(|_| format!("the binlog dump was not accepted within {STEP_TIMEOUT:?}"))?
            .map_err(|e| self.explain(&e))?;
        Ok(Opened {
            namespace,
            identity,
            stream,
            from,
        })
    }

    /// Where to resume, and why it is a gap when it is one.
    async fn resume_point(
        &mut self,
        identity: &str,
        now: &BinlogPos,
    ) -> (BinlogPos, Option<String>) {
        if let Some(reason) = self.pending_gap.take() {
            return (now.clone(), Some(reason));
        }
        if !self.shared {
            return match &self.applied {
                Some(p) => (p.clone(), None),
                None => (
                    now.clone(),
                    Some("the feed starts where the binlog is now".into()),
                ),
            };
        }
        let gap = match shared::position(&self.cache, self.lease_name()).await {
            Err(error) => format!("the recorded position cannot be read ({error})"),
            Ok(None) => "no position is recorded for this feed".into(),
            Ok(Some(p)) => match BinlogPos::from_position(&p, identity) {
                None => format!(
                    "the recorded position is of another database ({})",
                    p.database
                ),
                Some(from) => {
                    let away = Duration::from_millis(unix_ms().saturating_sub(p.at_ms));
                    if away <= self.feed.max_gap {
                        return (from, None);
                    }
                    format!(
                        "no consumer followed for {away:?} (CACHE_CHANGE_FEED_MAX_GAP_MS is {:?})",
                        self.feed.max_gap
                    )
                }
            },
        };
        (now.clone(), Some(gap))
    }

    /// Step 3: applies each committed transaction, until stopped, the lease is lost or the
    /// stream breaks.
    async fn stream(
        &mut self,
        opened: Opened,
        fence: &mut Fence,
        stop: &mut watch::Receiver<bool>,
    ) -> End {
        let Opened {
            namespace,
            identity,
            mut stream,
            from,
        } = opened;
        self.reporter.state(FeedState::Following);
        tracing::info!(feed = %self.lease_name(), file = %from.file, pos = from.pos, "change feed: following the binlog");
        let mut reader = Reader::new(&self.target.database, from);
        let mut keys = Keys::default();
        let mut catalog: Option<Conn> = None;
        let mut committed: VecDeque<Committed> = VecDeque::new();
        let mut peeked = None;
        let renew = self.feed.lease / 3;
        let mut next_renewal = Instant::now() + renew;
        loop {
            let item = match peeked.take() {
                Some(item) => item,
                None => tokio::select! {
                    _ = stop.changed() => return End::Stopped,
                    _ = tokio::time::sleep_until(next_renewal.into()) => {
                        next_renewal = Instant::now() + renew;
                        if self.shared {
                            // An error (Redis out) keeps the lease as far as we know.
                            if let Ok(false) = shared::lease(&self.cache, self.lease_name(), &self.token, self.feed.lease).await {
                                return End::LostLease;
                            }
                            // Still following: the recorded position is as recent as now.
                            if let Some(p) = self.applied.as_ref().and_then(|a| a.to_position(&identity)) {
                                let _ = shared::record(&self.cache, self.lease_name(), &p).await;
                            }
                        }
                        continue;
                    }
                    item = tokio::time::timeout(SILENCE, stream.next()) => match item {
                        Ok(item) => item,
                        Err(_) => return End::Broken(format!("no event nor heartbeat for {SILENCE:?}"), false),
                    },
                },
            };
            let event = match item {
                Some(Ok(event)) => event,
                Some(Err(e)) => {
                    if let mysql_async::Error::Server(ref server) = e
                        && server.code == ER_MASTER_FATAL_ERROR_READING_BINLOG
                    {
                        // The position is gone from the server: nothing can replay it.
                        self.applied = None;
                        self.pending_gap = Some(format!(
                            "the binlog position to resume from is not on the server ({})",
                            server.message
                        ));
                    }
                    return End::Broken(self.explain(&e), false);
                }
                None => return End::Broken("the server ended the stream".into(), false),
            };
            let step = match reader.event(&event, &stream) {
                Ok(step) => step,
                Err(e) => return End::Broken(e, false),
            };
            match step {
                Step::Nothing => {}
                Step::NeedKeys(needed) => {
                    let conn = match catalog.as_mut() {
                        Some(conn) => conn,
                        None => match self.connect().await {
                            Ok(conn) => catalog.insert(conn),
                            Err(e) => return End::Broken(e, false),
                        },
                    };
                    for (schema, table, columns) in needed {
                        match keys.get(conn, &schema, &table, columns).await {
                            Ok(key) => reader.keys(&schema, &table, key),
                            Err(e) => {
                                return End::Broken(
                                    format!("cannot read the key of {schema}.{table}: {e}"),
                                    false,
                                );
                            }
                        }
                    }
                    if let Err(e) = reader.rows(&event, &stream) {
                        return End::Broken(e, false);
                    }
                }
                Step::Ddl => keys.clear(),
            }
            if let Some(done) = reader.take_committed() {
                committed.push_back(done);
            }
            if committed.is_empty() {
                continue;
            }
            // Apply once the stream has nothing more at hand: one fence for the batch.
            if committed.len() < MAX_BATCH
                && let Some(item) = stream.next().now_or_never()
            {
                peeked = Some(item);
                continue;
            }
            if let Err(e) = self
                .apply(&mut committed, fence, namespace.as_ref(), &identity)
                .await
            {
                return End::Broken(e, false);
            }
        }
    }

    /// Bumps the tags of `committed` (once they are visible), records where they end.
    async fn apply(
        &mut self,
        committed: &mut VecDeque<Committed>,
        fence: &mut Fence,
        namespace: Option<&Namespace>,
        identity: &str,
    ) -> Result<(), String> {
        // Taken, not cloned: a batch that fails is dropped with its session and replayed.
        let mut tags: Vec<Tag> = committed
            .iter_mut()
            .flat_map(|c| std::mem::take(&mut c.tags))
            .collect();
        tags.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        tags.dedup();
        if !tags.is_empty() {
            // Not applied, so not recorded: the next session replays them.
            fence.pass().await?;
            self.cache
                .invalidate_feed_in(namespace, tags)
                .await
                .map_err(|e| format!("cannot apply a transaction: {e}"))?;
        }
        let count = committed.len();
        let Some(last) = committed.pop_back() else {
            return Ok(());
        };
        committed.clear();
        if self.shared
            && let Some(p) = last.end.to_position(identity)
            && let Err(error) = shared::record(&self.cache, self.lease_name(), &p).await
        {
            tracing::debug!(%error, "change feed: position not recorded; a successor replays from an older one");
        }
        for _ in 0..count {
            self.reporter.applied(last.end.as_u64());
        }
        self.applied = Some(last.end);
        Ok(())
    }
}

impl Sessions for Consumer {
    fn name(&self) -> String {
        self.feed.slot.clone()
    }

    fn lease(&self) -> Option<Lease> {
        self.shared.then(|| Lease {
            cache: self.cache.clone(),
            name: self.feed.slot.clone(),
            token: self.token.clone(),
            ttl: self.feed.lease,
        })
    }

    fn reporter(&self) -> &Reporter {
        &self.reporter
    }

    async fn session(&mut self, stop: &mut watch::Receiver<bool>) -> End {
        self.run_session(stop).await
    }

    fn lost_lease(&mut self) {
        // Its successor records where it gets to: ours is stale from now on.
        self.applied = None;
    }
}

/// What the stream loop must do after an event.
enum Step {
    Nothing,
    /// A row event on tables whose keys are not known yet: read them, then hand the event
    /// to [`Reader::rows`].
    NeedKeys(Vec<(String, String, usize)>),
    /// DDL: the tables' keys may have changed.
    Ddl,
}

/// Reads the stream's events into transactions.
pub(crate) struct Reader {
    /// The followed database (tables in it are named without it, as the ORM names them).
    database: String,
    /// Where the stream is: the current file, and the end of the last event.
    at: BinlogPos,
    /// The transaction being read.
    tx: Option<Tx>,
    /// A transaction read to its end.
    done: Option<Committed>,
    /// Keys handed over by the stream loop.
    keys: std::collections::HashMap<(String, String), Arc<super::tables::TableKey>>,
}

#[derive(Default)]
struct Tx {
    changes: Changes,
    /// Something changed that cannot be read: every model tag.
    unknown: bool,
}

impl Reader {
    pub(crate) fn new(database: &str, from: BinlogPos) -> Reader {
        Reader {
            database: database.to_owned(),
            at: from,
            tx: None,
            done: None,
            keys: std::collections::HashMap::new(),
        }
    }

    fn keys(&mut self, schema: &str, table: &str, key: Arc<super::tables::TableKey>) {
        self.keys.insert((schema.to_owned(), table.to_owned()), key);
    }

    fn take_committed(&mut self) -> Option<Committed> {
        self.done.take()
    }

    /// The schema as the tags name it: none for the followed database.
    fn schema<'a>(&self, schema: &'a str) -> &'a str {
        if schema == self.database { "" } else { schema }
    }

    /// Ends the transaction (or the statement outside one) at the current position.
    fn commit(&mut self, tx: Tx) {
        let mut tags = tx.changes.tags();
        if tx.unknown {
            tags.push(Tag::all_models());
        }
        self.done = Some(Committed {
            tags,
            end: self.at.clone(),
        });
    }

    fn event(&mut self, event: &Event, stream: &BinlogStream) -> Result<Step, String> {
        let header = event.header();
        let raw_type = header.event_type_raw();
        let data = event
            .read_data()
            .map_err(|e| format!("an event of type {raw_type} could not be read: {e}"))?;
        if let Some(EventData::RotateEvent(rotate)) = &data {
            self.at = BinlogPos {
                file: file_name(&rotate.name()),
                pos: rotate.position(),
            };
            return Ok(Step::Nothing);
        }
        // Artificial events (the format description resent at the stream's start,
        // heartbeats) carry no position of their own.
        let log_pos = u64::from(header.log_pos());
        let artificial = matches!(
            data,
            Some(EventData::HeartbeatEvent) | Some(EventData::FormatDescriptionEvent(_))
        ) || log_pos == 0;
        if !artificial {
            self.at.pos = log_pos;
        }
        let Some(data) = data else {
            if raw_type == MARIADB_GTID_EVENT {
                self.tx = Some(Tx::default());
                return Ok(Step::Nothing);
            }
            // A type this reader does not know (MariaDB's own, above 159).
            if !HARMLESS_MARIADB_EVENTS.contains(&raw_type) {
                tracing::debug!(
                    event_type = raw_type,
                    "change feed: an event not understood; every model tag"
                );
                match self.tx.as_mut() {
                    Some(tx) => tx.unknown = true,
                    None => self.commit(Tx {
                        unknown: true,
                        ..Tx::default()
                    }),
                }
            }
            return Ok(Step::Nothing);
        };
        match data {
            EventData::QueryEvent(query) => {
                let sql = query.query();
                let text = sql.trim().trim_end_matches(';').trim();
                if is_comment(text) {
                    // MariaDB's stand-in for an event a replica said it cannot read.
                    return Ok(Step::Nothing);
                }
                let word = |w: &str| text.eq_ignore_ascii_case(w);
                if word("BEGIN") || word("START TRANSACTION") {
                    self.tx = Some(Tx::default());
                    return Ok(Step::Nothing);
                }
                if word("COMMIT") || word("ROLLBACK") {
                    // A ROLLBACK logged keeps the changes of non-transactional tables.
                    let tx = self.tx.take().unwrap_or_default();
                    self.commit(tx);
                    return Ok(Step::Nothing);
                }
                let starts = |prefix: &str| {
                    text.get(..prefix.len())
                        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
                };
                if starts("SAVEPOINT") || starts("ROLLBACK TO") || starts("RELEASE SAVEPOINT") {
                    // Inside the transaction; what it rolled back is not in the binlog.
                    return Ok(Step::Nothing);
                }
                let schema = query.schema().into_owned();
                let open = self.tx.is_some();
                let mut tx = self.tx.take().unwrap_or_default();
                let ddl = self.statement(text, &schema, &mut tx);
                if open && ddl.is_none() {
                    // Statement-format DML inside a transaction: it goes on to its XID.
                    self.tx = Some(tx);
                } else {
                    // DDL commits by itself (and whatever was open, implicitly).
                    self.commit(tx);
                }
                Ok(if ddl.is_some() {
                    Step::Ddl
                } else {
                    Step::Nothing
                })
            }
            EventData::XidEvent(_) => {
                let tx = self.tx.take().unwrap_or_default();
                self.commit(tx);
                Ok(Step::Nothing)
            }
            EventData::RowsEvent(rows) => {
                let Some(tme) = stream.get_tme(rows.table_id()) else {
                    self.tx_mut().unknown = true;
                    return Ok(Step::Nothing);
                };
                let schema = tme.database_name().into_owned();
                let table = tme.table_name().into_owned();
                if schema == self.database && table == super::FENCE_TABLE {
                    return Ok(Step::Nothing);
                }
                let columns = usize::try_from(tme.columns_count()).unwrap_or(usize::MAX);
                match self.keys.get(&(schema.clone(), table.clone())) {
                    Some(key) if key.columns == columns => {
                        self.rows(event, stream)?;
                        Ok(Step::Nothing)
                    }
                    _ => Ok(Step::NeedKeys(vec![(schema, table, columns)])),
                }
            }
            EventData::IncidentEvent(_) => {
                // The server says the binlog lost something here.
                self.tx_mut().unknown = true;
                Ok(Step::Nothing)
            }
            _ => Ok(Step::Nothing),
        }
    }

    fn tx_mut(&mut self) -> &mut Tx {
        self.tx.get_or_insert_with(Tx::default)
    }

    /// Adds what a statement logged as text writes to `tx`: its tables, or everything when
    /// that cannot be told. `Some(())` for DDL (tables may have changed shape).
    fn statement(&self, text: &str, schema: &str, tx: &mut Tx) -> Option<()> {
        use querycache_sql::Effect;
        match querycache_sql::classify(text, &|_| None, &|_| Vec::new()) {
            Effect::Writes(writes) => {
                for w in writes {
                    let qualifier = w.table.schema.as_deref().unwrap_or(schema);
                    tx.changes.table(self.schema(qualifier), &w.table.name);
                }
                let first = text.split_whitespace().next().unwrap_or("");
                let dml = ["INSERT", "UPDATE", "DELETE", "REPLACE", "WITH", "LOAD"]
                    .iter()
                    .any(|w| first.eq_ignore_ascii_case(w));
                (!dml).then_some(())
            }
            // DDL (CREATE, ALTER, DROP, RENAME...), grants, anything not understood: it may
            // change what any query reads.
            Effect::Read | Effect::Unknown => {
                tx.unknown = true;
                Some(())
            }
        }
    }

    /// Adds the rows of a row event (its tables' keys known) to the transaction.
    fn rows(&mut self, event: &Event, stream: &BinlogStream) -> Result<(), String> {
        let Ok(Some(EventData::RowsEvent(rows))) = event.read_data() else {
            return Ok(());
        };
        let Some(tme) = stream.get_tme(rows.table_id()) else {
            self.tx_mut().unknown = true;
            return Ok(());
        };
        let schema = tme.database_name().into_owned();
        let table = tme.table_name().into_owned();
        let columns = usize::try_from(tme.columns_count()).unwrap_or(usize::MAX);
        let key = self.keys.get(&(schema.clone(), table.clone())).cloned();
        let tag_schema = self.schema(&schema).to_owned();
        let tx = self.tx.get_or_insert_with(Tx::default);
        let Some(key) = key else {
            tx.changes.table(&tag_schema, &table);
            return Ok(());
        };
        // Foreign-key actions the binlog does not show (see `tables`).
        let reached = match rows {
            RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => &[][..],
            RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => {
                &key.on_delete[..]
            }
            _ => &key.on_update[..],
        };
        for (schema, table) in reached {
            let schema = if *schema == self.database {
                ""
            } else {
                schema.as_str()
            };
            tx.changes.table(schema, table);
        }
        let names = key.names();
        for row in rows.rows(tme) {
            let (before, after) =
                row.map_err(|e| format!("a row event on {schema}.{table} could not be read: {e}"))?;
            for image in [before, after].into_iter().flatten() {
                tx.changes
                    .row(&tag_schema, &table, &names, key.key_of(columns, &image));
            }
        }
        Ok(())
    }
}

/// A binlog file's name as a rotate event gives it: the server's sent without a checksum
/// before the format is known, so the artificial first one may end in the checksum's
/// bytes. Binlog names are `<base>.<number>`: whatever follows the number goes.
fn file_name(name: &str) -> String {
    let Some(dot) = name.rfind('.') else {
        return name.to_owned();
    };
    let digits = name[dot + 1..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    name[..dot + 1 + digits].to_owned()
}

/// Whether a logged statement is only a comment (`# ...`, `-- ...`, `/* ... */`, not a
/// `/*! ... */` that runs).
fn is_comment(text: &str) -> bool {
    let mut rest = text.trim_start();
    loop {
        if rest.is_empty() {
            return true;
        }
        if rest.starts_with('#') || rest.starts_with("-- ") {
            match rest.find('\n') {
                Some(end) => rest = rest[end + 1..].trim_start(),
                None => return true,
            }
        } else if rest.starts_with("/*") && !rest.starts_with("/*!") && !rest.starts_with("/*M!") {
            match rest.find("*/") {
                Some(end) => rest = rest[end + 2..].trim_start(),
                None => return false,
            }
        } else {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotate_names_lose_a_trailing_checksum() {
        assert_eq!(file_name("binlog.000001\u{da}\u{89}G"), "binlog.000001");
        assert_eq!(file_name("mysql-bin.000123"), "mysql-bin.000123");
        assert_eq!(file_name("nodot"), "nodot");
    }

    #[test]
    fn comments_are_told_from_statements() {
        assert!(is_comment(
            "# Dummy event replacing event type 160 that slave cannot handle."
        ));
        assert!(is_comment("/* x */ -- y\n"));
        assert!(!is_comment("/*!40000 ALTER TABLE t DISABLE KEYS */"));
        assert!(!is_comment("# c\nDROP TABLE t"));
        assert!(!is_comment("/* unterminated"));
    }

    #[test]
    fn positions_round_trip_through_the_shared_record() {
        let p = BinlogPos {
            file: "binlog.000042".into(),
            pos: 1234,
        };
        let recorded = p.to_position("app|host|3306").unwrap();
        assert_eq!(
            BinlogPos::from_position(&recorded, "app|host|3306"),
            Some(p.clone())
        );
        assert_eq!(BinlogPos::from_position(&recorded, "other|host|3306"), None);
        let long = BinlogPos {
            file: "log.1234567".into(),
            pos: 4,
        };
        let recorded = long.to_position("x").unwrap();
        assert_eq!(BinlogPos::from_position(&recorded, "x"), Some(long));
        assert_eq!(p.as_u64(), (42 << 32) | 1234);
    }
}
