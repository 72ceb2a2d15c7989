//! `CacheConfig` as an application configures it: nested in its own settings (feature
//! `serde`), read by figment from a TOML file, a JSON file and the environment; and from
//! `CACHE_*` variables under a prefix of the application's choosing.

use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Json, Serialized, Toml};
use querycache::config::{InvalidationStrategy, StoreKind};
use querycache::{Cache, CacheConfig};
use serde::Deserialize;

/// An application's settings, with the cache's nested as `[cache]`.
#[derive(Debug, Deserialize)]
struct Settings {
    database_url: String,
    #[serde(default)]
    cache: CacheConfig,
}

const TOML: &str = r#"
database_url = "postgres://app@db/app"

[cache]
enabled = true
default_ttl = "30m"
max_ttl = 86400
redis_timeout_ms = "250ms"
breaker_cooldown_ms = 750
memory_max_bytes = "64MiB"
invalidation_strategy = "manual"
key_prefix = "myapp"
jitter_percent = 10

[cache.ttl]
songs = "1h30m"
user_sites = 120

[cache.swr]
songs = "30s"
"#;

#[test]
fn a_cache_table_in_a_toml_file() {
    let settings: Settings = Figment::new()
        .merge(Toml::string(TOML))
        .extract()
        .expect("valid settings");
    assert_eq!(settings.database_url, "postgres://app@db/app");
    let cache = settings.cache;
    assert_eq!(cache.default_ttl(), Duration::from_secs(1800));
    assert_eq!(cache.max_ttl(), Duration::from_secs(86_400));
    assert_eq!(cache.redis_timeout(), Duration::from_millis(250));
    assert_eq!(cache.breaker_cooldown(), Duration::from_millis(750));
    assert_eq!(cache.memory_max_bytes(), 64 << 20);
    assert_eq!(cache.invalidation_strategy(), InvalidationStrategy::Manual);
    assert_eq!(cache.key_prefix(), "myapp");
    assert_eq!(cache.jitter_percent(), 10);
    assert_eq!(
        cache.ttl_for_namespace("songs"),
        Some(Duration::from_secs(5400))
    );
    assert_eq!(
        cache.ttl_for_namespace("user_sites"),
        Some(Duration::from_secs(120))
    );
    assert_eq!(
        cache.swr_for_namespace("songs"),
        Some(Duration::from_secs(30))
    );
    // And the cache runs with it.
    let cache = Cache::with_config(cache);
    assert_eq!(cache.config().default_ttl(), Duration::from_secs(1800));
}

#[test]
fn a_missing_table_is_the_defaults() {
    let settings: Settings = Figment::new()
        .merge(Toml::string("database_url = \"sqlite::memory:\""))
        .extract()
        .expect("valid settings");
    assert_eq!(
        format!("{:?}", settings.cache),
        format!("{:?}", CacheConfig::default())
    );
}

/// A JSON file, and a TOML file of overrides merged over it, as a deployment layers them
/// (figment's `Env` provider would be the next layer: its keys are the same fields; it is not
/// used here, since setting variables races the other tests of this process).
#[test]
fn the_same_settings_in_json_with_overrides() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let json = dir.path().join("settings.json");
    std::fs::write(
        &json,
        r#"{
            "database_url": "sqlite::memory:",
            "cache": { "default_ttl": 600, "ttl": { "songs": "10m" }, "redis_timeout_ms": 80 }
        }"#,
    )
    .expect("write settings.json");
    let overrides = dir.path().join("production.toml");
    std::fs::write(&overrides, "[cache]\ndefault_ttl = \"1h\"\n").expect("write overrides");
    let settings: Settings = Figment::new()
        .merge(Json::file(&json))
        .merge(Toml::file(&overrides))
        .extract()
        .expect("valid settings");
    assert_eq!(settings.cache.default_ttl(), Duration::from_secs(3600));
    assert_eq!(settings.cache.redis_timeout(), Duration::from_millis(80));
    assert_eq!(
        settings.cache.ttl_for_namespace("songs"),
        Some(Duration::from_secs(600))
    );
}

