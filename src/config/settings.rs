//! [`CacheConfig`] as a part of an application's own settings (feature `serde`): a
//! `[cache]` table in a TOML or JSON file read with figment, config-rs or serde directly.
//!
//! The fields are the environment variables' names without `CACHE_`, in lower case
//! (`CACHE_DEFAULT_TTL` is `default_ttl`, `CACHE_REDIS_TIMEOUT_MS` is `redis_timeout_ms`,
//! `REDIS_URL` is `redis_url`), and each value means what the variable's does: the one table
//! of variables (`variables.rs`) applies both, so a setting added there is a field here, with
//! the same parsing and the same checks. The families `CACHE_TTL_<NAMESPACE>` and
//! `CACHE_SWR_<NAMESPACE>` are the tables `ttl` and `swr`, one key per namespace.
//!
//! Values may be written typed (`enabled = false`, `default_ttl = 600`) or as the text an
//! environment variable would hold (`default_ttl = "10m"`). A field of no setting is refused,
//! naming it; so is one that configures something else (`admin_token`, `http_*_ms`), saying
//! what reads it.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

use super::variables::{self, Applies, VARIABLES};
use super::{CacheConfig, CacheConfigBuilder};
use crate::Error;

impl<'de> Deserialize<'de> for CacheConfig {
    /// Reads a table of settings, named as the `CACHE_*` variables without `CACHE_`, and
    /// validates it as [`CacheConfigBuilder::build`] does.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(SettingsVisitor)
    }
}

struct SettingsVisitor;

impl<'de> Visitor<'de> for SettingsVisitor {
    type Value = CacheConfig;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table of cache settings (`default_ttl`, `redis_url`, ...)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CacheConfig, A::Error> {
        let mut builder = CacheConfig::builder();
        let mut seen: Vec<String> = Vec::new();
        while let Some(field) = map.next_key::<String>()? {
            if seen.contains(&field) {
                return Err(de::Error::custom(format_args!("duplicate field `{field}`")));
            }
            seen.push(field.clone());
            builder = match setting(&field) {
                Setting::Variable(variable) => {
                    let value: Scalar = map.next_value()?;
                    apply(builder, &field, variable, value)?
                }
                Setting::Family(prefix) => {
                    let table: BTreeMap<String, Scalar> = map.next_value()?;
                    let mut builder = builder;
                    for (namespace, value) in table {
                        let variable = format!("{prefix}{}", namespace.to_ascii_uppercase());
                        builder =
                            apply(builder, &format!("{field}.{namespace}"), &variable, value)?;
                    }
                    builder
                }
                Setting::Elsewhere(variable, reader) => {
                    return Err(de::Error::custom(format_args!(
                        "`{field}` is not a cache setting: {variable} configures \
                         `{reader}`; give it there"
                    )));
                }
                Setting::Unknown => {
                    return Err(de::Error::custom(format_args!(
                        "unknown field `{field}`, expected one of {}",
                        field_names()
                    )));
                }
            };
        }
        builder
            .build()
            .map_err(|err| de::Error::custom(for_settings(err)))
    }
}

