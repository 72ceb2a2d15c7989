//! The binlog feed (MariaDB): outside writes — the `mariadb` client in a separate process —
//! invalidate exactly what they touch, foreign-key cascades the binlog does not show
//! included; a dropped connection and a server restart resume without a gap; a takeover
//! resumes from the position recorded in Redis; a purged position is a gap; a server the
//! feed cannot follow is refused with the reason.
//!
//! Every test runs on a private `mariadbd` (`support::mariadb_server`: `log_bin`,
//! `binlog_format = ROW`), never on the shared server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use querycache::feed::{ChangeFeed, ChangeFeedHandle, FeedMode, FeedState};

use super::{Followed, SEEN, card, reaches, scalar, shows, start_mariadb, titles};
use crate::support::mariadb_server::MariadbServer;
use crate::support::stores::Kind;
use crate::support::until;

/// A feed with a short lease, so that takeovers are quick in tests.
fn feed(f: &Followed<MariadbServer>) -> ChangeFeed {
    ChangeFeed::binlog(f.url()).lease(Duration::from_millis(900))
}

/// Waits until `runs` has grown past `before`: the entry behind it was invalidated and
/// computed again.
async fn recomputed(what: &str, before: usize, runs: &AtomicUsize, mut read: impl AsyncFnMut()) {
    until(SEEN, what, async || {
        read().await;
        runs.load(Ordering::SeqCst) > before
    })
    .await;
}

async fn until_gaps(feed: &ChangeFeedHandle, at_least: u64) {
    until(SEEN, "a gap is counted", async || {
        feed.status().gaps >= at_least
    })
    .await;
}

