use querycache::cached_query;

#[derive(serde::Serialize)]
struct Filter {
    min: u32,
}

#[cached_query(tags = ["filter:{filter}"])]
async fn filtered(filter: Filter) -> u32 {
    filter.min
}

fn main() {}
