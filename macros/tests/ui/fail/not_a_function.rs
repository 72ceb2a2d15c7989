use querycache::cached_query;

#[cached_query(ttl = 60)]
struct Songs;

trait Repo {
    #[cached_query(ttl = 60)]
    async fn get(&self, id: i32) -> i32;
}

fn main() {}
