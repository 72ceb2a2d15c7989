//! The logical-replication feed: outside writes invalidate exactly what they touch, on one
//! instance and on two sharing Redis (one consumer, taken over when it goes), and every
//! fault ends in bumps, not stale reads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use querycache::feed::{ChangeFeed, FeedState};

use super::{Followed, SEEN, card, reaches, scalar, shows, titles};
use crate::support::stores::Kind;

/// A feed with a short lease, so that takeovers are quick in tests.
fn feed(f: &Followed) -> ChangeFeed {
    ChangeFeed::logical(f.url()).lease(Duration::from_millis(900))
}

async fn outside_writes_invalidate_exactly_what_they_touch(kind: Kind, instances: usize) {
    let Some(f) = Followed::new(kind).await else {
        return;
    };
    let ann = f.t.user("ann").await;
    let a = f.t.song(&ann, "A").await;
    let b = f.t.song(&ann, "B").await;
    f.psql(
        "CREATE TABLE albums (id int PRIMARY KEY, name text);
         CREATE TABLE tracks (id int PRIMARY KEY, album int REFERENCES albums ON DELETE CASCADE, title text);
         CREATE TABLE genres (id int PRIMARY KEY, name text);
         INSERT INTO albums VALUES (1, 'one'), (2, 'two');
         INSERT INTO tracks VALUES (10, 1, 'x'), (20, 2, 'y');
         INSERT INTO genres VALUES (1, 'rock');",
    );
    // Every instance starts the feed; with Redis one follows and the others stand by.
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
    // Health reports it.
    let health = f.t.cache.health().await;
    assert_eq!(health.change_feeds.len(), 1, "{health:?}");
    assert_eq!(health.change_feeds[0].state, FeedState::Following);
    assert_eq!(
        health.change_feeds[0].mode,
        querycache::feed::FeedMode::Logical
    );

    let (cards, lists, raw) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    let n = dbs.len();
    // Each read, on every instance.
    let cards_of = async |id: i32| {
        let mut seen = Vec::new();
        for db in &dbs {
            seen.push(card(db, &cards, id).await.unwrap().unwrap());
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
    let title = |c: Vec<(String, String)>| c.into_iter().map(|c| c.0).collect::<Vec<_>>();
    let author = |c: Vec<(String, String)>| c.into_iter().map(|c| c.1).collect::<Vec<_>>();
    let all = |v: &str| vec![v.to_owned(); n];
    let track = |id: i32| format!("SELECT title FROM tracks WHERE id = {id}");
    let genres = || "SELECT string_agg(name, ',' ORDER BY id) FROM genres".to_owned();
    assert_eq!(title(cards_of(a.id).await), all("A"));
    assert_eq!(author(cards_of(b.id).await), all("ann"));
    titles_everywhere().await;
    scalars(track(10)).await;
    scalars(track(20)).await;
    scalars(genres()).await;
    let counted = |c: &AtomicUsize| c.load(Ordering::SeqCst);

    // A row: that song's card and the list, not the other card.
    f.psql(&format!(
        "UPDATE songs SET title = 'A2' WHERE id = {}",
        a.id
    ));
    shows("song A renamed by psql", all("A2"), async || {
        title(cards_of(a.id).await)
    })
    .await;
    let before = counted(&cards);
    assert_eq!(title(cards_of(b.id).await), all("B"));
    assert_eq!(
        counted(&cards),
        before,
        "song B's card was served from the cache"
    );
    let before = counted(&lists);
    assert_eq!(
        titles_everywhere().await,
        vec![vec!["A2".to_owned(), "B".to_owned()]; n]
    );
    assert!(counted(&lists) > before, "the list was computed again");

    // A join's second table: both cards by that author.
    f.psql(&format!(
        "UPDATE users SET name = 'anne' WHERE id = {}",
        ann.id
    ));
    shows("author renamed, card A", all("anne"), async || {
        author(cards_of(a.id).await)
    })
    .await;
    shows("author renamed, card B", all("anne"), async || {
        author(cards_of(b.id).await)
    })
    .await;

    // A table nothing read: no card recomputes.
    f.psql("INSERT INTO genres VALUES (2, 'jazz')");
    shows(
        "genres list",
        vec![Some("rock,jazz".to_owned()); n],
        async || scalars(genres()).await,
    )
    .await;
    let before = counted(&cards);
    cards_of(a.id).await;
    cards_of(b.id).await;
    assert_eq!(
        counted(&cards),
        before,
        "a write to genres left the cards cached"
    );

    // A truncate: the table's reads.
    f.psql("TRUNCATE genres");
    shows("genres truncated", vec![None; n], async || {
        scalars(genres()).await
    })
    .await;

    // A cascade: deleting album 1 deletes track 10 (by the database, not by any statement
    // that names tracks); track 20 stays cached.
    f.psql("DELETE FROM albums WHERE id = 1");
    shows(
        "track 10 deleted by the cascade",
        vec![None; n],
        async || scalars(track(10)).await,
    )
    .await;
    let before = counted(&raw);
    assert_eq!(scalars(track(20)).await, vec![Some("y".to_owned()); n]);
    assert_eq!(counted(&raw), before, "track 20 was served from the cache");

    let status = feeds[0].status();
    assert!(status.applied >= 5, "{status:?}");
    for feed in feeds {
        feed.stop().await;
    }
    assert!(
        f.t.cache.health().await.change_feeds.is_empty(),
        "a stopped feed is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_writes_invalidate_exactly_what_they_touch_on_memory() {
    outside_writes_invalidate_exactly_what_they_touch(Kind::Memory, 1).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_writes_invalidate_exactly_what_they_touch_on_two_tiered_instances() {
    outside_writes_invalidate_exactly_what_they_touch(Kind::Tiered, 2).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_writes_invalidate_exactly_what_they_touch_on_two_redis_instances() {
    outside_writes_invalidate_exactly_what_they_touch(Kind::Redis, 2).await;
}

/// Two instances sharing Redis: one consumes, both see every outside write; when the
/// consumer goes, the other takes the slot over.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_consumer_and_take_over() {
    let Some(f) = Followed::new(Kind::Tiered).await else {
        return;
    };
    let ann = f.t.user("ann").await;
    let a = f.t.song(&ann, "A").await;
    let (cache2, db2) = f.instance().await;
    let first = feed(&f).start(&f.t.cache).await.unwrap();
    reaches(&first, FeedState::Following).await;
    let second = feed(&f).start(&cache2).await.unwrap();
    reaches(&second, FeedState::Standby).await;

    let runs = AtomicUsize::new(0);
    let title_on = async |db| card(db, &runs, a.id).await.unwrap().unwrap().0;
    assert_eq!(title_on(&f.t.db).await, "A");
    assert_eq!(title_on(&db2).await, "A");
    f.psql(&format!(
        "UPDATE songs SET title = 'A2' WHERE id = {}",
        a.id
    ));
    shows("instance 1", "A2".to_owned(), async || {
        title_on(&f.t.db).await
    })
    .await;
    shows("instance 2", "A2".to_owned(), async || title_on(&db2).await).await;

    // The consumer goes away: the other takes over, and sees what was written meanwhile.
    let gone = Instant::now();
    drop(first);
    f.psql(&format!(
        "UPDATE songs SET title = 'A3' WHERE id = {}",
        a.id
    ));
    reaches(&second, FeedState::Following).await;
    let took = gone.elapsed();
    shows(
        "instance 2 after the takeover",
        "A3".to_owned(),
        async || title_on(&db2).await,
    )
    .await;
    shows(
        "instance 1 after the takeover",
        "A3".to_owned(),
        async || title_on(&f.t.db).await,
    )
    .await;
    eprintln!("takeover after the consumer stopped: {took:?} (lease 900 ms)");
    assert!(took < SEEN);
    second.stop().await;
}

/// The slot dropped by hand, a write made while it was gone: the feed cannot prove it saw
/// everything, so it bumps every model tag (counted as a gap) and the write shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_slot_is_a_gap() {
    let Some(f) = Followed::new(Kind::Memory).await else {
        return;
    };
    // With the memory store the slot is temporary: it goes with its session, and the next
    // session starts with a new one, which is a gap.
    let ann = f.t.user("ann").await;
    let a = f.t.song(&ann, "A").await;
    let feed = feed(&f).start(&f.t.cache).await.unwrap();
    reaches(&feed, FeedState::Following).await;
    let runs = AtomicUsize::new(0);
    assert_eq!(card(&f.t.db, &runs, a.id).await.unwrap().unwrap().0, "A");
    let gaps = feed.status().gaps;
    // End the walsender, drop its (temporary) slot as it goes, write meanwhile.
    f.psql(&format!(
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE active_pid IS NOT NULL;
         UPDATE songs SET title = 'A2' WHERE id = {}",
        a.id
    ));
    shows(
        "the write made while the slot was gone",
        "A2".to_owned(),
        async || card(&f.t.db, &runs, a.id).await.unwrap().unwrap().0,
    )
    .await;
    until_gaps(&feed, gaps + 1).await;
    feed.stop().await;
}

async fn until_gaps(feed: &querycache::feed::ChangeFeedHandle, at_least: u64) {
    crate::support::until(SEEN, "a gap is counted", async || {
        feed.status().gaps >= at_least
    })
    .await;
}

/// With a shared store the slot is persistent: a consumer whose replication connection is
/// killed resumes from its position (no gap), a slot dropped and recreated by hand is
/// detected (a gap), and a server restart ends in the same place. No stale read in between.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_end_in_bumps_not_stale_reads() {
    let Some(f) = Followed::new(Kind::Tiered).await else {
        return;
    };
    let ann = f.t.user("ann").await;
    let a = f.t.song(&ann, "A").await;
    let feed = feed(&f).start(&f.t.cache).await.unwrap();
    reaches(&feed, FeedState::Following).await;
    let runs = AtomicUsize::new(0);
    let title = async || card(&f.t.db, &runs, a.id).await.unwrap().unwrap().0;
    assert_eq!(title().await, "A");
    // The slot is the configured persistent one.
    assert_eq!(
        f.psql("SELECT slot_name || ' ' || temporary FROM pg_replication_slots"),
        "querycache false"
    );

    // 1. The replication connection killed: resumed from the position, nothing missed.
    let gaps = feed.status().gaps;
    f.psql(&format!(
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'querycache';
         UPDATE songs SET title = 'A2' WHERE id = {}",
        a.id
    ));
    shows("after pg_terminate_backend", "A2".to_owned(), title).await;
    reaches(&feed, FeedState::Following).await;
    assert_eq!(
        feed.status().gaps,
        gaps,
        "a killed connection resumes without a gap"
    );

    // 2. The slot dropped and recreated by hand, a write in between: a gap. (The feed,
    // reconnecting, may create it first: the same gap.)
    f.psql(&format!(
        "DO $$ BEGIN
           LOOP
             BEGIN
               PERFORM pg_drop_replication_slot('querycache');
               EXIT;
             EXCEPTION WHEN object_in_use THEN
               PERFORM pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'querycache';
               PERFORM pg_sleep(0.005);
             END;
           END LOOP;
         END $$;
         UPDATE songs SET title = 'A3' WHERE id = {};
         DO $$ BEGIN
           PERFORM pg_create_logical_replication_slot('querycache', 'pgoutput');
         EXCEPTION WHEN duplicate_object THEN
           NULL;
         END $$;",
        a.id
    ));
    shows("after the slot was recreated", "A3".to_owned(), title).await;
    until_gaps(&feed, gaps + 1).await;

    // 3. PostgreSQL restarted, a write right after.
    let server = f.server.clone();
    tokio::task::spawn_blocking(move || server.restart())
        .await
        .unwrap();
    f.psql(&format!(
        "UPDATE songs SET title = 'A4' WHERE id = {}",
        a.id
    ));
    shows("after a restart", "A4".to_owned(), title).await;
    reaches(&feed, FeedState::Following).await;
    feed.stop().await;
}

/// A consumer that goes away in the middle of a stream of transactions (its task dropped
/// wherever it is, as a killed process would be) and another that takes over: every write
/// shows, none is lost between them.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_mid_stream_loses_nothing() {
    let Some(f) = Followed::new(Kind::Tiered).await else {
        return;
    };
    let ann = f.t.user("ann").await;
    let a = f.t.song(&ann, "A").await;
    let (cache2, db2) = f.instance().await;
    let first = feed(&f).start(&f.t.cache).await.unwrap();
    reaches(&first, FeedState::Following).await;
    let second = feed(&f).start(&cache2).await.unwrap();
    reaches(&second, FeedState::Standby).await;
    let runs = AtomicUsize::new(0);
    assert_eq!(card(&db2, &runs, a.id).await.unwrap().unwrap().0, "A");

    // Big transactions keep the stream busy; the last one renames song A.
    let url = f.url();
    let writer = std::process::Command::new(f.server.program("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", &url])
        // One transaction each.
        .args([
            "-c",
            "CREATE TABLE filler (id int PRIMARY KEY, pad text)",
            "-c",
            "INSERT INTO filler SELECT g, repeat('x', 100) FROM generate_series(1, 50000) g",
            "-c",
            "UPDATE filler SET pad = 'y'",
            "-c",
            "DELETE FROM filler",
            "-c",
        ])
        .arg(format!("UPDATE songs SET title = 'A2' WHERE id = {}", a.id))
        .spawn()
        .expect("psql");
    // The first consumer dies while those stream.
    until(SEEN, "the stream is busy", async || {
        first.status().applied >= 1
    })
    .await;
    drop(first);
    let status = tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        writer.wait()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(status.success());
    reaches(&second, FeedState::Following).await;
    shows(
        "the last write, through the second consumer",
        "A2".to_owned(),
        async || card(&db2, &runs, a.id).await.unwrap().unwrap().0,
    )
    .await;
    second.stop().await;
}

use crate::support::until;

/// The recorded position says when a consumer last followed: one away longer than
/// `max_gap` is a gap when the next one starts; one away for less is not.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_away_past_the_bound_is_a_gap() {
    let Some(f) = Followed::new(Kind::Tiered).await else {
        return;
    };
    let start = async || {
        let handle = feed(&f)
            .max_gap(Duration::from_secs(60))
            .start(&f.t.cache)
            .await
            .unwrap();
        reaches(&handle, FeedState::Following).await;
        handle
    };
    // The first consumer: no position was recorded, which is a gap.
    let first = start().await;
    assert_eq!(first.status().gaps, 1);
    first.stop().await;
    // Back at once: resumed, no gap.
    let second = start().await;
    assert_eq!(second.status().gaps, 0);
    second.stop().await;
    // The record says the last consumer followed an hour ago.
    let url = f
        .redis
        .as_ref()
        .expect("a tiered fixture has a redis-server")
        .url();
    let mut redis = redis::Client::open(url).unwrap().get_connection().unwrap();
    let key = "querycache@feed:querycache";
    let recorded: String = redis::cmd("GET").arg(key).query(&mut redis).unwrap();
    let mut parts: Vec<&str> = recorded.splitn(4, ' ').collect();
    let an_hour_ago = (std::time::SystemTime::now() - Duration::from_secs(3600))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    parts[2] = &an_hour_ago;
    let () = redis::cmd("SET")
        .arg(key)
        .arg(parts.join(" "))
        .query(&mut redis)
        .unwrap();
    let third = start().await;
    assert_eq!(
        third.status().gaps,
        1,
        "away for an hour, past a max_gap of 60 s"
    );
    third.stop().await;
}

