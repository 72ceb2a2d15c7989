//! Support for the crate's own tests and fuzz targets, compiled only for them: never part of
//! a user's build, nor of its feature list (quick_cache's way).
//!
//! * `proptest_config` (unit tests): the property tests' case count.
//! * `fuzz` (`--cfg fuzzing`, which cargo-fuzz sets when it builds the targets in `fuzz/`):
//!   the entry points the targets call, exposed as the hidden `querycache::__fuzz`.

#[cfg(fuzzing)]
pub mod fuzz;
#[cfg(test)]
pub(crate) mod proptest_config;
