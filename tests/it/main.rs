//! The integration suite: one binary, one module per concern.

mod cache_api;
mod invariants;
mod macros;
mod sea_orm_writes;
mod support;
mod transactions;
