//! The related-loading APIs of SeaORM, observed (issue 22 item 7): a `#[cached_query]`
//! function that declares nothing and loads through `find_with_related`,
//! `find_also_related`, `LoaderTrait::load_one` / `load_many`, a `Paginator`, `.count()`,
//! `select_only().column_as(..)`, `find_by_statement`, `from_raw_sql` or
//! `into_partial_model` depends on every table each of its statements read — and on the
//! rows only, where a statement pinned them by primary key.
//!
//! Each form is checked by [`check`]: after each write of [`Write::ALL`], one read, which
//! must be a miss exactly when the form read what was written (its runs are counted).

use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};

use querycache::cached_query;
use querycache::orm::sea_orm::CachedConnection;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, DerivePartialModel, EntityTrait, FromQueryResult,
    JoinType, LoaderTrait, ModelTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    RelationTrait,
};

use super::DB;
use crate::support::{TestDb, song, user};

/// The writes each form is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// A row of `notes`, a table no form reads.
    Note,
    /// Song A (ann's): read by the forms that pin it or read the songs table.
    SongA,
    /// Song C (bob's): another row of `songs`.
    SongC,
    /// ann, the author of A and B.
    Ann,
    /// cat, who wrote nothing: another row of `users`.
    Cat,
}

impl Write {
    const ALL: [Write; 5] = [
        Write::Note,
        Write::SongA,
        Write::SongC,
        Write::Ann,
        Write::Cat,
    ];
}

/// ann wrote songs A and B, bob song C, cat nothing; `notes` is read by no form.
struct Fixture {
    t: TestDb,
    ann: user::Model,
    bob: user::Model,
    cat: user::Model,
    a: song::Model,
    c: song::Model,
    writes: AtomicUsize,
}

impl Fixture {
    async fn new() -> Option<Fixture> {
        let t = TestDb::fresh(DB).await?;
        t.db.execute_unprepared("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
            .await
            .unwrap();
        let ann = t.user("ann").await;
        let bob = t.user("bob").await;
        let cat = t.user("cat").await;
        let a = t.song(&ann, "A").await;
        t.song(&ann, "B").await;
        let c = t.song(&bob, "C").await;
        Some(Fixture {
            t,
            ann,
            bob,
            cat,
            a,
            c,
            writes: AtomicUsize::new(0),
        })
    }

    /// Makes `write` through the cached connection (each time a new value).
    async fn write(&self, write: Write) {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) as i32 + 1;
        let (sql, values): (&str, Vec<sea_orm::Value>) = match write {
            Write::Note => (
                "INSERT INTO notes (id, body) VALUES (?, 'unrelated')",
                vec![n.into()],
            ),
            Write::SongA => (
                "UPDATE songs SET title = ? WHERE id = ?",
                vec![format!("A{n}").into(), self.a.id.into()],
            ),
            Write::SongC => (
                "UPDATE songs SET title = ? WHERE id = ?",
                vec![format!("C{n}").into(), self.c.id.into()],
            ),
            Write::Ann => (
                "UPDATE users SET name = ? WHERE id = ?",
                vec![format!("ann{n}").into(), self.ann.id.into()],
            ),
            Write::Cat => (
                "UPDATE users SET name = ? WHERE id = ?",
                vec![format!("cat{n}").into(), self.cat.id.into()],
            ),
        };
        self.t
            .db
            .execute_raw(self.t.statement(sql, values))
            .await
            .unwrap_or_else(|e| panic!("write {write:?}: {e}"));
    }
}

