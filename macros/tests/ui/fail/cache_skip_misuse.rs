use querycache::cached_query;

struct Repo;

impl Repo {
    #[cached_query]
    async fn get(#[cache_skip] &self, id: u32) -> u32 {
        id
    }
}

#[cached_query]
async fn with_arguments(#[cache_skip(always)] id: u32, name: String) -> String {
    format!("{id}{name}")
}

fn main() {}
