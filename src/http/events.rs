//! `GET /events` of the management router: the cache's live invalidation stream as
//! Server-Sent Events, in the format the browser client (`clients/js`, `liveInvalidation`)
//! reads:
//!
//! ```text
//! event: ready
//! data: {"instance":"3f9c1d7be2a04c55"}
//!
//! event: invalidate
//! id: 12
//! data: {"tags":["model:songs","model:songs:42"]}
//!
//! event: reset
//! data: {}
//! ```
//!
//! `invalidate` carries the tags of one batch that the [`TagFilter`] allows (a batch with
//! none left is not sent); `reset` means "assume anything changed": this listener fell
//! behind and lost events, or the cache was cleared (locally, by a pattern, or by another
//! instance), or the tiered store's channel reconnected. A comment line is sent every
//! 15 seconds so that proxies keep the connection open. Served by [`serve`](super::serve),
//! the stream ends when the server starts shutting down (the browser reconnects to the next
//! instance), so an open page does not hold the shutdown up.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{Extensions, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt, stream};

use super::TagFilter;
use super::management::Shared;
use super::serve::Draining;
use crate::{InvalidationEvent, InvalidationEvents, Received};

/// How often a keep-alive comment is sent.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub(crate) async fn stream(State(shared): State<Shared>, extensions: Extensions) -> Response {
    // Read from the extensions rather than as `Option<Extension<_>>`, which axum only
    // extracts since 0.8.1 (the manifest accepts 0.8.0).
    let draining = extensions.get::<Draining>().cloned();
    let events = shared.cache.invalidation_events();
    let ready = Event::default()
        .event("ready")
        .data(serde_json::json!({ "instance": shared.cache.instance_id() }).to_string());
    tracing::debug!("invalidation stream opened");
    let body = stream::once(async { Ok(ready) })
        .chain(batches(events, shared.event_tags.clone()))
        .take_until(async move {
            match draining {
                Some(Draining(mut stopping)) => {
                    // An error: the server is gone, which is a shutdown too.
                    let _ = stopping.wait_for(|stop| *stop).await;
                }
                None => std::future::pending().await,
            }
        });
    let mut response = Sse::new(body)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    // Proxies that buffer answers (nginx) would hold the events back.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// The events after `ready`: one per batch with allowed tags, `reset` for the rest.
fn batches(
    events: InvalidationEvents,
    filter: TagFilter,
) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold((events, filter), |(mut events, filter)| async move {
        loop {
            let event = match events.recv().await? {
                Received::Event(InvalidationEvent::Tags { seq, tags }) => {
                    let kept = filter.kept(tags.iter().map(crate::Tag::as_str));
                    if kept.is_empty() {
                        continue;
                    }
                    Event::default()
                        .event("invalidate")
                        .id(seq.to_string())
                        .data(serde_json::json!({ "tags": kept }).to_string())
                }
                Received::Event(InvalidationEvent::Cleared { seq }) => Event::default()
                    .event("reset")
                    .id(seq.to_string())
                    .data("{}"),
                Received::Lost(lost) => {
                    tracing::debug!(lost, "invalidation stream fell behind: reset sent");
                    Event::default().event("reset").data("{}")
                }
            };
            return Some((Ok(event), (events, filter)));
        }
    })
}
