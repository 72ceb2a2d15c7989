//! Every kind of Diesel write, made through an instrumented connection, invalidates the
//! cached queries that depend on what it wrote, and nothing else; transactions invalidate
//! after COMMIT only. Reads are `#[cached_query]` plain `fn`s taking `&mut AnyConnection`.
//!
//! Each test caches the song list (`model:songs`) and songs A and B by id (row tag +
//! `#bulk`), writes, then reads again: `computed` says whether the query ran again.

use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use querycache::{Cache, cached_query};

use super::DB;
use crate::support::Db;
use crate::support::diesel::reads::{song_title, song_titles, user_name};
use crate::support::diesel::schema::{songs, users};
use crate::support::diesel::{AnyConnection, DieselDb, returning};

/// How many times each query body ran.
#[derive(Default)]
struct Runs {
    list: AtomicUsize,
    by_id: AtomicUsize,
    users: AtomicUsize,
}

struct Fixture {
    t: DieselDb,
    conn: AnyConnection,
    runs: Runs,
    author: i32,
    a: i32,
    b: i32,
}

/// What the cached reads return after a write, and which of them ran their query.
#[derive(Debug)]
struct State {
    list: Vec<String>,
    a: Option<String>,
    b: Option<String>,
    list_ran: bool,
    a_ran: bool,
    b_ran: bool,
}

impl Fixture {
    /// Songs A and B by one author, every read cached (and checked to be).
    fn new() -> Option<Fixture> {
        let t = DieselDb::new(DB)?;
        let mut conn = t.conn();
        let author = t.user(&mut conn, "ann");
        let a = t.song(&mut conn, author, "A");
        let b = t.song(&mut conn, author, "B");
        let mut f = Fixture {
            t,
            conn,
            runs: Runs::default(),
            author,
            a,
            b,
        };
        f.state();
        let again = f.state();
        assert!(
            !again.list_ran && !again.a_ran && !again.b_ran,
            "premise: every read is cached: {again:?}"
        );
        Some(f)
    }

    fn state(&mut self) -> State {
        let before = |r: &AtomicUsize| r.load(Ordering::SeqCst);
        let (list0, id0) = (before(&self.runs.list), before(&self.runs.by_id));
        let cache = &self.t.cache;
        let list = song_titles(cache, &self.runs.list, &mut self.conn).expect("list");
        let list_ran = before(&self.runs.list) > list0;
        let a = song_title(cache, &self.runs.by_id, &mut self.conn, self.a).expect("a");
        let a_ran = before(&self.runs.by_id) > id0;
        let b = song_title(cache, &self.runs.by_id, &mut self.conn, self.b).expect("b");
        let b_ran = before(&self.runs.by_id) > id0 + usize::from(a_ran);
        State {
            list,
            a,
            b,
            list_ran,
            a_ran,
            b_ran,
        }
    }

    fn ph(&self, n: usize) -> String {
        self.t.ph(n)
    }
}

// --- Query builder writes ----------------------------------------------------------------

#[test]
fn insert_into_invalidates_the_list_and_by_id_entries_in_bulk() {
    let Some(mut f) = Fixture::new() else { return };
    f.t.song(&mut f.conn, f.author, "C");
    let s = f.state();
    assert!(s.list_ran, "the list must be recomputed");
    assert_eq!(s.list, ["A", "B", "C"]);
    // The new id comes back through RETURNING, which the instrumentation does not see:
    // the insert is a bulk write for by-id entries.
    assert!(s.a_ran && s.b_ran);
}

#[test]
fn insert_with_an_explicit_id_touches_only_that_row() {
    let Some(mut f) = Fixture::new() else { return };
    let id = f.b + 100;
    // A cached absence of the row about to be created.
    assert_eq!(
        song_title(&f.t.cache, &f.runs.by_id, &mut f.conn, id).unwrap(),
        None
    );
    diesel::insert_into(songs::table)
        .values((
            songs::id.eq(id),
            songs::title.eq("C"),
            songs::artist.eq("c"),
            songs::author_id.eq(f.author),
        ))
        .execute(&mut f.conn)
        .unwrap();
    let s = f.state();
    assert!(s.list_ran && !s.a_ran && !s.b_ran, "{s:?}");
    let before = f.runs.by_id.load(Ordering::SeqCst);
    let created = song_title(&f.t.cache, &f.runs.by_id, &mut f.conn, id).unwrap();
    assert_eq!(created.as_deref(), Some("C"));
    assert_eq!(
        f.runs.by_id.load(Ordering::SeqCst),
        before + 1,
        "the absence was invalidated"
    );
}

