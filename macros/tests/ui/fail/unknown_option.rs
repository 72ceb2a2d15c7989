use querycache::{cache_model_query, cached_query};

struct Songs;
impl querycache::CacheModel for Songs {
    const TABLE: &'static str = "songs";
}

#[cached_query(ttl = 60, expire = 30)]
async fn a(x: u32) -> u32 {
    x
}

// A typo of a flag.
#[cached_query(cache_error)]
async fn b(x: u32) -> u32 {
    x
}

// The model-first macros do not list `models`.
#[cache_model_query(Songs, table = "songs")]
async fn c(x: u32) -> u32 {
    x
}

// A model given to #[cached_query] as if it were #[cache_model_query].
#[cached_query(crate::Songs, ttl = 60)]
async fn d(x: u32) -> u32 {
    x
}

fn main() {}
