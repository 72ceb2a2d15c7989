//! Caching an expensive external API per user: one application's cache policy, played out.
//!
//! ```text
//! cargo run --example external_api
//! CACHE_TTL_GSC_ANALYTICS=60 cargo run --example external_api   # one namespace's TTL
//! ```
//!
//! An SEO dashboard asks a slow third-party API (here a stand-in that takes 20 ms a call and
//! fails for sites it does not know) for each user's sites, search analytics and the
//! platform's status. Its policy, which is this application's and not querycache's:
//!
//! * each kind of answer has a namespace with a TTL of its own ([`POLICY`]), any of which
//!   `CACHE_TTL_<NAMESPACE>` overrides;
//! * an error from the API is cached for 5 minutes (`error_ttl = "5m"`), so a failing site
//!   is not asked again on every page view;
//! * every answer about a user depends on the tag `user:<id>`: when a user changes their
//!   sites, one invalidation drops that user's answers, and nobody else's;
//! * the statistics, per namespace, say what the cache saved.

#[path = "support/logging.rs"]
mod logging;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use querycache::{Cache, CacheConfig, Tag, cached_query};
use serde::{Deserialize, Serialize};

/// This application's TTL per namespace, in seconds: the platform's status changes often,
/// a user's list of sites rarely. `CACHE_TTL_<NAMESPACE>` overrides any of them.
const POLICY: &[(&str, u64)] = &[
    ("platform_status", 30 * 60),
    ("analytics_data", 60 * 60),
    ("user_sites", 2 * 60 * 60),
    ("bing_analytics", 60 * 60),
    ("gsc_analytics", 60 * 60),
];

/// The third-party API: slow, counted, and failing for sites it does not know.
#[derive(Default)]
struct ExternalApi {
    calls: AtomicUsize,
}

/// What the API answers when it fails. Cached errors are stored like values: serializable.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum ApiError {
    UnknownSite(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::UnknownSite(site) => write!(f, "the API knows no site {site}"),
        }
    }
}

impl std::error::Error for ApiError {}

impl ExternalApi {
    async fn call<T>(&self, answer: Result<T, ApiError>) -> Result<T, ApiError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        answer
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// The sites of a user.
#[cached_query(namespace = "user_sites", tags = ["user:{user_id}"], error_ttl = "5m")]
async fn user_sites(
    #[cache_skip] api: &ExternalApi,
    user_id: u64,
) -> Result<Vec<String>, ApiError> {
    let sites = vec![
        format!("site-{user_id}-a.example"),
        format!("site-{user_id}-b.example"),
    ];
    api.call(Ok(sites)).await
}

/// Clicks from Google Search Console for one site of a user; unknown sites are an error,
/// cached 5 minutes.
#[cached_query(namespace = "gsc_analytics", tags = ["user:{user_id}"], error_ttl = "5m")]
async fn gsc_clicks(
    #[cache_skip] api: &ExternalApi,
    user_id: u64,
    site: String,
) -> Result<u64, ApiError> {
    let answer = if site.starts_with(&format!("site-{user_id}-")) {
        Ok(site.len() as u64 * 100)
    } else {
        Err(ApiError::UnknownSite(site))
    };
    api.call(answer).await
}

/// The platform's status: the same for every user.
#[cached_query(namespace = "platform_status", error_ttl = "5m")]
async fn platform_status(#[cache_skip] api: &ExternalApi) -> Result<String, ApiError> {
    api.call(Ok("operational".to_owned())).await
}

/// The configuration: this application's [`POLICY`] under whatever the environment sets.
fn config() -> Result<CacheConfig, querycache::Error> {
    let mut vars: HashMap<String, String> = std::env::vars().collect();
    for (namespace, secs) in POLICY {
        vars.entry(format!("CACHE_TTL_{}", namespace.to_ascii_uppercase()))
            .or_insert_with(|| secs.to_string());
    }
    CacheConfig::from_vars(vars)
}

/// One user's dashboard: their sites, each site's clicks, the platform's status.
async fn dashboard(api: &ExternalApi, user_id: u64) -> Result<u64, ApiError> {
    let mut clicks = 0;
    for site in user_sites(api, user_id).await? {
        clicks += gsc_clicks(api, user_id, site).await?;
    }
    platform_status(api).await?;
    Ok(clicks)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    logging::init();
    let config = config()?;
    for (namespace, _) in POLICY {
        let ttl = config
            .ttl_for_namespace(namespace)
            .unwrap_or(config.default_ttl());
        println!("policy: {namespace} lives {}s", ttl.as_secs());
    }
    let cache = Cache::with_config(config);
    querycache::install(cache.clone())?;
    let api = ExternalApi::default();

    // Two users open their dashboards, twice: the second time costs the API nothing.
    for round in 1..=2 {
        for user in [1, 2] {
            let clicks = dashboard(&api, user).await?;
            println!(
                "round {round}: user {user} has {clicks} clicks (API calls so far: {})",
                api.calls()
            );
        }
    }

    // A site the API does not know: the error is cached, the API asked once.
    for _ in 0..3 {
        let answer = gsc_clicks(&api, 1, "elsewhere.example".to_owned()).await;
        println!(
            "unknown site: {} (API calls so far: {})",
            answer.map_or_else(|e| e.to_string(), |n| n.to_string()),
            api.calls()
        );
    }

    // User 1 changes their sites: their answers go, user 2's stay.
    let before = api.calls();
    cache.invalidate_tags([Tag::new("user:1")?]).await;
    dashboard(&api, 1).await?;
    let user_1 = api.calls() - before;
    dashboard(&api, 2).await?;
    let user_2 = api.calls() - before - user_1;
    println!("after invalidating user:1: user 1 cost {user_1} API calls, user 2 cost {user_2}");

    let stats = cache.stats();
    for (namespace, figures) in &stats.namespaces {
        println!(
            "stats: {namespace}: {} hits, {} misses, {} computations",
            figures.hits, figures.misses, figures.computations
        );
    }
    println!(
        "total: {} API calls for {} cached reads (hit rate {:.0}%)",
        api.calls(),
        stats.hits + stats.misses,
        stats.hit_rate * 100.0
    );
    Ok(())
}
