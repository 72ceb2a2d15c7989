//! PostgreSQL-only write forms through Diesel (`sql_query` with bound values, and
//! `batch_execute`): the same classifier as SeaORM's sees them, so the same entries go.
//! Each test caches the song list, songs A and B by id, and the author by id.

use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use querycache::{Cache, CacheModel, cached_query};

use super::DB;
use crate::support::diesel::reads::{
    song_title as title, song_titles as titles, user_name as user,
};
use crate::support::diesel::schema::songs;
use crate::support::diesel::{AnyConnection, DieselDb};

#[derive(Default)]
struct Runs(AtomicUsize);

impl Runs {
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl std::ops::Deref for Runs {
    type Target = AtomicUsize;
    fn deref(&self) -> &AtomicUsize {
        &self.0
    }
}

struct F {
    t: DieselDb,
    conn: AnyConnection,
    author: i32,
    a: i32,
    b: i32,
    runs: Runs,
}

/// Which cached reads ran again, and what they returned.
#[derive(Debug, PartialEq)]
struct Reran {
    list: bool,
    a: bool,
    b: bool,
    user: bool,
}

impl F {
    fn new(cache: Cache) -> Option<F> {
        let t = DieselDb::with_cache(DB, cache)?;
        let mut conn = t.conn();
        let author = t.user(&mut conn, "ann");
        let a = t.song(&mut conn, author, "A");
        let b = t.song(&mut conn, author, "B");
        let mut f = F {
            t,
            conn,
            author,
            a,
            b,
            runs: Runs::default(),
        };
        f.reads();
        assert_eq!(f.reran(), Reran::none(), "premise: every read is cached");
        Some(f)
    }

    fn reads(&mut self) -> (Vec<String>, Option<String>, Option<String>, Option<String>) {
        let c = self.t.cache.clone();
        (
            titles(&c, &self.runs, &mut self.conn).unwrap(),
            title(&c, &self.runs, &mut self.conn, self.a).unwrap(),
            title(&c, &self.runs, &mut self.conn, self.b).unwrap(),
            user(&c, &self.runs, &mut self.conn, self.author).unwrap(),
        )
    }

