//! The live invalidation stream: every batch of tags this instance invalidates (its own
//! writes, published by the cache, and those heard from other instances over the tiered
//! store's channel, published by that store), on a bounded in-process broadcast channel for
//! whoever listens ([`Cache::invalidation_events`]; the management router's `GET /events`
//! turns it into Server-Sent Events for browsers). A room of its own: the cache and the
//! stores both publish on it, and neither needs the other for that.
//!
//! Publishing costs one atomic load when nobody listens; otherwise one `Arc<[Tag]>` per
//! batch. A listener that falls more than [`INVALIDATION_EVENTS_CAPACITY`] batches behind
//! loses the oldest ones and is told so ([`Received::Lost`]): it must then assume anything
//! may have changed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::broadcast;

#[cfg(doc)]
use crate::Cache;
use crate::Tag;

/// How many batches a listener may fall behind before it loses some (and receives
/// [`Received::Lost`]).
///
/// ```
/// assert!(querycache::INVALIDATION_EVENTS_CAPACITY >= 64);
/// ```
pub const INVALIDATION_EVENTS_CAPACITY: usize = 1024;

/// One published invalidation.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use querycache::{Cache, InvalidationEvent, Received, Tag};
///
/// let cache = Cache::new();
/// let mut events = cache.invalidation_events();
/// cache.invalidate_tags([Tag::model("songs")]).await;
/// let Some(Received::Event(InvalidationEvent::Tags { seq, tags })) = events.recv().await else {
///     panic!("a batch of tags");
/// };
/// assert_eq!((seq, tags[0].as_str()), (1, "model:songs"));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidationEvent {
    /// Tags whose versions moved: every entry depending on one of them is gone.
    Tags {
        /// This instance's sequence number of the event (1, 2, …; shared by all kinds).
        seq: u64,
        /// The tags, as one batch (one write, one `invalidate_tags` call, one message from
        /// another instance).
        tags: Arc<[Tag]>,
    },
    /// Everything was removed (a clear, here or on another instance), or the keys matching
    /// a pattern, which no tag describes: a listener must assume anything changed. (Single
    /// keys removed by [`Cache::delete`] are not published.)
    Cleared {
        /// This instance's sequence number of the event.
        seq: u64,
    },
}

impl InvalidationEvent {
    /// The event's sequence number.
    ///
    /// ```
    /// use querycache::InvalidationEvent;
    /// assert_eq!(InvalidationEvent::Cleared { seq: 7 }.seq(), 7);
    /// ```
    pub fn seq(&self) -> u64 {
        match self {
            InvalidationEvent::Tags { seq, .. } | InvalidationEvent::Cleared { seq } => *seq,
        }
    }
}

/// What [`InvalidationEvents::recv`] got.
///
/// ```
/// use querycache::Received;
/// let lost = Received::Lost(3);
/// assert!(matches!(lost, Received::Lost(n) if n == 3));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// The next event.
    Event(InvalidationEvent),
    /// This listener fell behind: that many events were lost. Assume anything changed.
    Lost(u64),
}

/// A listener of a cache's invalidations ([`Cache::invalidation_events`]); it sees the
/// events published after it was created.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use querycache::{Cache, Received, Tag};
///
/// let cache = Cache::new();
/// let mut events = cache.invalidation_events();
/// for i in 0..(querycache::INVALIDATION_EVENTS_CAPACITY as u64 + 5) {
///     cache.invalidate_tags([Tag::row("songs", i)]).await;
/// }
/// assert_eq!(events.recv().await, Some(Received::Lost(5)));
/// # }
/// ```
#[derive(Debug)]
pub struct InvalidationEvents {
    receiver: broadcast::Receiver<InvalidationEvent>,
}

impl InvalidationEvents {
    /// The next event, waiting for it; `None` once the cache is dropped.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = querycache::Cache::new();
    /// let mut events = cache.invalidation_events();
    /// cache.clear().await;
    /// assert!(matches!(events.recv().await, Some(querycache::Received::Event(_))));
    /// # }
    /// ```
    pub async fn recv(&mut self) -> Option<Received> {
        match self.receiver.recv().await {
            Ok(event) => Some(Received::Event(event)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(Received::Lost(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

/// The sending side, shared by the cache and, for other instances' messages, the tiered
/// store.
#[derive(Debug)]
pub(crate) struct EventBus {
    sender: broadcast::Sender<InvalidationEvent>,
    seq: AtomicU64,
    /// This cache's instance id (random; the tiered store's channel names it too).
    instance: String,
}

impl EventBus {
    pub(crate) fn new() -> Self {
        EventBus {
            sender: broadcast::channel(INVALIDATION_EVENTS_CAPACITY).0,
            seq: AtomicU64::new(0),
            instance: format!("{:016x}", rand::random::<u64>()),
        }
    }

    /// This cache's instance id.
    pub(crate) fn instance(&self) -> &str {
        &self.instance
    }

    /// Publishes `tags` as one batch (nothing when they are empty or nobody listens).
    pub(crate) fn tags(&self, tags: &[Tag]) {
        if tags.is_empty() || self.sender.receiver_count() == 0 {
            return;
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        // An error means every listener left meanwhile: nothing to do.
        let _ = self.sender.send(InvalidationEvent::Tags {
            seq,
            tags: tags.into(),
        });
    }

    /// Publishes that anything may have changed.
    pub(crate) fn cleared(&self) {
        if self.sender.receiver_count() == 0 {
            return;
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let _ = self.sender.send(InvalidationEvent::Cleared { seq });
    }

    /// A new listener.
    pub(crate) fn subscribe(&self) -> InvalidationEvents {
        InvalidationEvents {
            receiver: self.sender.subscribe(),
        }
    }
}
