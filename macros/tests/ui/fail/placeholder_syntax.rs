use querycache::cached_query;

#[cached_query(tags = ["user:{user_id:?}"])]
async fn format_spec(user_id: i32) -> i32 {
    user_id
}

#[cached_query(key = "songs:{limit + 1}")]
async fn expression(limit: u32) -> u32 {
    limit
}

#[cached_query(key = "songs:{name.len()}")]
async fn method_call(name: String) -> String {
    name
}

#[cached_query(tags = ["user:{}", "user:{0}"])]
async fn positional(user_id: i32) -> i32 {
    user_id
}

#[cached_query(key = "songs:{limit")]
async fn unclosed(limit: u32) -> u32 {
    limit
}

#[cached_query(key = "songs}:{limit}")]
async fn unmatched(limit: u32) -> u32 {
    limit
}

#[cached_query(tags = [user_id])]
async fn not_a_string(user_id: i32) -> i32 {
    user_id
}

fn main() {}