    /// Reads each entry once more, saying which ones ran their query.
    fn reran(&mut self) -> Reran {
        let c = self.t.cache.clone();
        let mut step = |read: &mut dyn FnMut(&mut AnyConnection)| {
            let before = self.runs.get();
            read(&mut self.conn);
            self.runs.get() > before
        };
        let (a, b, author, runs) = (self.a, self.b, self.author, &self.runs);
        Reran {
            list: step(&mut |conn| drop(titles(&c, runs, conn).unwrap())),
            a: step(&mut |conn| drop(title(&c, runs, conn, a).unwrap())),
            b: step(&mut |conn| drop(title(&c, runs, conn, b).unwrap())),
            user: step(&mut |conn| drop(user(&c, runs, conn, author).unwrap())),
        }
    }
}

impl Reran {
    fn none() -> Reran {
        Reran {
            list: false,
            a: false,
            b: false,
            user: false,
        }
    }
}

#[test]
fn update_from_is_a_bulk_write_to_songs_only() {
    let Some(mut f) = F::new(Cache::new()) else {
        return;
    };
    diesel::sql_query(
        "UPDATE songs SET title = songs.title || '!' FROM users \
         WHERE songs.author_id = users.id AND users.name = $1",
    )
    .bind::<Text, _>("ann")
    .execute(&mut f.conn)
    .unwrap();
    let reran = f.reran();
    assert_eq!(
        reran,
        Reran {
            list: true,
            a: true,
            b: true,
            user: false
        }
    );
    assert_eq!(f.reads().0, ["A!", "B!"]);
}

#[test]
fn insert_on_conflict_do_update_touches_the_row_it_names() {
    let Some(mut f) = F::new(Cache::new()) else {
        return;
    };
    diesel::sql_query(
        "INSERT INTO songs (id, title, artist, author_id) VALUES ($1, $2, 'x', $3) \
         ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title",
    )
    .bind::<Integer, _>(f.b)
    .bind::<Text, _>("B2")
    .bind::<Integer, _>(f.author)
    .execute(&mut f.conn)
    .unwrap();
    let reran = f.reran();
    assert_eq!(
        reran,
        Reran {
            list: true,
            a: false,
            b: true,
            user: false
        }
    );
    assert_eq!(f.reads().2.as_deref(), Some("B2"));
}

#[test]
fn delete_using_and_a_cte_write_invalidate_every_table_they_write() {
    let Some(mut f) = F::new(Cache::new()) else {
        return;
    };
    f.conn
        .batch_execute("CREATE TABLE archived_songs (id INTEGER, title TEXT)")
        .unwrap();
    diesel::sql_query(
        "WITH moved AS (DELETE FROM songs WHERE id = $1 RETURNING id, title) \
         INSERT INTO archived_songs SELECT id, title FROM moved",
    )
    .bind::<Integer, _>(f.a)
    .execute(&mut f.conn)
    .unwrap();
    let reran = f.reran();
    assert!(reran.list && reran.a && !reran.user, "{reran:?}");
    assert_eq!(f.reads().1, None);

    diesel::sql_query(
        "DELETE FROM songs USING users WHERE songs.author_id = users.id AND users.id = $1",
    )
    .bind::<Integer, _>(f.author)
    .execute(&mut f.conn)
    .unwrap();
    let reran = f.reran();
    assert!(reran.list && reran.b && !reran.user, "{reran:?}");
    assert!(f.reads().0.is_empty());
}

/// A table in schema `app`, named to the cache through `CacheModel`.
struct AppSongs;
impl CacheModel for AppSongs {
    const TABLE: &'static str = "songs";
    const SCHEMA: Option<&'static str> = Some("app");
}

#[cached_query(cache = cache, models = [AppSongs])]
fn app_titles(
    #[cache_skip] cache: &Cache,
    #[cache_skip] runs: &Runs,
    conn: &mut AnyConnection,
) -> QueryResult<Vec<String>> {
    runs.0.fetch_add(1, Ordering::SeqCst);
    diesel::sql_query("SELECT title FROM app.songs ORDER BY id")
        .load::<Title>(conn)
        .map(|rows| rows.into_iter().map(|r| r.title).collect())
}

#[derive(QueryableByName)]
struct Title {
    #[diesel(sql_type = Text)]
    title: String,
}

#[test]
fn a_table_in_another_schema_is_another_table() {
    let Some(mut f) = F::new(Cache::new()) else {
        return;
    };
    f.conn
        .batch_execute(
            "CREATE SCHEMA app; CREATE TABLE app.songs (id SERIAL PRIMARY KEY, title TEXT NOT NULL); \
             INSERT INTO app.songs (title) VALUES ('app A')",
        )
        .unwrap();
    let (c, runs) = (f.t.cache.clone(), Runs::default());
    assert_eq!(app_titles(&c, &runs, &mut f.conn).unwrap(), ["app A"]);
    // A write to public.songs leaves app.songs entries alone...
    diesel::update(songs::table.find(f.a))
        .set(songs::title.eq("A2"))
        .execute(&mut f.conn)
        .unwrap();
    app_titles(&c, &runs, &mut f.conn).unwrap();
    assert_eq!(runs.get(), 1);
    assert!(
        f.reran().list,
        "premise: the public write invalidated public.songs's list"
    );
    // ...and a write to app.songs invalidates them, not public.songs's.
    f.conn
        .batch_execute("UPDATE app.songs SET title = 'app A2'")
        .unwrap();
    assert_eq!(app_titles(&c, &runs, &mut f.conn).unwrap(), ["app A2"]);
    assert_eq!(runs.get(), 2);
    assert!(!f.reran().list);
}

#[test]
fn a_trigger_write_is_seen_once_declared() {
    const TRIGGER: &str = "
        CREATE TABLE song_counts (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
        INSERT INTO song_counts VALUES (1, 2);
        CREATE FUNCTION count_songs() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN UPDATE song_counts SET n = n + 1 WHERE id = 1; RETURN NULL; END $$;
        CREATE TRIGGER songs_counted AFTER INSERT ON songs
            FOR EACH ROW EXECUTE FUNCTION count_songs();";

    struct SongCounts;
    impl CacheModel for SongCounts {
        const TABLE: &'static str = "song_counts";
    }
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = Integer)]
        n: i32,
    }
    #[cached_query(cache = cache, models = [SongCounts])]
    fn count(
        #[cache_skip] cache: &Cache,
        #[cache_skip] runs: &Runs,
        conn: &mut AnyConnection,
    ) -> QueryResult<i32> {
        runs.0.fetch_add(1, Ordering::SeqCst);
        diesel::sql_query("SELECT n FROM song_counts WHERE id = 1")
            .get_result::<N>(conn)
            .map(|row| row.n)
    }

    for declared in [false, true] {
        let cache = if declared {
            Cache::builder()
                .table_also_writes("songs", ["song_counts"])
                .build()
                .unwrap()
        } else {
            Cache::new()
        };
        let Some(mut f) = F::new(cache) else { return };
        f.conn.batch_execute(TRIGGER).unwrap();
        let (c, runs) = (f.t.cache.clone(), Runs::default());
        assert_eq!(count(&c, &runs, &mut f.conn).unwrap(), 2);
        f.t.song(&mut f.conn, f.author, "C");
        let n = count(&c, &runs, &mut f.conn).unwrap();
        if declared {
            assert_eq!(
                (n, runs.get()),
                (3, 2),
                "declared: the trigger's write invalidates"
            );
        } else {
            assert_eq!(
                (n, runs.get()),
                (2, 1),
                "pinned: a trigger's write is not seen"
            );
        }
    }
}

#[test]
fn a_commit_that_fails_leaves_correct_data_and_a_clean_transaction_state() {
    let Some(mut f) = F::new(Cache::new()) else {
        return;
    };
    f.conn
        .batch_execute(
            "CREATE TABLE parents (id INTEGER PRIMARY KEY);
             CREATE TABLE kids (id INTEGER PRIMARY KEY,
                 parent INTEGER REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED)",
        )
        .unwrap();
    let a = f.a;
    // The foreign key is checked at COMMIT, which fails: PostgreSQL rolls everything back.
    let result = f.conn.transaction::<_, diesel::result::Error, _>(|conn| {
        diesel::update(songs::table.find(a))
            .set(songs::title.eq("never"))
            .execute(conn)?;
        conn.batch_execute("INSERT INTO kids VALUES (1, 42)")?;
        Ok(())
    });
    assert!(result.is_err(), "premise: COMMIT fails");
    let reran = f.reran();
    // Whether a failed COMMIT took effect is not known to the hook: it invalidates.
    assert!(reran.list && reran.a && !reran.b, "{reran:?}");
    assert_eq!(
        f.reads().1.as_deref(),
        Some("A"),
        "the data is the committed data"
    );
    // The instrumentation is out of the transaction: the next write invalidates at once.
    diesel::update(songs::table.find(a))
        .set(songs::title.eq("A2"))
        .execute(&mut f.conn)
        .unwrap();
    assert_eq!(f.reads().1.as_deref(), Some("A2"));
}
