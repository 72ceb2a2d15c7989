use querycache::cached_query;

#[cached_query(ttl = 60)]
async fn warm_up(limit: u32) {
    let _ = limit;
}

#[cached_query(ttl = 60)]
async fn opaque(limit: u32) -> impl std::fmt::Display {
    limit
}

fn main() {}
