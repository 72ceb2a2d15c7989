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
//!   both ORMs), with bound integer, string and UUID values used as row ids. Rows are
//!   pinned by each table's primary key as the database's catalog gives it (`song_id`,
//!   `uuid`, `(tenant_id, id)`), learnt when a cached call is first given the connection
//!   (or at [`identify`]); until then the key is guessed to be `id` (see `orm::catalog`).
//! * **Outside a transaction**, a write's tags are invalidated when the statement has
//!   finished, before Diesel hands its result back.
//! * **Inside a transaction** (`conn.transaction(..)`, `build_transaction()`, `begin_test_transaction`,
//!   and raw transaction control sent as SQL), tags are recorded and invalidated only after
//!   the outermost `COMMIT` has succeeded. Diesel reports `CommitTransaction` *before* it
//!   runs `COMMIT`, so the invalidation waits for the statement that follows the event; a
//!   rollback discards the tags; a savepoint's tags move to its parent when it is released.
//!   A `COMMIT` that fails invalidates anyway: whether it took effect is not known, and an
//!   extra invalidation costs only a recomputation.
//! * **Raw transaction control** is followed statement by statement: each text is split by
//!   the classifier's lexer (`querycache_sql::transaction_walk`), so `BEGIN; UPDATE ..` opens a level and
//!   records the write in it, `UPDATE ..; COMMIT` records then commits, and `COMMIT -- done`,
//!   `END`, `ABORT`, `AND CHAIN`, raw savepoints, `PREPARE TRANSACTION` / `COMMIT PREPARED`,
//!   MySQL's `XA` and `SET autocommit` are placed (the README lists them). What cannot be
//!   placed — an unknown control statement, a failed text with control, one the dialects
//!   read differently — puts the connection in doubt: writes are invalidated at once and
//!   again at each transaction end, reads bypass the cache, until a COMMIT or ROLLBACK
//!   succeeds. Diesel's own depth only counts Diesel's levels: a raw `BEGIN` then
//!   `conn.transaction(..)` keeps the raw level until the real end.
//! * **Cancellation** (diesel-async): writes are classified at `StartQuery` and invalidated
//!   at `FinishQuery`; a statement whose `FinishQuery` never comes (its future was
//!   dropped) is invalidated at the next statement's end or when the instrumentation is
//!   dropped (a pool discards such a connection), together with every level still open: an
//!   unknown outcome invalidates.
//! * [`invalidate_tags`] declares a write the cache cannot see, on behalf of the
//!   connection's transaction: now, and again after its outermost `COMMIT`.
//! * Cached reads (`#[cached_query]`) given a connection that is inside a transaction bypass
//!   the cache once the transaction has written anything, and never store what they
//!   compute; a computation of `Cache::get_or_compute` and its kin that reads inside a
//!   transaction returns its value without storing it.
//! * A statement that cannot be classified invalidates every model tag, with a warning.
//! * **Several databases on one cache**: a connection learns which database it talks to
//!   with one query, the first time a cached call is given it (or at [`identify`]), the
//!   same query as SeaORM's; connections established with one URL while
//!   [`install_default`] is in force share the answer. One database is the cache's
//!   default (its keys and tags as they are), every other one gets keys and model tags of
//!   its own (`model:@<hash>/<table>`); a named instrumentation
//!   ([`CacheInstrumentation::database`]) uses `@<name>`. Until a connection's database is
//!   known, its writes invalidate the written tables' entries in every database.
//!
//! * **Views and cascading foreign keys** come from the catalog, asked with the primary
//!   keys: a read of a view depends on its tables, a write reaches the views over what it
//!   writes and the tables its foreign keys' actions write (see the README). Until a
//!   connection has asked, its writes invalidate every model tag (`model:#all`, with a
//!   warning): call [`identify`] at startup on a connection of each database when writes go
//!   through connections never given to a cached call.
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
mod identity;

#[cfg(feature = "diesel-async")]
pub(crate) use identity::identified_async_database_of;
pub(crate) use identity::identified_database_of;
pub use identity::{Identity, identify};

use std::sync::Arc;

use diesel::connection::{Connection, Instrumentation, InstrumentationEvent, TransactionManager};
use querycache_sql::{Control, Step, transaction_walk};