#[test]
fn update_by_id_invalidates_that_row_and_the_list_only() {
    let Some(mut f) = Fixture::new() else { return };
    diesel::update(songs::table.find(f.b))
        .set(songs::title.eq("B2"))
        .execute(&mut f.conn)
        .unwrap();
    let s = f.state();
    assert!(s.list_ran && !s.a_ran && s.b_ran, "{s:?}");
    assert_eq!(
        (s.list, s.b.as_deref()),
        (vec!["A".into(), "B2".into()], Some("B2"))
    );
}

#[test]
fn update_with_a_filter_is_a_bulk_write() {
    let Some(mut f) = Fixture::new() else { return };
    diesel::update(songs::table.filter(songs::author_id.eq(f.author)))
        .set(songs::archived.eq(true))
        .execute(&mut f.conn)
        .unwrap();
    diesel::update(songs::table.filter(songs::title.eq("A")))
        .set(songs::title.eq("A2"))
        .execute(&mut f.conn)
        .unwrap();
    let s = f.state();
    assert!(s.list_ran && s.a_ran && s.b_ran, "{s:?}");
    assert_eq!(s.a.as_deref(), Some("A2"));
}

#[test]
fn update_returning_invalidates_like_an_update() {
    let Some(mut f) = Fixture::new() else { return };
    let update = diesel::update(songs::table.find(f.a)).set(songs::title.eq("A2"));
    let title: String = if let AnyConnection::Mysql(conn) = &mut f.conn {
        // MySQL has no UPDATE .. RETURNING: the update, then the read.
        update.execute(conn).unwrap();
        songs::table
            .find(f.a)
            .select(songs::title)
            .first(conn)
            .unwrap()
    } else {
        returning!(&mut f.conn, |conn| update
            .returning(songs::title)
            .get_result(conn)
            .unwrap())
    };
    assert_eq!(title, "A2");
    let s = f.state();
    assert!(s.list_ran && s.a_ran && !s.b_ran, "{s:?}");
    assert_eq!(s.a.as_deref(), Some("A2"));
}

#[test]
fn delete_by_id_invalidates_that_row_and_the_list_only() {
    let Some(mut f) = Fixture::new() else { return };
    diesel::delete(songs::table.find(f.a))
        .execute(&mut f.conn)
        .unwrap();
    let s = f.state();
    assert!(s.list_ran && s.a_ran && !s.b_ran, "{s:?}");
    assert_eq!((s.list, s.a), (vec!["B".to_owned()], None));
}

#[test]
fn delete_with_a_filter_and_delete_all_are_bulk_writes() {
    let Some(mut f) = Fixture::new() else { return };
    diesel::delete(songs::table.filter(songs::title.eq("B")))
        .execute(&mut f.conn)
        .unwrap();
    let s = f.state();
    assert!(s.list_ran && s.a_ran && s.b_ran, "{s:?}");
    assert_eq!(s.b, None);
    diesel::delete(songs::table).execute(&mut f.conn).unwrap();
    let s = f.state();
    assert!(s.list_ran && s.a_ran, "{s:?}");
    assert!(s.list.is_empty() && s.a.is_none());
}

#[test]
fn upsert_on_conflict_do_update_invalidates_the_row_it_names() {
    let Some(mut f) = Fixture::new() else { return };
    // `MultiBackend` has no upsert: each backend's connection runs it. MySQL's form
    // (`ON DUPLICATE KEY UPDATE`) names no conflict target.
    macro_rules! upsert {
        ($conn:expr, $target:expr) => {
            diesel::insert_into(songs::table)
                .values((
                    songs::id.eq(f.a),
                    songs::title.eq("A2"),
                    songs::artist.eq("a"),
                    songs::author_id.eq(f.author),
                ))
                .on_conflict($target)
                .do_update()
                .set(songs::title.eq("A2"))
                .execute($conn)
                .unwrap()
        };
    }
    let n = match &mut f.conn {
        AnyConnection::Sqlite(conn) => upsert!(conn, songs::id),
        AnyConnection::Postgresql(conn) => upsert!(conn, songs::id),
        AnyConnection::Mysql(conn) => upsert!(conn, diesel::dsl::DuplicatedKeys),
    };
    // MySQL counts an upsert that updated as two rows.
    assert_eq!(n, if DB == Db::MySql { 2 } else { 1 });
    let s = f.state();
    assert!(s.list_ran && s.a_ran, "{s:?}");
    assert_eq!(s.a.as_deref(), Some("A2"));
}

