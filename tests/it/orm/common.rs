//! What the ORM suites share, on either database (`super::DB`): reads through the cache that
//! say whether they ran the query, the song and user queries they cache, and a fixture with
//! one author and two songs whose queries are cached.

#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use querycache::orm::sea_orm::CachedConnection;
use querycache::{Cache, CacheValue, EntryOptions, Tag};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, QueryOrder};

use super::DB;
use crate::support::{Db, TestDb, song, user};

pub const SONG_LIST: &str = "songs:list";
pub const USER_LIST: &str = "users:list";

/// A value read through the cache, and whether the read ran the query (a miss).
#[derive(Debug)]
pub struct Read<T> {
    pub value: T,
    pub computed: bool,
}

impl<T> Read<T> {
    /// `(value, computed)`.
    pub fn pair(self) -> (T, bool) {
        (self.value, self.computed)
    }
}

pub async fn cached<T, Fut>(
    cache: &Cache,
    key: &str,
    options: EntryOptions,
    query: impl FnOnce() -> Fut,
) -> Read<T>
where
    T: CacheValue + Clone,
    Fut: Future<Output = Result<T, DbErr>>,
{
    let computed = AtomicBool::new(false);
    let value = cache
        .try_get_or_compute(key, options, || {
            computed.store(true, Ordering::SeqCst);
            query()
        })
        .await
        .unwrap_or_else(|e| panic!("query behind {key} failed: {e}"));
    Read {
        value: (*value).clone(),
        computed: computed.into_inner(),
    }
}

pub fn song_key(id: i32) -> String {
    format!("songs:{id}")
}

pub fn user_key(id: i32) -> String {
    format!("users:{id}")
}

/// All songs, by id: depends on the whole table.
pub async fn song_list(cache: &Cache, db: &CachedConnection) -> Read<Vec<song::Model>> {
    let options = EntryOptions::new().tag(Tag::model("songs"));
    cached(cache, SONG_LIST, options, || {
        song::Entity::find().order_by_asc(song::Column::Id).all(db)
    })
    .await
}

/// One song: depends on its row and on bulk writes to the table.
pub async fn song_by_id(
    cache: &Cache,
    db: &CachedConnection,
    id: i32,
) -> Read<Option<song::Model>> {
    let options = EntryOptions::new().tags([Tag::row("songs", id), Tag::bulk("songs")]);
    cached(cache, &song_key(id), options, || {
        song::Entity::find_by_id(id).one(db)
    })
    .await
}

pub async fn user_list(cache: &Cache, db: &CachedConnection) -> Read<Vec<user::Model>> {
    let options = EntryOptions::new().tag(Tag::model("users"));
    cached(cache, USER_LIST, options, || {
        user::Entity::find().order_by_asc(user::Column::Id).all(db)
    })
    .await
}

pub async fn user_by_id(
    cache: &Cache,
    db: &CachedConnection,
    id: i32,
) -> Read<Option<user::Model>> {
    let options = EntryOptions::new().tags([Tag::row("users", id), Tag::bulk("users")]);
    cached(cache, &user_key(id), options, || {
        user::Entity::find_by_id(id).one(db)
    })
    .await
}

pub fn titles(songs: &[song::Model]) -> Vec<&str> {
    songs.iter().map(|s| s.title.as_str()).collect()
}

pub fn title(song: &Option<song::Model>) -> Option<&str> {
    song.as_ref().map(|s| s.title.as_str())
}

/// A database with one author and songs "A" and "B", whose list and by-id queries are
/// cached (and checked to be hits).
pub struct Fixture {
    pub t: TestDb,
    pub author: user::Model,
    pub a: song::Model,
    pub b: song::Model,
}

/// The three song queries, read back through the cache.
pub struct State {
    pub list: Read<Vec<song::Model>>,
    pub a: Read<Option<song::Model>>,
    pub b: Read<Option<song::Model>>,
}

impl Fixture {
    /// On a fresh database of `DB` (`None`: no PostgreSQL here, and the test may skip).
    pub async fn new() -> Option<Fixture> {
        Some(Self::with(TestDb::fresh(DB).await?).await)
    }

    /// On a fresh database of `DB` invalidating `cache`.
    pub async fn with_cache(cache: Cache) -> Option<Fixture> {
        Some(Self::with(TestDb::create(DB, cache).await?).await)
    }

    pub async fn with(t: TestDb) -> Fixture {
        let author = t.user("ann").await;
        let a = t.song(&author, "A").await;
        let b = t.song(&author, "B").await;
        let f = Fixture { t, author, a, b };
        f.warm().await;
        f
    }

    /// Caches the three queries and checks that a second read is a hit: reads through the
    /// wrapper must not invalidate what they just stored.
    pub async fn warm(&self) {
        let first = self.state().await;
        assert_eq!(titles(&first.list.value), ["A", "B"]);
        let again = self.state().await;
        assert!(
            !again.list.computed && !again.a.computed && !again.b.computed,
            "a second read must be a hit (list {}, A {}, B {} recomputed): \
             reads through the wrapper must not invalidate",
            again.list.computed,
            again.a.computed,
            again.b.computed
        );
    }

    pub async fn state(&self) -> State {
        let (cache, db) = (&self.t.cache, &self.t.db);
        State {
            list: song_list(cache, db).await,
            a: song_by_id(cache, db, self.a.id).await,
            b: song_by_id(cache, db, self.b.id).await,
        }
    }

    pub fn db(&self) -> &CachedConnection {
        &self.t.db
    }

    pub fn new_song(&self, title: &str) -> song::ActiveModel {
        crate::support::new_song(&self.author, title)
    }

    /// Caches "song `id` does not exist" and returns `id`: the id the next inserted row gets
    /// (SQLite's AUTOINCREMENT, PostgreSQL's SERIAL sequence).
    pub async fn cache_absent_next_song(&self) -> i32 {
        let next = self.b.id + 1;
        let absent = song_by_id(&self.t.cache, self.db(), next).await;
        assert!(absent.value.is_none());
        let again = song_by_id(&self.t.cache, self.db(), next).await;
        assert!(!again.computed, "the absence of song {next} must be cached");
        next
    }
}

/// The statement of unknown effect the suites send: a stored procedure may write anything.
pub const CALL_REFRESH_SONG_STATS: &str = "CALL refresh_song_stats()";

/// On PostgreSQL and MariaDB, creates the procedure [`CALL_REFRESH_SONG_STATS`] calls
/// (through the unwrapped connection): it appends `!` to every song's title. SQLite has no
/// procedures and rejects the call.
pub async fn refresh_song_stats_procedure(t: &TestDb) {
    let sql = match DB {
        Db::Sqlite => return,
        Db::Postgres => {
            "CREATE PROCEDURE refresh_song_stats() LANGUAGE SQL \
             AS $$ UPDATE songs SET title = title || '!' $$"
        }
        Db::MySql => {
            "CREATE PROCEDURE refresh_song_stats() UPDATE songs SET title = CONCAT(title, '!')"
        }
    };
    t.raw
        .execute_unprepared(sql)
        .await
        .expect("create procedure");
}

/// What `title` reads after [`CALL_REFRESH_SONG_STATS`] ran (or failed, on SQLite).
pub fn refreshed(title: &str) -> String {
    match DB {
        Db::Sqlite => title.to_owned(),
        Db::Postgres | Db::MySql => format!("{title}!"),
    }
}