use super::TxState;
use super::catalog::CatalogView;
use super::written::written_tags;
use crate::Cache;
use crate::Tag;
use crate::cache::databases::{self, CallDatabase, DatabaseId, Namespace};
use crate::cache::observe::{Observation, Relay};
use crate::orm::write::PendingWrites;
use crate::runtime::Bridge;

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
    levels: Vec<Level>,
    /// A transaction event whose statement has not finished yet.
    control: Option<EventControl>,
    /// The statement that has started and not finished yet.
    in_flight: Option<InFlight>,
    /// Tags of statements that started and never reported finishing (their future was
    /// dropped): invalidated when the connection's next statement finishes (the database
    /// runs a connection's statements in order) and when the connection is dropped.
    orphans: Vec<Tag>,
    /// Set when what the database's transaction state is cannot be known (a failed or
    /// unreadable text with transaction control, a control statement not understood): every
    /// write is then invalidated at once *and* kept here, to be invalidated again at every
    /// transaction end, until a successful `COMMIT` / `ROLLBACK` proves no transaction is
    /// open. Reads through the connection bypass the cache meanwhile.
    doubt: Option<Vec<Tag>>,
    /// `SET autocommit = 0` (MySQL): a new transaction opens after each end.
    manual_commit: bool,
    /// Another instrumentation that sees every event after this one.
    next: Option<Box<dyn Instrumentation>>,
    /// The connection's database in the cache: named ([`CacheInstrumentation::database`]),
    /// or learnt by the identity query (see `identity`), shared by every connection
    /// established with the same URL.
    database: Arc<DatabaseId>,
    /// Whether `database` was named by the user (the URL then does not replace it).
    named: bool,
    /// Tells this connection from other anonymous (in-memory SQLite) ones.
    wrapper: u64,
    /// The computation a cached call lent the connection (see `cache::observe::Relay`).
    relay: Arc<Relay>,
}

/// One open transaction level.
struct Level {
    writes: Arc<PendingWrites>,
    /// Explicit invalidations made on behalf of this level ([`invalidate_tags`]), repeated
    /// after the outermost `COMMIT`.
    explicit: Vec<Tag>,
    opened: Opened,
}

/// Who opened a level.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Opened {
    /// Diesel's transaction manager (a `BeginTransaction` event).
    Diesel,
    /// Raw SQL: `BEGIN`, `START TRANSACTION`, `COMMIT AND CHAIN`...
    Raw,
    /// Raw SQL: `SAVEPOINT name`.
    Savepoint(String),
}

/// A Diesel transaction event and the depth it reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EventControl {
    kind: Managed,
    depth: u32,
    /// Its statement has started.
    started: bool,
}

/// What the statement after a transaction event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Managed {
    Begin,
    Commit,
    Rollback,
}

/// A statement that has started.
enum InFlight {
    /// A write outside any transaction: invalidated when it finishes.
    Autocommit(Vec<Tag>),
    /// A write already recorded in the open transaction level, or a read (observed, inside
    /// a computation, as it started): nothing to do when it finishes.
    Recorded,
    /// A text with transaction control, applied statement by statement when it finishes;
    /// `tags`: everything it may write.
    Walk { sql: String, tags: Vec<Tag> },
}

