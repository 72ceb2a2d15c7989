//! Which version keys an entry's header lists, remembered per key: what lets a hit skip the
//! get script on a single server.
//!
//! The script reads an entry and its versions on the server, but running it — the entry
//! turned into a Lua string, the header parsed in Lua, each version read through
//! `redis.call` — costs the server about ten times a plain `GET` (`benches/redis_hit.rs`
//! prints both). When the store knows which version keys the entry under a key recorded
//! (from the last time this process stored or read that key), a hit is instead one
//! pipeline, one round trip:
//!
//! ```text
//! GET <entry>; MGET <version keys>; PTTL <entry>
//! ```
//!
//! and the store compares the snapshot in the entry's header with the versions, as the
//! script does on the server.
//!
//! # Why a plain pipeline is proof enough
//!
//! The pipeline is not a transaction (`MULTI`/`EXEC` would cost the server a queued reply
//! per command and an `EXEC` on top): another client's commands may run between its
//! `GET` and its `MGET`. It proves the entry current all the same, because Redis runs the
//! commands of one connection in the order they were sent, so the `GET` (at `t1`) runs
//! before the `MGET` (at `t2 > t1`), and:
//!
//! * the entry was stored (at `t0 < t1`) by the put script, which stores it only if every
//!   version its header records is the current one at that instant, on the server;
//! * version tokens are never reused: a bump writes a fresh random 128-bit token, a lost
//!   version comes back as a fresh one, a new server incarnation rotates the store epoch
//!   (one more version every entry records, see [`super::epoch`]) — a version key never
//!   goes back to a token it held before.
//!
//! So if the `MGET` reads, for every version key, the very token the header records, each
//! of them held that token from `t0` to `t2` without a change in between: no invalidation
//! of the entry's tags committed between its store and the `MGET`, and at `t1`, when the
//! `GET` read it, the entry was current. The read is linearizable at `t1`, as the
//! transaction's was at its one instant. (An entry replaced between the `GET` and the
//! `MGET` does not matter: what is served is the one read, current when read.)
//!
//! The `PTTL` (sent only when a memory tier is in front) is no proof of anything, only how long the entry has left in Redis, which
//! the tiered store uses to bound how long its memory tier keeps a value (not how long it
//! is fresh: that is in the header). It runs after the `GET`, so it may see a newer entry
//! stored under the key in between (a lifetime that is that entry's), or none (`-2`:
//! reported as unknown, and the memory tier is not filled). In the first case, a race of
//! a few microseconds, the memory tier may keep the value read as long as Redis keeps the
//! newer entry: never fresh past the time its own header says, and dropped, like any
//! memory entry, by an invalidation of its tags.
//!
//! A hint only ever shortens a hit or a miss. Whenever the pipeline's answer is anything
//! else — the header lists other version keys than the hint, a version moved or is gone,
//! the payload does not parse — the store asks the script, whose answer is authoritative
//! (it unlinks an outdated entry, reports garbage). Hints are bounded ([`CAPACITY`] keys)
//! and never need invalidating: a wrong one costs a round trip, not a stale read.

use std::sync::Arc;
use std::time::Duration;

use redis::Value;

use super::RawLookup;
use crate::store::{StoreError, codec};

/// How many keys' hints are kept (the least used are forgotten first).
pub(super) const CAPACITY: usize = 16_384;

/// Version keys per cache key: each hint is the keys, in the order the entry's header lists
/// them (kept as separate strings: a hit never splits text).
///
/// Cache keys are known by their 64-bit xxh3 hash only: no copy of the key is kept, and a
/// lookup compares no string (on a hit path whose hints are scattered in memory, the key
/// comparison was a cache miss of its own). Two keys with the same hash share a hint, which
/// is then wrong for one of them: harmless, as any wrong hint (the header lists other
/// version keys) sends the lookup to the script.
pub(super) struct Hints {
    map: quick_cache::sync::Cache<u64, Hint>,
}

/// The version keys of one entry, in header order.
pub(super) type Hint = Arc<[Box<str>]>;

/// What a cache key is known by in [`Hints`].
fn hashed(key: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key.as_bytes())
}

