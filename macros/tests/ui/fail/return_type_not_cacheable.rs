use querycache::cached_query;

/// Not serializable, not `Clone`.
struct Report {
    lines: Vec<String>,
}

#[cached_query(ttl = 60)]
async fn report(limit: u32) -> Report {
    Report {
        lines: vec![limit.to_string()],
    }
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Row(u32);

/// Caching errors needs a serializable error type.
#[cached_query(error_ttl = 60)]
async fn rows(limit: u32) -> Result<Vec<Row>, std::io::Error> {
    Ok(vec![Row(limit)])
}

fn main() {}
