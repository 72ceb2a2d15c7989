//! [`ServeOptions`]: the limits [`serve`](super::serve) keeps, from code or from the
//! `CACHE_HTTP_*` variables, each checked against its range with an error naming the
//! variable.

use std::time::Duration;

use crate::Error;

/// `CACHE_HTTP_HEADER_TIMEOUT_MS`: [`ServeOptions::header_timeout`].
const HEADER_TIMEOUT_VAR: &str = "CACHE_HTTP_HEADER_TIMEOUT_MS";
/// `CACHE_HTTP_BODY_TIMEOUT_MS`: [`ServeOptions::body_timeout`].
const BODY_TIMEOUT_VAR: &str = "CACHE_HTTP_BODY_TIMEOUT_MS";
/// `CACHE_HTTP_REQUEST_TIMEOUT_MS`: [`ServeOptions::request_timeout`].
const REQUEST_TIMEOUT_VAR: &str = "CACHE_HTTP_REQUEST_TIMEOUT_MS";
/// `CACHE_HTTP_MAX_CONNECTIONS`: [`ServeOptions::max_connections`].
const MAX_CONNECTIONS_VAR: &str = "CACHE_HTTP_MAX_CONNECTIONS";
/// `CACHE_HTTP_SHUTDOWN_TIMEOUT_MS`: [`ServeOptions::shutdown_timeout`].
const SHUTDOWN_TIMEOUT_VAR: &str = "CACHE_HTTP_SHUTDOWN_TIMEOUT_MS";
/// Every variable [`ServeOptions::from_env`] reads.
const VARIABLES: [&str; 5] = [
    HEADER_TIMEOUT_VAR,
    BODY_TIMEOUT_VAR,
    REQUEST_TIMEOUT_VAR,
    MAX_CONNECTIONS_VAR,
    SHUTDOWN_TIMEOUT_VAR,
];

/// The longest timeout accepted (a day): a longer one is a mistake, not a policy.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
/// The most connections accepted as a bound.
const MAX_CONNECTIONS: usize = 1_000_000;

