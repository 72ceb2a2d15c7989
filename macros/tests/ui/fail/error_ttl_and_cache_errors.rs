use querycache::cached_query;

#[cached_query(error_ttl = 300, cache_errors)]
async fn parse(text: String) -> Result<u32, String> {
    text.parse().map_err(|_| text)
}

#[cached_query(cache_errors, ttl = 60, error_ttl = "1m")]
async fn parse_again(text: String) -> Result<u32, String> {
    text.parse().map_err(|_| text)
}

fn main() {}
