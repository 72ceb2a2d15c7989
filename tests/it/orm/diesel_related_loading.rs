//! The related-loading forms of Diesel, observed (issue 22 item 7): a `#[cached_query]`
//! function that declares nothing and loads through `inner_join` / `left_join`,
//! `belonging_to` + `grouped_by`, a `sql_query` SELECT or a boxed query depends on every
//! table each of its statements read — and on the rows only, where a statement pinned them
//! by primary key.
//!
//! Each form is checked by [`check`]: after each write of [`Write::ALL`], one read, which
//! must be a miss exactly when the form read what was written (its runs are counted).

use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};
use querycache::cached_query;

use super::DB;
use crate::support::Db;
use crate::support::diesel::models::{Song, User};
use crate::support::diesel::schema::{songs, users};
use crate::support::diesel::{AnyConnection, DieselDb};

/// The backend of [`AnyConnection`], which boxed queries name.
type Backend = <AnyConnection as Connection>::Backend;

/// The writes each form is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// A row of `notes`, a table no form reads.
    Note,
    /// Song A (ann's).
    SongA,
    /// Song C (bob's): another row of `songs`.
    SongC,
    /// ann, the author of A and B.
    Ann,
    /// cat, who wrote nothing: another row of `users`.
    Cat,
}

use Write::{Ann, Cat, SongA, SongC};

impl Write {
    const ALL: [Write; 5] = [Write::Note, SongA, SongC, Ann, Cat];
}

/// ann wrote songs A and B, bob song C, cat nothing; `notes` is read by no form.
struct Fixture {
    _t: DieselDb,
    conn: AnyConnection,
    ann: i32,
    bob: i32,
    cat: i32,
    a: i32,
    c: i32,
    writes: i32,
}

impl Fixture {
    fn new() -> Option<Fixture> {
        let t = DieselDb::new(DB)?;
        let mut conn = t.conn();
        conn.batch_execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
            .unwrap();
        let ann = t.user(&mut conn, "ann");
        let bob = t.user(&mut conn, "bob");
        let cat = t.user(&mut conn, "cat");
        let a = t.song(&mut conn, ann, "A");
        t.song(&mut conn, ann, "B");
        let c = t.song(&mut conn, bob, "C");
        Some(Fixture {
            _t: t,
            conn,
            ann,
            bob,
            cat,
            a,
            c,
            writes: 0,
        })
    }

    /// Makes `write` through the instrumented connection (each time a new value).
    fn write(&mut self, write: Write) {
        self.writes += 1;
        let n = self.writes;
        let conn = &mut self.conn;
        let done = match write {
            Write::Note => conn
                .batch_execute(&format!(
                    "INSERT INTO notes (id, body) VALUES ({n}, 'unrelated')"
                ))
                .map(|()| 1),
            SongA | SongC => {
                let id = if write == SongA { self.a } else { self.c };
                diesel::update(songs::table.find(id))
                    .set(songs::title.eq(format!("{write:?}{n}")))
                    .execute(conn)
            }
            Ann | Cat => {
                let id = if write == Ann { self.ann } else { self.cat };
                diesel::update(users::table.find(id))
                    .set(users::name.eq(format!("{write:?}{n}")))
                    .execute(conn)
            }
        };
        assert_eq!(done.map_err(|e| format!("write {write:?}: {e}")), Ok(1));
    }
}

/// Checks one form: `read` (a cached call counting its runs in `runs`) is a hit when
/// repeated, then after each write of [`Write::ALL`] a miss exactly when that write is in
/// `invalidated_by`. Every mismatch is reported, naming the form and the write.
fn check<T: Debug>(
    f: &mut Fixture,
    form: &str,
    runs: &AtomicUsize,
    invalidated_by: &[Write],
    read: impl Fn(&mut AnyConnection) -> QueryResult<T>,
) {
    let read = |f: &mut Fixture| {
        read(&mut f.conn).unwrap_or_else(|e| panic!("{form}: the read failed: {e}"))
    };
    let ran = || runs.load(Ordering::SeqCst);
    read(f);
    let before = ran();
    read(f);
    assert_eq!(
        ran(),
        before,
        "{form}: a repeated read is a hit although nothing was declared"
    );
    let mut wrong = Vec::new();
    for write in Write::ALL {
        let before = ran();
        f.write(write);
        let value = read(f);
        let missed = ran() > before;
        let expected = invalidated_by.contains(&write);
        if missed != expected {
            wrong.push(format!(
                "after a write to {write:?}: {} (expected {}), read {value:?}",
                if missed { "a miss" } else { "a hit" },
                if expected { "a miss" } else { "a hit" },
            ));
        }
        let after = ran();
        read(f);
        if ran() != after {
            wrong.push(format!(
                "after a write to {write:?}: the next read is a miss too"
            ));
        }
    }
    assert!(wrong.is_empty(), "{form}:\n  {}", wrong.join("\n  "));
}

