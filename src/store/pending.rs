//! Invalidations an instance made while Redis was unreachable, kept for replay.

use std::collections::HashSet;

use super::channel::Op;
use crate::Tag;

/// Invalidations made while Redis was unreachable, replayed when it is back. Past
/// [`Pending::MAX`] items it gives up on precision and replays a clear of the prefix.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    tags: HashSet<Tag>,
    keys: HashSet<String>,
    patterns: Vec<String>,
    pub(crate) clear: bool,
}

impl Pending {
    pub(crate) const MAX: usize = 100_000;

    pub(crate) fn is_empty(&self) -> bool {
        !self.clear && self.tags.is_empty() && self.keys.is_empty() && self.patterns.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.tags.len() + self.keys.len() + self.patterns.len() + usize::from(self.clear)
    }

    pub(crate) fn add(&mut self, op: &Op) {
        if self.clear {
            return;
        }
        match op {
            Op::Tags { tags } => self
                .tags
                .extend(tags.iter().filter_map(|t| Tag::new(t.as_str()).ok())),
            Op::Key { key } => {
                self.keys.insert(key.clone());
            }
            Op::Pattern { pattern } => self.patterns.push(pattern.clone()),
            Op::Clear => self.clear = true,
        }
        if self.len() > Self::MAX {
            tracing::warn!(
                pending = self.len(),
                "too many invalidations during the Redis outage; a clear of the key prefix will be replayed instead"
            );
            self.clear = true;
        }
        if self.clear {
            self.tags.clear();
            self.keys.clear();
            self.patterns.clear();
        }
    }

    /// Everything pending, as operations (a clear first and alone).
    pub(crate) fn ops(&self) -> Vec<Op> {
        if self.clear {
            return vec![Op::Clear];
        }
        let mut ops = Vec::new();
        if !self.tags.is_empty() {
            ops.push(Op::Tags {
                tags: self.tags.iter().map(|t| t.as_str().to_owned()).collect(),
            });
        }
        ops.extend(self.keys.iter().map(|k| Op::Key { key: k.clone() }));
        ops.extend(
            self.patterns
                .iter()
                .map(|p| Op::Pattern { pattern: p.clone() }),
        );
        ops
    }

    /// Forgets `op` once it has been replayed (newer additions stay).
    pub(crate) fn done(&mut self, op: &Op) {
        match op {
            Op::Tags { tags } => {
                for tag in tags.iter().filter_map(|t| Tag::new(t.as_str()).ok()) {
                    self.tags.remove(&tag);
                }
            }
            Op::Key { key } => {
                self.keys.remove(key);
            }
            Op::Pattern { pattern } => {
                if let Some(i) = self.patterns.iter().position(|p| p == pattern) {
                    self.patterns.remove(i);
                }
            }
            Op::Clear => self.clear = false,
        }
    }
}
