//! What a cached read found, recorded on the caller's current `tracing` span: the fields
//! [`HIT_FIELD`] and [`TIER_FIELD`], when that span declares them.

use tracing::field::{Field, Value};

use super::LookupOutcome;

/// The span field a cached read records whether it was a hit on (`bool`): `true` when the
/// value came from the cache fresh, `false` for a miss (absent, expired or invalidated —
/// including a stale entry served within a stale-while-revalidate or fail-safe window, as
/// [`CacheStats`](super::CacheStats) counts it).
///
/// A span records only the fields it declares: declare it `Empty` on the spans that should
/// carry it. A span without it, a disabled span, or no span costs the read a look at the
/// current span's field names, nothing more (measured: 4 ns without a subscriber, 18 ns
/// inside a span of tracing-subscriber's registry that lacks the fields, 23 ns recording
/// both into one that has them; a layer that formats recorded fields, as the `fmt` layer
/// does, adds its own cost to each recording).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use querycache::{Cache, EntryOptions};
/// use tracing::{Instrument, field::Empty};
///
/// let cache = Cache::new();
/// let span = tracing::info_span!("get_song", cache.hit = Empty, cache.tier = Empty);
/// let value = cache
///     .get_or_compute("song:7", EntryOptions::new(), || async { 7_u32 })
///     .instrument(span)
///     .await;
/// assert_eq!(*value, 7);
/// assert_eq!(querycache::stats::HIT_FIELD, "cache.hit");
/// # }
/// ```
pub const HIT_FIELD: &str = "cache.hit";

/// The span field a cached read records the tier that answered on (`str`): `memory`,
/// `redis`, or `none` for a miss. See [`HIT_FIELD`].
///
/// ```
/// assert_eq!(querycache::stats::TIER_FIELD, "cache.tier");
/// ```
pub const TIER_FIELD: &str = "cache.tier";

/// Records `outcome` on the current span, if it declares either field. No span is cloned
/// and nothing is allocated: the dispatcher's current span is looked at in place.
#[inline]
pub(crate) fn record(outcome: LookupOutcome) {
    // No subscriber was ever set: there is no span (what `tracing`'s own macros check).
    if tracing::dispatcher::has_been_set() {
        record_on_current(outcome);
    }
}

/// [`record`] once a subscriber was set.
#[inline(never)]
fn record_on_current(outcome: LookupOutcome) {
    tracing::dispatcher::get_default(|dispatch| {
        let current = dispatch.current_span();
        let Some((id, metadata)) = current.into_inner() else {
            return;
        };
        let fields = metadata.fields();
        let (hit, tier) = match outcome {
            LookupOutcome::Hit(tier) => (true, tier),
            LookupOutcome::Miss => (false, "none"),
        };
        let record = |field: &Field, value: &dyn Value| {
            let values = [(field, Some(value))];
            dispatch.record(&id, &tracing::span::Record::new(&fields.value_set(&values)));
        };
        if let Some(field) = fields.field(HIT_FIELD) {
            record(&field, &hit);
        }
        if let Some(field) = fields.field(TIER_FIELD) {
            record(&field, &tier);
        }
    });
}
