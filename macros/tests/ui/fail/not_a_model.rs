use querycache::{cache_model_query, cached_query};

/// Neither a SeaORM entity nor a `querycache::CacheModel`.
struct Songs;

#[cached_query(models = [Songs])]
async fn songs(x: u32) -> u32 {
    x
}

#[cache_model_query(Songs)]
async fn more_songs(x: u32) -> u32 {
    x
}

fn main() {}