/// How [`serve`](super::serve) guards the server against slow and idle clients, and how long its
/// graceful shutdown may take. Every limit has a default, a builder method, and a variable
/// read by [`from_env`](Self::from_env):
///
/// | limit | default | variable | when it is crossed |
/// | --- | --- | --- | --- |
/// | [`header_timeout`](Self::header_timeout) | 10 s | `CACHE_HTTP_HEADER_TIMEOUT_MS` | the connection is closed |
/// | [`body_timeout`](Self::body_timeout) | 30 s | `CACHE_HTTP_BODY_TIMEOUT_MS` | `408` `body_timeout`, and the connection is closed |
/// | [`request_timeout`](Self::request_timeout) | 30 s | `CACHE_HTTP_REQUEST_TIMEOUT_MS` | `503` `request_timeout` (the handler is dropped) |
/// | [`max_connections`](Self::max_connections) | 1024 | `CACHE_HTTP_MAX_CONNECTIONS` | new connections wait in the listen backlog |
/// | [`shutdown_timeout`](Self::shutdown_timeout) | 10 s | `CACHE_HTTP_SHUTDOWN_TIMEOUT_MS` | the connections still open are closed |
///
/// ```
/// use std::time::Duration;
/// use querycache::http::ServeOptions;
///
/// let options = ServeOptions::new()
///     .header_timeout(Duration::from_secs(5))
///     .max_connections(256);
/// assert_eq!(options, ServeOptions::from_vars([
///     ("CACHE_HTTP_HEADER_TIMEOUT_MS", "5000"),
///     ("CACHE_HTTP_MAX_CONNECTIONS", "256"),
/// ])?);
/// # Ok::<(), querycache::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    pub(super) header_timeout: Duration,
    pub(super) body_timeout: Duration,
    pub(super) request_timeout: Duration,
    pub(super) max_connections: usize,
    pub(super) shutdown_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl ServeOptions {
    /// The defaults: header timeout 10 s, body timeout 30 s, request timeout 30 s, 1024
    /// connections, shutdown timeout 10 s.
    ///
    /// ```
    /// use querycache::http::ServeOptions;
    ///
    /// assert_eq!(ServeOptions::new(), ServeOptions::default());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// How long a client has to send a whole request head (request line and headers),
    /// counted from the moment the server waits for it: on a new connection, and again
    /// after each answer on a kept-alive one. This is therefore also how long an idle
    /// keep-alive connection stays open. Past it the connection is closed. Default 10 s;
    /// `CACHE_HTTP_HEADER_TIMEOUT_MS`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use querycache::http::ServeOptions;
    ///
    /// let options = ServeOptions::new().header_timeout(Duration::from_secs(5));
    /// # let _ = options;
    /// ```
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// How long a client has to send a whole request body, counted from the end of its
    /// head. Past it the handler's read of the body fails, and the request is answered
    /// `408 Request Timeout` (`body_timeout` in the JSON envelope) whatever the handler
    /// made of the failure; the connection is closed. Default 30 s;
    /// `CACHE_HTTP_BODY_TIMEOUT_MS`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use querycache::http::ServeOptions;
    ///
    /// // Uploads of large files over slow links need more.
    /// let options = ServeOptions::new().body_timeout(Duration::from_secs(300));
    /// # let _ = options;
    /// ```
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// How long the application has to answer a request, counted from the end of its head
    /// to the head of the answer (the time to send the answer's body is not counted). Past
    /// it the handler is dropped and the request answered `503 Service Unavailable`
    /// (`request_timeout`) — or `408` (`body_timeout`) when the body was still arriving
    /// after its own deadline. Default 30 s; `CACHE_HTTP_REQUEST_TIMEOUT_MS`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use querycache::http::ServeOptions;
    ///
    /// let options = ServeOptions::new().request_timeout(Duration::from_secs(5));
    /// # let _ = options;
    /// ```
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How many connections are served at once. At the bound the server stops accepting:
    /// new connections wait in the kernel's listen backlog until one closes — which the
    /// header timeout guarantees for idle and slow ones. Keep it below the process's file
    /// descriptor limit (`ulimit -n`), leaving room for the database and Redis
    /// connections. Default 1024; `CACHE_HTTP_MAX_CONNECTIONS`.
    ///
    /// ```
    /// use querycache::http::ServeOptions;
    ///
    /// let options = ServeOptions::new().max_connections(200);
    /// # let _ = options;
    /// ```
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// How long a graceful shutdown may take: once the shutdown signal resolves the server
    /// stops accepting, closes idle connections, and lets the requests in flight finish;
    /// when this time has passed it closes the connections still open (a `warn` event
    /// says how many) and [`serve`](super::serve) returns. Default 10 s;
    /// `CACHE_HTTP_SHUTDOWN_TIMEOUT_MS`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use querycache::http::ServeOptions;
    ///
    /// // Below the 30 s a container orchestrator usually waits before killing.
    /// let options = ServeOptions::new().shutdown_timeout(Duration::from_secs(20));
    /// # let _ = options;
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Options from the environment: the defaults, overridden by those of
    /// `CACHE_HTTP_HEADER_TIMEOUT_MS`, `CACHE_HTTP_BODY_TIMEOUT_MS`,
    /// `CACHE_HTTP_REQUEST_TIMEOUT_MS`, `CACHE_HTTP_MAX_CONNECTIONS` and
    /// `CACHE_HTTP_SHUTDOWN_TIMEOUT_MS` that are set (timeouts in milliseconds).
    ///
    /// ```
    /// let options = querycache::http::ServeOptions::from_env()?;
    /// # let _ = options;
    /// # Ok::<(), querycache::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable when a value is not valid UTF-8 or is invalid
    /// (see [`from_vars`](Self::from_vars)).
    pub fn from_env() -> Result<Self, Error> {
        let mut vars = Vec::new();
        for name in VARIABLES {
            if let Some(value) = std::env::var_os(name) {
                match value.into_string() {
                    Ok(value) => vars.push((name, value)),
                    Err(value) => {
                        return Err(Error::config(
                            name,
                            value.to_string_lossy(),
                            "not valid UTF-8",
                        ));
                    }
                }
            }
        }
        Self::from_vars(vars)
    }

    /// Like [`from_env`](Self::from_env), from any list of `(name, value)` pairs; other
    /// variables are ignored.
    ///
    /// ```
    /// use std::time::Duration;
    /// use querycache::http::ServeOptions;
    ///
    /// let options = ServeOptions::from_vars([
    ///     ("CACHE_HTTP_BODY_TIMEOUT_MS", "60000"),
    ///     ("PATH", "/usr/bin"),
    /// ])?;
    /// assert_eq!(options, ServeOptions::new().body_timeout(Duration::from_secs(60)));
    ///
    /// let err = ServeOptions::from_vars([("CACHE_HTTP_MAX_CONNECTIONS", "many")]).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid configuration: CACHE_HTTP_MAX_CONNECTIONS=\"many\": \
    ///      expected a whole number of connections, 1 to 1000000"
    /// );
    /// # Ok::<(), querycache::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] naming the first variable (in name order) whose value is not a
    /// whole number, or is out of range: timeouts from 1 ms to a day (86400000),
    /// connections from 1 to 1000000.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut vars: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(name, _)| VARIABLES.contains(&name.as_ref()))
            .map(|(name, value)| (name.as_ref().to_owned(), value.as_ref().to_owned()))
            .collect();
        // The first error reported does not depend on the environment's order.
        vars.sort();
        let mut options = Self::new();
        for (name, value) in &vars {
            options = match name.as_str() {
                HEADER_TIMEOUT_VAR => options.header_timeout(parse_ms(name, value)?),
                BODY_TIMEOUT_VAR => options.body_timeout(parse_ms(name, value)?),
                REQUEST_TIMEOUT_VAR => options.request_timeout(parse_ms(name, value)?),
                SHUTDOWN_TIMEOUT_VAR => options.shutdown_timeout(parse_ms(name, value)?),
                MAX_CONNECTIONS_VAR => options.max_connections(parse_connections(name, value)?),
                _ => options,
            };
        }
        Ok(options)
    }

    /// Every limit in range, or an error naming the variable its setting mirrors.
    pub(super) fn check(&self) -> Result<(), Error> {
        check_timeout(HEADER_TIMEOUT_VAR, self.header_timeout)?;
        check_timeout(BODY_TIMEOUT_VAR, self.body_timeout)?;
        check_timeout(REQUEST_TIMEOUT_VAR, self.request_timeout)?;
        check_timeout(SHUTDOWN_TIMEOUT_VAR, self.shutdown_timeout)?;
        if !(1..=MAX_CONNECTIONS).contains(&self.max_connections) {
            return Err(Error::config(
                MAX_CONNECTIONS_VAR,
                self.max_connections,
                connections_expected(),
            ));
        }
        Ok(())
    }
}

