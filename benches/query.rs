//! Question 3: the query itself — SeaORM `find_by_id` and a 50-row list, uncached, on SQLite (a
//! file), on PostgreSQL and on MariaDB (throwaway databases) — and what the cache costs and saves around
//! it: the same `find_by_id` as a cache miss (snapshot, query, store) and as a memory-tier hit,
//! through the `Cache` API and through `#[cached_query]` (which hands back a clone of the
//! `Option<song::Model>`, as the songs app's handler gets it).
//!
//! Run: `cargo bench --bench query` (PostgreSQL at `postgres://postgres@127.0.0.1:5432/postgres`
//! or `QUERYCACHE_TEST_PG_URL`, MariaDB at `mysql://root@127.0.0.1:3306/test` or
//! `QUERYCACHE_TEST_MYSQL_URL`; without one, its part is skipped, saying so).

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use querycache::{Cache, EntryOptions, Tag, cached_query};
use sea_orm::{
    ActiveModelTrait, DatabaseConnection, DbErr, EntityTrait, QueryOrder, QuerySelect, Set,
};
use support::schema::{self, song, user};

const SONGS: i32 = 1_000;

static CACHE: LazyLock<Cache> = LazyLock::new(Cache::new);

/// The songs app's query: one song by id, cached with its row as dependency. `backend` keeps
/// the SQLite, PostgreSQL and MariaDB runs apart in the one cache.
#[cached_query(ttl = "1h", models = [song::Entity], row = id, cache = *CACHE)]
async fn song_by_id(
    db: &DatabaseConnection,
    backend: &str,
    id: i32,
) -> Result<Option<song::Model>, DbErr> {
    song::Entity::find_by_id(id).one(db).await
}

