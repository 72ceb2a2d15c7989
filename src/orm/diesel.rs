//! Diesel 2.3 integration: every statement a connection runs is seen through Diesel's
//! [`Instrumentation`] hook, and its writes invalidate the cache.
//!
//! Install it once, before connections are made (a pool's included), and write Diesel code
//! as usual:
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use diesel::Connection;
//! use querycache::{Cache, orm::diesel::CacheInstrumentation};
//!
//! let cache = Cache::new();
//! // Every connection established from now on (r2d2's too) reports to `cache`...
//! querycache::orm::diesel::install_default(&cache)?;
//! # #[cfg(any())] {
//! let mut conn = diesel::PgConnection::establish("postgres://localhost/app")?;
//! // ...or one connection at a time:
//! conn.set_instrumentation(CacheInstrumentation::new(cache.clone()));
//! # }
//! # Ok(()) }
//! ```
//!
//! What it sees, and what it does:
//!
//! * **Every statement**: `insert_into`, `update`, `delete`, `diesel::sql_query(..).execute`,
//!   `batch_execute`, `replace_into`, upserts, `RETURNING` forms, whatever builds them. The
//!   SQL is classified by the same parser as SeaORM's (`model:<table>` tags, the same for
//!   both ORMs), with bound integer and string values used as row ids.
//! * **Outside a transaction**, a write's tags are invalidated when the statement has
//!   finished, before Diesel hands its result back.
//! * **Inside a transaction** (`conn.transaction(..)`, `build_transaction()`, `begin_test_transaction`,
//!   and a raw `BEGIN` ... `COMMIT` sent as SQL), tags are recorded and invalidated only after
//!   the outermost `COMMIT` has succeeded. Diesel reports `CommitTransaction` *before* it
//!   runs `COMMIT`, so the invalidation waits for the statement that follows the event; a
//!   rollback discards the tags; a savepoint's tags move to its parent when it is released.
//!   A `COMMIT` that fails invalidates anyway: whether it took effect is not known, and an
//!   extra invalidation costs only a recomputation.
//! * Cached reads (`#[cached_query]`) given a connection that is inside a transaction bypass
//!   the cache for the tables the transaction wrote, and never store what they compute.
//! * A statement that cannot be classified invalidates every model tag, with a warning.
//!
//! Not seen: writes by other processes or by triggers (declare those dependencies), and
//! statements of a connection whose instrumentation slot was given to something else
//! afterwards (Diesel has one slot per connection: chain other instrumentations with
//! [`CacheInstrumentation::chain`] instead).
//!
//! The cost: Diesel renders each statement's text for the hook (a few microseconds per
//! statement, reads included), and a write waits for its invalidation (memory: atomic
//! stores; Redis: one round trip).

mod debug;

use std::sync::Arc;

use diesel::connection::{Connection, Instrumentation, InstrumentationEvent, TransactionManager};

use super::TxState;
use crate::Cache;
use crate::Tag;
use crate::blocking::Bridge;
use crate::write::PendingWrites;

/// A Diesel [`Instrumentation`] that turns the connection's writes into invalidations of a
/// [`Cache`]. One per connection (Diesel's instrumentation slot holds one value).
///
/// ```
/// use diesel::{Connection, RunQueryDsl, SqliteConnection};
/// use querycache::{Cache, EntryOptions, Tag, orm::diesel::CacheInstrumentation};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cache = Cache::new();
/// let mut conn = SqliteConnection::establish(":memory:")?;
/// conn.set_instrumentation(CacheInstrumentation::new(cache.clone()));
/// diesel::sql_query("CREATE TABLE songs (id INTEGER PRIMARY KEY, title TEXT)").execute(&mut conn)?;
///
/// cache.set_blocking("songs:count", 0_u64, EntryOptions::new().tag(Tag::model("songs")))?;
/// diesel::sql_query("INSERT INTO songs (title) VALUES ('Blue')").execute(&mut conn)?;
/// assert!(cache.get_blocking::<u64>("songs:count").is_none(), "the insert invalidated it");
/// # Ok(()) }
/// ```
pub struct CacheInstrumentation {
    cache: Cache,
    /// One entry per open transaction level, outermost first.
    levels: Vec<Arc<PendingWrites>>,
    /// A transaction event whose statement has not finished yet.
    control: Option<Control>,
    /// Another instrumentation that sees every event after this one.
    next: Option<Box<dyn Instrumentation>>,
}

