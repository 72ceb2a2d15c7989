//! `#[cached_query]` on plain (synchronous) functions: free functions, methods, `Result`s,
//! `?` and `return` in the body, connection arguments left out of the key.

use querycache::cached_query;

#[cached_query(ttl = 60)]
fn song_count(limit: u32) -> u32 {
    if limit == 0 {
        return 0;
    }
    limit * 2
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Failure(String);

#[cached_query(ttl = 60, error_ttl = 5)]
fn parse(text: &str) -> Result<u32, Failure> {
    let value: u32 = text.parse().map_err(|_| Failure(text.to_owned()))?;
    Ok(value)
}

struct AnyConnection;

#[cached_query(ttl = 60, key = "songs:{id}")]
fn title(conn: &mut AnyConnection, id: i32) -> Result<String, std::io::Error> {
    let _ = conn;
    Ok(format!("song {id}"))
}

struct Repo {
    prefix: String,
}

impl Repo {
    #[cached_query(ttl = 60)]
    fn name(&self, id: u64) -> String {
        format!("{}{id}", self.prefix)
    }
}

pub(crate) fn main() {
    assert_eq!(song_count(2), 4);
    assert_eq!(parse("7").ok(), Some(7));
    let mut conn = AnyConnection;
    assert_eq!(title(&mut conn, 3).ok().as_deref(), Some("song 3"));
    let repo = Repo { prefix: "r".into() };
    assert_eq!(repo.name(1), "r1");
}
