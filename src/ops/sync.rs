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
use crate::ledger::clock::{self, ClockState};
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
    /// Which part of a sync to run (the daemon runs the halves between full syncs).
    pub mode: SyncMode,
}

/// Which part of a sync a pass runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SyncMode {
    /// Everything: fetch, import, dispatch, export, compaction, heartbeat, lease, push.
    #[default]
    Full,
    /// Fetch, import and dispatch only: no commit, no push, no lease decision.
    Pull,
    /// Export and push own new events on the last fetched head (re-fetching only when
    /// the push loses a race): no lease decision and no compaction.
    Push,
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
    /// The kind of that error: `offline`, or `timeout` when the remote stalled past
    /// `[sync] remote_timeout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<&'static str>,
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
    /// A pull's fetch moved a tracking ref (so it imported and dispatched).
    #[serde(skip)]
    pub remote_moved: bool,
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

/// One full sync pass under the node's sync lock; its outcome is recorded in
/// `sync_state.json` (best-effort) before the lock is released.
///
/// Only a full sync is recorded: the partial passes of [`SyncMode`] leave the
/// heartbeat and the lease to it, so they say nothing about its health.
pub fn sync(node: &Node, opts: &SyncOptions) -> Result<SyncReport> {
    let lock = SyncLock::acquire(&node.paths, node.config.sync.lock_wait.0)?;
    let result = match opts.mode {
        SyncMode::Full => {
            let started = std::time::Instant::now();
            let result = sync_locked(node, opts, &lock);
            let attempt = super::health::attempt_of(&result, chrono::Utc::now(), started.elapsed());
            super::health::record(&node.paths, attempt);
            result
        }
        SyncMode::Pull => pull_locked(node, opts, &lock),
        SyncMode::Push => push_locked(node, opts, &lock),
    };
    drop(lock);
    result
}

/// A poll, with the lock held: one fetch, which costs one ref advertisement and no
/// objects when nothing moved; import and dispatch only when a tracking ref moved.
fn pull_locked(node: &Node, opts: &SyncOptions, lock: &SyncLock) -> Result<SyncReport> {
    crate::store::repo::ensure(&node.config, &node.paths)?;
    let mut push = PushReport::default();
    let before = tracking_heads(node)?;
    fetch_or_offline(node, &mut push)?;
    let moved = !push.offline && tracking_heads(node)? != before;
    let mut report = SyncReport {
        node_id: node.id().to_string(),
        fetched: !push.offline,
        remote_moved: moved,
        push,
        ..SyncReport::default()
    };
    if !moved {
        return Ok(report);
    }
    crate::ledger::recover::recover_own(node, lock)?;
    report.import = import::import_with(node, lock, opts.max_events, &opts.progress)?;
    report.dispatch = dispatch_pass(node, opts)?;
    Ok(report)
}

/// The dispatch pass a sync or poll runs after import, when its options ask for one.
fn dispatch_pass(node: &Node, opts: &SyncOptions) -> Result<Option<DispatchReport>> {
    Ok(opts
        .dispatch
        .as_ref()
        .map(|d| crate::dispatch::run(node, d))
        .transpose()?)
}

/// The remote-tracking refs of the ledger repository and their targets, sorted.
fn tracking_heads(node: &Node) -> Result<Vec<(String, Oid)>> {
    let path = node.paths.ledger_repo();
    let repo = crate::store::repo::open_at(&path)?;
    let mut heads = Vec::new();
    for r in repo
        .references_glob("refs/remotes/origin/*")
        .in_repo(&path)?
        .flatten()
    {
        if let (Some(name), Some(oid)) = (r.name().ok(), r.target()) {
            heads.push((name.to_string(), oid));
        }
    }
    heads.sort();
    Ok(heads)
}

