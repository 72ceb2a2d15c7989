//! The parts of a database URL a feed's sessions need: `postgres://` for the PostgreSQL
//! feeds, `mysql://` (or `mariadb://`) for the binlog feed.

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
    /// The TLS mode as given, lower case: PostgreSQL's `sslmode` (`disable`, `prefer`,
    /// `require`, `verify-ca`, `verify-full`) or MySQL's `ssl-mode` (`disabled`,
    /// `preferred`, `required`, `verify_ca`, `verify_identity`).
    pub(crate) sslmode: String,
}

/// A URL scheme and its defaults.
pub(crate) struct Scheme {
    /// The prefixes accepted (`postgres://`, `postgresql://`).
    pub(crate) prefixes: &'static [&'static str],
    pub(crate) default_port: u16,
    pub(crate) default_user: &'static str,
    /// The TLS mode when the URL names none.
    pub(crate) default_sslmode: &'static str,
    /// Whether the database defaults to the user's name (PostgreSQL) or stays empty.
    pub(crate) database_is_user: bool,
}

/// PostgreSQL's URLs.
#[cfg(feature = "feed-postgres")]
pub(crate) const POSTGRES: Scheme = Scheme {
    prefixes: &["postgres://", "postgresql://"],
    default_port: 5432,
    default_user: "postgres",
    default_sslmode: "prefer",
    database_is_user: true,
};

/// MySQL's and MariaDB's URLs.
#[cfg(feature = "feed-mysql")]
pub(crate) const MYSQL: Scheme = Scheme {
    prefixes: &["mysql://", "mariadb://"],
    default_port: 3306,
    default_user: "root",
    default_sslmode: "preferred",
    database_is_user: false,
};

/// Reads `<scheme>://[user[:password]@]host[:port][/database][?sslmode=..]` (`ssl-mode`
/// too, and `user`, `password`, `host`, `port`, `dbname`).
pub(crate) fn parse(url: &str, mode: FeedMode, scheme: &Scheme) -> Result<Target, Error> {
    let bad = |reason: &str| Error::config(URL_VAR, redact(url), format!("{mode} feed: {reason}"));
    let rest = scheme
        .prefixes
        .iter()
        .find_map(|prefix| url.strip_prefix(prefix))
        .ok_or_else(|| bad(&format!("expected a {} URL", scheme.prefixes[0])))?;
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
        _ => (hostport.to_owned(), scheme.default_port),
    };
    let mut target = Target {
        host: if host.is_empty() {
            "localhost".into()
        } else {
            host
        },
        port,
        user: if user.is_empty() {
            scheme.default_user.into()
        } else {
            user
        },
        password,
        database: decode(path),
        sslmode: scheme.default_sslmode.into(),
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "sslmode" | "ssl-mode" | "ssl_mode" => target.sslmode = decode(v).to_ascii_lowercase(),
            "user" => target.user = decode(v),
            "password" => target.password = decode(v),
            "host" => target.host = decode(v),
            "port" => target.port = v.parse().map_err(|_| bad("the port is not a number"))?,
            "dbname" => target.database = decode(v),
            _ => {}
        }
    }
    if target.database.is_empty() && scheme.database_is_user {
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

    #[cfg(feature = "feed-postgres")]
    #[test]
    fn urls_parse() {
        let t = parse(
            "postgres://app:p%40ss@db.internal:6432/shop?sslmode=require",
            FeedMode::Logical,
            &POSTGRES,
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
        let t = parse("postgresql://localhost", FeedMode::Triggers, &POSTGRES).unwrap();
        assert_eq!(
            (t.port, t.user.as_str(), t.database.as_str()),
            (5432, "postgres", "postgres")
        );
        let t = parse("postgres://[::1]:5433/x", FeedMode::Logical, &POSTGRES).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 5433));
        let err = parse("postgres://h:port/x", FeedMode::Logical, &POSTGRES)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CACHE_CHANGE_FEED_URL") && err.contains("port"),
            "{err}"
        );
    }

    #[cfg(feature = "feed-mysql")]
    #[test]
    fn mysql_urls_parse() {
        let t = parse(
            "mysql://app:s%3Acret@db:3307/shop?ssl-mode=REQUIRED",
            FeedMode::Binlog,
            &MYSQL,
        )
        .unwrap();
        assert_eq!(
            t,
            Target {
                host: "db".into(),
                port: 3307,
                user: "app".into(),
                password: "s:cret".into(),
                database: "shop".into(),
                sslmode: "required".into(),
            }
        );
        let t = parse("mariadb://localhost", FeedMode::Binlog, &MYSQL).unwrap();
        assert_eq!(
            (
                t.port,
                t.user.as_str(),
                t.database.as_str(),
                t.sslmode.as_str()
            ),
            (3306, "root", "", "preferred")
        );
        let err = parse("postgres://h/x", FeedMode::Binlog, &MYSQL)
            .unwrap_err()
            .to_string();
        assert!(err.contains("mysql://"), "{err}");
    }
}
