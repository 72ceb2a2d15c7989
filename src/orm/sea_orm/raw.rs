//! Raw transaction control sent through a [`CachedConnection`](super::CachedConnection):
//! texts such as `BEGIN; UPDATE ..` that leave a transaction open, and the `COMMIT` that
//! later ends it.
//!
//! A `CachedConnection` is a pool, and SeaORM runs each text on whichever of its connections
//! is free: a raw `BEGIN` and the raw `COMMIT` that follows cannot be tied to one connection.
//! A text that is a whole transaction (`BEGIN; UPDATE ..; COMMIT`) needs nothing special: it
//! is invalidated when it returns. A text that leaves a transaction open is another matter:
//! invalidated when it returns, its write is not committed yet, and a reader may cache the
//! old rows again before the COMMIT. So, fail safe, pool-wide: once a text may have left a
//! transaction open, every write sent through the connection is invalidated when it returns
//! *and* again when a later text ends a transaction (`COMMIT`, `ROLLBACK`, `END`, `ABORT`,
//! `PREPARE TRANSACTION`...), and cached reads given the connection bypass the cache (a
//! pooled connection inside that transaction would read uncommitted rows) until then.
//! Control the walk cannot place (`SAVEPOINT` forms, unknown control, a text the dialects
//! lex differently) counts as "open, and maybe ended": both apply.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use querycache_sql::{Control, Step, transaction_walk};

use crate::Tag;

/// The transaction-control statements of one text, in order.
#[derive(Debug)]
pub(super) struct Plan {
    controls: Vec<Control>,
    /// The text's control could not be read for sure.
    doubtful: bool,
    /// Its only control is MySQL's implicit commits (DDL): nothing to do unless a raw
    /// transaction may be open.
    implicit_only: bool,
}

impl Plan {
    /// The control statements of `sql`; `None` when it holds none (nearly every text).
    pub(super) fn of(sql: &str) -> Option<Plan> {
        let walk = transaction_walk(sql)?;
        let implicit_only = walk.implicit_commits_only();
        let controls = walk
            .steps
            .into_iter()
            .filter_map(|step| match step {
                Step::Control(control) => Some(control),
                Step::Statements(_) => None,
            })
            .collect();
        Some(Plan {
            controls,
            doubtful: walk.doubtful,
            implicit_only,
        })
    }
}

/// Whether a raw transaction may be open on one of the pool's connections, and what was
/// written since it opened. Shared by the clones of a `CachedConnection`.
#[derive(Debug, Default)]
pub(super) struct RawTransactions {
    /// Read on every cached call given the connection: an atomic, not the lock.
    open: AtomicBool,
    written: Mutex<BTreeSet<Tag>>,
}

impl RawTransactions {
    /// Whether a raw transaction may be open: cached reads then bypass the cache.
    pub(super) fn may_be_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// A text that wrote `written` (invalidated by the caller now) and ran `plan`'s control
    /// statements has returned. Returns what must be invalidated now besides `written`: the
    /// writes of a raw transaction the text ended.
    pub(super) fn after(&self, plan: Option<&Plan>, written: &[Tag]) -> Vec<Tag> {
        let mut pending = self.written.lock();
        let mut open = self.open.load(Ordering::Acquire);
        let mut ended = false;
        let mut everything = false;
        if let Some(plan) = plan.filter(|plan| open || !plan.implicit_only) {
            for control in &plan.controls {
                match control {
                    Control::Begin | Control::Autocommit(false) => open = true,
                    Control::Commit { chain } | Control::Rollback { chain } => {
                        ended = true;
                        open = *chain;
                    }
                    Control::Prepare | Control::Autocommit(true) => {
                        ended = true;
                        open = false;
                    }
                    // May commit a transaction prepared by any connection.
                    Control::CommitPrepared => everything = true,
                    Control::Neutral | Control::RollbackTo(_) => {}
                    // MySQL commits the open transaction first (DDL, LOCK TABLES...); with
                    // autocommit off a new one opens: whether one is open stays as it was.
                    Control::ImplicitCommit => ended = true,
                    // SQLite's SAVEPOINT outside a transaction opens one, and RELEASE of it
                    // commits: where this text stands is not known.
                    Control::Savepoint(_) | Control::Release(_) | Control::Unknown => {
                        ended = true;
                        open = true;
                    }
                }
            }
            if plan.doubtful {
                ended = true;
                open = true;
            }
        }
        let mut now: Vec<Tag> = Vec::new();
        if ended {
            now.extend(std::mem::take(&mut *pending));
        }
        if everything {
            now.push(Tag::all_models());
        }
        if open {
            if !self.open.load(Ordering::Acquire) {
                warn_left_open();
            }
            pending.extend(written.iter().cloned());
        }
        self.open.store(open, Ordering::Release);
        now
    }
}

