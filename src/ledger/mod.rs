//! The ledger: the shared repository's layout, node manifests, batches and the lease.

pub mod layout;
pub mod lease;
pub mod manifest;
pub mod repo;

pub use manifest::Manifest;

use crate::git::GitError;
use std::path::PathBuf;

/// Errors of ledger operations.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// A git operation failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// A file of the ledger is not what it should be.
    #[error("ledger file {path}: {reason}")]
    BadFile { path: String, reason: String },
    /// A local file operation failed.
    #[error(transparent)]
    Io(#[from] crate::fsutil::PathError),
    /// Another sync holds the node's sync lock.
    #[error("another sync is running on this node (lock {path}); try again when it finishes")]
    Busy { path: PathBuf },
    /// The remote kept rejecting pushes after every retry.
    #[error("push rejected {attempts} times: other nodes keep pushing; the next sync will retry")]
    Contended { attempts: u32 },
}

impl LedgerError {
    /// Stable kind for `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            LedgerError::Git(e) if e.is_unreachable() => "offline",
            LedgerError::Git(_) => "git",
            LedgerError::BadFile { .. } => "ledger",
            LedgerError::Io(_) => "io",
            LedgerError::Busy { .. } => "busy",
            LedgerError::Contended { .. } => "contended",
        }
    }

    /// Whether the remote could not be reached (exit code 75).
    pub fn is_offline(&self) -> bool {
        matches!(self, LedgerError::Git(e) if e.is_unreachable())
    }
}
