use querycache::cached_query;

struct Filter {
    min: u32,
}

#[cached_query(ttl = 60)]
async fn filtered(limit: u32, filter: Filter) -> Vec<u32> {
    (filter.min..limit).collect()
}

fn main() {}
