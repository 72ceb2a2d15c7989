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
    // Versions are kept per invalidated tag, never per entry: none yet.
    assert_eq!(cache.tag_versions_count(), 0);
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
    assert_eq!(cache.tag_versions_count(), 1);
    assert_eq!(cache.stats().invalidations, invalidations + 1);

    for i in sample() {
        assert!(
            cache.get::<u64>(&format!("list:{i}")).await.is_none(),
            "entry {i} survived the invalidation"
        );
    }
}

// --- 4. A forgotten tag version never resurrects old entries ---------------------------
//
// The memory store keeps the versions of the tags invalidated since its floor, and forgets
// the ones below the oldest live entry's snapshot when the table grows (a snapshot older
// than the floor is outdated). What can be pinned: a prune keeps every version a held
// entry needs (so later invalidations still reach it), a computation in flight across a
// prune stores nothing it could have missed an invalidation for, and a tag forgotten and
// used again still invalidates.

const PRUNE_AT: usize = 4096;

/// Invalidates `n` distinct tags; returns whether the table of versions shrank on the way
/// (a prune forgot some).
async fn churn_tags(cache: &Cache, prefix: &str, n: usize) -> bool {
    let mut largest = 0;
    let mut shrank = false;
    for i in 0..n {
        let tag = Tag::new(format!("{prefix}:{i}")).unwrap();
        assert_eq!(cache.invalidate_tags([tag]).await, 1);
        let count = cache.tag_versions_count();
        shrank |= count < largest;
        largest = largest.max(count);
    }
    shrank
}

#[tokio::test]
async fn pruning_tag_versions_keeps_the_ones_held_entries_depend_on() {
    let cache = Cache::new();
    let held = EntryOptions::new().tag(Tag::new("user:held").unwrap());
    cache.set("held", 1_u64, held).await.unwrap();

    // Every version since the held entry's snapshot is one it may need: none forgotten.
    assert!(!churn_tags(&cache, "tmp", PRUNE_AT + 500).await);
    assert_eq!(cache.tag_versions_count(), PRUNE_AT + 500);
    assert_eq!(
        cache.get::<u64>("held").await.as_deref(),
        Some(&1),
        "still valid"
    );
    cache
        .invalidate_tags([Tag::new("user:held").unwrap()])
        .await;
    assert!(
        cache.get::<u64>("held").await.is_none(),
        "invalidating the tag after a prune must still reach the entry"
    );

    // Nothing holds them any more (the read above removed the invalidated entry): the
    // next prune forgets them.
    assert_eq!(cache.stats().keys_count, 0);
    assert!(
        churn_tags(&cache, "more", 2 * PRUNE_AT + 1000).await,
        "premise: a prune forgot versions"
    );
    assert!(cache.tag_versions_count() < 2 * PRUNE_AT + 1000);
}

#[tokio::test]
async fn pruning_tag_versions_during_a_computation_does_not_lose_its_snapshot() {
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

    cache.invalidate_tags([tag]).await;
    assert!(
        churn_tags(&cache, "tmp", 2 * PRUNE_AT + 1000).await,
        "premise: a prune forgot versions, the invalidation's among them"
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
async fn a_tag_forgotten_and_used_again_still_invalidates_the_entries_stored_under_it() {
    let cache = Cache::new();
    let options = || EntryOptions::new().tag(Tag::new("user:7").unwrap());
    cache.set("first", 1_u64, options()).await.unwrap();
    cache.invalidate_tags([Tag::new("user:7").unwrap()]).await;
    assert!(cache.get::<u64>("first").await.is_none());
    assert!(
        churn_tags(&cache, "tmp", 2 * PRUNE_AT + 1000).await,
        "premise: a prune forgot versions"
    );

    cache.set("second", 2_u64, options()).await.unwrap();
    assert_eq!(cache.get::<u64>("second").await.as_deref(), Some(&2));
    cache.invalidate_tags([Tag::new("user:7").unwrap()]).await;
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
