//! Peers' signing keys for one import: read from the manifests, pinned on first sight.

use crate::git::tree;
use crate::keys::rotation::KeyChain;
use crate::keys::{self, KnownNodes, Pin};
use crate::ledger::Manifest;
use crate::store::layout::Layout;
use git2::{Oid, Repository};
use std::collections::HashMap;

/// What is known of a peer's signing key for this import.
#[derive(Debug, Clone)]
pub(super) enum KeyState {
    /// Pinned (or pinned now, on first sight): signatures must verify with it, or with
    /// the key the node had at the event's seq before a verified rotation.
    Pinned(Box<KeyChain>),
    /// The manifest offers a key that differs from the pinned one.
    Untrusted,
    /// The manifest's key is not a valid ed25519 key.
    Invalid(String),
    /// No key published or pinned.
    Unknown,
}

/// Public keys published in the manifests of the tree of `commit`, by node. A
/// manifest that publishes a key without a valid signature by it is ignored,
/// with an alert pushed to `alerts`.
pub(super) fn manifest_keys(
    repo: &Repository,
    layout: &Layout,
    commit: Oid,
    alerts: &mut Vec<String>,
) -> Result<HashMap<String, Option<String>>, git2::Error> {
    let mut out = HashMap::new();
    let root = tree::tree_of(repo, Some(commit))?;
    let Some(dir) = tree::subtree_at(repo, root, &layout.nodes_dir())? else {
        return Ok(out);
    };
    for e in repo.find_tree(dir)?.iter() {
        let Some(node) = e.name().ok().and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        if e.filemode() != tree::MODE_BLOB && e.filemode() != tree::MODE_EXEC {
            continue;
        }
        let Some(blob) = crate::ledger::manifest::small_blob(repo, e.id()) else {
            continue;
        };
        if let Ok(m) = serde_json::from_slice::<Manifest>(blob.content())
            && m.node_id == node
        {
            if let crate::ledger::manifest::Signed::Invalid(why) = m.check_signature() {
                tracing::warn!(node, %why, "manifest ignored");
                alerts.push(format!("manifest of {node} ignored: {why}"));
                continue;
            }
            out.insert(node.to_string(), m.public_key);
        }
    }
    Ok(out)
}

/// Pins keys seen for the first time and classifies every peer's key (pure but for `known`).
pub(super) fn key_states(
    me: &str,
    published: &HashMap<String, Option<String>>,
    known: &mut KnownNodes,
) -> HashMap<String, KeyState> {
    let now = crate::event::now_timestamp();
    let mut out = HashMap::new();
    for (node, key) in published {
        if node == me {
            continue;
        }
        let Some(key) = key else { continue };
        if let Err(e) = keys::parse_public(node, key) {
            if known.trusted_key(node).is_none() {
                out.insert(node.clone(), KeyState::Invalid(e.to_string()));
            }
            continue;
        }
        if let Pin::Changed { .. } = known.observe(node, key, &now) {
            out.insert(node.clone(), KeyState::Untrusted);
        }
    }
    for node in known.nodes.keys() {
        if out.contains_key(node) {
            continue;
        }
        let Some(h) = known.history(node) else {
            continue;
        };
        match KeyChain::from_history(node, &h) {
            Ok(c) => out.insert(node.clone(), KeyState::Pinned(Box::new(c))),
            Err(e) => out.insert(node.clone(), KeyState::Invalid(e.to_string())),
        };
    }
    out
}

/// Makes the trusted roster's keys win over pins for the nodes it lists; a listed
/// peer whose manifest publishes another key is untrusted (its files are held until
/// the roster or the manifest changes) and noted in the returned list.
pub(super) fn apply_roster(
    me: &str,
    roster: &crate::ledger::roster::Roster,
    known: &KnownNodes,
    published: &HashMap<String, Option<String>>,
    states: &mut HashMap<String, KeyState>,
) -> Vec<String> {
    let mut notes = Vec::new();
    for (node, entry) in &roster.nodes {
        if node == me || entry.retired {
            continue;
        }
        let Ok(key) = keys::parse_public(node, &entry.public_key) else {
            continue;
        };
        if let Some(Some(offered)) = published.get(node)
            && offered != &entry.public_key
        {
            notes.push(format!(
                "node {node:?}: manifest key {offered} differs from the mesh roster key {}",
                entry.public_key
            ));
            states.insert(node.clone(), KeyState::Untrusted);
            continue;
        }
        // The keys the node rotated away from still verify its older events.
        let chain = known
            .history(node)
            .filter(|h| h.current == entry.public_key)
            .and_then(|h| KeyChain::from_history(node, &h).ok())
            .unwrap_or_else(|| KeyChain::single(key));
        states.insert(node.clone(), KeyState::Pinned(Box::new(chain)));
    }
    notes
}
