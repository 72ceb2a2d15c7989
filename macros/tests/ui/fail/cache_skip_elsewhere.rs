use querycache::cache_skip;

#[cache_skip]
async fn not_an_argument(x: u32) -> u32 {
    x
}

// Not cached: rustc rejects attribute macros on parameters.
async fn plain(#[cache_skip] x: u32) -> u32 {
    x
}

fn main() {}