/// What a field of the settings table is.
enum Setting {
    /// One variable's value.
    Variable(&'static str),
    /// A table of a family's values, one per namespace: the variables' prefix.
    Family(&'static str),
    /// A variable read by something else than `CacheConfig`: the variable and its reader.
    Elsewhere(&'static str, &'static str),
    Unknown,
}

/// The field a variable is: its name without `CACHE_`, in lower case (`REDIS_URL` keeps its
/// name); a family is the table named by its prefix (`CACHE_TTL_` is `ttl`).
fn field_of(variable: &variables::Variable) -> String {
    let name = match variable.applies {
        Applies::Namespace { prefix, .. } => prefix.trim_end_matches('_'),
        Applies::Config(_) | Applies::Elsewhere(_) => variable.name,
    };
    name.strip_prefix("CACHE_")
        .unwrap_or(name)
        .to_ascii_lowercase()
}

fn setting(field: &str) -> Setting {
    for variable in VARIABLES {
        if field_of(variable) != field {
            continue;
        }
        return match variable.applies {
            Applies::Config(_) => Setting::Variable(variable.name),
            Applies::Namespace { prefix, .. } => Setting::Family(prefix),
            Applies::Elsewhere(reader) => Setting::Elsewhere(variable.name, reader),
        };
    }
    Setting::Unknown
}

/// The fields of the settings, for the message about an unknown one.
fn field_names() -> String {
    VARIABLES
        .iter()
        .filter(|variable| !matches!(variable.applies, Applies::Elsewhere(_)))
        .map(|variable| format!("`{}`", field_of(variable)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Applies one field's value through its variable's row; an error names the field.
fn apply<E: de::Error>(
    builder: CacheConfigBuilder,
    field: &str,
    variable: &str,
    value: Scalar,
) -> Result<CacheConfigBuilder, E> {
    let Some(text) = value.text() else {
        // `null`: unset, the default stays.
        return Ok(builder);
    };
    variables::apply(builder, variable, &text).map_err(|err| {
        E::custom(match err {
            Error::Config { value, reason, .. } => {
                format!("invalid `{field}` {value:?}: {}", in_field_names(&reason))
            }
            other => format!("invalid `{field}`: {other}"),
        })
    })
}

/// A configuration error found by `build` (one setting against another), with the settings
/// named as fields.
fn for_settings(err: Error) -> String {
    match err {
        Error::Config {
            variable,
            value,
            reason,
        } => format!(
            "invalid `{}` {value:?}: {}",
            in_field_names(&variable),
            in_field_names(&reason)
        ),
        other => other.to_string(),
    }
}

/// `text` with each variable it names (`CACHE_MAX_TTL`, `CACHE_TTL_SONGS`, `REDIS_URL`)
/// named as its field (`max_ttl`, `ttl.songs`, `redis_url`).
fn in_field_names(text: &str) -> String {
    super::env::rename_words(text, |word| {
        VARIABLES
            .iter()
            .find_map(|variable| match variable.applies {
                Applies::Namespace { prefix, .. } => word
                    .strip_prefix(prefix)
                    .filter(|ns| !ns.is_empty())
                    .map(|ns| format!("{}.{}", field_of(variable), ns.to_ascii_lowercase())),
                Applies::Config(_) | Applies::Elsewhere(_) => {
                    (variable.name == word).then(|| field_of(variable))
                }
            })
    })
}

/// One setting's value as written: typed, or as an environment variable's text.
enum Scalar {
    Text(String),
    Unset,
}

impl Scalar {
    /// The value as the variable's text would hold it; `None` for `null`.
    fn text(self) -> Option<String> {
        match self {
            Scalar::Text(text) => Some(text),
            Scalar::Unset => None,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a boolean, a number or a string")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Text(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Text(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Text(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Text(v.to_string()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Text(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Unset)
    }
    fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Unset)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Scalar, D::Error> {
        deserializer.deserialize_any(self)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn from_json(json: &str) -> Result<CacheConfig, String> {
        serde_json::from_str::<CacheConfig>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn fields_are_the_variables_without_their_prefix() {
        let config = from_json(
            r#"{
                "enabled": true,
                "default_ttl": "30m",
                "max_ttl": 86400,
                "ttl": { "songs": "90s", "Bing_Analytics": 42 },
                "swr": { "songs": 30 },
                "redis_timeout_ms": "250ms",
                "breaker_cooldown_ms": 750,
                "memory_max_bytes": "64MiB",
                "jitter_percent": 10,
                "invalidation_strategy": "manual",
                "key_prefix": "myapp",
                "redis_url": null
            }"#,
        )
        .unwrap();
        assert_eq!(config.default_ttl(), Duration::from_secs(1800));
        assert_eq!(config.max_ttl(), Duration::from_secs(86_400));
        assert_eq!(
            config.ttl_for_namespace("songs"),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            config.ttl_for_namespace("bing_analytics"),
            Some(Duration::from_secs(42))
        );
        assert_eq!(
            config.swr_for_namespace("songs"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(config.redis_timeout(), Duration::from_millis(250));
        assert_eq!(config.breaker_cooldown(), Duration::from_millis(750));
        assert_eq!(config.memory_max_bytes(), 64 << 20);
        assert_eq!(config.jitter_percent(), 10);
        assert_eq!(
            config.invalidation_strategy(),
            super::super::InvalidationStrategy::Manual
        );
        assert_eq!(config.key_prefix(), "myapp");
        assert_eq!(
            config.store_kind(),
            super::super::StoreKind::Memory,
            "null: unset"
        );
        let empty = from_json("{}").unwrap();
        assert_eq!(
            format!("{empty:?}"),
            format!("{:?}", CacheConfig::default())
        );
    }

    #[test]
    fn errors_name_the_field() {
        for (json, expected) in [
            (
                r#"{"default_ttl": "soon"}"#,
                "invalid `default_ttl` \"soon\": expected a number followed by a unit",
            ),
            (
                r#"{"ttl": {"songs": "1 fortnight"}}"#,
                "invalid `ttl.songs` \"1 fortnight\": unknown unit \"fortnight\"",
            ),
            (
                r#"{"default_ttl": "2h", "max_ttl": "1h"}"#,
                "invalid `default_ttl` \"7200\": exceeds max_ttl (3600s)",
            ),
            (
                r#"{"defualt_ttl": 60}"#,
                "unknown field `defualt_ttl`, expected one of `enabled`, `default_ttl`",
            ),
            (
                r#"{"admin_token": "0123456789abcdef"}"#,
                "`admin_token` is not a cache setting: CACHE_ADMIN_TOKEN configures \
                 `http::ManagementOptions::from_env`",
            ),
            (
                r#"{"enabled": "maybe"}"#,
                "invalid `enabled` \"maybe\": expected true or false",
            ),
            (r#"{"max_ttl": [1]}"#, "a boolean, a number or a string"),
            (
                r#"{"max_ttl": 60, "max_ttl": 60}"#,
                "duplicate field `max_ttl`",
            ),
        ] {
            let err = from_json(json).unwrap_err();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }

    #[test]
    fn secrets_stay_out_of_errors_and_debug() {
        let err = from_json(r#"{"key_secret": "short-secret"}"#).unwrap_err();
        assert!(err.contains("`key_secret`"), "{err}");
        assert!(!err.contains("short-secret"), "{err}");
        let config = from_json(r#"{"key_secret": "0123456789abcdef-long-enough"}"#).unwrap();
        assert!(config.has_key_secret());
        assert!(!format!("{config:?}").contains("long-enough"));
    }
}
