//! `gitmesh daemon`: a long-running node.
//!
//! One tokio process per node root that
//! - syncs every interval (±10% jitter, exponential backoff while the remote is
//!   unreachable); heartbeats and lease renewal happen inside sync;
//! - watches the event log and dispatches new events within a second of their
//!   append (file notifications, debounced, plus a fallback poll);
//! - runs sync and dispatch on a blocking thread, never two at once;
//! - stops cleanly on SIGTERM/SIGINT, reloads `mesh.toml` on SIGHUP;
//! - optionally serves `/status`, `/metrics`, `/events/stream`, `/trace/ID` and a
//!   dashboard on a loopback address.
//!
//! What a pass does is injected through [`NodeOps`], so the daemon is independent
//! of how sync and dispatch are implemented.

mod http;
pub mod lock;
pub mod metrics;
pub mod process;
mod runner;
pub mod schedule;
pub mod tail;
pub mod trace;
mod watch;

pub use runner::{Controls, StopHandle, Summary, controls, run, run_until};

use crate::dispatch::{DispatchOptions, DispatchReport};
use crate::node::Node;
use crate::ops::OpsError;
use crate::ops::sync::{SyncMode, SyncReport};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What the daemon drives: [`MeshOps`] in production, scripted passes in tests.
pub trait NodeOps: Send + Sync + 'static {
    /// One `mesh-sync` pass.
    fn sync(&self, node: &Node) -> Result<SyncReport, OpsError>;
    /// One `mesh-dispatch` pass.
    fn dispatch(&self, node: &Node) -> Result<DispatchReport, OpsError>;
    /// Exports and pushes own new events (no fetch first, no lease). A driver without
    /// it leaves own events to the next full sync.
    fn push(&self, _node: &Node) -> Result<SyncReport, OpsError> {
        Ok(SyncReport::default())
    }
    /// A poll: fetches, and imports and dispatches when the fetch moved a head (no
    /// export, no push). A driver without it leaves peers' events to the next full sync.
    fn pull(&self, _node: &Node) -> Result<SyncReport, OpsError> {
        Ok(SyncReport::default())
    }
    /// Live nodes of the mesh (seen within `sync.stale_after`, this node included),
    /// which share the poll budget. A driver without it counts this node alone.
    fn live_nodes(&self, _node: &Node) -> Result<u32, OpsError> {
        Ok(1)
    }
}

/// The real passes: a full sync (fetch, import, dispatch, export, push) and a dispatch,
/// each dispatching at most `dispatch.daemon_pass_events` events so the next
/// sync, heartbeat and lease renewal are never held up by a flood of events.
#[derive(Debug, Clone, Copy, Default)]
pub struct MeshOps;

impl NodeOps for MeshOps {
    fn sync(&self, node: &Node) -> Result<SyncReport, OpsError> {
        crate::ops::sync::sync(node, &pass_options(node, SyncMode::Full))
    }

    fn push(&self, node: &Node) -> Result<SyncReport, OpsError> {
        crate::ops::sync::sync(node, &pass_options(node, SyncMode::Push))
    }

    fn pull(&self, node: &Node) -> Result<SyncReport, OpsError> {
        crate::ops::sync::sync(node, &pass_options(node, SyncMode::Pull))
    }

    fn live_nodes(&self, node: &Node) -> Result<u32, OpsError> {
        crate::ops::status::live_nodes(node)
    }

    fn dispatch(&self, node: &Node) -> Result<DispatchReport, OpsError> {
        crate::ops::append::dispatch(node, &pass_bound(node))
    }
}

/// The options of one daemon sync pass of `mode`.
fn pass_options(node: &Node, mode: SyncMode) -> crate::ops::sync::SyncOptions {
    crate::ops::sync::SyncOptions {
        push: true,
        max_events: None,
        progress: crate::progress::Progress::hidden(),
        dispatch: (mode != SyncMode::Push).then(|| pass_bound(node)),
        mode,
    }
}

/// The dispatch options of one daemon pass: at most `dispatch.daemon_pass_events` events.
fn pass_bound(node: &Node) -> DispatchOptions {
    DispatchOptions {
        max_events: Some(node.config.dispatch.daemon_pass_events),
    }
}