/// What the statement after a transaction event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Begin,
    Commit,
    Rollback,
}

impl std::fmt::Debug for CacheInstrumentation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheInstrumentation")
            .field("transaction_depth", &self.levels.len())
            .field("chained", &self.next.is_some())
            .finish_non_exhaustive()
    }
}

impl CacheInstrumentation {
    /// Writes invalidate `cache`.
    ///
    /// ```
    /// let instrumentation = querycache::orm::diesel::CacheInstrumentation::new(querycache::Cache::new());
    /// # let _ = instrumentation;
    /// ```
    pub fn new(cache: Cache) -> Self {
        CacheInstrumentation {
            cache,
            levels: Vec::new(),
            control: None,
            next: None,
        }
    }

    /// Writes invalidate the [global](crate::global) cache.
    ///
    /// ```
    /// let instrumentation = querycache::orm::diesel::CacheInstrumentation::with_global_cache();
    /// # let _ = instrumentation;
    /// ```
    pub fn with_global_cache() -> Self {
        Self::new(crate::global().clone())
    }

    /// Passes every event on to `next` too (a logger, a metrics hook): a connection holds
    /// one instrumentation, so this is how several share it.
    ///
    /// ```
    /// use querycache::{Cache, orm::diesel::CacheInstrumentation};
    ///
    /// let logging = |event: diesel::connection::InstrumentationEvent<'_>| {
    ///     tracing::trace!(?event, "diesel");
    /// };
    /// let instrumentation = CacheInstrumentation::new(Cache::new()).chain(logging);
    /// # let _ = instrumentation;
    /// ```
    pub fn chain(mut self, next: impl Instrumentation) -> Self {
        self.next = Some(Box::new(next));
        self
    }

    /// The cache this instrumentation invalidates.
    ///
    /// ```
    /// let cache = querycache::Cache::new();
    /// let instrumentation = querycache::orm::diesel::CacheInstrumentation::new(cache.clone());
    /// assert!(std::ptr::eq(instrumentation.cache().config(), cache.config()));
    /// ```
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// What the connection's transaction says about a cached read.
    fn tx_state(&self) -> TxState {
        match self.levels.last() {
            Some(level) => TxState::Tracked(Arc::clone(level)),
            None => TxState::None,
        }
    }

    fn finished(&mut self, query: &dyn diesel::connection::DebugQuery, ok: bool) {
        if let Some(control) = self.control.take() {
            self.transaction_step(control, ok);
            return;
        }
        let statement = debug::Statement::read(query);
        // A transaction driven by raw SQL rather than Diesel's transaction manager.
        if let Some(control) = raw_control(&statement.sql) {
            if control == Control::Begin && !self.levels.is_empty() {
                // Ignored by the database (PostgreSQL warns, SQLite errors).
            } else {
                self.transaction_step(control, ok);
            }
            return;
        }
        let binds = std::cell::OnceCell::new();
        let param = |i: usize| {
            let binds = binds.get_or_init(|| statement.binds());
            binds.get(i).cloned().flatten()
        };
        // Invalidate even when the statement failed: a multi-statement text may have
        // written part of its work before the error.
        let Some(tags) = super::written::written_tags(&statement.sql, &param, || None) else {
            return;
        };
        match self.levels.last() {
            // With the declared dependencies, so that the transaction's own cached reads of
            // a table its triggers write bypass the cache too.
            Some(level) => level.record(&self.cache.with_table_dependencies(tags)),
            None => self.invalidate(tags),
        }
    }

    /// The statement of a transaction event finished (`ok`: without error).
    fn transaction_step(&mut self, control: Control, ok: bool) {
        match control {
            Control::Begin => {
                if ok {
                    let level = match self.levels.last() {
                        Some(parent) => PendingWrites::child(Arc::clone(parent)),
                        None => PendingWrites::default(),
                    };
                    self.levels.push(Arc::new(level));
                }
            }
            Control::Commit => {
                let Some(level) = self.levels.pop() else {
                    return;
                };
                match self.levels.last() {
                    // COMMIT (or its failure: the outcome is unknown, so invalidate).
                    None => self.invalidate(level.take()),
                    Some(parent) if ok => level.merge_into(parent),
                    // RELEASE SAVEPOINT failed: the level is still open.
                    Some(_) => self.levels.push(level),
                }
            }
            Control::Rollback => {
                let Some(level) = self.levels.pop() else {
                    return;
                };
                if !ok {
                    // A failed rollback leaves the writes' fate open: keep them for the
                    // enclosing level, or invalidate them at the top.
                    match self.levels.last() {
                        Some(parent) => level.merge_into(parent),
                        None => self.invalidate(level.take()),
                    }
                }
            }
        }
    }

