//! Per-query caching (`.cached(&db)`, `orm::sea_orm::CacheQueryExt`) against a real database
//! (`super::DB`), tested as `#[cached_query]` is: a miss then a hit, invalidation by every
//! table a join reads, row precision, bulk writes, transactions, bound values, TTL and
//! stale-while-revalidate on a manual clock; `.stream(&db)`; `invalidate_model` and
//! `invalidate_row`.
//!
//! "Ran the query" is the cache's count of computations; each read's value is checked
//! against what the database holds, so a stale answer fails the test whatever the counters.

use std::time::Duration;

use futures_util::TryStreamExt;
use querycache::orm::sea_orm::{CacheQueryExt, CachedConnection};
use querycache::testing::ManualClock;
use querycache::{Cache, EntryOptions, Tag};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect, Set, StreamTrait, TransactionTrait,
};

use super::DB;
use crate::support::{TestDb, song, until, user};

/// Songs "A" and "B" by ann.
struct Fixture {
    t: TestDb,
    ann: user::Model,
    a: song::Model,
    b: song::Model,
}

impl Fixture {
    async fn new() -> Option<Fixture> {
        Self::with_cache(Cache::new()).await
    }

    async fn with_cache(cache: Cache) -> Option<Fixture> {
        let t = TestDb::create(DB, cache).await?;
        let ann = t.user("ann").await;
        let a = t.song(&ann, "A").await;
        let b = t.song(&ann, "B").await;
        Some(Fixture { t, ann, a, b })
    }

    fn db(&self) -> &CachedConnection {
        &self.t.db
    }

    /// How many times the cache has computed a value (run a query) so far.
    fn computed(&self) -> u64 {
        self.t.cache.stats().computations
    }

    /// The title of song `id`, read through the cache.
    async fn title(&self, id: i32) -> Option<String> {
        song::Entity::find_by_id(id)
            .cached(self.db())
            .ttl(Duration::from_secs(3600))
            .one()
            .await
            .unwrap()
            .map(|s| s.title)
    }

    /// Every title, read through the cache.
    async fn titles(&self) -> Vec<String> {
        song::Entity::find()
            .order_by_asc(song::Column::Id)
            .cached(self.db())
            .ttl(Duration::from_secs(3600))
            .all()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.title)
            .collect()
    }

    async fn rename_song(&self, song: &song::Model, title: &str) {
        let mut active = song.clone().into_active_model();
        active.title = Set(title.to_owned());
        active.update(self.db()).await.unwrap();
    }

    async fn rename_user(&self, name: &str) {
        let mut active = self.ann.clone().into_active_model();
        active.name = Set(name.to_owned());
        active.update(self.db()).await.unwrap();
    }
}

#[tokio::test]
async fn a_miss_then_a_hit_and_each_shape_and_value_is_its_own_entry() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let before = f.computed();
    assert_eq!(f.title(f.a.id).await.as_deref(), Some("A"));
    assert_eq!(f.computed() - before, 1, "a miss runs the query");
    assert_eq!(f.title(f.a.id).await.as_deref(), Some("A"));
    assert_eq!(f.computed() - before, 1, "a hit does not");
    assert!(f.t.cache.stats().hits >= 1);

    // Another bound value: another entry, with its own answer.
    assert_eq!(f.title(f.b.id).await.as_deref(), Some("B"));
    assert_eq!(f.computed() - before, 2);
    assert_eq!(f.title(f.b.id).await.as_deref(), Some("B"));
    assert_eq!(f.computed() - before, 2);

    // The same query read as a list: another shape, another entry.
    let all = song::Entity::find_by_id(f.a.id)
        .cached(f.db())
        .all()
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(
        f.computed() - before,
        3,
        "`all` does not share `one`'s entry"
    );

    // The same SQL decoded as another type: another entry.
    let titles = song::Entity::find_by_id(f.a.id)
        .select_only()
        .column(song::Column::Title)
        .into_tuple::<String>()
        .cached(f.db())
        .all()
        .await
        .unwrap();
    let json = song::Entity::find_by_id(f.a.id)
        .select_only()
        .column(song::Column::Title)
        .into_json()
        .cached(f.db())
        .all()
        .await
        .unwrap();
    assert_eq!(titles, ["A"]);
    assert_eq!(json.len(), 1);
    assert_eq!(json[0]["title"], "A", "{json:?}");
    assert_eq!(f.computed() - before, 5, "two decodings, two entries");
}

