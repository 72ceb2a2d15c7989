//! The Diesel side of querycache, synchronous and without a tokio runtime: SQLite + the
//! memory store, or the tiered store when `REDIS_URL` is set.
//!
//! ```text
//! cargo run --example diesel_songs --features diesel
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example diesel_songs --features diesel,redis
//! ```
//!
//! Installs the instrumentation, creates the schema from `migrations/sqlite`, then reads a
//! song (miss, hit), renames it with `diesel::update`, reads again (fresh), writes inside a
//! transaction that rolls back (nothing invalidated), and counts songs before and after a
//! bulk insert.

#[path = "support/logging.rs"]
mod logging;
#[path = "support/diesel_schema.rs"]
mod schema;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use querycache::{Cache, cache_count_query, cached_query};
use schema::{songs, users};

/// One song's title. Depends on that song's row: writes to other songs keep it cached.
#[cached_query(ttl = "10m", models = [songs::table], row = id)]
fn song_title(conn: &mut SqliteConnection, id: i32) -> QueryResult<Option<String>> {
    songs::table
        .find(id)
        .select(songs::title)
        .first(conn)
        .optional()
}

/// How many songs there are (count queries get `CACHE_COUNT_TTL`).
#[cache_count_query(songs::table)]
fn song_count(conn: &mut SqliteConnection) -> QueryResult<i64> {
    songs::table.count().get_result(conn)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    logging::init();

    // The cache, from CACHE_* variables, as the global one `#[cached_query]` uses; every
    // Diesel connection established afterwards reports its writes to it.
    let cache = Cache::from_env()?;
    querycache::install(cache.clone())?;
    querycache::orm::diesel::install_default(&cache)?;
    println!("{:<24} {}", "store", cache.config().store_kind());

    let mut conn = SqliteConnection::establish(":memory:")?;
    for (_name, sql) in schema::migrations(":memory:") {
        conn.batch_execute(sql)?;
    }

    let author: i32 = diesel::insert_into(users::table)
        .values((users::name.eq("Ada"), users::email.eq("ada@example.test")))
        .returning(users::id)
        .get_result(&mut conn)?;
    let id: i32 = diesel::insert_into(songs::table)
        .values((
            songs::title.eq("Blue in Green"),
            songs::artist.eq("Miles Davis"),
            songs::author_id.eq(author),
        ))
        .returning(songs::id)
        .get_result(&mut conn)?;

    let read = |label: &str, conn: &mut SqliteConnection| -> QueryResult<()> {
        let before = cache.stats();
        let title = song_title(conn, id)?.unwrap_or_default();
        let after = cache.stats();
        let source = if after.computations > before.computations {
            "MISS: from the database"
        } else if after.redis_hits > before.redis_hits {
            "HIT: from redis"
        } else {
            "HIT: from memory"
        };
        println!("{label:<24} {source:<24} title = {title:?}");
        Ok(())
    };

    read("first read", &mut conn)?;
    read("second read", &mut conn)?;

    diesel::update(songs::table.find(id))
        .set(songs::title.eq("Blue in Green (take 2)"))
        .execute(&mut conn)?;
    println!("{:<24} song renamed with diesel::update", "update");
    read("read after update", &mut conn)?;
    read("read again", &mut conn)?;

    // Writes inside a transaction are invalidated after COMMIT; a rollback drops them.
    let rolled_back = conn.transaction::<(), _, _>(|conn| {
        diesel::update(songs::table.find(id))
            .set(songs::title.eq("never committed"))
            .execute(conn)?;
        Err(diesel::result::Error::RollbackTransaction)
    });
    println!(
        "{:<24} {}",
        "transaction",
        if rolled_back.is_err() {
            "rolled back"
        } else {
            "committed"
        }
    );
    read("read after rollback", &mut conn)?;

    println!("{:<24} {}", "count", song_count(&mut conn)?);
    diesel::insert_into(songs::table)
        .values(
            ["So What", "Freddie Freeloader"]
                .map(|title| {
                    (
                        songs::title.eq(title),
                        songs::artist.eq("Miles Davis"),
                        songs::author_id.eq(author),
                    )
                })
                .to_vec(),
        )
        .execute(&mut conn)?;
    println!("{:<24} 2 songs inserted", "insert");
    println!("{:<24} {}", "count after insert", song_count(&mut conn)?);

    let stats = cache.stats();
    println!(
        "\nstats: hits={} misses={} sets={} invalidations={} keys={}",
        stats.hits, stats.misses, stats.sets, stats.invalidations, stats.keys_count,
    );
    Ok(())
}
