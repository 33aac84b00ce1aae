//! The operations layer's error: one variant per area below it, each with a stable `kind`.

use crate::node::NodeError;
use crate::{config::ConfigError, event::EventError, fsutil::PathError, log::LogError};

/// Any failure of a gitmesh operation (sync, status, init, query).
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The node could not be opened, or an event could not be published.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The ledger or its git repository failed.
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    /// Dispatch failed (decision table, handler state, ...).
    #[error(transparent)]
    Dispatch(#[from] crate::dispatch::DispatchError),
    /// The caller asked for something that cannot be done as asked.
    #[error("{0}")]
    Usage(String),
    /// A named thing was not found.
    #[error("{0}")]
    NotFound(String),
}

/// Errors of the layers below the node reach operations through [`NodeError`].
macro_rules! via_node {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for OpsError {
            fn from(e: $t) -> Self {
                OpsError::Node(NodeError::from(e))
            }
        }
    )*};
}

via_node!(
    ConfigError,
    EventError,
    LogError,
    PathError,
    crate::schema::SchemaError
);

impl From<crate::git::GitError> for OpsError {
    fn from(e: crate::git::GitError) -> Self {
        OpsError::Ledger(e.into())
    }
}

impl OpsError {
    /// Stable machine-readable kind for `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            OpsError::Node(e) => e.kind(),
            OpsError::Ledger(e) => e.kind(),
            OpsError::Dispatch(crate::dispatch::DispatchError::Table(_)) => "config",
            OpsError::Dispatch(crate::dispatch::DispatchError::Ledger(e)) => e.kind(),
            OpsError::Dispatch(_) => "dispatch",
            OpsError::Usage(_) => "usage",
            OpsError::NotFound(_) => "not_found",
        }
    }

    /// The ledger error underneath, wherever the operation met it.
    fn ledger(&self) -> Option<&crate::ledger::LedgerError> {
        match self {
            OpsError::Ledger(e) | OpsError::Dispatch(crate::dispatch::DispatchError::Ledger(e)) => {
                Some(e)
            }
            _ => None,
        }
    }

    /// The remote could not be reached; local work is kept for the next sync.
    pub fn is_offline(&self) -> bool {
        self.ledger().is_some_and(|e| e.is_offline())
    }

    /// Another sync holds the node's lock.
    pub fn is_busy(&self) -> bool {
        matches!(self.ledger(), Some(crate::ledger::LedgerError::Busy { .. }))
    }

    /// Process exit code: 2 for usage errors, 75 when only the remote failed, else 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            OpsError::Usage(_) | OpsError::Node(NodeError::Draft(_)) => 2,
            OpsError::Ledger(e) if e.is_offline() => 75,
            _ => 1,
        }
    }
}

/// Result of an operation.
pub type Result<T, E = OpsError> = std::result::Result<T, E>;
