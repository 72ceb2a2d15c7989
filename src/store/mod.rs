//! Where entries and tag versions live.
//!
//! Every store implements [`Store`]: look an entry up (validated against the current
//! versions of its tags), take a snapshot of tag versions before a computation, park a
//! computed value under that snapshot, invalidate tags, remove keys. The [`Cache`](crate::Cache)
//! orchestrates; stores know nothing of ORMs, keys' meaning or statistics.
//!
//! | store | module | values held as |
//! | --- | --- | --- |
//! | memory (per process) | [`memory`] | the typed value behind an `Arc`: a hit is a pointer copy |
//!
//! The Redis and tiered stores implement the same trait (they hold encoded payloads).

pub(crate) mod memory;

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::{Key, Tag};

/// A value as the memory store keeps it: the caller's `Arc<T>`, type-erased.
pub(crate) type AnyValue = Arc<dyn Any + Send + Sync>;

/// An entry found and still valid.
pub(crate) struct Found {
    pub(crate) value: AnyValue,
    /// How long ago the entry was stored.
    pub(crate) age: Duration,
}

/// The outcome of a lookup.
pub(crate) enum Lookup {
    /// Present, unexpired, and every tag still at its snapshot's version.
    Hit(Found),
    /// No entry under the key.
    Miss,
    /// An entry whose TTL had passed (reclaimed by the lookup).
    Expired,
    /// An entry whose tags have moved since it was computed (reclaimed by the lookup).
    Invalidated,
}

/// What a `put` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PutOutcome {
    /// The entry is stored.
    Stored,
    /// Not stored: a tag it depends on moved (or the key was removed) while it was being
    /// computed, so it was already out of date — a "wasted computation".
    Outdated,
    /// Not stored: larger than the store accepts.
    TooLarge,
}

/// Everything about an entry but its value and snapshot.
#[derive(Debug, Clone)]
pub(crate) struct EntryMeta {
    pub(crate) ttl: Duration,
    /// Estimated bytes the entry costs; counted against the memory budget.
    pub(crate) weight: u64,
}

/// Sizes reported by a store.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Usage {
    pub(crate) entries: u64,
    pub(crate) bytes: u64,
}

/// The operations every store offers. Implementations answer quickly and never panic;
/// the error type of a failing backend is the backend's own message (the cache counts and
/// logs it, callers never see it).
pub(crate) trait Store: Send + Sync + 'static {
    /// The tag versions an entry is computed under.
    type Snapshot: Clone + Send + Sync + 'static;

    /// Whether no tag of `snapshot` has moved since it was taken. A leader's value is handed
    /// to waiting callers only while this holds: a caller that started after a write must
    /// not get a value computed before it.
    fn is_current(&self, snapshot: &Self::Snapshot) -> bool;

    /// Reads the current versions of `tags`, before the computation starts.
    fn snapshot(&self, tags: &[Tag])
    -> impl Future<Output = Result<Self::Snapshot, String>> + Send;

    /// Looks `key` up and validates it against its tags' current versions.
    fn get(&self, key: &str) -> impl Future<Output = Result<Lookup, String>> + Send;

    /// Stores `value` under `key`, unless `snapshot` is already outdated.
    fn put(
        &self,
        key: Key,
        value: AnyValue,
        snapshot: Self::Snapshot,
        meta: EntryMeta,
    ) -> impl Future<Output = Result<PutOutcome, String>> + Send;

    /// Gives each tag a fresh version; returns how many tags had one.
    fn invalidate(&self, tags: &[Tag]) -> impl Future<Output = Result<usize, String>> + Send;

    /// Removes one key; returns whether it was present.
    fn remove(&self, key: &str) -> impl Future<Output = Result<bool, String>> + Send;

    /// Removes every key matching `pattern`; returns how many were removed.
    fn remove_matching(
        &self,
        pattern: &glob::Pattern,
    ) -> impl Future<Output = Result<usize, String>> + Send;

    /// Removes every entry, and makes computations in flight unable to store.
    fn clear(&self) -> impl Future<Output = Result<(), String>> + Send;

    /// Entries and bytes held (for stats).
    fn usage(&self) -> Usage;
}
