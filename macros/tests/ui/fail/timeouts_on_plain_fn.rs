use querycache::{TimedOut, cached_query};

#[derive(Debug)]
struct Error;

impl From<TimedOut> for Error {
    fn from(_: TimedOut) -> Self {
        Error
    }
}

#[cached_query(soft_timeout = "250ms", hard_timeout = "1s")]
fn sync_query(id: u32) -> Result<u32, Error> {
    Ok(id)
}

// `swr`, `early_refresh` and `fail_safe` are fine on a plain fn.
#[cached_query(swr = 30, early_refresh = 1.0, fail_safe = 60, soft_timeout = 1)]
fn sync_soft(id: u32) -> u32 {
    id
}

fn main() {}
