//! SQLite-only Diesel write forms.

use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::prelude::*;

use super::DB;
use crate::support::diesel::reads::{song_title, song_titles};
use crate::support::diesel::schema::songs;
use crate::support::diesel::{AnyConnection, DieselDb};

#[test]
fn replace_into_is_a_bulk_write() {
    let t = DieselDb::new(DB).expect("SQLite needs no server");
    let mut conn = t.conn();
    let author = t.user(&mut conn, "ann");
    let (a, b) = (
        t.song(&mut conn, author, "A"),
        t.song(&mut conn, author, "B"),
    );
    let (list_runs, id_runs) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let read = |conn: &mut AnyConnection| {
        (
            song_titles(&t.cache, &list_runs, conn).unwrap(),
            song_title(&t.cache, &id_runs, conn, a).unwrap(),
            song_title(&t.cache, &id_runs, conn, b).unwrap(),
        )
    };
    read(&mut conn);
    read(&mut conn);
    assert_eq!(
        (
            list_runs.load(Ordering::SeqCst),
            id_runs.load(Ordering::SeqCst)
        ),
        (1, 2)
    );

    let AnyConnection::Sqlite(sqlite) = &mut conn else {
        panic!("the SQLite suite runs on SQLite");
    };
    diesel::replace_into(songs::table)
        .values((
            songs::id.eq(a),
            songs::title.eq("A2"),
            songs::artist.eq("a"),
            songs::author_id.eq(author),
        ))
        .execute(sqlite)
        .unwrap();
    // REPLACE deletes every row that conflicts on *any* unique key, not only the named id:
    // the rows it touches are not known, so every by-id entry goes.
    let (list, title_a, title_b) = read(&mut conn);
    assert_eq!(
        (
            list_runs.load(Ordering::SeqCst),
            id_runs.load(Ordering::SeqCst)
        ),
        (2, 4)
    );
    assert_eq!(list, ["A2", "B"]);
    assert_eq!(
        (title_a.as_deref(), title_b.as_deref()),
        (Some("A2"), Some("B"))
    );
}