async fn outside_writes_invalidate_exactly_what_they_touch(kind: Kind, instances: usize) {
    let Some(f) = Followed::mariadb(kind).await else {
        return;
    };
    let ann = f.t.user("ann").await;
    let a = f.t.song(&ann, "A").await;
    let b = f.t.song(&ann, "B").await;
    f.sql(
        "CREATE TABLE albums (id INT PRIMARY KEY, name TEXT) ENGINE = InnoDB;
         CREATE TABLE tracks (id BIGINT UNSIGNED PRIMARY KEY, album INT, title TEXT,
           FOREIGN KEY (album) REFERENCES albums (id) ON DELETE CASCADE) ENGINE = InnoDB;
         CREATE TABLE genres (code VARCHAR(10) PRIMARY KEY, name TEXT) ENGINE = InnoDB;
         INSERT INTO albums VALUES (1, 'one'), (2, 'two');
         INSERT INTO tracks VALUES (10, 1, 'x'), (18446744073709551615, 2, 'y');
         INSERT INTO genres VALUES ('r', 'rock'), ('j', 'jazz');",
    );
    let mut dbs = vec![f.t.db.clone()];
    let mut feeds = vec![feed(&f).start(&f.t.cache).await.unwrap()];
    reaches(&feeds[0], FeedState::Following).await;
    for _ in 1..instances {
        let (cache, db) = f.instance().await;
        let handle = feed(&f).start(&cache).await.unwrap();
        reaches(&handle, FeedState::Standby).await;
        feeds.push(handle);
        dbs.push(db);
    }
    let health = f.t.cache.health().await;
    assert_eq!(health.change_feeds.len(), 1, "{health:?}");
    assert_eq!(health.change_feeds[0].mode, FeedMode::Binlog);
    assert_eq!(health.change_feeds[0].state, FeedState::Following);
    // The feed made its fence table.
    assert_eq!(
        f.sql("SHOW TABLES LIKE 'querycache_feed_fence'"),
        "querycache_feed_fence"
    );

    let (cards, lists, raw) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    let n = dbs.len();
    let cards_of = async |id: i32| {
        let mut seen = Vec::new();
        for db in &dbs {
            seen.push(card(db, &cards, id).await.unwrap());
        }
        seen
    };
    let scalars = async |sql: String| {
        let mut seen = Vec::new();
        for db in &dbs {
            seen.push(scalar(db, &raw, sql.clone()).await.unwrap());
        }
        seen
    };
    let titles_everywhere = async || {
        let mut seen = Vec::new();
        for db in &dbs {
            seen.push(titles(db, &lists).await.unwrap());
        }
        seen
    };
    let title = |c: Vec<Option<(String, String)>>| {
        c.into_iter()
            .map(|c| c.map(|c| c.0).unwrap_or_default())
            .collect::<Vec<_>>()
    };
    let author = |c: Vec<Option<(String, String)>>| {
        c.into_iter()
            .map(|c| c.map(|c| c.1).unwrap_or_default())
            .collect::<Vec<_>>()
    };
    let all = |v: &str| vec![v.to_owned(); n];
    let track = |id: &str| format!("SELECT title FROM tracks WHERE id = {id}");
    let genre = |code: &str| format!("SELECT name FROM genres WHERE code = '{code}'");
    let counted = |c: &AtomicUsize| c.load(Ordering::SeqCst);
    assert_eq!(title(cards_of(a.id).await), all("A"));
    assert_eq!(author(cards_of(b.id).await), all("ann"));
    titles_everywhere().await;
    scalars(track("10")).await;
    scalars(track("18446744073709551615")).await;
    scalars(genre("r")).await;

    // A row: that song's card and the list, not the other card.
    f.sql(&format!(
        "UPDATE songs SET title = 'A2' WHERE id = {}",
        a.id
    ));
    shows("song A renamed outside", all("A2"), async || {
        title(cards_of(a.id).await)
    })
    .await;
    let before = counted(&cards);
    assert_eq!(title(cards_of(b.id).await), all("B"));
    assert_eq!(counted(&cards), before, "song B's card stayed cached");
    assert_eq!(
        titles_everywhere().await,
        vec![vec!["A2".to_owned(), "B".to_owned()]; n]
    );

    // A join's second table: both cards by that author.
    f.sql(&format!(
        "UPDATE users SET name = 'anne' WHERE id = {}",
        ann.id
    ));
    shows("author renamed, card B", all("anne"), async || {
        author(cards_of(b.id).await)
    })
    .await;

    // An insert in a transaction of several statements.
    f.sql(&format!(
        "START TRANSACTION;
         INSERT INTO songs (title, artist, author_id) VALUES ('C', 'x', {});
         UPDATE albums SET name = 'uno' WHERE id = 1;
         COMMIT;",
        ann.id
    ));
    shows(
        "the list after an outside insert",
        vec![vec!["A2".to_owned(), "B".to_owned(), "C".to_owned()]; n],
        async || titles_everywhere().await,
    )
    .await;

    // An unsigned BIGINT key at its top: the row's own tag, read as unsigned.
    f.sql("UPDATE tracks SET title = 'y2' WHERE id = 18446744073709551615");
    shows(
        "the top track renamed",
        vec![Some("y2".to_owned()); n],
        async || scalars(track("18446744073709551615")).await,
    )
    .await;
    let before = counted(&raw);
    assert_eq!(scalars(track("10")).await, vec![Some("x".to_owned()); n]);
    assert_eq!(counted(&raw), before, "track 10 stayed cached");

    // A string key: the whole table (collations compare 'R' with 'r'), so the other
    // genre's read is computed again though its row did not change.
    let before = counted(&raw);
    f.sql("UPDATE genres SET name = 'bebop' WHERE code = 'j'");
    recomputed(
        "genre r after a write to genre j",
        before,
        &raw,
        async || {
            assert_eq!(scalars(genre("r")).await, vec![Some("rock".to_owned()); n]);
        },
    )
    .await;

    // A cascade the binlog does not show: deleting album 1 deletes track 10 inside InnoDB.
    f.sql("DELETE FROM albums WHERE id = 1");
    shows(
        "track 10 deleted by the cascade",
        vec![None; n],
        async || scalars(track("10")).await,
    )
    .await;

    // Savepoints inside a transaction: its rows, nothing more (song B's card stays).
    f.sql(&format!(
        "START TRANSACTION;
         UPDATE songs SET title = 'A3' WHERE id = {};
         SAVEPOINT s1;
         UPDATE users SET name = 'x' WHERE id = {};
         ROLLBACK TO SAVEPOINT s1;
         COMMIT;",
        a.id, ann.id
    ));
    shows(
        "song A after a transaction with a savepoint",
        all("A3"),
        async || title(cards_of(a.id).await),
    )
    .await;
    let before = counted(&cards);
    assert_eq!(author(cards_of(b.id).await), all("anne"));
    assert_eq!(counted(&cards), before, "song B's card stayed cached");

    // DDL: every model tag (a table's shape changed).
    let before = counted(&cards);
    f.sql("ALTER TABLE songs ADD COLUMN extra INT NULL");
    recomputed("song B's card after DDL", before, &cards, async || {
        assert_eq!(title(cards_of(b.id).await), all("B"));
    })
    .await;

    // Each bump waited for a fence write of the feed's own.
    let fences: u64 = f
        .sql("SELECT n FROM querycache_feed_fence WHERE id = 1")
        .parse()
        .unwrap();
    assert!(fences >= 6, "{fences} fence writes");
    let status = feeds[0].status();
    assert!(status.applied >= 6, "{status:?}");
    assert_eq!(status.state, FeedState::Following, "{status:?}");
    for feed in feeds {
        feed.stop().await;
    }
    assert!(
        f.t.cache.health().await.change_feeds.is_empty(),
        "a stopped feed is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binlog_outside_writes_invalidate_exactly_what_they_touch_on_memory() {
    outside_writes_invalidate_exactly_what_they_touch(Kind::Memory, 1).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binlog_outside_writes_invalidate_exactly_what_they_touch_on_two_tiered_instances() {
    outside_writes_invalidate_exactly_what_they_touch(Kind::Tiered, 2).await;
}

/// The id of the feed's binlog dump connection on the server (`None` when none is open).
fn dump_connection(f: &Followed<MariadbServer>) -> Option<String> {
    let id = f
        .sql("SELECT id FROM information_schema.processlist WHERE command = 'Binlog Dump' LIMIT 1");
    (!id.is_empty()).then_some(id)
}

/// The memory store: a killed dump connection and a restarted server both resume from the
/// last transaction applied, so a write made meanwhile shows and no gap is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binlog_a_killed_connection_and_a_restart_resume_without_a_gap() {
    let Some(f) = Followed::mariadb(Kind::Memory).await else {
        return;
    };
    let ann = f.t.user("ann").await;
    let a = f.t.song(&ann, "A").await;
    let feed = feed(&f).start(&f.t.cache).await.unwrap();
    reaches(&feed, FeedState::Following).await;
    // Starting with a memory cache is one gap: what came before is not known.
    until_gaps(&feed, 1).await;
    let runs = AtomicUsize::new(0);
    let title = async || card(&f.t.db, &runs, a.id).await.unwrap().unwrap().0;
    assert_eq!(title().await, "A");

    // 1. The dump connection killed, and a write before the feed is back.
    let mut id = None;
    until(SEEN, "the feed's dump connection shows", async || {
        id = dump_connection(&f);
        id.is_some()
    })
    .await;
    f.sql(&format!(
        "KILL {}; UPDATE songs SET title = 'A2' WHERE id = {}",
        id.unwrap_or_default(),
        a.id
    ));
    shows("after KILL", "A2".to_owned(), title).await;
    reaches(&feed, FeedState::Following).await;

    // 2. The server restarted (a new binlog file), a write after it.
    let server = f.server.clone();
    tokio::task::spawn_blocking(move || server.restart())
        .await
        .unwrap();
    f.sql(&format!(
        "UPDATE songs SET title = 'A3' WHERE id = {}",
        a.id
    ));
    shows("after a restart", "A3".to_owned(), title).await;
    assert_eq!(feed.status().gaps, 1, "{:?}", feed.status());
    feed.stop().await;
}

/// Two instances sharing Redis: the consumer goes, a write is made while none follows,
/// the other instance takes over from the recorded position (no gap) and the write shows;
/// then the recorded position is purged from the server: a gap, and the write shows.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binlog_a_takeover_resumes_from_the_recorded_position_and_a_purged_one_is_a_gap() {
    let Some(f) = Followed::mariadb(Kind::Tiered).await else {
        return;
    };
    let ann = f.t.user("ann").await;
    let a = f.t.song(&ann, "A").await;
    let b = f.t.song(&ann, "B").await;
    let (cache2, db2) = f.instance().await;
    let first = feed(&f).start(&f.t.cache).await.unwrap();
    reaches(&first, FeedState::Following).await;
    // No position recorded yet: the first consumer starts with a gap.
    until_gaps(&first, 1).await;
    let runs = AtomicUsize::new(0);
    let title_on = async |db, id| card(db, &runs, id).await.unwrap().unwrap().0;
    assert_eq!(title_on(&f.t.db, a.id).await, "A");
    assert_eq!(title_on(&db2, a.id).await, "A");
    assert_eq!(title_on(&db2, b.id).await, "B");

    // The consumer goes; a write while none follows; instance 2 takes over.
    first.stop().await;
    f.sql(&format!(
        "UPDATE songs SET title = 'A2' WHERE id = {}",
        a.id
    ));
    let second = feed(&f).start(&cache2).await.unwrap();
    reaches(&second, FeedState::Following).await;
    shows(
        "instance 2 after the takeover",
        "A2".to_owned(),
        async || title_on(&db2, a.id).await,
    )
    .await;
    shows(
        "instance 1 after the takeover",
        "A2".to_owned(),
        async || title_on(&f.t.db, a.id).await,
    )
    .await;
    assert_eq!(
        second.status().gaps,
        0,
        "resumed from the recorded position: {:?}",
        second.status()
    );
    let before = runs.load(Ordering::SeqCst);
    assert_eq!(title_on(&db2, b.id).await, "B");
    assert_eq!(
        runs.load(Ordering::SeqCst),
        before,
        "song B stayed cached: no gap bumped everything"
    );

    // Stopped again; a write; the binlog it would resume from purged.
    second.stop().await;
    f.sql(&format!(
        "UPDATE songs SET title = 'B2' WHERE id = {}",
        b.id
    ));
    let server = f.server.clone();
    tokio::task::spawn_blocking(move || server.purge_binary_logs())
        .await
        .unwrap();
    let third = feed(&f).start(&f.t.cache).await.unwrap();
    until_gaps(&third, 1).await;
    reaches(&third, FeedState::Following).await;
    shows(
        "song B after the purged position",
        "B2".to_owned(),
        async || title_on(&db2, b.id).await,
    )
    .await;
    third.stop().await;
}

