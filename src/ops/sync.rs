//! `mesh-sync`: fetch, import, dispatch, export, commit on the fetched head, push.
//!
//! The commit pushed is always built on the freshly fetched remote head and
//! touches only this node's outbox and manifest, staged schemas and the lease,
//! so a rejected push is resolved by fetching and rebuilding, never by merging
//! or forcing. The lease changes only through that push: a rejection is a lost
//! compare-and-swap, and the next attempt re-reads and re-decides it.

use super::error::Result;
use crate::dispatch::{DispatchOptions, DispatchReport};
use crate::fsutil::IoContext;
use crate::git::RepoContext;
use crate::git::remote::{self, PushOutcome, local_ref, tracking_ref};
use crate::git::tree::{self, Edit};
use crate::ledger::export::{self, ExportReport};
use crate::ledger::import::{self, ImportReport};
use crate::ledger::lease::{self, Lease};
use crate::ledger::lock::SyncLock;
use crate::ledger::{LedgerError, compact, refs};
use crate::node::Node;
use crate::store::layout::Layout;
use git2::Oid;
use serde::Serialize;
use std::time::Duration;

/// What a sync should do.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Push the commit (false: local work only, like `--no-push`).
    pub push: bool,
    /// Cap on events imported and exported in this pass.
    pub max_events: Option<u64>,
    /// Drawn while peers' files are imported (hidden for the daemon and `--json`).
    pub progress: crate::progress::Progress,
    /// Run a dispatch pass between import and export (`mesh-sync` and the daemon do).
    pub dispatch: Option<DispatchOptions>,
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
    /// Own-outbox files someone else changed on the remote (this node's copy was restored): an alert.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<String>,
    /// Why the remote was not reached, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The `mesh-sync` report (the keys documented in docs/ledger.md, "Exit codes and JSON").
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    /// This node.
    pub node_id: String,
    /// The remote head was fetched.
    pub fetched: bool,
    /// What import did (including re-imports after rejected pushes).
    pub import: ImportReport,
    /// What the dispatch pass between import and export did (absent when none ran).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatch: Option<DispatchReport>,
    /// What export did.
    pub export: ExportReport,
    /// The compaction run because `[ledger] compact_after_files` was reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compact: Option<compact::CompactReport>,
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

/// Which ref a commit is built for and which files it carries.
#[derive(Debug, Clone)]
struct Target {
    /// Branch pushed (`main`, or `gitmesh/<node>` in per-node mode).
    branch: String,
    /// Carries this node's outbox and manifest.
    own: bool,
    /// Carries the lease (when due) and staged schemas.
    shared: bool,
}

/// The commits to push in this sync: one in shared-branch mode, two in per-node mode
/// (the node's own ref, then the shared branch for the lease and schemas).
fn targets(node: &Node, take_lease: bool) -> Vec<Target> {
    let shared = node.config.ledger.branch.clone();
    if refs::per_node(&node.config) {
        vec![
            Target {
                branch: refs::own_branch(&node.config),
                own: true,
                shared: false,
            },
            Target {
                branch: shared,
                own: false,
                shared: take_lease,
            },
        ]
    } else {
        vec![Target {
            branch: shared,
            own: true,
            shared: take_lease,
        }]
    }
}

/// One full sync pass under the node's sync lock.
pub fn sync(node: &Node, opts: &SyncOptions) -> Result<SyncReport> {
    let lock = SyncLock::acquire(&node.paths, node.config.sync.lock_wait.0)?;
    // `origin` follows the configured remote (`[ledger] remote`, `GITMESH_REMOTE`).
    crate::store::repo::ensure(&node.config, &node.paths)?;
    let mut push = PushReport::default();
    fetch_or_offline(node, &mut push)?;
    // A root restored from an older copy recovers its own events before anything appends.
    crate::ledger::recover::recover_own(node, &lock)?;
    if !push.offline {
        crate::ledger::recover::mark_identity(&node.paths)?;
    }
    let import = import::import_with(node, &lock, opts.max_events, &opts.progress)?;
    opts.progress.finish();
    let dispatch = match &opts.dispatch {
        Some(d) => Some(crate::dispatch::run(node, d)?),
        None => None,
    };
    let export = export::export(node, &lock, opts.max_events)?;
    let compact = compact::maybe_compact(node, &lock)?;
    let mut report = SyncReport {
        node_id: node.id().to_string(),
        fetched: !push.offline,
        import,
        dispatch,
        export,
        compact,
        push,
        leader: None,
    };
    let mut leader = None;
    for t in targets(node, true) {
        let l = commit_and_push(
            node,
            &lock,
            &t,
            opts.push,
            &mut report.push,
            Some(&mut report.import),
        )?;
        if t.shared || !refs::per_node(&node.config) {
            leader = l;
        }
    }
    refresh_view(node)?;
    report.leader = leader;
    Ok(report)
}

