//! The invalidation channel: how instances sharing Redis keep their memory tiers coherent.
//!
//! Every invalidation an instance makes (tags bumped, a key or a pattern removed, a clear)
//! is published on `<prefix>:invalidations` once Redis holds it. Each instance subscribes
//! and applies what the others publish to its memory tier. Pub/sub delivers at most once:
//! a message sent while the subscription was down is lost, so whenever the subscription
//! (re)connects the instance drops its whole memory tier, and until it has, the memory
//! tier is not read.
//!
//! The subscriber is one task per cache on a dedicated connection (a subscribed
//! connection can run no other command). It stops when the cache is dropped.

use std::sync::Weak;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// One invalidation, as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Message {
    /// The publishing instance, which ignores its own messages (it applied them already).
    pub(crate) from: String,
    /// What was invalidated.
    #[serde(flatten)]
    pub(crate) op: Op,
}

/// What a message invalidates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub(crate) enum Op {
    /// Tags whose versions moved.
    Tags { tags: Vec<String> },
    /// One key removed.
    Key { key: String },
    /// Keys matching a glob removed.
    Pattern { pattern: String },
    /// Everything removed.
    Clear,
}

impl Message {
    pub(crate) fn encode(&self) -> Vec<u8> {
        // Strings and a tagged enum: serialization cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// What the subscriber reports to the store that owns it.
pub(crate) trait Listener: Send + Sync + 'static {
    /// The subscription is live (again): messages may have been missed before it.
    fn subscribed(&self);
    /// The subscription is lost: messages may be missed from now on.
    fn lost(&self, error: &str);
    /// A message arrived.
    fn message(&self, payload: &[u8]);
    /// The servers to subscribe on, in the order to try them, asked before each attempt
    /// (a Sentinel's master changes with a failover); the reason when there is none.
    fn clients(
        &self,
    ) -> impl std::future::Future<Output = Result<Vec<redis::Client>, String>> + Send;
}

/// How many heartbeat intervals the subscription may stay silent before it counts as lost
/// (unless the degraded bound is shorter: see [`Heartbeat::new`]).
pub(crate) const HEARTBEAT_DEADLINE_FACTOR: u32 = 3;

/// The subscription's heartbeat: how often it pings its own connection, and how long that
/// connection may stay silent before it counts as lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Heartbeat {
    pub(crate) every: Duration,
    pub(crate) silence: Duration,
}

impl Heartbeat {
    /// A ping every `every`; silence allowed for three of them, or `degraded_max_age`
    /// (`CACHE_DEGRADED_MAX_AGE_MS`) if that is shorter — a silent channel is one this
    /// instance cannot be sure it hears, and the memory tier it keeps serving meanwhile must
    /// not lag more than that bound — but never less than two: a ping needs time for its
    /// reply.
    pub(crate) fn new(every: Duration, degraded_max_age: Duration) -> Self {
        let every = every.max(Duration::from_millis(1));
        let silence = every
            .saturating_mul(HEARTBEAT_DEADLINE_FACTOR)
            .min(degraded_max_age.max(every.saturating_mul(2)));
        Heartbeat { every, silence }
    }
}

/// What happened next on a live subscription.
enum Event {
    Shutdown,
    Message(Option<redis::Msg>),
    Tick,
    Pong(redis::RedisResult<redis::Value>),
    Silent,
}

type PingFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = redis::RedisResult<redis::Value>> + Send>>;