/// What the pipeline found.
#[derive(Debug)]
pub(super) enum Hinted {
    /// A plain answer: a hit whose snapshot is current, or no entry.
    Decided(RawLookup),
    /// Anything else: the script decides.
    AskScript,
}

impl Hints {
    pub(super) fn new() -> Self {
        Hints {
            map: quick_cache::sync::Cache::new(CAPACITY),
        }
    }

    /// The version keys the entry under `key` recorded last time we looked, if known.
    pub(super) fn get(&self, key: &str) -> Option<Hint> {
        self.map.get(&hashed(key))
    }

    /// Remembers that the entry under `key` records `version_keys` (in header order).
    pub(super) fn learn<'a>(&self, key: &str, version_keys: impl Iterator<Item = &'a str>) {
        let keys: Vec<&str> = version_keys.collect();
        let key = hashed(key);
        let known = self.map.peek(&key);
        if known.is_some_and(|known| known.iter().map(|k| &**k).eq(keys.iter().copied())) {
            return;
        }
        self.map
            .insert(key, keys.into_iter().map(Box::from).collect());
    }

    /// Remembers the version keys listed by `payload`'s header (a framed entry just read).
    pub(super) fn learn_from(&self, key: &str, payload: &[u8]) {
        if let Ok(header) = codec::header(payload) {
            self.learn(
                key,
                header.versions.iter().map(|(version_key, _)| *version_key),
            );
        }
    }
}

/// Reads `entry` and the versions `hint` names in one pipeline (see the module docs for
/// why it needs no transaction), and decides if it can; with `with_ttl`, also how long
/// the entry has left in Redis (a `PTTL`: only a memory tier in front needs it).
///
/// The replies are read as they come (no conversion through redis-rs's typed results): a
/// reply of any other shape than a plain hit's or miss's — an error reply among them — is
/// left to the script.
pub(super) async fn lookup(
    conn: &mut super::epoch::Watched,
    entry: &str,
    hint: &[Box<str>],
    with_ttl: bool,
) -> Result<Hinted, StoreError> {
    // Each command sized up front: built on every hit, they would otherwise grow by steps.
    let on_entry = |name: &str| {
        let mut cmd = redis::Cmd::with_capacity(2, name.len() + entry.len());
        cmd.arg(name).arg(entry);
        cmd
    };
    let mut pipe = redis::Pipeline::with_capacity(3);
    // The GET first: the MGET after it is what proves the entry current (module docs).
    pipe.add_command(on_entry("GET"));
    if !hint.is_empty() {
        // MGET by hand: redis-rs sends a single key's `mget` as GET, whose reply is no array.
        // Room for as many keys as an entry usually records (more grow the list).
        let bytes = hint.iter().map(|key| key.len()).sum::<usize>();
        let mut mget = redis::Cmd::with_capacity(1 + hint.len(), 4 + bytes);
        mget.arg("MGET");
        for version_key in hint {
            mget.arg(&**version_key);
        }
        pipe.add_command(mget);
    }
    if with_ttl {
        pipe.add_command(on_entry("PTTL"));
    }
    let mut replies = conn.send_pipeline(&pipe).await?;
    if replies.len() != pipe.len() {
        return Ok(Hinted::AskScript);
    }
    let pttl = match replies.as_slice() {
        [Value::Nil, ..] => return Ok(Hinted::Decided(RawLookup::Miss)),
        [Value::BulkString(_), .., Value::Int(pttl)] if with_ttl => Some(*pttl),
        [Value::BulkString(_), ..] if !with_ttl => None,
        _ => return Ok(Hinted::AskScript),
    };
    let now = match replies.get(1) {
        _ if hint.is_empty() => &[][..],
        Some(Value::Array(now)) => now.as_slice(),
        _ => return Ok(Hinted::AskScript),
    };
    let bytes = match replies.first() {
        Some(Value::BulkString(bytes)) => bytes.as_slice(),
        _ => return Ok(Hinted::AskScript),
    };
    if !current(bytes, hint, now) {
        return Ok(Hinted::AskScript);
    }
    // The payload is moved out of the reply, not copied.
    let bytes = match replies.swap_remove(0) {
        Value::BulkString(bytes) => bytes,
        _ => return Ok(Hinted::AskScript),
    };
    let ttl = pttl
        .and_then(|pttl| u64::try_from(pttl).ok())
        .map(Duration::from_millis);
    Ok(Hinted::Decided(RawLookup::Hit(bytes, ttl)))
}