/// Checks one form: `read` (a cached call counting its runs in `runs`) is a hit when
/// repeated, then after each write of [`Write::ALL`] a miss exactly when that write is in
/// `invalidated_by`. Every mismatch is reported, naming the form and the write.
async fn check<T: Debug>(
    f: &Fixture,
    form: &str,
    runs: &AtomicUsize,
    invalidated_by: &[Write],
    read: impl AsyncFn() -> Result<T, DbErr>,
) {
    let read = async || {
        read()
            .await
            .unwrap_or_else(|e| panic!("{form}: the read failed: {e}"))
    };
    let ran = || runs.load(Ordering::SeqCst);
    read().await;
    let before = ran();
    read().await;
    assert_eq!(
        ran(),
        before,
        "{form}: a repeated read is a hit although nothing was declared"
    );
    let mut wrong = Vec::new();
    for write in Write::ALL {
        let before = ran();
        f.write(write).await;
        let value = read().await;
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
        read().await;
        if ran() != after {
            wrong.push(format!(
                "after a write to {write:?}: the next read is a miss too"
            ));
        }
    }
    assert!(wrong.is_empty(), "{form}:\n  {}", wrong.join("\n  "));
}

/// A song and its author: `SELECT .. FROM songs LEFT JOIN users .. WHERE songs.id = ?`.
#[cached_query(ttl = "1h")]
async fn also_related(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
    id: i32,
) -> Result<Option<(String, Option<String>)>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    let found = song::Entity::find_by_id(id)
        .find_also_related(user::Entity)
        .one(db)
        .await?;
    Ok(found.map(|(s, u)| (s.title, u.map(|u| u.name))))
}

/// A user and their songs: `SELECT .. FROM users LEFT JOIN songs .. WHERE users.id = ?`.
#[cached_query(ttl = "1h")]
async fn with_related(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
    id: i32,
) -> Result<Vec<(String, Vec<String>)>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    let found = user::Entity::find_by_id(id)
        .find_with_related(song::Entity)
        .all(db)
        .await?;
    Ok(found
        .into_iter()
        .map(|(u, songs)| (u.name, songs.into_iter().map(|s| s.title).collect()))
        .collect())
}

/// A user's songs, then (a second statement) their authors by id: `load_one`.
#[cached_query(ttl = "1h")]
async fn loaded_authors(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
    author: i32,
) -> Result<Vec<(String, Option<String>)>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    let songs = song::Entity::find()
        .filter(song::Column::AuthorId.eq(author))
        .order_by_asc(song::Column::Id)
        .all(db)
        .await?;
    let authors = songs.load_one(user::Entity, db).await?;
    Ok(songs
        .into_iter()
        .zip(authors)
        .map(|(s, u)| (s.title, u.map(|u| u.name)))
        .collect())
}

/// Some users by id, then (a second statement) their songs: `load_many`.
#[cached_query(ttl = "1h")]
async fn loaded_songs(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
    ids: Vec<i32>,
) -> Result<Vec<(String, Vec<String>)>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    let users = user::Entity::find()
        .filter(user::Column::Id.is_in(ids))
        .order_by_asc(user::Column::Id)
        .all(db)
        .await?;
    let songs = users.load_many(song::Entity, db).await?;
    Ok(users
        .into_iter()
        .zip(songs)
        .map(|(u, songs)| (u.name, songs.into_iter().map(|s| s.title).collect()))
        .collect())
}

/// A song's author through the model: `ModelTrait::find_related` (a second statement).
#[cached_query(ttl = "1h")]
async fn related_of_model(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
    id: i32,
) -> Result<Option<String>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    let Some(song) = song::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let author = song.find_related(user::Entity).one(db).await?;
    Ok(author.map(|u| u.name))
}

/// The second page of the songs and their authors, with the page count: a `Paginator` over
/// `find_also_related` (`num_items_and_pages` and `fetch_page`: two statements).
#[cached_query(ttl = "1h")]
async fn page_of_cards(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
) -> Result<(u64, Vec<(String, Option<String>)>), DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    let pages = song::Entity::find()
        .find_also_related(user::Entity)
        .order_by_asc(song::Column::Id)
        .paginate(db, 2);
    let count = pages.num_items_and_pages().await?.number_of_pages;
    let page = pages.fetch_page(1).await?;
    Ok((
        count,
        page.into_iter()
            .map(|(s, u)| (s.title, u.map(|u| u.name)))
            .collect(),
    ))
}

