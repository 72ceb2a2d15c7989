//! One computation per key at a time: the first caller of a cold key computes, the others
//! wait for its value.
//!
//! How a round ends for the callers waiting in it:
//!
//! * the leader's value: handed to every follower (if its tag versions are still current);
//! * no value to hand, but the computation ended — it failed, or gave an answer that cannot
//!   be shared or stored (an HTTP 404, an answer that sets a cookie, a value the store
//!   refuses): the followers are **released together**, each computing on its own at once,
//!   with no lease and no new round, rather than queueing behind one another's answers
//!   (errors, which need not be `Clone`, are never shared);
//! * the leader was cancelled (its caller went away): the next follower leads.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::Key;
use crate::store::AnyValue;

/// What a leader hands its followers: the value, and a check that the tag versions it was
/// computed under are still current. A follower may have started after a write that the
/// leader's computation predates; it must not take that value (no stale read).
#[derive(Clone)]
pub(crate) struct Handoff {
    pub(crate) value: AnyValue,
    pub(crate) still_current: Arc<dyn Fn() -> bool + Send + Sync>,
}

/// How a round ended, as its followers learn it.
#[derive(Clone)]
pub(crate) enum Ended {
    /// The leader's value.
    Value(Handoff),
    /// The computation ended with nothing to hand over: compute yourselves, now.
    Released,
}

type Slot = watch::Sender<Option<Ended>>;

type Map = Mutex<HashMap<Key, Arc<Slot>>>;

/// Computations in flight, by key.
#[derive(Default)]
pub(crate) struct Flights {
    map: Arc<Map>,
}

/// What a caller of a cold key does.
pub(crate) enum Role {
    /// Compute, then [`Leader::finish`] or [`Leader::release`].
    Leader(Leader),
    /// Wait for the leader with [`wait`].
    Follower(watch::Receiver<Option<Ended>>),
}

impl Flights {
    pub(crate) fn join(&self, key: &Key) -> Role {
        let mut map = self.map.lock();
        if let Some(slot) = map.get(key) {
            return Role::Follower(slot.subscribe());
        }
        let slot = Arc::new(watch::Sender::new(None));
        map.insert(key.clone(), Arc::clone(&slot));
        Role::Leader(Leader {
            map: Arc::clone(&self.map),
            key: key.clone(),
            slot,
        })
    }

    /// Whether `key` is being computed.
    pub(crate) fn busy(&self, key: &Key) -> bool {
        self.map.lock().contains_key(key)
    }

    /// Number of keys being computed (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.lock().len()
    }
}

/// The caller computing a key (or the task it handed the computation to). Dropping it
/// without [`finish`](Self::finish) or [`release`](Self::release) (a cancelled future)
/// makes the next follower lead.
pub(crate) struct Leader {
    map: Arc<Map>,
    key: Key,
    slot: Arc<Slot>,
}

impl Leader {
    /// Hands `handoff` to every follower.
    pub(crate) fn finish(self, handoff: Handoff) {
        self.slot.send_replace(Some(Ended::Value(handoff)));
        // `Drop` unregisters the flight.
    }

    /// The computation ended with nothing to hand over (an error, an answer that is not
    /// stored): every follower computes on its own, at once.
    pub(crate) fn release(self) {
        self.slot.send_replace(Some(Ended::Released));
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        let mut map = self.map.lock();
        if map
            .get(&self.key)
            .is_some_and(|slot| Arc::ptr_eq(slot, &self.slot))
        {
            map.remove(&self.key);
        }
    }
}

/// Waits for the leader: how its round ended, or `None` when it was cancelled.
pub(crate) async fn wait(mut rx: watch::Receiver<Option<Ended>>) -> Option<Ended> {
    match rx.wait_for(Option::is_some).await {
        Ok(ended) => ended.clone(),
        // The leader dropped its slot without a word.
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_get_the_leaders_value() {
        let flights = Flights::default();
        let key = Key::new("k").unwrap();
        let Role::Leader(leader) = flights.join(&key) else {
            panic!("first caller must lead")
        };
        let Role::Follower(rx) = flights.join(&key) else {
            panic!("second caller must follow")
        };
        leader.finish(Handoff {
            value: Arc::new(7u32),
            still_current: Arc::new(|| true),
        });
        let Some(Ended::Value(got)) = wait(rx).await else {
            panic!("the leader's value")
        };
        assert_eq!(got.value.downcast_ref::<u32>(), Some(&7));
        assert_eq!(flights.len(), 0);
    }

    #[tokio::test]
    async fn a_released_round_frees_every_follower_at_once() {
        let flights = Flights::default();
        let key = Key::new("k").unwrap();
        let Role::Leader(leader) = flights.join(&key) else {
            panic!("first caller must lead")
        };
        let followers: Vec<_> = (0..3)
            .map(|_| match flights.join(&key) {
                Role::Follower(rx) => rx,
                Role::Leader(_) => panic!("later callers follow"),
            })
            .collect();
        leader.release();
        for rx in followers {
            assert!(matches!(wait(rx).await, Some(Ended::Released)));
        }
        assert_eq!(flights.len(), 0, "the round is over");
    }

    #[tokio::test]
    async fn a_dropped_leader_releases_followers_empty_handed() {
        let flights = Flights::default();
        let key = Key::new("k").unwrap();
        let leader = flights.join(&key);
        let Role::Follower(rx) = flights.join(&key) else {
            panic!("second caller must follow")
        };
        drop(leader);
        assert!(wait(rx).await.is_none());
        assert!(matches!(flights.join(&key), Role::Leader(_)));
    }
}
