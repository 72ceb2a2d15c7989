use querycache::cached_query;

// Every mistake is reported at once, each on its own token.
#[cached_query(ttl = "soon", colour = "blue", row = id, tags = ["user:{uid}"])]
fn song(id: i32, #[cache_skip] (a, b): (u8, u8)) {
    let _ = (id, a, b);
}

fn main() {}
