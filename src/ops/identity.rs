//! The node's signing key as operators see it: where it comes from and whether it is
//! the key the ledger knows for this node (`gitmesh keys show`, `gitmesh doctor`).

use super::error::{OpsError, Result};
use crate::keys::{KeySource, NodeKey};
use crate::node::Node;
use serde::Serialize;

/// What `keys show` reports (never the secret).
#[derive(Debug, Clone, Serialize)]
pub struct KeyReport {
    /// The node.
    pub node_id: String,
    /// Hex of this root's public key.
    pub public_key: String,
    /// Where the secret comes from.
    pub source: KeySource,
    /// The public key the ledger's manifest holds for this node, as last fetched.
    pub ledger_key: Option<String>,
    /// The highest own seq the ledger's manifest shows.
    pub ledger_seq: u64,
    /// Whether this root's key is the one the ledger knows (`None`: no manifest yet).
    pub matches_ledger: Option<bool>,
    /// Set when a sync or init found the ledger speaking for this node with another key.
    pub lost_key: Option<crate::ledger::recover::ForeignKey>,
}

/// The node's key, or an error naming how to give it one.
pub fn key(node: &Node) -> Result<(NodeKey, KeySource)> {
    node.signing_key()
        .map_err(crate::ledger::LedgerError::from)?
        .ok_or_else(|| {
            OpsError::NotFound(format!(
                "node {} has no signing key: run `gitmesh mesh-init` (it creates one), or give the \
                 node's key through {} or [identity] key_file",
                node.id(),
                crate::keys::SIGNING_KEY_VAR
            ))
        })
}

/// The key report of `node`, from local files only (the last fetched ledger view).
pub fn show(node: &Node) -> Result<KeyReport> {
    let (key, source) = key(node)?;
    let public_key = key.public_hex();
    let manifest = crate::store::repo::view_ref(&node.config, &node.paths).and_then(|r| {
        let repo = crate::store::repo::open(&node.paths).ok()?;
        let commit = crate::git::tree::ref_target(&repo, &r).ok()?;
        let root = crate::git::tree::tree_of(&repo, commit).ok()?;
        let layout = crate::store::layout::Layout::new(&node.config.ledger.dir);
        crate::ledger::manifest::at(&repo, root, &layout.manifest(node.id()))
    });
    let ledger_key = manifest.as_ref().and_then(|m| m.public_key.clone());
    Ok(KeyReport {
        node_id: node.id().to_string(),
        matches_ledger: ledger_key.as_ref().map(|k| *k == public_key),
        public_key,
        source,
        ledger_key,
        ledger_seq: manifest.map_or(0, |m| m.exported_through_seq),
        lost_key: crate::ledger::recover::foreign_key(&node.paths)?,
    })
}
