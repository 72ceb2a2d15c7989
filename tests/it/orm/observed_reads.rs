//! Observed dependencies through SeaORM: a `#[cached_query]` function that declares nothing
//! (no `models`, no `row`, no `tags`) depends on what its statements read, as the
//! connection saw them — every table of a join, the row a by-id read pinned — so that a
//! write to anything it read invalidates it, and a write to anything else does not.

use std::sync::atomic::{AtomicUsize, Ordering};

use querycache::cached_query;
use querycache::orm::sea_orm::CachedConnection;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryOrder, Set,
};

use super::DB;
use crate::support::{TestDb, song, user};

/// A song's card: its title and its author's name (a join), nothing declared.
#[cached_query(ttl = "1h")]
async fn card(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
    id: i32,
) -> Result<Option<(String, String)>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    let found = song::Entity::find_by_id(id)
        .find_also_related(user::Entity)
        .one(db)
        .await?;
    Ok(found.map(|(song, author)| (song.title, author.map(|a| a.name).unwrap_or_default())))
}

/// Every song title, nothing declared.
#[cached_query(ttl = "1h")]
async fn titles(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
) -> Result<Vec<String>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    let songs = song::Entity::find()
        .order_by_asc(song::Column::Id)
        .all(db)
        .await?;
    Ok(songs.into_iter().map(|s| s.title).collect())
}

struct Fixture {
    t: TestDb,
    ann: user::Model,
    a: song::Model,
    b: song::Model,
}

impl Fixture {
    /// Songs A and B by ann, and a table `notes` that no read below reads.
    async fn new() -> Option<Fixture> {
        Self::on(crate::support::stores::Kind::Memory).await
    }

