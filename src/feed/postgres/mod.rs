//! PostgreSQL change feeds: logical replication ([`FeedMode::Logical`](super::FeedMode::Logical))
//! and triggers + `NOTIFY` ([`FeedMode::Triggers`](super::FeedMode::Triggers)).

mod install;
pub(crate) mod listen;
pub(crate) mod logical;
pub(crate) mod pgoutput;
mod publication;
pub(crate) mod triggers;
mod visibility;

pub use install::{install_triggers, remove_triggers};
