//! querycache (tour written below).
#![warn(missing_docs)]

mod cache;
pub mod config;
mod error;
mod flight;
mod global;
mod key;
mod options;
pub mod orm;
#[doc(hidden)]
pub mod __private;
mod stats;
mod store;
pub mod tags;
mod write;

pub use querycache_macros::{cache_count_query, cache_model_query, cache_skip, cached_query};
pub use global::{global, install};

pub use cache::{Cache, CacheValue};
pub use config::{CacheConfig, CacheConfigBuilder, InvalidationStrategy};
pub use error::Error;
pub use key::Key;
pub use options::EntryOptions;
pub use stats::{CacheStats, NamespaceStats};
pub use tags::{CacheModel, Tag};
pub use options::DEFAULT_NAMESPACE;
