use querycache::cached_query;

#[cached_query(ttl = "1 fortnight")]
async fn fortnight(x: u32) -> u32 {
    x
}

#[cached_query(ttl = 0)]
async fn zero(x: u32) -> u32 {
    x
}

#[cached_query(ttl = -5)]
async fn negative(x: u32) -> u32 {
    x
}

#[cached_query(ttl = "3600")]
async fn no_unit(x: u32) -> u32 {
    x
}

#[cached_query(ttl = "500ms")]
async fn millis(x: u32) -> u32 {
    x
}

#[cached_query(ttl = "30m1h")]
async fn out_of_order(x: u32) -> u32 {
    x
}

#[cached_query(ttl = 1.5)]
async fn float(x: u32) -> u32 {
    x
}

const TTL: u64 = 60;

#[cached_query(ttl = TTL)]
async fn constant(x: u32) -> u32 {
    x
}

#[cached_query(error_ttl = "0s")]
async fn zero_error_ttl(x: u32) -> Result<u32, String> {
    Ok(x)
}

fn main() {}