async fn seed(db: &DatabaseConnection) {
    schema::migrate(db).await.expect("migrate");
    let author = user::ActiveModel {
        name: Set("ann".into()),
        email: Set("ann@example.com".into()),
        ..Default::default()
    }
    .insert(db)
    .await
    .expect("a user");
    let now = chrono::Utc::now();
    for i in 0..SONGS {
        song::ActiveModel {
            title: Set(format!("Song {i}")),
            artist: Set(format!("Artist {}", i % 97)),
            author_id: Set(author.id),
            content: Set("la ".repeat(300)),
            archived: Set(false),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(db)
        .await
        .expect("a song");
    }
}

fn queries(
    c: &mut Criterion,
    name: &str,
    runtime: &tokio::runtime::Runtime,
    db: &DatabaseConnection,
) {
    let cache = Cache::new();
    let mut group = c.benchmark_group(format!("query_{name}"));
    let next = AtomicU64::new(0);
    let id = || (next.fetch_add(1, Ordering::Relaxed) % SONGS as u64) as i32 + 1;
    group.bench_function("find_by_id, uncached", |b| {
        b.to_async(runtime)
            .iter(|| async { song::Entity::find_by_id(id()).one(db).await.expect("query") });
    });
    group.bench_function("find_by_id, a cache miss (snapshot, query, store)", |b| {
        let round = AtomicU64::new(0);
        b.to_async(runtime).iter(|| async {
            // A key never seen before: every call misses.
            let song_id = id();
            let key = format!("song:{song_id}:{}", round.fetch_add(1, Ordering::Relaxed));
            let options = EntryOptions::new().tag(Tag::model("songs"));
            cache
                .try_get_or_compute(&key, options, || async move {
                    song::Entity::find_by_id(song_id).one(db).await
                })
                .await
                .expect("query")
        });
    });
    // Observed dependencies (issue 22): the same miss through a `CachedConnection`, nothing
    // declared, so the statement is classified and its tags' versions are read before it
    // runs; against the same connection's uncached read, which classifies it as a read only.
    let cached_db = querycache::orm::sea_orm::CachedConnection::new(db.clone(), cache.clone());
    let observed_db = &cached_db;
    group.bench_function("find_by_id through a CachedConnection, uncached", |b| {
        b.to_async(runtime).iter(|| async {
            song::Entity::find_by_id(id())
                .one(observed_db)
                .await
                .expect("query")
        });
    });
    group.bench_function(
        "find_by_id through a CachedConnection, a cache miss with its read observed",
        |b| {
            let round = AtomicU64::new(0);
            b.to_async(runtime).iter(|| async {
                let song_id = id();
                let key = format!(
                    "observed:{song_id}:{}",
                    round.fetch_add(1, Ordering::Relaxed)
                );
                cache
                    .try_get_or_compute(&key, EntryOptions::new(), || async move {
                        song::Entity::find_by_id(song_id).one(observed_db).await
                    })
                    .await
                    .expect("query")
            });
        },
    );
    group.bench_function(
        "classifying find_by_id's SELECT (querycache_sql::reads, the observation's own work)",
        |b| {
            use sea_orm::QueryTrait;
            let statement = song::Entity::find_by_id(7).build(db.get_database_backend());
            let param = |i: usize| (i == 0).then_some(querycache_sql::Bound::Integer(7));
            let key = |_: &querycache_sql::TableName| vec!["id".to_owned()];
            b.iter(|| black_box(querycache_sql::reads(&statement.sql, &param, &key)));
        },
    );
    group.bench_function(
        "a cache miss alone (the computation returns at once)",
        |b| {
            // What a miss adds to its query, measured without one: snapshot, single-flight,
            // weighing and storing the ~1 KB song.
            let song = runtime.block_on(async {
                song::Entity::find_by_id(1)
                    .one(db)
                    .await
                    .expect("query")
                    .expect("song 1")
            });
            let round = AtomicU64::new(0);
            b.to_async(runtime).iter(|| async {
                let key = format!("alone:{}", round.fetch_add(1, Ordering::Relaxed));
                let options = EntryOptions::new().tag(Tag::model("songs"));
                let song = song.clone();
                cache
                    .get_or_compute(&key, options, || async move { Some(song) })
                    .await
            });
        },
    );
    group.bench_function("find_by_id, a memory-tier hit", |b| {
        runtime.block_on(async {
            for song_id in 1..=SONGS {
                cache
                    .try_get_or_compute(
                        &format!("hot:{song_id}"),
                        EntryOptions::new(),
                        || async move { song::Entity::find_by_id(song_id).one(db).await },
                    )
                    .await
                    .expect("query");
            }
        });
        b.to_async(runtime).iter(|| async {
            let song_id = id();
            cache
                .try_get_or_compute(
                    &format!("hot:{song_id}"),
                    EntryOptions::new(),
                    || async move { song::Entity::find_by_id(song_id).one(db).await },
                )
                .await
                .expect("a hit")
        });
    });
    group.bench_function(
        "find_by_id, a memory-tier hit through #[cached_query]",
        |b| {
            runtime.block_on(async {
                for song_id in 1..=SONGS {
                    song_by_id(db, name, song_id).await.expect("query");
                }
            });
            b.to_async(runtime)
                .iter(|| async { song_by_id(db, name, id()).await.expect("a hit") });
        },
    );
    group.bench_function("50-row list, uncached", |b| {
        b.to_async(runtime).iter(|| async {
            black_box(
                song::Entity::find()
                    .order_by_desc(song::Column::Id)
                    .limit(50)
                    .all(db)
                    .await
                    .expect("query"),
            )
        });
    });
    group.finish();
}

fn query(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let sqlite = runtime.block_on(async {
        let db = sea_orm::Database::connect(url).await.expect("open SQLite");
        seed(&db).await;
        db
    });
    queries(c, "sqlite", &runtime, &sqlite);

    let postgres = runtime.block_on(async {
        let pg = support::throwaway::PgDatabase::create().await?;
        let db = sea_orm::Database::connect(pg.url())
            .await
            .expect("open PostgreSQL");
        seed(&db).await;
        Some((pg, db))
    });
    if let Some((_pg, db)) = &postgres {
        queries(c, "postgres", &runtime, db);
        runtime.block_on(async { db.clone().close().await.expect("close") });
    }

    let mariadb = runtime.block_on(async {
        let my = support::throwaway::ThrowawayDb::mysql().await?;
        let db = sea_orm::Database::connect(my.url())
            .await
            .expect("open MariaDB");
        seed(&db).await;
        Some((my, db))
    });
    if let Some((_my, db)) = &mariadb {
        queries(c, "mariadb", &runtime, db);
        runtime.block_on(async { db.clone().close().await.expect("close") });
    }
}

criterion_group!(benches, query);
criterion_main!(benches);