/// How many songs a user wrote: a `Paginator`'s `num_items` alone.
#[cached_query(ttl = "1h")]
async fn num_items(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
    author: i32,
) -> Result<u64, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    song::Entity::find()
        .filter(song::Column::AuthorId.eq(author))
        .paginate(db, 10)
        .num_items()
        .await
}

/// How many songs a user wrote: `.count()`.
#[cached_query(ttl = "1h")]
async fn count(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
    author: i32,
) -> Result<u64, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    song::Entity::find()
        .filter(song::Column::AuthorId.eq(author))
        .count(db)
        .await
}

/// Each author's name and song count: `select_only().column_as(..)` over a join.
#[cached_query(ttl = "1h")]
async fn songs_per_author(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
) -> Result<Vec<(String, i64)>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    song::Entity::find()
        .select_only()
        .column_as(user::Column::Name, "author")
        .column_as(song::Column::Id.count(), "songs")
        .join(JoinType::InnerJoin, song::Relation::User.def())
        .group_by(user::Column::Name)
        .order_by_asc(user::Column::Name)
        .into_tuple()
        .all(db)
        .await
}

/// The titles of the songs after `after`, two at a time: cursor pagination (`cursor_by`).
#[cached_query(ttl = "1h")]
async fn titles_after(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
    after: i32,
) -> Result<Vec<String>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    let songs = song::Entity::find()
        .cursor_by(song::Column::Id)
        .after(after)
        .first(2)
        .all(db)
        .await?;
    Ok(songs.into_iter().map(|s| s.title).collect())
}

/// A song's card, from raw SQL.
#[derive(Debug, FromQueryResult)]
struct Card {
    title: String,
    author: String,
}

/// A song's card: `find_by_statement` with a raw join pinning the song.
#[cached_query(ttl = "1h")]
async fn card_by_statement(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
    id: i32,
) -> Result<Option<(String, String)>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    let card = Card::find_by_statement(DB.statement(
        "SELECT s.title AS title, u.name AS author FROM songs s \
         JOIN users u ON u.id = s.author_id WHERE s.id = ?",
        [id.into()],
    ))
    .one(db)
    .await?;
    Ok(card.map(|c| (c.title, c.author)))
}

/// A song's title: `Entity::find().from_raw_sql(..)`.
#[cached_query(ttl = "1h")]
async fn song_from_raw_sql(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
    id: i32,
) -> Result<Option<String>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    let song = song::Entity::find()
        .from_raw_sql(DB.statement("SELECT * FROM songs WHERE id = ?", [id.into()]))
        .one(db)
        .await?;
    Ok(song.map(|s| s.title))
}

#[derive(Debug, DerivePartialModel)]
#[sea_orm(entity = "song::Entity")]
struct SongTitle {
    title: String,
}

#[derive(Debug, DerivePartialModel)]
#[sea_orm(entity = "user::Entity")]
struct UserName {
    name: String,
}

/// A song's title: `into_partial_model`.
#[cached_query(ttl = "1h")]
async fn partial_song(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
    id: i32,
) -> Result<Option<String>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    let song = song::Entity::find_by_id(id)
        .into_partial_model::<SongTitle>()
        .one(db)
        .await?;
    Ok(song.map(|s| s.title))
}

/// A song's title and, nested, its author's name.
#[derive(Debug, DerivePartialModel)]
#[sea_orm(entity = "song::Entity")]
struct SongWithAuthor {
    title: String,
    #[sea_orm(nested)]
    author: UserName,
}

/// A song's title and its author's name: a join's `into_partial_model` with a nested
/// partial model.
#[cached_query(ttl = "1h")]
async fn partial_card(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
    id: i32,
) -> Result<Option<(String, String)>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    let card = song::Entity::find_by_id(id)
        .inner_join(user::Entity)
        .into_partial_model::<SongWithAuthor>()
        .one(db)
        .await?;
    Ok(card.map(|c| (c.title, c.author.name)))
}

use Write::{Ann, Cat, SongA, SongC};

