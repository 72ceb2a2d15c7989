//! The integration suite: one binary, one module per concern.

mod cache_api;
mod support;
mod invariants;
mod sea_orm_writes;
mod transactions;
mod macros;
