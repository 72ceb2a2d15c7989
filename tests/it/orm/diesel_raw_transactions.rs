//! Transactions driven by raw SQL on an instrumented Diesel connection: whatever the
//! spelling (`BEGIN; UPDATE ..` in one text, `UPDATE ..; COMMIT`, `COMMIT -- done`, `END`,
//! `ABORT`, `AND CHAIN`, savepoints), a write is invalidated after the COMMIT that makes it
//! visible — not before, where another connection could re-cache the old row and keep it —
//! and a rolled-back write leaves nothing in the cache. Also: explicit invalidations made on
//! behalf of a transaction (`orm::diesel::invalidate_tags`) apply again after its COMMIT.

use std::sync::atomic::AtomicUsize;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use querycache::orm::diesel::invalidate_tags;
use querycache::{EntryOptions, Tag};

use super::DB;
use crate::support::Db;
use crate::support::diesel::reads::song_title;
use crate::support::diesel::schema::songs;
use crate::support::diesel::{AnyConnection, DieselDb};

struct Fixture {
    t: DieselDb,
    /// The connection that runs the raw transaction control.
    conn: AnyConnection,
    /// Another instrumented connection, reading (and caching) meanwhile.
    other: AnyConnection,
    a: i32,
    b: i32,
    runs: AtomicUsize,
}

impl Fixture {
    fn new() -> Option<Fixture> {
        let t = DieselDb::new(DB)?;
        let mut conn = t.conn();
        let author = t.user(&mut conn, "ann");
        let a = t.song(&mut conn, author, "A");
        let b = t.song(&mut conn, author, "B");
        let other = t.conn();
        Some(Fixture {
            t,
            conn,
            other,
            a,
            b,
            runs: AtomicUsize::new(0),
        })
    }

    /// Song `id`'s title as a cached read through the other connection.
    fn title(&mut self, id: i32) -> Option<String> {
        song_title(&self.t.cache, &self.runs, &mut self.other, id).expect("read")
    }

    /// Song `id`'s title as a cached read through the connection running the transaction.
    fn title_inside(&mut self, id: i32) -> Option<String> {
        song_title(&self.t.cache, &self.runs, &mut self.conn, id).expect("read inside")
    }

