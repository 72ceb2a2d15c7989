use querycache::cached_query;

#[cached_query(ttl = 60)]
fn song_count(limit: u32) -> u32 {
    limit
}

fn main() {}
