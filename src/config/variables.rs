//! The one table of environment variables: each variable's name, its default as the docs show
//! it, what it means, and how it applies. [`CacheConfig::from_vars`](super::CacheConfig::from_vars)
//! applies the rows that configure the cache, the typo check knows every name from it, and
//! the tables in the `config` docs (`variables.md`) and in the README are rendered from it (a
//! test keeps them equal; `QUERYCACHE_BLESS=1 cargo test --lib config::variables` rewrites
//! them). A new variable is one row here, plus its builder setter.

use super::env::{parse_bool, parse_bytes, parse_ms, parse_secs};
use super::{CacheConfigBuilder, KeySecret, dependencies, secret};
use crate::Error;

/// How a variable applies.
pub(crate) enum Applies {
    /// Read by `CacheConfig::from_vars`: what its value does to the builder (the value is
    /// the raw text; the name is passed for error messages).
    Config(fn(CacheConfigBuilder, &str, &str) -> Result<CacheConfigBuilder, Error>),
    /// A family of variables, one per namespace: `<prefix><NAMESPACE>`; the function gets
    /// the namespace, lower-cased.
    Namespace {
        prefix: &'static str,
        apply: fn(CacheConfigBuilder, String, &str, &str) -> Result<CacheConfigBuilder, Error>,
    },
    /// Read by another part of the crate, named here for the docs.
    Elsewhere(#[cfg_attr(not(any(test, feature = "serde")), allow(dead_code))] &'static str),
}

/// One environment variable.
pub(crate) struct Variable {
    /// Its name (a family's is written `<prefix><NAMESPACE>`).
    pub(crate) name: &'static str,
    /// Its default, as the docs show it.
    #[cfg_attr(not(test), allow(dead_code))] // read when the docs' tables are rendered
    pub(crate) default: &'static str,
    /// What it means: one Markdown table cell, without intra-doc links (the README shows it
    /// too).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) doc: &'static str,
    pub(crate) applies: Applies,
}

/// Shorthand for the rows.
const fn var(
    name: &'static str,
    default: &'static str,
    doc: &'static str,
    applies: Applies,
) -> Variable {
    Variable {
        name,
        default,
        doc,
        applies,
    }
}

use Applies::{Config, Elsewhere, Namespace};

/// Every variable, in the order the docs list them.
pub(crate) const VARIABLES: &[Variable] = &[
    var(
        "CACHE_ENABLED",
        "`true`",
        "`false`: every cached function runs straight through",
        Config(|b, n, v| Ok(b.enabled(parse_bool(n, v)?))),
    ),
    var(
        "CACHE_DEFAULT_TTL",
        "`3600`",
        "how long an entry lives when nothing more specific says: seconds, or a duration such as `30m`, `1h30m`, `1d` (as in `#[cached_query(ttl = \"1h\")]`; every duration variable takes one, a bare number keeping its unit: seconds, milliseconds for `*_MS`, e.g. `CACHE_REDIS_TIMEOUT_MS=250ms`)",
        Config(|b, n, v| Ok(b.default_ttl(parse_secs(n, v)?))),
    ),
    var(
        "CACHE_MAX_TTL",
        "`86400`",
        "longer TTLs are clamped to this (a debug event says so)",
        Config(|b, n, v| Ok(b.max_ttl(parse_secs(n, v)?))),
    ),
    var(
        "CACHE_COUNT_TTL",
        "`300`",
        "default TTL of `#[cache_count_query]` functions",
        Config(|b, n, v| Ok(b.count_ttl(parse_secs(n, v)?))),
    ),
    var(
        "CACHE_ERROR_TTL",
        "`300`",
        "TTL of cached errors (`cache_errors`)",
        Config(|b, n, v| Ok(b.error_ttl(parse_secs(n, v)?))),
    ),
    var(
        "CACHE_NEGATIVE_TTL",
        "`60`",
        "longest TTL of an absent value (one that serializes to `null`: `Option::None`, a row not found), whatever its query's TTL: lookups of ids that do not exist cannot fill the store for long",
        Config(|b, n, v| Ok(b.negative_ttl(parse_secs(n, v)?))),
    ),
    var(
        "CACHE_JITTER_PERCENT",
        "`0`",
        "each entry expires up to this percentage of its TTL early, at random, so that entries written together do not expire together (`jitter = 10` on a query, `EntryOptions::jitter_percent` on the API)",
        Config(|b, n, v| {
            let percent = v
                .trim()
                .trim_end_matches('%')
                .parse()
                .map_err(|_| Error::config(n, v, "expected a percentage from 0 to 100"))?;
            Ok(b.jitter_percent(percent))
        }),
    ),
    var(
        "CACHE_TTL_<NAMESPACE>",
        "unset",
        "TTL policy of a namespace, e.g. `CACHE_TTL_SONGS=600` or `=10m`. The library has no policy of its own: an application sets its namespaces' TTLs (`examples/external_api.rs` plays one with five, any of which the variable overrides)",
        Namespace {
            prefix: "CACHE_TTL_",
            apply: |b, ns, n, v| Ok(b.namespace_ttl(ns, parse_secs(n, v)?)),
        },
    ),
    var(
        "CACHE_SWR_<NAMESPACE>",
        "unset",
        "stale-while-revalidate window of a namespace, e.g. `CACHE_SWR_SONGS=30` or `=30s` (`swr` on a query overrides it)",
        Namespace {
            prefix: "CACHE_SWR_",
            apply: |b, ns, n, v| Ok(b.namespace_swr(ns, parse_secs(n, v)?)),
        },
    ),
    var(
        "CACHE_LEASE_TTL_MS",
        "`5000`",
        "with Redis: how long the lease of an instance computing a missing key lasts; the other instances wait at most that long for its value. `0` turns leases off",
        Config(|b, n, v| Ok(b.lease_ttl(parse_ms(n, v)?))),
    ),
    var(
        "CACHE_MEMORY_MAX_BYTES",
        "`268435456`",
        "byte budget of the memory store; `64MiB`, `1GB` accepted",
        Config(|b, n, v| Ok(b.memory_max_bytes(parse_bytes(n, v)?))),
    ),
    var(
        "CACHE_INVALIDATION_STRATEGY",
        "`smart`",
        "`smart`: ORM writes invalidate; `manual`: only explicit calls do; `ttl`: only expiry (tag invalidations ignored)",
        Config(|b, _, v| Ok(b.invalidation_strategy(v.parse()?))),
    ),
    var(
        "CACHE_AUDIT",
        "`off`",
        "`warn`: log once per function each table a function declaring `models` read but did not declare, naming the statement",
        Config(|b, _, v| Ok(b.audit(v.parse()?))),
    ),
    var(
        "CACHE_KEY_PREFIX",
        "`querycache`",
        "prefix of keys in shared stores",
        Config(|b, _, v| Ok(b.key_prefix(v))),
    ),
    var(
        "REDIS_URL",
        "unset",
        "`redis://[user:password@]host:port[/db]` or `rediss://` (TLS); `redis+sentinel://[user:password@]host[:port][,host[:port]...]/<service>[/db]` (or `rediss+sentinel://`) for the master Redis Sentinel names, followed across failovers; with `CACHE_CLUSTER_MODE`, several node URLs separated by commas. Selects the tiered store. Needs the `redis` feature; without it, setting it is a start-up error rather than a silent fallback to memory",
        // Blank: unset.
        Config(|b, _, v| {
            Ok(if v.trim().is_empty() {
                b
            } else {
                b.redis_url(v.trim())
            })
        }),
    ),
    var(
        "CACHE_STORE",
        "`tiered` with `REDIS_URL`, else `memory`",
        "`memory`, `redis` (Redis only, memory as fallback only) or `tiered` (memory in front of Redis); `redis` and `tiered` need `REDIS_URL`",
        Config(|b, _, v| Ok(b.store(v.parse()?))),
    ),
    var(
        "CACHE_REDIS_TIMEOUT_MS",
        "`100`",
        "connect and command timeout of Redis; a cache that waits longer is slower than no cache",
        Config(|b, n, v| Ok(b.redis_timeout(parse_ms(n, v)?))),
    ),
    var(
        "CACHE_BREAKER_THRESHOLD",
        "`3`",
        "consecutive Redis errors that open the circuit breaker (a timeout opens it at once)",
        Config(|b, n, v| {
            let failures = v
                .trim()
                .parse()
                .map_err(|_| Error::config(n, v, "expected a whole number of failures"))?;
            Ok(b.breaker_threshold(failures))
        }),
    ),
    var(
        "CACHE_BREAKER_COOLDOWN_MS",
        "`500`",
        "how often an open breaker probes Redis in the background",
        Config(|b, n, v| Ok(b.breaker_cooldown(parse_ms(n, v)?))),
    ),
    var(
        "CACHE_CHANNEL_HEARTBEAT_MS",
        "`1000`",
        "tiered store: how often the invalidation channel's subscriber sends a `PING` on its own subscribed connection (10 ms to 60 s); nothing heard on that connection for 3 intervals is a channel loss (memory tier dropped and bypassed until it is back)",
        Config(|b, n, v| Ok(b.channel_heartbeat(parse_ms(n, v)?))),
    ),
    var(
        "CACHE_DEGRADED_MAX_AGE_MS",
        "`3000`",
        "while Redis is out (breaker open), process memory serves only entries whose data is younger than this: another instance's write is seen here at most this long after it returned, however long the outage; `0`: every read goes to the database. Also caps how long a silent invalidation channel is trusted (never below 2 heartbeats)",
        Config(|b, n, v| Ok(b.degraded_max_age(parse_ms(n, v)?))),
    ),
    var(
        "CACHE_REPLICA_WAIT_MS",
        "`100`",
        "a computation reading a PostgreSQL replica (`CachedConnection::replica_of`) waits this long at most, before each statement, for the replica to replay the primary's current WAL position; if it has not, the value is answered uncached (`replica_behind`) rather than stored with rows older than its tags' versions. `0`: ask once, do not wait (at most 60000)",
        Config(|b, n, v| Ok(b.replica_wait(parse_ms(n, v)?))),
    ),
    var(
        "CACHE_COMPRESSION_ENABLED",
        "`true`",
        "lz4 compression of Redis payloads larger than `CACHE_COMPRESSION_THRESHOLD`",
        Config(|b, n, v| Ok(b.compression_enabled(parse_bool(n, v)?))),
    ),
    var(
        "CACHE_COMPRESSION_THRESHOLD",
        "`1024`",
        "payloads larger than this many bytes are compressed (`4KiB` accepted)",
        Config(|b, n, v| {
            let bytes = usize::try_from(parse_bytes(n, v)?)
                .map_err(|_| Error::config(n, v, "too large for this platform"))?;
            Ok(b.compression_threshold(bytes))
        }),
    ),
    var(
        "CACHE_WARM_ON_STARTUP",
        "`false`",
        "`Cache::warm_on_startup()` runs every registered warmer in the background (the songs app calls it at start-up)",
        Config(|b, n, v| Ok(b.warm_on_startup(parse_bool(n, v)?))),
    ),
    var(
        "CACHE_CLUSTER_MODE",
        "`false`",
        "`REDIS_URL` lists Redis Cluster nodes, comma-separated",
        Config(|b, n, v| Ok(b.cluster_mode(parse_bool(n, v)?))),
    ),
    var(
        secret::VARIABLE,
        "unset: a random secret per process",
        "the secret (at least 16 bytes, e.g. `openssl rand -hex 32`) keying the HMAC-SHA256 of `Authorization` and the `Vary` values in the keys of cached HTTP answers. Set the same value on every instance sharing Redis; unset, instances share no answer to a request carrying those headers (a Redis-backed instance warns once). Shorter than 16 bytes: a start-up error naming the variable. Never logged, `Debug` shows `<redacted>`",
        // Blank: unset (a random secret per process).
        Config(|mut b, _, v| {
            if !v.trim().is_empty() {
                b.config.key_secret = Some(KeySecret::new(v.trim().as_bytes())?);
            }
            Ok(b)
        }),
    ),
    var(
        dependencies::VARIABLE,
        "unset",
        "writes the database makes on its own (triggers...): `songs=song_counts,audit_log;users=user_stats` means a write to `songs` also writes `song_counts` and `audit_log`, one to `users` also `user_stats` (`table_also_writes` on the builder)",
        Config(|b, _, v| {
            Ok(dependencies::parse(v)?
                .into_iter()
                .fold(b, |b, (table, also)| b.table_also_writes(&table, also)))
        }),
    ),
    var(
        "CACHE_CHANGE_FEED",
        "`off`",
        "writes the application never sent (psql, other services) invalidate too: `logical` (PostgreSQL logical replication, feature `feed-postgres`), `triggers` (PostgreSQL triggers + NOTIFY, installed with `feed::postgres::install_triggers`), `data_version` (a SQLite file written by other processes, feature `feed-sqlite`), `binlog` (MySQL's and MariaDB's binary log in row format, feature `feed-mysql`); started by `Cache::start_change_feed`",
        Config(|b, name, v| Ok(b.feed_var(name, v))),
    ),
    var(
        "CACHE_CHANGE_FEED_URL",
        "`DATABASE_URL`",
        "the database the change feed follows (`postgres://…`, `sqlite://…`, `mysql://…`); a logical feed's user needs the `REPLICATION` attribute, a binlog feed's `REPLICATION SLAVE` and `BINLOG MONITOR`",
        Config(|b, name, v| Ok(b.feed_var(name, v))),
    ),
    var(
        "CACHE_CHANGE_FEED_SLOT",
        "`querycache`",
        "logical feed: the replication slot (persistent with Redis, one consumer per deployment; with the memory store each process has a temporary slot named after it); binlog feed: the name of its consumer lease and recorded position in Redis",
        Config(|b, name, v| Ok(b.feed_var(name, v))),
    ),
    var(
        "CACHE_CHANGE_FEED_PUBLICATION",
        "`querycache`",
        "logical feed: the publication (created over the tables with a primary key when missing, and kept current as tables are created; one you create yourself is used as it is)",
        Config(|b, name, v| Ok(b.feed_var(name, v))),
    ),
    var(
        "CACHE_CHANGE_FEED_CHANNEL",
        "`querycache_feed`",
        "trigger feed: the `NOTIFY` channel",
        Config(|b, name, v| Ok(b.feed_var(name, v))),
    ),
    var(
        "CACHE_CHANGE_FEED_MAX_GAP_MS",
        "`300000`",
        "how long no consumer may have followed the database before the feed, when one is back, invalidates every model tag rather than trust the replay",
        Config(|b, name, v| Ok(b.feed_var(name, v))),
    ),
    var(
        "CACHE_CHANGE_FEED_INTERVAL_MS",
        "`100`",
        "`data_version` feed: how often the SQLite file's `PRAGMA data_version` is read (the bound of that feed)",
        Config(|b, name, v| Ok(b.feed_var(name, v))),
    ),
    var(
        "CACHE_CHANGE_FEED_LEASE_MS",
        "`5000`",
        "with Redis: how long the consumer lease lasts; when the consuming instance dies another takes over within about that long",
        Config(|b, name, v| Ok(b.feed_var(name, v))),
    ),
    var(
        "CACHE_ADMIN_TOKEN",
        "unset",
        "bearer token of the management router's admin routes (`clear`, `warm`) and of the key texts in `analytics`; unset or empty, the admin routes answer 403",
        Elsewhere("http::ManagementOptions::from_env"),
    ),
    var(
        "CACHE_EVENTS_TAG_PREFIXES",
        "`model:`",
        "comma-separated tag prefixes the management router's live invalidation stream (`GET /events`) sends; `*` for every tag, empty for none. Tags say which rows changed: keep application tags that name users (`user:*`) out",
        Elsewhere("http::ManagementOptions::from_env"),
    ),
    var(
        "CACHE_HTTP_HEADER_TIMEOUT_MS",
        "`10000`",
        "`http::serve` (the songs app): how long a client has to send a whole request head, and so how long an idle keep-alive connection stays open; then the connection is closed",
        Elsewhere("http::ServeOptions::from_env"),
    ),
    var(
        "CACHE_HTTP_BODY_TIMEOUT_MS",
        "`30000`",
        "`http::serve`: how long a client has to send a whole request body after its head; then `408` and the connection is closed",
        Elsewhere("http::ServeOptions::from_env"),
    ),
    var(
        "CACHE_HTTP_REQUEST_TIMEOUT_MS",
        "`30000`",
        "`http::serve`: how long a handler has to answer; then it is dropped and the client gets a `503`",
        Elsewhere("http::ServeOptions::from_env"),
    ),
    var(
        "CACHE_HTTP_MAX_CONNECTIONS",
        "`1024`",
        "`http::serve`: connections served at once; at the bound new ones wait in the listen backlog. Keep it below `ulimit -n` minus the database and Redis connections",
        Elsewhere("http::ServeOptions::from_env"),
    ),
    var(
        "CACHE_HTTP_SHUTDOWN_TIMEOUT_MS",
        "`10000`",
        "`http::serve`: how long a graceful shutdown waits for the requests in flight before closing the connections still open",
        Elsewhere("http::ServeOptions::from_env"),
    ),
];

/// What `name=value` does to `builder`: the row named `name`, or of the family whose prefix
/// it starts with. Another `CACHE_*` name is reported at warn level as a probable typo;
/// anything else is not ours and is ignored.
pub(crate) fn apply(
    builder: CacheConfigBuilder,
    name: &str,
    value: &str,
) -> Result<CacheConfigBuilder, Error> {
    for variable in VARIABLES {
        match &variable.applies {
            Config(apply) if variable.name == name => return apply(builder, name, value),
            Elsewhere(_) if variable.name == name => return Ok(builder),
            Namespace { prefix, apply } => match name.strip_prefix(prefix) {
                Some("") => {
                    return Err(Error::config(
                        name,
                        value,
                        format!("name a namespace after {prefix}, e.g. {prefix}SONGS"),
                    ));
                }
                Some(ns) => return apply(builder, ns.to_ascii_lowercase(), name, value),
                None => {}
            },
            _ => {}
        }
    }
    if name.starts_with("CACHE_") {
        tracing::warn!(
            variable = name,
            "unknown CACHE_* variable ignored; is it misspelled?"
        );
    }
    Ok(builder)
}

/// Whether `name` is one of the [`VARIABLES`] (or of a family's).
pub(crate) fn known(name: &str) -> bool {
    VARIABLES.iter().any(|variable| match variable.applies {
        Namespace { prefix, .. } => name.starts_with(prefix),
        Config(_) | Elsewhere(_) => variable.name == name,
    })
}

/// The Markdown table of [`VARIABLES`], as the docs show it.
#[cfg(test)]
fn markdown_table() -> String {
    let mut table = String::from("| variable | default | meaning |\n| --- | --- | --- |\n");
    for variable in VARIABLES {
        let where_read = match variable.applies {
            Elsewhere(reader) => format!(" (read by `{reader}`)"),
            Config(_) | Namespace { .. } => String::new(),
        };
        table.push_str(&format!(
            "| `{}` | {} | {}{} |\n",
            variable.name, variable.default, variable.doc, where_read
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables in `variables.md` (the `config` docs) and the README are this table's
    /// rendering; `QUERYCACHE_BLESS=1` rewrites them.
    #[test]
    fn the_docs_tables_are_rendered_from_the_table() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let table = markdown_table();
        let bless = std::env::var_os("QUERYCACHE_BLESS").is_some();

        let md = root.join("src/config/variables.md");
        if bless {
            std::fs::write(&md, &table).unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(&md).unwrap(),
            table,
            "src/config/variables.md is out of date: QUERYCACHE_BLESS=1 cargo test --lib config::variables"
        );

        let readme_path = root.join("README.md");
        let readme = std::fs::read_to_string(&readme_path).unwrap();
        let start = readme
            .find("| variable | default | meaning |\n")
            .expect("README has the variables table");
        let end = readme[start..]
            .find("\n\n")
            .map_or(readme.len(), |at| start + at + 1);
        if bless {
            let blessed = format!("{}{}{}", &readme[..start], table, &readme[end..]);
            std::fs::write(&readme_path, blessed).unwrap();
        } else {
            assert_eq!(
                &readme[start..end],
                table,
                "README.md's variables table is out of date: QUERYCACHE_BLESS=1 cargo test --lib config::variables"
            );
        }
    }

    #[test]
    fn names_are_unique_and_families_end_in_a_placeholder() {
        let mut names: Vec<&str> = VARIABLES.iter().map(|v| v.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), VARIABLES.len());
        for variable in VARIABLES {
            if let Namespace { prefix, .. } = variable.applies {
                assert_eq!(variable.name, format!("{prefix}<NAMESPACE>"));
            }
        }
    }

    #[test]
    fn every_row_that_configures_the_cache_accepts_its_default() {
        for variable in VARIABLES {
            let Config(apply) = variable.applies else {
                continue;
            };
            let default = variable.default.trim_matches('`');
            if default.starts_with("unset") || default.contains(' ') {
                continue;
            }
            let builder = apply(crate::CacheConfig::builder(), variable.name, default)
                .unwrap_or_else(|e| panic!("{}={default}: {e}", variable.name));
            let config = builder.build().unwrap();
            let defaults = crate::CacheConfig::default();
            assert_eq!(
                format!("{config:?}"),
                format!("{defaults:?}"),
                "{}: the documented default {default} is not the default",
                variable.name
            );
        }
    }

    #[test]
    fn families_need_a_namespace_and_other_names_change_nothing() {
        let err = apply(crate::CacheConfig::builder(), "CACHE_TTL_", "60").unwrap_err();
        assert!(err.to_string().contains("e.g. CACHE_TTL_SONGS"), "{err}");
        let config = apply(crate::CacheConfig::builder(), "CACHE_SWR_SONGS", "30")
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(
            config.swr_for_namespace("songs"),
            Some(std::time::Duration::from_secs(30))
        );
        for (name, value) in [
            ("CACHE_DEFAULT_TTLL", "soon"),
            ("PATH", "/bin"),
            ("CACHE_HTTP_MAX_CONNECTIONS", "x"),
        ] {
            let config = apply(crate::CacheConfig::builder(), name, value)
                .unwrap()
                .build()
                .unwrap();
            assert_eq!(
                format!("{config:?}"),
                format!("{:?}", crate::CacheConfig::default()),
                "{name}"
            );
        }
    }
}
