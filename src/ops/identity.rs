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

/// What `keys rotate` did (never a secret).
#[derive(Debug, Clone, Serialize)]
pub struct RotateReport {
    /// The node.
    pub node_id: String,
    /// The key it signed with until now.
    pub old_public_key: String,
    /// The key it signs with from `from_seq` on.
    pub new_public_key: String,
    /// The first own seq the new key signs.
    pub from_seq: u64,
    /// The statement's path in the ledger (published by the next sync).
    pub statement: String,
    /// Where the old key came from.
    pub old_source: KeySource,
    /// Where the new key is stored now.
    pub stored_at: std::path::PathBuf,
    /// The old key came from `GITMESH_SIGNING_KEY`: the secret must be replaced by the new
    /// key (`gitmesh keys export --secret`); the node refuses the old secret from now on.
    pub secret_must_be_updated: bool,
    /// The roster version staged with this node's new key (an admin rotating its own key).
    pub roster_version_staged: Option<u64>,
    /// This node is a roster member but not an admin: peers hold its new events until an
    /// admin runs `gitmesh roster rekey <node>`.
    pub roster_rekey_needed: bool,
}

/// Rotates this node's signing key (docs/roster.md, "Rotating a node's key"): a new key,
/// a statement signed by the old and the new key, and, for an admin, a roster version
/// with the new key signed by the old one. Each step is durable before the next (see
/// `keys::rotation::local`); the next sync publishes the statement.
pub fn rotate(node: &Node) -> Result<RotateReport> {
    use crate::keys::rotation::{Rotation, local};
    use crate::ledger::roster::{self, Role};
    let lock = crate::ledger::lock::SyncLock::acquire(&node.paths, node.config.sync.lock_wait.0)?;
    let key_file = node.key_file();
    let ledger_err = crate::ledger::LedgerError::from;
    local::finish(&node.paths, key_file.as_deref()).map_err(ledger_err)?;
    let (old, source) = key(node)?;
    let me = node.id();
    let exported: crate::ledger::state::ExportState =
        crate::ledger::state::load(&node.paths.export_seen())?;
    let from_seq = exported
        .exported_through_seq
        .checked_add(1)
        .ok_or_else(|| OpsError::Usage("this node's seq cannot grow further".into()))?;
    let stored_at = local::target(&source, &node.paths, key_file.as_deref());
    local::check_writable(&stored_at).map_err(ledger_err)?;
    let new = NodeKey::generate();
    let statement = Rotation::new(me, &old, &new, from_seq, &crate::event::now_timestamp());
    // 1. The new key, durably, before anything names it.
    new.store(&local::next_key_path(&node.paths))
        .map_err(ledger_err)?;
    // 2. The statement: from here on the rotation is decided (an interrupted one is
    //    rolled forward before the next signature).
    local::save_own(&node.paths, &statement).map_err(ledger_err)?;
    // 3. An admin's roster entry moves with it, signed by the old key the roster lists.
    let mut roster_version_staged = None;
    let mut roster_rekey_needed = false;
    if let Some(r) = roster::newest(&node.paths)?
        && let Some(entry) = r.nodes.get(me).filter(|n| !n.retired)
    {
        if r.has_role(me, Role::Admin) && entry.public_key == old.public_hex() {
            let change = super::roster::Change::RotateAdmin {
                node: me.to_string(),
                key: new.public_hex(),
            };
            roster_version_staged =
                Some(super::roster::stage_signed(node, &lock, &old, change)?.version);
        } else {
            roster_rekey_needed = true;
        }
    }
    // 4. The switch: the new key where the node reads it; then the pending copy goes.
    new.store(&stored_at).map_err(ledger_err)?;
    local::finish(&node.paths, key_file.as_deref()).map_err(ledger_err)?;
    if source == KeySource::Env {
        tracing::warn!(
            file = %stored_at.display(),
            "the old key came from {}: update the secret with the new key (`gitmesh keys export --secret`)",
            crate::keys::SIGNING_KEY_VAR
        );
    }
    let layout = crate::store::layout::Layout::new(&node.config.ledger.dir);
    Ok(RotateReport {
        node_id: me.to_string(),
        old_public_key: old.public_hex(),
        new_public_key: new.public_hex(),
        from_seq,
        statement: format!("{}/{}", layout.rotations(me), statement.file_name()),
        secret_must_be_updated: source == KeySource::Env,
        old_source: source,
        stored_at,
        roster_version_staged,
        roster_rekey_needed,
    })
}
