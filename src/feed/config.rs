//! [`ChangeFeed`]: which feed, on which database, with which names and bounds; from code or
//! from the `CACHE_CHANGE_FEED*` variables.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::Error;

/// `CACHE_CHANGE_FEED`: [`FeedMode`].
pub(crate) const MODE_VAR: &str = "CACHE_CHANGE_FEED";
/// `CACHE_CHANGE_FEED_URL`: the database the feed follows (default `DATABASE_URL`).
pub(crate) const URL_VAR: &str = "CACHE_CHANGE_FEED_URL";
/// `CACHE_CHANGE_FEED_SLOT`: [`ChangeFeed::slot`].
pub(crate) const SLOT_VAR: &str = "CACHE_CHANGE_FEED_SLOT";
/// `CACHE_CHANGE_FEED_PUBLICATION`: [`ChangeFeed::publication`].
pub(crate) const PUBLICATION_VAR: &str = "CACHE_CHANGE_FEED_PUBLICATION";
/// `CACHE_CHANGE_FEED_CHANNEL`: [`ChangeFeed::channel`].
pub(crate) const CHANNEL_VAR: &str = "CACHE_CHANGE_FEED_CHANNEL";
/// `CACHE_CHANGE_FEED_MAX_GAP_MS`: [`ChangeFeed::max_gap`].
pub(crate) const MAX_GAP_VAR: &str = "CACHE_CHANGE_FEED_MAX_GAP_MS";
/// `CACHE_CHANGE_FEED_INTERVAL_MS`: [`ChangeFeed::interval`].
pub(crate) const INTERVAL_VAR: &str = "CACHE_CHANGE_FEED_INTERVAL_MS";
/// `CACHE_CHANGE_FEED_LEASE_MS`: [`ChangeFeed::lease`].
pub(crate) const LEASE_VAR: &str = "CACHE_CHANGE_FEED_LEASE_MS";

/// Which change feed follows the database (`CACHE_CHANGE_FEED`): see the
/// [module docs](super).
///
/// ```
/// use querycache::feed::FeedMode;
///
/// assert_eq!("logical".parse::<FeedMode>().unwrap(), FeedMode::Logical);
/// assert_eq!("data_version".parse::<FeedMode>().unwrap(), FeedMode::DataVersion);
/// assert!("wal".parse::<FeedMode>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FeedMode {
    /// No feed: only the application's own writes invalidate (`off`).
    #[default]
    Off,
    /// PostgreSQL logical replication (`logical`).
    Logical,
    /// PostgreSQL triggers and `NOTIFY` (`triggers`).
    Triggers,
    /// SQLite's `PRAGMA data_version` (`data_version`).
    DataVersion,
    /// MySQL's and MariaDB's binary log in row format (`binlog`).
    Binlog,
}

impl FromStr for FeedMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "off" | "none" | "false" => Ok(FeedMode::Off),
            "logical" => Ok(FeedMode::Logical),
            "triggers" | "trigger" => Ok(FeedMode::Triggers),
            "data_version" | "data-version" => Ok(FeedMode::DataVersion),
            "binlog" => Ok(FeedMode::Binlog),
            _ => Err(Error::config(
                MODE_VAR,
                s,
                "expected off, logical (PostgreSQL logical replication), triggers \
                 (PostgreSQL triggers + NOTIFY), data_version (SQLite) or binlog (MySQL and \
                 MariaDB's binary log)",
            )),
        }
    }
}

impl fmt::Display for FeedMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FeedMode::Off => "off",
            FeedMode::Logical => "logical",
            FeedMode::Triggers => "triggers",
            FeedMode::DataVersion => "data_version",
            FeedMode::Binlog => "binlog",
        })
    }
}

