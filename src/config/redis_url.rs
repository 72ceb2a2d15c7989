//! `REDIS_URL`'s text: the server URLs it lists, and the URL without its password for
//! messages. Configuration checks the variable with them, and the Redis store (which
//! depends on configuration, never the other way) connects with the same two.

/// The server URLs in `REDIS_URL`: one, or with cluster mode a comma-separated list.
pub(crate) fn split_urls(url: &str, cluster: bool) -> Vec<&str> {
    if cluster {
        url.split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect()
    } else {
        vec![url.trim()]
    }
}

pub(crate) use super::redact::redact;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("redis://user:secret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact("rediss://secret@host"), "rediss://***@host");
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
    }
}
