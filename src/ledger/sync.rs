//! `mesh-sync`: fetch, import, dispatch hook, export, commit on the fetched head, push.
//!
//! The commit pushed is always built on the freshly fetched remote head and
//! touches only this node's outbox and manifest, staged schemas and the lease,
//! so a rejected push is resolved by fetching and rebuilding, never by merging
//! or forcing. The lease changes only through that push: a rejection is a lost
//! compare-and-swap, and the next attempt re-reads and re-decides it.

use super::export::{self, ExportReport};
use super::import::{self, ImportReport};
use super::layout::Layout;
use super::lease::{self, Lease};
use super::lock::SyncLock;
use super::{LedgerError, git_err};
use crate::error::{Error, Result};
use crate::git::remote::{self, PushOutcome, local_ref, tracking_ref};
use crate::git::tree::{self, Edit};
use crate::node::Node;
use git2::{Oid, Repository};
use serde::Serialize;
use std::time::Duration;

/// What a sync should do.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Push the commit (false: local work only, like `--no-push`).
    pub push: bool,
    /// Cap on events imported and exported in this pass.
    pub max_events: Option<u64>,
}

/// How the push went.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PushReport {
    /// The remote branch now holds this node's commit.
    pub pushed: bool,
    /// Push attempts made.
    pub attempts: u32,
    /// The remote could not be reached; the commit waits locally for the next sync.
    pub offline: bool,
    /// Every attempt lost the race to other nodes; the next sync retries.
    pub contended: bool,
    /// The ledger commit built (pushed or waiting).
    pub commit: Option<String>,
    /// Own-outbox files that differ between the remote and this node (the remote's copy was kept).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<String>,
    /// Why the remote was not reached, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The `mesh-sync` report (keys of DESIGN section 4 plus details).
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    /// This node.
    pub node_id: String,
    /// The remote head was fetched.
    pub fetched: bool,
    /// What import did (including re-imports after rejected pushes).
    pub import: ImportReport,
    /// What the dispatch hook returned.
    pub dispatch: serde_json::Value,
    /// What export did.
    pub export: ExportReport,
    /// How the push went.
    pub push: PushReport,
    /// The lease as written by this sync, or as found on the remote.
    pub leader: Option<Lease>,
}

impl SyncReport {
    /// 75 when local work is done but the remote was not updated (offline or contended), else 0.
    pub fn exit_code(&self) -> i32 {
        if self.push.offline || self.push.contended {
            75
        } else {
            0
        }
    }
}

/// Jittered exponential backoff before push attempt `attempt + 1` (100 ms doubling, capped at 3.2 s).
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    let base = 100u64.saturating_mul(1 << attempt.saturating_sub(1).min(5));
    Duration::from_millis((base as f64 * jitter.clamp(0.5, 1.5)) as u64)
}

/// Dispatch step called between import and export.
pub type Hook<'a> = &'a mut dyn FnMut(&Node) -> std::result::Result<serde_json::Value, Error>;

/// One full sync pass under the node's sync lock.
pub fn sync(node: &Node, opts: &SyncOptions, hook: Hook<'_>) -> Result<SyncReport> {
    let lock = SyncLock::acquire(&node.paths, node.config.sync.lock_wait.0)?;
    // `origin` follows the configured remote (`[ledger] remote`, `GITMESH_REMOTE`).
    super::repo::ensure(&node.config, &node.paths)?;
    let mut push = PushReport::default();
    let remote_head = fetch_or_offline(node, &mut push)?;
    // A root restored from an older copy recovers its own events before anything appends.
    super::recover::recover_own(node, &lock)?;
    if !push.offline {
        super::recover::mark_identity(&node.paths)?;
    }
    let import = import::import(node, &lock, opts.max_events)?;
    let dispatch = hook(node)?;
    let export = export::export(node, &lock, opts.max_events)?;
    let mut report = SyncReport {
        node_id: node.id().to_string(),
        fetched: !push.offline,
        import,
        dispatch,
        export,
        push,
        leader: None,
    };
    let leader = commit_and_push(
        node,
        &lock,
        remote_head,
        opts.push,
        true,
        &mut report.push,
        Some(&mut report.import),
    )?;
    report.leader = leader;
    Ok(report)
}

