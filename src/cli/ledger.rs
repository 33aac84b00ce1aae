//! `gitmesh ledger ...`: maintenance of the shared ledger.

use super::Output;
use gitmesh::ledger::compact;
use gitmesh::ledger::lock::SyncLock;
use gitmesh::{Error, Node};
use std::fmt::Write as _;
use std::path::Path;

/// `ledger` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum LedgerCommand {
    /// Roll own batches every live peer has imported into monthly archive files
    /// (committed locally; the next mesh-sync pushes them)
    Compact,
}

pub fn run(root: &Path, c: LedgerCommand) -> Result<Output, Error> {
    let node = Node::open(root)?;
    match c {
        LedgerCommand::Compact => {
            let lock = SyncLock::acquire(&node.paths, node.config.sync.lock_wait.0)?;
            let r = compact::compact(&node, &lock)?;
            let mut h = String::new();
            let _ = writeln!(
                h,
                "archived {} batches into {} archive files (watermark seq {}); {} batches remain",
                r.archived_batches,
                r.archive_files.len(),
                r.watermark,
                r.remaining_batches
            );
            for (peer, seq) in &r.held_back_by {
                let _ = writeln!(h, "held back by {peer} (imported through seq {seq})");
            }
            for s in &r.stale_peers {
                let _ = writeln!(
                    h,
                    "stale  {} last seen {} (beyond the retention: not waited for)",
                    s.node_id, s.last_seen
                );
            }
            Ok(Output::new(r, h))
        }
    }
}
