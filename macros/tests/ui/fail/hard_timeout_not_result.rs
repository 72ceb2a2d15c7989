use querycache::cached_query;

#[cached_query(hard_timeout = "2s")]
async fn plain_value(id: u32) -> u32 {
    id
}

#[cached_query(soft_timeout = "1s", hard_timeout = "2s")]
async fn error_without_from(id: u32) -> Result<u32, String> {
    Ok(id)
}

fn main() {}