/// Publishes this node's manifest (used by `mesh-init`): fetch, commit on the head, push.
pub fn announce(node: &Node) -> Result<PushReport> {
    let lock = SyncLock::acquire(&node.paths, node.config.sync.lock_wait.0)?;
    let mut push = PushReport::default();
    let remote_head = fetch_or_offline(node, &mut push)?;
    export::export(node, &lock, Some(0))?;
    commit_and_push(node, &lock, remote_head, true, false, &mut push, None)?;
    Ok(push)
}

/// Fetches the remote head; an unreachable remote marks the report offline and
/// falls back to the last fetched head.
fn fetch_or_offline(node: &Node, push: &mut PushReport) -> Result<Option<Oid>> {
    let path = node.paths.ledger_repo();
    let branch = &node.config.ledger.branch;
    match remote::fetch(&path, branch) {
        Ok(head) => {
            if head.is_none() {
                // The remote branch is gone or never existed: forget a stale tracking ref.
                let repo = Repository::open_bare(&path).map_err(git_err(&path))?;
                if let Ok(mut r) = repo.find_reference(&tracking_ref(branch)) {
                    r.delete().map_err(git_err(&path))?;
                }
            }
            Ok(head)
        }
        Err(e) if e.is_unreachable() => {
            tracing::warn!(error = %e, "remote unreachable; doing local work only");
            push.offline = true;
            push.error = Some(e.to_string());
            let repo = Repository::open_bare(&path).map_err(git_err(&path))?;
            Ok(tree::ref_target(&repo, &tracking_ref(branch)).map_err(git_err(&path))?)
        }
        Err(e) => Err(LedgerError::Git(e).into()),
    }
}

/// Builds this node's commit on `remote_head` and pushes it, retrying lost races.
fn commit_and_push(
    node: &Node,
    lock: &SyncLock,
    mut remote_head: Option<Oid>,
    push: bool,
    take_lease: bool,
    report: &mut PushReport,
    mut import_report: Option<&mut ImportReport>,
) -> Result<Option<Lease>> {
    let path = node.paths.ledger_repo();
    let branch = node.config.ledger.branch.clone();
    let retries = node.config.sync.push_retries;
    loop {
        let (commit, leader, staged) =
            compose(node, remote_head, take_lease, &mut report.conflicts)?;
        let Some(commit) = commit else {
            return Ok(leader);
        };
        report.commit = Some(commit.to_string());
        if !push || report.offline {
            return Ok(leader);
        }
        report.attempts += 1;
        match remote::push(&path, &branch) {
            Ok(PushOutcome::Pushed) => {
                let repo = Repository::open_bare(&path).map_err(git_err(&path))?;
                tree::set_ref(&repo, &tracking_ref(&branch), commit, "gitmesh: pushed")
                    .map_err(git_err(&path))?;
                clear_pushed_schemas(node, &staged)?;
                report.pushed = true;
                return Ok(leader);
            }
            Ok(PushOutcome::Rejected(msg)) => {
                tracing::info!(attempt = report.attempts, reason = %msg, "push rejected; fetching and rebuilding");
                if report.attempts > retries {
                    report.contended = true;
                    report.error = Some(
                        LedgerError::Contended {
                            attempts: report.attempts,
                        }
                        .to_string(),
                    );
                    return Ok(leader);
                }
                std::thread::sleep(backoff(report.attempts, rand::random_range(0.5..1.5)));
                remote_head = fetch_or_offline(node, report)?;
                if report.offline {
                    return Ok(leader);
                }
                if let Some(ir) = import_report.as_deref_mut() {
                    let more = import::import(node, lock, None)?;
                    merge_import(ir, more);
                }
            }
            Err(e) if e.is_unreachable() => {
                report.offline = true;
                report.error = Some(e.to_string());
                return Ok(leader);
            }
            Err(e) => return Err(LedgerError::Git(e).into()),
        }
    }
}

fn merge_import(into: &mut ImportReport, more: ImportReport) {
    into.imported_events += more.imported_events;
    into.duplicate_events += more.duplicate_events;
    into.quarantined += more.quarantined;
    into.scanned_files += more.scanned_files;
    into.ledger_commit = more.ledger_commit;
    into.complete = more.complete;
    into.rejected.extend(more.rejected);
    into.gaps = more.gaps;
}

