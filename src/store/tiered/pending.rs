//! Invalidations an instance made while Redis was unreachable, kept for replay.
//!
//! Every addition gets a sequence number. A replay takes a snapshot of what is pending and
//! the sequence it was taken at; once an operation has been applied to Redis, only the
//! items it covered that were not added again since the snapshot are forgotten. A write
//! that re-invalidates a tag while that tag's replay is in flight therefore stays pending
//! (its own bump may have reached Redis before the replayed one, and the value cached
//! between the two must go too). A pending clear does not swallow what comes after it:
//! its scan may already have passed the keys a later write invalidates.

use std::collections::HashMap;

use super::channel::Op;
use crate::Tag;

/// Invalidations made while Redis was unreachable, replayed when it is back. Past
/// [`Pending::MAX`] items it gives up on precision and replays a clear of the prefix.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// The sequence of the last addition.
    seq: u64,
    tags: HashMap<Tag, u64>,
    keys: HashMap<String, u64>,
    patterns: HashMap<String, u64>,
    /// A clear of the prefix, with the sequence it was added at.
    clear: Option<u64>,
}

/// What a replay applies: the operations pending when it began, and the sequence they
/// were read at (items added after it are kept by [`Pending::done`]).
#[derive(Debug)]
pub(crate) struct Replay {
    pub(crate) ops: Vec<Op>,
    pub(crate) upto: u64,
}

impl Pending {
    pub(crate) const MAX: usize = 100_000;

    pub(crate) fn is_empty(&self) -> bool {
        self.clear.is_none()
            && self.tags.is_empty()
            && self.keys.is_empty()
            && self.patterns.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.tags.len() + self.keys.len() + self.patterns.len() + usize::from(self.clear.is_some())
    }

    pub(crate) fn add(&mut self, op: &Op) {
        self.seq += 1;
        let seq = self.seq;
        match op {
            Op::Tags { tags } => {
                for tag in tags.iter().filter_map(|t| Tag::new(t.as_str()).ok()) {
                    self.tags.insert(tag, seq);
                }
            }
            Op::Key { key } => {
                self.keys.insert(key.clone(), seq);
            }
            Op::Pattern { pattern } => {
                self.patterns.insert(pattern.clone(), seq);
            }
            Op::Clear => self.record_clear(),
        }
        if self.len() > Self::MAX {
            tracing::warn!(
                pending = self.len(),
                "too many invalidations during the Redis outage; a clear of the key prefix will be replayed instead"
            );
            self.record_clear();
        }
    }

    /// A clear at the current sequence: it covers everything recorded so far.
    fn record_clear(&mut self) {
        self.clear = Some(self.seq);
        self.tags.clear();
        self.keys.clear();
        self.patterns.clear();
    }

    /// Everything pending, as operations (a clear first, the items added since after it),
    /// with the sequence they were read at.
    pub(crate) fn replay(&self) -> Replay {
        let mut ops = Vec::new();
        if self.clear.is_some() {
            ops.push(Op::Clear);
        }
        if !self.tags.is_empty() {
            ops.push(Op::Tags {
                tags: self.tags.keys().map(|t| t.as_str().to_owned()).collect(),
            });
        }
        ops.extend(self.keys.keys().map(|k| Op::Key { key: k.clone() }));
        ops.extend(
            self.patterns
                .keys()
                .map(|p| Op::Pattern { pattern: p.clone() }),
        );
        Replay {
            ops,
            upto: self.seq,
        }
    }

    /// Forgets what `op`, replayed from a [`Replay`] read at `upto`, covered — except what
    /// was added again since `upto`.
    pub(crate) fn done(&mut self, op: &Op, upto: u64) {
        let covered = |seq: &u64| *seq <= upto;
        match op {
            Op::Tags { tags } => {
                for tag in tags.iter().filter_map(|t| Tag::new(t.as_str()).ok()) {
                    if self.tags.get(&tag).is_some_and(covered) {
                        self.tags.remove(&tag);
                    }
                }
            }
            Op::Key { key } => {
                if self.keys.get(key).is_some_and(covered) {
                    self.keys.remove(key);
                }
            }
            Op::Pattern { pattern } => {
                if self.patterns.get(pattern).is_some_and(covered) {
                    self.patterns.remove(pattern);
                }
            }
            Op::Clear => {
                if self.clear.as_ref().is_some_and(covered) {
                    self.clear = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(names: &[&str]) -> Op {
        Op::Tags {
            tags: names.iter().map(|&t| t.to_owned()).collect(),
        }
    }

    #[test]
    fn a_tag_added_again_while_its_replay_is_in_flight_stays_pending() {
        let mut pending = Pending::default();
        pending.add(&tags(&["model:songs:1", "model:songs:2"]));
        let replay = pending.replay();
        // A write invalidates song 1 again while the replay is on its way to Redis.
        pending.add(&tags(&["model:songs:1"]));
        for op in &replay.ops {
            pending.done(op, replay.upto);
        }
        assert_eq!(
            pending.len(),
            1,
            "song 1's second invalidation is still to replay"
        );
        let again = pending.replay();
        assert!(matches!(&again.ops[..], [Op::Tags { tags }] if tags == &["model:songs:1"]));
        for op in &again.ops {
            pending.done(op, again.upto);
        }
        assert!(pending.is_empty());
    }

    #[test]
    fn keys_and_patterns_added_again_during_their_replay_stay_pending() {
        let mut pending = Pending::default();
        pending.add(&Op::Key { key: "k".into() });
        pending.add(&Op::Pattern {
            pattern: "p*".into(),
        });
        let replay = pending.replay();
        pending.add(&Op::Key { key: "k".into() });
        pending.add(&Op::Pattern {
            pattern: "p*".into(),
        });
        for op in &replay.ops {
            pending.done(op, replay.upto);
        }
        assert_eq!(pending.len(), 2);
    }

    #[test]
    fn a_pending_clear_does_not_swallow_what_comes_during_its_replay() {
        let mut pending = Pending::default();
        pending.add(&tags(&["model:songs:1"]));
        pending.add(&Op::Clear);
        assert_eq!(pending.len(), 1, "the clear covers what came before it");
        let replay = pending.replay();
        assert!(matches!(&replay.ops[..], [Op::Clear]));
        // Writes while the clear's scan runs: the scan may have passed their keys.
        pending.add(&tags(&["model:songs:2"]));
        pending.add(&Op::Key { key: "k".into() });
        for op in &replay.ops {
            pending.done(op, replay.upto);
        }
        assert_eq!(pending.len(), 2, "both writes are still to replay");
        let again = pending.replay();
        assert!(again.ops.iter().all(|op| !matches!(op, Op::Clear)));
    }

    #[test]
    fn a_clear_added_during_a_clear_replay_stays_pending() {
        let mut pending = Pending::default();
        pending.add(&Op::Clear);
        let replay = pending.replay();
        pending.add(&Op::Clear);
        for op in &replay.ops {
            pending.done(op, replay.upto);
        }
        assert!(!pending.is_empty());
    }

    #[test]
    fn past_the_limit_a_clear_replaces_the_items() {
        let mut pending = Pending::default();
        for i in 0..=Pending::MAX {
            pending.add(&Op::Key {
                key: format!("k{i}"),
            });
        }
        assert_eq!(pending.len(), 1);
        assert!(matches!(&pending.replay().ops[..], [Op::Clear]));
    }
}
