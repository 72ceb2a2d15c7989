//! Observed dependencies through Diesel: a `#[cached_query]` function that declares nothing
//! depends on what its statements read, as the connection's `CacheInstrumentation` saw them
//! (every table of a join, the row a `find` pinned), however the synchronous call waits for
//! the cache: on a plain thread, on a multi-thread runtime's worker, on a current-thread
//! runtime (each cache operation detached to querycache's own runtime).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use querycache::{EntryOptions, cached_query};

use super::DB;
use crate::support::diesel::schema::{songs, users};
use crate::support::diesel::{AnyConnection, DieselDb};

/// A song's card: its title and its author's name (a join), nothing declared: the function
/// uses the connection's cache.
#[cached_query(ttl = "1h")]
fn card(
    conn: &mut AnyConnection,
    #[cache_skip] runs: &AtomicUsize,
    id: i32,
) -> QueryResult<Option<(String, String)>> {
    runs.fetch_add(1, Ordering::SeqCst);
    songs::table
        .inner_join(users::table)
        .filter(songs::id.eq(id))
        .select((songs::title, users::name))
        .first(conn)
        .optional()
}

/// Every song title, nothing declared.
#[cached_query(ttl = "1h")]
fn titles(conn: &mut AnyConnection, #[cache_skip] runs: &AtomicUsize) -> QueryResult<Vec<String>> {
    runs.fetch_add(1, Ordering::SeqCst);
    songs::table
        .order(songs::id)
        .select(songs::title)
        .load(conn)
}

/// A song's title, declaring its table only; it also reads its author (a second
/// statement): what is declared is added to what is observed.
#[cached_query(ttl = "1h", models = [songs::table])]
fn title_by(
    conn: &mut AnyConnection,
    #[cache_skip] runs: &AtomicUsize,
    id: i32,
) -> QueryResult<Option<String>> {
    runs.fetch_add(1, Ordering::SeqCst);
    let Some((title, author)) = songs::table
        .find(id)
        .select((songs::title, songs::author_id))
        .first::<(String, i32)>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let name: String = users::table.find(author).select(users::name).first(conn)?;
    Ok(Some(format!("{title} by {name}")))
}

/// The author's name of a song; when `race` is set, renames that author through the same
/// connection right after reading it (a write that commits while the computation runs).
#[cached_query(ttl = "1h")]
fn author_racing_a_rename(
    conn: &mut AnyConnection,
    #[cache_skip] runs: &AtomicUsize,
    #[cache_skip] race: &AtomicBool,
    id: i32,
) -> QueryResult<String> {
    runs.fetch_add(1, Ordering::SeqCst);
    let (author, name): (i32, String) = songs::table
        .inner_join(users::table)
        .filter(songs::id.eq(id))
        .select((users::id, users::name))
        .first(conn)?;
    if race.swap(false, Ordering::SeqCst) {
        diesel::update(users::table.find(author))
            .set(users::name.eq(format!("{name}!")))
            .execute(conn)?;
    }
    Ok(name)
}

struct Fixture {
    t: DieselDb,
    conn: AnyConnection,
    ann: i32,
    a: i32,
    b: i32,
}

impl Fixture {
    /// Songs A and B by ann, and a table `notes` that no read below reads.
    fn new() -> Option<Fixture> {
        let t = DieselDb::new(DB)?;
        let mut conn = t.conn();
        conn.batch_execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
            .unwrap();
        let ann = t.user(&mut conn, "ann");
        let a = t.song(&mut conn, ann, "A");
        let b = t.song(&mut conn, ann, "B");
        Some(Fixture { t, conn, ann, a, b })
    }

    fn rename_song(&mut self, id: i32, title: &str) {
        diesel::update(songs::table.find(id))
            .set(songs::title.eq(title))
            .execute(&mut self.conn)
            .unwrap();
    }

    fn rename_user(&mut self, name: &str) {
        diesel::update(users::table.find(self.ann))
            .set(users::name.eq(name))
            .execute(&mut self.conn)
            .unwrap();
    }

    fn write_a_note(&mut self) {
        self.conn
            .batch_execute("INSERT INTO notes (id, body) VALUES (1, 'unrelated')")
            .unwrap();
    }