/// Builds the commit `remote_head` + this node's files; moves the local branch to it.
/// Returns `None` as the commit when the remote already holds all of it.
fn compose(
    node: &Node,
    remote_head: Option<Oid>,
    take_lease: bool,
    conflicts: &mut Vec<String>,
) -> Result<(Option<Oid>, Option<Lease>, Staged)> {
    let path = node.paths.ledger_repo();
    let g = git_err(&path);
    let repo = Repository::open_bare(&path).map_err(&g)?;
    let layout = Layout::new(&node.config.ledger.dir);
    let me = node.id();
    let branch = &node.config.ledger.branch;
    let remote_tree = tree::tree_of(&repo, remote_head).map_err(&g)?;
    let local = tree::ref_target(&repo, &local_ref(branch)).map_err(&g)?;
    let local_tree = tree::tree_of(&repo, local).map_err(&g)?;
    let outbox = layout.outbox(me);

    let mut edits = Vec::new();
    let theirs = tree::subtree_at(&repo, remote_tree, &outbox).map_err(&g)?;
    let mine = tree::subtree_at(&repo, local_tree, &outbox).map_err(&g)?;
    let mut found = Vec::new();
    if let Some(merged) = tree::union(&repo, theirs, mine, &mut found).map_err(&g)?
        && Some(merged) != theirs
    {
        edits.push(Edit::tree(outbox.clone(), merged));
    }
    for f in found {
        tracing::warn!(file = %format!("{outbox}/{f}"), "own batch differs between the remote and this node; the remote's copy is kept");
        conflicts.push(format!("{outbox}/{f}"));
    }
    let manifest = layout.manifest(me);
    if let Some((oid, mode)) = tree::entry_at(&repo, local_tree, &manifest).map_err(&g)? {
        edits.push(Edit {
            path: manifest,
            target: Some((oid, mode)),
        });
    }
    let staged = export::staged_schemas(node)?;
    edits.extend(export::schema_edits(&repo, &layout, &staged).map_err(&g)?);

    let current: Option<Lease> = tree::entry_at(&repo, remote_tree, &layout.lease())
        .map_err(&g)?
        .and_then(|(oid, _)| repo.find_blob(oid).ok())
        .and_then(|b| serde_json::from_slice(b.content()).ok());
    let mut leader = current.clone();
    if take_lease {
        let ttl = node.config.sync.lease_ttl.0.as_secs().max(1);
        if let Some(next) = lease::next(current.as_ref(), me, chrono::Utc::now(), ttl) {
            let mut bytes = serde_json::to_vec_pretty(&next).unwrap_or_default();
            bytes.push(b'\n');
            edits.push(Edit::blob(layout.lease(), repo.blob(&bytes).map_err(&g)?));
            leader = Some(next);
        }
    }

    let new_tree = tree::apply_edits(&repo, remote_tree, &edits).map_err(&g)?;
    if Some(new_tree) == remote_tree {
        if let Some(head) = remote_head {
            tree::set_ref(&repo, &local_ref(branch), head, "gitmesh: up to date").map_err(&g)?;
        }
        return Ok((None, leader, staged));
    }
    let msg = format!("gitmesh {me}: sync");
    let commit = tree::commit(&repo, new_tree, remote_head, me, &msg).map_err(&g)?;
    tree::set_ref(&repo, &local_ref(branch), commit, &msg).map_err(&g)?;
    Ok((Some(commit), leader, staged))
}

/// Schema files read from the staging directory for one commit.
type Staged = Vec<(String, Vec<u8>)>;

/// Removes staged schema files that are now on the remote unchanged.
fn clear_pushed_schemas(node: &Node, pushed: &Staged) -> Result<()> {
    let root = node.paths.schema_outbox();
    for (rel, bytes) in pushed {
        let file = root.join(rel);
        // A file restaged with new content since it was read stays for the next sync.
        if std::fs::read(&file).is_ok_and(|now| &now == bytes) {
            std::fs::remove_file(&file).map_err(|e| crate::fsutil::PathError {
                op: "remove",
                path: file.clone(),
                source: e,
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        assert_eq!(backoff(1, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(3, 1.0), Duration::from_millis(400));
        assert_eq!(backoff(30, 1.0), Duration::from_millis(3200));
        assert_eq!(backoff(2, 0.5), Duration::from_millis(100));
        assert_eq!(backoff(2, 9.0), Duration::from_millis(300));
    }
}
