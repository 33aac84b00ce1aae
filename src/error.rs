//! The top-level error of gitmesh: an operation's or the daemon's failure, its
//! stable `kind` for `--json` and its process exit code.

use crate::daemon::DaemonError;
use crate::node::NodeError;
use crate::ops::OpsError;

/// Any failure of a gitmesh command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operation failed.
    #[error(transparent)]
    Ops(#[from] OpsError),
    /// The daemon could not start or run.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
}

/// Everything an operation's error converts from converts into the top-level error too.
macro_rules! via_ops {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Ops(OpsError::from(e))
            }
        }
    )*};
}

via_ops!(
    crate::config::ConfigError,
    crate::event::EventError,
    crate::log::LogError,
    crate::fsutil::PathError,
    crate::ledger::LedgerError,
    crate::dispatch::DispatchError,
    crate::schema::SchemaError,
    NodeError,
);

impl Error {
    /// A request that cannot be done as asked (exit code 2).
    pub fn usage(msg: impl Into<String>) -> Error {
        Error::Ops(OpsError::Usage(msg.into()))
    }

    /// A named thing that does not exist.
    pub fn not_found(msg: impl Into<String>) -> Error {
        Error::Ops(OpsError::NotFound(msg.into()))
    }

    /// Stable machine-readable kind for `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Ops(e) => e.kind(),
            Error::Daemon(e) => e.kind(),
        }
    }

    /// Process exit code: 2 for usage errors, 75 when only the remote failed, else 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Ops(e) => e.exit_code(),
            // An invalid mesh.toml at start: a restart would fail the same way (systemd's
            // RestartPreventExitStatus=2 stops the loop).
            Error::Daemon(DaemonError::Options(_) | DaemonError::Node(NodeError::Config(_))) => 2,
            Error::Daemon(DaemonError::Pass(e)) => e.exit_code(),
            Error::Daemon(_) => 1,
        }
    }
}

/// Result with the top-level error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
