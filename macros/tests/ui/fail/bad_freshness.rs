use querycache::cached_query;

#[cached_query(swr = 0)]
async fn zero_swr(x: u32) -> u32 {
    x
}

#[cached_query(swr = "1 fortnight")]
async fn unknown_unit(x: u32) -> u32 {
    x
}

#[cached_query(swr)]
async fn no_value(x: u32) -> u32 {
    x
}

#[cached_query(early_refresh = 0)]
async fn zero_beta(x: u32) -> u32 {
    x
}

#[cached_query(early_refresh = -1.0)]
async fn negative_beta(x: u32) -> u32 {
    x
}

#[cached_query(early_refresh = "1")]
async fn string_beta(x: u32) -> u32 {
    x
}

const BETA: f64 = 1.0;

#[cached_query(early_refresh = BETA)]
async fn constant_beta(x: u32) -> u32 {
    x
}

#[cached_query(early_refresh = 100.5)]
async fn huge_beta(x: u32) -> u32 {
    x
}

#[cached_query(fail_safe = "0s")]
async fn zero_fail_safe(x: u32) -> Result<u32, String> {
    Ok(x)
}

#[cached_query(fail_safe = 60, fail_safe_throttle = -1)]
async fn negative_throttle(x: u32) -> Result<u32, String> {
    Ok(x)
}

#[cached_query(soft_timeout = "0ms")]
async fn zero_timeout(x: u32) -> Result<u32, String> {
    Ok(x)
}

#[cached_query(hard_timeout = "1s500ms")]
async fn mixed_millis(x: u32) -> Result<u32, String> {
    Ok(x)
}

#[cached_query(hard_timeout = 0.5)]
async fn fractional_timeout(x: u32) -> Result<u32, String> {
    Ok(x)
}

fn main() {}