impl std::fmt::Debug for CacheInstrumentation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheInstrumentation")
            .field("transaction_depth", &self.levels.len())
            .field("in_doubt", &self.doubt.is_some())
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
            in_flight: None,
            orphans: Vec::new(),
            doubt: None,
            manual_commit: false,
            next: None,
            database: Arc::new(DatabaseId::default()),
            named: false,
            wrapper: crate::orm::identity::next_wrapper(),
            relay: Arc::default(),
        }
    }

    /// Names the connection's database in the cache: the keys of cached calls given the
    /// connection start with `@<name>/`, and its writes bump `model:@<name>/<table>`. Without
    /// a name a connection learns its database with one query (see the module docs); a name
    /// is needed for databases that cannot be told apart (in-memory SQLite), and gives keys
    /// and tags that do not depend on the database's address (give the same name to a
    /// SeaORM connection to the same database).
    ///
    /// ```
    /// use querycache::{Cache, orm::diesel::CacheInstrumentation};
    ///
    /// let tenant = CacheInstrumentation::new(Cache::new()).database("tenant_42").unwrap();
    /// assert!(CacheInstrumentation::new(Cache::new()).database("tenant#42").is_err());
    /// # let _ = tenant;
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidName`](crate::Error::InvalidName) when `name` is empty, longer than
    /// 64 bytes, or holds anything but ASCII letters, digits, `_`, `-` and `.`.
    pub fn database(mut self, name: &str) -> Result<Self, crate::Error> {
        self.database = Arc::new(DatabaseId::settled(databases::named(name)?));
        self.named = true;
        Ok(self)
    }

    /// The namespace of the connection's database, for its writes; `None` while it is not
    /// known (no cached call was given the connection yet, see [`identify`]): its writes
    /// then reach the written tables' entries in every database.
    fn namespace(&self) -> Option<Namespace> {
        self.database.get().cloned()
    }

    /// Whether no transaction level is open as the instrumentation sees it (raw ones
    /// included) and the connection is not in doubt.
    fn outside_levels(&self) -> bool {
        self.levels.is_empty() && self.doubt.is_none() && !self.manual_commit
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
        if self.doubt.is_some() {
            // Perhaps inside a transaction nobody can see into.
            return TxState::Untracked;
        }
        match self.levels.last() {
            Some(level) => TxState::Tracked(Arc::clone(&level.writes)),
            None => TxState::None,
        }
    }

    /// Records an explicit invalidation on behalf of the open transaction, if any, to be
    /// repeated after its outermost `COMMIT`.
    fn record_explicit(&mut self, tags: &[Tag]) {
        if let Some(level) = self.levels.last_mut() {
            level.explicit.extend(tags.iter().cloned());
        }
    }

    // -- events ---------------------------------------------------------------------------

    /// A Diesel transaction event: its statement comes next.
    fn managed_event(&mut self, kind: Managed, depth: u32) {
        self.abandon_in_flight();
        if let Some(before) = self.control.take() {
            // The statement of the previous event never finished (its future was dropped).
            self.transaction_step(before, false);
            self.enter_doubt(Vec::new());
        }
        let open = match kind {
            Managed::Begin => depth.saturating_sub(1),
            Managed::Commit | Managed::Rollback => depth,
        };
        self.resync(open as usize);
        self.control = Some(EventControl {
            kind,
            depth,
            started: false,
        });
    }

    fn started(&mut self, query: &dyn diesel::connection::DebugQuery) {
        if let Some(control) = &mut self.control {
            if !control.started {
                control.started = true;
                return;
            }
            // A second statement after one transaction event: the first never finished.
            if let Some(before) = self.control.take() {
                self.transaction_step(before, false);
                self.enter_doubt(Vec::new());
            }
        }
        self.abandon_in_flight();
        let statement = debug::Statement::read(query);
        self.in_flight = Some(self.begin_statement(&statement));
    }

    fn finished(&mut self, query: &dyn diesel::connection::DebugQuery, ok: bool) {
        if let Some(control) = self.control.take() {
            self.transaction_step(control, ok);
        } else {
            let in_flight = match self.in_flight.take() {
                Some(in_flight) => Some(in_flight),
                // Installed while the statement ran, or a connection that reports only
                // finished statements.
                None => {
                    let statement = debug::Statement::read(query);
                    self.missed_start(&statement.sql);
                    Some(self.begin_statement(&statement))
                }
            };
            match in_flight {
                None | Some(InFlight::Recorded) => {}
                // Invalidate even when the statement failed: a multi-statement text may
                // have written part of its work before the error.
                Some(InFlight::Autocommit(tags)) => self.write(tags),
                Some(InFlight::Walk { sql, tags }) => self.apply_walk(&sql, tags, ok),
            }
        }
        // Statements cut off before this one have finished by now.
        let orphans = std::mem::take(&mut self.orphans);
        self.invalidate(orphans);
    }

    /// Classifies a statement as it starts. A read inside an entry's computation is
    /// observed at once; a write inside a transaction is recorded at once; one outside is
    /// invalidated when it finishes — or, if its future is dropped
    /// before that (diesel-async), when the connection's next statement finishes or the
    /// connection is dropped.
    fn begin_statement(&mut self, statement: &debug::Statement) -> InFlight {
        super::note_locking_read(&statement.sql);
        let none = |_: usize| None;
        let keys = self.database.catalog.view();
        if self.walks(&statement.sql) {
            let tags = written_tags(&statement.sql, &none, &keys, |_, _| None).unwrap_or_default();
            return InFlight::Walk {
                sql: statement.sql.clone(),
                tags,
            };
        }
        let binds = std::cell::OnceCell::new();
        let param = |i: usize| {
            let binds = binds.get_or_init(|| statement.binds());
            binds.get(i).cloned().flatten()
        };
        let Some(tags) = written_tags(&statement.sql, &param, &keys, |_, _| None) else {
            if self.outside_levels() {
                self.observe_read(&statement.sql, &param, &keys);
            } else {
                super::note_read_in_transaction(&statement.sql);
            }
            return InFlight::Recorded;
        };
        if self.doubt.is_none()
            && let Some(level) = self.levels.last()
        {
            // With the declared dependencies, so that the transaction's own cached reads of
            // a table its triggers write bypass the cache too.
            level
                .writes
                .record(&self.cache.with_table_dependencies(tags));
            return InFlight::Recorded;
        }
        InFlight::Autocommit(tags)
    }

    /// The computation this statement is sent for, if any: the one running on this
    /// thread or task, else the one a cached call lent the connection (statements run on a
    /// thread of their own, as `SyncConnectionWrapper` runs them).
    fn observation(&self) -> Option<Arc<Observation>> {
        crate::store::observation().or_else(|| self.relay.current())
    }

    /// Inside an entry's computation, before a read is sent: reports what it reads (see
    /// `cache::observe`), in this connection's database, and waits until the versions of
    /// its tags are read.
    fn observe_read(
        &self,
        sql: &str,
        param: &dyn Fn(usize) -> Option<querycache_sql::Bound>,
        keys: &CatalogView<'_>,
    ) {
        let Some(observation) = self.observation() else {
            return;
        };
        match crate::orm::observed::read_tags(sql, param, keys) {
            Ok(tags) if tags.is_empty() => {}
            Ok(tags) => {
                let tags = databases::read_tags_in(self.namespace().as_ref(), tags);
                observation.audit(&tags, sql);
                Bridge::current().wait(async move { observation.before_read(tags).await });
            }
            Err(why) => {
                let why = crate::orm::observed::unreadable(&why, sql);
                Bridge::current().wait(async move { observation.unreadable(why).await });
            }
        }
    }

    /// A statement is reported only once it has finished: inside an entry's computation,
    /// the versions of what it read can no longer be read before it ran, so the value must
    /// not be stored.
    fn missed_start(&self, sql: &str) {
        let Some(observation) = self.observation() else {
            return;
        };
        let why = format!(
            "its start was not reported (the instrumentation was installed while it ran): {}",
            sql.chars().take(200).collect::<String>()
        );
        Bridge::current().wait(async move { observation.unreadable(why).await });
    }

    /// A statement started and the next event came without its `FinishQuery`: its future
    /// was dropped, and the database may still be running it.
    fn abandon_in_flight(&mut self) {
        match self.in_flight.take() {
            None | Some(InFlight::Recorded) => {}
            Some(InFlight::Autocommit(tags)) => self.orphans.extend(tags),
            Some(InFlight::Walk { tags, .. }) => {
                self.orphans.extend(tags.iter().cloned());
                self.enter_doubt(tags);
            }
        }
    }

    /// A write's tags, where they belong now.
    fn write(&mut self, tags: Vec<Tag>) {
        if let Some(doubt) = &mut self.doubt {
            doubt.extend(tags.iter().cloned());
            if let Some(level) = self.levels.last() {
                level
                    .writes
                    .record(&self.cache.with_table_dependencies(tags.clone()));
            }
            self.invalidate(tags);
            return;
        }
        match self.levels.last() {
            Some(level) => level
                .writes
                .record(&self.cache.with_table_dependencies(tags)),
            None => self.invalidate(tags),
        }
    }

    // -- transaction levels -----------------------------------------------------------------

    fn push(&mut self, opened: Opened) {
        let writes = match self.levels.last() {
            Some(parent) => PendingWrites::child(Arc::clone(&parent.writes)),
            None => PendingWrites::default(),
        };
        self.levels.push(Level {
            writes: Arc::new(writes),
            explicit: Vec::new(),
            opened,
        });
    }

    /// Closes `levels[from..]` into the level below (a savepoint released), or, for
    /// `from == 0`, closes them all and returns what they recorded: (writes, explicit).
    fn close_from(&mut self, from: usize) -> (Vec<Tag>, Vec<Tag>) {
        let closed: Vec<Level> = self.levels.drain(from.min(self.levels.len())..).collect();
        match self.levels.last_mut() {
            Some(parent) => {
                for level in closed {
                    level.writes.merge_into(&parent.writes);
                    parent.explicit.extend(level.explicit);
                }
                (Vec::new(), Vec::new())
            }
            None => {
                let mut writes = Vec::new();
                let mut explicit = Vec::new();
                for level in closed {
                    writes.extend(level.writes.take());
                    explicit.extend(level.explicit);
                }
                (writes, explicit)
            }
        }
    }

    /// Every level closes with its writes committed (or their fate unknown): invalidate.
    fn commit_all(&mut self) {
        let (writes, explicit) = self.close_from(0);
        self.invalidate(writes);
        self.invalidate_explicit(explicit);
    }

    /// Every level closes, rolled back.
    fn rollback_all(&mut self) {
        self.levels.clear();
    }

    /// Everything recorded by the open levels, left in place.
    fn pending_tags(&self) -> Vec<Tag> {
        self.levels
            .iter()
            .flat_map(|level| {
                level
                    .writes
                    .tags()
                    .into_iter()
                    .chain(level.explicit.clone())
            })
            .collect()
    }

    /// The index of the innermost level Diesel opened.
    fn top_diesel(&self) -> Option<usize> {
        self.levels
            .iter()
            .rposition(|level| level.opened == Opened::Diesel)
    }

    /// A transaction ended (`full`: no transaction is open any more, if `ok`): writes made
    /// while in doubt are invalidated again, and a full successful end settles the doubt.
    fn ended(&mut self, full: bool, ok: bool) {
        if let Some(doubt) = self.doubt.clone() {
            self.invalidate(doubt);
            if full && ok {
                self.doubt = None;
            }
        }
    }

    /// The statement of a Diesel transaction event finished (`ok`: without error).
    fn transaction_step(&mut self, control: EventControl, ok: bool) {
        let top_level = control.depth <= 1;
        match control.kind {
            Managed::Begin => {
                if ok {
                    if top_level && !self.levels.is_empty() {
                        // BEGIN inside a raw transaction: PostgreSQL ignores it, MySQL
                        // commits the open transaction first.
                        let tags = self.pending_tags();
                        self.invalidate(tags);
                    }
                    self.push(Opened::Diesel);
                }
            }
            Managed::Commit if top_level => {
                // Whatever raw levels lie below, the database's transaction is over (or,
                // if COMMIT failed, its outcome is unknown): invalidate.
                self.commit_all();
                self.ended(true, ok);
            }
            Managed::Commit => {
                // RELEASE SAVEPOINT; when it failed, the level is still open.
                if ok && let Some(at) = self.top_diesel() {
                    self.close_from(at.max(1));
                }
                self.ended(false, ok);
            }
            Managed::Rollback if top_level => {
                if ok {
                    self.rollback_all();
                } else {
                    // A failed rollback leaves the writes' fate open.
                    self.commit_all();
                }
                self.ended(true, ok);
            }
            Managed::Rollback => {
                if let Some(at) = self.top_diesel() {
                    if ok {
                        self.levels.truncate(at.max(1));
                    } else {
                        self.close_from(at.max(1));
                    }
                }
                self.ended(false, ok);
            }
        }
    }

    /// Whether `sql` is followed statement by statement: it holds transaction control,
    /// other than the implicit commits of DDL outside any transaction (which end nothing).
    fn walks(&self, sql: &str) -> bool {
        self.walk(sql).is_some()
    }

    /// The walk of `sql`, when it is to be followed (see [`walks`](Self::walks)).
    fn walk<'s>(&self, sql: &'s str) -> Option<querycache_sql::Walk<'s>> {
        transaction_walk(sql)
            .filter(|walk| !(self.levels.is_empty() && walk.implicit_commits_only()))
    }

    /// Applies a text with transaction control, statement by statement.
    fn apply_walk(&mut self, text: &str, tags: Vec<Tag>, ok: bool) {
        let Some(walk) = self.walk(text) else {
            self.write(tags);
            return;
        };
        let doubtful = walk.doubtful || !ok;
        // Which of its statements ran is not known: everything pending may have committed.
        let mut suspect = if doubtful {
            self.pending_tags()
        } else {
            Vec::new()
        };
        let none = |_: usize| None;
        for step in walk.steps {
            match step {
                Step::Statements(statements) => {
                    let keys = self.database.catalog.view();
                    if let Some(tags) = written_tags(statements, &none, &keys, |_, _| None) {
                        self.write(tags);
                    }
                }
                Step::Control(control) => self.raw_step(control, ok),
            }
        }
        if doubtful {
            tracing::warn!(
                failed = !ok,
                "a text with transaction control failed or reads differently per dialect; \
                 invalidating its writes now and at every transaction end until a COMMIT or \
                 ROLLBACK succeeds"
            );
            suspect.extend(tags);
            suspect.extend(self.pending_tags());
            self.enter_doubt(suspect);
        }
    }

    /// One raw transaction-control statement (the text it came in finished `ok`).
    fn raw_step(&mut self, control: Control, ok: bool) {
        tracing::debug!(?control, ok, "raw transaction control");
        match control {
            Control::Begin => {
                if self.levels.is_empty() {
                    self.push(Opened::Raw);
                } else {
                    // PostgreSQL ignores it (a warning), SQLite refuses it, MySQL commits the
                    // open transaction first: invalidate now, and again at the real end.
                    let tags = self.pending_tags();
                    self.invalidate(tags);
                }
            }
            Control::Commit { chain } => {
                self.commit_all();
                self.ended(true, ok);
                if chain || self.manual_commit {
                    self.push(Opened::Raw);
                }
            }
            Control::Rollback { chain } => {
                self.rollback_all();
                self.ended(true, ok);
                if chain || self.manual_commit {
                    self.push(Opened::Raw);
                }
            }
            Control::Savepoint(name) => {
                if self.levels.is_empty() {
                    // SQLite opens a transaction; MySQL in autocommit keeps none (the writes
                    // that follow commit at once); PostgreSQL refuses.
                    self.enter_doubt(Vec::new());
                }
                self.push(Opened::Savepoint(name));
            }
            Control::Release(name) => match self.find_savepoint(&name) {
                Some(0) => {
                    // SQLite: releasing the outermost savepoint commits.
                    self.commit_all();
                    self.ended(true, ok);
                }
                Some(at) => {
                    self.close_from(at);
                    self.ended(false, ok);
                }
                None => self.unknown_control(),
            },
            Control::RollbackTo(name) => {
                // Nothing commits: the tags stay recorded (an extra invalidation at the
                // commit is harmless), the savepoints above `name` are gone.
                if let Some(at) = self.find_savepoint(&name) {
                    self.close_from(at + 1);
                }
            }
            Control::Prepare => {
                // The transaction leaves the connection; `COMMIT PREPARED` may come from
                // anywhere: invalidate now (it invalidates broadly again).
                self.commit_all();
                self.ended(true, ok);
            }
            Control::CommitPrepared => {
                // Its writes may come from another connection: everything.
                self.invalidate(vec![Tag::all_models()]);
            }
            Control::Autocommit(false) => {
                self.manual_commit = true;
                if self.levels.is_empty() {
                    self.push(Opened::Raw);
                }
            }
            Control::Autocommit(true) => {
                if self.manual_commit {
                    // MySQL commits the open transaction.
                    self.commit_all();
                    self.ended(true, ok);
                }
                self.manual_commit = false;
            }
            Control::ImplicitCommit => {
                if !self.levels.is_empty() {
                    // MySQL has committed what is pending and runs the statements that
                    // follow outside any transaction until the next BEGIN (with autocommit
                    // off, in a new one), while Diesel's depth and the levels still say
                    // "inside"; PostgreSQL and SQLite stay inside. Either way, from here on:
                    // what is pending now, and every write as it is made, invalidated at
                    // once and again at each transaction end, until one settles it.
                    tracing::debug!(
                        "a statement MySQL commits the open transaction before (DDL, LOCK \
                         TABLES...): its pending writes are invalidated now"
                    );
                    let tags = self.pending_tags();
                    self.enter_doubt(tags);
                }
            }
            Control::Neutral => {}
            Control::Unknown => self.unknown_control(),
        }
    }

    /// The innermost raw savepoint called `name`.
    fn find_savepoint(&self, name: &str) -> Option<usize> {
        self.levels
            .iter()
            .rposition(|level| matches!(&level.opened, Opened::Savepoint(n) if n == name))
    }

    /// A control statement that cannot be placed: whatever is pending may have committed.
    fn unknown_control(&mut self) {
        tracing::warn!(
            "transaction control statement not understood; invalidating the pending writes \
             now and at every transaction end until a COMMIT or ROLLBACK succeeds"
        );
        let tags = self.pending_tags();
        self.enter_doubt(tags);
    }

    /// The database's transaction state is not known any more: invalidate `tags` now, and
    /// again at every transaction end until one settles it.
    fn enter_doubt(&mut self, tags: Vec<Tag>) {
        self.invalidate(tags.clone());
        self.doubt.get_or_insert_with(Vec::new).extend(tags);
    }

    /// Brings the levels in line with Diesel's depth (`open` levels before the event's
    /// statement runs), after events this instrumentation did not see: installed inside a
    /// transaction, or a level the connection closed by itself (SQLite ends a transaction
    /// on some errors). Only Diesel's own levels count: Diesel does not know about raw ones.
    fn resync(&mut self, open: usize) {
        let diesel = |levels: &[Level]| {
            levels
                .iter()
                .filter(|level| level.opened == Opened::Diesel)
                .count()
        };
        while diesel(&self.levels) > open {
            let Some(at) = self.top_diesel() else {
                break;
            };
            // Whether they committed is not known: invalidate, after the fact.
            let (writes, explicit) = self.close_from(at);
            self.invalidate(writes);
            self.invalidate_explicit(explicit);
        }
        while diesel(&self.levels) < open {
            self.push(Opened::Diesel);
        }
    }

    /// Invalidates `tags` written through the connection now, waiting for it.
    fn invalidate(&self, tags: Vec<Tag>) {
        if tags.is_empty() {
            return;
        }
        let (cache, namespace) = (self.cache.clone(), self.namespace());
        Bridge::current().wait(async move {
            cache.invalidate_written_in(namespace.as_ref(), tags).await;
        });
    }

    /// Repeats explicit invalidations ([`invalidate_tags`]) after a commit.
    fn invalidate_explicit(&self, tags: Vec<Tag>) {
        if tags.is_empty() {
            return;
        }
        let (cache, tags) = (
            self.cache.clone(),
            databases::tags_in(self.namespace().as_ref(), tags),
        );
        Bridge::current().wait(async move {
            cache.invalidate_tags(tags).await;
        });
    }
}

impl Instrumentation for CacheInstrumentation {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match &event {
            InstrumentationEvent::BeginTransaction { depth, .. } => {
                self.managed_event(Managed::Begin, depth.get());
            }
            InstrumentationEvent::CommitTransaction { depth, .. } => {
                self.managed_event(Managed::Commit, depth.get());
            }
            InstrumentationEvent::RollbackTransaction { depth, .. } => {
                self.managed_event(Managed::Rollback, depth.get());
            }
            InstrumentationEvent::StartEstablishConnection { url, .. }
                if !self.named && !in_memory(url) =>
            {
                self.database = self.cache.database_of_url(url);
            }
            InstrumentationEvent::StartQuery { query, .. } => self.started(*query),
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

impl Drop for CacheInstrumentation {
    /// The connection is gone (closed, or dropped by a pool because a statement or a COMMIT
    /// was cut off): whatever it may have written and not invalidated yet — open levels, a
    /// statement or COMMIT that never reported finishing — has an unknown outcome, and is
    /// invalidated. Without waiting: this may run on an async worker.
    fn drop(&mut self) {
        let mut tags = self.pending_tags();
        match self.in_flight.take() {
            Some(InFlight::Autocommit(written) | InFlight::Walk { tags: written, .. }) => {
                tags.extend(written);
            }
            None | Some(InFlight::Recorded) => {}
        }
        tags.append(&mut self.orphans);
        tags.extend(self.doubt.take().unwrap_or_default());
        if !tags.is_empty() {
            tracing::debug!(tags = ?tags, "connection dropped with writes of unknown outcome");
            self.cache
                .invalidate_written_detached_in(self.namespace().as_ref(), tags);
        }
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

/// Invalidates `tags` on behalf of the connection's transaction: now, and — when `conn` is
/// inside a transaction — once more after its outermost `COMMIT`, so that a value another
/// connection re-cached from the pre-commit rows meanwhile does not survive the commit (a
/// rollback drops the repetition). For writes the cache cannot see: a function or trigger
/// that writes, called from a `SELECT`.
///
/// Returns `false`, doing nothing, when the connection has no [`CacheInstrumentation`]
/// (the tags then belong to [`Cache::invalidate_tags`] of your own cache).
///
/// ```
/// use diesel::{Connection, RunQueryDsl, SqliteConnection};
/// use querycache::{Cache, EntryOptions, Tag, orm::diesel::{CacheInstrumentation, invalidate_tags}};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cache = Cache::new();
/// let mut conn = SqliteConnection::establish(":memory:")?;
/// conn.set_instrumentation(CacheInstrumentation::new(cache.clone()));
/// conn.transaction::<_, diesel::result::Error, _>(|conn| {
///     // ... a write the cache cannot see ...
///     assert!(invalidate_tags(conn, [Tag::new("report:daily").unwrap()]));
///     // Another connection caches the pre-commit value meanwhile:
///     cache.set_blocking("report", 1_u8, EntryOptions::new().tag(Tag::new("report:daily").unwrap())).unwrap();
///     Ok(())
/// })?;
/// assert!(cache.get_blocking::<u8>("report").is_none(), "invalidated again after COMMIT");
/// # Ok(()) }
/// ```
pub fn invalidate_tags<C: Connection>(conn: &mut C, tags: impl IntoIterator<Item = Tag>) -> bool {
    let tags: Vec<Tag> = tags.into_iter().collect();
    let Some(ours) = instrumentation_mut(conn.instrumentation()) else {
        warn_uninstrumented();
        return false;
    };
    ours.record_explicit(&tags);
    ours.invalidate_explicit(tags);
    true
}

