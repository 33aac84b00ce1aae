//! `gitmesh daemon`.

use super::Output;
use gitmesh::Error;
use gitmesh::daemon::{DaemonOptions, MeshOps};
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
