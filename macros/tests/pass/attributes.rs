//! The signature, visibility, attributes and doc comments are kept.
#![deny(
    warnings,
    missing_docs,
    unused_qualifications,
    unreachable_pub,
    unused_results
)]
//! Crate docs.

use querycache::cached_query;

/// A public, documented cached function.
#[cached_query(ttl = 60)]
#[must_use]
#[inline]
pub async fn documented(x: u32) -> u32 {
    #![allow(clippy::let_and_return)]
    let y = x;
    y
}

/// Attributes before the cached_query one are kept too, and paths work.
#[allow(unused_variables)]
#[querycache::cached_query(ttl = 60)]
pub(crate) async fn path_form(x: u32, #[querycache::cache_skip] unused: u32) -> u32 {
    x
}

/// Composes with #[tracing::instrument].
#[cached_query(ttl = 60)]
#[tracing::instrument(level = "debug")]
pub async fn instrumented(x: u32) -> u32 {
    x
}

/// A lifetime in the signature.
#[cached_query(ttl = 60)]
pub async fn borrowed<'a>(name: &'a str, parts: &'a [String]) -> String {
    format!("{name}{}", parts.len())
}

mod nested {
    /// Private and nested.
    #[querycache::cached_query]
    async fn private(x: u32) -> u32 {
        x
    }

    pub(super) fn use_it() {
        let _ = private;
    }
}

pub(crate) fn main() {
    let _ = (documented, path_form, instrumented, borrowed);
    nested::use_it();
}
