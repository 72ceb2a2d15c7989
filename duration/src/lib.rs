//! The duration syntax of querycache: `"90s"`, `"30m"`, `"1h30m"`, `"1d2h3m4s"`, and for
//! timeouts `"250ms"`.
//!
//! One parser serves every place a duration is written: `#[cached_query(ttl = "1h")]` (the
//! proc-macro crate, which cannot depend on querycache itself), the `CACHE_*` environment
//! variables (`CACHE_DEFAULT_TTL=30m`) and a `CacheConfig` read with serde. It depends on
//! nothing but the standard library and knows nothing of caches.
//!
//! The units are `d`, `h`, `m` and `s`, each at most once, largest first, with no space
//! between a number and its unit; [`parse_millis`] also takes milliseconds written alone
//! (`"1500ms"`). A number without a unit is refused here: what a bare number means (seconds
//! in `ttl = 3600` and `CACHE_DEFAULT_TTL=3600`, milliseconds in `CACHE_REDIS_TIMEOUT_MS=100`)
//! is the caller's to say.
//!
//! ```
//! use querycache_duration::{ErrorKind, parse_millis, parse_secs};
//!
//! assert_eq!(parse_secs("1h30m"), Ok(5_400));
//! assert_eq!(parse_millis("250ms"), Ok(250));
//! assert_eq!(parse_millis("1m30s"), Ok(90_000));
//!
//! let err = parse_secs("30m1h").unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Order);
//! assert_eq!(
//!     err.to_string(),
//!     "invalid duration \"30m1h\": each unit may appear once, largest first (\"1d2h30m15s\")"
//! );
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;

/// The units of [`parse_secs`], largest first, with their length in seconds.
const UNITS: [(&str, u64); 4] = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];

/// What is wrong with a duration text ([`Error::kind`]).
///
/// ```
/// use querycache_duration::{ErrorKind, parse_secs};
///
/// assert_eq!(parse_secs("3600").unwrap_err().kind(), ErrorKind::MissingUnit);
/// assert_eq!(parse_secs("1w").unwrap_err().kind(), ErrorKind::UnknownUnit);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The text is empty.
    Empty,
    /// Something other than a number stands where a number should.
    ExpectedNumber,
    /// A number has no unit (`"3600"`, `"1.5"`).
    MissingUnit,
    /// A unit is not one of `s`, `m`, `h`, `d` (nor `ms` where milliseconds are accepted).
    UnknownUnit,
    /// Milliseconds where only whole seconds are accepted ([`parse_secs`]).
    Milliseconds,
    /// Milliseconds mixed with other units (`"1s500ms"`).
    MixedMilliseconds,
    /// A space between a number and its unit (`"1 h"`).
    Space,
    /// A unit repeated, or units not largest first (`"30m1h"`).
    Order,
    /// The total does not fit in a `u64`.
    TooLarge,
}

/// A duration text that does not parse: the text, and what is wrong with it. Its `Display`
/// reads `invalid duration "<text>": <what is wrong>`; callers append how to write it.
///
/// ```
/// let err = querycache_duration::parse_secs("1 fortnight").unwrap_err();
/// assert_eq!(err.text(), "1 fortnight");
/// assert!(err.to_string().contains("unknown unit \"fortnight\""));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    text: String,
    kind: ErrorKind,
    why: String,
}

impl Error {
    fn new(text: &str, kind: ErrorKind, why: impl Into<String>) -> Self {
        Error {
            text: text.to_owned(),
            kind,
            why: why.into(),
        }
    }

    /// What is wrong, as a value.
    ///
    /// ```
    /// use querycache_duration::{ErrorKind, parse_secs};
    /// assert_eq!(parse_secs("").unwrap_err().kind(), ErrorKind::Empty);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The text that did not parse.
    ///
    /// ```
    /// assert_eq!(querycache_duration::parse_secs("1h 30m").unwrap_err().text(), "1h 30m");
    /// ```
    pub fn text(&self) -> &str {
        &self.text
    }

    /// What is wrong, in words, without the text (`"it is empty"`).
    ///
    /// ```
    /// assert_eq!(querycache_duration::parse_secs("").unwrap_err().reason(), "it is empty");
    /// ```
    pub fn reason(&self) -> &str {
        &self.why
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid duration {:?}: {}", self.text, self.why)
    }
}

impl std::error::Error for Error {}

