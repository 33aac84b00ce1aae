//! The library's top-level error: one variant per area, each with a stable `kind`.

use crate::{config::ConfigError, event::EventError, fsutil::PathError, log::LogError};

/// Any failure of a gitmesh operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `mesh.toml` is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An event or payload is invalid.
    #[error(transparent)]
    Event(#[from] EventError),
    /// Line `line` of a batch is invalid; nothing of the batch was written.
    #[error("line {line}: {source}")]
    BatchLine {
        line: usize,
        #[source]
        source: Box<Error>,
    },
    /// The event log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] PathError),
    /// The ledger or its git repository failed.
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    /// Dispatch failed (decision table, handler state, ...).
    #[error(transparent)]
    Dispatch(#[from] crate::dispatch::DispatchError),
    /// The daemon could not start or run.
    #[error(transparent)]
    Daemon(#[from] crate::daemon::DaemonError),
    /// The caller asked for something that cannot be done as asked.
    #[error("{0}")]
    Usage(String),
    /// A schema check failed, or a schema file is bad.
    #[error(transparent)]
    Schema(Box<crate::schema::SchemaError>),
    /// A named thing was not found.
    #[error("{0}")]
    NotFound(String),
}

impl From<crate::schema::SchemaError> for Error {
    fn from(e: crate::schema::SchemaError) -> Self {
        Error::Schema(Box::new(e))
    }
}

impl Error {
    /// Stable machine-readable kind for `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::Event(EventError::Payload { .. }) => "invalid_payload",
            Error::Event(_) => "invalid_event",
            Error::BatchLine { source, .. } => source.kind(),
            Error::Log(_) => "log",
            Error::Io(_) => "io",
            Error::Ledger(e) => e.kind(),
            Error::Dispatch(crate::dispatch::DispatchError::Table(_)) => "config",
            Error::Dispatch(crate::dispatch::DispatchError::Ledger(e)) => e.kind(),
            Error::Dispatch(_) => "dispatch",
            Error::Daemon(e) => e.kind(),
            Error::Schema(e) => e.kind(),
            Error::Usage(_) => "usage",
            Error::NotFound(_) => "not_found",
        }
    }

    /// Process exit code: 2 for usage errors, 75 when only the remote failed, else 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Ledger(e) if e.is_offline() => 75,
            _ => 1,
        }
    }
}

/// Result with the library error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