#[tokio::test]
async fn a_by_id_read_survives_a_write_to_another_row_not_to_its_own_or_a_bulk_write() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    assert_eq!(f.title(f.a.id).await.as_deref(), Some("A"));
    assert_eq!(f.title(f.b.id).await.as_deref(), Some("B"));
    let before = f.computed();

    f.rename_song(&f.b, "B2").await;
    assert_eq!(f.title(f.a.id).await.as_deref(), Some("A"));
    assert_eq!(
        f.computed(),
        before,
        "a write to song B leaves song A's entry"
    );
    assert_eq!(f.title(f.b.id).await.as_deref(), Some("B2"));
    assert_eq!(f.computed(), before + 1, "and invalidates B's");

    f.rename_song(&f.a, "A2").await;
    assert_eq!(f.title(f.a.id).await.as_deref(), Some("A2"));
    assert_eq!(
        f.computed(),
        before + 2,
        "a write to song A invalidates A's"
    );

    // A bulk write (rows not known) reaches every by-id entry.
    song::Entity::update_many()
        .col_expr(song::Column::Artist, Expr::value("everyone"))
        .filter(song::Column::Archived.eq(false))
        .exec(f.db())
        .await
        .unwrap();
    let a = song::Entity::find_by_id(f.a.id)
        .cached(f.db())
        .ttl(Duration::from_secs(3600))
        .one()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.artist, "everyone");
    assert_eq!(f.title(f.b.id).await.as_deref(), Some("B2"));
    assert_eq!(
        f.computed(),
        before + 4,
        "both by-id entries computed again"
    );
}

#[tokio::test]
async fn a_list_and_a_count_depend_on_the_table() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let count = || song::Entity::find().cached(f.db()).count();
    assert_eq!(f.titles().await, ["A", "B"]);
    assert_eq!(count().await.unwrap(), 2);
    let before = f.computed();
    assert_eq!(f.titles().await, ["A", "B"]);
    assert_eq!(count().await.unwrap(), 2);
    assert_eq!(f.computed(), before, "both hits");

    f.t.song(&f.ann, "C").await;
    assert_eq!(f.titles().await, ["A", "B", "C"]);
    assert_eq!(count().await.unwrap(), 3);
    assert_eq!(f.computed(), before + 2, "an insert invalidates both");
}

#[tokio::test]
async fn a_join_depends_on_each_table_it_reads() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    // SelectTwo: a song and its author.
    let card = || async {
        let (song, author) = song::Entity::find_by_id(f.a.id)
            .find_also_related(user::Entity)
            .cached(f.db())
            .ttl(Duration::from_secs(3600))
            .one()
            .await
            .unwrap()
            .unwrap();
        (song.title, author.unwrap().name)
    };
    // SelectTwoMany: every author with their songs.
    let shelves = || async {
        user::Entity::find()
            .find_with_related(song::Entity)
            .cached(f.db())
            .ttl(Duration::from_secs(3600))
            .all()
            .await
            .unwrap()
            .into_iter()
            .map(|(user, songs)| (user.name, songs.len()))
            .collect::<Vec<_>>()
    };
    assert_eq!(card().await, ("A".into(), "ann".into()));
    assert_eq!(shelves().await, [("ann".to_owned(), 2)]);
    let before = f.computed();
    assert_eq!(card().await, ("A".into(), "ann".into()));
    assert_eq!(shelves().await, [("ann".to_owned(), 2)]);
    assert_eq!(f.computed(), before, "hits");

    f.rename_song(&f.b, "B2").await;
    assert_eq!(card().await, ("A".into(), "ann".into()));
    assert_eq!(
        f.computed(),
        before,
        "the card pinned song A: a write to song B leaves it"
    );
    assert_eq!(shelves().await, [("ann".to_owned(), 2)]);
    assert_eq!(f.computed(), before + 1, "the shelves read every song");

    f.rename_user("anne").await;
    assert_eq!(card().await, ("A".into(), "anne".into()));
    assert_eq!(shelves().await, [("anne".to_owned(), 2)]);
    assert_eq!(
        f.computed(),
        before + 3,
        "a write to the joined table invalidates both"
    );

    f.rename_song(&f.a, "A2").await;
    assert_eq!(card().await, ("A2".into(), "anne".into()));
    f.t.song(&f.ann, "C").await;
    assert_eq!(shelves().await, [("anne".to_owned(), 3)]);
    assert_eq!(
        f.computed(),
        before + 5,
        "a write to the songs each read invalidates it"
    );
}