/// What the feed cannot follow is refused at start, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binlog_refuses_what_it_cannot_follow_saying_why() {
    let Some(server) = start_mariadb(&["--binlog-format=MIXED"]).await else {
        return;
    };
    let cache = querycache::Cache::new();
    let db = {
        let server = &server;
        tokio::task::block_in_place(|| server.create_database())
    };
    let start = async |url: String| {
        ChangeFeed::binlog(url)
            .start(&cache)
            .await
            .map(drop)
            .unwrap_err()
            .to_string()
    };
    let err = start(server.url(&db)).await;
    assert!(err.contains("binlog_format is MIXED"), "{err}");

    // Row format from here on (a global setting, as an operator would change it).
    tokio::task::block_in_place(|| server.sql(None, "SET GLOBAL binlog_format = 'ROW'"));
    // No database in the URL.
    let err = start(server.url("")).await;
    assert!(err.contains("names no database"), "{err}");
    // A user without the binlog privileges.
    tokio::task::block_in_place(|| {
        server.sql(
            None,
            &format!(
                "CREATE USER 'plain'@'%' IDENTIFIED BY 'pw'; \
                 GRANT ALL ON `{db}`.* TO 'plain'@'%';"
            ),
        )
    });
    let plain = server.url(&db).replace("root@", "plain:pw@");
    let err = start(plain).await;
    assert!(
        err.contains("BINLOG MONITOR") && err.contains("GRANT"),
        "{err}"
    );
    // Nothing listens on the port: the address is named.
    let err = start(format!("mysql://root@127.0.0.1:1/{db}")).await;
    assert!(err.contains("127.0.0.1:1"), "{err}");
}