/// Publishes this node's manifest (used by `mesh-init`): fetch, commit on the head, push.
pub fn announce(node: &Node) -> Result<PushReport> {
    let lock = SyncLock::acquire(&node.paths, node.config.sync.lock_wait.0)?;
    let mut push = PushReport::default();
    fetch_or_offline(node, &mut push)?;
    export::export(node, &lock, Some(0))?;
    for t in targets(node, false).into_iter().filter(|t| t.own) {
        commit_and_push(node, &lock, &t, true, &mut push, None)?;
    }
    refresh_view(node)?;
    Ok(push)
}

/// Rebuilds the merged view in per-node mode (no-op in shared-branch mode).
fn refresh_view(node: &Node) -> Result<()> {
    if !refs::per_node(&node.config) {
        return Ok(());
    }
    let path = node.paths.ledger_repo();
    let repo = crate::store::repo::open_at(&path)?;
    let layout = Layout::new(&node.config.ledger.dir);
    refs::build_view(&repo, &node.config, &layout).in_repo(&path)?;
    Ok(())
}

/// Fetches the remote (the shared branch, plus every per-node ref in per-node mode);
/// an unreachable remote marks the report offline and the last fetched refs stay.
fn fetch_or_offline(node: &Node, push: &mut PushReport) -> Result<()> {
    let path = node.paths.ledger_repo();
    let branch = &node.config.ledger.branch;
    let per_node = refs::per_node(&node.config);
    let first = {
        let repo = crate::store::repo::open_at(&path)?;
        repo.references_glob("refs/remotes/origin/*")
            .in_repo(&path)?
            .next()
            .is_none()
    };
    // A node joining from a date imports trees, not history: its first fetch is shallow.
    let depth = (first && node.config.ledger.since.is_some()).then_some(1);
    let fetched = if per_node || depth.is_some() {
        refs::fetch_all(&path, branch, per_node, depth).map(|_| ())
    } else {
        remote::fetch(&path, branch).and_then(|head| {
            if head.is_none() {
                // The remote branch is gone or never existed: forget a stale tracking ref.
                let repo = crate::store::repo::open_at(&path)?;
                if let Ok(mut r) = repo.find_reference(&tracking_ref(branch)) {
                    r.delete().in_repo(&path)?;
                }
            }
            Ok(())
        })
    };
    match fetched {
        Ok(()) => {}
        Err(e) if e.is_unreachable() => {
            tracing::warn!(error = %e, "remote unreachable; doing local work only");
            push.offline = true;
            push.error = Some(e.to_string());
        }
        Err(e) => return Err(LedgerError::Git(e).into()),
    }
    refresh_view(node)
}

/// The last fetched head of `branch`.
fn fetched_head(node: &Node, branch: &str) -> Result<Option<Oid>> {
    let path = node.paths.ledger_repo();
    let repo = crate::store::repo::open_at(&path)?;
    Ok(tree::ref_target(&repo, &tracking_ref(branch)).in_repo(&path)?)
}