/// [`invalidate_tags`] for a diesel-async connection.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use diesel::SqliteConnection;
/// use diesel_async::{AsyncConnection, sync_connection_wrapper::SyncConnectionWrapper};
/// use querycache::{Cache, Tag, orm::diesel::{CacheInstrumentation, invalidate_tags_async}};
///
/// let cache = Cache::new();
/// let mut conn = SyncConnectionWrapper::<SqliteConnection>::establish(":memory:").await?;
/// conn.set_instrumentation(CacheInstrumentation::new(cache.clone()));
/// assert!(invalidate_tags_async(&mut conn, [Tag::new("report:daily")?]).await);
/// # Ok(()) }
/// ```
#[cfg(feature = "diesel-async")]
pub async fn invalidate_tags_async<C: diesel_async::AsyncConnection>(
    conn: &mut C,
    tags: impl IntoIterator<Item = Tag>,
) -> bool {
    let tags: Vec<Tag> = tags.into_iter().collect();
    let Some(ours) = instrumentation_mut(conn.instrumentation()) else {
        warn_uninstrumented();
        return false;
    };
    ours.record_explicit(&tags);
    let (cache, tags) = (
        ours.cache.clone(),
        databases::tags_in(ours.namespace().as_ref(), tags),
    );
    cache.invalidate_tags(tags).await;
    true
}

