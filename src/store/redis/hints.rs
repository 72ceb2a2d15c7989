//! Which version keys an entry's header lists, remembered per key: what lets a hit skip the
//! get script on a single server.
//!
//! The script reads an entry and its versions on the server, but running it — the entry
//! turned into a Lua string, the header parsed in Lua, each version read through
//! `redis.call` — costs the server about ten times a plain `GET` (`benches/redis_hit.rs`
//! prints both). When the store knows which version keys the entry under a key recorded
//! (from the last time this process stored or read that key), a hit is instead one
//! transaction:
//!
//! ```text
//! MULTI; GET <entry>; MGET <version keys>; PTTL <entry>; EXEC
//! ```
//!
//! It is atomic, so the entry and the versions are read at one instant, and it is one round
//! trip; the store then compares the snapshot in the entry's header with the versions, as
//! the script does on the server.
//!
//! A hint only ever shortens a hit or a miss. Whenever the transaction's answer is anything
//! else — the header lists other version keys than the hint, a version moved or is gone,
//! the payload does not parse — the store asks the script, whose answer is authoritative
//! (it unlinks an outdated entry, reports garbage). Hints are bounded ([`CAPACITY`] keys)
//! and never need invalidating: a wrong one costs a round trip, not a stale read.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionLike;

use super::RawLookup;
use crate::store::{StoreError, codec};

/// How many keys' hints are kept (the least used are forgotten first).
pub(super) const CAPACITY: usize = 16_384;

/// Version keys per cache key: each hint is the keys joined by newlines (keys never
/// contain one), in the order the entry's header lists them.
pub(super) struct Hints {
    map: quick_cache::sync::Cache<String, Arc<str>>,
}

/// The transaction's answer: the entry, the versions (in the hint's order), its PTTL.
type Reply = (Option<Vec<u8>>, Vec<Option<Vec<u8>>>, i64);

/// What the transaction found.
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
    pub(super) fn get(&self, key: &str) -> Option<Arc<str>> {
        self.map.get(key)
    }

    /// Remembers that the entry under `key` records `version_keys` (in header order).
    pub(super) fn learn<'a>(&self, key: &str, version_keys: impl Iterator<Item = &'a str>) {
        let joined: Vec<&str> = version_keys.collect();
        let hint: Arc<str> = Arc::from(joined.join("\n"));
        if self.map.peek(key).as_deref() != Some(&*hint) {
            self.map.insert(key.to_owned(), hint);
        }
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

/// Reads `entry` and the versions `hint` names in one transaction, and decides if it can.
pub(super) async fn lookup(
    conn: &mut impl ConnectionLike,
    entry: &str,
    hint: &str,
) -> Result<Hinted, StoreError> {
    let version_keys: Vec<&str> = if hint.is_empty() {
        Vec::new()
    } else {
        hint.split('\n').collect()
    };
    let mut pipe = redis::pipe();
    pipe.atomic().cmd("GET").arg(entry);
    let (bytes, now, pttl): Reply = if version_keys.is_empty() {
        let (bytes, pttl): (Option<Vec<u8>>, i64) =
            pipe.cmd("PTTL").arg(entry).query_async(conn).await?;
        (bytes, Vec::new(), pttl)
    } else {
        // MGET by hand: redis-rs sends a single key's `mget` as GET, whose reply is no array.
        pipe.cmd("MGET")
            .arg(&version_keys)
            .cmd("PTTL")
            .arg(entry)
            .query_async(conn)
            .await?
    };
    let Some(bytes) = bytes else {
        return Ok(Hinted::Decided(RawLookup::Miss));
    };
    if !current(&bytes, &version_keys, &now) {
        return Ok(Hinted::AskScript);
    }
    let ttl = u64::try_from(pttl).ok().map(Duration::from_millis);
    Ok(Hinted::Decided(RawLookup::Hit(bytes, ttl)))
}

/// Whether `payload`'s header lists exactly `version_keys`, each with the token it holds
/// `now` (read in the same transaction).
fn current(payload: &[u8], version_keys: &[&str], now: &[Option<Vec<u8>>]) -> bool {
    let Ok(header) = codec::header(payload) else {
        return false;
    };
    header.versions.len() == version_keys.len()
        && now.len() == version_keys.len()
        && header
            .versions
            .iter()
            .zip(version_keys.iter().zip(now))
            .all(|((key, token), (hinted, now))| {
                key == hinted && now.as_deref() == Some(token.as_bytes())
            })
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

    fn tokens(tokens: &[Option<&str>]) -> Vec<Option<Vec<u8>>> {
        tokens
            .iter()
            .map(|t| t.map(|t| t.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn current_only_when_keys_match_and_no_version_moved() {
        let entry = payload(&[("qc:v:a", "t1"), ("qc:v:b", "t2")]);
        let keys = ["qc:v:a", "qc:v:b"];
        assert!(current(&entry, &keys, &tokens(&[Some("t1"), Some("t2")])));
        assert!(!current(
            &entry,
            &keys,
            &tokens(&[Some("t1"), Some("moved")])
        ));
        assert!(
            !current(&entry, &keys, &tokens(&[Some("t1"), None])),
            "lost"
        );
        assert!(
            !current(
                &entry,
                &["qc:v:b", "qc:v:a"],
                &tokens(&[Some("t2"), Some("t1")])
            ),
            "another order is another hint"
        );
        assert!(
            !current(&entry, &["qc:v:a"], &tokens(&[Some("t1")])),
            "fewer"
        );
        assert!(!current(b"garbage", &[], &[]));
        assert!(
            current(&payload(&[]), &[], &[]),
            "no tags, nothing to check"
        );
    }

    #[test]
    fn hints_are_learned_from_headers() {
        let hints = Hints::new();
        assert!(hints.get("k").is_none());
        hints.learn_from("k", &payload(&[("qc:v:a", "t1"), ("qc:v:b", "t2")]));
        assert_eq!(hints.get("k").as_deref(), Some("qc:v:a\nqc:v:b"));
        hints.learn("k", std::iter::empty());
        assert_eq!(hints.get("k").as_deref(), Some(""));
        hints.learn_from("other", b"not a payload");
        assert!(hints.get("other").is_none());
    }
}
