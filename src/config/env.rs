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
    ///     "invalid configuration: CACHE_DEFAULT_TTL=\"soon\": expected a number followed by a \
    ///      unit (`s`, `m`, `h` or `d`); write a whole number of seconds (`3600`) or a duration \
    ///      (`30m`, `1h30m`, `1d`)"
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
        let vars = vars
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
            .collect();
        Self::from_canonical_vars(vars)
    }

    /// Reads the variables of this process's environment that start with `prefix` instead
    /// of `CACHE_`: with `"MYAPP_CACHE_"`, `MYAPP_CACHE_DEFAULT_TTL` is read as
    /// `CACHE_DEFAULT_TTL` is by [`from_env`](Self::from_env), and `CACHE_DEFAULT_TTL` itself is
    /// ignored. See [`from_vars_prefixed`](Self::from_vars_prefixed) for `REDIS_URL` and
    /// `DATABASE_URL`.
    ///
    /// ```
    /// let config = querycache::CacheConfig::from_env_prefixed("MYAPP_CACHE_").unwrap();
    /// assert!(config.enabled());
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] naming the first prefixed variable whose value is invalid (or the
    /// prefix, if it is empty).
    pub fn from_env_prefixed(prefix: &str) -> Result<Self, Error> {
        Self::from_vars_prefixed(prefix, std::env::vars())
    }

    /// Like [`from_vars`](Self::from_vars), for variables named with `prefix` in place of
    /// `CACHE_`: `<prefix>DEFAULT_TTL`, `<prefix>TTL_SONGS`, `<prefix>CHANGE_FEED`... Errors
    /// name the variable as it was given (`MYAPP_CACHE_DEFAULT_TTL`), and so do the reasons
    /// that mention another variable.
    ///
    /// The two variables not named `CACHE_*`:
    /// * the Redis URL is read from `<prefix>REDIS_URL` only; a bare `REDIS_URL` is ignored,
    ///   since its mere presence switches the store to Redis and, in an application that
    ///   namespaces its settings, it may well be another component's;
    /// * `DATABASE_URL` is still read, bare, as the change feed's database when
    ///   `<prefix>CHANGE_FEED_URL` is not set: it only matters once `<prefix>CHANGE_FEED`
    ///   turns a feed on, and it is the application's own database.
    ///
    /// ```
    /// use std::time::Duration;
    /// use querycache::CacheConfig;
    ///
    /// let config = CacheConfig::from_vars_prefixed("MYAPP_CACHE_", [
    ///     ("MYAPP_CACHE_DEFAULT_TTL", "30m"),
    ///     ("MYAPP_CACHE_TTL_SONGS", "90s"),
    ///     ("CACHE_DEFAULT_TTL", "5"),                  // not ours: another prefix
    ///     ("REDIS_URL", "redis://other-component:6379"), // not ours either
    /// ]).unwrap();
    /// assert_eq!(config.default_ttl(), Duration::from_secs(1800));
    /// assert_eq!(config.ttl_for_namespace("songs"), Some(Duration::from_secs(90)));
    /// assert_eq!(config.store_kind(), querycache::config::StoreKind::Memory);
    ///
    /// let err = CacheConfig::from_vars_prefixed("MYAPP_CACHE_", [
    ///     ("MYAPP_CACHE_DEFAULT_TTL", "2h"),
    ///     ("MYAPP_CACHE_MAX_TTL", "1h"),
    /// ]).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid configuration: MYAPP_CACHE_DEFAULT_TTL=\"7200\": exceeds MYAPP_CACHE_MAX_TTL (3600s)"
    /// );
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] naming the first prefixed variable whose value is invalid (or the
    /// prefix, if it is empty).
    pub fn from_vars_prefixed<I, K, V>(prefix: &str, vars: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        if prefix.is_empty() {
            return Err(Error::config(
                "prefix",
                prefix,
                "name a prefix for the variables, such as \"MYAPP_CACHE_\" (\"CACHE_\" without one)",
            ));
        }
        let mut canonical = Vec::new();
        for (name, value) in vars {
            let (name, value) = (name.as_ref(), value.as_ref());
            if name == "DATABASE_URL" {
                canonical.push((name.to_owned(), value.to_owned()));
                continue;
            }
            let Some(rest) = name.strip_prefix(prefix) else {
                continue;
            };
            let as_unprefixed = if rest == "REDIS_URL" {
                rest.to_owned()
            } else {
                format!("CACHE_{rest}")
            };
            if !variables::known(&as_unprefixed) {
                tracing::warn!(
                    variable = name,
                    "unknown {prefix}* variable ignored; is it misspelled?"
                );
                continue;
            }
            canonical.push((as_unprefixed, value.to_owned()));
        }
        Self::from_canonical_vars(canonical).map_err(|err| rename(err, prefix))
    }

    /// Applies `(name, value)` pairs named as [`from_vars`](Self::from_vars) reads them.
    fn from_canonical_vars(mut vars: Vec<(String, String)>) -> Result<Self, Error> {
        let mut builder = CacheConfig::builder();
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

/// `err` with the variables it names (`CACHE_*`, `REDIS_URL`) named with `prefix` instead,
/// in its variable and in its reason.
fn rename(err: Error, prefix: &str) -> Error {
    match err {
        Error::Config {
            variable,
            value,
            reason,
        } => Error::Config {
            variable: rename_in_text(&variable, prefix),
            value,
            reason: rename_in_text(&reason, prefix),
        },
        other => other,
    }
}

/// `text` with each word that is a variable's name (`CACHE_…`, `REDIS_URL`) given `prefix`
/// in place of `CACHE_`.
fn rename_in_text(text: &str, prefix: &str) -> String {
    rename_words(text, |word| match word.strip_prefix("CACHE_") {
        Some(name) if !name.is_empty() => Some(format!("{prefix}{name}")),
        _ if word == "REDIS_URL" => Some(format!("{prefix}{word}")),
        _ => None,
    })
}

/// `text` with each word (a run of ASCII letters, digits and `_` starting with a capital)
/// for which `rename` has a name replaced by that name.
pub(super) fn rename_words(text: &str, rename: impl Fn(&str) -> Option<String>) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_uppercase()) {
        let (before, from) = rest.split_at(start);
        out.push_str(before);
        let len = from.find(|c: char| !is_word(c)).unwrap_or(from.len());
        let (word, after) = from.split_at(len);
        match rename(word).filter(|_| !out.ends_with(is_word)) {
            Some(renamed) => out.push_str(&renamed),
            None => out.push_str(word),
        }
        rest = after;
    }
    out.push_str(rest);
    out
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

/// Whether `text` is a bare number: its meaning is the variable's unit (seconds, or
/// milliseconds for `*_MS` variables), as it always was.
fn bare_number(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// A duration variable counted in milliseconds (`*_MS`): a whole number of milliseconds, as
/// before, or a duration in querycache's syntax (`"250ms"`, `"2s"`, `"1m30s"`), read by the
/// parser `#[cached_query(soft_timeout = "250ms")]` uses (`querycache-duration`).
pub(crate) fn parse_ms(name: &str, value: &str) -> Result<Duration, Error> {
    let text = value.trim();
    let ms = if bare_number(text) {
        text.parse::<u64>()
            .map_err(|_| Error::config(name, value, "too large"))?
    } else {
        querycache_duration::parse_millis(text).map_err(|err| {
            Error::config(
                name,
                value,
                format!(
                    "{}; write a whole number of milliseconds (`250`) or a duration (`250ms`, `2s`, `1m30s`)",
                    err.reason()
                ),
            )
        })?
    };
    Ok(Duration::from_millis(ms))
}

/// A duration variable counted in seconds (the TTLs): a whole number of seconds, as before,
/// or a duration in querycache's syntax (`"90s"`, `"30m"`, `"1h30m"`, `"1d"`), read by the
/// parser `#[cached_query(ttl = "1h")]` uses (`querycache-duration`). At least one second.
pub(crate) fn parse_secs(name: &str, value: &str) -> Result<Duration, Error> {
    let text = value.trim();
    let secs = if bare_number(text) {
        text.parse::<u64>()
            .map_err(|_| Error::config(name, value, "too large"))?
    } else {
        querycache_duration::parse_secs(text).map_err(|err| {
            Error::config(
                name,
                value,
                format!(
                    "{}; write a whole number of seconds (`3600`) or a duration (`30m`, `1h30m`, `1d`)",
                    err.reason()
                ),
            )
        })?
    };
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
    fn prefixed_names_in_errors() {
        assert_eq!(
            rename_in_text("needs REDIS_URL: set it, or CACHE_STORE=memory", "APP_"),
            "needs APP_REDIS_URL: set it, or APP_STORE=memory"
        );
        assert_eq!(
            rename_in_text("MY_CACHE_X and CACHE_ alone and xCACHE_Y", "APP_"),
            "MY_CACHE_X and CACHE_ alone and xCACHE_Y"
        );
    }

    #[test]
    fn durations_in_both_units() {
        assert_eq!(parse_secs("X", "90").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_secs("X", " 1h30m ").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(parse_ms("X", "250").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_ms("X", "250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_ms("X", "2s").unwrap(), Duration::from_secs(2));
        let err = parse_secs("CACHE_DEFAULT_TTL", "500ms")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CACHE_DEFAULT_TTL=\"500ms\"") && err.contains("whole seconds"),
            "{err}"
        );
        let err = parse_ms("CACHE_REDIS_TIMEOUT_MS", "1s500ms")
            .unwrap_err()
            .to_string();
        assert!(err.contains("CACHE_REDIS_TIMEOUT_MS=\"1s500ms\""), "{err}");
        assert!(parse_secs("X", "0s").is_err());
        assert!(parse_secs("X", "99999999999999999999999").is_err());
    }

    #[test]
    fn byte_units() {
        assert_eq!(parse_bytes("X", "64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("X", "2 GB").unwrap(), 2_000_000_000);
        assert_eq!(parse_bytes("X", "4096").unwrap(), 4096);
        assert!(parse_bytes("X", "12 parsecs").is_err());
        assert!(parse_bytes("X", "99999999999999999999GiB").is_err());
    }
}
