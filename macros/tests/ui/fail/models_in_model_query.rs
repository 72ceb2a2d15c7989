use querycache::{cache_count_query, cache_model_query};

struct Songs;
impl querycache::CacheModel for Songs {
    const TABLE: &'static str = "songs";
}

struct Users;
impl querycache::CacheModel for Users {
    const TABLE: &'static str = "users";
}

#[cache_model_query(Songs, models = [Users])]
async fn songs(x: u32) -> u32 {
    x
}

#[cache_count_query(Songs, models = [Users], ttl = 30)]
async fn count(x: u32) -> u64 {
    x.into()
}

fn main() {}
