use querycache::{TimedOut, cached_query};
use sea_orm::ConnectionTrait;

#[derive(Debug)]
struct Error;

impl From<TimedOut> for Error {
    fn from(_: TimedOut) -> Self {
        Error
    }
}

#[cached_query(hard_timeout = "2s")]
async fn mutable(#[cache_skip] buffer: &mut Vec<u8>, id: u32) -> Result<u32, Error> {
    buffer.push(0);
    Ok(id)
}

#[cached_query(soft_timeout = "100ms", hard_timeout = "2s")]
async fn impl_trait(db: &impl ConnectionTrait, id: u32) -> Result<u32, Error> {
    let _ = db;
    Ok(id)
}

#[cached_query(soft_timeout = "100ms", key = "pair:{id}")]
async fn pattern(id: u32, &(a, b): &(u32, u32)) -> u32 {
    id + a + b
}

struct Repo;

impl Repo {
    #[cached_query(soft_timeout = "100ms", swr = 60)]
    async fn method(&self, id: u32) -> u32 {
        id
    }
}

// With `swr` alone these fall back to a foreground refresh: no error.
#[cached_query(swr = 60)]
async fn mutable_swr(#[cache_skip] buffer: &mut Vec<u8>, id: u32) -> u32 {
    buffer.push(0);
    id
}

fn main() {}
