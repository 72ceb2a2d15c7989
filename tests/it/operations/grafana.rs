//! The Grafana dashboard (`dashboards/grafana/querycache.json`): it parses, its panels are
//! well formed, and every metric its PromQL reads is one `Cache::prometheus_text` exposes
//! after traffic — a renamed metric fails here, not on an operator's screen.

use std::collections::{BTreeMap, BTreeSet};

use querycache::{Cache, EntryOptions, Tag};
use serde_json::Value;

const DASHBOARD: &str = include_str!("../../../dashboards/grafana/querycache.json");

/// Every PromQL expression of the dashboard: the panels' `expr`, and the variables'
/// queries.
fn expressions(dashboard: &Value) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("expr", Value::String(expr)) => out.push(expr.clone()),
                        _ => walk(value, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(query) = variable["query"]["query"].as_str() {
            out.push(query.to_owned());
        }
    }
    out
}

/// The metric names in a PromQL expression: identifiers starting `querycache_` (labels,
/// functions and variables never do), outside string literals.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut in_string = false;
    let mut start = None;
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    for (i, c) in expr.char_indices() {
        if c == '"' {
            in_string = !in_string;
        }
        if in_string {
            continue;
        }
        match (start, ident(c)) {
            (None, true) if !expr[..i].ends_with(|p: char| ident(p)) => start = Some(i),
            (Some(s), false) => {
                let word = &expr[s..i];
                if word.starts_with("querycache_") {
                    names.insert(word.to_owned());
                }
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start
        && expr[s..].starts_with("querycache_")
    {
        names.insert(expr[s..].to_owned());
    }
    names
}

/// The exposition: family → type, and the names of the samples.
fn exposition(text: &str) -> (BTreeMap<String, String>, BTreeSet<String>) {
    let mut types = BTreeMap::new();
    let mut samples = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.insert(name.to_owned(), kind.to_owned());
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap();
            samples.insert(name.to_owned());
        }
    }
    (types, samples)
}

#[test]
fn metric_names_are_read_from_promql() {
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (le) (rate(querycache_lookup_duration_seconds_bucket{job=~"querycache_x"}[5m]))) / querycache_keys"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        [
            "querycache_keys",
            "querycache_lookup_duration_seconds_bucket"
        ]
    );
}

#[tokio::test]
async fn every_metric_the_dashboard_reads_is_exposed() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "querycache");
    assert!(dashboard["schemaVersion"].as_u64().is_some());

    // Panels: unique ids, a grid position, and targets with a refId on the data source
    // variable.
    let mut ids = BTreeSet::new();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        assert!(ids.insert(panel["id"].as_u64().unwrap()), "{panel}");
        for key in ["h", "w", "x", "y"] {
            assert!(panel["gridPos"][key].as_u64().is_some(), "{panel}");
        }
        if panel["type"] == "row" {
            continue;
        }
        assert!(panel["title"].as_str().is_some_and(|t| !t.is_empty()));
        let targets = panel["targets"].as_array().expect("a panel has targets");
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for target in targets {
            assert!(target["refId"].as_str().is_some(), "{target}");
            assert_eq!(target["datasource"]["uid"], "${datasource}");
            let expr = target["expr"].as_str().expect("a PromQL expression");
            assert!(!metric_names(expr).is_empty(), "{expr} reads no metric");
            queried += 1;
        }
    }
    assert!(queried >= 20, "{queried} queries");

    // Traffic in two namespaces: hits, misses, an invalidation.
    let cache = Cache::new();
    let songs = EntryOptions::new()
        .namespace("songs")
        .tag(Tag::model("songs"));
    for _ in 0..3 {
        cache
            .get_or_compute("songs:1", songs.clone(), || async { 1_u32 })
            .await;
    }
    cache.invalidate_tags([Tag::model("songs")]).await;
    cache
        .get_or_compute("user:1", EntryOptions::new().namespace("users"), || async {
            1_u8
        })
        .await;
    let (types, samples) = exposition(&cache.prometheus_text());

    let names: BTreeSet<String> = expressions(&dashboard)
        .iter()
        .flat_map(|expr| metric_names(expr))
        .collect();
    for name in &names {
        assert!(
            samples.contains(name),
            "the dashboard reads {name}, which the exposition has no sample of"
        );
        // The suffix rules: `_bucket`/`_sum`/`_count` belong to a histogram family,
        // `_total` to a counter; a bare name is a gauge.
        let histogram = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix));
        let (family, kind) = match (histogram, name.strip_suffix("_total")) {
            (Some(family), _) => (family, "histogram"),
            (None, Some(family)) => (family, "counter"),
            (None, None) => (name.as_str(), "gauge"),
        };
        assert_eq!(
            types.get(family).map(String::as_str),
            Some(kind),
            "{name}: family {family}"
        );
    }
    // What the dashboard is for.
    for name in [
        "querycache_hits_total",
        "querycache_misses_total",
        "querycache_lookup_duration_seconds_bucket",
        "querycache_errors_total",
        "querycache_invalidations_total",
        "querycache_redis_connected",
        "querycache_fallback_active",
        "querycache_keys",
    ] {
        assert!(names.contains(name), "the dashboard reads {name}");
    }
}
