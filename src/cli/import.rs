//! `gitmesh mesh-import`.

use super::Output;
use gitmesh::ledger::{import, lock::SyncLock};
use gitmesh::progress::{self, Progress};
use gitmesh::{Error, Node};
use std::fmt::Write as _;
use std::path::Path;

/// Flags of `mesh-import`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Import at most N new events now (the next run resumes)
    #[arg(long, value_name = "N")]
    pub max_events: Option<u64>,
}

pub fn run(root: &Path, a: Args, json: bool) -> Result<Output, Error> {
    let node = Node::open(root)?;
    let lock = SyncLock::acquire(&node.paths, node.config.sync.lock_wait.0)?;
    let progress = Progress::new(None, "import", progress::visible(json));
    let r = import::import_with(&node, &lock, a.max_events, &progress)?;
    progress.finish();
    let mut h = format!(
        "imported {} events ({} already held) from {} peer files; {} quarantined\n",
        r.imported_events, r.duplicate_events, r.scanned_files, r.quarantined
    );
    for q in &r.rejected {
        let line = q.line.map(|l| format!(" line {l}")).unwrap_or_default();
        let _ = writeln!(
            h,
            "  quarantined {}{line}: {} ({})",
            q.path,
            q.reason.code(),
            q.detail
        );
    }
    if r.repeated_paths > 0 {
        let _ = writeln!(
            h,
            "  {} paths held an object already read or quarantined (counted, not read again)",
            r.repeated_paths
        );
    }
    for (peer, n) in &r.deferred {
        let _ = writeln!(
            h,
            "  deferred: {n} files of {peer} wait for the next import (per-peer read caps)"
        );
    }
    for g in &r.gaps {
        let _ = writeln!(
            h,
            "  gap: {} seq {}..{} missing",
            g.node_id, g.from_seq, g.to_seq
        );
    }
    if !r.complete {
        h.push_str("more remains: run mesh-import again\n");
    }
    Ok(Output::new(r, h))
}
