//! `gitmesh mesh-export`.

use super::Output;
use gitmesh::ledger::{export, lock::SyncLock};
use gitmesh::{Error, Node};
use std::path::Path;

/// Flags of `mesh-export`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Export at most N events now (the rest on the next run)
    #[arg(long, value_name = "N")]
    pub max_events: Option<u64>,
}

pub fn run(root: &Path, a: Args) -> Result<Output, Error> {
    let node = Node::open(root)?;
    let lock = SyncLock::acquire(&node.paths, node.config.sync.lock_wait.0)?;
    let r = export::export(&node, &lock, a.max_events)?;
    let mut human = format!(
        "exported {} events of {} (through seq {}) in {} batch files\n",
        r.exported_events,
        r.node_id,
        r.exported_through_seq,
        r.batches.len()
    );
    if r.manifest_updated {
        human.push_str("manifest refreshed\n");
    }
    if !r.schemas.is_empty() {
        human.push_str(&format!("schemas carried: {}\n", r.schemas.join(", ")));
    }
    if !r.complete {
        human.push_str("more own events remain: run mesh-export again\n");
    }
    human.push_str("committed locally; `gitmesh mesh-sync` pushes it\n");
    Ok(Output::new(r, human))
}
