//! Per-node ref mode (`[ledger] mode = "per-node-refs"`).
//!
//! Each node pushes only `refs/heads/gitmesh/<node_id>` (its outbox and
//! manifest), so its pushes never race with anyone's; the lease stays on the
//! shared branch. After a fetch of the shared branch and every
//! `refs/heads/gitmesh/*`, the node builds a local *view* commit
//! (`refs/gitmesh/view`): the shared branch's tree with each node's outbox and
//! manifest taken from that node's own ref. Import, status and dispatch read
//! that view, so the tree diff against the last imported view reads only the
//! files that are new in some peer's ref.

use crate::config::Config;
use crate::git::remote::{local_ref, tracking_ref};
use crate::git::tree::{self, Edit};
use crate::git::{GitError, RepoContext, cli};
use crate::store::layout::Layout;
pub use crate::store::repo::{VIEW_REF, per_node};
use git2::{Oid, Repository};
use std::path::Path;

/// Remote-tracking prefix of the per-node refs.
const PEER_TRACKING: &str = "refs/remotes/origin/gitmesh/";

/// The branch this node's own files are committed to: `gitmesh/<node>` in per-node mode, else the shared branch.
pub fn own_branch(cfg: &Config) -> String {
    if per_node(cfg) {
        format!("gitmesh/{}", cfg.node_id)
    } else {
        cfg.ledger.branch.clone()
    }
}

/// The commit this node's own files are built on: its local branch, else the fetched one.
pub fn own_base(repo: &Repository, cfg: &Config) -> Result<Option<Oid>, git2::Error> {
    let branch = own_branch(cfg);
    match tree::ref_target(repo, &local_ref(&branch))? {
        Some(c) => Ok(Some(c)),
        None => tree::ref_target(repo, &tracking_ref(&branch)),
    }
}

/// Fetches the shared branch (and, `with_peers`, every per-node ref) in one `git fetch`;
/// returns the shared head.
///
/// A remote without the shared branch yet is a new mesh: the per-node refs are
/// still fetched. `depth` makes the fetch shallow (used for a node's first fetch);
/// each git run takes at most `timeout` (`[sync] remote_timeout`).
pub fn fetch_all(
    repo: &Path,
    branch: &str,
    with_peers: bool,
    depth: Option<u32>,
    timeout: std::time::Duration,
) -> Result<Option<Oid>, GitError> {
    let shared = format!("+{}:{}", local_ref(branch), tracking_ref(branch));
    let peers = format!("+refs/heads/gitmesh/*:{PEER_TRACKING}*");
    if !with_peers {
        let mut args = vec!["fetch", "--quiet", "--no-tags"];
        let d = depth.map(|d| format!("--depth={d}"));
        if let Some(d) = &d {
            args.push(d);
        }
        args.extend(["origin", shared.as_str()]);
        return match cli::run(repo, &args, timeout) {
            Ok(_) => {
                let r = crate::store::repo::open_at(repo)?;
                tree::ref_target(&r, &tracking_ref(branch)).in_repo(repo)
            }
            Err(GitError::Command { stderr, .. })
                if stderr
                    .to_ascii_lowercase()
                    .contains("couldn't find remote ref") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        };
    }
    let depth_arg = depth.map(|d| format!("--depth={d}"));
    let run = |specs: &[&str]| {
        let mut args = vec!["fetch", "--quiet", "--no-tags", "--prune"];
        if let Some(d) = &depth_arg {
            args.push(d);
        }
        args.push("origin");
        args.extend_from_slice(specs);
        cli::run(repo, &args, timeout)
    };
    match run(&[&shared, &peers]) {
        Ok(_) => {}
        Err(GitError::Command { stderr, .. })
            if stderr
                .to_ascii_lowercase()
                .contains("couldn't find remote ref") =>
        {
            run(&[&peers])?;
            let r = crate::store::repo::open_at(repo)?;
            if let Ok(mut old) = r.find_reference(&tracking_ref(branch)) {
                old.delete().in_repo(repo)?;
            }
            return Ok(None);
        }
        Err(e) => return Err(e),
    }
    let r = crate::store::repo::open_at(repo)?;
    tree::ref_target(&r, &tracking_ref(branch)).in_repo(repo)
}

