//! `gitmesh roster ...`: sign a new version of the mesh roster and stage it for the
//! next sync to push (docs/roster.md).

use super::error::{OpsError, Result};
use crate::ledger::LedgerError;
use crate::ledger::lock::SyncLock;
use crate::ledger::roster::{self, Role, Roster, RosterNode};
use crate::node::Node;
use serde::Serialize;
use std::collections::BTreeSet;

/// A change an admin makes to the roster.
#[derive(Debug, Clone)]
pub enum Change {
    /// Add a node (or bring a retired one back) with its key and roles.
    Enroll {
        /// The node id.
        node: String,
        /// Its hex ed25519 public key.
        key: String,
        /// Its roles (at least one).
        roles: BTreeSet<Role>,
    },
    /// Replace a node's roles.
    Roles {
        /// The node id.
        node: String,
        /// The new roles (at least one).
        roles: BTreeSet<Role>,
    },
    /// Mark a node retired: trusted for nothing, no longer reported stale.
    Retire {
        /// The node id.
        node: String,
    },
    /// Give an enrolled node the key it rotated to (its signed rotation statement).
    Rekey {
        /// The node.
        node: String,
        /// Its new hex ed25519 public key.
        key: String,
    },
    /// Replace an admin's public key (this node's by default), signed with the current key.
    RotateAdmin {
        /// The admin whose key changes.
        node: String,
        /// The new hex ed25519 public key.
        key: String,
    },
}

/// What `roster show` reports.
#[derive(Debug, Clone, Serialize)]
pub struct RosterView {
    /// `roster` or `open` (`[mesh] trust`).
    pub trust: crate::config::TrustMode,
    /// The version this node trusts.
    pub trusted: Option<Roster>,
    /// Versions signed here and not yet pushed, oldest first.
    pub staged: Vec<Roster>,
}

/// The trusted and staged roster.
pub fn show(node: &Node) -> Result<RosterView> {
    Ok(RosterView {
        trust: node.config.mesh.trust,
        trusted: roster::load_trusted(&node.paths)?,
        staged: roster::load_staged(&node.paths)?,
    })
}

/// Applies `change` to the newest roster (staged or trusted), signs the new version
/// with this node's key (which must be an admin's), checks it like any reader would
/// and stages it; the next `mesh-sync` pushes it.
pub fn change(node: &Node, change: Change) -> Result<Roster> {
    let lock = SyncLock::acquire(&node.paths, node.config.sync.lock_wait.0)?;
    // An interrupted key rotation is finished first: the version is signed with the key
    // the node signs with from now on.
    crate::keys::rotation::local::finish(&node.paths, node.key_file().as_deref())
        .map_err(LedgerError::from)?;
    let key = node
        .signing_key()
        .map_err(LedgerError::from)?
        .map(|(k, _)| k)
        .ok_or_else(|| OpsError::NotFound("this node has no signing key".into()))?;
    stage_signed(node, &lock, &key, change)
}

/// [`change`] signed with `key` (this node's key as the roster lists it), under a sync
/// lock the caller holds: `keys rotate` signs an admin's new key with the old one.
pub fn stage_signed(
    node: &Node,
    _lock: &SyncLock,
    key: &crate::keys::NodeKey,
    change: Change,
) -> Result<Roster> {
    let base = roster::newest(&node.paths)?.ok_or_else(|| {
        OpsError::NotFound(
            "this node trusts no mesh roster yet (mesh-init of the first node creates it; run mesh-sync to fetch it)".into(),
        )
    })?;
    let me = node.id();
    if !base.has_role(me, Role::Admin) {
        return Err(OpsError::Usage(format!(
            "node {me:?} is not an admin of roster version {}; only an admin can change it",
            base.version
        )));
    }
    let mut next = base
        .successor(&crate::event::now_timestamp())
        .ok_or_else(|| OpsError::Usage("the roster version cannot grow further".into()))?;
    apply(&mut next, change)?;
    next.sign(me, key);
    roster::verify_update(&base, &next)
        .map_err(|e| OpsError::Usage(format!("the new roster version would be refused: {e}")))?;
    roster::stage(&node.paths, &next)?;
    Ok(next)
}