#[tokio::test]
async fn writes_in_a_transaction_invalidate_at_commit_and_a_rollback_changes_nothing() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    assert_eq!(f.title(f.a.id).await.as_deref(), Some("A"));
    let before = f.computed();

    // Rolled back: the entry stays, and still holds what the database holds.
    let tx = f.db().begin().await.unwrap();
    let mut active = f.a.clone().into_active_model();
    active.title = Set("rolled back".into());
    active.update(&tx).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(f.title(f.a.id).await.as_deref(), Some("A"));
    assert_eq!(f.computed(), before, "a rollback invalidates nothing");

    // Committed: not before the commit, at once after it.
    let tx = f.db().begin().await.unwrap();
    let mut active = f.a.clone().into_active_model();
    active.title = Set("committed".into());
    active.update(&tx).await.unwrap();
    assert_eq!(
        f.title(f.a.id).await.as_deref(),
        Some("A"),
        "other readers see the committed row until the commit"
    );
    tx.commit().await.unwrap();
    assert_eq!(f.title(f.a.id).await.as_deref(), Some("committed"));
    assert_eq!(f.computed(), before + 1);
}

#[tokio::test]
async fn a_read_in_a_transaction_is_served_while_it_has_not_written_and_never_stale_after() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    assert_eq!(f.title(f.a.id).await.as_deref(), Some("A"));
    let hits = f.t.cache.stats().hits;
    let sets = f.t.cache.stats().sets;

    let tx = f.db().begin().await.unwrap();
    let in_tx = |id: i32| {
        let tx = &tx;
        async move {
            song::Entity::find_by_id(id)
                .cached(tx)
                .ttl(Duration::from_secs(3600))
                .one()
                .await
                .unwrap()
                .map(|s| s.title)
        }
    };
    assert_eq!(in_tx(f.a.id).await.as_deref(), Some("A"));
    assert_eq!(
        f.t.cache.stats().hits,
        hits + 1,
        "nothing written yet: served"
    );
    assert_eq!(in_tx(f.b.id).await.as_deref(), Some("B"));
    assert_eq!(
        f.t.cache.stats().sets,
        sets,
        "a read in a transaction stores nothing"
    );

    let mut active = f.a.clone().into_active_model();
    active.title = Set("mine".into());
    active.update(&tx).await.unwrap();
    assert_eq!(
        in_tx(f.a.id).await.as_deref(),
        Some("mine"),
        "after its write the transaction reads its own row, not the cached one"
    );
    tx.commit().await.unwrap();
    assert_eq!(f.title(f.a.id).await.as_deref(), Some("mine"));
}