/// Says once per process that a raw transaction was left open on a pooled connection.
fn warn_left_open() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "a text sent through a querycache CachedConnection left a transaction open (raw \
             BEGIN without its COMMIT): SeaORM may run the next texts on other pooled \
             connections. Until a later text ends a transaction, writes are invalidated now \
             and again at that end, and cached reads through the connection bypass the cache. \
             Use CachedConnection::begin() or transaction() instead"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(raw: &RawTransactions, sql: &str, written: &[Tag]) -> Vec<Tag> {
        raw.after(Plan::of(sql).as_ref(), written)
    }

    #[test]
    fn a_text_that_is_a_whole_transaction_leaves_nothing_open() {
        let raw = RawTransactions::default();
        let songs = Tag::model("songs");
        let now = after(
            &raw,
            "BEGIN; UPDATE songs SET a = 1; COMMIT",
            std::slice::from_ref(&songs),
        );
        assert!(now.is_empty());
        assert!(!raw.may_be_open());
    }

    #[test]
    fn writes_after_an_open_begin_are_invalidated_again_at_the_commit() {
        let raw = RawTransactions::default();
        let songs = Tag::model("songs");
        assert!(
            after(
                &raw,
                "BEGIN; UPDATE songs SET a = 1",
                std::slice::from_ref(&songs)
            )
            .is_empty()
        );
        assert!(raw.may_be_open());
        let users = Tag::model("users");
        assert!(after(&raw, "UPDATE users SET a = 1", std::slice::from_ref(&users)).is_empty());
        assert_eq!(after(&raw, "COMMIT -- done", &[]), vec![songs, users]);
        assert!(!raw.may_be_open());
        assert!(after(&raw, "COMMIT", &[]).is_empty(), "nothing left");
    }

    #[test]
    fn a_chained_commit_and_unknown_control_keep_it_open() {
        let raw = RawTransactions::default();
        let songs = Tag::model("songs");
        after(&raw, "BEGIN", &[]);
        after(&raw, "UPDATE songs SET a = 1", std::slice::from_ref(&songs));
        assert_eq!(after(&raw, "COMMIT AND CHAIN", &[]), vec![songs.clone()]);
        assert!(raw.may_be_open());
        after(&raw, "ROLLBACK", &[]);
        assert!(!raw.may_be_open());
        after(
            &raw,
            "SAVEPOINT a; UPDATE songs SET a = 1",
            std::slice::from_ref(&songs),
        );
        assert!(
            raw.may_be_open(),
            "a savepoint may have opened a transaction"
        );
        assert_eq!(after(&raw, "RELEASE a", &[]), vec![songs]);
    }

    #[test]
    fn a_statement_mysql_commits_before_invalidates_what_is_pending() {
        let raw = RawTransactions::default();
        let songs = Tag::model("songs");
        after(
            &raw,
            "BEGIN; UPDATE songs SET a = 1",
            std::slice::from_ref(&songs),
        );
        assert_eq!(
            after(&raw, "ALTER TABLE songs ADD COLUMN b INT", &[]),
            vec![songs.clone()]
        );
        assert!(raw.may_be_open(), "with autocommit off a new one is open");
        assert!(
            after(&raw, "CREATE TABLE t (id INT)", &[]).is_empty(),
            "nothing left"
        );
        // Outside a raw transaction, DDL leaves nothing open, even a function body that
        // MySQL lexes differently.
        let raw = RawTransactions::default();
        assert!(after(&raw, "CREATE TABLE t (id INT)", &[]).is_empty());
        let function = "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ \
                        BEGIN UPDATE t SET n = 'it''s'; RETURN NULL; END $$";
        assert!(transaction_walk(function).unwrap().doubtful, "premise");
        assert!(after(&raw, function, &[]).is_empty());
        assert!(!raw.may_be_open());
    }

    #[test]
    fn commit_prepared_invalidates_every_model() {
        let raw = RawTransactions::default();
        assert_eq!(
            after(&raw, "COMMIT PREPARED 'x'", &[]),
            vec![Tag::all_models()]
        );
    }
}
