//! The stale-set race with Diesel's synchronous API: reader threads call a cached plain
//! `fn` while a writer thread updates the row through another instrumented connection.
//! A read that starts after an update has returned must see it (invariant 1), and a value
//! read before an update must never be served after it (invariant 2).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::prelude::*;
use querycache::{Cache, cached_query};

use super::DB;
use crate::support::diesel::schema::songs;
use crate::support::diesel::{AnyConnection, DieselDb};
use crate::support::stores::{self, Kind};

// Nothing declared: the race is between the observed read's snapshot and the write.
#[cached_query(cache = cache)]
fn content(
    #[cache_skip] cache: &Cache,
    #[cache_skip] computed: &AtomicUsize,
    conn: &mut AnyConnection,
    id: i32,
) -> QueryResult<u64> {
    let n = computed.fetch_add(1, Ordering::SeqCst);
    let text: String = songs::table.find(id).select(songs::content).first(conn)?;
    // Widen the window between reading the row and handing the value to the cache.
    if n.is_multiple_of(3) {
        std::thread::sleep(Duration::from_micros(300));
    }
    Ok(text.parse().unwrap_or(0))
}

fn race(kind: Kind) {
    const READERS: usize = 4;
    const UPDATES: u64 = 300;

    let Some(test_cache) = stores::cache_with(kind, |b| b) else {
        return;
    };
    let Some(t) = DieselDb::with_cache(DB, test_cache.cache.clone()) else {
        return;
    };
    let t = Arc::new(t);
    let id = {
        let mut conn = t.conn();
        let author = t.user(&mut conn, "ann");
        let id = t.song(&mut conn, author, "race");
        diesel::update(songs::table.find(id))
            .set(songs::content.eq("0"))
            .execute(&mut conn)
            .unwrap();
        id
    };
    let version = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let computed = Arc::new(AtomicUsize::new(0));
    let stale = Arc::new(Mutex::new(Vec::new()));
    let reads = Arc::new(AtomicU64::new(0));

    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (t, version, done, computed, stale, reads) = (
                Arc::clone(&t),
                Arc::clone(&version),
                Arc::clone(&done),
                Arc::clone(&computed),
                Arc::clone(&stale),
                Arc::clone(&reads),
            );
            std::thread::spawn(move || {
                let mut conn = t.conn();
                while !done.load(Ordering::SeqCst) {
                    let floor = version.load(Ordering::SeqCst);
                    let seen = content(&t.cache, &computed, &mut conn, id).unwrap();
                    reads.fetch_add(1, Ordering::SeqCst);
                    if seen < floor {
                        stale
                            .lock()
                            .unwrap()
                            .push(format!("read {seen} after {floor} was written"));
                    }
                }
            })
        })
        .collect();

    let writer = {
        let (t, version) = (Arc::clone(&t), Arc::clone(&version));
        std::thread::spawn(move || {
            let mut conn = t.conn();
            for v in 1..=UPDATES {
                diesel::update(songs::table.find(id))
                    .set(songs::content.eq(v.to_string()))
                    .execute(&mut conn)
                    .unwrap();
                // The update has returned: every read that starts now must see `v`.
                version.store(v, Ordering::SeqCst);
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    writer.join().expect("writer");
    done.store(true, Ordering::SeqCst);
    for reader in readers {
        reader.join().expect("reader");
    }

    let stale = stale.lock().unwrap().clone();
    let (reads, computations) = (
        reads.load(Ordering::SeqCst),
        computed.load(Ordering::SeqCst),
    );
    eprintln!(
        "diesel race on {DB:?}/{kind:?}: {reads} reads, {computations} computations, {} stale, wasted {}",
        stale.len(),
        t.cache.stats().wasted_computations
    );
    assert!(
        stale.is_empty(),
        "{} stale reads: {:?}",
        stale.len(),
        &stale[..stale.len().min(5)]
    );
    assert!(
        reads > computations as u64,
        "the cache served hits during the race"
    );
    let mut conn = t.conn();
    assert_eq!(
        content(&t.cache, &computed, &mut conn, id).unwrap(),
        UPDATES
    );
}

#[test]
fn no_stale_value_with_diesel_readers_racing_a_writer_on_the_memory_store() {
    race(Kind::Memory);
}

#[cfg(feature = "redis")]
#[test]
fn no_stale_value_with_diesel_readers_racing_a_writer_on_the_tiered_store() {
    race(Kind::Tiered);
}
