//! The SQLite feed: another process writing the file is seen within the interval.

use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use querycache::feed::{ChangeFeed, FeedState};

use super::{card, reaches, shows};
use crate::support::TestDb;
use crate::support::services::unavailable;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_writing_the_file_is_seen() {
    if std::process::Command::new("python3")
        .args(["-c", "import sqlite3"])
        .status()
        .map_or(true, |s| !s.success())
    {
        let _: Option<()> = unavailable("python3 with sqlite3 (the outside writer) is not here");
        return;
    }
    let t = TestDb::new().await;
    let ann = t.user("ann").await;
    let a = t.song(&ann, "A").await;
    let path = t.diesel_url();
    let feed = ChangeFeed::data_version(format!("sqlite://{path}"))
        .interval(Duration::from_millis(20))
        .start(&t.cache)
        .await
        .unwrap();
    reaches(&feed, FeedState::Following).await;
    let runs = AtomicUsize::new(0);
    assert_eq!(card(&t.db, &runs, a.id).await.unwrap().unwrap().0, "A");
    let script = format!(
        "import sqlite3; c = sqlite3.connect({path:?}, timeout=30); \
         c.execute('UPDATE songs SET title = ? WHERE id = ?', ('A2', {})); c.commit()",
        a.id
    );
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args(["-c", &script])
            .status()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(status.success());
    shows("the other process's write", "A2".to_owned(), async || {
        card(&t.db, &runs, a.id).await.unwrap().unwrap().0
    })
    .await;
    let status = feed.status();
    assert!(status.applied >= 1 && status.gaps == 0, "{status:?}");
    feed.stop().await;
}

#[tokio::test]
async fn an_in_memory_database_is_refused() {
    let t = TestDb::new().await;
    let err = ChangeFeed::data_version("sqlite::memory:")
        .start(&t.cache)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("in-memory"), "{err}");
}