/// The per-node refs fetched from the remote, as (node id, commit), sorted by node.
pub fn peer_refs(repo: &Repository) -> Result<Vec<(String, Oid)>, git2::Error> {
    let mut out = Vec::new();
    for r in repo.references_glob(&format!("{PEER_TRACKING}*"))? {
        let r = r?;
        let (Ok(name), Some(target)) = (r.name(), r.target()) else {
            continue;
        };
        let node = name.trim_start_matches(PEER_TRACKING);
        if crate::event::normalize_node_id(node).ok().as_deref() == Some(node) {
            out.push((node.to_string(), target));
        }
    }
    out.sort();
    Ok(out)
}

/// Builds the merged view (shared tree + each node's outbox and manifest from its
/// own ref, this node's from its local branch) and points `VIEW_REF` at it.
///
/// A node's files in the shared tree (from a mesh that switched modes) are kept
/// and united with its ref's. Returns the view commit, `None` for an empty mesh.
pub fn build_view(
    repo: &Repository,
    cfg: &Config,
    layout: &Layout,
) -> Result<Option<Oid>, git2::Error> {
    let me = cfg.node_id.as_str();
    let shared = tree::ref_target(repo, &tracking_ref(&cfg.ledger.branch))?;
    let base = tree::tree_of(repo, shared)?;
    let mut sources = peer_refs(repo)?;
    sources.retain(|(n, _)| n != me);
    let own_local = local_ref(&own_branch(cfg));
    let own = match tree::ref_target(repo, &own_local)? {
        Some(c) => Some(c),
        None => tree::ref_target(repo, &format!("{PEER_TRACKING}{me}"))?,
    };
    if let Some(c) = own {
        sources.push((me.to_string(), c));
    }
    let mut edits = Vec::with_capacity(sources.len() * 2);
    for (node, commit) in &sources {
        let t = tree::tree_of(repo, Some(*commit))?;
        let outbox = layout.outbox(node);
        let theirs = tree::subtree_at(repo, t, &outbox)?;
        let in_shared = tree::subtree_at(repo, base, &outbox)?;
        let mut conflicts = Vec::new();
        if let Some(merged) = tree::union(repo, theirs, in_shared, &mut conflicts)?
            && Some(merged) != in_shared
        {
            edits.push(Edit::tree(outbox, merged));
        }
        let manifest = layout.manifest(node);
        if let Some((oid, mode)) = tree::entry_at(repo, t, &manifest)? {
            edits.push(Edit {
                path: manifest,
                target: Some((oid, mode)),
            });
        }
    }
    if base.is_none() && edits.is_empty() {
        return Ok(None);
    }
    let view_tree = tree::apply_edits(repo, base, &edits)?;
    let previous = tree::ref_target(repo, VIEW_REF)?;
    if let Some(p) = previous
        && tree::tree_of(repo, Some(p))? == Some(view_tree)
    {
        return Ok(Some(p));
    }
    let commit = tree::commit(repo, view_tree, previous, me, "gitmesh: merged view")?;
    tree::set_ref(repo, VIEW_REF, commit, "gitmesh: merged view")?;
    Ok(Some(commit))
}

/// The ledger commit import reads: the merged view in per-node mode, else the shared branch.
pub fn import_source(repo: &Repository, cfg: &Config) -> Result<Option<Oid>, git2::Error> {
    if per_node(cfg) {
        tree::ref_target(repo, VIEW_REF)
    } else {
        source_commit(repo, &cfg.ledger.branch)
    }
}

#[cfg(test)]
mod tests;

/// The ledger commit import reads: the fetched remote head, else the local branch.
pub fn source_commit(repo: &Repository, branch: &str) -> Result<Option<Oid>, git2::Error> {
    match tree::ref_target(repo, &tracking_ref(branch))? {
        Some(oid) => Ok(Some(oid)),
        None => tree::ref_target(repo, &local_ref(branch)),
    }
}
