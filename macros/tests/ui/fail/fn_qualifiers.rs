use querycache::cached_query;

#[cached_query]
const async fn constant() -> u32 {
    1
}

#[cached_query]
async unsafe fn dangerous(x: u32) -> u32 {
    x
}

#[cached_query]
async extern "C" fn foreign(x: u32) -> u32 {
    x
}

fn main() {}