/// Builds the commit for `target` on its fetched head and pushes it, retrying lost races.
fn commit_and_push(
    node: &Node,
    lock: &SyncLock,
    target: &Target,
    push: bool,
    report: &mut PushReport,
    mut import_report: Option<&mut ImportReport>,
) -> Result<Option<Lease>> {
    let path = node.paths.ledger_repo();
    let retries = node.config.sync.push_retries;
    let mut remote_head = fetched_head(node, &target.branch)?;
    let mut tries = 0u32;
    loop {
        let (commit, leader, staged) = compose(node, target, remote_head, &mut report.conflicts)?;
        let Some(commit) = commit else {
            return Ok(leader);
        };
        if target.own {
            report.commit = Some(commit.to_string());
        }
        if !push || report.offline {
            return Ok(leader);
        }
        report.attempts += 1;
        tries += 1;
        match remote::push(&path, &target.branch) {
            Ok(PushOutcome::Pushed) => {
                let repo = crate::store::repo::open_at(&path)?;
                tree::set_ref(
                    &repo,
                    &tracking_ref(&target.branch),
                    commit,
                    "gitmesh: pushed",
                )
                .in_repo(&path)?;
                clear_pushed_schemas(node, &staged)?;
                report.pushed = true;
                return Ok(leader);
            }
            Ok(PushOutcome::Rejected(msg)) => {
                tracing::info!(attempt = tries, reason = %msg, "push rejected; fetching and rebuilding");
                if tries > retries {
                    report.contended = true;
                    report.error = Some(LedgerError::Contended { attempts: tries }.to_string());
                    return Ok(leader);
                }
                std::thread::sleep(backoff(tries, rand::random_range(0.5..1.5)));
                fetch_or_offline(node, report)?;
                if report.offline {
                    return Ok(leader);
                }
                remote_head = fetched_head(node, &target.branch)?;
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

/// Builds the commit `remote_head` + this node's files for `target`; moves the local
/// branch to it. Returns `None` as the commit when the remote already holds all of it.
fn compose(
    node: &Node,
    target: &Target,
    remote_head: Option<Oid>,
    conflicts: &mut Vec<String>,
) -> Result<(Option<Oid>, Option<Lease>, Staged)> {
    let path = node.paths.ledger_repo();
    let repo = crate::store::repo::open_at(&path)?;
    let layout = Layout::new(&node.config.ledger.dir);
    let me = node.id();
    let branch = &target.branch;
    let remote_tree = tree::tree_of(&repo, remote_head).in_repo(&path)?;
    let mut edits = Vec::new();
    if target.own {
        let local = tree::ref_target(&repo, &local_ref(branch)).in_repo(&path)?;
        let local_tree = tree::tree_of(&repo, local).in_repo(&path)?;
        let outbox = layout.outbox(me);
        let theirs = tree::subtree_at(&repo, remote_tree, &outbox).in_repo(&path)?;
        let mine = tree::subtree_at(&repo, local_tree, &outbox).in_repo(&path)?;
        let mut found = Vec::new();
        // A node owns its outbox: where the remote holds another file at one of this
        // node's paths, this node's copy is written back (never adopted).
        let merged = tree::union(&repo, mine, theirs, &mut found).in_repo(&path)?;
        let merged = compact::apply_pending(&repo, node, theirs, merged)?;
        if merged != theirs {
            match merged {
                Some(m) => edits.push(Edit::tree(outbox.clone(), m)),
                None => edits.push(Edit::remove(outbox.clone())),
            }
        }
        for f in found {
            tracing::warn!(file = %format!("{outbox}/{f}"), "own batch was changed on the remote by someone else; this node's copy is restored");
            conflicts.push(format!("{outbox}/{f}"));
        }
        let manifest = layout.manifest(me);
        if let Some((oid, mode)) = tree::entry_at(&repo, local_tree, &manifest).in_repo(&path)? {
            edits.push(Edit {
                path: manifest,
                target: Some((oid, mode)),
            });
        }
    }
    let mut staged = Vec::new();
    let mut leader = None;
    if target.shared || !refs::per_node(&node.config) {
        leader = tree::entry_at(&repo, remote_tree, &layout.lease())
            .in_repo(&path)?
            .and_then(|(oid, _)| crate::ledger::manifest::small_blob(&repo, oid))
            .and_then(|b| serde_json::from_slice(b.content()).ok());
    }
    if target.shared {
        staged = export::staged_schemas(node)?;
        edits.extend(export::schema_edits(&repo, &layout, &staged).in_repo(&path)?);
        let ttl = node.config.sync.lease_ttl.0.as_secs().max(1);
        if let Some(next) = lease::next(leader.as_ref(), me, chrono::Utc::now(), ttl) {
            let mut bytes = serde_json::to_vec_pretty(&next)
                .map_err(std::io::Error::other)
                .ctx("serialize", std::path::Path::new(&layout.lease()))?;
            bytes.push(b'\n');
            edits.push(Edit::blob(
                layout.lease(),
                repo.blob(&bytes).in_repo(&path)?,
            ));
            leader = Some(next);
        }
    }

    let new_tree = tree::apply_edits(&repo, remote_tree, &edits).in_repo(&path)?;
    if Some(new_tree) == remote_tree || (remote_tree.is_none() && edits.is_empty()) {
        if let Some(head) = remote_head {
            tree::set_ref(&repo, &local_ref(branch), head, "gitmesh: up to date").in_repo(&path)?;
        }
        return Ok((None, leader, staged));
    }
    let msg = format!("gitmesh {me}: sync");
    let commit = tree::commit(&repo, new_tree, remote_head, me, &msg).in_repo(&path)?;
    tree::set_ref(&repo, &local_ref(branch), commit, &msg).in_repo(&path)?;
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
mod tests;
