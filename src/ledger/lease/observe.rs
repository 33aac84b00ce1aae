//! Following the lease through the ledger's history: every version of the lease
//! file since the last one checked is verified in order, and the last that passed
//! is kept under `state/lease.json`.

use super::{Lease, MAX_LEASE_BYTES, verify};
use crate::git::RepoContext;
use crate::git::tree;
use crate::ledger::LedgerError;
use crate::ledger::roster::{self, Role, Roster, Standing};
use crate::node::Node;
use crate::store::layout::Layout;
use git2::{Oid, Repository};
use serde::{Deserialize, Serialize};

/// Most commits walked back from the head in one pass.
pub const MAX_WALK: usize = 10_000;

/// The lease this node trusts and the ledger commit it has checked through.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedLease {
    /// The last lease that verified.
    pub lease: Option<Lease>,
    /// The ledger commit the lease file was checked through.
    pub commit: String,
}

fn state_path(node: &Node) -> std::path::PathBuf {
    node.paths.state().join("lease.json")
}

/// Each commit with the lease blob its tree holds, oldest first.
type Versions = Vec<(Oid, Option<Oid>)>;

/// The lease blob of each commit from `head` back (first parents) to `stop`, oldest
/// first, with the blob at `stop` (when reached) as the starting point. With no
/// `stop` (nothing checked yet) only the head counts: a joining node starts from
/// the current lease.
fn versions(
    repo: &Repository,
    head: Oid,
    stop: Option<Oid>,
    path: &str,
) -> Result<(Option<Oid>, Versions), git2::Error> {
    let mut out = Vec::new();
    let mut at = Some(head);
    let mut base = None;
    let bound = if stop.is_some() { MAX_WALK } else { 1 };
    for _ in 0..bound {
        let Some(c) = at else { break };
        let blob = tree::entry_at(repo, tree::tree_of(repo, Some(c))?, path)?.map(|(o, _)| o);
        if Some(c) == stop {
            base = blob;
            break;
        }
        out.push((c, blob));
        let commit = repo.find_commit(c)?;
        at = commit.parent_ids().next();
    }
    out.reverse();
    Ok((base, out))
}

/// What the roster (or the pins, in open mode) says of `leader` for the leader role.
fn taker(node: &Node, roster: Option<&Roster>, leader: &str) -> Result<Standing, LedgerError> {
    let pinned = if leader == node.id() {
        node.signing_key()?.map(|(k, _)| k.public_hex())
    } else {
        crate::keys::KnownNodes::load(&node.paths)?
            .trusted_key(leader)
            .map(str::to_string)
    };
    Ok(roster::standing(
        roster,
        node.config.mesh.trust,
        leader,
        Some(Role::Leader),
        pinned.as_deref(),
    ))
}

/// Verifies the versions of the lease file up to `head` and returns the lease now
/// trusted. Refused versions raise an alert (when `persist`) and are skipped; the
/// trusted lease stays the last one that verified.
pub fn observe(
    node: &Node,
    head: Option<Oid>,
    persist: bool,
) -> Result<Option<Lease>, LedgerError> {
    let file = state_path(node);
    let mut st: TrustedLease = crate::fsutil::read_json(&file)?.unwrap_or_default();
    let Some(head) = head else {
        return Ok(st.lease);
    };
    if st.commit == head.to_string() {
        return Ok(st.lease);
    }
    let path = node.paths.ledger_repo();
    let repo = crate::store::repo::open_at(&path)?;
    let layout = Layout::new(&node.config.ledger.dir);
    let lease_path = layout.lease();
    let stop = Oid::from_str(&st.commit)
        .ok()
        .filter(|o| repo.find_commit(*o).is_ok());
    let (mut last, list) = versions(&repo, head, stop, &lease_path).in_repo(&path)?;
    let roster = roster::load_trusted(&node.paths)?;
    let max_ttl = roster
        .as_ref()
        .map_or(roster::DEFAULT_MAX_LEASE_TTL_SEC, |r| r.max_lease_ttl_sec);
    let tolerance = node.config.sync.clock_tolerance.0.as_secs();
    for (commit, blob) in list {
        if blob == last {
            continue;
        }
        last = blob;
        if blob.is_none() {
            continue;
        }
        let bytes = match roster::read_bounded(&repo, commit, &lease_path, MAX_LEASE_BYTES)
            .in_repo(&path)?
        {
            Some(Ok(b)) => b,
            Some(Err(size)) => {
                refuse(
                    node,
                    persist,
                    &lease_path,
                    commit,
                    &format!("{size} bytes; the cap is {MAX_LEASE_BYTES}"),
                )?;
                continue;
            }
            None => continue,
        };
        let lease = match crate::event::strict::find_duplicate_key(&bytes)
            .and_then(|()| serde_json::from_slice::<Lease>(&bytes).map_err(|e| e.to_string()))
        {
            Ok(l) => l,
            Err(e) => {
                refuse(
                    node,
                    persist,
                    &lease_path,
                    commit,
                    &format!("not a lease: {e}"),
                )?;
                continue;
            }
        };
        if st.lease.as_ref() == Some(&lease) {
            continue;
        }
        let standing = taker(node, roster.as_ref(), &lease.leader_id)?;
        match verify(&lease, st.lease.as_ref(), &standing, max_ttl, tolerance) {
            Ok(()) => st.lease = Some(lease),
            Err(e) => {
                let detail = format!(
                    "lease of {:?} at epoch {} refused ({}): {e}",
                    lease.leader_id,
                    lease.epoch,
                    e.code()
                );
                refuse(node, persist, &lease_path, commit, &detail)?;
            }
        }
    }
    st.commit = head.to_string();
    if persist {
        crate::fsutil::write_json(&file, &st)?;
    }
    Ok(st.lease)
}

fn refuse(
    node: &Node,
    persist: bool,
    path: &str,
    commit: Oid,
    detail: &str,
) -> Result<(), LedgerError> {
    if persist {
        roster::raise(&node.paths, "lease", path, &commit.to_string(), detail)?;
    } else {
        tracing::warn!(file = path, %commit, detail, "refused leader lease");
    }
    Ok(())
}

/// The lease as the remote last confirmed it to this node (its remote-tracking ref),
/// verified; the check's progress is saved.
///
/// Not the local branch: that may hold a lease this node took in a commit it
/// could not push (offline, or every push lost), which no one else has seen;
/// acting on it would give two leaders the same epoch.
pub fn read_confirmed(node: &Node) -> Result<Option<Lease>, LedgerError> {
    observe(node, confirmed_head(node)?, true)
}

/// [`read_confirmed`] without writing anything (for read-only reports).
pub fn read_trusted(node: &Node) -> Result<Option<Lease>, LedgerError> {
    observe(node, confirmed_head(node)?, false)
}

fn confirmed_head(node: &Node) -> Result<Option<Oid>, LedgerError> {
    let path = node.paths.ledger_repo();
    let Ok(repo) = crate::store::repo::open_at(&path) else {
        return Ok(None);
    };
    let r = crate::git::remote::tracking_ref(&node.config.ledger.branch);
    Ok(tree::ref_target(&repo, &r).in_repo(&path)?)
}