/// A change feed to start on a cache: its [`FeedMode`], the database it follows, and its
/// names and bounds. Every setting has a default and a variable read by
/// [`from_env`](Self::from_env) (and by [`Cache::from_env`](crate::Cache::from_env)):
///
/// | setting | default | variable |
/// | --- | --- | --- |
/// | mode | `off` | `CACHE_CHANGE_FEED` |
/// | database URL | `DATABASE_URL` | `CACHE_CHANGE_FEED_URL` |
/// | [`slot`](Self::slot) | `querycache` | `CACHE_CHANGE_FEED_SLOT` |
/// | [`publication`](Self::publication) | `querycache` | `CACHE_CHANGE_FEED_PUBLICATION` |
/// | [`channel`](Self::channel) | `querycache_feed` | `CACHE_CHANGE_FEED_CHANNEL` |
/// | [`max_gap`](Self::max_gap) | 5 min | `CACHE_CHANGE_FEED_MAX_GAP_MS` |
/// | [`interval`](Self::interval) | 100 ms | `CACHE_CHANGE_FEED_INTERVAL_MS` |
/// | [`lease`](Self::lease) | 5 s | `CACHE_CHANGE_FEED_LEASE_MS` |
///
/// ```
/// use std::time::Duration;
/// use querycache::feed::{ChangeFeed, FeedMode};
///
/// let feed = ChangeFeed::logical("postgres://app:secret@db/app").slot("app_cache");
/// assert_eq!(feed.mode(), FeedMode::Logical);
/// assert_eq!(feed, ChangeFeed::from_vars([
///     ("CACHE_CHANGE_FEED", "logical"),
///     ("DATABASE_URL", "postgres://app:secret@db/app"),
///     ("CACHE_CHANGE_FEED_SLOT", "app_cache"),
/// ])?.unwrap());
/// // The password never shows.
/// assert!(!format!("{feed:?}").contains("secret"));
/// # Ok::<(), querycache::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ChangeFeed {
    pub(crate) mode: FeedMode,
    pub(crate) url: String,
    pub(crate) slot: String,
    pub(crate) publication: String,
    pub(crate) channel: String,
    pub(crate) max_gap: Duration,
    pub(crate) interval: Duration,
    pub(crate) lease: Duration,
}

impl fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangeFeed")
            .field("mode", &self.mode)
            .field("url", &redact(&self.url))
            .field("slot", &self.slot)
            .field("publication", &self.publication)
            .field("channel", &self.channel)
            .field("max_gap", &self.max_gap)
            .field("interval", &self.interval)
            .field("lease", &self.lease)
            .finish()
    }
}

/// `url` without its password.
pub(crate) use crate::config::redact::redact;

impl ChangeFeed {
    fn with(mode: FeedMode, url: impl Into<String>) -> Self {
        ChangeFeed {
            mode,
            url: url.into(),
            slot: "querycache".to_owned(),
            publication: "querycache".to_owned(),
            channel: "querycache_feed".to_owned(),
            max_gap: Duration::from_secs(300),
            interval: Duration::from_millis(100),
            lease: Duration::from_secs(5),
        }
    }

    /// PostgreSQL logical replication of the database at `url`
    /// (`postgres://user:password@host:port/db`, `sslmode` accepted).
    ///
    /// ```
    /// use querycache::feed::{ChangeFeed, FeedMode};
    /// assert_eq!(ChangeFeed::logical("postgres://localhost/app").mode(), FeedMode::Logical);
    /// ```
    pub fn logical(url: impl Into<String>) -> Self {
        Self::with(FeedMode::Logical, url)
    }

    /// PostgreSQL triggers + `NOTIFY` on the database at `url` (see
    /// [`postgres::install_triggers`](crate::feed::postgres::install_triggers)).
    ///
    /// ```
    /// use querycache::feed::{ChangeFeed, FeedMode};
    /// assert_eq!(ChangeFeed::triggers("postgres://localhost/app").mode(), FeedMode::Triggers);
    /// ```
    pub fn triggers(url: impl Into<String>) -> Self {
        Self::with(FeedMode::Triggers, url)
    }

    /// SQLite's `PRAGMA data_version` on the database file at `url` (`sqlite://app.db`).
    ///
    /// ```
    /// use querycache::feed::{ChangeFeed, FeedMode};
    /// assert_eq!(ChangeFeed::data_version("sqlite://app.db").mode(), FeedMode::DataVersion);
    /// ```
    pub fn data_version(url: impl Into<String>) -> Self {
        Self::with(FeedMode::DataVersion, url)
    }

    /// MySQL's or MariaDB's binary log (row format) of the database at `url`
    /// (`mysql://user:password@host:port/db`, `ssl-mode` accepted): see
    /// [`feed::mysql`](crate::feed::mysql) for what the server needs.
    ///
    /// ```
    /// use querycache::feed::{ChangeFeed, FeedMode};
    /// assert_eq!(ChangeFeed::binlog("mysql://localhost/app").mode(), FeedMode::Binlog);
    /// ```
    pub fn binlog(url: impl Into<String>) -> Self {
        Self::with(FeedMode::Binlog, url)
    }