/// The placeholder of the `n`-th (1-based) bound value in raw SQL.
fn ph(n: usize) -> String {
    match DB {
        Db::Sqlite | Db::MySql => "?".to_owned(),
        Db::Postgres => format!("${n}"),
    }
}

/// A song's title and its author's name: `inner_join`, pinning the song.
#[cached_query(ttl = "1h")]
fn inner_joined(
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

/// A user's name and each of their songs' titles: `left_join`, pinning the user.
#[cached_query(ttl = "1h")]
fn left_joined(
    conn: &mut AnyConnection,
    #[cache_skip] runs: &AtomicUsize,
    id: i32,
) -> QueryResult<Vec<(String, Option<String>)>> {
    runs.fetch_add(1, Ordering::SeqCst);
    users::table
        .left_join(songs::table)
        .filter(users::id.eq(id))
        .order(songs::id)
        .select((users::name, songs::title.nullable()))
        .load(conn)
}

/// Some users by id, then (a second statement) their songs: `belonging_to` + `grouped_by`.
#[cached_query(ttl = "1h")]
fn songs_by_author(
    conn: &mut AnyConnection,
    #[cache_skip] runs: &AtomicUsize,
    ids: Vec<i32>,
) -> QueryResult<Vec<(String, Vec<String>)>> {
    runs.fetch_add(1, Ordering::SeqCst);
    let authors = users::table
        .filter(users::id.eq_any(ids))
        .order(users::id)
        .select(User::as_select())
        .load(conn)?;
    let songs = Song::belonging_to(&authors)
        .order(songs::id)
        .select(Song::as_select())
        .load(conn)?;
    Ok(songs
        .grouped_by(&authors)
        .into_iter()
        .zip(authors)
        .map(|(songs, author)| (author.name, songs.into_iter().map(|s| s.title).collect()))
        .collect())
}

/// One user, then (a second statement) their songs: `belonging_to` a single parent.
#[cached_query(ttl = "1h")]
fn songs_of(
    conn: &mut AnyConnection,
    #[cache_skip] runs: &AtomicUsize,
    id: i32,
) -> QueryResult<(String, Vec<String>)> {
    runs.fetch_add(1, Ordering::SeqCst);
    let author = users::table
        .find(id)
        .select(User::as_select())
        .first(conn)?;
    let titles = Song::belonging_to(&author)
        .order(songs::id)
        .select(songs::title)
        .load(conn)?;
    Ok((author.name, titles))
}

#[derive(Debug, QueryableByName)]
struct CardRow {
    #[diesel(sql_type = Text)]
    title: String,
    #[diesel(sql_type = Text)]
    author: String,
}

/// A song's card: a `sql_query` join, pinning the song by a bound id.
#[cached_query(ttl = "1h")]
fn card_by_sql(
    conn: &mut AnyConnection,
    #[cache_skip] runs: &AtomicUsize,
    id: i32,
) -> QueryResult<Vec<(String, String)>> {
    runs.fetch_add(1, Ordering::SeqCst);
    let rows: Vec<CardRow> = diesel::sql_query(format!(
        "SELECT s.title AS title, u.name AS author FROM songs s \
         JOIN users u ON u.id = s.author_id WHERE s.id = {}",
        ph(1)
    ))
    .bind::<Integer, _>(id)
    .load(conn)?;
    Ok(rows.into_iter().map(|r| (r.title, r.author)).collect())
}

#[derive(Debug, QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// How many songs a user wrote: a `sql_query` aggregate over the songs table.
#[cached_query(ttl = "1h")]
fn count_by_sql(
    conn: &mut AnyConnection,
    #[cache_skip] runs: &AtomicUsize,
    author: i32,
) -> QueryResult<i64> {
    runs.fetch_add(1, Ordering::SeqCst);
    let rows: Vec<Count> = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM songs WHERE author_id = {}",
        ph(1)
    ))
    .bind::<Integer, _>(author)
    .load(conn)?;
    Ok(rows.first().map_or(0, |r| r.n))
}

/// Songs and authors, filtered at run time: a boxed join.
#[cached_query(ttl = "1h")]
fn boxed_cards(
    conn: &mut AnyConnection,
    #[cache_skip] runs: &AtomicUsize,
    author: Option<i32>,
) -> QueryResult<Vec<(String, String)>> {
    runs.fetch_add(1, Ordering::SeqCst);
    let mut query = songs::table
        .inner_join(users::table)
        .select((songs::title, users::name))
        .order(songs::id)
        .into_boxed::<Backend>();
    if let Some(author) = author {
        query = query.filter(songs::author_id.eq(author));
    }
    query.load(conn)
}