/// Each mistake is refused, naming the field (figment adds where it was: the file's key).
#[test]
fn mistakes_name_the_field() {
    for (toml, expected) in [
        (
            "[cache]\ndefault_tll = \"30m\"",
            "unknown field `default_tll`, expected one of `enabled`, `default_ttl`",
        ),
        (
            "[cache]\ndefault_ttl = \"soon\"",
            "invalid `default_ttl` \"soon\": expected a number followed by a unit",
        ),
        (
            "[cache]\ndefault_ttl = \"2h\"\nmax_ttl = \"1h\"",
            "invalid `default_ttl` \"7200\": exceeds max_ttl (3600s)",
        ),
        (
            "[cache.ttl]\nsongs = 0",
            "invalid `ttl.songs` \"0\": must be at least one second",
        ),
        (
            "[cache]\nredis_timeout_ms = \"1s500ms\"",
            "invalid `redis_timeout_ms` \"1s500ms\": milliseconds stand alone",
        ),
        (
            "[cache]\nadmin_token = \"0123456789abcdef\"",
            "`admin_token` is not a cache setting: CACHE_ADMIN_TOKEN configures \
             `http::ManagementOptions::from_env`",
        ),
        (
            "[cache]\nstore = \"tiered\"",
            "invalid `store` \"tiered\": needs redis_url",
        ),
    ] {
        let source = format!("database_url = \"x\"\n{toml}");
        let err = Figment::new()
            .merge(Toml::string(&source))
            .extract::<Settings>()
            .expect_err(toml)
            .to_string();
        assert!(err.contains(expected), "{toml}:\n{err}");
    }
}