    /// Brings the levels in line with Diesel's depth (`open` levels before the event's
    /// statement runs), after events this instrumentation did not see: installed inside a
    /// transaction, or a level the connection closed by itself (SQLite ends a transaction
    /// on some errors).
    fn resync(&mut self, open: usize) {
        while self.levels.len() > open {
            let Some(level) = self.levels.pop() else {
                break;
            };
            match self.levels.last() {
                Some(parent) => level.merge_into(parent),
                // Whether they committed is not known: invalidate, after the fact.
                None => self.invalidate(level.take()),
            }
        }
        while self.levels.len() < open {
            let level = match self.levels.last() {
                Some(parent) => PendingWrites::child(Arc::clone(parent)),
                None => PendingWrites::default(),
            };
            self.levels.push(Arc::new(level));
        }
    }

    /// Invalidates `tags` now, waiting for it.
    fn invalidate(&self, tags: Vec<Tag>) {
        if tags.is_empty() {
            return;
        }
        let cache = self.cache.clone();
        Bridge::current().wait(async move {
            cache.invalidate_written(tags).await;
        });
    }
}

impl Instrumentation for CacheInstrumentation {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match &event {
            InstrumentationEvent::BeginTransaction { depth, .. } => {
                self.resync(depth.get().saturating_sub(1) as usize);
                self.control = Some(Control::Begin);
            }
            InstrumentationEvent::CommitTransaction { depth, .. } => {
                self.resync(depth.get() as usize);
                self.control = Some(Control::Commit);
            }
            InstrumentationEvent::RollbackTransaction { depth, .. } => {
                self.resync(depth.get() as usize);
                self.control = Some(Control::Rollback);
            }
            InstrumentationEvent::FinishQuery { query, error, .. } => {
                self.finished(*query, error.is_none());
            }
            _ => {}
        }
        if let Some(next) = &mut self.next {
            next.on_connection_event(event);
        }
    }
}

/// A single transaction-control statement sent as raw SQL.
fn raw_control(sql: &str) -> Option<Control> {
    // Every statement comes here: most leave at their first word, without a scan or an
    // allocation.
    let first = sql.split_ascii_whitespace().next()?;
    let first = first.strip_suffix(';').unwrap_or(first);
    if !["BEGIN", "START", "COMMIT", "END", "ROLLBACK"]
        .iter()
        .any(|word| first.eq_ignore_ascii_case(word))
    {
        return None;
    }
    let text = sql.trim().trim_end_matches(';').trim_end();
    if text.contains(';') {
        return None;
    }
    let mut words = text.split_ascii_whitespace().map(str::to_ascii_uppercase);
    let first = words.next()?;
    let second = words.next();
    match (first.as_str(), second.as_deref()) {
        (
            "BEGIN",
            None
            | Some(
                "TRANSACTION" | "WORK" | "DEFERRED" | "IMMEDIATE" | "EXCLUSIVE" | "ISOLATION"
                | "READ",
            ),
        ) => Some(Control::Begin),
        ("START", Some("TRANSACTION")) => Some(Control::Begin),
        ("COMMIT" | "END", None | Some("TRANSACTION" | "WORK")) => Some(Control::Commit),
        ("ROLLBACK", None | Some("TRANSACTION" | "WORK")) => match words.next().as_deref() {
            // `ROLLBACK TRANSACTION TO SAVEPOINT x` is not the end of the transaction.
            Some("TO") => None,
            _ => Some(Control::Rollback),
        },
        _ => None,
    }
}

