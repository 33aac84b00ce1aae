//! `gitmesh daemon`.

use super::Output;
use gitmesh::daemon::{DaemonOptions, NodeOps};
use gitmesh::{Error, Node};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Flags of `daemon`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Time between syncs, e.g. 60s or 5m [default: [sync] interval of mesh.toml]
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub interval: Option<Duration>,
    /// Serve /status, /metrics, /events/stream and a dashboard on this address
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Allow --listen on a non-loopback address (the endpoints have no authentication)
    #[arg(long, requires = "listen")]
    pub listen_any: bool,
    /// Longest wait between syncs while the remote is unreachable
    #[arg(long, value_parser = parse_duration, default_value = "15m", value_name = "DURATION")]
    pub max_backoff: Duration,
    /// How long a stop signal waits for the pass in progress
    #[arg(long, value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    pub shutdown_timeout: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration like 60s ({e})"))
}

/// The real passes: one `mesh-sync` (fetch, import, dispatch, export, push) and one `mesh-dispatch`.
struct MeshOps;

impl NodeOps for MeshOps {
    fn sync(&self, node: &Node) -> Result<serde_json::Value, Error> {
        let opts = gitmesh::ledger::sync::SyncOptions {
            push: true,
            max_events: None,
            progress: gitmesh::progress::Progress::hidden(),
        };
        let dispatch = gitmesh::dispatch::DispatchOptions { max_events: None };
        let mut hook = |n: &Node| {
            let report = gitmesh::dispatch::run(n, &dispatch)?;
            Ok(serde_json::to_value(report).unwrap_or_default())
        };
        let report = gitmesh::ledger::sync::sync(node, &opts, &mut hook)?;
        Ok(serde_json::to_value(report).unwrap_or_default())
    }

    fn dispatch(&self, node: &Node) -> Result<serde_json::Value, Error> {
        let report = gitmesh::dispatch::run(
            node,
            &gitmesh::dispatch::DispatchOptions { max_events: None },
        )?;
        Ok(serde_json::to_value(report).unwrap_or_default())
    }
}

pub fn run(root: &Path, a: Args) -> Result<Output, Error> {
    let opts = DaemonOptions {
        interval: a.interval,
        max_backoff: a.max_backoff,
        listen: a.listen,
        listen_any: a.listen_any,
        shutdown_grace: a.shutdown_timeout,
        ..DaemonOptions::default()
    };
    let summary = gitmesh::daemon::run(root, opts, Arc::new(MeshOps))?;
    let mut h = String::new();
    let _ = writeln!(
        h,
        "daemon for {} stopped ({}) after {:.0}s",
        summary.node_id, summary.stopped_by, summary.uptime_sec
    );
    let fmt = |m: &std::collections::BTreeMap<&str, u64>| {
        m.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = writeln!(h, "syncs      {}", fmt(&summary.syncs));
    let _ = writeln!(h, "dispatches {}", fmt(&summary.dispatches));
    Ok(Output::new(summary, h))
}
