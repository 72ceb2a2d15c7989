//! Removals: one key, the keys a glob matches, everything under the prefix. Each moves the
//! removal marker first (a computation that began before cannot store after), except the
//! clear, which removes the marker with the rest.
//!
//! Patterns and clears SCAN (never KEYS) and UNLINK in batches: the single server, or on a
//! cluster every master (from `CLUSTER SLOTS`), since SCAN answers for one node only. SCAN's
//! `MATCH` reads globs differently from the memory store's `glob` crate, so it only narrows
//! the scan to the pattern's literal prefix and each key found is matched here
//! ([`scan_matcher`], [`entry_matches`]; their agreement is checked in
//! `checks`).

use futures_util::future::try_join_all;
use redis::AsyncCommands;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

use super::{Conn, RedisStore, fresh_token};
use crate::store::StoreError;

impl RedisStore {
    /// Removes one entry (the removal marker moves first, in the same round trip).
    pub(crate) async fn remove_key(&self, key: &str) -> Result<bool, StoreError> {
        let removed: u64 = match self.conn().await? {
            Conn::Single(mut conn) => {
                let ((), removed): ((), u64) = redis::pipe()
                    .set_options(
                        self.removals_key(),
                        fresh_token(),
                        redis::SetOptions::default()
                            .with_expiration(redis::SetExpiry::PX(self.version_ttl_ms)),
                    )
                    .unlink(self.entry_key(key))
                    .query_async(&mut conn)
                    .await?;
                removed
            }
            // Two slots: the marker first, then the entry.
            Conn::Cluster(mut conn) => {
                self.mark_removal().await?;
                conn.unlink(self.entry_key(key)).await?
            }
        };
        Ok(removed > 0)
    }

    /// Moves the removal marker: computations that began before now cannot store.
    async fn mark_removal(&self) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.removals_key())
            .arg(fresh_token())
            .arg("PX")
            .arg(self.version_ttl_ms);
        Ok(match self.conn().await? {
            Conn::Single(mut conn) => cmd.query_async::<()>(&mut conn).await,
            Conn::Cluster(mut conn) => cmd.query_async::<()>(&mut conn).await,
        }?)
    }

    /// Removes every entry whose key matches the glob `pattern`: the removal marker moves
    /// first (a computation that began before cannot store after), then SCAN (never KEYS)
    /// and UNLINK in batches (what was stored before is found by the scan); on a cluster, on
    /// every master.
    ///
    /// The pattern is glob's (as the memory store matches it), not Redis': `MATCH` differs
    /// (`[^a]` negates where glob writes `[!a]`, `\` escapes, `?` is one byte, not one
    /// character). So SCAN matches only the pattern's literal prefix, and each key found is
    /// matched here, by glob's rules, before it is unlinked.
    pub(crate) async fn remove_pattern(&self, pattern: &str) -> Result<usize, StoreError> {
        let glob = glob::Pattern::new(pattern).map_err(|e| StoreError::Pattern {
            pattern: pattern.to_owned(),
            reason: e.msg,
        })?;
        self.mark_removal().await?;
        let entries = entries_prefix(&self.prefix);
        let matcher = scan_matcher(&entries, pattern);
        let matches = |key: &str| entry_matches(&entries, &glob, key);
        self.unlink_scan(&matcher, Some(&matches)).await
    }

    /// Removes every entry and every tag version under the prefix.
    pub(crate) async fn clear_all(&self) -> Result<usize, StoreError> {
        self.unlink_scan(&clear_matcher(&self.prefix), None).await
    }

    /// UNLINKs the keys SCAN finds with `matcher` (and that `keep`, when given, accepts).
    async fn unlink_scan(
        &self,
        matcher: &str,
        keep: Option<KeyFilter<'_>>,
    ) -> Result<usize, StoreError> {
        match self.conn().await? {
            Conn::Single(conn) => unlink_scan_on(Conn::Single(conn), None, matcher, keep).await,
            Conn::Cluster(mut conn) => {
                // SCAN answers for one node only: scan every master, in parallel.
                let masters = cluster_masters(&mut conn).await?;
                let counts = try_join_all(masters.into_iter().map(|master| {
                    unlink_scan_on(Conn::Cluster(conn.clone()), Some(master), matcher, keep)
                }))
                .await?;
                Ok(counts.into_iter().sum())
            }
        }
    }
}

/// Which of the keys SCAN found are to go.
type KeyFilter<'a> = &'a (dyn Fn(&str) -> bool + Sync);

/// What every entry's Redis key starts with: `<prefix>:e:`.
pub(super) fn entries_prefix(prefix: &str) -> String {
    format!("{prefix}:e:")
}

/// The `MATCH` pattern of SCAN for the glob `pattern`: the entries' prefix and the glob's
/// literal prefix, escaped, then `*`. Every entry whose key `pattern` matches is found;
/// [`entry_matches`] then picks among them by glob's rules.
pub(super) fn scan_matcher(entries: &str, pattern: &str) -> String {
    format!(
        "{}*",
        escape_glob(&format!("{entries}{}", literal_prefix(pattern)))
    )
}

/// Whether the Redis key `stored`, found by SCAN, is an entry whose key `glob` matches.
pub(super) fn entry_matches(entries: &str, glob: &glob::Pattern, stored: &str) -> bool {
    stored
        .strip_prefix(entries)
        .is_some_and(|key| glob.matches(key))
}

/// The part of a glob before its first wildcard (`*`, `?`, `[`): every key the glob
/// matches starts with it.
fn literal_prefix(pattern: &str) -> &str {
    pattern
        .find(['*', '?', '['])
        .map_or(pattern, |at| &pattern[..at])
}