/// Every connection established from now on gets a [`CacheInstrumentation`] for `cache`
/// (Diesel's default instrumentation: `PgConnection::establish`, `SqliteConnection::establish`,
/// r2d2 pools...). Connections that exist already are not changed.
///
/// ```
/// use diesel::{Connection, RunQueryDsl, SqliteConnection};
/// use querycache::{Cache, EntryOptions, Tag};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cache = Cache::new();
/// querycache::orm::diesel::install_default(&cache)?;
/// let mut conn = SqliteConnection::establish(":memory:")?;
/// diesel::sql_query("CREATE TABLE songs (id INTEGER PRIMARY KEY)").execute(&mut conn)?;
/// cache.set_blocking("n", 0_u64, EntryOptions::new().tag(Tag::model("songs")))?;
/// diesel::sql_query("DELETE FROM songs").execute(&mut conn)?;
/// assert!(cache.get_blocking::<u64>("n").is_none());
/// # Ok(()) }
/// ```
///
/// # Errors
/// Diesel's, when its global default cannot be set (a poisoned lock).
pub fn install_default(cache: &Cache) -> Result<(), diesel::result::Error> {
    *DEFAULT_CACHE.write() = Some(cache.clone());
    diesel::connection::set_default_instrumentation(default_instrumentation)
}

/// The cache of [`install_default`]: Diesel's default is a plain `fn`, which cannot hold it.
static DEFAULT_CACHE: parking_lot::RwLock<Option<Cache>> = parking_lot::RwLock::new(None);

fn default_instrumentation() -> Option<Box<dyn Instrumentation>> {
    let cache = DEFAULT_CACHE.read().clone()?;
    Some(Box::new(CacheInstrumentation::new(cache)))
}

/// What a Diesel connection passed to a cached function says about transactions.
pub(crate) fn tx_state<C: Connection>(conn: &mut C) -> TxState {
    if let Some(state) = instrumented_state(conn.instrumentation()) {
        return state;
    }
    let status =
        <C::TransactionManager as TransactionManager<C>>::transaction_manager_status_mut(conn);
    untracked_state(status)
}

/// What a diesel-async connection passed to a cached function says about transactions.
#[cfg(feature = "diesel-async")]
pub(crate) fn async_tx_state<C: diesel_async::AsyncConnection>(conn: &mut C) -> TxState {
    if let Some(state) = instrumented_state(conn.instrumentation()) {
        return state;
    }
    let status =
        <C::TransactionManager as diesel_async::TransactionManager<C>>::transaction_manager_status_mut(conn);
    untracked_state(status)
}

/// The state kept by the connection's [`CacheInstrumentation`], if it has one.
fn instrumented_state(instrumentation: &mut dyn Instrumentation) -> Option<TxState> {
    let ours = match instrumentation.downcast_ref::<CacheInstrumentation>() {
        Some(ours) => Some(ours),
        // Boxed once more by a caller who passed a `Box<dyn Instrumentation>`.
        None => instrumentation
            .downcast_ref::<Box<dyn Instrumentation>>()
            .and_then(|boxed| boxed.downcast_ref::<CacheInstrumentation>()),
    };
    ours.map(CacheInstrumentation::tx_state)
}

/// A connection without querycache's instrumentation: its transaction manager says whether
/// it is inside a transaction, whose writes querycache cannot see.
fn untracked_state(status: &mut diesel::connection::TransactionManagerStatus) -> TxState {
    warn_uninstrumented();
    match status.transaction_depth() {
        Ok(None) => TxState::None,
        // In a transaction whose writes are not seen, or a broken one.
        Ok(Some(_)) | Err(_) => TxState::Untracked,
    }
}

/// Says once per process that a connection without querycache's instrumentation reached a
/// cached function: its writes are not seen.
fn warn_uninstrumented() {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            "a Diesel connection without querycache's instrumentation was passed to a cached \
             function: writes made through it do not invalidate the cache (see \
             querycache::orm::diesel::install_default)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_transaction_statements() {
        assert_eq!(raw_control("BEGIN"), Some(Control::Begin));
        assert_eq!(raw_control("begin immediate;"), Some(Control::Begin));
        assert_eq!(
            raw_control("START TRANSACTION READ ONLY"),
            Some(Control::Begin)
        );
        assert_eq!(raw_control(" COMMIT ; "), Some(Control::Commit));
        assert_eq!(raw_control("end"), Some(Control::Commit));
        assert_eq!(raw_control("ROLLBACK"), Some(Control::Rollback));
        assert_eq!(raw_control("ROLLBACK TO SAVEPOINT a"), None);
        assert_eq!(raw_control("ROLLBACK TRANSACTION TO SAVEPOINT a"), None);
        assert_eq!(raw_control("BEGIN; UPDATE t SET a = 1; COMMIT"), None);
        assert_eq!(
            raw_control("BEGIN NOT ATOMIC UPDATE t SET a = 1; END"),
            None
        );
        assert_eq!(raw_control("SELECT 1"), None);
    }
}
