//! gitmesh: a decentralized, git-backed event mesh.
//!
//! Every node keeps an append-only NDJSON event log with deterministic BLAKE3
//! ids, exports its own events into its outbox in one shared git repository,
//! imports its peers' outboxes, and runs routing, scheduling and scaling
//! handlers locally. This crate is the whole library; `main.rs` is a thin CLI.

pub mod config;
pub mod daemon;
pub mod dispatch;
pub mod error;
pub mod event;
pub mod fsutil;
pub mod git;
pub mod keys;
pub mod ledger;
pub mod lock;
pub mod log;
pub mod node;
pub mod ops;
pub mod paths;
pub mod progress;
pub mod schema;
pub mod store;

pub use error::{Error, Result};
pub use event::Envelope;
pub use node::{Draft, Node, Published};