#[test]
fn a_write_to_songs_keeps_cached_users_entries() {
    let Some(mut f) = Fixture::new() else { return };
    let cache = f.t.cache.clone();
    user_name(&cache, &f.runs.users, &mut f.conn, f.author).unwrap();
    diesel::update(songs::table.find(f.a))
        .set(songs::title.eq("A2"))
        .execute(&mut f.conn)
        .unwrap();
    let before = f.runs.users.load(Ordering::SeqCst);
    user_name(&cache, &f.runs.users, &mut f.conn, f.author).unwrap();
    assert_eq!(
        f.runs.users.load(Ordering::SeqCst),
        before,
        "users entry kept"
    );
    diesel::update(users::table.find(f.author))
        .set(users::name.eq("bea"))
        .execute(&mut f.conn)
        .unwrap();
    let name = user_name(&cache, &f.runs.users, &mut f.conn, f.author).unwrap();
    assert_eq!(name.as_deref(), Some("bea"));
    assert_eq!(f.runs.users.load(Ordering::SeqCst), before + 1);
}

// --- Raw SQL -----------------------------------------------------------------------------

#[test]
fn sql_query_update_with_a_bound_id_invalidates_that_row_only() {
    let Some(mut f) = Fixture::new() else { return };
    let sql = format!(
        "UPDATE songs SET title = {} WHERE id = {}",
        f.ph(1),
        f.ph(2)
    );
    let n = diesel::sql_query(sql)
        .bind::<Text, _>("B2")
        .bind::<Integer, _>(f.b)
        .execute(&mut f.conn)
        .unwrap();
    assert_eq!(n, 1);
    let s = f.state();
    assert!(s.list_ran && !s.a_ran && s.b_ran, "{s:?}");
    assert_eq!(s.b.as_deref(), Some("B2"));
}

#[test]
fn sql_query_delete_with_literals_invalidates_that_row() {
    let Some(mut f) = Fixture::new() else { return };
    diesel::sql_query(format!("DELETE FROM songs WHERE id = {}", f.a))
        .execute(&mut f.conn)
        .unwrap();
    let s = f.state();
    assert!(s.list_ran && s.a_ran && !s.b_ran, "{s:?}");
    assert_eq!(s.a, None);
}

#[test]
fn batch_execute_of_several_statements_invalidates_both_tables() {
    let Some(mut f) = Fixture::new() else { return };
    let cache = f.t.cache.clone();
    user_name(&cache, &f.runs.users, &mut f.conn, f.author).unwrap();
    f.conn
        .batch_execute(&format!(
            "UPDATE users SET name = 'bea' WHERE id = {}; UPDATE songs SET title = 'A2' WHERE id = {}",
            f.author, f.a
        ))
        .unwrap();
    let name = user_name(&cache, &f.runs.users, &mut f.conn, f.author).unwrap();
    assert_eq!(name.as_deref(), Some("bea"));
    let s = f.state();
    assert!(s.list_ran && s.a_ran && !s.b_ran, "{s:?}");
    assert_eq!(s.a.as_deref(), Some("A2"));
}

#[test]
fn a_failing_statement_still_invalidates() {
    let Some(mut f) = Fixture::new() else { return };
    // The second statement fails. On SQLite and MySQL the first one has committed; on
    // PostgreSQL the whole text is one implicit transaction, rolled back. All invalidate.
    let result = f.conn.batch_execute(&format!(
        "UPDATE songs SET title = 'A2' WHERE id = {}; INSERT INTO no_such_table VALUES (1)",
        f.a
    ));
    assert!(result.is_err(), "premise: the text fails");
    let s = f.state();
    assert!(s.list_ran && s.a_ran, "{s:?}");
    let expected = if DB == Db::Postgres { "A" } else { "A2" };
    assert_eq!(s.a.as_deref(), Some(expected));
}