/// What one pass of the daemon did.
#[derive(Debug, Clone)]
pub enum PassReport {
    /// A sync pass.
    Sync(Box<SyncReport>),
    /// A dispatch pass.
    Dispatch(DispatchReport),
    /// A poll of the remote: a fetch, with import and dispatch when it moved.
    Poll(Box<SyncReport>),
}

impl PassReport {
    /// Local work is done but the remote was not reached.
    pub fn offline(&self) -> bool {
        match self {
            PassReport::Sync(r) | PassReport::Poll(r) => r.push.offline,
            PassReport::Dispatch(_) => false,
        }
    }

    /// The dispatch part of the pass, when one ran.
    pub fn dispatch(&self) -> Option<&DispatchReport> {
        match self {
            PassReport::Sync(r) | PassReport::Poll(r) => r.dispatch.as_ref(),
            PassReport::Dispatch(d) => Some(d),
        }
    }
}

/// Errors that stop the daemon from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Another daemon holds the root's daemon lock.
    #[error(
        "another gitmesh daemon is already running on this node root{} (lock {path}); \
         stop it first, or use another --root",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Busy {
        /// The lock file.
        path: PathBuf,
        /// The holder's pid, when it wrote one.
        pid: Option<u32>,
    },
    /// The HTTP address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        #[source]
        /// Why binding failed.
        source: std::io::Error,
    },
    /// The async runtime or a watcher could not be set up.
    #[error("daemon runtime: {0}")]
    Runtime(String),
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] crate::fsutil::PathError),
    /// The daemon's options ask for something that cannot be done as asked.
    #[error("{0}")]
    Options(String),
    /// The node root could not be opened.
    #[error(transparent)]
    Node(#[from] crate::node::NodeError),
    /// A sync or dispatch pass failed.
    #[error(transparent)]
    Pass(#[from] Box<OpsError>),
    /// A sync or dispatch pass panicked.
    #[error("the {step} pass panicked: {message}")]
    Panicked {
        /// Which pass.
        step: &'static str,
        /// What the panic said.
        message: String,
    },
    /// A pass was still running when the shutdown grace period ended.
    #[error("a {step} pass was still running {grace:?} after the stop signal; exited anyway")]
    StopTimeout {
        /// The pass (`sync` or `dispatch`).
        step: &'static str,
        /// How long the stop waited.
        grace: Duration,
    },
}

impl DaemonError {
    /// Stable kind for `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            DaemonError::Busy { .. } => "busy",
            DaemonError::Bind { .. } => "bind",
            DaemonError::Runtime(_) => "runtime",
            DaemonError::Io(_) => "io",
            DaemonError::StopTimeout { .. } => "stop_timeout",
            DaemonError::Options(_) => "usage",
            DaemonError::Pass(e) => e.kind(),
            DaemonError::Node(e) => e.kind(),
            DaemonError::Panicked { .. } => "panic",
        }
    }
}

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Time between syncs; `None` uses `[sync] interval` (re-read on SIGHUP).
    pub interval: Option<Duration>,
    /// Longest delay between syncs while the remote is unreachable.
    pub max_backoff: Duration,
    /// Address of the HTTP server; `None` serves nothing.
    pub listen: Option<SocketAddr>,
    /// Allow a non-loopback `listen` address.
    pub listen_any: bool,
    /// How long a stop waits for the pass in progress.
    pub shutdown_grace: Duration,
    /// Fallback poll of the log's size, in case a file notification is missed.
    pub poll_interval: Duration,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        DaemonOptions {
            interval: None,
            max_backoff: Duration::from_secs(900),
            listen: None,
            listen_any: false,
            shutdown_grace: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
        }
    }
}

impl DaemonOptions {
    /// Checks the options before anything starts.
    pub fn check(&self) -> Result<(), DaemonError> {
        if let Some(addr) = self.listen
            && !addr.ip().is_loopback()
            && !self.listen_any
        {
            return Err(DaemonError::Options(format!(
                "--listen {addr}: refusing a non-loopback address; the HTTP endpoints have \
                 no authentication. Pass --listen-any to expose them anyway."
            )));
        }
        if self.interval.is_some_and(|i| i.is_zero()) {
            return Err(DaemonError::Options(
                "--interval must be longer than zero".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