/// Export and push of own new events, with the lock held: what the daemon runs shortly
/// after an append. The commit carries only this node's outbox and manifest.
fn push_locked(node: &Node, opts: &SyncOptions, lock: &SyncLock) -> Result<SyncReport> {
    crate::store::repo::ensure(&node.config, &node.paths)?;
    crate::ledger::recover::recover_own(node, lock)?;
    let export = export::export(node, lock, opts.max_events)?;
    let mut report = SyncReport {
        node_id: node.id().to_string(),
        export,
        ..SyncReport::default()
    };
    if report.export.exported_events == 0 {
        return Ok(report);
    }
    for t in targets(node, false).into_iter().filter(|t| t.own) {
        commit_and_push(
            node,
            lock,
            &t,
            opts.push,
            &mut report.push,
            Some(&mut report.import),
        )?;
    }
    refresh_view(node)?;
    report.fetched = report.push.attempts > 1;
    Ok(report)
}

/// The sync pass proper, with the lock held.
fn sync_locked(node: &Node, opts: &SyncOptions, lock: &SyncLock) -> Result<SyncReport> {
    // `origin` follows the configured remote (`[ledger] remote`, `GITMESH_REMOTE`).
    crate::store::repo::ensure(&node.config, &node.paths)?;
    let mut push = PushReport::default();
    fetch_or_offline(node, &mut push)?;
    // A root restored from an older copy recovers its own events before anything appends.
    crate::ledger::recover::recover_own(node, lock)?;
    if !push.offline {
        crate::ledger::recover::mark_identity(&node.paths)?;
        observe_heartbeats(node)?;
    }
    let import = import::import_with(node, lock, opts.max_events, &opts.progress)?;
    opts.progress.finish();
    let dispatch = dispatch_pass(node, opts)?;
    let export = export::export(node, lock, opts.max_events)?;
    let compact = compact::maybe_compact(node, lock)?;
    let mut report = SyncReport {
        node_id: node.id().to_string(),
        fetched: !push.offline,
        import,
        dispatch,
        export,
        compact,
        push,
        leader: None,
        remote_moved: false,
    };
    let mut leader = None;
    for t in targets(node, true) {
        let l = commit_and_push(
            node,
            lock,
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
    observe_confirmed(node)?;
    report.leader = leader;
    Ok(report)
}

/// Samples peers' clocks from the heartbeats just fetched (`ledger::clock`).
fn observe_heartbeats(node: &Node) -> Result<()> {
    let Some(r) = crate::store::repo::peers_ref(&node.config, &node.paths) else {
        return Ok(());
    };
    let layout = Layout::new(&node.config.ledger.dir);
    let manifests = crate::ledger::manifest::read_all(&node.paths.ledger_repo(), &r, &layout)?;
    let path = node.paths.clock_state();
    let mut st: ClockState = crate::ledger::state::load(&path)?;
    st.observe_heartbeats(
        node.id(),
        manifests
            .iter()
            .map(|m| (m.node_id.as_str(), m.last_seen.as_str())),
        chrono::Utc::now(),
    );
    crate::ledger::state::save(&path, &st)?;
    Ok(())
}

/// Records the lease read from the remote; logs a change of leader or epoch.
fn observe_lease(
    node: &Node,
    l: Option<&Lease>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<ClockState> {
    let path = node.paths.clock_state();
    let mut st: ClockState = crate::ledger::state::load(&path)?;
    if let Some(c) = st.observe_lease(l, now) {
        tracing::info!(
            old_leader = %c.old.0,
            old_epoch = c.old.1,
            new_leader = %c.new.0,
            new_epoch = c.new.1,
            "leadership changed: {} (epoch {}) -> {} (epoch {})",
            c.old.0,
            c.old.1,
            c.new.0,
            c.new.1
        );
    }
    crate::ledger::state::save(&path, &st)?;
    Ok(st)
}

/// What the lease decision knows about time: config, measured offsets, the lease's sighting.
fn lease_clock(
    node: &Node,
    st: &ClockState,
    current: Option<&Lease>,
    now: chrono::DateTime<chrono::Utc>,
) -> clock::LeaseClock {
    let sync = &node.config.sync;
    let dur = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    let tolerance = dur(sync.clock_tolerance.0);
    let own = st.own_offset();
    clock::LeaseClock {
        now,
        ttl: dur(sync.lease_ttl.0.max(Duration::from_secs(1))),
        tolerance,
        renew_before: dur(sync.renew_before()),
        own_offset: own.map(chrono::Duration::seconds),
        refusal: clock::skew_refusal(own, tolerance),
        holder_offset: current
            .and_then(|l| st.peer_estimate(&l.leader_id))
            .map(chrono::Duration::seconds),
        unchanged_for: current.and_then(|l| st.unchanged_for(l, now)),
    }
}

/// Brings the trusted roster and lease up to what the remote confirmed (after a push).
fn observe_confirmed(node: &Node) -> Result<()> {
    let head = fetched_head(node, &node.config.ledger.branch)?;
    crate::ledger::roster::observe(node, head, true)?;
    let confirmed = lease::read_confirmed(node)?;
    observe_lease(node, confirmed.as_ref(), chrono::Utc::now())?;
    Ok(())
}

/// Publishes this node's manifest (used by `mesh-init`): fetch, commit on the head, push.
/// On an empty ledger it also signs and publishes version 1 of the mesh roster, with
/// this node as its admin; the bool says whether it did.
pub fn announce(node: &Node) -> Result<(PushReport, bool)> {
    let lock = SyncLock::acquire(&node.paths, node.config.sync.lock_wait.0)?;
    let mut push = PushReport::default();
    fetch_or_offline(node, &mut push)?;
    // A root re-created on a ledger that already holds this node's events takes them
    // back first (or stops, when its key is not the node's), so it never reuses a seq.
    crate::ledger::recover::recover_own(node, &lock)?;
    let genesis = !push.offline && ledger_is_empty(node)?;
    if genesis && let Some((key, _)) = node.signing_key().map_err(LedgerError::from)? {
        let r =
            crate::ledger::roster::Roster::genesis(node.id(), &key, &crate::event::now_timestamp());
        crate::ledger::roster::stage(&node.paths, &r)?;
    }
    export::export(node, &lock, Some(0))?;
    let roster_staged = !crate::ledger::roster::load_staged(&node.paths)?.is_empty();
    for t in targets(node, false)
        .into_iter()
        .filter(|t| t.own || roster_staged)
    {
        commit_and_push(node, &lock, &t, true, &mut push, None)?;
    }
    refresh_view(node)?;
    observe_confirmed(node)?;
    Ok((push, genesis))
}

/// No roster, nothing staged or trusted, and no other node's manifest on the fetched head.
fn ledger_is_empty(node: &Node) -> Result<bool> {
    use crate::ledger::roster;
    if roster::newest(&node.paths)?.is_some() {
        return Ok(false);
    }
    let path = node.paths.ledger_repo();
    let repo = crate::store::repo::open_at(&path)?;
    let layout = Layout::new(&node.config.ledger.dir);
    let head = fetched_head(node, &node.config.ledger.branch)?;
    let root = tree::tree_of(&repo, head).in_repo(&path)?;
    if tree::subtree_at(&repo, root, &layout.roster_dir())
        .in_repo(&path)?
        .is_some()
    {
        return Ok(false);
    }
    let Some(nodes) = tree::subtree_at(&repo, root, &layout.nodes_dir()).in_repo(&path)? else {
        return Ok(true);
    };
    let own = format!("{}.json", node.id());
    let others = repo
        .find_tree(nodes)
        .in_repo(&path)?
        .iter()
        .any(|e| e.name().ok() != Some(own.as_str()));
    Ok(!others)
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
    let timeout = node.config.sync.remote_timeout.0;
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
        refs::fetch_all(&path, branch, per_node, depth, timeout).map(|_| ())
    } else {
        remote::fetch(&path, branch, timeout).and_then(|head| {
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
            push.error_kind = e.remote_failure().map(|f| f.kind());
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
        match remote::push(&path, &target.branch, node.config.sync.remote_timeout.0) {
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
                report.error_kind = e.remote_failure().map(|f| f.kind());
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
    into.repeated_paths += more.repeated_paths;
    for (peer, n) in more.deferred {
        *into.deferred.entry(peer).or_default() += n;
    }
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
        // Its key rotation statements too: this node's copy replaces whatever the remote
        // holds at its path (a planted statement is dropped).
        let keys = layout.rotations(me);
        if let Some(mine) = tree::subtree_at(&repo, local_tree, &keys).in_repo(&path)?
            && tree::subtree_at(&repo, remote_tree, &keys).in_repo(&path)? != Some(mine)
        {
            edits.push(Edit::tree(keys, mine));
        }
    }
    let mut staged = Vec::new();
    let mut leader = None;
    if *branch == node.config.ledger.branch {
        edits.extend(roster_edit(node, &repo, &layout, remote_tree)?);
    }
    if target.shared || !refs::per_node(&node.config) {
        // The lease this node trusts: a lease file that does not verify counts as absent.
        leader = lease::observe(node, remote_head, true)?;
    }
    if target.shared {
        staged = export::staged_schemas(node)?;
        edits.extend(export::schema_edits(&repo, &layout, &staged).in_repo(&path)?);
        let now = chrono::Utc::now();
        let st = observe_lease(node, leader.as_ref(), now)?;
        let c = lease_clock(node, &st, leader.as_ref(), now);
        if let Some(why) = &c.refusal {
            tracing::warn!(reason = %why, "not taking or renewing the leader lease");
        }
        let next = if may_lead(node)? {
            lease::next(leader.as_ref(), me, &c)
        } else {
            None
        };
        if let Some(mut next) = next
            && let Some((key, _)) = node.signing_key().map_err(LedgerError::from)?
        {
            next.sign(&key);
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

/// Whether the trusted roster lets this node take the lease (the `leader` role; any
/// node in open mode or before a roster exists).
fn may_lead(node: &Node) -> Result<bool> {
    use crate::ledger::roster::{self, Role, Standing};
    let r = roster::load_trusted(&node.paths)?;
    let Some(r) = r else { return Ok(true) };
    let own = node
        .signing_key()
        .map_err(LedgerError::from)?
        .map(|(k, _)| k.public_hex());
    Ok(matches!(
        roster::standing(
            Some(&r),
            node.config.mesh.trust,
            node.id(),
            Some(Role::Leader),
            own.as_deref()
        ),
        Standing::Trusted(_)
    ))
}

/// The staged roster versions the remote lacks, as edits. A version the remote holds
/// with other content that verifies was published first by another admin: it and the
/// staged versions after it (which chain on it) are dropped with a warning. One that
/// does not verify is junk planted at the path, and is overwritten.
fn roster_edit(
    node: &Node,
    repo: &git2::Repository,
    layout: &Layout,
    remote_tree: Option<Oid>,
) -> Result<Vec<Edit>> {
    use crate::ledger::roster::{self, Roster};
    let path = node.paths.ledger_repo();
    let mut edits = Vec::new();
    let mut base = roster::load_trusted(&node.paths)?;
    for staged in roster::load_staged(&node.paths)? {
        let file = layout.roster(staged.version);
        let bytes = staged.to_file();
        if let Some((oid, _)) = tree::entry_at(repo, remote_tree, &file).in_repo(&path)? {
            let theirs = repo.find_blob(oid).in_repo(&path)?;
            if theirs.content() == bytes.as_slice() {
                base = Some(staged);
                continue;
            }
            let rival = Roster::parse(theirs.content()).and_then(|r| match &base {
                Some(b) => roster::verify_update(b, &r),
                None => roster::verify_genesis(&r),
            });
            if rival.is_ok() {
                tracing::warn!(file = %file, "another roster version {} was published first; the staged versions from it on are dropped (re-run the roster command)", staged.version);
                roster::clear_staged_through(&node.paths, u64::MAX)?;
                return Ok(Vec::new());
            }
            tracing::warn!(file = %file, "a roster file that does not verify sits at the path of the staged version; it is overwritten");
        }
        edits.push(Edit::blob(file, repo.blob(&bytes).in_repo(&path)?));
        base = Some(staged);
    }
    Ok(edits)
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
