//! Raw transaction control sent through a `CachedConnection`, on SQLite and PostgreSQL
//! (`super::DB`). The connection is a pool: a raw `BEGIN` and its `COMMIT` sent as separate
//! texts may run on different pooled connections, so they cannot be tied together exactly.
//! What must hold anyway: a write made inside a raw transaction left open is invalidated
//! again when a later text ends it (another connection re-caching the old row before COMMIT
//! must not keep it), and reads given the connection meanwhile are not stored (a pooled
//! connection inside that transaction reads uncommitted rows, which a ROLLBACK would make
//! rows that never existed). The pools here hold one connection, so that the texts share it
//! as an application sending raw `BEGIN` through a pool hopes they do.

use querycache::cached_query;
use querycache::orm::sea_orm::CachedConnection;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait};

use super::DB;
use super::common::Fixture;
use crate::support::{Db, song};

#[cached_query(ttl = "1h", models = [song::Entity], row = id, cache = db.cache())]
async fn title_by_id(db: &CachedConnection, id: i32) -> Result<Option<String>, DbErr> {
    Ok(song::Entity::find_by_id(id).one(db).await?.map(|s| s.title))
}

/// A one-connection pool on the fixture's database, invalidating its cache.
async fn one_connection(f: &Fixture) -> CachedConnection {
    CachedConnection::new(f.t.pool_of(1).await, f.t.cache.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_in_a_raw_transaction_left_open_is_invalidated_again_at_its_commit() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let db = one_connection(&f).await;
    // MySQL has neither `BEGIN TRANSACTION` nor `END`.
    let third = match DB {
        Db::MySql => (
            "START TRANSACTION; UPDATE songs SET title = 'raw 3' WHERE id = {id}",
            "COMMIT WORK",
        ),
        Db::Sqlite | Db::Postgres => (
            "BEGIN TRANSACTION; UPDATE songs SET title = 'raw 3' WHERE id = {id}",
            "END",
        ),
    };
    for (begin, end) in [
        (
            "BEGIN; UPDATE songs SET title = 'raw 1' WHERE id = {id}",
            "COMMIT -- done",
        ),
        (
            "BEGIN",
            "UPDATE songs SET title = 'raw 2' WHERE id = {id}; COMMIT",
        ),
        third,
    ] {
        let begin = begin.replace("{id}", &f.a.id.to_string());
        let end = end.replace("{id}", &f.a.id.to_string());
        let before = title_by_id(&f.t.db, f.a.id).await.expect("read");
        db.execute_unprepared(&begin).await.expect("raw begin");
        // Another connection reads the committed row, and caches it again.
        assert_eq!(title_by_id(&f.t.db, f.a.id).await.expect("read"), before);
        db.execute_unprepared(&end).await.expect("raw end");
        let stored = song::Entity::find_by_id(f.a.id)
            .one(&f.t.raw)
            .await
            .expect("read the database")
            .map(|s| s.title);
        assert_ne!(
            stored, before,
            "premise: {begin} .. {end} committed a new title"
        );
        assert_eq!(
            title_by_id(&f.t.db, f.a.id).await.expect("read"),
            stored,
            "after `{end}`, a read must see what `{begin}` wrote"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_through_a_pool_with_a_raw_transaction_open_are_not_stored() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let db = one_connection(&f).await;
    let update = format!(
        "BEGIN; UPDATE songs SET title = 'phantom' WHERE id = {}",
        f.a.id
    );
    db.execute_unprepared(&update).await.expect("raw begin");
    // The pool's one connection is inside the transaction: it reads the uncommitted row.
    assert_eq!(
        title_by_id(&db, f.a.id).await.expect("read").as_deref(),
        Some("phantom")
    );
    db.execute_unprepared("ROLLBACK").await.expect("rollback");
    assert_eq!(
        title_by_id(&f.t.db, f.a.id).await.expect("read").as_deref(),
        Some("A"),
        "the rolled-back title never existed: it must not have been cached"
    );
    assert_eq!(
        title_by_id(&db, f.a.id).await.expect("read").as_deref(),
        Some("A")
    );
}
