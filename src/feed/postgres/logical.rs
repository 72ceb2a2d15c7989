//! The logical-replication feed: a `pgoutput` stream from a replication slot, each committed
//! transaction's changes turned into tag bumps and acknowledged only once applied.
//!
//! The replication connection is `pgwire-replication`'s (see the README's choice of client):
//! a session is opened *gated*, so that the checks, the slot's state and its creation run
//! on the very session that then streams. One session's life:
//!
//! 1. learn the database's identity (the same fingerprint the ORM integrations make, so
//!    that the feed bumps the tags of the right database in a cache serving several);
//! 2. find the slot, or create it; decide whether the changes since the last position
//!    applied are all still to come (continuity) or not (a gap: every model tag is bumped
//!    before anything else);
//! 3. stream: Begin, changes, Commit; at each Commit bump the transaction's tags, record
//!    the position in the shared store (Redis), then acknowledge it to PostgreSQL.
//!
//! PostgreSQL lets one session at a time stream from a slot; the Redis lease only keeps
//! the instances of a deployment from fighting over it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgwire_replication::{
    Lsn, PgWireError, ReplicationClient, ReplicationConfig, ReplicationEvent, TlsConfig,
};
use tokio::sync::watch;

use super::pgoutput::{self, Message, Relation, Tuple, Value};
use crate::cache::databases::{Fingerprint, Namespace};
use crate::feed::handle::{Reporter, unix_ms};
use crate::feed::shared::{self, End, Lease, Position, Sessions};
use crate::feed::url::Target;
use crate::feed::{ChangeFeed, ChangeFeedHandle, Changes, FeedMode, FeedState};
use crate::{Cache, Error, Tag};

/// How long connecting and each check may take before the session counts as failed.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a managed publication is checked for new tables.
const EXTEND_EVERY: Duration = Duration::from_secs(2);

