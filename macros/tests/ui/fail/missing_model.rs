use querycache::{cache_count_query, cache_model_query};

#[cache_count_query(ttl = 30)]
async fn count() -> u64 {
    0
}

#[cache_count_query]
async fn count_bare() -> u64 {
    0
}

#[cache_model_query(cache_errors)]
async fn songs() -> Result<u64, String> {
    Ok(0)
}

fn main() {}