fn check_key(node: &str, key: &str) -> Result<()> {
    crate::keys::parse_public(node, key)
        .map(|_| ())
        .map_err(|e| OpsError::Usage(format!("--key: {e}")))
}

/// Applies one change to a version being built (pure).
fn apply(r: &mut Roster, change: Change) -> Result<()> {
    match change {
        Change::Enroll { node, key, roles } => {
            crate::event::validate_node_id(&node)
                .map_err(|e| OpsError::Usage(format!("node id {node:?}: {e}")))?;
            check_key(&node, &key)?;
            if roles.is_empty() {
                return Err(OpsError::Usage("--role: at least one role".into()));
            }
            if r.nodes.get(&node).is_some_and(|n| !n.retired) {
                return Err(OpsError::Usage(format!(
                    "node {node:?} is already enrolled; use `gitmesh roster roles` to change its roles"
                )));
            }
            r.nodes.insert(
                node,
                RosterNode {
                    public_key: key,
                    roles,
                    retired: false,
                },
            );
        }
        Change::Roles { node, roles } => {
            if roles.is_empty() {
                return Err(OpsError::Usage("at least one role".into()));
            }
            entry(r, &node)?.roles = roles;
        }
        Change::Retire { node } => {
            let e = entry(r, &node)?;
            if e.retired {
                return Err(OpsError::Usage(format!("node {node:?} is already retired")));
            }
            e.retired = true;
        }
        Change::Rekey { node, key } => {
            check_key(&node, &key)?;
            let e = entry(r, &node)?;
            if e.retired {
                return Err(OpsError::Usage(format!("node {node:?} is retired")));
            }
            e.public_key = key;
        }
        Change::RotateAdmin { node, key } => {
            check_key(&node, &key)?;
            let e = entry(r, &node)?;
            if !e.roles.contains(&Role::Admin) {
                return Err(OpsError::Usage(format!("node {node:?} is not an admin")));
            }
            e.public_key = key;
        }
    }
    Ok(())
}

fn entry<'r>(r: &'r mut Roster, node: &str) -> Result<&'r mut RosterNode> {
    r.nodes
        .get_mut(node)
        .ok_or_else(|| OpsError::NotFound(format!("node {node:?} is not on the mesh roster")))
}

/// The key `who` rotated to from the key the newest roster lists for it, as its
/// verified rotation statements in the fetched ledger show (`roster rekey`).
pub fn rotated_key(node: &Node, who: &str) -> Result<String> {
    let base = roster::newest(&node.paths)?.ok_or_else(|| {
        OpsError::NotFound("this node trusts no mesh roster yet (run mesh-sync)".into())
    })?;
    let listed = base
        .nodes
        .get(who)
        .ok_or_else(|| OpsError::NotFound(format!("node {who:?} is not on the mesh roster")))?;
    let layout = crate::store::layout::Layout::new(&node.config.ledger.dir);
    let statements: Vec<crate::keys::rotation::Rotation> =
        crate::store::repo::view_ref(&node.config, &node.paths)
            .and_then(|r| {
                let repo = crate::store::repo::open(&node.paths).ok()?;
                let commit = crate::git::tree::ref_target(&repo, &r).ok()?;
                let root = crate::git::tree::tree_of(&repo, commit).ok()?;
                crate::ledger::rotations::read_node(&repo, root, &layout, who).ok()
            })
            .unwrap_or_default()
            .into_iter()
            .filter_map(|f| f.parsed.ok())
            .collect();
    let start = crate::keys::rotation::KeyHistory::single(&listed.public_key);
    let followed = crate::keys::rotation::follow(who, &start, &statements);
    if followed.applied.is_empty() {
        return Err(OpsError::NotFound(format!(
            "the fetched ledger holds no rotation statement of node {who:?} signed by its roster \
             key {}; run mesh-sync, or give the key with --key",
            listed.public_key
        )));
    }
    Ok(followed.history.current)
}
