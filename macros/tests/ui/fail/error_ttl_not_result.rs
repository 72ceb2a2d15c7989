use querycache::cached_query;

#[cached_query(error_ttl = "5m")]
async fn count(x: u32) -> u32 {
    x
}

#[cached_query(cache_errors)]
async fn maybe(x: u32) -> Option<u32> {
    Some(x)
}

fn main() {}
