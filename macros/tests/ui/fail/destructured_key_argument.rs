use querycache::cached_query;

#[derive(serde::Serialize)]
struct Point {
    x: i32,
    y: i32,
}

#[cached_query(ttl = 60)]
async fn distance(Point { x, y }: Point, (a, b): (i32, i32)) -> i32 {
    x + y + a + b
}

// Fine: with an explicit key, arguments need names only where placeholders use them.
#[cached_query(key = "origin")]
async fn origin(Point { x, y }: Point) -> i32 {
    x + y
}

fn main() {}
