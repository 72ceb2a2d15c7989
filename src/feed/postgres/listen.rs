//! The trigger feed's consumer: `LISTEN` on the channel the triggers notify (sqlx's
//! `PgListener`), each notification turned into tag bumps as it arrives.
//!
//! `NOTIFY` is delivered at commit, only to sessions listening at that moment: whatever
//! was sent while no session listened is lost. So every (re)start of listening is a gap:
//! once `LISTEN` is in place the consumer bumps every model tag, then applies what comes.
//! With a store shared through Redis one instance listens (the same lease as the logical
//! feed), and one that takes over starts with that bump too.

use std::sync::Arc;

use sqlx::postgres::PgListener;
use sqlx::{AssertSqlSafe, Row};
use tokio::sync::watch;

use super::install::{FUNCTION_SCHEMA, connect, feed_error, tables};
use super::triggers::{FUNCTION_NAME, Notice, TRIGGER_PREFIX, parse_payload};
use crate::cache::databases::{Fingerprint, Namespace};
use crate::feed::handle::Reporter;
use crate::feed::shared::{self, End, Lease, Sessions};
use crate::feed::{ChangeFeed, ChangeFeedHandle, Changes, FeedMode, FeedState};
use crate::{Cache, Error, Tag};

/// Starts the trigger feed of `feed` on `cache`: checks that the triggers are installed
/// (saying which tables lack them), then listens in a task of its own.
pub(crate) async fn start(feed: ChangeFeed, cache: &Cache) -> Result<ChangeFeedHandle, Error> {
    let mut conn = connect(&feed).await?;
    let installed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE p.proname = $1 AND n.nspname = $2",
    )
    .bind(FUNCTION_NAME)
    .bind(FUNCTION_SCHEMA)
    .fetch_one(&mut conn)
    .await
    .map_err(|e| feed_error(&feed, e.to_string()))?;
    if installed == 0 {
        return Err(feed_error(
            &feed,
            "the feed's triggers are not installed: call \
             querycache::feed::postgres::install_triggers once (as a role that may create \
             triggers on the tables)",
        ));
    }
    let with_triggers: Vec<String> = sqlx::query(AssertSqlSafe(format!(
        "SELECT DISTINCT n.nspname || '.' || c.relname FROM pg_trigger t \
         JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE t.tgname LIKE '{TRIGGER_PREFIX}%'"
    )))
    .fetch_all(&mut conn)
    .await
    .map_err(|e| feed_error(&feed, e.to_string()))?
    .iter()
    .filter_map(|row| row.try_get::<String, _>(0).ok())
    .collect();
    let missing: Vec<String> = tables(&feed, &mut conn)
        .await?
        .into_iter()
        .map(|t| format!("{}.{}", t.schema, t.name))
        .filter(|name| !with_triggers.contains(name))
        .collect();
    if !missing.is_empty() {
        tracing::warn!(
            tables = ?missing,
            "change feed: these tables have no feed triggers, so writes to them from outside \
             the application are not seen; run install_triggers again"
        );
    }
    let identity: String = sqlx::query_scalar(
        "SELECT current_database() || '|' || current_setting('port') || '|' \
         || (SELECT system_identifier::text FROM pg_control_system())",
    )
    .fetch_one(&mut conn)
    .await
    .map_err(|e| feed_error(&feed, e.to_string()))?;
    drop(conn);
    let namespace = cache
        .database_namespace(Fingerprint::Known(format!("Postgres|{identity}")))
        .await;
    let reporter = Reporter::new(FeedMode::Triggers);
    cache.register_feed(&reporter);
    let (stop, stopped) = watch::channel(false);
    let listener = Listener {
        cache: cache.clone(),
        reporter: reporter.clone(),
        token: format!("{:032x}", rand::random::<u128>()),
        lease_name: format!("{}-triggers", feed.channel),
        shared: shared::is_shared(cache),
        feed,
        namespace,
    };
    let task = tokio::spawn(shared::follow(listener, stopped));
    Ok(ChangeFeedHandle {
        reporter,
        stop,
        task: Some(task),
    })
}

struct Listener {
    cache: Cache,
    reporter: Arc<Reporter>,
    feed: ChangeFeed,
    namespace: Option<Namespace>,
    token: String,
    lease_name: String,
    shared: bool,
}