    /// The join test: cached with nothing declared, left by unrelated writes, invalidated
    /// by a write to each table it read.
    fn join_depends_on_both_tables_and_its_row(&mut self) {
        let runs = AtomicUsize::new(0);
        let a = self.a;
        let read = |f: &mut Fixture| card(&mut f.conn, &runs, a).unwrap();
        let ran = || runs.load(Ordering::SeqCst);
        let card_of = |title: &str, name: &str| Some((title.to_owned(), name.to_owned()));

        assert_eq!(read(self), card_of("A", "ann"));
        assert_eq!(read(self), card_of("A", "ann"));
        assert_eq!(ran(), 1, "cached although nothing was declared");

        self.write_a_note();
        let b = self.b;
        self.rename_song(b, "B2");
        assert_eq!(read(self), card_of("A", "ann"));
        assert_eq!(
            ran(),
            1,
            "a write to a table it did not read, or to another song, leaves it"
        );

        self.rename_song(a, "A2");
        assert_eq!(read(self), card_of("A2", "ann"));
        assert_eq!(ran(), 2, "a write to the song it read invalidates it");

        self.rename_user("anne");
        assert_eq!(read(self), card_of("A2", "anne"));
        assert_eq!(ran(), 3, "a write to the joined table invalidates it");
        assert_eq!(read(self), card_of("A2", "anne"));
        assert_eq!(ran(), 3);
    }
}

/// A user's name through a cached function that counts its runs.
#[cached_query(ttl = "1h")]
fn author_named(
    conn: &mut AnyConnection,
    #[cache_skip] runs: &AtomicUsize,
    id: i32,
) -> QueryResult<Option<String>> {
    runs.fetch_add(1, Ordering::SeqCst);
    users::table
        .find(id)
        .select(users::name)
        .first(conn)
        .optional()
}

/// A song's title and, through [`author_named`], its author's name.
#[cached_query(ttl = "1h")]
fn song_and_author(
    conn: &mut AnyConnection,
    #[cache_skip] runs: &AtomicUsize,
    #[cache_skip] inner_runs: &AtomicUsize,
    id: i32,
) -> QueryResult<Option<String>> {
    runs.fetch_add(1, Ordering::SeqCst);
    let Some((title, author)) = songs::table
        .find(id)
        .select((songs::title, songs::author_id))
        .first::<(String, i32)>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let name = author_named(conn, inner_runs, author)?.unwrap_or_default();
    Ok(Some(format!("{title} by {name}")))
}

impl Fixture {
    /// A cached function calling another: the inner hit is used, and a write to what only
    /// the inner function read invalidates the outer entry.
    fn nested_calls_depend_on_what_the_inner_one_depends_on(&mut self) {
        let (runs, inner_runs) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let (a, ann) = (self.a, self.ann);
        let ran = || {
            (
                runs.load(Ordering::SeqCst),
                inner_runs.load(Ordering::SeqCst),
            )
        };
        let card = |f: &mut Fixture| song_and_author(&mut f.conn, &runs, &inner_runs, a).unwrap();

        assert_eq!(
            author_named(&mut self.conn, &inner_runs, ann)
                .unwrap()
                .as_deref(),
            Some("ann")
        );
        assert_eq!(card(self).as_deref(), Some("A by ann"));
        assert_eq!(card(self).as_deref(), Some("A by ann"));
        assert_eq!(ran(), (1, 1), "the outer computation used the inner hit");

        self.rename_user("anne");
        assert_eq!(card(self).as_deref(), Some("A by anne"));
        assert_eq!(ran(), (2, 2), "a write to what only the inner one read");
        let b = self.b;
        self.rename_song(b, "B2");
        assert_eq!(card(self).as_deref(), Some("A by anne"));
        assert_eq!(ran(), (2, 2), "another song's write leaves both");
    }
}

