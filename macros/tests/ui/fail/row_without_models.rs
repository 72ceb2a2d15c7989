use querycache::cached_query;

#[cached_query(ttl = 60, row = id)]
async fn song_title(id: i32) -> String {
    id.to_string()
}

fn main() {}
