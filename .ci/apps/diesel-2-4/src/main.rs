//! An application on Diesel 2.4 (default features off) and diesel-async 0.10 (`../diesel-2-3`
//! runs it on Diesel 2.3 and diesel-async 0.9): the same
//! cached read through Diesel's synchronous API and through diesel-async, each a miss, a hit,
//! a write through the ORM, then a miss that sees the write.

use std::sync::atomic::{AtomicUsize, Ordering};

use querycache::Cache;
use querycache::orm::diesel::CacheInstrumentation;

diesel::table! {
    songs (id) {
        id -> Integer,
        title -> Text,
    }
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

const SCHEMA: &str = "CREATE TABLE songs (id INTEGER PRIMARY KEY, title TEXT NOT NULL)";

fn check(what: &str, got: Option<String>, want: &str, runs: usize) -> Result<(), String> {
    let ran = RUNS.load(Ordering::SeqCst);
    println!("{what:<28} title = {got:?}, queries so far = {ran}");
    if got.as_deref() != Some(want) || ran != runs {
        return Err(format!(
            "{what}: expected {want:?} after {runs} queries, got {got:?} after {ran}"
        ));
    }
    Ok(())
}

/// Diesel's synchronous API.
mod sync_api {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use querycache::{Cache, cached_query};

    use super::{CacheInstrumentation, Ordering, RUNS, SCHEMA, check, songs};

    #[cached_query(cache = cache, ttl = "10m", models = [songs::table], row = id)]
    fn title(
        #[cache_skip] cache: &Cache,
        conn: &mut SqliteConnection,
        id: i32,
    ) -> QueryResult<Option<String>> {
        RUNS.fetch_add(1, Ordering::SeqCst);
        songs::table
            .find(id)
            .select(songs::title)
            .first(conn)
            .optional()
    }

    pub fn cycle(cache: &Cache) -> Result<(), Box<dyn std::error::Error>> {
        let mut conn = SqliteConnection::establish(":memory:")?;
        conn.set_instrumentation(CacheInstrumentation::new(cache.clone()));
        conn.batch_execute(SCHEMA)?;
        diesel::insert_into(songs::table)
            .values((songs::id.eq(1), songs::title.eq("Blue in Green")))
            .execute(&mut conn)?;
        check(
            "sync: miss",
            title(cache, &mut conn, 1)?,
            "Blue in Green",
            1,
        )?;
        check("sync: hit", title(cache, &mut conn, 1)?, "Blue in Green", 1)?;
        diesel::update(songs::table.find(1))
            .set(songs::title.eq("So What"))
            .execute(&mut conn)?;
        check(
            "sync: miss after the write",
            title(cache, &mut conn, 1)?,
            "So What",
            2,
        )?;
        Ok(())
    }
}

/// diesel-async 0.10, on SQLite through its `SyncConnectionWrapper`.
mod async_api {
    use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, QueryResult, SqliteConnection};
    use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
    use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
    use querycache::{Cache, cached_query};

    use super::{CacheInstrumentation, Ordering, RUNS, SCHEMA, check, songs};

    #[cached_query(cache = cache, ttl = "10m", models = [songs::table], row = id)]
    async fn title(
        #[cache_skip] cache: &Cache,
        conn: &mut SyncConnectionWrapper<SqliteConnection>,
        id: i32,
    ) -> QueryResult<Option<String>> {
        RUNS.fetch_add(1, Ordering::SeqCst);
        songs::table
            .find(id)
            .select(songs::title)
            .first(conn)
            .await
            .optional()
    }

    pub async fn cycle(cache: &Cache) -> Result<(), Box<dyn std::error::Error>> {
        let mut conn = SyncConnectionWrapper::<SqliteConnection>::establish(":memory:").await?;
        conn.set_instrumentation(CacheInstrumentation::new(cache.clone()));
        conn.batch_execute(SCHEMA).await?;
        diesel::insert_into(songs::table)
            .values((songs::id.eq(2), songs::title.eq("Freddie Freeloader")))
            .execute(&mut conn)
            .await?;
        let want = "Freddie Freeloader";
        check("async: miss", title(cache, &mut conn, 2).await?, want, 3)?;
        check("async: hit", title(cache, &mut conn, 2).await?, want, 3)?;
        diesel::update(songs::table.find(2))
            .set(songs::title.eq("All Blues"))
            .execute(&mut conn)
            .await?;
        let after = title(cache, &mut conn, 2).await?;
        check("async: miss after the write", after, "All Blues", 4)?;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cache = Cache::new();
    sync_api::cycle(&cache)?;
    async_api::cycle(&cache).await?;
    println!("ok: {}", env!("CARGO_PKG_NAME"));
    Ok(())
}