#[tokio::test]
async fn find_also_related_depends_on_its_row_and_the_joined_table() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let runs = AtomicUsize::new(0);
    check(
        &f,
        "find_also_related",
        &runs,
        &[SongA, Ann, Cat],
        async || also_related(&f.t.db, &runs, f.a.id).await,
    )
    .await;
}

#[tokio::test]
async fn find_with_related_depends_on_its_row_and_the_joined_table() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let runs = AtomicUsize::new(0);
    check(
        &f,
        "find_with_related",
        &runs,
        &[SongA, SongC, Ann],
        async || with_related(&f.t.db, &runs, f.ann.id).await,
    )
    .await;
}

#[tokio::test]
async fn load_one_depends_on_both_statements() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let runs = AtomicUsize::new(0);
    check(&f, "load_one", &runs, &[SongA, SongC, Ann], async || {
        loaded_authors(&f.t.db, &runs, f.ann.id).await
    })
    .await;
}

#[tokio::test]
async fn load_many_depends_on_both_statements() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let runs = AtomicUsize::new(0);
    check(&f, "load_many", &runs, &[SongA, SongC, Ann], async || {
        loaded_songs(&f.t.db, &runs, vec![f.ann.id, f.bob.id]).await
    })
    .await;
}

#[tokio::test]
async fn find_related_of_a_model_depends_on_both_statements() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let runs = AtomicUsize::new(0);
    check(
        &f,
        "Model::find_related",
        &runs,
        &[SongA, Ann, Cat],
        async || related_of_model(&f.t.db, &runs, f.a.id).await,
    )
    .await;
}

#[tokio::test]
async fn a_paginator_depends_on_its_count_and_its_page() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let runs = AtomicUsize::new(0);
    check(
        &f,
        "Paginator::num_items_and_pages + fetch_page",
        &runs,
        &[SongA, SongC, Ann, Cat],
        async || page_of_cards(&f.t.db, &runs).await,
    )
    .await;
    let runs = AtomicUsize::new(0);
    check(
        &f,
        "Paginator::num_items",
        &runs,
        &[SongA, SongC],
        async || num_items(&f.t.db, &runs, f.ann.id).await,
    )
    .await;
}

#[tokio::test]
async fn count_depends_on_its_table() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let runs = AtomicUsize::new(0);
    check(&f, ".count()", &runs, &[SongA, SongC], async || {
        count(&f.t.db, &runs, f.bob.id).await
    })
    .await;
}

#[tokio::test]
async fn select_only_column_as_depends_on_both_tables() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let runs = AtomicUsize::new(0);
    check(
        &f,
        "select_only().column_as(..)",
        &runs,
        &[SongA, SongC, Ann, Cat],
        async || songs_per_author(&f.t.db, &runs).await,
    )
    .await;
}

#[tokio::test]
async fn raw_sql_depends_on_what_it_reads() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let runs = AtomicUsize::new(0);
    check(
        &f,
        "find_by_statement",
        &runs,
        &[SongA, Ann, Cat],
        async || card_by_statement(&f.t.db, &runs, f.a.id).await,
    )
    .await;
    let runs = AtomicUsize::new(0);
    check(&f, "from_raw_sql", &runs, &[SongA], async || {
        song_from_raw_sql(&f.t.db, &runs, f.a.id).await
    })
    .await;
}

#[tokio::test]
async fn into_partial_model_depends_on_what_it_reads() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let runs = AtomicUsize::new(0);
    check(&f, "into_partial_model", &runs, &[SongA], async || {
        partial_song(&f.t.db, &runs, f.a.id).await
    })
    .await;
    let runs = AtomicUsize::new(0);
    check(
        &f,
        "inner_join(..).into_partial_model (nested)",
        &runs,
        &[SongA, Ann, Cat],
        async || partial_card(&f.t.db, &runs, f.a.id).await,
    )
    .await;
}

#[tokio::test]
async fn cursor_pagination_depends_on_its_table() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let runs = AtomicUsize::new(0);
    check(
        &f,
        "cursor_by(..).after(..).first(..)",
        &runs,
        &[SongA, SongC],
        async || titles_after(&f.t.db, &runs, 0).await,
    )
    .await;
}