    /// The database to follow, when it was not given (an application whose own setting names
    /// its database passes it here: `CACHE_CHANGE_FEED=data_version` alone then follows it).
    ///
    /// ```
    /// use querycache::feed::ChangeFeed;
    /// let feed = ChangeFeed::logical("postgres://db/app").url("postgres://db/other");
    /// assert!(format!("{feed:?}").contains("db/other"));
    /// ```
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// Whether the database to follow is known (given, or from `CACHE_CHANGE_FEED_URL` or
    /// `DATABASE_URL`).
    ///
    /// ```
    /// use querycache::feed::ChangeFeed;
    /// assert!(ChangeFeed::logical("postgres://db/app").has_url());
    /// ```
    pub fn has_url(&self) -> bool {
        !self.url.is_empty()
    }

    /// [`Error::ChangeFeed`] for this feed: its mode, its database (without the password)
    /// and `reason`.
    #[cfg(any(feature = "feed-postgres", feature = "feed-mysql"))]
    pub(crate) fn error(&self, reason: impl Into<String>) -> Error {
        Error::ChangeFeed {
            mode: self.mode.to_string(),
            database: redact(&self.url),
            reason: reason.into(),
        }
    }

    /// The feed's mode.
    ///
    /// ```
    /// use querycache::feed::{ChangeFeed, FeedMode};
    /// assert_eq!(ChangeFeed::triggers("postgres://db/app").mode(), FeedMode::Triggers);
    /// ```
    pub fn mode(&self) -> FeedMode {
        self.mode
    }

    /// The replication slot's name (logical mode; default `querycache`). With the memory
    /// store each process uses a temporary slot named after it and its process id. The
    /// binlog feed names its consumer lease and its recorded position with it.
    ///
    /// ```
    /// let feed = querycache::feed::ChangeFeed::logical("postgres://db/app").slot("billing_cache");
    /// # let _ = feed;
    /// ```
    pub fn slot(mut self, name: impl Into<String>) -> Self {
        self.slot = name.into();
        self
    }

    /// The publication's name (logical mode; default `querycache`). When it does not exist
    /// the feed creates it over the tables with a primary key and adds tables created later
    /// (not `FOR ALL TABLES`, which would make PostgreSQL refuse updates of tables without
    /// one); a publication you create yourself is used as it is.
    ///
    /// ```
    /// let feed = querycache::feed::ChangeFeed::logical("postgres://db/app").publication("app_tables");
    /// # let _ = feed;
    /// ```
    pub fn publication(mut self, name: impl Into<String>) -> Self {
        self.publication = name.into();
        self
    }

    /// The `NOTIFY` channel (trigger mode; default `querycache_feed`).
    ///
    /// ```
    /// let feed = querycache::feed::ChangeFeed::triggers("postgres://db/app").channel("app_changes");
    /// # let _ = feed;
    /// ```
    pub fn channel(mut self, name: impl Into<String>) -> Self {
        self.channel = name.into();
        self
    }

    /// How long the feed may have been away (no consumer applying it) and still resume
    /// without invalidating everything (default 5 minutes): beyond, entries may have been
    /// served stale for longer than anyone expects, and the feed invalidates every model tag
    /// when it is back.
    ///
    /// ```
    /// use std::time::Duration;
    /// let feed = querycache::feed::ChangeFeed::logical("postgres://db/app").max_gap(Duration::from_secs(60));
    /// # let _ = feed;
    /// ```
    pub fn max_gap(mut self, bound: Duration) -> Self {
        self.max_gap = bound;
        self
    }

    /// How often SQLite's `data_version` is read (default 100 ms): the bound of that feed.
    ///
    /// ```
    /// use std::time::Duration;
    /// let feed = querycache::feed::ChangeFeed::data_version("sqlite://app.db").interval(Duration::from_millis(20));
    /// # let _ = feed;
    /// ```
    pub fn interval(mut self, every: Duration) -> Self {
        self.interval = every;
        self
    }

    /// How long the consumer lease lasts in Redis (default 5 s; renewed every third of
    /// it): when the instance consuming the feed dies, another takes over within about
    /// that long.
    ///
    /// ```
    /// use std::time::Duration;
    /// let feed = querycache::feed::ChangeFeed::logical("postgres://db/app").lease(Duration::from_secs(2));
    /// # let _ = feed;
    /// ```
    pub fn lease(mut self, ttl: Duration) -> Self {
        self.lease = ttl;
        self
    }