/// The `MATCH` pattern of SCAN for everything under `prefix`.
pub(super) fn clear_matcher(prefix: &str) -> String {
    format!("{}:*", escape_glob(prefix))
}

/// Escapes Redis glob metacharacters in a literal (the key prefix).
pub(super) fn escape_glob(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len());
    for c in literal.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// SCAN (on `node` of a cluster, or the single server) and UNLINK the matches that `keep`
/// accepts, batch by batch. On a cluster the client splits each UNLINK by slot.
async fn unlink_scan_on(
    mut conn: Conn,
    node: Option<(String, u16)>,
    matcher: &str,
    keep: Option<KeyFilter<'_>>,
) -> Result<usize, StoreError> {
    const BATCH: usize = 500;
    let mut cursor: u64 = 0;
    let mut removed = 0;
    loop {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(matcher)
            .arg("COUNT")
            .arg(BATCH);
        let (next, keys): (u64, Vec<String>) = match (&mut conn, &node) {
            (Conn::Cluster(cluster), Some((host, port))) => {
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                });
                let reply = cluster.route_command(scan, routing).await?;
                redis::from_redis_value(reply).map_err(|source| StoreError::Unreadable {
                    command: "SCAN",
                    source,
                })?
            }
            _ => scan.query_async(&mut conn).await?,
        };
        let keys: Vec<String> = match keep {
            Some(keep) => keys.into_iter().filter(|key| keep(key)).collect(),
            None => keys,
        };
        if !keys.is_empty() {
            let n: usize = conn.unlink(&keys).await?;
            removed += n;
        }
        if next == 0 {
            return Ok(removed);
        }
        cursor = next;
    }
}

/// The masters of the cluster that serve slots, as `(host, port)`, from `CLUSTER SLOTS`.
pub(super) async fn cluster_masters(
    conn: &mut super::WatchedCluster,
) -> Result<Vec<(String, u16)>, StoreError> {
    let reply: redis::Value = redis::cmd("CLUSTER").arg("SLOTS").query_async(conn).await?;
    parse_cluster_slots(reply)
}

/// `CLUSTER SLOTS`: `[[start, end, [host, port, id, ...], replicas...], ...]`; the first
/// node of each range is its master.
fn parse_cluster_slots(reply: redis::Value) -> Result<Vec<(String, u16)>, StoreError> {
    let unreadable = |source| StoreError::Unreadable {
        command: "CLUSTER SLOTS",
        source,
    };
    let malformed = |problem| StoreError::Malformed {
        context: "CLUSTER SLOTS",
        problem,
    };
    let ranges: Vec<Vec<redis::Value>> = redis::from_redis_value(reply).map_err(unreadable)?;
    let mut masters: Vec<(String, u16)> = Vec::new();
    for range in ranges {
        let Some(master) = range.into_iter().nth(2) else {
            return Err(malformed("a slot range without a node"));
        };
        let node: Vec<redis::Value> = redis::from_redis_value(master).map_err(unreadable)?;
        let mut fields = node.into_iter();
        let (Some(host), Some(port)) = (fields.next(), fields.next()) else {
            return Err(malformed("a node without an address"));
        };
        let host: String = redis::from_redis_value(host).map_err(unreadable)?;
        let port: u16 = redis::from_redis_value(port).map_err(unreadable)?;
        if !masters.iter().any(|(h, p)| *h == host && *p == port) {
            masters.push((host, port));
        }
    }
    Ok(masters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patterns_literal_prefix_ends_at_its_first_wildcard() {
        assert_eq!(literal_prefix("user:*"), "user:");
        assert_eq!(literal_prefix("user:[!1]:x"), "user:");
        assert_eq!(literal_prefix("a?b"), "a");
        assert_eq!(literal_prefix("*x"), "");
        assert_eq!(literal_prefix("plain\\key"), "plain\\key");
        // Escaped for SCAN's MATCH, the prefix matches itself literally.
        assert_eq!(escape_glob("a\\b]c"), "a\\\\b\\]c");
    }

    #[test]
    fn prefix_globs_are_escaped() {
        assert_eq!(escape_glob("app*1"), "app\\*1");
        assert_eq!(escape_glob("plain"), "plain");
    }

    #[test]
    fn cluster_slots_name_each_master_once() {
        use redis::Value;
        let node = |port: i64, id: &str| {
            Value::Array(vec![
                Value::BulkString(b"127.0.0.1".to_vec()),
                Value::Int(port),
                Value::BulkString(id.as_bytes().to_vec()),
            ])
        };
        let range = |start: i64, end: i64, master: Value, replicas: Vec<Value>| {
            let mut items = vec![Value::Int(start), Value::Int(end), master];
            items.extend(replicas);
            Value::Array(items)
        };
        let reply = Value::Array(vec![
            range(0, 5000, node(7000, "a"), vec![node(7003, "d")]),
            range(5001, 10000, node(7001, "b"), vec![]),
            range(10001, 12000, node(7002, "c"), vec![]),
            range(12001, 16383, node(7000, "a"), vec![]),
        ]);
        assert_eq!(
            parse_cluster_slots(reply).unwrap(),
            vec![
                ("127.0.0.1".to_owned(), 7000),
                ("127.0.0.1".to_owned(), 7001),
                ("127.0.0.1".to_owned(), 7002)
            ]
        );
        assert!(
            parse_cluster_slots(Value::Array(vec![Value::Array(vec![Value::Int(0)])])).is_err()
        );
    }
}
