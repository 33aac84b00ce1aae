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
    /// Hex ed25519 signature by `public_key` over [`Manifest::signing_bytes`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

/// What a manifest's signature says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signed {
    /// Signed by the key it publishes.
    Valid,
    /// It publishes no key, so it cannot be signed.
    Keyless,
    /// It publishes a key but its signature is missing or does not verify: why.
    Invalid(String),
}

impl Manifest {
    /// The bytes a manifest signature covers: a domain tag, then the RFC 8785 JSON
    /// of the manifest without `sig`.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let unsigned = Manifest {
            sig: None,
            ..self.clone()
        };
        let mut out = b"gitmesh manifest v1\n".to_vec();
        // A struct of strings, integers and maps always has a canonical form.
        out.extend(serde_json_canonicalizer::to_vec(&unsigned).unwrap_or_default());
        out
    }

    /// The manifest signed with `key`.
    pub fn signed(mut self, key: &crate::keys::NodeKey) -> Manifest {
        self.sig = None;
        self.sig = Some(key.sign_bytes(&self.signing_bytes()));
        self
    }

    /// Checks the signature against the key the manifest publishes.
    pub fn check_signature(&self) -> Signed {
        let Some(public) = &self.public_key else {
            return Signed::Keyless;
        };
        let Some(sig) = &self.sig else {
            return Signed::Invalid("unsigned, though it publishes a key".into());
        };
        let key = match crate::keys::parse_public(&self.node_id, public) {
            Ok(k) => k,
            Err(e) => return Signed::Invalid(e.to_string()),
        };
        let mut bytes = [0u8; 64];
        if sig.len() != 128 || hex::decode_to_slice(sig, &mut bytes).is_err() {
            return Signed::Invalid("signature is not 128 hex digits".into());
        }
        use ed25519_dalek::Verifier;
        match key.verify(
            &self.signing_bytes(),
            &ed25519_dalek::Signature::from_bytes(&bytes),
        ) {
            Ok(()) => Signed::Valid,
            Err(_) => Signed::Invalid("signature does not verify with its public_key".into()),
        }
    }

    /// True when signed by `key` (the hex public key of the node reading its own manifest).
    pub fn signed_by(&self, key: &str) -> bool {
        self.public_key.as_deref() == Some(key) && self.check_signature() == Signed::Valid
    }
}

/// Largest manifest read; the size comes from the object header, so a larger
/// blob is never loaded.
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// The blob `oid` when it is a blob within [`MAX_MANIFEST_BYTES`] (checked from its header).
pub fn small_blob(repo: &git2::Repository, oid: git2::Oid) -> Option<git2::Blob<'_>> {
    match crate::git::tree::blob_capped(repo, oid, MAX_MANIFEST_BYTES) {
        Ok(crate::git::tree::Capped::Blob(b)) => Some(b),
        _ => None,
    }
}

/// Reads the manifest at `path` in tree `root`; `None` when absent, too large or unreadable.
pub fn at(repo: &git2::Repository, root: Option<git2::Oid>, path: &str) -> Option<Manifest> {
    let (oid, _) = crate::git::tree::entry_at(repo, root, path).ok()??;
    let blob = small_blob(repo, oid)?;
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
        let Some(blob) = small_blob(&repo, e.id()) else {
            tracing::warn!(
                file = name,
                "manifest is not a file of at most 1 MiB; ignored"
            );
            continue;
        };
        match serde_json::from_slice::<Manifest>(blob.content()) {
            Ok(m) if m.node_id == node => match m.check_signature() {
                Signed::Invalid(why) => {
                    tracing::warn!(file = name, %why, "manifest ignored")
                }
                Signed::Valid | Signed::Keyless => out.push(m),
            },
            Ok(m) => {
                tracing::warn!(file = name, claimed = %m.node_id, "manifest names another node; ignored")
            }
            Err(err) => tracing::warn!(file = name, error = %err, "unreadable manifest; ignored"),
        }
    }
    out.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    Ok(out)
}

#[cfg(test)]
mod tests;