/// The database of a Diesel connection passed to a cached function, when its
/// instrumentation is querycache's.
pub(crate) fn database_of<C: Connection>(conn: &mut C) -> Option<CallDatabase> {
    instrumented_database(conn.instrumentation())
}

/// The database of a diesel-async connection passed to a cached function.
#[cfg(feature = "diesel-async")]
pub(crate) fn async_database_of<C: diesel_async::AsyncConnection>(
    conn: &mut C,
) -> Option<CallDatabase> {
    instrumented_database(conn.instrumentation())
}

/// Whether a diesel-async connection's database is known, or cannot be (no querycache
/// instrumentation): nothing to ask it.
#[cfg(feature = "diesel-async")]
pub(crate) fn async_database_known<C: diesel_async::AsyncConnection>(conn: &mut C) -> bool {
    instrumentation_mut(conn.instrumentation()).is_none_or(|ours| ours.database.get().is_some())
}

/// The cache a Diesel connection passed to a cached function invalidates: its
/// [`CacheInstrumentation`]'s.
pub(crate) fn cache_of<C: Connection>(conn: &mut C) -> Option<Cache> {
    instrumentation_mut(conn.instrumentation()).map(|ours| ours.cache.clone())
}

/// The same for a diesel-async connection.
#[cfg(feature = "diesel-async")]
pub(crate) fn async_cache_of<C: diesel_async::AsyncConnection>(conn: &mut C) -> Option<Cache> {
    instrumentation_mut(conn.instrumentation()).map(|ours| ours.cache.clone())
}

