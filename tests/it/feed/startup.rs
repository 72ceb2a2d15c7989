//! What a feed that cannot follow its database says at start-up: what is missing, and how
//! to provide it.

use querycache::Cache;
use querycache::feed::ChangeFeed;

use super::start_server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_level_replica_is_named() {
    let Some(server) = start_server(&[("wal_level", "replica")]).await else {
        return;
    };
    let err = ChangeFeed::logical(server.url("postgres"))
        .start(&Cache::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("wal_level") && err.contains("triggers"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_privileges_are_named() {
    let Some(server) = start_server(&[]).await else {
        return;
    };
    tokio::task::block_in_place(|| {
        server.psql(
            "postgres",
            "CREATE ROLE plain LOGIN; CREATE ROLE replicator LOGIN REPLICATION;",
        )
    });
    let url = |user: &str| {
        server
            .url("postgres")
            .replace("postgres@", &format!("{user}@"))
    };
    let err = ChangeFeed::logical(url("plain"))
        .start(&Cache::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("REPLICATION"), "{err}");
    // A replication role that is no superuser cannot create a publication FOR ALL TABLES.
    let err = ChangeFeed::logical(url("replicator"))
        .start(&Cache::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("CREATE PUBLICATION"), "{err}");
    // Settings are checked before anything connects.
    let err = ChangeFeed::logical("mysql://db/app")
        .start(&Cache::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("CACHE_CHANGE_FEED_URL"), "{err}");
}