/// Starts the logical feed of `feed` on `cache`: checks the server first (what is missing
/// comes back as [`Error::ChangeFeed`]), then follows it in a task of its own.
pub(crate) async fn start(feed: ChangeFeed, cache: &Cache) -> Result<ChangeFeedHandle, Error> {
    let target =
        crate::feed::url::parse(&feed.url, FeedMode::Logical, &crate::feed::url::POSTGRES)?;
    let shared = shared::is_shared(cache);
    let slot = if shared {
        feed.slot.clone()
    } else {
        // A temporary slot of this process's own: PostgreSQL drops it with the session.
        let mut name = format!(
            "{}_{}_{:04x}",
            feed.slot,
            std::process::id(),
            rand::random::<u16>()
        );
        name.truncate(63);
        name
    };
    let consumer = Consumer {
        cache: cache.clone(),
        reporter: Reporter::new(FeedMode::Logical),
        target,
        slot,
        temporary: !shared,
        token: format!("{:032x}", rand::random::<u128>()),
        feed,
        pending_gap: None,
        managed: false,
    };
    let mut consumer = consumer;
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

struct Consumer {
    cache: Cache,
    reporter: Arc<Reporter>,
    target: Target,
    feed: ChangeFeed,
    slot: String,
    temporary: bool,
    /// This instance's token for the consumer lease.
    token: String,
    /// Why the next session must start with a gap, when the last one ended so that
    /// continuity is not proven (it broke inside a transaction).
    pending_gap: Option<String>,
    /// Whether the publication is querycache's own, extended with new tables as they come.
    managed: bool,
}

/// What a session knows once its stream is open.
struct Opened {
    /// The database's namespace in the cache (`None`: not known, see `cache::databases`).
    namespace: Option<Namespace>,
    /// Its identity (`Position::database`).
    database: String,
    /// The position from which the stream resumes.
    lsn: u64,
}

impl Sessions for Consumer {
    fn name(&self) -> String {
        self.slot.clone()
    }

    fn lease(&self) -> Option<Lease> {
        (!self.temporary).then(|| Lease {
            cache: self.cache.clone(),
            name: self.slot.clone(),
            token: self.token.clone(),
            ttl: self.feed.lease,
        })
    }

    fn reporter(&self) -> &Reporter {
        &self.reporter
    }

    async fn session(&mut self, stop: &mut watch::Receiver<bool>) -> End {
        self.replicate(stop).await
    }

    fn broken(&mut self, error: &str, in_transaction: bool) {
        if in_transaction {
            self.pending_gap = Some(format!("the stream broke inside a transaction ({error})"));
        }
    }
}

impl Consumer {
    fn error(&self, reason: impl Into<String>) -> Error {
        self.feed.error(reason)
    }

    fn config(&self) -> Result<ReplicationConfig, String> {
        let t = &self.target;
        if !matches!(t.sslmode.as_str(), "disable" | "allow" | "prefer") {
            crate::tls::ensure_crypto_provider()?;
        }
        let tls = match t.sslmode.as_str() {
            "disable" | "allow" | "prefer" => TlsConfig::disabled(),
            "verify-ca" => TlsConfig::verify_ca(None),
            "verify-full" => TlsConfig::verify_full(None),
            _ => TlsConfig::require(),
        };
        Ok(ReplicationConfig::new(
            t.host.clone(),
            t.user.clone(),
            t.password.clone(),
            t.database.clone(),
            self.slot.clone(),
            self.feed.publication.clone(),
        )
        .with_port(t.port)
        .with_tls(tls)
        .with_status_interval(Duration::from_millis(500))
        .with_wakeup_interval(Duration::from_secs(1))
        .with_application_name("querycache-feed"))
    }

    /// Connects a gated session, with a bound.
    async fn connect(&self) -> Result<ReplicationClient, String> {
        let client = ReplicationClient::connect_gated(self.config()?)
            .await
            .map_err(|e| self.explain(&e))?;
        Ok(client)
    }

    /// What an error from the server means for a user.
    fn explain(&self, error: &PgWireError) -> String {
        let text = error.to_string();
        if text.contains("must be superuser or replication role")
            || text.contains("permission denied to start WAL sender")
            || text.contains("REPLICATION attribute")
        {
            format!(
                "user {:?} may not open a replication connection ({text}): grant it with \
                 ALTER ROLE {} REPLICATION, or use CACHE_CHANGE_FEED=triggers",
                self.target.user, self.target.user
            )
        } else {
            format!(
                "cannot connect to {}:{} as {:?}: {text}",
                self.target.host, self.target.port, self.target.user
            )
        }
    }

    /// Runs `sql` on a gated session, bounded by [`STEP_TIMEOUT`]: its rows as text.
    async fn query(
        &self,
        client: &mut ReplicationClient,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, String> {
        let rows = tokio::time::timeout(STEP_TIMEOUT, client.simple_query(sql))
            .await
            .map_err(|_| format!("no answer within {STEP_TIMEOUT:?} to {sql}"))?
            .map_err(|e| self.explain(&e))?;
        Ok(rows
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned()))
                    .collect()
            })
            .collect())
    }

    /// The first value of the first row.
    async fn value(
        &self,
        client: &mut ReplicationClient,
        sql: &str,
    ) -> Result<Option<String>, String> {
        Ok(self
            .query(client, sql)
            .await?
            .into_iter()
            .next()
            .and_then(|row| row.into_iter().next().flatten()))
    }

    /// Checks, once, that the server can feed us: a replication connection is allowed,
    /// `wal_level` is `logical`, the publication exists (created over the tables with a
    /// primary key when it does not, see `publication`).
    async fn preflight(&mut self) -> Result<(), Error> {
        let mut client = tokio::time::timeout(STEP_TIMEOUT, self.connect())
            .await
            .map_err(|_| {
                self.error(format!(
                    "no answer from {}:{} within {STEP_TIMEOUT:?}",
                    self.target.host, self.target.port
                ))
            })?
            .map_err(|e| self.error(e))?;
        let result = self.check(&mut client).await;
        client.abort();
        result.map_err(|e| self.error(e))?;
        let publication = super::publication::ensure(&self.feed.url, &self.feed.publication)
            .await
            .map_err(|e| self.error(e))?;
        self.managed = publication.managed;
        Ok(())
    }

    async fn check(&self, client: &mut ReplicationClient) -> Result<(), String> {
        let level = self
            .value(client, "SHOW wal_level")
            .await?
            .unwrap_or_default();
        if level != "logical" {
            return Err(format!(
                "wal_level is {level:?}, and logical replication needs wal_level = logical \
                 (ALTER SYSTEM SET wal_level = logical, then restart PostgreSQL), or use \
                 CACHE_CHANGE_FEED=triggers"
            ));
        }
        Ok(())
    }

    /// One replication session, from connecting to its end.
    async fn replicate(&mut self, stop: &mut watch::Receiver<bool>) -> End {
        let mut client = match tokio::time::timeout(STEP_TIMEOUT, self.connect()).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => return End::Broken(e, false),
            Err(_) => return End::Broken(format!("no answer within {STEP_TIMEOUT:?}"), false),
        };
        let end = match self.open(&mut client).await {
            Ok(opened) => self.stream(&mut client, opened, stop).await,
            Err(e) => End::Broken(e, false),
        };
        match end {
            End::Broken(..) => client.abort(),
            _ => {
                client.stop();
                let _ = tokio::time::timeout(STEP_TIMEOUT, client.shutdown()).await;
            }
        }
        end
    }

    /// Steps 1 and 2 of a session (see the module docs), then START_REPLICATION.
    async fn open(&mut self, client: &mut ReplicationClient) -> Result<Opened, String> {
        let identity = self
            .value(
                client,
                "SELECT current_database() || '|' || current_setting('port') || '|' \
                 || (SELECT system_identifier::text FROM pg_control_system())",
            )
            .await?
            .unwrap_or_default();
        let namespace = self
            .cache
            .database_namespace(Fingerprint::Known(format!("Postgres|{identity}")))
            .await;
        let slot = &self.slot;
        let row = self
            .query(
                client,
                &format!(
                    "SELECT confirmed_flush_lsn::text, active_pid::text, wal_status, plugin \
                     FROM pg_replication_slots WHERE slot_name = '{slot}'"
                ),
            )
            .await?
            .into_iter()
            .next();
        let mut gap = self.pending_gap.take();
        let confirmed = match row {
            None => {
                self.create_slot(client).await?;
                if gap.is_none() && !self.temporary {
                    gap = Some(format!("slot {slot:?} did not exist: it was created"));
                }
                gap.get_or_insert_with(|| {
                    "a new temporary slot starts where the database is now".into()
                });
                None
            }
            Some(row) => {
                let text = |i: usize| row.get(i).cloned().flatten();
                if text(3).as_deref() != Some("pgoutput") {
                    return Err(format!(
                        "slot {slot:?} exists but is not a pgoutput logical slot; drop it or \
                         name another with CACHE_CHANGE_FEED_SLOT"
                    ));
                }
                if let Some(pid) = text(1) {
                    // Its holder lost the lease (or never had one): the lease holder owns
                    // the slot.
                    let _ = self
                        .query(client, &format!("SELECT pg_terminate_backend({pid})"))
                        .await;
                    return Err(format!(
                        "slot {slot:?} was held by backend {pid}; it was told to end"
                    ));
                }
                if text(2).as_deref() == Some("lost") {
                    self.query(client, &format!("DROP_REPLICATION_SLOT \"{slot}\""))
                        .await?;
                    self.create_slot(client).await?;
                    gap = Some(format!(
                        "slot {slot:?} had lost the WAL it needed (max_slot_wal_keep_size): recreated"
                    ));
                    None
                } else {
                    text(0)
                        .and_then(|lsn| Lsn::parse(&lsn).ok())
                        .map(|l| l.as_u64())
                }
            }
        };
        if let Some(confirmed) = confirmed
            && gap.is_none()
        {
            gap = self.continuity(&identity, confirmed).await;
        }
        let slot_position = match confirmed {
            Some(lsn) => lsn,
            None => self.confirmed(client).await?,
        };
        if let Some(reason) = gap {
            // Committed transactions the stream will not bring may still be invisible for
            // a moment (see `visibility`): bump once they have left that window too.
            super::visibility::Visibility::new(&self.feed.url)
                .settle()
                .await?;
            self.cache
                .invalidate_feed_in(namespace.as_ref(), vec![Tag::all_models()])
                .await
                .map_err(|e| format!("cannot invalidate after a gap: {e}"))?;
            self.reporter.gap();
            tracing::warn!(slot = %self.slot, reason = %reason, "change feed: continuity not proven; every model tag invalidated");
        }
        let position = Position {
            database: identity.clone(),
            lsn: slot_position,
            at_ms: unix_ms(),
        };
        shared::record(&self.cache, &self.slot, &position)
            .await
            .map_err(|e| format!("cannot record the feed's position: {e}"))?;
        client.start().await.map_err(|e| self.explain(&e))?;
        tokio::time::timeout(STEP_TIMEOUT, client.wait_started())
            .await
            .map_err(|_| format!("START_REPLICATION not accepted within {STEP_TIMEOUT:?}"))?
            .map_err(|e| self.explain(&e))?;
        Ok(Opened {
            namespace,
            database: identity,
            lsn: slot_position,
        })
    }

    async fn create_slot(&self, client: &mut ReplicationClient) -> Result<(), String> {
        let temporary = if self.temporary { " TEMPORARY" } else { "" };
        self.query(
            client,
            &format!(
                "CREATE_REPLICATION_SLOT \"{}\"{temporary} LOGICAL pgoutput NOEXPORT_SNAPSHOT",
                self.slot
            ),
        )
        .await
        .map(drop)
    }

    async fn confirmed(&self, client: &mut ReplicationClient) -> Result<u64, String> {
        let lsn = self
            .value(
                client,
                &format!(
                    "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = '{}'",
                    self.slot
                ),
            )
            .await?
            .unwrap_or_default();
        Lsn::parse(&lsn)
            .map(|l| l.as_u64())
            .map_err(|_| format!("slot {:?} reports no position", self.slot))
    }

    /// Whether the changes after the slot's `confirmed` position are all that was not
    /// applied: the shared store's record says where the last consumer got to, and when.
    async fn continuity(&self, database: &str, confirmed: u64) -> Option<String> {
        if self.temporary {
            return None;
        }
        match shared::position(&self.cache, &self.slot).await {
            Err(error) => Some(format!("the recorded position cannot be read ({error})")),
            Ok(None) => Some("no position is recorded for this slot".into()),
            Ok(Some(p)) if p.database != database => Some(format!(
                "the recorded position is of another database ({})",
                p.database
            )),
            Ok(Some(p)) if confirmed > p.lsn => Some(format!(
                "the slot is past the recorded position ({} > {}): it was dropped and \
                 recreated, or advanced by another client",
                Lsn::from_u64(confirmed).to_pg_string(),
                Lsn::from_u64(p.lsn).to_pg_string()
            )),
            Ok(Some(p)) => {
                let away = Duration::from_millis(unix_ms().saturating_sub(p.at_ms));
                (away > self.feed.max_gap).then(|| {
                    format!(
                        "no consumer followed for {away:?} (CACHE_CHANGE_FEED_MAX_GAP_MS is {:?})",
                        self.feed.max_gap
                    )
                })
            }
        }
    }

    /// Adds the tables created since to the managed publication, and bumps their tags.
    async fn extend(
        &self,
        manager: &mut Option<sqlx::postgres::PgConnection>,
        namespace: Option<&Namespace>,
    ) -> Result<(), String> {
        use sqlx::Connection;
        if manager.is_none() {
            *manager = Some(
                sqlx::postgres::PgConnection::connect(&self.feed.url)
                    .await
                    .map_err(|e| e.to_string())?,
            );
        }
        let Some(conn) = manager.as_mut() else {
            return Ok(());
        };
        let tags = super::publication::extend(conn, &self.feed.publication).await?;
        if !tags.is_empty() {
            self.cache
                .invalidate_feed_in(namespace, tags)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Step 3: applies each committed transaction, until stopped, the lease is lost or the
    /// stream breaks.
    async fn stream(
        &mut self,
        client: &mut ReplicationClient,
        opened: Opened,
        stop: &mut watch::Receiver<bool>,
    ) -> End {
        let Opened {
            namespace,
            database,
            lsn: mut applied,
        } = opened;
        // The slot's own position is acknowledged already; say so, or a standby status
        // update would report 0/0 until the first commit (and a shutdown would wait for
        // one).
        client.update_applied_lsn(Lsn::from_u64(applied));
        self.reporter.state(FeedState::Following);
        tracing::info!(slot = %self.slot, temporary = self.temporary, "change feed: following");
        let mut relations: HashMap<u32, Relation> = HashMap::new();
        let mut tx: Option<Changes> = None;
        let mut unknown_relation = false;
        let renew = (self.feed.lease / 3).min(EXTEND_EVERY);
        let mut next_renewal = Instant::now() + renew;
        let mut next_extension = Instant::now();
        let mut manager: Option<sqlx::postgres::PgConnection> = None;
        let mut visibility = super::visibility::Visibility::new(&self.feed.url);
        let mut tx_xid = 0_u32;
        loop {
            let event = tokio::select! {
                _ = stop.changed() => return End::Stopped,
                _ = tokio::time::sleep_until(next_renewal.into()) => {
                    next_renewal = Instant::now() + renew;
                    if self.managed && Instant::now() >= next_extension {
                        next_extension = Instant::now() + EXTEND_EVERY;
                        if let Err(e) = self.extend(&mut manager, namespace.as_ref()).await {
                            tracing::warn!(error = %e, "change feed: the publication could not be extended");
                            manager = None;
                        }
                    }
                    if !self.temporary {
                        // An error (Redis out) keeps the lease as far as we know: nobody
                        // else can take it through the same Redis.
                        if let Ok(false) =
                            shared::lease(&self.cache, &self.slot, &self.token, self.feed.lease).await
                        {
                            return End::LostLease;
                        }
                        // Still following: the recorded position is as recent as now.
                        if tx.is_none() {
                            let p = Position { database: database.clone(), lsn: applied, at_ms: unix_ms() };
                            let _ = shared::record(&self.cache, &self.slot, &p).await;
                        }
                    }
                    continue;
                }
                event = client.recv() => event,
            };
            let event = match event {
                Ok(Some(event)) => event,
                Ok(None) => return End::Broken("the server ended the stream".into(), tx.is_some()),
                Err(e) => return End::Broken(e.to_string(), tx.is_some()),
            };
            match event {
                ReplicationEvent::Begin { xid, .. } => {
                    tx = Some(Changes::default());
                    tx_xid = xid;
                    unknown_relation = false;
                }
                ReplicationEvent::XLogData { data, .. } => {
                    let message = match pgoutput::decode(&data) {
                        Ok(message) => message,
                        Err(e) => return End::Broken(e.to_string(), true),
                    };
                    let Some(changes) = tx.as_mut() else {
                        if let Message::Relation(r) = message {
                            relations.insert(r.id, r);
                        }
                        continue;
                    };
                    unknown_relation |= !collect(message, &mut relations, changes);
                }
                ReplicationEvent::Commit { end_lsn, .. } => {
                    let changes = tx.take().unwrap_or_default();
                    let mut tags = changes.tags();
                    if unknown_relation {
                        tags.push(Tag::all_models());
                    }
                    // Bumped once other sessions see the transaction: a read before that
                    // gets the old rows, and must not store them under the new versions.
                    if !tags.is_empty()
                        && let Err(e) = visibility.wait(tx_xid).await
                    {
                        return End::Broken(e, false);
                    }
                    if !tags.is_empty()
                        && let Err(e) = self
                            .cache
                            .invalidate_feed_in(namespace.as_ref(), tags)
                            .await
                    {
                        // Not applied, so not acknowledged: the next session replays it.
                        return End::Broken(format!("cannot apply a transaction: {e}"), false);
                    }
                    applied = end_lsn.as_u64();
                    let position = Position {
                        database: database.clone(),
                        lsn: applied,
                        at_ms: unix_ms(),
                    };
                    match shared::record(&self.cache, &self.slot, &position).await {
                        // Acknowledged only once recorded, so that PostgreSQL's slot is
                        // never ahead of the position a successor reads.
                        Ok(()) => client.update_applied_lsn(end_lsn),
                        Err(error) => {
                            tracing::debug!(%error, "change feed: position not recorded; not acknowledged yet")
                        }
                    }
                    self.reporter.applied(applied);
                }
                // Between transactions, everything up to the keepalive's position was
                // sent before it (the stream is in order) and applied: acknowledge it, as
                // PostgreSQL's own subscribers do. Without this an idle database's slot
                // would hold WAL back, and a shutdown would wait for us forever.
                ReplicationEvent::KeepAlive { wal_end, .. }
                    if tx.is_none() && wal_end.as_u64() > applied =>
                {
                    let position = Position {
                        database: database.clone(),
                        lsn: wal_end.as_u64(),
                        at_ms: unix_ms(),
                    };
                    if shared::record(&self.cache, &self.slot, &position)
                        .await
                        .is_ok()
                    {
                        applied = wal_end.as_u64();
                        client.update_applied_lsn(wal_end);
                    }
                }
                ReplicationEvent::Message { .. }
                | ReplicationEvent::KeepAlive { .. }
                | ReplicationEvent::StoppedAt { .. } => {}
            }
        }
    }
}

/// Adds what `message` changed to `changes`; false when it names a relation this session
/// was not told about (the transaction must then invalidate everything).
fn collect(
    message: Message,
    relations: &mut HashMap<u32, Relation>,
    changes: &mut Changes,
) -> bool {
    let mut row = |rel: u32, tuple: &Tuple| -> bool {
        let Some(r) = relations.get(&rel) else {
            return false;
        };
        let columns: Vec<&str> = r
            .columns
            .iter()
            .filter(|c| c.key)
            .map(|c| c.name.as_str())
            .collect();
        changes.row(&r.schema, &r.name, &columns, key_of(r, tuple));
        true
    };
    match message {
        Message::Relation(r) => {
            relations.insert(r.id, r);
            true
        }
        Message::Insert { rel, new } => row(rel, &new),
        Message::Update { rel, old, new } => {
            let known = old.as_ref().is_none_or(|old| row(rel, old));
            row(rel, &new) && known
        }
        Message::Delete { rel, old } => row(rel, &old),
        Message::Truncate { rels } => {
            let mut known = true;
            for rel in rels {
                match relations.get(&rel) {
                    Some(r) => changes.table(&r.schema, &r.name),
                    None => known = false,
                }
            }
            known
        }
        Message::Skipped => true,
    }
}

/// Type oids whose text form is the one the ORM integrations give a bound value of that
/// type (integers, text, UUIDs): a key of any other type is not read, and its writes
/// count as writes to the whole table.
const PLAIN_KEY_TYPES: [u32; 7] = [
    20,   // int8
    21,   // int2
    23,   // int4
    25,   // text
    1043, // varchar
    2950, // uuid
    19,   // name
];

/// The key of `tuple`'s row (as text, in key order); `None` when it cannot be read.
fn key_of(relation: &Relation, tuple: &Tuple) -> Option<Vec<String>> {
    let mut key = Vec::new();
    for (column, value) in relation.columns.iter().zip(&tuple.0) {
        if !column.key {
            continue;
        }
        if !PLAIN_KEY_TYPES.contains(&column.type_oid) {
            return None;
        }
        match value {
            Value::Text(text) => key.push(text.clone()),
            Value::Null | Value::Unchanged | Value::Binary(_) => return None,
        }
    }
    (!key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::super::pgoutput::tests::{Enc, relation};
    use super::*;

    fn tags_of(messages: &[Vec<u8>]) -> (Vec<String>, bool) {
        let mut relations = HashMap::new();
        let mut changes = Changes::default();
        let mut known = true;
        for m in messages {
            known &= collect(pgoutput::decode(m).unwrap(), &mut relations, &mut changes);
        }
        (
            changes.tags().iter().map(|t| t.to_string()).collect(),
            known,
        )
    }

    #[test]
    fn changes_become_row_tags_and_key_changes_bump_both_keys() {
        let songs = relation(
            1,
            "public",
            "songs",
            &[("id", 23, true), ("title", 25, false)],
        );
        let insert = Enc::default()
            .u8(b'I')
            .u32(1)
            .u8(b'N')
            .tuple(&[Some("7"), Some("a")])
            .0;
        let update = Enc::default()
            .u8(b'U')
            .u32(1)
            .u8(b'K')
            .tuple(&[Some("8"), None])
            .u8(b'N')
            .tuple(&[Some("9"), Some("b")])
            .0;
        let (tags, known) = tags_of(&[songs.clone(), insert, update]);
        assert!(known);
        assert_eq!(
            tags,
            [
                "model:songs",
                "model:songs:7",
                "model:songs:8",
                "model:songs:9"
            ]
        );

        let truncate = Enc::default().u8(b'T').u32(1).u8(0).u32(1).0;
        assert_eq!(
            tags_of(&[songs.clone(), truncate]).0,
            ["model:songs", "model:songs#bulk"]
        );
    }

    #[test]
    fn unreadable_keys_are_the_whole_table_and_unknown_relations_are_reported() {
        // A timestamp key: its text form need not match the ORM's.
        let events = relation(2, "public", "events", &[("at", 1184, true)]);
        let insert = Enc::default()
            .u8(b'I')
            .u32(2)
            .u8(b'N')
            .tuple(&[Some("2026-01-01 00:00:00+00")])
            .0;
        assert_eq!(
            tags_of(&[events, insert]).0,
            ["model:events", "model:events#bulk"]
        );
        // No key at all (replica identity nothing / no primary key).
        let logs = relation(3, "app", "logs", &[("line", 25, false)]);
        let insert = Enc::default()
            .u8(b'I')
            .u32(3)
            .u8(b'N')
            .tuple(&[Some("x")])
            .0;
        assert_eq!(
            tags_of(&[logs, insert]).0,
            ["model:app.logs", "model:app.logs#bulk"]
        );
        // A change to a relation never described.
        let insert = Enc::default()
            .u8(b'I')
            .u32(99)
            .u8(b'N')
            .tuple(&[Some("1")])
            .0;
        assert!(!tags_of(&[insert]).1);
    }
}
