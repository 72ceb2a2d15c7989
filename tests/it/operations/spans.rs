//! Spans: every cached read records `cache.hit` and `cache.tier` on the caller's span when
//! it declares them, and work the read leaves running in the background (a
//! stale-while-revalidate refresh, a computation past its soft timeout) runs in that span.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use parking_lot::Mutex;
use querycache::testing::ManualClock;
use querycache::{Cache, EntryOptions, cached_query};
use tracing::field::{Empty, Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Instrument, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::support::until;

/// What the layer saw.
#[derive(Default, Debug)]
struct Seen {
    /// The `cache.*` fields recorded on each span, by span id, in order.
    recorded: HashMap<u64, Vec<(String, String)>>,
    /// Each span's name and parent.
    spans: HashMap<u64, (String, Option<u64>)>,
    /// Each event's message and the span it happened in.
    events: Vec<(String, Option<u64>)>,
}

/// Captures recorded field values, spans' parents and events' spans.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Seen>>);

/// Writes the `cache.*` fields and the message of a record or event as text.
struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.push((field.name().to_owned(), value.to_string()));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let parent = ctx
            .span_scope(id)
            .and_then(|mut scope| scope.nth(1))
            .map(|parent| parent.id().into_u64());
        let name = attrs.metadata().name().to_owned();
        self.0.lock().spans.insert(id.into_u64(), (name, parent));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut fields = Vec::new();
        values.record(&mut Fields(&mut fields));
        let mut seen = self.0.lock();
        seen.recorded
            .entry(id.into_u64())
            .or_default()
            .extend(fields);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Vec::new();
        event.record(&mut Fields(&mut fields));
        let Some((_, message)) = fields.into_iter().find(|(name, _)| name == "message") else {
            return;
        };
        let span = ctx.event_span(event).map(|span| span.id().into_u64());
        self.0.lock().events.push((message, span));
    }
}

