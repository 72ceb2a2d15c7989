//! The write side: tags recorded by writes inside a transaction, published when the
//! outermost transaction commits.
//!
//! ORM integrations record here what each statement of a transaction wrote. On commit of a
//! nested transaction (a savepoint) the pending tags move to the parent; on commit of the
//! outermost one they are invalidated (*after* the database's COMMIT returned); on rollback
//! they are dropped. Invalidations are deferred, never cache puts: deferring puts would
//! re-open the stale-set race.

// Without an ORM integration nothing records writes.
#![cfg_attr(not(any(feature = "sea-orm", feature = "diesel")), allow(dead_code))]

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use crate::Tag;

/// Tags written by a transaction that has not committed yet.
#[derive(Debug, Default)]
pub(crate) struct PendingWrites {
    inner: Mutex<PendingTags>,
    /// The enclosing transaction's writes, for a savepoint.
    parent: Option<std::sync::Arc<PendingWrites>>,
    /// On the outermost level: MySQL committed the transaction before its end (a statement
    /// with an implicit commit, such as DDL), so what follows runs outside any transaction.
    committed_early: AtomicBool,
}

#[derive(Debug, Default)]
struct PendingTags {
    tags: BTreeSet<Tag>,
    /// Tags the application invalidated on behalf of the transaction: applied at COMMIT
    /// under every strategy but `ttl`, as explicit invalidations are.
    explicit: BTreeSet<Tag>,
    tables: HashSet<String>,
    /// A statement that could not be classified: the transaction may have written anything.
    everything: bool,
}

impl PendingWrites {
    /// The pending writes of a savepoint nested in `parent`.
    pub(crate) fn child(parent: std::sync::Arc<PendingWrites>) -> Self {
        PendingWrites {
            inner: Mutex::default(),
            parent: Some(parent),
            committed_early: AtomicBool::new(false),
        }
    }

    /// The outermost level.
    fn root(&self) -> &PendingWrites {
        let mut level = self;
        while let Some(parent) = level.parent.as_deref() {
            level = parent;
        }
        level
    }

    /// Marks the transaction as committed by the database before its end (MySQL's implicit
    /// commits): from now on its writes are to be invalidated as they are made.
    #[cfg_attr(not(feature = "sea-orm"), allow(dead_code))]
    pub(crate) fn mark_committed_early(&self) {
        self.root().committed_early.store(true, Ordering::Release);
    }

    /// Whether [`mark_committed_early`](Self::mark_committed_early) was called on any level
    /// of this transaction.
    #[cfg_attr(not(feature = "sea-orm"), allow(dead_code))]
    pub(crate) fn committed_early(&self) -> bool {
        self.root().committed_early.load(Ordering::Acquire)
    }

    /// Every tag recorded by this level and the enclosing ones, left in place (an outermost
    /// COMMIT invalidates them again): the written ones, and the explicit ones.
    #[cfg_attr(not(feature = "sea-orm"), allow(dead_code))]
    pub(crate) fn tags_up(&self) -> (Vec<Tag>, Vec<Tag>) {
        let (mut written, mut explicit) = (Vec::new(), Vec::new());
        let mut level = Some(self);
        while let Some(writes) = level {
            let pending = writes.inner.lock();
            written.extend(pending.tags.iter().cloned());
            explicit.extend(pending.explicit.iter().cloned());
            drop(pending);
            level = writes.parent.as_deref();
        }
        (written, explicit)
    }

    /// Records the tags of one write. The written tables are marked in every enclosing
    /// transaction too: they share the connection, so their reads see this write.
    pub(crate) fn record(&self, tags: &[Tag]) {
        self.inner.lock().tags.extend(tags.iter().cloned());
        self.mark_tables(tags);
    }

    /// Records tags the application invalidates on behalf of the transaction, to be
    /// invalidated again after the outermost COMMIT. Their tables count as written, like
    /// [`record`](Self::record)'s.
    #[cfg_attr(not(feature = "sea-orm"), allow(dead_code))]
    pub(crate) fn record_explicit(&self, tags: &[Tag]) {
        self.inner.lock().explicit.extend(tags.iter().cloned());
        self.mark_tables(tags);
    }

    /// Marks the tables of `tags` written in this level and every enclosing one.
    fn mark_tables(&self, tags: &[Tag]) {
        let mut level = Some(self);
        while let Some(writes) = level {
            let mut pending = writes.inner.lock();
            for tag in tags {
                if let Some(table) = tag.table() {
                    pending.tables.insert(table.to_owned());
                } else if *tag == Tag::all_models() {
                    pending.everything = true;
                }
            }
            drop(pending);
            level = writes.parent.as_deref();
        }
    }