/// Where a Diesel connection passed to a cached function finds the computation it serves.
pub(crate) fn relay_of<C: Connection>(conn: &mut C) -> Option<Arc<Relay>> {
    instrumentation_mut(conn.instrumentation()).map(|ours| Arc::clone(&ours.relay))
}

/// The same for a diesel-async connection (whose statements may run on a thread of their
/// own: `SyncConnectionWrapper`).
#[cfg(feature = "diesel-async")]
pub(crate) fn async_relay_of<C: diesel_async::AsyncConnection>(conn: &mut C) -> Option<Arc<Relay>> {
    instrumentation_mut(conn.instrumentation()).map(|ours| Arc::clone(&ours.relay))
}

fn instrumented_database(instrumentation: &mut dyn Instrumentation) -> Option<CallDatabase> {
    instrumentation_mut(instrumentation).map(|ours| CallDatabase {
        id: Arc::clone(&ours.database),
        settle: None,
    })
}

/// Whether `url` names an in-memory SQLite database: each connection to it is a database of
/// its own, so connections established with it do not share their database.
fn in_memory(url: &str) -> bool {
    url.is_empty() || url.contains(":memory:") || url.contains("mode=memory")
}

/// The connection's [`CacheInstrumentation`], if it has one.
fn instrumentation_mut(
    instrumentation: &mut dyn Instrumentation,
) -> Option<&mut CacheInstrumentation> {
    if instrumentation.is::<CacheInstrumentation>() {
        return instrumentation.downcast_mut::<CacheInstrumentation>();
    }
    // Boxed once more by a caller who passed a `Box<dyn Instrumentation>`.
    instrumentation
        .downcast_mut::<Box<dyn Instrumentation>>()
        .and_then(|boxed| boxed.downcast_mut::<CacheInstrumentation>())
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
    instrumentation_mut(instrumentation).map(|ours| ours.tx_state())
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
