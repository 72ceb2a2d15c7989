//! Invariants whose subject is the memory store (its tag-version table) or that involve no
//! store at all (configuration and argument errors).

use std::sync::Arc;

use crate::support::fill;
use querycache::{Cache, CacheConfig, EntryOptions, Error, Key, Tag, config::InvalidationStrategy};
use tokio::sync::{Notify, oneshot};

#[tokio::test]
async fn invalidating_a_tag_with_100_000_dependent_entries_bumps_one_version_and_misses_all() {
    const N: usize = 100_000;
    let cache = Cache::new();
    fill(&cache, N).await;
    assert_eq!(
        cache.stats().keys_count,
        N as u64,
        "premise: nothing evicted"
    );
    // model:songs, model:#all and the namespace tag: versions are per tag, not per entry.
    assert_eq!(cache.tag_versions_count(), 3);
    let sample = || (0..N).step_by(997).chain([N - 1]);
    for i in sample() {
        assert!(cache.get::<u64>(&format!("list:{i}")).await.is_some());
    }

    let invalidations = cache.stats().invalidations;
    assert_eq!(
        cache.invalidate_tags([Tag::model("songs")]).await,
        1,
        "one tag, one version, whatever the number of entries"
    );
    assert_eq!(cache.stats().invalidations, invalidations + 1);

    for i in sample() {
        assert!(
            cache.get::<u64>(&format!("list:{i}")).await.is_none(),
            "entry {i} survived the invalidation"
        );
    }
}

// --- 4. A lost tag version never resurrects old entries --------------------------------
//
// In the memory store an entry holds its tags' version cells, so a cell an entry (or an
// in-flight snapshot) depends on cannot be reclaimed: the public API cannot produce an
// entry whose cell was lost. What can be pinned: reclaim happens, it keeps every cell still
// depended upon (so later invalidations still reach held entries and computations in
// flight), and a reclaimed tag comes back with a fresh version.

const RECLAIM_AT: usize = 4096;

/// Creates and drops entries with `n` distinct tags, so that their version cells become
/// unreferenced; returns whether the tag-version map shrank on the way.
async fn churn_tags(cache: &Cache, prefix: &str, n: usize) -> bool {
    let mut largest = 0;
    let mut shrank = false;
    for i in 0..n {
        let key = format!("{prefix}:{i}");
        let options = EntryOptions::new().tag(Tag::new(&key).unwrap());
        cache.set(&key, i as u64, options).await.unwrap();
        assert!(cache.delete(&key).await);
        let count = cache.tag_versions_count();
        shrank |= count < largest;
        largest = largest.max(count);
    }
    shrank
}

#[tokio::test]
async fn reclaiming_tag_versions_keeps_the_ones_held_entries_depend_on() {
    let cache = Cache::new();
    let held = EntryOptions::new().tag(Tag::new("user:held").unwrap());
    cache.set("held", 1_u64, held).await.unwrap();

    assert!(
        churn_tags(&cache, "tmp", RECLAIM_AT + 500).await,
        "premise: a reclaim ran"
    );
    assert!(cache.tag_versions_count() < RECLAIM_AT);

    assert_eq!(
        cache.get::<u64>("held").await.as_deref(),
        Some(&1),
        "still valid"
    );
    assert_eq!(
        cache
            .invalidate_tags([Tag::new("user:held").unwrap()])
            .await,
        1,
        "the held entry's tag still has its version"
    );
    assert!(
        cache.get::<u64>("held").await.is_none(),
        "invalidating the tag after a reclaim must still reach the entry"
    );
}

#[tokio::test]
async fn reclaiming_tag_versions_during_a_computation_does_not_lose_its_snapshot() {
    let cache = Cache::new();
    let tag = Tag::new("user:inflight").unwrap();
    let release = Arc::new(Notify::new());
    let (started, has_started) = oneshot::channel();
    let computing = tokio::spawn({
        let (cache, tag, release) = (cache.clone(), tag.clone(), Arc::clone(&release));
        async move {
            cache
                .get_or_compute("inflight", EntryOptions::new().tag(tag), || async move {
                    let _ = started.send(());
                    release.notified().await;
                    "computed before the invalidation".to_owned()
                })
                .await
        }
    });
    has_started.await.unwrap();

    assert!(
        churn_tags(&cache, "tmp", RECLAIM_AT + 500).await,
        "premise: a reclaim ran"
    );
    assert_eq!(
        cache.invalidate_tags([tag]).await,
        1,
        "the snapshot kept the cell alive"
    );
    release.notify_one();
    computing.await.unwrap();

    assert!(
        cache.get::<String>("inflight").await.is_none(),
        "computed under a version invalidated meanwhile: must not be served"
    );
    assert_eq!(cache.stats().wasted_computations, 1);
}