    fn run(&mut self, sql: &str) {
        self.conn
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    fn update(&self, id: i32, title: &str) -> String {
        format!("UPDATE songs SET title = '{title}' WHERE id = {id}")
    }
}

/// Raw transaction texts: what opens the transaction with the write, then what closes it.
fn spellings(f: &Fixture) -> Vec<(String, String)> {
    let write = f.update(f.a, "A2");
    let mut forms = vec![
        // Item 2: BEGIN and the write in one text.
        (format!("BEGIN; {write}"), "COMMIT".to_owned()),
        (format!("BEGIN; {write};"), "COMMIT;".to_owned()),
        // Item 3: ends in the same text as a write, or with a comment.
        ("BEGIN".to_owned(), format!("{write}; COMMIT")),
        (format!("BEGIN; {write}"), "COMMIT -- done".to_owned()),
        (format!("BEGIN; {write}"), "COMMIT /* x */".to_owned()),
        // Raw savepoints inside a raw transaction.
        (
            format!("BEGIN; SAVEPOINT s1; {write}; RELEASE SAVEPOINT s1"),
            "COMMIT".to_owned(),
        ),
    ];
    if DB != Db::MySql {
        // `END` and `RELEASE` without `SAVEPOINT` are not MySQL's.
        forms.extend([
            (format!("/* start */ BEGIN; {write}"), "END".to_owned()),
            (
                format!("BEGIN TRANSACTION; {write}"),
                "END TRANSACTION".to_owned(),
            ),
            (
                format!("BEGIN; SAVEPOINT s1; {write}; SAVEPOINT s2"),
                "RELEASE s1; COMMIT".to_owned(),
            ),
        ]);
    }
    match DB {
        Db::Postgres => forms.extend([
            (
                format!("START TRANSACTION; {write}"),
                "COMMIT WORK".to_owned(),
            ),
            (
                format!("BEGIN ISOLATION LEVEL READ COMMITTED; {write}"),
                "COMMIT".to_owned(),
            ),
        ]),
        Db::Sqlite => forms.extend([
            (format!("BEGIN IMMEDIATE; {write}"), "COMMIT".to_owned()),
            (
                format!("BEGIN DEFERRED TRANSACTION; {write}"),
                "END".to_owned(),
            ),
            // SQLite: a SAVEPOINT outside a transaction opens one, its RELEASE commits.
            (
                format!("SAVEPOINT outer_sp; {write}"),
                "RELEASE outer_sp".to_owned(),
            ),
        ]),
        Db::MySql => forms.extend([
            (
                format!("START TRANSACTION; {write}"),
                "COMMIT WORK".to_owned(),
            ),
            (
                format!("BEGIN WORK; {write}"),
                "COMMIT AND NO CHAIN".to_owned(),
            ),
            (
                format!("START TRANSACTION READ WRITE, WITH CONSISTENT SNAPSHOT; {write}"),
                "COMMIT".to_owned(),
            ),
            (
                format!("# start\nBEGIN; SAVEPOINT s1; {write}; SAVEPOINT s2"),
                "RELEASE SAVEPOINT s1; COMMIT".to_owned(),
            ),
            // Autocommit off: the write waits for the next COMMIT.
            (format!("SET autocommit = 0; {write}"), "COMMIT".to_owned()),
            (
                format!("XA START 'x1'; {write}"),
                "XA END 'x1'; XA COMMIT 'x1' ONE PHASE".to_owned(),
            ),
        ]),
    }
    forms
}

#[test]
fn a_raw_transaction_s_write_is_invalidated_at_its_commit_in_every_spelling() {
    let Some(probe) = Fixture::new() else { return };
    for (open, close) in spellings(&probe) {
        let mut f = Fixture::new().expect("database");
        assert_eq!(f.title(f.a).as_deref(), Some("A"));
        f.run(&open);
        // Another connection reads (and caches) the committed row meanwhile.
        assert_eq!(f.title(f.a).as_deref(), Some("A"), "{open} | {close}");
        f.run(&close);
        assert_eq!(
            f.title(f.a).as_deref(),
            Some("A2"),
            "the COMMIT invalidated: {open} | {close}"
        );
    }
}

#[test]
fn a_raw_rollback_leaves_no_never_committed_value_in_the_cache() {
    let Some(probe) = Fixture::new() else { return };
    let write = probe.update(probe.a, "never");
    let mut forms = vec![
        (format!("BEGIN; {write}"), "ROLLBACK"),
        (format!("BEGIN; {write}"), "ROLLBACK -- undo"),
        (
            format!("BEGIN; SAVEPOINT s; {write}"),
            "ROLLBACK TO SAVEPOINT s; COMMIT",
        ),
    ];
    match DB {
        Db::Postgres => forms.extend([
            (
                format!("BEGIN TRANSACTION; {write}"),
                "ROLLBACK TRANSACTION",
            ),
            (format!("BEGIN; {write}"), "ABORT"),
            (format!("BEGIN; {write}"), "ROLLBACK AND CHAIN; COMMIT"),
        ]),
        Db::Sqlite => forms.push((
            format!("BEGIN TRANSACTION; {write}"),
            "ROLLBACK TRANSACTION",
        )),
        Db::MySql => forms.extend([
            (format!("START TRANSACTION; {write}"), "ROLLBACK WORK"),
            (format!("BEGIN; {write}"), "ROLLBACK AND CHAIN; COMMIT"),
            (format!("SET autocommit = 0; {write}"), "ROLLBACK"),
        ]),
    }
    for (open, close) in forms {
        let mut f = Fixture::new().expect("database");
        f.run(&open);
        // Inside the raw transaction the connection sees its own write: not to be stored.
        assert_eq!(f.title_inside(f.a).as_deref(), Some("never"), "{open}");
        f.run(close);
        assert_eq!(
            f.title(f.a).as_deref(),
            Some("A"),
            "nothing uncommitted was stored: {open} | {close}"
        );
    }
}

#[test]
fn after_commit_with_a_comment_later_autocommit_writes_invalidate_at_once() {
    let Some(mut f) = Fixture::new() else { return };
    f.run("BEGIN");
    f.run(&f.update(f.a, "A2"));
    f.run("COMMIT -- done");
    assert_eq!(f.title(f.a).as_deref(), Some("A2"));
    // The level is closed: this write is not parked in it.
    f.run(&f.update(f.a, "A3"));
    assert_eq!(f.title(f.a).as_deref(), Some("A3"));
    f.run(&format!("BEGIN; {}; COMMIT /* x */", f.update(f.b, "B2")));
    assert_eq!(f.title(f.b).as_deref(), Some("B2"));
    f.run(&f.update(f.b, "B3"));
    assert_eq!(f.title(f.b).as_deref(), Some("B3"));
}

#[test]
fn commit_and_chain_commits_and_opens_a_new_level() {
    if DB == Db::Sqlite {
        return; // SQLite has no AND CHAIN.
    }
    let Some(mut f) = Fixture::new() else { return };
    assert_eq!(f.title(f.a).as_deref(), Some("A"));
    f.run(&format!("BEGIN; {}", f.update(f.a, "A2")));
    f.run("COMMIT AND CHAIN");
    assert_eq!(f.title(f.a).as_deref(), Some("A2"), "committed");
    f.run(&f.update(f.a, "A3"));
    assert_eq!(
        f.title(f.a).as_deref(),
        Some("A2"),
        "inside the chained transaction"
    );
    f.run("COMMIT");
    assert_eq!(
        f.title(f.a).as_deref(),
        Some("A3"),
        "its COMMIT invalidated"
    );
}

#[test]
fn a_diesel_transaction_inside_a_raw_begin_leaves_the_raw_level_open_until_the_real_commit() {
    let Some(mut f) = Fixture::new() else { return };
    assert_eq!(f.title(f.a).as_deref(), Some("A"));
    f.run(&format!("BEGIN; {}", f.update(f.a, "A2")));
    let (a, b) = (f.a, f.b);
    let (cache, runs, other) = (&f.t.cache, &f.runs, &mut f.other);
    // MySQL commits the raw transaction at Diesel's BEGIN; the others keep it open.
    let inside = if DB == Db::MySql { "A2" } else { "A" };
    let result = f.conn.transaction::<_, diesel::result::Error, _>(|conn| {
        // Another connection re-caches the row the raw transaction wrote, committed or not.
        assert_eq!(song_title(cache, runs, other, a)?.as_deref(), Some(inside));
        diesel::update(songs::table.find(b))
            .set(songs::title.eq("B2"))
            .execute(conn)
    });
    match DB {
        // SQLite refuses the nested BEGIN: the raw transaction is still open.
        Db::Sqlite => {
            assert!(result.is_err(), "{result:?}");
            assert_eq!(f.title(f.a).as_deref(), Some("A"), "not committed yet");
            f.run("COMMIT");
            assert_eq!(
                f.title(f.a).as_deref(),
                Some("A2"),
                "invalidated at the COMMIT"
            );
        }
        // PostgreSQL ignores the nested BEGIN (a warning): Diesel's COMMIT ends the raw
        // transaction too. MySQL commits the raw transaction at the nested BEGIN.
        Db::Postgres | Db::MySql => {
            assert_eq!(result, Ok(1));
            assert_eq!(f.title(f.a).as_deref(), Some("A2"));
            assert_eq!(f.title(f.b).as_deref(), Some("B2"));
            // Nothing left open: autocommit writes invalidate at once.
            f.run(&f.update(f.a, "A3"));
            assert_eq!(f.title(f.a).as_deref(), Some("A3"));
        }
    }
}

#[test]
fn a_failed_text_with_transaction_control_fails_safe() {
    let Some(mut f) = Fixture::new() else { return };
    assert_eq!(f.title(f.a).as_deref(), Some("A"));
    // The transaction is opened and the second statement fails: SQLite leaves the
    // transaction open, PostgreSQL leaves it aborted.
    let text = format!(
        "BEGIN; {}; UPDATE no_such_table SET x = 1",
        f.update(f.a, "A2")
    );
    assert!(f.conn.batch_execute(&text).is_err());
    f.run("ROLLBACK");
    assert_eq!(f.title(f.a).as_deref(), Some("A"));
    // On SQLite a text whose last statement fails after a COMMIT-less write: the write
    // commits with the COMMIT that follows.
    if DB == Db::Sqlite {
        f.run("BEGIN");
        let text = format!(
            "{}; UPDATE no_such_table SET x = 1; COMMIT",
            f.update(f.a, "A3")
        );
        assert!(f.conn.batch_execute(&text).is_err());
        assert_eq!(f.title(f.a).as_deref(), Some("A"));
        f.run("COMMIT");
        assert_eq!(f.title(f.a).as_deref(), Some("A3"));
    }
}

#[test]
fn an_explicit_invalidation_inside_a_transaction_applies_again_after_its_commit() {
    let Some(mut f) = Fixture::new() else { return };
    let cache = f.t.cache.clone();
    let tag = Tag::new("report:daily").unwrap();
    f.conn
        .transaction::<_, diesel::result::Error, _>(|conn| {
            assert!(invalidate_tags(conn, [tag.clone()]));
            // Another connection caches the pre-commit value meanwhile.
            cache
                .set_blocking("report", 1_u8, EntryOptions::new().tag(tag.clone()))
                .unwrap();
            assert_eq!(cache.get_blocking::<u8>("report").as_deref(), Some(&1));
            Ok(())
        })
        .unwrap();
    assert!(
        cache.get_blocking::<u8>("report").is_none(),
        "invalidated after COMMIT"
    );

    // Rolled back: the repetition is dropped.
    let _ = f.conn.transaction::<(), _, _>(|conn| {
        assert!(invalidate_tags(conn, [tag.clone()]));
        cache
            .set_blocking("report", 2_u8, EntryOptions::new().tag(tag.clone()))
            .unwrap();
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert_eq!(cache.get_blocking::<u8>("report").as_deref(), Some(&2));

    // Outside a transaction: at once.
    assert!(invalidate_tags(&mut f.conn, [tag.clone()]));
    assert!(cache.get_blocking::<u8>("report").is_none());
}

#[test]
fn a_write_by_a_database_function_declared_inside_a_transaction_is_invalidated_after_commit() {
    let function = match DB {
        Db::Postgres => {
            "CREATE FUNCTION archive_all() RETURNS void LANGUAGE plpgsql AS $$ \
             BEGIN UPDATE songs SET title = title || ' (archived)'; END $$"
        }
        Db::MySql => {
            "CREATE FUNCTION archive_all() RETURNS INT MODIFIES SQL DATA BEGIN \
             UPDATE songs SET title = CONCAT(title, ' (archived)'); RETURN 1; END"
        }
        Db::Sqlite => return, // No stored functions; the app-tag test above covers SQLite.
    };
    let Some(mut f) = Fixture::new() else { return };
    f.run(function);
    assert_eq!(f.title(f.a).as_deref(), Some("A"));
    let (a, cache, runs) = (f.a, f.t.cache.clone(), AtomicUsize::new(0));
    let mut other = f.t.conn();
    f.conn
        .transaction::<_, diesel::result::Error, _>(|conn| {
            // A SELECT the classifier reads as a read: the cache cannot see this write.
            diesel::sql_query("SELECT archive_all()").execute(conn)?;
            invalidate_tags(conn, Tag::table_write("songs"));
            // Another connection re-caches the pre-commit row.
            let before = song_title(&cache, &runs, &mut other, a)?;
            assert_eq!(before.as_deref(), Some("A"));
            Ok(())
        })
        .unwrap();
    assert_eq!(f.title(a).as_deref(), Some("A (archived)"));
}

impl Fixture {
    /// Song `id`'s title as the database holds it now (a connection of its own).
    fn stored(&self, id: i32) -> Option<String> {
        songs::table
            .find(id)
            .select(songs::title)
            .first(&mut self.t.raw())
            .optional()
            .expect("read the database")
    }

    /// The cached reads of songs A and B through the other connection agree with the
    /// database; returns what it holds.
    fn agree(&mut self, what: &str) -> (Option<String>, Option<String>) {
        let (a, b) = (self.a, self.b);
        let stored = (self.stored(a), self.stored(b));
        assert_eq!((self.title(a), self.title(b)), stored, "{what}");
        stored
    }
}

/// What MySQL keeps of `BEGIN; UPDATE A; <DDL>; UPDATE B; ROLLBACK`: the DDL committed the
/// first update, and the second ran outside any transaction. PostgreSQL and SQLite keep
/// nothing.
fn kept_after_ddl_and_rollback() -> (Option<String>, Option<String>) {
    if DB == Db::MySql {
        (Some("A2".to_owned()), Some("B2".to_owned()))
    } else {
        (Some("A".to_owned()), Some("B".to_owned()))
    }
}

#[test]
fn ddl_inside_a_raw_transaction_leaves_no_stale_entry_whatever_ends_it() {
    for close in ["ROLLBACK", "COMMIT"] {
        let Some(mut f) = Fixture::new() else { return };
        f.agree("before");
        f.run(&format!("BEGIN; {}", f.update(f.a, "A2")));
        f.agree("inside, before the DDL");
        // MySQL commits the open transaction before running it.
        f.run("CREATE TABLE early_commit (id INT PRIMARY KEY)");
        f.agree("after the DDL");
        f.run(&f.update(f.b, "B2"));
        f.agree("after the write that follows");
        f.run(close);
        let kept = f.agree(close);
        if close == "ROLLBACK" {
            assert_eq!(kept, kept_after_ddl_and_rollback(), "premise");
        } else {
            assert_eq!(kept, (Some("A2".to_owned()), Some("B2".to_owned())));
        }
        // A later transaction is followed as usual.
        f.run(&format!("BEGIN; {}", f.update(f.a, "A3")));
        f.agree("a new transaction");
        f.run("COMMIT");
        assert_eq!(f.agree("its commit").0.as_deref(), Some("A3"));
    }
}

#[test]
fn ddl_inside_diesel_s_transaction_leaves_no_stale_entry_after_its_rollback() {
    let Some(mut f) = Fixture::new() else { return };
    f.agree("before");
    let (a, b) = (f.a, f.b);
    let (cache, runs, other) = (&f.t.cache, &f.runs, &mut f.other);
    let result = f.conn.transaction::<(), diesel::result::Error, _>(|conn| {
        diesel::update(songs::table.find(a))
            .set(songs::title.eq("A2"))
            .execute(conn)?;
        diesel::sql_query("CREATE TABLE early_commit (id INT PRIMARY KEY)").execute(conn)?;
        // Another connection reads (and caches) meanwhile.
        song_title(cache, runs, other, a)?;
        song_title(cache, runs, other, b)?;
        diesel::update(songs::table.find(b))
            .set(songs::title.eq("B2"))
            .execute(conn)?;
        song_title(cache, runs, other, a)?;
        song_title(cache, runs, other, b)?;
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert_eq!(result, Err(diesel::result::Error::RollbackTransaction));
    assert_eq!(f.agree("after the rollback"), kept_after_ddl_and_rollback());
}