/// The publication the feed creates lists the tables with a primary key, so writes to a
/// table without one keep working (`FOR ALL TABLES` would make PostgreSQL refuse its
/// updates and deletes); a table created while the feed runs joins it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publication_follows_new_tables_and_breaks_no_write() {
    let Some(f) = Followed::new(Kind::Memory).await else {
        return;
    };
    f.psql("CREATE TABLE log_lines (line text); INSERT INTO log_lines VALUES ('a')");
    let feed = feed(&f).start(&f.t.cache).await.unwrap();
    reaches(&feed, FeedState::Following).await;
    // A table without a primary key: its writes still work.
    f.psql("UPDATE log_lines SET line = 'b'; DELETE FROM log_lines");
    // A table created now, read, then written from outside.
    f.psql("CREATE TABLE late (id int PRIMARY KEY, v text); INSERT INTO late VALUES (1, 'x')");
    let runs = AtomicUsize::new(0);
    let read = async || {
        scalar(&f.t.db, &runs, "SELECT v FROM late WHERE id = 1".into())
            .await
            .unwrap()
    };
    assert_eq!(read().await.as_deref(), Some("x"));
    crate::support::until(SEEN, "the new table joins the publication", async || {
        f.psql("SELECT count(*) FROM pg_publication_tables WHERE tablename = 'late'") == "1"
    })
    .await;
    f.psql("UPDATE late SET v = 'y' WHERE id = 1");
    shows("a write to the new table", Some("y".to_owned()), read).await;
    feed.stop().await;
}