/// Whether `payload`'s header lists exactly the version keys of `hint` (in order), each
/// with the token it holds `now` (the `MGET`'s reply, read after the payload). Compared as
/// bytes, without decoding the header (the tiered store does, to decode the entry).
fn current(payload: &[u8], hint: &[Box<str>], now: &[Value]) -> bool {
    let Ok((n, mut recorded)) = codec::snapshot_lines(payload) else {
        return false;
    };
    if n != now.len() || n != hint.len() {
        return false;
    }
    let mut hinted = hint.iter();
    for now in now {
        let (Some((key, token)), Some(hinted)) = (recorded.next(), hinted.next()) else {
            return false;
        };
        if key != hinted.as_bytes() {
            return false;
        }
        if !matches!(now, Value::BulkString(now) if now.as_slice() == token) {
            return false;
        }
    }
    hinted.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(versions: &[(&str, &str)]) -> Vec<u8> {
        let versions: Vec<(String, String)> = versions
            .iter()
            .map(|(k, t)| ((*k).to_owned(), (*t).to_owned()))
            .collect();
        let stamps = codec::Stamps {
            created_at_ms: 1,
            fresh_until_ms: Some(2),
            delta_us: 3,
        };
        codec::frame(b"{}", codec::BodyFormat::Json, &versions, stamps, None)
    }

    /// A hint written as its keys joined by newlines ("" for none).
    fn h(joined: &str) -> Vec<Box<str>> {
        joined
            .split('\n')
            .filter(|k| !k.is_empty())
            .map(Box::from)
            .collect()
    }

    fn tokens(tokens: &[Option<&str>]) -> Vec<Value> {
        tokens
            .iter()
            .map(|t| t.map_or(Value::Nil, |t| Value::BulkString(t.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn current_only_when_keys_match_and_no_version_moved() {
        let entry = payload(&[("qc:v:a", "t1"), ("qc:v:b", "t2")]);
        let keys = "qc:v:a\nqc:v:b";
        assert!(current(
            &entry,
            &h(keys),
            &tokens(&[Some("t1"), Some("t2")])
        ));
        assert!(!current(
            &entry,
            &h(keys),
            &tokens(&[Some("t1"), Some("moved")])
        ));
        assert!(
            !current(&entry, &h(keys), &tokens(&[Some("t1"), None])),
            "lost"
        );
        assert!(
            !current(
                &entry,
                &h("qc:v:b\nqc:v:a"),
                &tokens(&[Some("t2"), Some("t1")])
            ),
            "another order is another hint"
        );
        assert!(
            !current(&entry, &h("qc:v:a"), &tokens(&[Some("t1")])),
            "fewer"
        );
        assert!(
            !current(
                &entry,
                &h("qc:v:a\nqc:v:b\nqc:v:c"),
                &tokens(&[Some("t1"), Some("t2")])
            ),
            "more keys in the hint than in the header"
        );
        assert!(
            !current(&entry, &h(keys), &[Value::Int(1), Value::Int(2)]),
            "not tokens"
        );
        assert!(!current(b"garbage", &h(""), &[]));
        assert!(
            current(&payload(&[]), &h(""), &[]),
            "no tags, nothing to check"
        );
        assert!(
            !current(&payload(&[]), &h("qc:v:a"), &[]),
            "a hint for another entry"
        );
    }

    #[test]
    fn hints_are_learned_from_headers() {
        let hints = Hints::new();
        assert!(hints.get("k").is_none());
        hints.learn_from("k", &payload(&[("qc:v:a", "t1"), ("qc:v:b", "t2")]));
        assert_eq!(hints.get("k").as_deref(), Some(&h("qc:v:a\nqc:v:b")[..]));
        hints.learn("k", std::iter::empty());
        assert_eq!(hints.get("k").as_deref(), Some(&[][..]));
        hints.learn_from("other", b"not a payload");
        assert!(hints.get("other").is_none());
    }
}
