//! Node manifests (`nodes/<node_id>.json`): who a node is and how far it has got.

use super::LedgerError;
use crate::git::RepoContext;
use crate::store::layout::Layout;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One node's manifest in the ledger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The node.
    pub node_id: String,
    /// What it can do.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Free-form labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Hex ed25519 public key, when the node signs its events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// gitmesh version that wrote it.
    #[serde(default)]
    pub version: String,
    /// Heartbeat: when the node last synced (RFC 3339).
    #[serde(default)]
    pub last_seen: String,
    /// Every own event up to this seq is in the node's outbox.
    #[serde(default)]
    pub exported_through_seq: u64,
    /// Per peer, the seq through which this node has imported that peer's events.
    #[serde(default)]
    pub imported_through: BTreeMap<String, u64>,
}

/// Reads the manifest at `path` in tree `root`; `None` when absent or unreadable.
pub fn at(repo: &git2::Repository, root: Option<git2::Oid>, path: &str) -> Option<Manifest> {
    let (oid, _) = crate::git::tree::entry_at(repo, root, path).ok()??;
    let blob = repo.find_blob(oid).ok()?;
    serde_json::from_slice(blob.content()).ok()
}

/// Reads every manifest under `nodes/` at the tip of `refname`; unreadable ones are skipped with a warning.
pub fn read_all(
    repo_path: &Path,
    refname: &str,
    layout: &Layout,
) -> Result<Vec<Manifest>, LedgerError> {
    let repo = match crate::store::repo::open_at(repo_path) {
        Ok(r) => r,
        Err(_) => return Ok(Vec::new()),
    };
    let Ok(reference) = repo.find_reference(refname) else {
        return Ok(Vec::new());
    };
    let tree = reference.peel_to_tree().in_repo(repo_path)?;
    let Ok(entry) = tree.get_path(Path::new(&layout.nodes_dir())) else {
        return Ok(Vec::new());
    };
    let nodes = repo.find_tree(entry.id()).in_repo(repo_path)?;
    let mut out = Vec::new();
    for e in nodes.iter() {
        let Ok(name) = e.name() else { continue };
        let Some(node) = name.strip_suffix(".json") else {
            continue;
        };
        let Ok(blob) = repo.find_blob(e.id()) else {
            continue;
        };
        match serde_json::from_slice::<Manifest>(blob.content()) {
            Ok(m) if m.node_id == node => out.push(m),
            Ok(m) => {
                tracing::warn!(file = name, claimed = %m.node_id, "manifest names another node; ignored")
            }
            Err(err) => tracing::warn!(file = name, error = %err, "unreadable manifest; ignored"),
        }
    }
    out.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    Ok(out)
}