/// Parses a duration in whole seconds: numbers with units among `d`, `h`, `m`, `s`, each at
/// most once, largest first (`"90s"`, `"30m"`, `"1h30m"`, `"1d2h3m4s"`). Zero (`"0s"`) is
/// accepted; whether it is allowed is the caller's to say.
///
/// ```
/// use querycache_duration::parse_secs;
///
/// assert_eq!(parse_secs("30m"), Ok(1_800));
/// assert_eq!(parse_secs("1d2h3m4s"), Ok(93_784));
/// assert!(parse_secs("500ms").is_err(), "whole seconds only");
/// assert!(parse_secs("3600").is_err(), "a bare number is the caller's to read");
/// ```
///
/// # Errors
/// An [`Error`] saying what is wrong, for any other text.
pub fn parse_secs(text: &str) -> Result<u64, Error> {
    let invalid = |kind, why: &str| Error::new(text, kind, why);
    if text.is_empty() {
        return Err(invalid(ErrorKind::Empty, "it is empty"));
    }
    let mut total: u64 = 0;
    // Index in UNITS of the last unit seen: units must come in decreasing order.
    let mut last: Option<usize> = None;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(invalid(
                ErrorKind::ExpectedNumber,
                "expected a number followed by a unit (`s`, `m`, `h` or `d`)",
            ));
        }
        let (number, after) = rest.split_at(digits);
        let spaced = after.starts_with(char::is_whitespace);
        let after = after.trim_start();
        let unit_len = after.len() - after.trim_start_matches(char::is_alphabetic).len();
        let unit = &after[..unit_len];
        if unit.is_empty() {
            return Err(invalid(
                ErrorKind::MissingUnit,
                "a number needs a unit (`s`, `m`, `h` or `d`)",
            ));
        }
        let Some(index) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(if unit == "ms" {
                invalid(
                    ErrorKind::Milliseconds,
                    "milliseconds are not supported (TTLs are whole seconds)",
                )
            } else {
                invalid(
                    ErrorKind::UnknownUnit,
                    &format!("unknown unit {unit:?}: the units are `s`, `m`, `h` and `d`"),
                )
            });
        };
        if spaced {
            return Err(invalid(
                ErrorKind::Space,
                "remove the space between the number and its unit",
            ));
        }
        if last.is_some_and(|last| index <= last) {
            return Err(invalid(
                ErrorKind::Order,
                "each unit may appear once, largest first (\"1d2h30m15s\")",
            ));
        }
        last = Some(index);
        let part = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(UNITS[index].1));
        total = part
            .and_then(|part| total.checked_add(part))
            .ok_or_else(|| invalid(ErrorKind::TooLarge, "it is too large"))?;
        rest = &after[unit_len..];
    }
    Ok(total)
}

/// Parses a duration in milliseconds: `"250ms"` (milliseconds stand alone), or a duration
/// as [`parse_secs`] reads it (`"2s"`, `"1m30s"`).
///
/// ```
/// use querycache_duration::parse_millis;
///
/// assert_eq!(parse_millis("250ms"), Ok(250));
/// assert_eq!(parse_millis("2s"), Ok(2_000));
/// assert!(parse_millis("1s500ms").is_err(), "write 1500ms");
/// ```
///
/// # Errors
/// An [`Error`] saying what is wrong, for any other text.
pub fn parse_millis(text: &str) -> Result<u64, Error> {
    let too_large = || Error::new(text, ErrorKind::TooLarge, "it is too large");
    if let Some(number) = text.strip_suffix("ms")
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
    {
        return number.parse::<u64>().map_err(|_| too_large());
    }
    if text.contains("ms") {
        return Err(Error::new(
            text,
            ErrorKind::MixedMilliseconds,
            "milliseconds stand alone (\"1500ms\", not \"1s500ms\")",
        ));
    }
    parse_secs(text)?.checked_mul(1000).ok_or_else(too_large)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(parse_secs("90s"), Ok(90));
        assert_eq!(parse_secs("30m"), Ok(1_800));
        assert_eq!(parse_secs("2h"), Ok(7_200));
        assert_eq!(parse_secs("1d"), Ok(86_400));
        assert_eq!(parse_secs("1h30m"), Ok(5_400));
        assert_eq!(parse_secs("1d2h3m4s"), Ok(93_784));
        assert_eq!(parse_secs("0s"), Ok(0));
        for (bad, kind) in [
            ("", ErrorKind::Empty),
            ("1 fortnight", ErrorKind::UnknownUnit),
            ("3600", ErrorKind::MissingUnit),
            ("1.5h", ErrorKind::MissingUnit),
            ("1h 30m", ErrorKind::ExpectedNumber),
            ("1 h", ErrorKind::Space),
            ("500ms", ErrorKind::Milliseconds),
            ("30m1h", ErrorKind::Order),
            ("1h1h", ErrorKind::Order),
            ("h", ErrorKind::ExpectedNumber),
            ("1w", ErrorKind::UnknownUnit),
            ("99999999999999999999d", ErrorKind::TooLarge),
            ("-5s", ErrorKind::ExpectedNumber),
        ] {
            let err = parse_secs(bad).expect_err(bad);
            assert_eq!(err.kind(), kind, "{bad:?}: {err}");
            assert_eq!(err.text(), bad);
        }
    }

    #[test]
    fn milliseconds() {
        assert_eq!(parse_millis("250ms"), Ok(250));
        assert_eq!(parse_millis("2s"), Ok(2_000));
        assert_eq!(parse_millis("1m30s"), Ok(90_000));
        assert_eq!(parse_millis("0ms"), Ok(0));
        assert_eq!(
            parse_millis("1s500ms").map_err(|e| e.kind()),
            Err(ErrorKind::MixedMilliseconds)
        );
        assert_eq!(
            parse_millis("99999999999999999999ms").map_err(|e| e.kind()),
            Err(ErrorKind::TooLarge)
        );
        assert_eq!(
            parse_millis("99999999999999999d").map_err(|e| e.kind()),
            Err(ErrorKind::TooLarge)
        );
    }
}