/// A `CACHE_HTTP_*_MS` variable: milliseconds, or a duration (`"10s"`), read as every
/// `*_MS` variable is (`config::parse_ms`), then checked against the range.
fn parse_ms(name: &str, value: &str) -> Result<Duration, Error> {
    let timeout = crate::config::parse_ms(name, value)?;
    if !timeout_in_range(timeout) {
        return Err(Error::config(name, value, ms_range()));
    }
    Ok(timeout)
}

fn parse_connections(name: &str, value: &str) -> Result<usize, Error> {
    match value.trim().parse::<usize>() {
        Ok(max) if (1..=MAX_CONNECTIONS).contains(&max) => Ok(max),
        _ => Err(Error::config(name, value, connections_expected())),
    }
}

fn check_timeout(name: &str, timeout: Duration) -> Result<(), Error> {
    if timeout_in_range(timeout) {
        Ok(())
    } else {
        Err(Error::config(name, format!("{timeout:?}"), ms_range()))
    }
}

fn timeout_in_range(timeout: Duration) -> bool {
    (Duration::from_millis(1)..=MAX_TIMEOUT).contains(&timeout)
}

fn ms_range() -> String {
    format!("from 1 to {} ms (a day)", MAX_TIMEOUT.as_millis())
}

fn connections_expected() -> String {
    format!("expected a whole number of connections, 1 to {MAX_CONNECTIONS}")
}