impl Capture {
    /// The `cache.hit` and `cache.tier` values last recorded on `span`.
    fn outcome(&self, span: &tracing::Span) -> (Option<String>, Option<String>) {
        let id = span.id().expect("an enabled span").into_u64();
        let seen = self.0.lock();
        let recorded = seen.recorded.get(&id).cloned().unwrap_or_default();
        let last = |name: &str| {
            recorded
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        (last("cache.hit"), last("cache.tier"))
    }

    /// The span the event `message` happened in, once it has happened.
    fn event_span(&self, message: &str) -> Option<Option<u64>> {
        let seen = self.0.lock();
        seen.events
            .iter()
            .find(|(m, _)| m == message)
            .map(|(_, span)| *span)
    }

    /// The spans around the event `message`, innermost first: `(id, name)`; `None` until
    /// the event has happened.
    fn event_scope(&self, message: &str) -> Option<Vec<(u64, String)>> {
        let mut span = self.event_span(message)?;
        let seen = self.0.lock();
        let mut scope = Vec::new();
        while let Some(id) = span {
            let (name, parent) = seen.spans.get(&id).cloned()?;
            scope.push((id, name));
            span = parent;
        }
        Some(scope)
    }
}

/// A subscriber with the capture layer, the default on this thread while the guard lives.
fn capture() -> (Capture, tracing::subscriber::DefaultGuard) {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    (capture, tracing::subscriber::set_default(subscriber))
}

fn request_span() -> tracing::Span {
    tracing::info_span!("request", cache.hit = Empty, cache.tier = Empty)
}

fn outcome(hit: &str, tier: &str) -> (Option<String>, Option<String>) {
    (Some(hit.to_owned()), Some(tier.to_owned()))
}

#[tokio::test]
async fn get_or_compute_records_miss_then_hit_on_the_callers_span() {
    let (capture, _guard) = capture();
    let cache = Cache::new();
    let options = EntryOptions::new();

    let first = request_span();
    cache
        .get_or_compute("span:1", options.clone(), || async { 1_u32 })
        .instrument(first.clone())
        .await;
    assert_eq!(capture.outcome(&first), outcome("false", "none"));

    let second = request_span();
    cache
        .get_or_compute("span:1", options.clone(), || async { 2_u32 })
        .instrument(second.clone())
        .await;
    assert_eq!(capture.outcome(&second), outcome("true", "memory"));

    // `fetch` and `get` record the same way.
    let third = request_span();
    let fetched = cache
        .fetch("span:1", options.clone(), || async { Ok::<u32, String>(3) })
        .instrument(third.clone())
        .await
        .unwrap();
    assert_eq!(*fetched, 1);
    assert_eq!(capture.outcome(&third), outcome("true", "memory"));
    let fourth = request_span();
    let missing = cache
        .get::<u32>("span:absent")
        .instrument(fourth.clone())
        .await;
    assert!(missing.is_none());
    assert_eq!(capture.outcome(&fourth), outcome("false", "none"));

    // A span that does not declare the fields gets none; nothing else breaks.
    let plain = tracing::info_span!("plain");
    cache
        .get_or_compute("span:1", options, || async { 4_u32 })
        .instrument(plain.clone())
        .await;
    assert_eq!(capture.outcome(&plain), (None, None));
    assert_eq!(cache.stats().hits, 3);
}

static CACHE: LazyLock<Cache> = LazyLock::new(Cache::new);

#[cached_query(ttl = 60, cache = *CACHE)]
async fn doubled(n: u32) -> u32 {
    n * 2
}

#[tokio::test]
async fn cached_query_calls_record_on_the_callers_span() {
    let (capture, _guard) = capture();
    let first = request_span();
    assert_eq!(doubled(21).instrument(first.clone()).await, 42);
    assert_eq!(capture.outcome(&first), outcome("false", "none"));
    // The macro's own hit path (`Call::hit`), before anything else is built.
    let second = request_span();
    assert_eq!(doubled(21).instrument(second.clone()).await, 42);
    assert_eq!(capture.outcome(&second), outcome("true", "memory"));
}

#[tokio::test]
async fn a_background_refresh_runs_in_the_span_of_the_read_that_started_it() {
    let (capture, _guard) = capture();
    let clock = ManualClock::new();
    let cache = Cache::builder().clock(clock.clone()).build().unwrap();
    let options = EntryOptions::new()
        .ttl(Duration::from_secs(10))
        .swr(Duration::from_secs(60));
    let first = request_span();
    cache
        .fetch("swr:span", options.clone(), || async {
            tracing::info!("first computation");
            Ok::<u32, String>(1)
        })
        .instrument(first.clone())
        .await
        .unwrap();
    // The computation runs in querycache's span, a child of the caller's.
    let scope = capture.event_scope("first computation").unwrap();
    let first_id = first.id().unwrap().into_u64();
    assert_eq!(
        scope,
        [
            (scope[0].0, "querycache.compute".to_owned()),
            (first_id, "request".to_owned())
        ]
    );

    clock.advance(Duration::from_secs(20));
    let caller = request_span();
    let stale = cache
        .fetch("swr:span", options.clone(), || async {
            let query = tracing::info_span!("refresh query");
            async { tracing::info!("refreshing in the background") }
                .instrument(query)
                .await;
            Ok::<u32, String>(2)
        })
        .instrument(caller.clone())
        .await
        .unwrap();
    assert!(
        stale.is_stale(),
        "served stale, refreshed in the background"
    );
    assert_eq!(*stale, 1);
    // A stale lookup is counted as a miss, and recorded so.
    assert_eq!(capture.outcome(&caller), outcome("false", "none"));

    // `caller` is alive (held here), so its id is not reused while we compare.
    let caller_id = caller.id().unwrap().into_u64();
    until(Duration::from_secs(10), "the refresh ran", async || {
        capture.event_span("refreshing in the background").is_some()
    })
    .await;
    // The refresh ran on a task of its own, after the caller had its answer: in the
    // caller's span all the same, under querycache's refresh span.
    let scope = capture.event_scope("refreshing in the background").unwrap();
    let names: Vec<&str> = scope.iter().map(|(_, name)| name.as_str()).collect();
    assert_eq!(names, ["refresh query", "querycache.refresh", "request"]);
    assert_eq!(scope[2].0, caller_id);
    until(Duration::from_secs(10), "the refresh lands", async || {
        let fetched = cache
            .fetch("swr:span", options.clone(), || async {
                Ok::<u32, String>(3)
            })
            .await
            .unwrap();
        *fetched == 2 && !fetched.is_stale()
    })
    .await;
    assert_eq!(cache.stats().background_refreshes, 1);
}

#[tokio::test]
async fn a_computation_past_its_soft_timeout_goes_on_in_the_callers_span() {
    let (capture, _guard) = capture();
    let clock = ManualClock::new();
    let cache = Cache::builder().clock(clock.clone()).build().unwrap();
    let options = EntryOptions::new()
        .ttl(Duration::from_secs(10))
        .fail_safe(Duration::from_secs(600))
        .soft_timeout(Duration::from_millis(1));
    cache
        .fetch("soft:span", options.clone(), || async {
            Ok::<u32, String>(1)
        })
        .await
        .unwrap();
    clock.advance(Duration::from_secs(20));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let caller = request_span();
    let held = Arc::clone(&gate);
    let answer = cache
        .fetch("soft:span", options, move || async move {
            let _open = held.acquire().await.map_err(|e| e.to_string())?;
            tracing::info!("finished after the caller left");
            Ok::<u32, String>(2)
        })
        .instrument(caller.clone())
        .await
        .unwrap();
    assert_eq!((*answer, answer.is_stale()), (1, true));
    gate.add_permits(1);
    until(
        Duration::from_secs(10),
        "the computation finished",
        async || {
            capture
                .event_span("finished after the caller left")
                .is_some()
        },
    )
    .await;
    let scope = capture
        .event_scope("finished after the caller left")
        .unwrap();
    let caller_id = caller.id().unwrap().into_u64();
    assert_eq!(
        scope.last(),
        Some(&(caller_id, "request".to_owned())),
        "{scope:?}"
    );
}
