//! Configuration from the environment: [`CacheConfig::from_env`] and
//! [`CacheConfig::from_vars`], the variables they know, and the parsers that name the
//! variable at fault.

use std::time::Duration;

use super::{CacheConfig, CacheConfigBuilder, KeySecret, dependencies, secret};
use crate::Error;

impl CacheConfig {
    /// Reads the `CACHE_*` variables (and `REDIS_URL`) of this process's environment.
    ///
    /// ```
    /// let config = querycache::CacheConfig::from_env().unwrap();
    /// assert!(config.enabled());
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] naming the first variable whose value is invalid.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_vars(std::env::vars())
    }

    /// Like [`from_env`](Self::from_env), from any list of `(name, value)` pairs; variables
    /// that are not querycache's are ignored.
    ///
    /// ```
    /// use std::time::Duration;
    /// use querycache::CacheConfig;
    ///
    /// let config = CacheConfig::from_vars([
    ///     ("CACHE_DEFAULT_TTL", "60"),
    ///     ("CACHE_TTL_PLATFORM_STATUS", "10"),
    ///     ("PATH", "/usr/bin"),
    /// ]).unwrap();
    /// assert_eq!(config.default_ttl(), Duration::from_secs(60));
    /// assert_eq!(config.ttl_for_namespace("platform_status"), Some(Duration::from_secs(10)));
    ///
    /// let err = CacheConfig::from_vars([("CACHE_DEFAULT_TTL", "soon")]).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid configuration: CACHE_DEFAULT_TTL=\"soon\": expected a whole number of seconds"
    /// );
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] naming the first variable whose value is invalid.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut builder = CacheConfig::builder();
        let mut vars: Vec<(String, String)> = vars
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
            .collect();
        // Deterministic order, so the first error reported does not depend on the
        // environment's order.
        vars.sort();
        for (name, value) in &vars {
            builder = apply_var(builder, name, value)?;
        }
        builder.build()
    }
}

/// Variables this crate (and its example apps) read; any other `CACHE_*` variable is
/// probably a typo and is reported at warn level.
const KNOWN_VARS: &[&str] = &[
    "CACHE_ENABLED",
    "CACHE_DEFAULT_TTL",
    "CACHE_MAX_TTL",
    "CACHE_COUNT_TTL",
    "CACHE_ERROR_TTL",
    "CACHE_NEGATIVE_TTL",
    "CACHE_JITTER_PERCENT",
    "CACHE_MEMORY_MAX_BYTES",
    "CACHE_INVALIDATION_STRATEGY",
    "CACHE_KEY_PREFIX",
    "CACHE_COMPRESSION_ENABLED",
    "CACHE_COMPRESSION_THRESHOLD",
    "CACHE_WARM_ON_STARTUP",
    "CACHE_CLUSTER_MODE",
    "CACHE_ADMIN_TOKEN",
    "CACHE_REDIS_TIMEOUT_MS",
    "CACHE_STORE",
    "CACHE_BREAKER_THRESHOLD",
    "CACHE_BREAKER_COOLDOWN_MS",
    "CACHE_CHANNEL_HEARTBEAT_MS",
    "CACHE_LEASE_TTL_MS",
    // `http::ServeOptions::from_env` (feature `axum`).
    "CACHE_HTTP_HEADER_TIMEOUT_MS",
    "CACHE_HTTP_BODY_TIMEOUT_MS",
    "CACHE_HTTP_REQUEST_TIMEOUT_MS",
    "CACHE_HTTP_MAX_CONNECTIONS",
    "CACHE_HTTP_SHUTDOWN_TIMEOUT_MS",
    dependencies::VARIABLE,
    secret::VARIABLE,
];