    /// The feed the environment describes (`CACHE_CHANGE_FEED` and the variables in the
    /// [table above](Self)); `None` when `CACHE_CHANGE_FEED` is unset or `off`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable at fault.
    pub fn from_env() -> Result<Option<Self>, Error> {
        Self::from_vars(std::env::vars())
    }

    /// [`from_env`](Self::from_env) from the given variables.
    ///
    /// ```
    /// use querycache::feed::ChangeFeed;
    ///
    /// assert!(ChangeFeed::from_vars([("CACHE_CHANGE_FEED", "off")])?.is_none());
    /// let err = ChangeFeed::from_vars([("CACHE_CHANGE_FEED", "logical")]).unwrap_err();
    /// assert!(err.to_string().contains("CACHE_CHANGE_FEED_URL"));
    /// # Ok::<(), querycache::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable at fault.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Option<Self>, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let feed = Self::parse_vars(vars)?;
        if let Some(feed) = &feed {
            feed.validate_to_start()?;
        }
        Ok(feed)
    }

    /// The feed `vars` describe, its settings checked but its database possibly not given
    /// yet (see [`validate`](Self::validate)).
    pub(crate) fn parse_vars<I, K, V>(vars: I) -> Result<Option<Self>, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut feed = Self::with(FeedMode::Off, "");
        let mut url = None;
        let mut database_url = None;
        for (name, value) in vars {
            let (name, value) = (name.as_ref(), value.as_ref());
            feed = match name {
                MODE_VAR => Self {
                    mode: value.parse()?,
                    ..feed
                },
                URL_VAR => {
                    url = Some(value.trim().to_owned());
                    feed
                }
                "DATABASE_URL" => {
                    database_url = Some(value.trim().to_owned());
                    feed
                }
                SLOT_VAR => feed.slot(value.trim()),
                PUBLICATION_VAR => feed.publication(value.trim()),
                CHANNEL_VAR => feed.channel(value.trim()),
                MAX_GAP_VAR => feed.max_gap(ms(name, value)?),
                INTERVAL_VAR => feed.interval(ms(name, value)?),
                LEASE_VAR => feed.lease(ms(name, value)?),
                _ => feed,
            };
        }
        if feed.mode == FeedMode::Off {
            return Ok(None);
        }
        feed.url = url
            .filter(|u| !u.is_empty())
            .or(database_url.filter(|u| !u.is_empty()))
            .unwrap_or_default();
        feed.validate()?;
        Ok(Some(feed))
    }

    /// Checks the settings: every error names the variable at fault. The URL may still be
    /// missing until the feed starts (an application may fill it in with
    /// [`url`](Self::url) from its own database setting).
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.mode == FeedMode::Off || self.url.is_empty() {
            return Ok(());
        }
        self.validate_url()
    }

    /// [`validate`](Self::validate), the URL included.
    pub(crate) fn validate_to_start(&self) -> Result<(), Error> {
        if self.mode == FeedMode::Off {
            return Ok(());
        }
        self.validate_url()
    }

    fn validate_url(&self) -> Result<(), Error> {
        if self.url.is_empty() {
            return Err(Error::config(
                URL_VAR,
                "",
                format!(
                    "CACHE_CHANGE_FEED={} needs the database to follow: set CACHE_CHANGE_FEED_URL \
                     or DATABASE_URL",
                    self.mode
                ),
            ));
        }
        let postgres = self.url.starts_with("postgres://") || self.url.starts_with("postgresql://");
        match self.mode {
            FeedMode::Logical | FeedMode::Triggers if !postgres => {
                return Err(Error::config(
                    URL_VAR,
                    redact(&self.url),
                    format!(
                        "CACHE_CHANGE_FEED={} follows PostgreSQL: expected a postgres:// URL",
                        self.mode
                    ),
                ));
            }
            FeedMode::Binlog
                if !(self.url.starts_with("mysql://") || self.url.starts_with("mariadb://")) =>
            {
                return Err(Error::config(
                    URL_VAR,
                    redact(&self.url),
                    "CACHE_CHANGE_FEED=binlog follows MySQL or MariaDB: expected a mysql:// URL",
                ));
            }
            FeedMode::DataVersion if !self.url.starts_with("sqlite:") => {
                return Err(Error::config(
                    URL_VAR,
                    redact(&self.url),
                    "CACHE_CHANGE_FEED=data_version follows a SQLite file: expected a sqlite:// URL",
                ));
            }
            _ => {}
        }
        for (var, name) in [
            (SLOT_VAR, &self.slot),
            (PUBLICATION_VAR, &self.publication),
            (CHANNEL_VAR, &self.channel),
        ] {
            let ok = !name.is_empty()
                && name.len() <= 63
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                return Err(Error::config(
                    var,
                    name,
                    "expected 1 to 63 characters among a-z, 0-9 and _ (PostgreSQL's slot name rule)",
                ));
            }
        }
        for (var, value, least) in [
            (MAX_GAP_VAR, self.max_gap, Duration::from_secs(1)),
            (INTERVAL_VAR, self.interval, Duration::from_millis(1)),
            (LEASE_VAR, self.lease, Duration::from_millis(300)),
        ] {
            if value < least || value > Duration::from_secs(7 * 24 * 3600) {
                return Err(Error::config(
                    var,
                    value.as_millis(),
                    format!(
                        "expected {} ms to a week (in milliseconds)",
                        least.as_millis()
                    ),
                ));
            }
        }
        let feature = match self.mode {
            FeedMode::Logical | FeedMode::Triggers => cfg!(feature = "feed-postgres")
                .then_some(())
                .ok_or("feed-postgres"),
            FeedMode::DataVersion => cfg!(feature = "feed-sqlite")
                .then_some(())
                .ok_or("feed-sqlite"),
            FeedMode::Binlog => cfg!(feature = "feed-mysql")
                .then_some(())
                .ok_or("feed-mysql"),
            FeedMode::Off => Ok(()),
        };
        if let Err(feature) = feature {
            return Err(Error::config(
                MODE_VAR,
                self.mode,
                format!(
                    "this build of querycache has no such feed: enable the `{feature}` feature"
                ),
            ));
        }
        Ok(())
    }
}

