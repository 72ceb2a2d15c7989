//! querycache in one page: SQLite + the memory store, or the tiered store (memory in
//! front of Redis) when `REDIS_URL` is set.
//!
//! ```text
//! cargo run --example quickstart
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example quickstart --features redis
//! ```
//!
//! Defines songs and users, reads a song twice (a miss, then a hit), updates it through the
//! ORM, reads it again (fresh, because the update invalidated it), caches one query where it
//! is written (`.cached(&db)`), and prints the stats.

#[path = "support/logging.rs"]
mod logging;
#[path = "support/schema.rs"]
mod schema;

use std::time::Duration;

use querycache::orm::sea_orm::{CacheQueryExt, CachedConnection};
use querycache::{Cache, cache_count_query, cached_query};
use schema::{song, user};
use sea_orm::{
    ActiveModelTrait, ConnectOptions, Database, DbErr, EntityTrait, PaginatorTrait, Set,
};

/// One song by id. Depends on that song's row only: writes to other songs keep it cached.
#[cached_query(ttl = "10m", models = [song::Entity], row = id)]
async fn get_song(db: &CachedConnection, id: i32) -> Result<Option<song::Model>, DbErr> {
    song::Entity::find_by_id(id).one(db).await
}

/// How many songs there are. Count queries get a shorter default TTL (`CACHE_COUNT_TTL`).
#[cache_count_query(song::Entity)]
async fn count_songs(db: &CachedConnection) -> Result<u64, DbErr> {
    song::Entity::find().count(db).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    logging::init();

    // The cache: configured from CACHE_* variables (defaults: memory store, 1 h TTL).
    let cache = Cache::from_env()?;
    querycache::install(cache.clone())?;
    // A tiered store serves from its memory tier once it hears the other instances'
    // invalidations (until then, from Redis): wait for that, as a readiness check would.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cache.health().await.ready && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    println!("{:<22} {}", "store", cache.config().store_kind());

    // SQLite in memory (one connection, so every query sees the same database), wrapped
    // so that every write through it invalidates the cache.
    let mut options = ConnectOptions::new("sqlite::memory:");
    options.max_connections(1).sqlx_logging(false);
    let db = CachedConnection::new(Database::connect(options).await?, cache.clone());
    schema::migrate(&db).await?;

    let author = user::ActiveModel {
        name: Set("Ada".into()),
        email: Set("ada@example.test".into()),
        created_at: Set(chrono::Utc::now()),
        ..Default::default()
    }
    .insert(&db)
    .await?;
    let now = chrono::Utc::now();
    let song = song::ActiveModel {
        title: Set("Blue in Green".into()),
        artist: Set("Miles Davis".into()),
        author_id: Set(author.id),
        content: Set("...".into()),
        archived: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&db)
    .await?;

    let id = song.id;
    let read = |label: &'static str| {
        let db = db.clone();
        let cache = cache.clone();
        async move {
            let before = cache.stats();
            let found = get_song(&db, id).await?;
            let after = cache.stats();
            let source = if after.computations > before.computations {
                "MISS: from the database"
            } else if after.redis_hits > before.redis_hits {
                "HIT: from redis"
            } else {
                "HIT: from memory"
            };
            let title = found.map(|s| s.title).unwrap_or_default();
            println!("{label:<22} {source:<24} title = {title:?}");
            Ok::<_, DbErr>(())
        }
    };

    read("first read").await?;
    read("second read").await?;

    // An update through the ORM: the song's row tag moves, its cached entry is dead.
    let mut active: song::ActiveModel = song.clone().into();
    active.title = Set("Blue in Green (take 2)".into());
    active.update(&db).await?;
    println!("{:<22} song renamed through the ORM", "update");

    read("read after update").await?;
    read("read again").await?;
    println!("{:<22} {}", "count", count_songs(&db).await?);

    // The same without a function around it: one query, cached where it is written. The
    // entry depends on what the statement read (here, the whole songs table).
    let songs = || {
        song::Entity::find()
            .cached(&db)
            .ttl(Duration::from_secs(600))
            .all()
    };
    println!(
        "{:<22} {} song(s), a miss",
        "per-query",
        songs().await?.len()
    );
    println!(
        "{:<22} {} song(s), a hit",
        "per-query",
        songs().await?.len()
    );

    let stats = cache.stats();
    println!(
        "\nstats: hits={} misses={} hit_rate={:.2} sets={} invalidations={} keys={} memory={}B avg_get={:?} p99_get={:?}",
        stats.hits,
        stats.misses,
        stats.hit_rate,
        stats.sets,
        stats.invalidations,
        stats.keys_count,
        stats.memory_usage_bytes,
        stats.avg_get_latency,
        stats.p99_get_latency,
    );
    Ok(())
}