fn apply_var(b: CacheConfigBuilder, name: &str, value: &str) -> Result<CacheConfigBuilder, Error> {
    Ok(match name {
        "REDIS_URL" if !value.trim().is_empty() => b.redis_url(value.trim()),
        "CACHE_ENABLED" => b.enabled(parse_bool(name, value)?),
        "CACHE_DEFAULT_TTL" => b.default_ttl(parse_secs(name, value)?),
        "CACHE_MAX_TTL" => b.max_ttl(parse_secs(name, value)?),
        "CACHE_COUNT_TTL" => b.count_ttl(parse_secs(name, value)?),
        "CACHE_ERROR_TTL" => b.error_ttl(parse_secs(name, value)?),
        "CACHE_NEGATIVE_TTL" => b.negative_ttl(parse_secs(name, value)?),
        "CACHE_JITTER_PERCENT" => {
            b.jitter_percent(
                value.trim().trim_end_matches('%').parse().map_err(|_| {
                    Error::config(name, value, "expected a percentage from 0 to 100")
                })?,
            )
        }
        "CACHE_MEMORY_MAX_BYTES" => b.memory_max_bytes(parse_bytes(name, value)?),
        "CACHE_INVALIDATION_STRATEGY" => b.invalidation_strategy(value.parse()?),
        "CACHE_KEY_PREFIX" => b.key_prefix(value),
        "CACHE_COMPRESSION_ENABLED" => b.compression_enabled(parse_bool(name, value)?),
        "CACHE_COMPRESSION_THRESHOLD" => {
            let bytes = parse_bytes(name, value)?;
            let bytes = usize::try_from(bytes)
                .map_err(|_| Error::config(name, value, "too large for this platform"))?;
            b.compression_threshold(bytes)
        }
        "CACHE_WARM_ON_STARTUP" => b.warm_on_startup(parse_bool(name, value)?),
        "CACHE_CLUSTER_MODE" => b.cluster_mode(parse_bool(name, value)?),
        "CACHE_REDIS_TIMEOUT_MS" => b.redis_timeout(parse_ms(name, value)?),
        "CACHE_BREAKER_COOLDOWN_MS" => b.breaker_cooldown(parse_ms(name, value)?),
        "CACHE_CHANNEL_HEARTBEAT_MS" => b.channel_heartbeat(parse_ms(name, value)?),
        "CACHE_LEASE_TTL_MS" => b.lease_ttl(parse_ms(name, value)?),
        "CACHE_BREAKER_THRESHOLD" => b.breaker_threshold(
            value
                .trim()
                .parse()
                .map_err(|_| Error::config(name, value, "expected a whole number of failures"))?,
        ),
        "CACHE_STORE" => b.store(value.parse()?),
        // Blank: unset (a random secret per process).
        secret::VARIABLE if value.trim().is_empty() => b,
        secret::VARIABLE => {
            let secret = KeySecret::new(value.trim().as_bytes())?;
            let mut b = b;
            b.config.key_secret = Some(secret);
            b
        }
        dependencies::VARIABLE => dependencies::parse(value)?
            .into_iter()
            .fold(b, |b, (table, also)| b.table_also_writes(&table, also)),
        _ => {
            if let Some(ns) = namespace_of(name, value, "CACHE_SWR_", "SONGS")? {
                b.namespace_swr(ns, parse_secs(name, value)?)
            } else if let Some(ns) = namespace_of(name, value, "CACHE_TTL_", "SONGS")? {
                b.namespace_ttl(ns, parse_secs(name, value)?)
            } else {
                if name.starts_with("CACHE_") && !KNOWN_VARS.contains(&name) {
                    tracing::warn!(
                        variable = name,
                        "unknown CACHE_* variable ignored; is it misspelled?"
                    );
                }
                b
            }
        }
    })
}

/// The namespace a per-namespace variable (`<prefix><NAMESPACE>`) names, lower-cased; `None`
/// for another variable. `example` completes the message when the namespace is missing.
fn namespace_of(
    name: &str,
    value: &str,
    prefix: &str,
    example: &str,
) -> Result<Option<String>, Error> {
    match name.strip_prefix(prefix) {
        None => Ok(None),
        Some("") => Err(Error::config(
            name,
            value,
            format!("name a namespace after {prefix}, e.g. {prefix}{example}"),
        )),
        Some(ns) => Ok(Some(ns.to_ascii_lowercase())),
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool, Error> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::config(
            name,
            value,
            "expected true or false (also accepted: 1/0, yes/no, on/off)",
        )),
    }
}

fn parse_ms(name: &str, value: &str) -> Result<Duration, Error> {
    let ms: u64 = value
        .trim()
        .parse()
        .map_err(|_| Error::config(name, value, "expected a whole number of milliseconds"))?;
    Ok(Duration::from_millis(ms))
}

fn parse_secs(name: &str, value: &str) -> Result<Duration, Error> {
    let secs: u64 = value
        .trim()
        .parse()
        .map_err(|_| Error::config(name, value, "expected a whole number of seconds"))?;
    if secs == 0 {
        return Err(Error::config(name, value, "must be at least one second"));
    }
    Ok(Duration::from_secs(secs))
}

/// Parses `1048576`, `64KiB`, `64MB`, `1GiB` (KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024).
fn parse_bytes(name: &str, value: &str) -> Result<u64, Error> {
    let v = value.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    let bad = || {
        Error::config(
            name,
            value,
            "expected a number of bytes, optionally with a unit: B, KB, MB, GB, KiB, MiB, GiB",
        )
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(mult)
        .ok_or_else(|| Error::config(name, value, "too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_units() {
        assert_eq!(parse_bytes("X", "64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("X", "2 GB").unwrap(), 2_000_000_000);
        assert_eq!(parse_bytes("X", "4096").unwrap(), 4096);
        assert!(parse_bytes("X", "12 parsecs").is_err());
        assert!(parse_bytes("X", "99999999999999999999GiB").is_err());
    }
}
