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

/// The port a Sentinel listens on when its address names none.
pub(crate) const DEFAULT_SENTINEL_PORT: u16 = 26379;

/// A Redis Sentinel URL:
/// `redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]`, or
/// `rediss+sentinel://` to reach the master (and the Sentinels) over TLS. The hosts are
/// Sentinels (port 26379 unless given); `service` is the name they monitor the master under
/// (`sentinel monitor <service> ...`); the credentials and the database are the master's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SentinelUrl {
    /// `redis` or `rediss`: how the master and the Sentinels are reached.
    pub(crate) scheme: &'static str,
    /// `user:password` as written (percent-encoded), if any: the master's credentials.
    pub(crate) userinfo: Option<String>,
    /// The Sentinels, in the order to ask them.
    pub(crate) sentinels: Vec<(String, u16)>,
    /// The master's name at the Sentinels.
    pub(crate) service: String,
    /// The master's database.
    pub(crate) db: i64,
}

impl SentinelUrl {
    /// `None` when `url` is not a Sentinel URL; the reason when it is one that does not
    /// parse.
    pub(crate) fn parse(url: &str) -> Option<Result<Self, String>> {
        let url = url.trim();
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("redis+sentinel://") {
            ("redis", rest)
        } else if let Some(rest) = url.strip_prefix("rediss+sentinel://") {
            ("rediss", rest)
        } else {
            return None;
        };
        Some(Self::parse_rest(scheme, rest))
    }

    fn parse_rest(scheme: &'static str, rest: &str) -> Result<Self, String> {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hosts) = match authority.rfind('@') {
            Some(at) => (Some(authority[..at].to_owned()), &authority[at + 1..]),
            None => (None, authority),
        };
        let sentinels = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(host_port)
            .collect::<Result<Vec<_>, _>>()?;
        if sentinels.is_empty() {
            return Err("names no Sentinel (redis+sentinel://host:26379/<service>)".to_owned());
        }
        let mut segments = path.split('/').filter(|s| !s.is_empty());
        let service = segments
            .next()
            .ok_or("names no service: add the master's name at the Sentinels (redis+sentinel://host:26379/<service>)")?
            .to_owned();
        let db = match segments.next() {
            None => 0,
            Some(db) => db
                .parse()
                .map_err(|_| format!("the database `{db}` is not a number"))?,
        };
        if let Some(extra) = segments.next() {
            return Err(format!(
                "has more after the service and the database: `{extra}`"
            ));
        }
        Ok(SentinelUrl {
            scheme,
            userinfo,
            sentinels,
            service,
            db,
        })
    }

    /// The URL of the master at `host:port`, with this URL's credentials and database.
    pub(crate) fn master_url(&self, host: &str, port: u16) -> String {
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        match &self.userinfo {
            Some(userinfo) => format!("{}://{userinfo}@{host}:{port}/{}", self.scheme, self.db),
            None => format!("{}://{host}:{port}/{}", self.scheme, self.db),
        }
    }

    /// The URL of the `index`th Sentinel (no credentials: they are the master's).
    pub(crate) fn sentinel_url(&self, index: usize) -> Option<String> {
        let (host, port) = self.sentinels.get(index)?;
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        Some(format!("{}://{host}:{port}", self.scheme))
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn host_port(text: &str) -> Result<(String, u16), String> {
    let bad = || format!("the Sentinel address `{text}` is not host[:port]");
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port = match port {
        None => DEFAULT_SENTINEL_PORT,
        Some(port) => port.parse().map_err(|_| bad())?,
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_urls_parse_with_defaults_and_name_what_is_wrong() {
        assert_eq!(SentinelUrl::parse("redis://host:6379"), None);
        let url = SentinelUrl::parse("redis+sentinel://:pw@s1,s2:26380,[::1]:26381/mymaster/2")
            .unwrap()
            .unwrap();
        assert_eq!(url.scheme, "redis");
        assert_eq!(url.userinfo.as_deref(), Some(":pw"));
        assert_eq!(
            url.sentinels,
            vec![
                ("s1".to_owned(), 26379),
                ("s2".to_owned(), 26380),
                ("::1".to_owned(), 26381)
            ]
        );
        assert_eq!((url.service.as_str(), url.db), ("mymaster", 2));
        assert_eq!(
            url.master_url("10.0.0.5", 6380),
            "redis://:pw@10.0.0.5:6380/2"
        );
        assert_eq!(url.master_url("::1", 6380), "redis://:pw@[::1]:6380/2");
        assert_eq!(url.sentinel_url(2).as_deref(), Some("redis://[::1]:26381"));
        assert_eq!(url.sentinel_url(3), None);
        let tls = SentinelUrl::parse("rediss+sentinel://s1/m")
            .unwrap()
            .unwrap();
        assert_eq!((tls.scheme, tls.db), ("rediss", 0));
        assert_eq!(tls.master_url("h", 1), "rediss://h:1/0");
        for (bad, says) in [
            ("redis+sentinel://s1", "names no service"),
            ("redis+sentinel:///m", "names no Sentinel"),
            ("redis+sentinel://s1:port/m", "`s1:port` is not host[:port]"),
            ("redis+sentinel://s1/m/zero", "`zero` is not a number"),
            ("redis+sentinel://s1/m/0/x", "`x`"),
            ("redis+sentinel://[::1/m", "is not host[:port]"),
        ] {
            let error = SentinelUrl::parse(bad).unwrap().unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }

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
