use querycache::cached_query;

#[cached_query(models = [], ttl = 60)]
async fn nothing(x: u32) -> u32 {
    x
}

#[cached_query(models = Songs)]
async fn not_a_list(x: u32) -> u32 {
    x
}

struct Songs;
impl querycache::CacheModel for Songs {
    const TABLE: &'static str = "songs";
}

#[cached_query(models = [&Songs])]
async fn not_a_path(x: u32) -> u32 {
    x
}

fn main() {}