    /// Whether this transaction, or one enclosing it, wrote anything at all.
    pub(crate) fn wrote_anything(&self) -> bool {
        let mut level = Some(self);
        while let Some(writes) = level {
            let pending = writes.inner.lock();
            if pending.everything
                || !pending.tables.is_empty()
                || !pending.tags.is_empty()
                || !pending.explicit.is_empty()
            {
                return true;
            }
            drop(pending);
            level = writes.parent.as_deref();
        }
        false
    }

    /// Whether anything was recorded.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.inner.lock().tags.is_empty()
    }

    /// The enclosing transaction's pending writes, for a savepoint.
    #[cfg_attr(not(feature = "sea-orm"), allow(dead_code))]
    pub(crate) fn parent(&self) -> Option<&PendingWrites> {
        self.parent.as_deref()
    }

    /// Moves everything recorded into `parent` (a savepoint committed).
    pub(crate) fn merge_into(&self, parent: &PendingWrites) {
        let taken = std::mem::take(&mut *self.inner.lock());
        let mut parent = parent.inner.lock();
        parent.tags.extend(taken.tags);
        parent.explicit.extend(taken.explicit);
        parent.tables.extend(taken.tables);
        parent.everything |= taken.everything;
    }

    /// The recorded tags, left in place (for an invalidation that may come too early, and
    /// will be repeated).
    #[cfg_attr(not(feature = "diesel"), allow(dead_code))]
    pub(crate) fn tags(&self) -> Vec<Tag> {
        self.inner.lock().tags.iter().cloned().collect()
    }

    /// Takes the recorded tags (the outermost transaction committed).
    pub(crate) fn take(&self) -> Vec<Tag> {
        std::mem::take(&mut self.inner.lock().tags)
            .into_iter()
            .collect()
    }

    /// Takes the tags recorded by [`record_explicit`](Self::record_explicit).
    #[cfg_attr(not(feature = "sea-orm"), allow(dead_code))]
    pub(crate) fn take_explicit(&self) -> Vec<Tag> {
        std::mem::take(&mut self.inner.lock().explicit)
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn savepoint_merge_and_take() {
        let parent = PendingWrites::default();
        let child = PendingWrites::default();
        child.record(&[Tag::model("songs"), Tag::row("songs", 1)]);
        assert!(child.wrote_anything());
        assert!(!parent.wrote_anything());
        child.merge_into(&parent);
        assert!(child.is_empty());
        assert!(parent.wrote_anything());
        assert_eq!(parent.take().len(), 2);
        assert!(parent.is_empty());
    }

    #[test]
    fn a_savepoint_sees_its_parents_writes_and_the_parent_sees_the_savepoints() {
        let outer = std::sync::Arc::new(PendingWrites::default());
        let inner = PendingWrites::child(outer.clone());
        assert!(!inner.wrote_anything() && !outer.wrote_anything());
        outer.record(&[Tag::model("users")]);
        assert!(
            inner.wrote_anything(),
            "the parent's write, seen by the savepoint"
        );

        let outer = std::sync::Arc::new(PendingWrites::default());
        let inner = PendingWrites::child(outer.clone());
        inner.record(&[Tag::model("songs")]);
        assert!(
            outer.wrote_anything(),
            "the savepoint's write, seen by its parent"
        );
        // The savepoint's tags stay its own until it commits.
        assert!(outer.take().is_empty());
        assert_eq!(inner.take(), vec![Tag::model("songs")]);
    }

    #[test]
    fn an_early_commit_marks_the_whole_transaction_and_every_level_s_tags_are_found() {
        let outer = std::sync::Arc::new(PendingWrites::default());
        let inner = PendingWrites::child(outer.clone());
        outer.record(&[Tag::model("users")]);
        inner.record(&[Tag::model("songs")]);
        inner.record_explicit(&[Tag::new("report:daily").unwrap()]);
        assert!(!outer.committed_early() && !inner.committed_early());
        inner.mark_committed_early();
        assert!(outer.committed_early() && inner.committed_early());
        let (written, explicit) = inner.tags_up();
        assert_eq!(written, vec![Tag::model("songs"), Tag::model("users")]);
        assert_eq!(explicit, vec![Tag::new("report:daily").unwrap()]);
        assert_eq!(
            outer.tags_up(),
            (vec![Tag::model("users")], Vec::new()),
            "the parent's only"
        );
    }

    #[test]
    fn an_unknown_write_or_an_explicit_tag_counts_as_a_write() {
        let pending = PendingWrites::default();
        pending.record(&[Tag::all_models()]);
        assert!(pending.wrote_anything());
        let pending = PendingWrites::default();
        pending.record_explicit(&[Tag::new("user:1").unwrap()]);
        assert!(pending.wrote_anything());
    }
}