/// A `CACHE_CHANGE_FEED_*_MS` variable: milliseconds, or a duration (`"5m"`), read as every
/// `*_MS` variable is.
fn ms(name: &str, value: &str) -> Result<Duration, Error> {
    crate::config::parse_ms(name, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_with_the_variable_named() {
        let err = |vars: &[(&str, &str)]| {
            ChangeFeed::from_vars(vars.iter().copied())
                .unwrap_err()
                .to_string()
        };
        let base = [
            ("CACHE_CHANGE_FEED", "logical"),
            ("DATABASE_URL", "postgres://db/app"),
        ];
        let with = |extra: (&'static str, &'static str)| {
            let mut v = base.to_vec();
            v.push(extra);
            err(&v)
        };
        assert!(with(("CACHE_CHANGE_FEED_SLOT", "Bad-Name")).contains("CACHE_CHANGE_FEED_SLOT"));
        assert!(
            with(("CACHE_CHANGE_FEED_MAX_GAP_MS", "soon")).contains("CACHE_CHANGE_FEED_MAX_GAP_MS")
        );
        assert!(with(("CACHE_CHANGE_FEED_LEASE_MS", "10")).contains("CACHE_CHANGE_FEED_LEASE_MS"));
        assert!(
            err(&[
                ("CACHE_CHANGE_FEED", "logical"),
                ("DATABASE_URL", "sqlite://a.db")
            ])
            .contains("postgres://")
        );
        assert!(
            err(&[
                ("CACHE_CHANGE_FEED", "data_version"),
                ("DATABASE_URL", "postgres://db/a")
            ])
            .contains("sqlite://")
        );
        assert!(err(&[("CACHE_CHANGE_FEED", "binlog")]).contains("CACHE_CHANGE_FEED"));
        let triggers = ChangeFeed::from_vars([
            ("CACHE_CHANGE_FEED", "triggers"),
            ("DATABASE_URL", "postgres://app/app"),
            ("CACHE_CHANGE_FEED_URL", "postgres://owner/app"),
        ]);
        if cfg!(feature = "feed-postgres") {
            // The feed's own URL wins over DATABASE_URL.
            assert_eq!(triggers.unwrap().unwrap().url, "postgres://owner/app");
        } else {
            // A build without the feed says which feature it lacks.
            assert!(
                triggers
                    .unwrap_err()
                    .to_string()
                    .contains("`feed-postgres`")
            );
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert!(!redact("postgres://u:secret@h/db").contains("secret"));
    }
}