#[tokio::test]
async fn a_tag_reclaimed_and_recreated_still_invalidates_the_entries_stored_under_it() {
    let cache = Cache::new();
    let options = || EntryOptions::new().tag(Tag::new("user:7").unwrap());
    cache.set("first", 1_u64, options()).await.unwrap();
    assert!(cache.delete("first").await);
    let with_tag = cache.tag_versions_count();
    assert!(
        churn_tags(&cache, "tmp", RECLAIM_AT + 500).await,
        "premise: a reclaim ran"
    );
    assert!(cache.tag_versions_count() < with_tag + RECLAIM_AT);

    cache.set("second", 2_u64, options()).await.unwrap();
    assert_eq!(cache.get::<u64>("second").await.as_deref(), Some(&2));
    assert_eq!(
        cache.invalidate_tags([Tag::new("user:7").unwrap()]).await,
        1
    );
    assert!(cache.get::<u64>("second").await.is_none());
}

// --- 6. Bad input: clear errors, no panic ---------------------------------------------------

#[tokio::test]
async fn invalid_keys_tags_and_patterns_are_errors_that_name_the_value() {
    let cache = Cache::new();
    let long = "k".repeat(4097); // MAX_KEY_LEN is 4096 bytes
    for bad in ["", "two\nlines", long.as_str()] {
        let err = Key::new(bad).unwrap_err();
        match &err {
            Error::InvalidName { what, value, .. } => {
                assert_eq!(*what, "key");
                assert!(bad.starts_with(value.as_str()), "{value:?} is not {bad:?}");
            }
            other => panic!("expected InvalidName, got {other:?}"),
        }
        let err = cache.set(bad, 1_u8, EntryOptions::new()).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidName { what: "key", .. }),
            "{err}"
        );
        assert!(cache.get::<u8>(bad).await.is_none());
    }
    let err = Key::new("two\nlines").unwrap_err();
    assert!(err.to_string().contains(r#""two\nlines""#), "{err}");

    for bad in [
        "",
        "user:\u{0}",
        &"t".repeat(querycache::tags::MAX_TAG_LEN + 1),
    ] {
        let err = Tag::new(bad).unwrap_err();
        assert!(
            matches!(err, Error::InvalidName { what: "tag", .. }),
            "{err}"
        );
    }
    let err = Tag::new("user:\u{7}").unwrap_err();
    assert!(err.to_string().contains("user:"), "{err}");

    let err = cache.invalidate_pattern("user:[").await.unwrap_err();
    match &err {
        Error::Pattern { pattern, .. } => assert_eq!(pattern, "user:["),
        other => panic!("expected Pattern, got {other:?}"),
    }
    assert!(err.to_string().contains("user:["), "{err}");
}

#[tokio::test]
async fn invalid_configuration_is_an_error_naming_the_variable_and_the_value() {
    for (variable, value) in [
        ("CACHE_DEFAULT_TTL", "soon"),
        ("CACHE_MAX_TTL", "0"),
        ("CACHE_INVALIDATION_STRATEGY", "sometimes"),
        ("CACHE_ENABLED", "perhaps"),
        ("CACHE_MEMORY_MAX_BYTES", "12"),
    ] {
        let err = CacheConfig::from_vars([(variable, value)]).unwrap_err();
        match &err {
            Error::Config { variable: v, .. } => assert_eq!(v, variable, "{err}"),
            other => panic!("{variable}={value}: expected Config, got {other:?}"),
        }
        assert!(err.to_string().contains(variable), "{err}");
        assert!(err.to_string().contains(value), "{err}");
    }
    assert!(matches!(
        "sometimes".parse::<InvalidationStrategy>(),
        Err(Error::Config { .. })
    ));
}