/// A song's title, by id or not at all: a boxed query pinning the song.
#[cached_query(ttl = "1h")]
fn boxed_title(
    conn: &mut AnyConnection,
    #[cache_skip] runs: &AtomicUsize,
    id: Option<i32>,
) -> QueryResult<Vec<String>> {
    runs.fetch_add(1, Ordering::SeqCst);
    let mut query = songs::table
        .select(songs::title)
        .order(songs::id)
        .into_boxed::<Backend>();
    if let Some(id) = id {
        query = query.filter(songs::id.eq(id));
    }
    query.load(conn)
}

/// How many songs `author` wrote, and whether `user` exists: `count()` and `exists` (two
/// statements).
#[cached_query(ttl = "1h")]
fn count_and_exists(
    conn: &mut AnyConnection,
    #[cache_skip] runs: &AtomicUsize,
    author: i32,
    user: i32,
) -> QueryResult<(i64, bool)> {
    runs.fetch_add(1, Ordering::SeqCst);
    let count = songs::table
        .filter(songs::author_id.eq(author))
        .count()
        .get_result(conn)?;
    let exists = diesel::select(diesel::dsl::exists(users::table.find(user))).get_result(conn)?;
    Ok((count, exists))
}

#[test]
fn inner_join_depends_on_its_row_and_the_joined_table() {
    let Some(mut f) = Fixture::new() else { return };
    let (runs, a) = (AtomicUsize::new(0), f.a);
    check(&mut f, "inner_join", &runs, &[SongA, Ann, Cat], |conn| {
        inner_joined(conn, &runs, a)
    });
}

#[test]
fn left_join_depends_on_its_row_and_the_joined_table() {
    let Some(mut f) = Fixture::new() else { return };
    let (runs, ann) = (AtomicUsize::new(0), f.ann);
    check(&mut f, "left_join", &runs, &[SongA, SongC, Ann], |conn| {
        left_joined(conn, &runs, ann)
    });
}

#[test]
fn belonging_to_and_grouped_by_depend_on_both_statements() {
    let Some(mut f) = Fixture::new() else { return };
    let (runs, ids) = (AtomicUsize::new(0), vec![f.ann, f.bob]);
    // On PostgreSQL Diesel sends `eq_any` as `"users"."id" = ANY($1)`, one array bound: its
    // elements pin the rows as SQLite's `IN (?, ?)` does.
    check(
        &mut f,
        "eq_any + belonging_to + grouped_by",
        &runs,
        &[SongA, SongC, Ann],
        |conn| songs_by_author(conn, &runs, ids.clone()),
    );
    let (runs, ann) = (AtomicUsize::new(0), f.ann);
    check(
        &mut f,
        "find + belonging_to",
        &runs,
        &[SongA, SongC, Ann],
        |conn| songs_of(conn, &runs, ann),
    );
}

#[test]
fn sql_query_selects_depend_on_what_they_read() {
    let Some(mut f) = Fixture::new() else { return };
    let (runs, a) = (AtomicUsize::new(0), f.a);
    check(
        &mut f,
        "sql_query join by id",
        &runs,
        &[SongA, Ann, Cat],
        |conn| card_by_sql(conn, &runs, a),
    );
    let (runs, bob) = (AtomicUsize::new(0), f.bob);
    check(&mut f, "sql_query count", &runs, &[SongA, SongC], |conn| {
        count_by_sql(conn, &runs, bob)
    });
}

#[test]
fn boxed_queries_depend_on_what_they_read() {
    let Some(mut f) = Fixture::new() else { return };
    let (runs, ann) = (AtomicUsize::new(0), f.ann);
    check(
        &mut f,
        "boxed join",
        &runs,
        &[SongA, SongC, Ann, Cat],
        |conn| boxed_cards(conn, &runs, Some(ann)),
    );
    let (runs, a) = (AtomicUsize::new(0), f.a);
    check(&mut f, "boxed by id", &runs, &[SongA], |conn| {
        boxed_title(conn, &runs, Some(a))
    });
    let runs = AtomicUsize::new(0);
    check(
        &mut f,
        "boxed, unfiltered",
        &runs,
        &[SongA, SongC],
        |conn| boxed_title(conn, &runs, None),
    );
}

#[test]
fn count_and_exists_depend_on_both_statements() {
    let Some(mut f) = Fixture::new() else { return };
    let (runs, bob, ann) = (AtomicUsize::new(0), f.bob, f.ann);
    check(
        &mut f,
        "count() + select(exists(find(..)))",
        &runs,
        &[SongA, SongC, Ann],
        |conn| count_and_exists(conn, &runs, bob, ann),
    );
}
