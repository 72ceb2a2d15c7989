use querycache::cached_query;

#[cached_query(jitter = 150)]
async fn over_a_hundred(x: u32) -> u32 {
    x
}

#[cached_query(jitter = "10%")]
async fn a_string(x: u32) -> u32 {
    x
}

#[cached_query(jitter = 12.5)]
async fn a_fraction(x: u32) -> u32 {
    x
}

#[cached_query(jitter = -5)]
async fn negative(x: u32) -> u32 {
    x
}

fn main() {}
