use querycache::cached_query;

#[derive(serde::Serialize)]
struct Filter {
    limit: u32,
}

#[cached_query(soft_timeout = "100ms")]
async fn filtered(filter: &Filter) -> u32 {
    filter.limit
}

fn main() {}