/// Secrets never show: not in `Debug`, not in errors.
#[test]
fn secrets_stay_redacted() {
    let toml = "database_url = \"x\"\n[cache]\nkey_secret = \"0123456789abcdef-the-secret\"";
    let settings: Settings = Figment::new()
        .merge(Toml::string(toml))
        .extract()
        .expect("valid settings");
    assert!(settings.cache.has_key_secret());
    let shown = format!("{settings:?}");
    assert!(!shown.contains("the-secret"), "{shown}");

    let toml = "database_url = \"x\"\n[cache]\nkey_secret = \"short-secret\"";
    let err = Figment::new()
        .merge(Toml::string(toml))
        .extract::<Settings>()
        .expect_err("too short")
        .to_string();
    assert!(
        err.contains("`key_secret`") && !err.contains("short-secret"),
        "{err}"
    );

    let toml = "database_url = \"x\"\n[cache]\nredis_url = \"redis://app:hunter2@cache:6379\"";
    let result = Figment::new()
        .merge(Toml::string(toml))
        .extract::<Settings>();
    match result {
        // With the `redis` feature: accepted, and `Debug` masks the password.
        Ok(settings) => {
            assert_eq!(settings.cache.store_kind(), StoreKind::Tiered);
            let shown = format!("{:?}", settings.cache);
            assert!(shown.contains("redis://app:***@cache:6379"), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        // Without it: refused, and the error masks it too.
        Err(err) => {
            let err = err.to_string();
            assert!(
                err.contains("`redis_url`") && !err.contains("hunter2"),
                "{err}"
            );
        }
    }
}

/// Figment's `Serialized` provider hands values over typed; they mean what they mean in a
/// file.
#[test]
fn typed_values_from_code() {
    let settings: Settings = Figment::new()
        .merge(Serialized::defaults(serde_json::json!({
            "database_url": "x",
            "cache": { "enabled": false, "default_ttl": 60, "redis_url": null }
        })))
        .extract()
        .expect("valid settings");
    assert!(!settings.cache.enabled());
    assert_eq!(settings.cache.default_ttl(), Duration::from_secs(60));
}

#[test]
fn variables_under_a_prefix() {
    let config = CacheConfig::from_vars_prefixed(
        "MYAPP_CACHE_",
        [
            ("MYAPP_CACHE_DEFAULT_TTL", "30m"),
            ("MYAPP_CACHE_TTL_SONGS", "1h30m"),
            ("MYAPP_CACHE_REDIS_TIMEOUT_MS", "250ms"),
            ("MYAPP_CACHE_ENABLED", "true"),
            // Not under the prefix: ignored.
            ("CACHE_DEFAULT_TTL", "5"),
            ("CACHE_ENABLED", "false"),
            ("REDIS_URL", "redis://another-component:6379"),
        ],
    )
    .expect("valid configuration");
    assert_eq!(config.default_ttl(), Duration::from_secs(1800));
    assert_eq!(
        config.ttl_for_namespace("songs"),
        Some(Duration::from_secs(5400))
    );
    assert_eq!(config.redis_timeout(), Duration::from_millis(250));
    assert!(config.enabled());
    assert_eq!(
        config.store_kind(),
        StoreKind::Memory,
        "bare REDIS_URL ignored"
    );

    // Errors name the variable as the application spells it, in the reason too.
    for (vars, expected) in [
        (
            vec![("MYAPP_CACHE_DEFAULT_TTL", "soon")],
            "MYAPP_CACHE_DEFAULT_TTL=\"soon\"",
        ),
        (
            vec![("MYAPP_CACHE_STORE", "redis")],
            "MYAPP_CACHE_STORE=\"redis\": needs MYAPP_CACHE_REDIS_URL",
        ),
        (
            vec![
                ("MYAPP_CACHE_DEFAULT_TTL", "2h"),
                ("MYAPP_CACHE_MAX_TTL", "1h"),
            ],
            "MYAPP_CACHE_DEFAULT_TTL=\"7200\": exceeds MYAPP_CACHE_MAX_TTL (3600s)",
        ),
        (vec![], ""),
    ] {
        if vars.is_empty() {
            continue;
        }
        let err = CacheConfig::from_vars_prefixed("MYAPP_CACHE_", vars.clone())
            .expect_err("invalid")
            .to_string();
        assert!(err.contains(expected), "{vars:?}: {err}");
    }
    let err = CacheConfig::from_vars_prefixed("", [("CACHE_ENABLED", "true")]).unwrap_err();
    assert!(err.to_string().contains("name a prefix"), "{err}");

    // The change feed follows the bare DATABASE_URL, as it does without a prefix.
    let config = CacheConfig::from_vars_prefixed(
        "MYAPP_CACHE_",
        [
            ("MYAPP_CACHE_CHANGE_FEED", "triggers"),
            ("DATABASE_URL", "postgres://app@db/app"),
        ],
    )
    .expect("valid configuration");
    assert!(config.change_feed().is_some());
}

/// Every duration variable takes `30m`-style values, with the parser `#[cached_query]`
/// uses; bare numbers keep their unit.
#[test]
fn durations_in_variables() {
    let config = CacheConfig::from_vars([
        ("CACHE_DEFAULT_TTL", "1h30m"),
        ("CACHE_MAX_TTL", "1d"),
        ("CACHE_COUNT_TTL", "90s"),
        ("CACHE_ERROR_TTL", "300"),
        ("CACHE_NEGATIVE_TTL", "1m"),
        ("CACHE_SWR_SONGS", "30s"),
        ("CACHE_LEASE_TTL_MS", "2s"),
        ("CACHE_REDIS_TIMEOUT_MS", "150ms"),
        ("CACHE_BREAKER_COOLDOWN_MS", "1500"),
        ("CACHE_CHANNEL_HEARTBEAT_MS", "1m"),
    ])
    .expect("valid configuration");
    assert_eq!(config.default_ttl(), Duration::from_secs(5400));
    assert_eq!(config.max_ttl(), Duration::from_secs(86_400));
    assert_eq!(config.count_ttl(), Duration::from_secs(90));
    assert_eq!(config.error_ttl(), Duration::from_secs(300));
    assert_eq!(config.negative_ttl(), Duration::from_secs(60));
    assert_eq!(
        config.swr_for_namespace("songs"),
        Some(Duration::from_secs(30))
    );
    assert_eq!(config.lease_ttl(), Duration::from_secs(2));
    assert_eq!(config.redis_timeout(), Duration::from_millis(150));
    assert_eq!(config.breaker_cooldown(), Duration::from_millis(1500));
    assert_eq!(config.channel_heartbeat(), Duration::from_secs(60));

    for (var, value, expected) in [
        (
            "CACHE_DEFAULT_TTL",
            "30m1h",
            "each unit may appear once, largest first",
        ),
        ("CACHE_DEFAULT_TTL", "500ms", "TTLs are whole seconds"),
        (
            "CACHE_TTL_SONGS",
            "1 fortnight",
            "unknown unit \"fortnight\"",
        ),
        ("CACHE_LEASE_TTL_MS", "1s500ms", "milliseconds stand alone"),
    ] {
        let err = CacheConfig::from_vars([(var, value)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("{var}={value:?}")) && err.contains(expected),
            "{var}={value}: {err}"
        );
    }
}