#[test]
fn an_unclassifiable_statement_invalidates_every_model_entry() {
    let Some(mut f) = Fixture::new() else { return };
    // Valid SQL on both databases, but nothing querycache can read a target from.
    let unknown = match DB {
        Db::Sqlite => "SAVEPOINT x; RELEASE x; VACUUM".to_owned(),
        Db::Postgres => {
            "DO $$ BEGIN UPDATE songs SET title = 'A2' WHERE title = 'A'; END $$".to_owned()
        }
        // A prepared statement's text is a string: what EXECUTE runs is not in the text.
        Db::MySql => "PREPARE p FROM 'UPDATE songs SET title = ''A2'' WHERE title = ''A'''; \
                      EXECUTE p; DEALLOCATE PREPARE p"
            .to_owned(),
    };
    f.conn.batch_execute(&unknown).unwrap();
    let s = f.state();
    if DB != Db::Sqlite {
        assert!(s.list_ran && s.a_ran && s.b_ran, "{s:?}");
        assert_eq!(s.a.as_deref(), Some("A2"));
    } else {
        // SQLite's text writes nothing: it must not invalidate.
        assert!(!s.list_ran && !s.a_ran && !s.b_ran, "{s:?}");
    }
}

// --- Transactions ------------------------------------------------------------------------

#[test]
fn a_transaction_invalidates_after_commit_not_before() {
    let Some(mut f) = Fixture::new() else { return };
    let (cache, a) = (f.t.cache.clone(), f.a);
    let key_count = cache.stats().invalidations;
    f.conn
        .transaction::<_, diesel::result::Error, _>(|conn| {
            diesel::update(songs::table.find(a))
                .set(songs::title.eq("A2"))
                .execute(conn)?;
            assert_eq!(
                cache.stats().invalidations,
                key_count,
                "nothing is invalidated before COMMIT"
            );
            Ok(())
        })
        .unwrap();
    assert!(cache.stats().invalidations > key_count);
    let s = f.state();
    assert!(s.list_ran && s.a_ran && !s.b_ran, "{s:?}");
    assert_eq!(s.a.as_deref(), Some("A2"));
}

