//! One database shared by SeaORM and Diesel, with one cache: each ORM's writes invalidate
//! the other's cached reads, since both name tables with the same `model:<table>` tags.

use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::prelude::*;

use super::DB;
use crate::support::diesel::DieselDb;
use crate::support::diesel::reads::song_title as title;
use crate::support::diesel::schema::songs;
use crate::support::stores::Kind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seaorm_writes_invalidate_diesel_reads_and_the_reverse() {
    use sea_orm::{ActiveModelTrait, EntityTrait, Set};

    let Some(t) = crate::support::TestDb::on_store(DB, Kind::Memory).await else {
        return;
    };
    let author = t.user("ann").await;
    let song = t.song(&author, "A").await;
    let diesel_db = DieselDb::attach(DB, t.diesel_url(), t.cache.clone());
    let runs = AtomicUsize::new(0);

    // Diesel reads (cached), SeaORM writes. Diesel's sync API leaves the worker first.
    let diesel_read = || {
        tokio::task::block_in_place(|| {
            let mut conn = diesel_db.conn();
            title(&diesel_db.cache, &runs, &mut conn, song.id).unwrap()
        })
    };
    let first = diesel_read();
    let again = diesel_read();
    assert_eq!((first.as_deref(), again.as_deref()), (Some("A"), Some("A")));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    crate::support::song::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(song.id),
        title: Set("from SeaORM".into()),
        ..Default::default()
    }
    .update(&t.db)
    .await
    .unwrap();
    let after = diesel_read();
    assert_eq!(after.as_deref(), Some("from SeaORM"));
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "the SeaORM write invalidated the Diesel read"
    );

    // SeaORM reads (cached), Diesel writes.
    let sea_runs = AtomicUsize::new(0);
    let sea_read = || async {
        t.cache
            .try_get_or_compute(
                &format!("sea:song:{}", song.id),
                querycache::EntryOptions::new()
                    .tag(querycache::Tag::row("songs", song.id))
                    .tag(querycache::Tag::bulk("songs")),
                || async {
                    sea_runs.fetch_add(1, Ordering::SeqCst);
                    crate::support::song::Entity::find_by_id(song.id)
                        .one(&t.db)
                        .await
                        .map(|s| s.map(|s| s.title))
                },
            )
            .await
            .unwrap()
    };
    assert_eq!(sea_read().await.as_deref(), Some("from SeaORM"));
    assert_eq!(sea_read().await.as_deref(), Some("from SeaORM"));
    assert_eq!(sea_runs.load(Ordering::SeqCst), 1);
    tokio::task::block_in_place(|| {
        let mut conn = diesel_db.conn();
        diesel::update(songs::table.find(song.id))
            .set(songs::title.eq("from Diesel"))
            .execute(&mut conn)
            .unwrap();
    });
    assert_eq!(sea_read().await.as_deref(), Some("from Diesel"));
    assert_eq!(
        sea_runs.load(Ordering::SeqCst),
        2,
        "the Diesel write invalidated the SeaORM read"
    );
}
