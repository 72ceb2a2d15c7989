use querycache::cached_query;

#[cached_query(ttl = 60, namespace = "a", ttl = "1h")]
async fn twice(x: u32) -> u32 {
    x
}

fn main() {}
