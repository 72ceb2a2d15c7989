use querycache::cached_query;

#[cached_query(tags = ["user:{user_id}", "global"])]
async fn songs_of(author_id: i32) -> Vec<String> {
    vec![author_id.to_string()]
}

#[cached_query(key = "songs:{limit}:{offset}")]
async fn page(limit: u32) -> Vec<String> {
    vec![limit.to_string()]
}

struct Repo;

impl Repo {
    #[cached_query(key = "repo:{self}:{id}")]
    async fn get(&self, id: u32) -> u32 {
        id
    }
}

fn main() {}
