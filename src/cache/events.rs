//! The cache's side of the live invalidation stream ([`crate::events`]): listening, and the
//! instance id the stream names.

use super::Cache;
use crate::events::InvalidationEvents;
#[cfg(doc)]
use crate::events::{InvalidationEvent, Received};

impl Cache {
    /// A listener of every invalidation from now on: the tags of this instance's writes and
    /// `invalidate_*` calls, of change feeds, and — with the tiered or Redis store — those
    /// other instances publish on the invalidation channel; clears (and removals by
    /// pattern) as [`InvalidationEvent::Cleared`]. Events are in process and best effort:
    /// a slow listener gets [`Received::Lost`] instead of blocking writers.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use querycache::{Cache, InvalidationEvent, Received, Tag};
    ///
    /// let cache = Cache::new();
    /// let mut events = cache.invalidation_events();
    /// cache.invalidate_tags([Tag::model("songs"), Tag::row("songs", 42)]).await;
    /// match events.recv().await {
    ///     Some(Received::Event(InvalidationEvent::Tags { tags, .. })) => {
    ///         let names: Vec<&str> = tags.iter().map(Tag::as_str).collect();
    ///         assert_eq!(names, ["model:songs", "model:songs:42"]);
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// # }
    /// ```
    pub fn invalidation_events(&self) -> InvalidationEvents {
        self.inner.events.subscribe()
    }

    /// This cache's instance id: 16 random hex digits, chosen at construction (the
    /// invalidation channel of the tiered store names this instance with it, and the event
    /// stream's `ready` event sends it).
    ///
    /// ```
    /// let cache = querycache::Cache::new();
    /// assert_eq!(cache.instance_id().len(), 16);
    /// assert_ne!(cache.instance_id(), querycache::Cache::new().instance_id());
    /// ```
    pub fn instance_id(&self) -> &str {
        self.inner.events.instance()
    }
}
