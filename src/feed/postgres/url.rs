//! The parts of a `postgres://` URL a replication or listening session needs.

use crate::Error;
use crate::feed::FeedMode;
use crate::feed::config::{URL_VAR, redact};

/// Where and as whom to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) password: String,
    pub(crate) database: String,
    /// `sslmode` as given (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`).
    pub(crate) sslmode: String,
}

/// Reads `postgres://[user[:password]@]host[:port][/database][?sslmode=..]`.
pub(crate) fn parse(url: &str, mode: FeedMode) -> Result<Target, Error> {
    let bad = |reason: &str| Error::config(URL_VAR, redact(url), format!("{mode} feed: {reason}"));
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or_else(|| bad("expected a postgres:// URL"))?;
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((user, password)) => (decode(user), decode(password)),
            None => (decode(u), String::new()),
        },
        None => (String::new(), String::new()),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (
            h.trim_start_matches('[').trim_end_matches(']').to_owned(),
            p.parse::<u16>()
                .map_err(|_| bad("the port is not a number"))?,
        ),
        _ => (hostport.to_owned(), 5432),
    };
    let mut target = Target {
        host: if host.is_empty() {
            "localhost".into()
        } else {
            host
        },
        port,
        user: if user.is_empty() {
            "postgres".into()
        } else {
            user
        },
        password,
        database: decode(path),
        sslmode: "prefer".into(),
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "sslmode" => target.sslmode = decode(v),
            "user" => target.user = decode(v),
            "password" => target.password = decode(v),
            "host" => target.host = decode(v),
            "port" => target.port = v.parse().map_err(|_| bad("the port is not a number"))?,
            "dbname" => target.database = decode(v),
            _ => {}
        }
    }
    if target.database.is_empty() {
        target.database = target.user.clone();
    }
    Ok(target)
}

/// Percent-decoding (`%40` is `@`); an invalid escape is kept as written.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let t = parse(
            "postgres://app:p%40ss@db.internal:6432/shop?sslmode=require",
            FeedMode::Logical,
        )
        .unwrap();
        assert_eq!(
            t,
            Target {
                host: "db.internal".into(),
                port: 6432,
                user: "app".into(),
                password: "p@ss".into(),
                database: "shop".into(),
                sslmode: "require".into(),
            }
        );
        let t = parse("postgresql://localhost", FeedMode::Triggers).unwrap();
        assert_eq!(
            (t.port, t.user.as_str(), t.database.as_str()),
            (5432, "postgres", "postgres")
        );
        let t = parse("postgres://[::1]:5433/x", FeedMode::Logical).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 5433));
        let err = parse("postgres://h:port/x", FeedMode::Logical)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CACHE_CHANGE_FEED_URL") && err.contains("port"),
            "{err}"
        );
    }
}
