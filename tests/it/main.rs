//! The integration suite: one binary, one module per concern.

mod cache_api;
mod support;