/// Subscribes to `channel` on the first of `clients` that answers, hands every message to
/// `listener`, and reconnects (trying each client in turn, `retry` apart) whenever the
/// connection drops. Returns when `listener` is gone or `shutdown` fires.
///
/// While subscribed it sends a `PING` on the subscribed connection itself every
/// `heartbeat.every`: a flow that a NAT, load balancer or proxy forgot without a reset delivers
/// nothing and closes nothing, so only a reply that must come back through this very
/// connection tells it apart from a quiet channel. When nothing arrives on the connection
/// (no message, no reply to a ping) within `heartbeat.silence`, the
/// subscription is lost: `listener.lost` is told, the connection dropped, and the normal
/// reconnection path runs. Other instances' messages do not stand in for the ping's reply:
/// what is measured is this connection's flow.
pub(crate) async fn subscribe<L: Listener>(
    channel: String,
    timeout: Duration,
    retry: Duration,
    heartbeat: Heartbeat,
    listener: Weak<L>,
    mut shutdown: watch::Receiver<()>,
) {
    let Heartbeat {
        every: heartbeat,
        silence: deadline,
    } = heartbeat;
    let mut next = 0usize;
    loop {
        let Some(l) = listener.upgrade() else { return };
        let found = l.clients().await;
        let client = match found {
            Ok(clients) => clients.get(next % clients.len().max(1)).cloned(),
            Err(reason) => {
                l.lost(&reason);
                None
            }
        };
        drop(l);
        let Some(client) = client else {
            tokio::select! {
                _ = shutdown.changed() => return,
                () = tokio::time::sleep(retry) => continue,
            }
        };
        next = next.wrapping_add(1);
        let connect = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let attempt = tokio::select! {
            _ = shutdown.changed() => return,
            attempt = tokio::time::timeout(timeout.saturating_mul(4), connect) => attempt,
        };
        match attempt {
            Ok(Ok(pubsub)) => {
                let Some(l) = listener.upgrade() else { return };
                l.subscribed();
                drop(l);
                tracing::debug!(channel = %channel, "invalidation channel subscribed");
                let (sink, mut stream) = pubsub.split();
                let start = tokio::time::Instant::now();
                // When this connection last delivered something.
                let mut heard = start;
                let mut ticker = tokio::time::interval_at(start + heartbeat, heartbeat);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut ping: Option<PingFuture> = None;
                loop {
                    let event = tokio::select! {
                        _ = shutdown.changed() => Event::Shutdown,
                        msg = stream.next() => Event::Message(msg),
                        _ = ticker.tick() => Event::Tick,
                        pong = async {
                            match ping.as_mut() {
                                Some(ping) => ping.await,
                                None => std::future::pending().await,
                            }
                        } => Event::Pong(pong),
                        () = tokio::time::sleep_until(heard + deadline) => Event::Silent,
                    };
                    let Some(l) = listener.upgrade() else { return };
                    match event {
                        Event::Shutdown => return,
                        Event::Message(Some(msg)) => {
                            heard = tokio::time::Instant::now();
                            l.message(msg.get_payload_bytes());
                        }
                        Event::Message(None) => {
                            l.lost("the subscription's connection closed");
                            break;
                        }
                        Event::Tick => {
                            // One ping in flight at a time: its deadline is `heard`'s.
                            if ping.is_none() {
                                let mut sink = sink.clone();
                                ping = Some(Box::pin(
                                    async move { sink.ping::<redis::Value>().await },
                                ));
                            }
                        }
                        Event::Pong(Ok(_)) => {
                            ping = None;
                            heard = tokio::time::Instant::now();
                        }
                        Event::Pong(Err(error)) => {
                            l.lost(&format!("heartbeat ping failed: {error}"));
                            break;
                        }
                        Event::Silent => {
                            let silent_ms = u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX);
                            tracing::warn!(
                                channel = %channel,
                                deadline_ms = silent_ms,
                                "no heartbeat on the invalidation channel within its deadline; treating the subscription as lost"
                            );
                            l.lost(&format!(
                                "no heartbeat within {deadline:?} (the connection went silent)"
                            ));
                            break;
                        }
                    }
                }
            }
            Ok(Err(error)) => {
                let Some(l) = listener.upgrade() else { return };
                l.lost(&error.to_string());
            }
            Err(_) => {
                let Some(l) = listener.upgrade() else { return };
                l.lost("subscribing timed out");
            }
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            () = tokio::time::sleep(retry) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_silence_deadline_is_three_heartbeats_or_the_degraded_bound_but_at_least_two() {
        let ms = Duration::from_millis;
        assert_eq!(Heartbeat::new(ms(1000), ms(3000)).silence, ms(3000));
        assert_eq!(Heartbeat::new(ms(1000), ms(60_000)).silence, ms(3000));
        assert_eq!(Heartbeat::new(ms(1000), ms(2500)).silence, ms(2500));
        assert_eq!(Heartbeat::new(ms(1000), ms(500)).silence, ms(2000));
        assert_eq!(Heartbeat::new(ms(200), ms(300)).silence, ms(400));
        assert_eq!(Heartbeat::new(ms(1000), Duration::ZERO).silence, ms(2000));
        assert_eq!(Heartbeat::new(Duration::ZERO, Duration::ZERO).every, ms(1));
    }

    #[test]
    fn messages_round_trip() {
        for op in [
            Op::Tags {
                tags: vec!["model:songs".into(), "model:songs:7".into()],
            },
            Op::Key { key: "k".into() },
            Op::Pattern {
                pattern: "user:*".into(),
            },
            Op::Clear,
        ] {
            let m = Message {
                from: "abc".into(),
                op,
            };
            assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        }
        assert!(Message::decode(b"\xff garbage").is_err());
    }
}