/// Readers hammer a cached read while writes the cache never sees (a connection of their
/// own) change its row, 300 times: each new value shows within the bound and stays. A value
/// read before a write became visible and stored after the feed's bump would stay cached
/// until the next write — the feed bumps only once a fence proves the write visible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binlog_readers_racing_the_feed_never_keep_a_value_from_before_a_write() {
    let Some(f) = Followed::mariadb(Kind::Memory).await else {
        return;
    };
    let ann = f.t.user("ann").await;
    let a = f.t.song(&ann, "v0").await;
    let feed = feed(&f).start(&f.t.cache).await.unwrap();
    reaches(&feed, FeedState::Following).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (db, stop, runs) = (f.t.db.clone(), stop.clone(), runs.clone());
        readers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                card(&db, &runs, a.id).await.unwrap();
                tokio::task::yield_now().await;
            }
        }));
    }
    let probe = AtomicUsize::new(0);
    let mut seen_after = Vec::new();
    for i in 1..=300 {
        let title = format!("v{i}");
        let written = std::time::Instant::now();
        sea_orm::ConnectionTrait::execute_unprepared(
            &f.t.raw,
            &format!("UPDATE songs SET title = '{title}' WHERE id = {}", a.id),
        )
        .await
        .unwrap();
        let deadline = written + SEEN;
        loop {
            let got = card(&f.t.db, &probe, a.id).await.unwrap().unwrap().0;
            if got == title {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "write {i}: still {got:?} after {SEEN:?}"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        seen_after.push(written.elapsed());
    }
    seen_after.sort();
    let at = |q: f64| seen_after[((seen_after.len() - 1) as f64 * q) as usize];
    eprintln!(
        "binlog feed, from an outside UPDATE sent to its cached read showing it (readers \
         racing): p50 {:?}, p99 {:?}, max {:?}",
        at(0.5),
        at(0.99),
        at(1.0)
    );
    // Once shown, the last value stays: nothing older was stored after it.
    for _ in 0..50 {
        assert_eq!(
            card(&f.t.db, &probe, a.id).await.unwrap().unwrap().0,
            "v300"
        );
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    eprintln!(
        "binlog race: 300 outside writes, {} computations by the readers",
        runs.load(Ordering::SeqCst)
    );
    feed.stop().await;
}