#[tokio::test]
async fn ttl_and_stale_while_revalidate_follow_the_clock() {
    let clock = ManualClock::new();
    let cache = Cache::builder().clock(clock.clone()).build().unwrap();
    let Some(f) = Fixture::with_cache(cache).await else {
        return;
    };
    // Writes through the unwrapped connection are not seen: only time ends these entries.
    let rename_unseen = |id: i32, title: &'static str| {
        let raw = f.t.raw.clone();
        async move {
            song::Entity::update_many()
                .col_expr(song::Column::Title, Expr::value(title))
                .filter(song::Column::Id.eq(id))
                .exec(&raw)
                .await
                .unwrap();
        }
    };
    let ttl_only = || async {
        song::Entity::find_by_id(f.a.id)
            .cached(f.db())
            .ttl(Duration::from_secs(10))
            .one()
            .await
            .unwrap()
            .map(|s| s.title)
    };
    assert_eq!(ttl_only().await.as_deref(), Some("A"));
    rename_unseen(f.a.id, "A2").await;
    clock.advance(Duration::from_secs(9));
    assert_eq!(ttl_only().await.as_deref(), Some("A"), "within its TTL");
    clock.advance(Duration::from_secs(2));
    assert_eq!(ttl_only().await.as_deref(), Some("A2"), "past it: computed");

    let swr = || async {
        song::Entity::find_by_id(f.b.id)
            .cached(f.db())
            .ttl(Duration::from_secs(10))
            .swr(Duration::from_secs(60))
            .one()
            .await
            .unwrap()
            .map(|s| s.title)
    };
    assert_eq!(swr().await.as_deref(), Some("B"));
    rename_unseen(f.b.id, "B2").await;
    clock.advance(Duration::from_secs(11));
    assert_eq!(
        swr().await.as_deref(),
        Some("B"),
        "past the TTL, within the window: the stale value, at once"
    );
    until(
        Duration::from_secs(10),
        "the background refresh",
        async || swr().await.as_deref() == Some("B2"),
    )
    .await;
    assert!(f.t.cache.stats().stale_served >= 1);
    clock.advance(Duration::from_secs(100));
    rename_unseen(f.b.id, "B3").await;
    assert_eq!(
        swr().await.as_deref(),
        Some("B3"),
        "past the window: computed while the caller waits"
    );
}

#[tokio::test]
async fn stale_while_revalidate_never_serves_an_invalidated_value() {
    let clock = ManualClock::new();
    let cache = Cache::builder().clock(clock.clone()).build().unwrap();
    let Some(f) = Fixture::with_cache(cache).await else {
        return;
    };
    let swr = || async {
        song::Entity::find_by_id(f.a.id)
            .cached(f.db())
            .options(
                EntryOptions::new()
                    .ttl(Duration::from_secs(10))
                    .swr(Duration::from_secs(60)),
            )
            .one()
            .await
            .unwrap()
            .map(|s| s.title)
    };
    assert_eq!(swr().await.as_deref(), Some("A"));
    clock.advance(Duration::from_secs(11));
    f.rename_song(&f.a, "A2").await;
    assert_eq!(
        swr().await.as_deref(),
        Some("A2"),
        "invalidated is dead, not stale"
    );
}

#[tokio::test]
async fn explicit_tags_and_namespaces() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let tagged = || async {
        song::Entity::find_by_id(f.a.id)
            .cached(f.db())
            .tag(Tag::new("featured").unwrap())
            .namespace("songs")
            .one()
            .await
            .unwrap()
    };
    tagged().await;
    let before = f.computed();
    tagged().await;
    assert_eq!(f.computed(), before);
    assert!(
        f.t.cache.stats().namespaces.contains_key("songs"),
        "counted in its namespace"
    );
    f.t.cache
        .invalidate_tags([Tag::new("featured").unwrap()])
        .await;
    tagged().await;
    assert_eq!(f.computed(), before + 1, "an explicit tag invalidates it");

    assert_eq!(f.title(f.a.id).await.as_deref(), Some("A"));
    let before = f.computed();
    f.t.cache.invalidate_namespace("query").await;
    assert_eq!(f.title(f.a.id).await.as_deref(), Some("A"));
    assert_eq!(f.computed(), before + 1, "the default namespace is `query`");
}

