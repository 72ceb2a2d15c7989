//! Observed dependencies: while an entry is computed, the ORM integrations report each
//! statement it reads with before sending it, and the entry comes to depend on what was
//! read — not only on what its function declared.
//!
//! Each statement's tags get their versions read *before* the statement runs
//! ([`Observation::before_read`]), exactly as the declared tags' versions are read before
//! the computation starts: a write that commits after the statement read its rows bumps a
//! version newer than the one recorded, so the value is born stale and never served
//! (DESIGN.md invariant 2). The snapshots taken this way are joined to the computation's
//! own when it is stored ([`Snapshot::joined`]).
//!
//! Observation is on the miss path only: a hit sends no statement.

// Only the SeaORM and Diesel integrations report reads.
#![cfg_attr(not(any(feature = "sea-orm", feature = "diesel")), allow(dead_code))]

use std::collections::HashSet;
use std::sync::Arc;

use crate::store::{Snapshot, Store};
use crate::{Cache, Tag};

/// A connection's way to the computation it serves, for statements it runs on a thread of
/// its own (diesel-async's `SyncConnectionWrapper` runs them on a `spawn_blocking` thread,
/// where the computation's task-local state cannot be seen). A `#[cached_query]` call lends
/// its computation's [`Observation`] to the relays of its connection arguments while the
/// computation runs ([`Relay::lend`]); the connection is borrowed by the call meanwhile, so
/// no other computation can use it.
#[derive(Default)]
pub(crate) struct Relay(parking_lot::Mutex<Option<Arc<Observation>>>);

impl Relay {
    /// The observation lent to this relay, if a computation is running with it.
    pub(crate) fn current(&self) -> Option<Arc<Observation>> {
        self.0.lock().clone()
    }

    /// Lends the computation's observation running here (if any) to `relays` until the
    /// returned guard is dropped, which gives each relay back what it held before (the
    /// observation of a computation around this one, which may share the connection).
    pub(crate) fn lend(relays: Vec<Arc<Relay>>) -> Lent {
        let lent = crate::store::observation();
        let relays = relays
            .into_iter()
            .map(|relay| {
                let before = match &lent {
                    Some(observation) => relay.0.lock().replace(Arc::clone(observation)),
                    None => relay.current(),
                };
                (relay, before)
            })
            .collect();
        Lent(relays)
    }
}

/// Lent observations, given back on drop (a computation finished or was cancelled).
pub(crate) struct Lent(Vec<(Arc<Relay>, Option<Arc<Observation>>)>);

impl Drop for Lent {
    fn drop(&mut self) {
        for (relay, before) in self.0.drain(..) {
            *relay.0.lock() = before;
        }
    }
}

/// What one computation read, so far.
pub(crate) struct Observation {
    cache: Cache,
    /// With `CACHE_AUDIT=warn`, for an entry that declares model tags: who computes it and
    /// the tables it declares.
    audit: Option<Audited>,
    /// An async lock: a statement waits until the versions of what an earlier (concurrent)
    /// statement of the same computation revealed are read, so that no statement runs
    /// before the versions of its tags are known.
    state: tokio::sync::Mutex<Progress>,
}

#[derive(Default)]
struct Progress {
    /// The tags the computation's own snapshot holds (declared), until the first statement
    /// moves them into `known`: a computation that sends no statement builds no set.
    declared: Vec<Tag>,
    /// Tags whose versions are already recorded (declared, or observed earlier).
    known: HashSet<Tag>,
    /// The snapshots of observed tags, each with its tags, in the order they were taken.
    snapshots: Vec<(Vec<Tag>, Snapshot)>,
    /// How many statements were reported.
    statements: u32,
    /// Why the value must not be stored, if it must not: a statement that could not be
    /// read, or versions the store could not give.
    spoiled: Option<String>,
}

/// The declaration an audited computation is checked against.
struct Audited {
    /// The function (or, for `get_or_compute` and its kin, the key).
    origin: String,
    /// The tables of its declared model tags (in their database's namespace).
    tables: HashSet<String>,
}

/// What a computation observed, once it has finished.
struct Observed {
    /// The snapshots of the tags it revealed, each with its tags.
    snapshots: Vec<(Vec<Tag>, Snapshot)>,
    /// How many statements it reported.
    statements: u32,
    /// Why its value must not be stored, if it must not.
    spoiled: Option<String>,
}

impl Observation {
    /// An observation for a computation of `cache` whose snapshot holds `declared`:
    /// computed by `origin` (a `#[cached_query]` function), else under `key`.
    pub(crate) fn new(
        cache: Cache,
        declared: Vec<Tag>,
        origin: Option<&'static str>,
        key: &crate::key::Key,
    ) -> Arc<Self> {
        let audit = (cache.inner.config.audit == crate::config::Audit::Warn)
            .then(|| {
                let tables: HashSet<String> = declared
                    .iter()
                    .filter_map(|tag| tag.table().map(str::to_owned))
                    .collect();
                (!tables.is_empty()).then(|| Audited {
                    origin: origin.map_or_else(
                        || format!("entry {}", crate::key::shown(key)),
                        str::to_owned,
                    ),
                    tables,
                })
            })
            .flatten();
        Arc::new(Observation {
            cache,
            audit,
            state: tokio::sync::Mutex::new(Progress {
                declared,
                ..Progress::default()
            }),
        })
    }

