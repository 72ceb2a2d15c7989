use querycache::{cache_model_query, cached_query};

struct Songs;
impl querycache::CacheModel for Songs {
    const TABLE: &'static str = "songs";
}

#[cached_query(models = [Songs], row = song_id)]
async fn song_title(id: i32, lang: String) -> String {
    format!("{id}{lang}")
}

#[cache_model_query(Songs, row = id)]
async fn no_arguments() -> String {
    String::new()
}

fn main() {}