    /// [`new`](Self::new), with a cache on the store `kind`.
    async fn on(kind: crate::support::stores::Kind) -> Option<Fixture> {
        let t = TestDb::on_store(DB, kind).await?;
        t.db.execute_unprepared("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
            .await
            .unwrap();
        let ann = t.user("ann").await;
        let a = t.song(&ann, "A").await;
        let b = t.song(&ann, "B").await;
        Some(Fixture { t, ann, a, b })
    }

    async fn rename_song(&self, song: &song::Model, title: &str) {
        let mut active = song.clone().into_active_model();
        active.title = Set(title.to_owned());
        active.update(&self.t.db).await.unwrap();
    }

    async fn rename_user(&self, name: &str) {
        let mut active = self.ann.clone().into_active_model();
        active.name = Set(name.to_owned());
        active.update(&self.t.db).await.unwrap();
    }

    async fn write_a_note(&self) {
        self.t
            .db
            .execute_unprepared("INSERT INTO notes (id, body) VALUES (1, 'unrelated')")
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_join_with_nothing_declared_depends_on_both_tables_and_its_row() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let runs = AtomicUsize::new(0);
    let read = || card(&f.t.db, &runs, f.a.id);
    let ran = || runs.load(Ordering::SeqCst);

    assert_eq!(read().await.unwrap(), Some(("A".into(), "ann".into())));
    assert_eq!(read().await.unwrap(), Some(("A".into(), "ann".into())));
    assert_eq!(ran(), 1, "cached although nothing was declared");

    f.write_a_note().await;
    f.rename_song(&f.b, "B2").await;
    assert_eq!(read().await.unwrap(), Some(("A".into(), "ann".into())));
    assert_eq!(
        ran(),
        1,
        "a write to a table it did not read, or to another song, leaves it"
    );

    f.rename_song(&f.a, "A2").await;
    assert_eq!(read().await.unwrap(), Some(("A2".into(), "ann".into())));
    assert_eq!(ran(), 2, "a write to the song it read invalidates it");

    f.rename_user("anne").await;
    assert_eq!(read().await.unwrap(), Some(("A2".into(), "anne".into())));
    assert_eq!(ran(), 3, "a write to the joined table invalidates it");
}

#[tokio::test]
async fn a_list_with_nothing_declared_depends_on_its_table() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let runs = AtomicUsize::new(0);
    let read = || titles(&f.t.db, &runs);

    assert_eq!(read().await.unwrap(), ["A", "B"]);
    f.write_a_note().await;
    assert_eq!(read().await.unwrap(), ["A", "B"]);
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    f.t.song(&f.ann, "C").await;
    assert_eq!(read().await.unwrap(), ["A", "B", "C"]);
    assert_eq!(runs.load(Ordering::SeqCst), 2);

    f.rename_song(&f.b, "B2").await;
    assert_eq!(read().await.unwrap(), ["A", "B2", "C"]);
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

/// A song's author's name; when `race` is set, renames the author through the same
/// connection right after reading (a write that commits while the computation runs).
#[cached_query(ttl = "1h")]
async fn author_racing_a_rename(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
    #[cache_skip] race: &std::sync::atomic::AtomicBool,
    id: i32,
) -> Result<Option<String>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    let found = song::Entity::find_by_id(id)
        .find_also_related(user::Entity)
        .one(db)
        .await?;
    let author = found.and_then(|(_, author)| author);
    if let Some(author) = &author
        && race.swap(false, Ordering::SeqCst)
    {
        let mut active = author.clone().into_active_model();
        active.name = Set(format!("{}!", author.name));
        active.update(db).await?;
    }
    Ok(author.map(|a| a.name))
}

#[tokio::test]
async fn a_write_that_commits_after_an_observed_read_is_never_served_stale() {
    // Invariant 2 for observed tags: the versions of what a statement reads are taken
    // before it runs, so a write committed after it makes the value born stale.
    let Some(f) = Fixture::new().await else {
        return;
    };
    let runs = AtomicUsize::new(0);
    let race = std::sync::atomic::AtomicBool::new(true);
    let read = || author_racing_a_rename(&f.t.db, &runs, &race, f.a.id);

    assert_eq!(read().await.unwrap().as_deref(), Some("ann"));
    assert_eq!(
        read().await.unwrap().as_deref(),
        Some("ann!"),
        "the value read before the rename was not stored under versions after it"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(read().await.unwrap().as_deref(), Some("ann!"));
    assert_eq!(runs.load(Ordering::SeqCst), 2, "the second value is cached");
}

/// A song's author's name, through another cached function: nothing declared on either.
#[cached_query(ttl = "1h")]
async fn author_name(db: &CachedConnection, id: i32) -> Result<Option<String>, DbErr> {
    Ok(user::Entity::find_by_id(id).one(db).await?.map(|u| u.name))
}

/// A song's title and, through [`author_name`], its author's name.
#[cached_query(ttl = "1h")]
async fn title_and_author(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
    id: i32,
) -> Result<Option<String>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    let Some(song) = song::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let author = author_name(db, song.author_id).await?.unwrap_or_default();
    Ok(Some(format!("{} by {author}", song.title)))
}

/// Runs `scenario` on a current-thread runtime on a thread of its own with a 16 MiB stack:
/// two levels of cached SeaORM functions take 3-4 MiB of stack in a debug build (each level
/// of the read path and SeaORM's query futures, polled inside the one around it), more than
/// a test thread's 2 MiB. Release builds need a fraction of it; the README's Limits say so.
fn on_a_big_stack<F>(scenario: impl FnOnce() -> F + Send + 'static)
where
    F: std::future::Future<Output = ()>,
{
    std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(scenario())
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn a_cached_function_depends_on_what_the_cached_functions_it_calls_read() {
    on_a_big_stack(nested_scenario);
}

async fn nested_scenario() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    // The inner function is cached first: the outer computation must not take its hit
    // without its dependencies.
    assert_eq!(
        author_name(&f.t.db, f.ann.id).await.unwrap().as_deref(),
        Some("ann")
    );
    let runs = AtomicUsize::new(0);
    let read = || title_and_author(&f.t.db, &runs, f.a.id);
    assert_eq!(read().await.unwrap().as_deref(), Some("A by ann"));
    assert_eq!(read().await.unwrap().as_deref(), Some("A by ann"));
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    f.rename_user("anne").await;
    assert_eq!(
        read().await.unwrap().as_deref(),
        Some("A by anne"),
        "a write to what only the inner function read invalidates the outer one"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    f.rename_song(&f.b, "B2").await;
    assert_eq!(read().await.unwrap().as_deref(), Some("A by anne"));
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "another song's write leaves it"
    );
}

/// A song's author's name, through a cached function that counts its runs.
#[cached_query(ttl = "1h")]
async fn counted_author(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
    id: i32,
) -> Result<Option<String>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    Ok(user::Entity::find_by_id(id).one(db).await?.map(|u| u.name))
}

/// A song's title and, through [`counted_author`], its author's name.
#[cached_query(ttl = "1h")]
async fn counted_card(
    db: &CachedConnection,
    #[cache_skip] runs: &AtomicUsize,
    #[cache_skip] inner_runs: &AtomicUsize,
    id: i32,
) -> Result<Option<String>, DbErr> {
    runs.fetch_add(1, Ordering::SeqCst);
    let Some(song) = song::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let author = counted_author(db, inner_runs, song.author_id)
        .await?
        .unwrap_or_default();
    Ok(Some(format!("{} by {author}", song.title)))
}

/// An inner hit is used by the outer computation, which takes on the versions it was
/// computed under: a write to what only the inner function read still invalidates the
/// outer entry. On every store.
#[test]
fn an_inner_hit_is_used_and_contributes_the_versions_it_was_computed_under() {
    on_a_big_stack(|| async {
        use crate::support::stores::Kind;
        for kind in [Kind::Memory, Kind::Redis, Kind::Tiered] {
            inner_hit_scenario(kind).await;
        }
    });
}

async fn inner_hit_scenario(kind: crate::support::stores::Kind) {
    let Some(f) = Fixture::on(kind).await else {
        return;
    };
    let (runs, inner_runs) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let ran = || {
        (
            runs.load(Ordering::SeqCst),
            inner_runs.load(Ordering::SeqCst),
        )
    };
    let read = || counted_card(&f.t.db, &runs, &inner_runs, f.a.id);
    let author = || counted_author(&f.t.db, &inner_runs, f.ann.id);

    assert_eq!(author().await.unwrap().as_deref(), Some("ann"));
    assert_eq!(read().await.unwrap().as_deref(), Some("A by ann"));
    assert_eq!(
        ran(),
        (1, 1),
        "{kind:?}: the outer computation used the inner hit"
    );
    assert_eq!(read().await.unwrap().as_deref(), Some("A by ann"));
    assert_eq!(ran(), (1, 1), "{kind:?}: the outer entry is cached");

    f.rename_user("anne").await;
    assert_eq!(
        read().await.unwrap().as_deref(),
        Some("A by anne"),
        "{kind:?}: a write to what only the inner hit read invalidates the outer entry"
    );
    assert_eq!(ran(), (2, 2), "{kind:?}");
    f.rename_song(&f.b, "B2").await;
    assert_eq!(read().await.unwrap().as_deref(), Some("A by anne"));
    assert_eq!(ran(), (2, 2), "{kind:?}: another song's write leaves both");

    // The inner entry cached on its own again; the outer one invalidated by its own read.
    assert_eq!(author().await.unwrap().as_deref(), Some("anne"));
    assert_eq!(
        ran(),
        (2, 3),
        "{kind:?}: computed in the outer scope, it was not stored"
    );
    f.rename_song(&f.a, "A2").await;
    assert_eq!(read().await.unwrap().as_deref(), Some("A2 by anne"));
    assert_eq!(
        ran(),
        (3, 3),
        "{kind:?}: the inner hit served the recomputation"
    );
}
