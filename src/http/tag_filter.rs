//! [`TagFilter`]: which tags may leave the server — on the live invalidation stream
//! (`GET <management>/events`) and in the opt-in `X-Cache-Tags` header of cached answers.
//!
//! Tags say which rows changed, and application tags may name users (`user:42`): by default
//! only model tags (`model:…`, which name tables and row ids) are sent.

use std::sync::Arc;

use crate::Error;

/// The environment variable listing the tag prefixes the management router's event stream
/// sends.
pub(crate) const EVENT_TAGS_VAR: &str = "CACHE_EVENTS_TAG_PREFIXES";

/// Which tags a client may see: those starting with one of a list of prefixes (default:
/// `model:` only), or every tag ([`all`](Self::all)), or none ([`none`](Self::none)).
///
/// ```
/// use querycache::http::TagFilter;
///
/// let filter = TagFilter::default();
/// assert!(filter.allows("model:songs:42"));
/// assert!(!filter.allows("user:7"), "application tags may name users");
///
/// let wider = TagFilter::default().allow_prefix("team:");
/// assert!(wider.allows("team:3"));
/// assert!(!TagFilter::none().allows("model:songs"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFilter {
    prefixes: Arc<[String]>,
    all: bool,
}

impl Default for TagFilter {
    fn default() -> Self {
        Self::models()
    }
}

impl TagFilter {
    /// Model tags only (`model:<table>`, `model:<table>:<id>`, `model:<table>#bulk`): the
    /// default.
    ///
    /// ```
    /// use querycache::http::TagFilter;
    /// assert_eq!(TagFilter::models(), TagFilter::default());
    /// assert!(TagFilter::models().allows("model:songs#bulk"));
    /// ```
    pub fn models() -> Self {
        TagFilter {
            prefixes: Arc::from(["model:".to_owned()]),
            all: false,
        }
    }

    /// No tag at all (the event stream then sends only `ready`, `reset` and keep-alives).
    ///
    /// ```
    /// assert!(!querycache::http::TagFilter::none().allows("model:songs"));
    /// ```
    pub fn none() -> Self {
        TagFilter {
            prefixes: Arc::from([]),
            all: false,
        }
    }

    /// Every tag, application tags included: only when none of them is private.
    ///
    /// ```
    /// assert!(querycache::http::TagFilter::all().allows("user:7"));
    /// ```
    pub fn all() -> Self {
        TagFilter {
            prefixes: Arc::from([]),
            all: true,
        }
    }

    /// Also the tags starting with `prefix` (`"team:"`). An empty prefix adds nothing.
    ///
    /// ```
    /// use querycache::http::TagFilter;
    /// let filter = TagFilter::none().allow_prefix("team:");
    /// assert!(filter.allows("team:1") && !filter.allows("model:songs"));
    /// ```
    #[must_use]
    pub fn allow_prefix(self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        if prefix.is_empty() || self.prefixes.contains(&prefix) {
            return self;
        }
        let mut prefixes = self.prefixes.to_vec();
        prefixes.push(prefix);
        TagFilter {
            prefixes: prefixes.into(),
            all: self.all,
        }
    }

    /// Whether `tag` may be sent.
    ///
    /// ```
    /// assert!(querycache::http::TagFilter::default().allows("model:songs"));
    /// ```
    pub fn allows(&self, tag: &str) -> bool {
        self.all || self.prefixes.iter().any(|prefix| tag.starts_with(prefix))
    }

    /// The filter a variable's value describes: comma-separated prefixes (`model:,team:`),
    /// `*` for every tag, empty for none. Items are trimmed; empty ones are ignored.
    ///
    /// ```
    /// use querycache::http::TagFilter;
    ///
    /// let filter = TagFilter::parse("CACHE_EVENTS_TAG_PREFIXES", "model:, team:").unwrap();
    /// assert!(filter.allows("team:1") && filter.allows("model:songs") && !filter.allows("user:1"));
    /// assert_eq!(TagFilter::parse("CACHE_EVENTS_TAG_PREFIXES", "*").unwrap(), TagFilter::all());
    /// assert_eq!(TagFilter::parse("CACHE_EVENTS_TAG_PREFIXES", "").unwrap(), TagFilter::none());
    /// let err = TagFilter::parse("CACHE_EVENTS_TAG_PREFIXES", "model:,x y").unwrap_err();
    /// assert!(err.to_string().contains("x y"));
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] naming `name` and the prefix at fault when a prefix holds a space or
    /// a control character (no tag could start with it), or `*` is mixed with prefixes.
    pub fn parse(name: &str, value: &str) -> Result<Self, Error> {
        let items: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .collect();
        if items == ["*"] {
            return Ok(Self::all());
        }
        let mut filter = Self::none();
        for item in items {
            if item == "*" {
                return Err(Error::config(
                    name,
                    value,
                    "`*` (every tag) cannot be combined with prefixes",
                ));
            }
            if item.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(Error::config(
                    name,
                    value,
                    format!("the prefix {item:?} holds a space or a control character"),
                ));
            }
            filter = filter.allow_prefix(item);
        }
        Ok(filter)
    }

    /// The tags of `tags` this filter allows.
    pub(crate) fn kept<'a>(&self, tags: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        tags.into_iter().filter(|tag| self.allows(tag)).collect()
    }
}
