//! The write side: tags recorded by writes inside a transaction, published when the
//! outermost transaction commits.
//!
//! ORM integrations record here what each statement of a transaction wrote. On commit of a
//! nested transaction (a savepoint) the pending tags move to the parent; on commit of the
//! outermost one they are invalidated (*after* the database's COMMIT returned); on rollback
//! they are dropped. Invalidations are deferred, never cache puts: deferring puts would
//! re-open the stale-set race.

use std::collections::{BTreeSet, HashSet};

use parking_lot::Mutex;

use crate::Tag;

/// Tags written by a transaction that has not committed yet.
#[derive(Debug, Default)]
pub(crate) struct PendingWrites {
    inner: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    tags: BTreeSet<Tag>,
    tables: HashSet<String>,
    /// A statement that could not be classified: the transaction may have written anything.
    everything: bool,
}

impl PendingWrites {
    /// Records the tags of one write.
    pub(crate) fn record(&self, tags: &[Tag]) {
        let mut pending = self.inner.lock();
        for tag in tags {
            if let Some(table) = tag.table() {
                pending.tables.insert(table.to_owned());
            } else if *tag == Tag::all_models() {
                pending.everything = true;
            }
            pending.tags.insert(tag.clone());
        }
    }

    /// Whether this transaction wrote one of `tables` (or something unknown).
    pub(crate) fn wrote_any<'a>(&self, mut tables: impl Iterator<Item = &'a str>) -> bool {
        let pending = self.inner.lock();
        pending.everything || tables.any(|table| pending.tables.contains(table))
    }

    /// Whether anything was recorded.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.inner.lock().tags.is_empty()
    }

    /// Moves everything recorded into `parent` (a savepoint committed).
    pub(crate) fn merge_into(&self, parent: &PendingWrites) {
        let taken = std::mem::take(&mut *self.inner.lock());
        let mut parent = parent.inner.lock();
        parent.tags.extend(taken.tags);
        parent.tables.extend(taken.tables);
        parent.everything |= taken.everything;
    }

    /// Takes the recorded tags (the outermost transaction committed).
    pub(crate) fn take(&self) -> Vec<Tag> {
        std::mem::take(&mut *self.inner.lock())
            .tags
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
        assert!(child.wrote_any(["songs"].into_iter()));
        assert!(!parent.wrote_any(["songs"].into_iter()));
        child.merge_into(&parent);
        assert!(child.is_empty());
        assert!(parent.wrote_any(["songs"].into_iter()));
        assert_eq!(parent.take().len(), 2);
        assert!(parent.is_empty());
    }

    #[test]
    fn unknown_write_touches_every_table() {
        let pending = PendingWrites::default();
        pending.record(&[Tag::all_models()]);
        assert!(pending.wrote_any(["anything"].into_iter()));
    }
}