/// A consumer that dies without a word (its runtime dropped with the session open, as a
/// killed process's would be: no lease given back, no stream closed politely): another
/// instance takes over once the lease expires, and sees what was written meanwhile.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_consumer_is_taken_over_when_its_lease_expires() {
    let Some(f) = Followed::new(Kind::Tiered).await else {
        return;
    };
    let ann = f.t.user("ann").await;
    let a = f.t.song(&ann, "A").await;
    let (cache2, db2) = f.instance().await;
    // The first instance's feed runs on a runtime of its own, dropped below.
    let doomed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (cache1, url) = (f.t.cache.clone(), f.url());
    let first = doomed
        .spawn(async move {
            let handle = ChangeFeed::logical(url)
                .lease(Duration::from_millis(900))
                .start(&cache1)
                .await
                .unwrap();
            let deadline = Instant::now() + SEEN;
            while handle.status().state != FeedState::Following {
                assert!(Instant::now() < deadline, "the first feed never followed");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            handle
        })
        .await
        .unwrap();
    let second = feed(&f).start(&cache2).await.unwrap();
    reaches(&second, FeedState::Standby).await;
    let runs = AtomicUsize::new(0);
    assert_eq!(card(&db2, &runs, a.id).await.unwrap().unwrap().0, "A");

    let died = Instant::now();
    std::mem::forget(first); // its Drop would ask the task to stop politely
    doomed.shutdown_background();
    f.psql(&format!(
        "UPDATE songs SET title = 'A2' WHERE id = {}",
        a.id
    ));
    reaches(&second, FeedState::Following).await;
    let took = died.elapsed();
    shows(
        "the write made while no consumer followed",
        "A2".to_owned(),
        async || card(&db2, &runs, a.id).await.unwrap().unwrap().0,
    )
    .await;
    eprintln!("takeover after a crash: {took:?} (lease 900 ms)");
    second.stop().await;
}