#[test]
fn a_rolled_back_transaction_invalidates_nothing() {
    let Some(mut f) = Fixture::new() else { return };
    let (a, invalidations) = (f.a, f.t.cache.stats().invalidations);
    let result = f.conn.transaction::<(), _, _>(|conn| {
        diesel::update(songs::table.find(a))
            .set(songs::title.eq("A2"))
            .execute(conn)?;
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert!(result.is_err());
    assert_eq!(f.t.cache.stats().invalidations, invalidations);
    let s = f.state();
    assert!(!s.list_ran && !s.a_ran, "{s:?}");
    assert_eq!(s.a.as_deref(), Some("A"));
}

#[test]
fn a_rolled_back_savepoint_drops_its_writes_and_a_released_one_joins_its_parent() {
    let Some(mut f) = Fixture::new() else { return };
    let (cache, a, b) = (f.t.cache.clone(), f.a, f.b);
    let invalidations = cache.stats().invalidations;
    f.conn
        .transaction::<_, diesel::result::Error, _>(|conn| {
            // A savepoint that rolls back: its write to B never happened.
            let _ = conn.transaction::<(), _, _>(|conn| {
                diesel::update(songs::table.find(b))
                    .set(songs::title.eq("B2"))
                    .execute(conn)?;
                Err(diesel::result::Error::RollbackTransaction)
            });
            // A savepoint that is released: its write to A is the outer transaction's.
            conn.transaction::<_, diesel::result::Error, _>(|conn| {
                diesel::update(songs::table.find(a))
                    .set(songs::title.eq("A2"))
                    .execute(conn)
            })?;
            assert_eq!(
                cache.stats().invalidations,
                invalidations,
                "released is not committed"
            );
            Ok(())
        })
        .unwrap();
    let s = f.state();
    assert!(s.list_ran && s.a_ran && !s.b_ran, "{s:?}");
    assert_eq!((s.a.as_deref(), s.b.as_deref()), (Some("A2"), Some("B")));
}

#[test]
fn raw_begin_and_commit_defer_the_invalidation_to_the_commit() {
    let Some(mut f) = Fixture::new() else { return };
    let invalidations = f.t.cache.stats().invalidations;
    f.conn.batch_execute("BEGIN").unwrap();
    f.conn
        .batch_execute(&format!("UPDATE songs SET title = 'A2' WHERE id = {}", f.a))
        .unwrap();
    assert_eq!(
        f.t.cache.stats().invalidations,
        invalidations,
        "not before COMMIT"
    );
    f.conn.batch_execute("COMMIT").unwrap();
    assert!(f.t.cache.stats().invalidations > invalidations);
    let s = f.state();
    assert!(s.list_ran && s.a_ran && !s.b_ran, "{s:?}");
    assert_eq!(s.a.as_deref(), Some("A2"));
}

#[test]
fn cached_reads_inside_a_transaction_that_wrote_the_table_bypass_the_cache() {
    let Some(mut f) = Fixture::new() else { return };
    let (cache, a) = (f.t.cache.clone(), f.a);
    let runs = Runs::default();
    let result = f.conn.transaction::<(), _, _>(|conn| {
        // Before writing: a hit is served.
        assert_eq!(
            song_title(&cache, &runs.by_id, conn, a)?.as_deref(),
            Some("A")
        );
        assert_eq!(
            runs.by_id.load(Ordering::SeqCst),
            0,
            "served from the cache"
        );
        diesel::update(songs::table.find(a))
            .set(songs::title.eq("A2"))
            .execute(conn)?;
        // After: the transaction sees its own write, and the cache is not used.
        assert_eq!(
            song_title(&cache, &runs.by_id, conn, a)?.as_deref(),
            Some("A2")
        );
        assert_eq!(song_titles(&cache, &runs.list, conn)?, ["A2", "B"]);
        assert_eq!(runs.by_id.load(Ordering::SeqCst), 1);
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert!(result.is_err());
    // Rolled back: the uncommitted title was never stored, the old entry is still good.
    let s = f.state();
    assert!(!s.list_ran && !s.a_ran, "{s:?}");
    assert_eq!(
        (s.list, s.a.as_deref()),
        (vec!["A".into(), "B".into()], Some("A"))
    );
}

// --- Connections the cache cannot see ----------------------------------------------------

#[test]
fn writes_through_an_uninstrumented_connection_are_not_seen_a_known_limitation() {
    let Some(mut f) = Fixture::new() else { return };
    let mut other = f.t.raw();
    diesel::update(songs::table.find(f.a))
        .set(songs::title.eq("A2"))
        .execute(&mut other)
        .unwrap();
    let s = f.state();
    assert!(!s.a_ran, "pinned: the write is invisible to the cache");
    assert_eq!(
        s.a.as_deref(),
        Some("A"),
        "pinned: the stale entry is served"
    );
    // Invalidating by hand is the remedy.
    f.t.cache
        .invalidate_tags_blocking(querycache::Tag::table_write("songs"));
    assert_eq!(f.state().a.as_deref(), Some("A2"));
}

#[test]
fn a_transaction_on_an_uninstrumented_connection_bypasses_the_cache() {
    let Some(f) = Fixture::new() else { return };
    let (cache, a) = (f.t.cache.clone(), f.a);
    let mut other = f.t.raw();
    let runs = Runs::default();
    other
        .transaction::<_, diesel::result::Error, _>(|conn| {
            assert_eq!(
                song_title(&cache, &runs.by_id, conn, a)?.as_deref(),
                Some("A")
            );
            Ok(())
        })
        .unwrap();
    assert_eq!(
        runs.by_id.load(Ordering::SeqCst),
        1,
        "inside a transaction querycache cannot see, the query runs"
    );
}

#[test]
fn install_default_instruments_every_new_connection() {
    // The default is process-wide: this test only checks that a connection made after
    // `install_default` reports to the cache it names, with its own cache.
    let Some(f) = Fixture::new() else { return };
    let cache = Cache::new();
    let _default = crate::support::diesel::PROCESS_DEFAULT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    querycache::orm::diesel::install_default(&cache).unwrap();
    let mut conn = AnyConnection::establish(&f.t.url).unwrap();
    // Put the default back before anything else can establish a connection with it.
    diesel::connection::set_default_instrumentation(|| None).unwrap();
    let options = querycache::EntryOptions::new().tag(querycache::Tag::model("songs"));
    cache.set_blocking("n", 1_u8, options).unwrap();
    diesel::delete(songs::table.find(f.a))
        .execute(&mut conn)
        .unwrap();
    assert!(cache.get_blocking::<u8>("n").is_none());
}

// --- #[derive(CacheModel)] ---------------------------------------------------------------

/// A Diesel model: its table comes from `#[diesel(table_name)]`.
#[derive(
    Queryable,
    Selectable,
    querycache::CacheModel,
    serde::Serialize,
    serde::Deserialize,
    Clone,
    Debug,
)]
#[diesel(table_name = songs)]
struct Song {
    id: i32,
    title: String,
}

/// Not a Diesel model: the table is given.
#[derive(querycache::CacheModel)]
#[cache_model(table = "users")]
struct Author;

#[cached_query(cache = cache, models = [Song, Author], row = id)]
fn song_with_models(
    #[cache_skip] cache: &Cache,
    #[cache_skip] runs: &AtomicUsize,
    conn: &mut AnyConnection,
    id: i32,
) -> QueryResult<Option<Song>> {
    runs.fetch_add(1, Ordering::SeqCst);
    songs::table
        .find(id)
        .select(Song::as_select())
        .first(conn)
        .optional()
}

#[test]
fn derived_cache_models_name_their_tables() {
    use querycache::CacheModel as _;
    assert_eq!((Song::TABLE, Song::SCHEMA), ("songs", None));
    assert_eq!(Author::TABLE, "users");

    let Some(mut f) = Fixture::new() else { return };
    let (cache, runs) = (f.t.cache.clone(), AtomicUsize::new(0));
    let read = |conn: &mut AnyConnection| song_with_models(&cache, &runs, conn, f.a).unwrap();
    assert_eq!(read(&mut f.conn).map(|s| s.title).as_deref(), Some("A"));
    read(&mut f.conn);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    diesel::update(songs::table.find(f.a))
        .set(songs::title.eq("A2"))
        .execute(&mut f.conn)
        .unwrap();
    assert_eq!(read(&mut f.conn).map(|s| s.title).as_deref(), Some("A2"));
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "the row write invalidated it"
    );
    diesel::update(users::table.find(f.author))
        .set(users::name.eq("bea"))
        .execute(&mut f.conn)
        .unwrap();
    read(&mut f.conn);
    assert_eq!(
        runs.load(Ordering::SeqCst),
        3,
        "a write to the second model's table too"
    );
}

/// A function generic over its Diesel connection (bounded by `Connection`, not `'static`):
/// its transaction state is still read.
#[cached_query(cache = cache, models = [songs::table], row = id)]
fn generic_read<C: diesel::Connection>(
    #[cache_skip] cache: &Cache,
    #[cache_skip] runs: &AtomicUsize,
    conn: &mut C,
    id: i32,
) -> QueryResult<String> {
    let _ = conn;
    let n = runs.fetch_add(1, Ordering::SeqCst);
    Ok(format!("{id}:{n}"))
}

#[test]
fn a_generic_connection_inside_a_transaction_that_wrote_bypasses_the_cache() {
    let Some(mut f) = Fixture::new() else { return };
    let (cache, runs, a) = (f.t.cache.clone(), AtomicUsize::new(0), f.a);
    assert_eq!(
        generic_read(&cache, &runs, &mut f.conn, a).unwrap(),
        format!("{a}:0")
    );
    assert_eq!(
        generic_read(&cache, &runs, &mut f.conn, a).unwrap(),
        format!("{a}:0")
    );
    let result = f.conn.transaction::<(), _, _>(|conn| {
        diesel::update(songs::table.find(a))
            .set(songs::title.eq("A2"))
            .execute(conn)?;
        assert_eq!(
            generic_read(&cache, &runs, conn, a)?,
            format!("{a}:1"),
            "bypassed"
        );
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert!(result.is_err());
    assert_eq!(
        generic_read(&cache, &runs, &mut f.conn, a).unwrap(),
        format!("{a}:0"),
        "nothing computed inside the transaction was stored"
    );
}
