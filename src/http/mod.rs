//! HTTP support for axum (feature `axum`): whole-response caching with deep ETags,
//! conditional GETs, and the management router.
//!
//! | you want to | look at |
//! | --- | --- |
//! | the JSON shape every endpoint answers with | [`ApiResponse`], [`ApiError`] |

mod envelope;

pub use envelope::{ApiError, ApiResponse};