#[test]
fn nested_cached_calls_on_a_plain_thread() {
    let Some(mut f) = Fixture::new() else { return };
    f.nested_calls_depend_on_what_the_inner_one_depends_on();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_cached_calls_on_a_runtime_worker() {
    let Some(mut f) = Fixture::new() else { return };
    f.nested_calls_depend_on_what_the_inner_one_depends_on();
}

#[tokio::test(flavor = "current_thread")]
async fn nested_cached_calls_on_a_current_thread_runtime() {
    let Some(mut f) = Fixture::new() else { return };
    f.nested_calls_depend_on_what_the_inner_one_depends_on();
}

#[test]
fn a_join_with_nothing_declared_depends_on_both_tables_and_its_row_on_a_plain_thread() {
    let Some(mut f) = Fixture::new() else { return };
    f.join_depends_on_both_tables_and_its_row();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_with_nothing_declared_depends_on_both_tables_and_its_row_on_a_runtime_worker() {
    let Some(mut f) = Fixture::new() else { return };
    f.join_depends_on_both_tables_and_its_row();
}

#[tokio::test(flavor = "current_thread")]
async fn a_join_with_nothing_declared_depends_on_both_tables_and_its_row_on_a_current_thread_runtime()
 {
    let Some(mut f) = Fixture::new() else { return };
    f.join_depends_on_both_tables_and_its_row();
}

#[test]
fn a_list_with_nothing_declared_depends_on_its_table() {
    let Some(mut f) = Fixture::new() else { return };
    let runs = AtomicUsize::new(0);
    assert_eq!(titles(&mut f.conn, &runs).unwrap(), ["A", "B"]);
    f.write_a_note();
    assert_eq!(titles(&mut f.conn, &runs).unwrap(), ["A", "B"]);
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    let ann = f.ann;
    f.t.song(&mut f.conn, ann, "C");
    assert_eq!(titles(&mut f.conn, &runs).unwrap(), ["A", "B", "C"]);
    assert_eq!(runs.load(Ordering::SeqCst), 2);

    let b = f.b;
    f.rename_song(b, "B2");
    assert_eq!(titles(&mut f.conn, &runs).unwrap(), ["A", "B2", "C"]);
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

#[test]
fn what_is_declared_is_added_to_what_is_observed() {
    let Some(mut f) = Fixture::new() else { return };
    let runs = AtomicUsize::new(0);
    let a = f.a;
    assert_eq!(
        title_by(&mut f.conn, &runs, a).unwrap().as_deref(),
        Some("A by ann")
    );
    f.rename_user("anne");
    assert_eq!(
        title_by(&mut f.conn, &runs, a).unwrap().as_deref(),
        Some("A by anne"),
        "the undeclared users table, read by its second statement, invalidates it"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[test]
fn a_write_that_commits_after_an_observed_read_is_never_served_stale() {
    // Invariant 2 for observed tags: the versions of what a statement reads are taken
    // before it runs, so a write committed after it makes the value born stale.
    let Some(mut f) = Fixture::new() else { return };
    let (runs, race) = (AtomicUsize::new(0), AtomicBool::new(true));
    let a = f.a;
    let mut read = || author_racing_a_rename(&mut f.conn, &runs, &race, a).unwrap();
    assert_eq!(read(), "ann");
    assert_eq!(
        read(),
        "ann!",
        "the value read before the rename was not stored under versions after it"
    );
    assert_eq!(read(), "ann!");
    assert_eq!(runs.load(Ordering::SeqCst), 2, "the second value is cached");
}

#[test]
fn a_computation_reading_inside_a_transaction_is_returned_not_cached() {
    // Its value may hold the transaction's uncommitted writes: a rollback would leave a
    // cached value nobody ever committed.
    let Some(mut f) = Fixture::new() else { return };
    let cache = f.t.cache.clone();
    let a = f.a;
    let mut runs = 0;
    let mut read = |conn: &mut AnyConnection| {
        runs += 1;
        cache
            .try_get_or_compute_blocking("a title", EntryOptions::new(), || {
                songs::table
                    .find(a)
                    .select(songs::title)
                    .first::<String>(conn)
            })
            .unwrap()
    };
    let mut seen = None;
    let rolled_back = f.conn.transaction::<(), diesel::result::Error, _>(|conn| {
        diesel::update(songs::table.find(a))
            .set(songs::title.eq("uncommitted"))
            .execute(conn)?;
        seen = Some(read(conn));
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert!(rolled_back.is_err());
    assert_eq!(seen.as_deref().map(String::as_str), Some("uncommitted"));
    assert!(
        f.t.cache.get_blocking::<String>("a title").is_none(),
        "nothing cached from inside the transaction"
    );
    // Outside it, the same computation reads the committed title, and is cached.
    assert_eq!(*read(&mut f.conn), "A");
    assert_eq!(
        f.t.cache
            .get_blocking::<String>("a title")
            .as_deref()
            .map(String::as_str),
        Some("A")
    );
    assert_eq!(runs, 2);
}
