use querycache::cached_query;

#[cached_query(fail_safe_throttle = "30s")]
async fn throttle_alone(x: u32) -> Result<u32, String> {
    Ok(x)
}

#[cached_query(soft_timeout = "2s", hard_timeout = "1500ms")]
async fn hard_before_soft(x: u32) -> Result<u32, String> {
    Ok(x)
}

#[cached_query(soft_timeout = 1, hard_timeout = "1s")]
async fn hard_equals_soft(x: u32) -> Result<u32, String> {
    Ok(x)
}

#[cached_query(fail_safe = "1h", cache_errors)]
async fn fail_safe_then_cache_errors(x: u32) -> Result<u32, String> {
    Ok(x)
}

#[cached_query(error_ttl = 30, fail_safe = "1h")]
async fn error_ttl_then_fail_safe(x: u32) -> Result<u32, String> {
    Ok(x)
}

#[cached_query(cache_errors, fail_safe_throttle = 10)]
async fn cache_errors_then_throttle(x: u32) -> Result<u32, String> {
    Ok(x)
}

fn main() {}
