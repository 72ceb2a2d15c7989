use querycache::cached_query;

#[cached_query(namespace = "")]
async fn empty_namespace(x: u32) -> u32 {
    x
}

#[cached_query(namespace = "my songs")]
async fn spaced_namespace(x: u32) -> u32 {
    x
}

#[cached_query(namespace = songs)]
async fn unquoted_namespace(x: u32) -> u32 {
    x
}

#[cached_query(cache_errors = true)]
async fn flag_with_value(x: u32) -> Result<u32, String> {
    Ok(x)
}

#[cached_query(ttl)]
async fn missing_value(x: u32) -> u32 {
    x
}

#[cached_query(row = "x")]
async fn quoted_row(x: u32) -> u32 {
    x
}

#[cached_query(key = "")]
async fn empty_key(x: u32) -> u32 {
    x
}

#[cached_query(ttl = 60 namespace = "a")]
async fn missing_comma(x: u32) -> u32 {
    x
}

fn main() {}
