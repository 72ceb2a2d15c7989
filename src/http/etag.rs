//! Entity tags: the deep ETag of a cached route, the body-hash ETag, and `If-None-Match`.

use axum::http::{HeaderMap, HeaderValue, header};

/// The deep ETag of a cached route: `"qc-<32 hex digits>"`, a hash of the route's cache key
/// (path, query, `Vary` values, `Authorization` hash, namespace) and the fingerprint of its
/// tags' versions. Stable across processes: instances sharing Redis mint the same one.
pub(crate) fn deep(key: &str, fingerprint: u64) -> HeaderValue {
    quoted(DECLARED, keyed(key, fingerprint))
}

/// The deep ETag of a cached route whose handler was observed reading through an
/// integrated connection: `"qo-<32 hex digits>"`, from the key and the fingerprint of its
/// declared tags' versions joined to those it was observed to read. It cannot be checked
/// before the entry is found (what the handler reads is known only from the entry), so
/// [`IfNoneMatch::may_be_deep`] leaves it to the lookup: a valid entry whose ETag matches
/// is answered `304`.
pub(crate) fn observed(key: &str, fingerprint: u64) -> HeaderValue {
    quoted(OBSERVED, keyed(key, fingerprint))
}

/// The prefix of a deep ETag checked against the declared tags' versions.
const DECLARED: &str = "qc-";
/// The prefix of a deep ETag that includes observed reads.
const OBSERVED: &str = "qo-";

fn keyed(key: &str, fingerprint: u64) -> u128 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(b"querycache:etag\0");
    hasher.update(key.as_bytes());
    hasher.update(b"\0");
    hasher.update(&fingerprint.to_le_bytes());
    hasher.digest128()
}

/// Whether `etag` is a deep ETag of the declared tags alone (`"qc-..."`), which the current
/// versions of those tags can confirm.
pub(crate) fn is_declared_deep(etag: &HeaderValue) -> bool {
    etag.as_bytes().starts_with(b"\"qc-")
}

/// A strong ETag from the body's bytes: `"<32 hex digits>"` (xxh3-128).
pub(crate) fn body_hash(body: &[u8]) -> HeaderValue {
    quoted("", xxhash_rust::xxh3::xxh3_128(body))
}

fn quoted(prefix: &str, hash: u128) -> HeaderValue {
    let text = format!("\"{prefix}{hash:032x}\"");
    // Quotes, ASCII letters and digits: always a valid header value.
    HeaderValue::try_from(text).unwrap_or(HeaderValue::from_static("\"\""))
}

/// The `If-None-Match` condition of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IfNoneMatch {
    /// `*`: any current representation.
    Any,
    /// A list of entity tags, as their opaque part (quotes included, `W/` dropped: GET
    /// conditions use the weak comparison, RFC 9110 §13.1.2).
    Tags(Vec<String>),
}

impl IfNoneMatch {
    /// The condition of `headers`, all `If-None-Match` lines together; `None` when there is
    /// none (or nothing in it parses).
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let mut tags = Vec::new();
        for value in headers.get_all(header::IF_NONE_MATCH) {
            let Ok(text) = value.to_str() else {
                continue;
            };
            if text.trim() == "*" {
                return Some(IfNoneMatch::Any);
            }
            parse_list(text, &mut tags);
        }
        (!tags.is_empty()).then_some(IfNoneMatch::Tags(tags))
    }

    /// Whether `etag` (a strong or weak entity tag) satisfies the condition, so that a
    /// GET or HEAD is answered `304 Not Modified`. `*` matches any: call it only when a
    /// current representation exists.
    pub(crate) fn matches(&self, etag: &HeaderValue) -> bool {
        let Ok(etag) = etag.to_str() else {
            return false;
        };
        let opaque = etag.trim().strip_prefix("W/").unwrap_or(etag.trim());
        match self {
            IfNoneMatch::Any => true,
            IfNoneMatch::Tags(tags) => tags.iter().any(|tag| tag == opaque),
        }
    }

    /// Whether some tag could be a deep ETag (`"qc-..."`): only then is the fingerprint
    /// worth reading before the entry.
    pub(crate) fn may_be_deep(&self) -> bool {
        match self {
            IfNoneMatch::Any => false,
            IfNoneMatch::Tags(tags) => tags.iter().any(|tag| tag.starts_with("\"qc-")),
        }
    }
}

/// Appends the entity tags of one `If-None-Match` line to `out`. An entity tag is
/// `[W/]"<characters other than a quote>"`; commas may appear inside the quotes, so the
/// list is scanned rather than split. Scanning stops at the first malformed element.
fn parse_list(text: &str, out: &mut Vec<String>) {
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return;
        }
        let body = rest.strip_prefix("W/").unwrap_or(rest);
        let Some(inner) = body.strip_prefix('"') else {
            return;
        };
        let Some(end) = inner.find('"') else {
            return;
        };
        out.push(format!("\"{}\"", &inner[..end]));
        rest = &inner[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(values: &[&str]) -> Option<IfNoneMatch> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
        }
        IfNoneMatch::from_headers(&headers)
    }

    #[test]
    fn lists_weak_tags_and_star() {
        let strong = HeaderValue::from_static("\"abc\"");
        let c = condition(&["\"x\", W/\"abc\""]).unwrap();
        assert!(c.matches(&strong));
        assert!(c.matches(&HeaderValue::from_static("W/\"abc\"")));
        assert!(!c.matches(&HeaderValue::from_static("\"abd\"")));
        assert!(condition(&["\"x\"", "\"abc\""]).unwrap().matches(&strong));
        assert_eq!(condition(&["*"]), Some(IfNoneMatch::Any));
        assert!(condition(&["*"]).unwrap().matches(&strong));
        assert_eq!(condition(&[]), None);
        assert_eq!(condition(&["garbage"]), None);
    }

    #[test]
    fn commas_inside_quotes_are_part_of_the_tag() {
        let c = condition(&["\"a,b\", \"c\""]).unwrap();
        assert!(c.matches(&HeaderValue::from_static("\"a,b\"")));
        assert!(c.matches(&HeaderValue::from_static("\"c\"")));
        assert!(!c.matches(&HeaderValue::from_static("\"a\"")));
    }

    #[test]
    fn deep_tags_are_recognised_and_stable() {
        let etag = deep("http:/songs/7:abc", 42);
        assert_eq!(etag, deep("http:/songs/7:abc", 42));
        assert_ne!(etag, deep("http:/songs/7:abc", 43));
        assert_ne!(etag, deep("http:/songs/8:abc", 42));
        let text = etag.to_str().unwrap();
        assert!(
            text.starts_with("\"qc-") && text.len() == 2 + 3 + 32,
            "{text}"
        );
        assert!(condition(&[text]).unwrap().may_be_deep());
        assert!(!condition(&["\"abc\""]).unwrap().may_be_deep());
    }
}
