//! Operations: what a command does, composed from the layers below with typed
//! reports (sync, status, init, queries). The daemon and the CLI call these.

pub mod append;
pub mod doctor;
pub mod error;
pub mod follow;
pub mod health;
pub mod identity;
pub mod init;
pub mod query;
pub mod roster;
pub mod schema;
pub mod status;
pub mod sync;

pub use error::{OpsError, Result};
