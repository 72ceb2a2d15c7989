//! Configuration from the environment: [`CacheConfig::from_env`] and
//! [`CacheConfig::from_vars`], applying the rows of `variables`, and the parsers that name the
//! variable at fault.

use std::time::Duration;

use super::{CacheConfig, variables};
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
            builder = if name == "DATABASE_URL" {
                // Not ours, but the change feed follows it unless CACHE_CHANGE_FEED_URL says
                // otherwise.
                builder.feed_var(name, value)
            } else {
                variables::apply(builder, name, value)?
            };
        }
        builder.build()
    }
}

pub(super) fn parse_bool(name: &str, value: &str) -> Result<bool, Error> {
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

pub(super) fn parse_ms(name: &str, value: &str) -> Result<Duration, Error> {
    let ms: u64 = value
        .trim()
        .parse()
        .map_err(|_| Error::config(name, value, "expected a whole number of milliseconds"))?;
    Ok(Duration::from_millis(ms))
}

pub(super) fn parse_secs(name: &str, value: &str) -> Result<Duration, Error> {
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
pub(super) fn parse_bytes(name: &str, value: &str) -> Result<u64, Error> {
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