    /// How long a statement of this computation waits for a read replica to catch up
    /// (`CACHE_REPLICA_WAIT_MS`, see `orm::replica`).
    #[cfg(feature = "sea-orm")]
    pub(crate) fn replica_wait(&self) -> std::time::Duration {
        self.cache.inner.config.replica_wait
    }

    /// Before a statement reading `tags` is sent: reads the versions of those not known yet
    /// (and of `model:#all`, which every entry depending on a table depends on).
    pub(crate) async fn before_read(&self, mut tags: Vec<Tag>) {
        if tags.iter().any(Tag::is_model) {
            tags.push(Tag::all_models());
        }
        let mut state = self.state.lock().await;
        state.statements += 1;
        let declared = std::mem::take(&mut state.declared);
        state.known.extend(declared);
        let fresh: Vec<Tag> = tags
            .into_iter()
            .filter(|tag| !state.known.contains(tag))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if fresh.is_empty() || state.spoiled.is_some() {
            return;
        }
        match self.cache.inner.store.snapshot(&fresh).await {
            Ok(snapshot) => {
                state.known.extend(fresh.iter().cloned());
                state.snapshots.push((fresh, snapshot));
            }
            Err(error) => {
                self.cache
                    .store_error("snapshot", "(a statement's observed reads)", &error);
                state.spoiled = Some(format!(
                    "the versions of what it read could not be read: {error}"
                ));
            }
        }
    }

    /// An inner entry's hit was used: the versions it was computed under join the
    /// computation's (see `Deps::Versions`).
    pub(crate) async fn contribute(&self, versions: Snapshot) {
        let mut state = self.state.lock().await;
        state.statements += 1;
        if state.spoiled.is_none() {
            state.snapshots.push((Vec::new(), versions));
        }
    }

    /// Whether the versions of every one of `tags` were read (before the statement, or
    /// the inner lookup, that revealed them), so that a value depending on them alone can
    /// be used: a change since makes this computation's value outdated.
    pub(crate) async fn knows(&self, tags: &[Tag]) -> bool {
        let state = self.state.lock().await;
        state.spoiled.is_none()
            && tags
                .iter()
                .all(|tag| state.known.contains(tag) || state.declared.contains(tag))
    }

    /// With `CACHE_AUDIT=warn`: warns, once per function and table, of each table `tags`
    /// (what `sql` reads) name that the computation's declaration does not.
    pub(crate) fn audit(&self, tags: &[Tag], sql: &str) {
        let Some(audited) = &self.audit else {
            return;
        };
        for table in tags.iter().filter_map(Tag::table) {
            if !audited.tables.contains(table) {
                self.cache.inner.audit.found(&audited.origin, table, sql);
            }
        }
    }

    /// The replica a statement is about to read had not replayed the primary's WAL as far
    /// as the versions recorded stand for (see `orm::replica`): the value goes to its caller
    /// and is not stored. Counted (`replica_behind`).
    #[cfg(feature = "sea-orm")]
    pub(crate) async fn replica_behind(&self, why: String) {
        self.cache.inner.stats.replica_behind();
        let mut state = self.state.lock().await;
        state.spoiled.get_or_insert(why);
    }

    /// A statement that cannot be read was sent: the value must not be stored.
    pub(crate) async fn unreadable(&self, why: String) {
        let mut state = self.state.lock().await;
        state.statements += 1;
        state.spoiled.get_or_insert(why);
    }

    /// Once the computation of `key` has finished: the snapshot to store its value under,
    /// `first` (taken before it started) joined to those of what it was observed to read;
    /// `None` when the value must not be stored (logged at debug level, with why).
    /// `declares_tags`: whether the entry declared tags of its own.
    pub(crate) fn settle<E>(
        &self,
        key: &crate::key::Key,
        declares_tags: bool,
        first: Result<Snapshot, E>,
    ) -> Option<Result<Snapshot, E>> {
        let observed = self.finish();
        if let Some(why) = &observed.spoiled {
            tracing::debug!(key = %crate::key::shown(key), reason = %why, "Cache SET skipped: what the computation read cannot be depended on");
            return None;
        }
        if observed.statements == 0 && !declares_tags {
            tracing::debug!(key = %crate::key::shown(key), "the computation read nothing through an integrated connection and declares no tag: only its TTL ends the entry");
        }
        Some(first.map(|first| {
            observed
                .snapshots
                .iter()
                .fold(first, |joined, (_, later)| joined.joined(later))
        }))
    }

    /// The fingerprint of the versions observed so far (each read before the statement
    /// that revealed its tags ran), `None` when no statement revealed a tag: what a deep
    /// ETag of the computation's answer adds to the fingerprint of its declared tags.
    pub(crate) async fn fingerprint(&self) -> Option<u64> {
        let state = self.state.lock().await;
        if state.snapshots.is_empty() {
            return None;
        }
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(b"querycache:observed\0");
        for (tags, snapshot) in &state.snapshots {
            hasher.update(&snapshot.fingerprint(tags).to_le_bytes());
        }
        Some(hasher.digest())
    }

    /// What was observed (called once the computation has finished).
    fn finish(&self) -> Observed {
        match self.state.try_lock() {
            Ok(mut state) => Observed {
                snapshots: std::mem::take(&mut state.snapshots),
                statements: state.statements,
                spoiled: state.spoiled.take(),
            },
            // A statement of the finished computation still holds it (a future dropped
            // mid-observation, its work spawned away): nothing can be known of it.
            Err(_) => Observed {
                snapshots: Vec::new(),
                statements: 0,
                spoiled: Some("a statement was still being observed when it finished".into()),
            },
        }
    }
}