impl Sessions for Listener {
    fn name(&self) -> String {
        self.feed.channel.clone()
    }

    fn lease(&self) -> Option<Lease> {
        self.shared.then(|| Lease {
            cache: self.cache.clone(),
            name: self.lease_name.clone(),
            token: self.token.clone(),
            ttl: self.feed.lease,
        })
    }

    fn reporter(&self) -> &Reporter {
        &self.reporter
    }

    async fn session(&mut self, stop: &mut watch::Receiver<bool>) -> End {
        self.listen(stop).await
    }
}

impl Listener {
    async fn listen(&self, stop: &mut watch::Receiver<bool>) -> End {
        let mut listener = match PgListener::connect(&self.feed.url).await {
            Ok(listener) => listener,
            Err(e) => return End::Broken(format!("cannot connect: {e}"), false),
        };
        // A lost connection must end the session (every restart of listening is a gap),
        // never be replaced behind our back: with eager reconnection, a `try_recv` dropped
        // while reconnecting would leave the next one listening again on a new connection,
        // the notifications sent in between lost and no gap counted.
        listener.eager_reconnect(false);
        if let Err(e) = listener.listen(&self.feed.channel).await {
            return End::Broken(format!("cannot LISTEN: {e}"), false);
        }
        // Listening now: what was sent before cannot be known.
        if let Err(e) = self.bump_all().await {
            return End::Broken(
                format!("cannot invalidate after starting to listen: {e}"),
                false,
            );
        }
        self.reporter.gap();
        self.reporter.state(FeedState::Following);
        tracing::info!(channel = %self.feed.channel, "change feed: listening; every model tag invalidated for what was sent before");
        let renew = self.feed.lease / 3;
        let mut next_renewal = tokio::time::Instant::now() + renew;
        loop {
            // One `try_recv` per notification, never dropped half-way: a renewal polls
            // beside it (sqlx's listener notices a lost connection inside the call, and a
            // call cancelled there could hide it from the next).
            let received = {
                let receiving = listener.try_recv();
                tokio::pin!(receiving);
                loop {
                    tokio::select! {
                        _ = stop.changed() => return End::Stopped,
                        _ = tokio::time::sleep_until(next_renewal) => {
                            next_renewal = tokio::time::Instant::now() + renew;
                            if self.shared
                                && let Ok(false) = shared::lease(&self.cache, &self.lease_name, &self.token, self.feed.lease).await
                            {
                                return End::LostLease;
                            }
                        }
                        received = &mut receiving => break received,
                    }
                }
            };
            let notification = match received {
                Ok(Some(n)) => n,
                // The connection was lost: notifications may have been missed.
                Ok(None) => return End::Broken("the listening connection was lost".into(), false),
                Err(e) => return End::Broken(e.to_string(), false),
            };
            let mut changes = Changes::default();
            match parse_payload(notification.payload()) {
                Ok(Notice::Rows {
                    schema,
                    table,
                    keys,
                }) => {
                    // The key's column names are not in the payload; they only decide
                    // whether `#guess` is bumped too (see `Changes::row`), which it then
                    // always is: more than needed, never less.
                    for key in keys {
                        let columns = vec!["?"; key.len()];
                        changes.row(&schema, &table, &columns, Some(key));
                    }
                }
                Ok(Notice::Table { schema, table }) => changes.table(&schema, &table),
                Err(error) => {
                    tracing::warn!(%error, "change feed: notification not understood; every model tag invalidated");
                    if let Err(e) = self.bump_all().await {
                        return End::Broken(format!("cannot invalidate: {e}"), false);
                    }
                    self.reporter.gap();
                    continue;
                }
            }
            if let Err(e) = self
                .cache
                .invalidate_feed_in(self.namespace.as_ref(), changes.tags())
                .await
            {
                // Lost unless listened again: that bumps everything.
                return End::Broken(format!("cannot apply a notification: {e}"), false);
            }
            self.reporter.applied(0);
        }
    }

    async fn bump_all(&self) -> Result<usize, crate::store::StoreError> {
        self.cache
            .invalidate_feed_in(self.namespace.as_ref(), vec![Tag::all_models()])
            .await
    }
}