#[tokio::test]
async fn invalidate_model_and_invalidate_row_bump_what_a_write_would() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let author = || async {
        user::Entity::find_by_id(f.ann.id)
            .cached(f.db())
            .one()
            .await
            .unwrap()
            .map(|u| u.name)
    };
    assert_eq!(author().await.as_deref(), Some("ann"));
    assert_eq!(f.title(f.a.id).await.as_deref(), Some("A"));
    assert_eq!(f.title(f.b.id).await.as_deref(), Some("B"));
    assert_eq!(f.titles().await, ["A", "B"]);
    let before = f.computed();

    assert!(f.db().invalidate_row::<song::Entity>(f.b.id).await > 0);
    assert_eq!(f.title(f.a.id).await.as_deref(), Some("A"));
    assert_eq!(author().await.as_deref(), Some("ann"));
    assert_eq!(f.computed(), before, "song A's entry and the author's stay");
    assert_eq!(f.title(f.b.id).await.as_deref(), Some("B"));
    assert_eq!(f.titles().await, ["A", "B"]);
    assert_eq!(
        f.computed(),
        before + 2,
        "song B's and the list are computed again"
    );

    f.db().invalidate_model::<song::Entity>().await;
    assert_eq!(author().await.as_deref(), Some("ann"));
    assert_eq!(f.computed(), before + 2, "another table: the author stays");
    assert_eq!(f.title(f.a.id).await.as_deref(), Some("A"));
    assert_eq!(f.title(f.b.id).await.as_deref(), Some("B"));
    assert_eq!(f.titles().await, ["A", "B"]);
    assert_eq!(f.computed(), before + 5, "every entry of the table");

    // `songs.author_id` references users ON DELETE CASCADE: a write to users may delete
    // songs, so it invalidates what read songs too, as the write itself would.
    f.db().invalidate_row::<user::Entity>(f.ann.id).await;
    assert_eq!(author().await.as_deref(), Some("ann"));
    assert_eq!(f.title(f.a.id).await.as_deref(), Some("A"));
    assert_eq!(f.computed(), before + 7, "the row and the cascade");
    let deleted = user::Entity::delete_by_id(f.ann.id)
        .exec(f.db())
        .await
        .unwrap();
    assert_eq!(deleted.rows_affected, 1);
    assert_eq!(author().await, None);
    assert_eq!(f.title(f.a.id).await, None, "the cascade deleted song A");
}

#[tokio::test]
async fn streams_work_and_are_observed_reads() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let streamed: Vec<song::Model> = song::Entity::find()
        .order_by_asc(song::Column::Id)
        .stream(f.db())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed, [f.a.clone(), f.b.clone()]);

    // A computation that streams depends on what it streamed.
    let count_by_stream = || {
        let db = f.db().clone();
        f.t.cache
            .try_get_or_compute("streamed", EntryOptions::new(), move || async move {
                let rows: Vec<song::Model> = song::Entity::find()
                    .stream(&db)
                    .await?
                    .try_collect()
                    .await?;
                Ok::<_, sea_orm::DbErr>(rows.len())
            })
    };
    assert_eq!(*count_by_stream().await.unwrap(), 2);
    let before = f.computed();
    assert_eq!(*count_by_stream().await.unwrap(), 2);
    assert_eq!(f.computed(), before, "a hit");
    f.t.song(&f.ann, "C").await;
    assert_eq!(
        *count_by_stream().await.unwrap(),
        3,
        "the insert invalidated it"
    );

    // A write cannot be streamed through the connection...
    let write = f.t.statement(
        "UPDATE songs SET title = ? WHERE id = ?",
        ["x".into(), f.a.id.into()],
    );
    let refused = f.db().stream_raw(write.clone()).await;
    assert!(refused.is_err(), "refused");
    assert_eq!(f.title(f.a.id).await.as_deref(), Some("A"), "and not run");

    // ...and in a transaction, streams read its rows, and a streamed write is recorded.
    let tx = f.db().begin().await.unwrap();
    let in_tx: Vec<song::Model> = song::Entity::find()
        .stream(&tx)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(in_tx.len(), 3);
    let rows: Vec<_> = tx
        .stream_raw(write)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(rows.is_empty());
    tx.commit().await.unwrap();
    assert_eq!(
        f.title(f.a.id).await.as_deref(),
        Some("x"),
        "the streamed write invalidated at commit"
    );
}
