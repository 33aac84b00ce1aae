//! `mesh-import`: append peers' new events from the ledger to the local log.
//!
//! Only the files that differ between the last imported ledger commit and the
//! current one are read (a tree diff that skips equal subtrees), so the cost
//! follows the new data, not the history.
//!
//! One concern per module: `archive` (deletions by compaction), `pinning`
//! (peers' keys), `rekey` (peers' key rotations), `signatures` (parallel signature checks), `run` (the run's
//! state and bookkeeping), `leg` (one diff's files; the diff itself is
//! `git::tree::diff_entries`), `file` (reading one file), `apply` (the chain
//! decision and carrying it out) and `held` (held files and their retries).

mod apply;
mod archive;
mod file;
mod held;
mod leg;
mod pinning;
mod rekey;
mod run;
mod signatures;

use super::LedgerError;
use super::Result;
use super::lock::SyncLock;
use super::quarantine::Rejected;
use super::seqs::Gap;
use super::state;
use super::trust::{Alert, HeldReason};
use crate::git::RepoContext;
use crate::keys::KnownNodes;
use crate::node::Node;
use crate::store::layout::Layout;
use run::Run;
use serde::Serialize;

/// Events are appended to the log in chunks of this many (one write and fsync each).
const APPEND_CHUNK: usize = 5000;

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// This node.
    pub node_id: String,
    /// New events appended to the log.
    pub imported_events: u64,
    /// Valid events the log already held.
    pub duplicate_events: u64,
    /// Quarantine records written by this import (one per bad file, whatever its bad lines).
    pub quarantined: u64,
    /// Paths whose object this import already read or quarantined at another path:
    /// counted on that record, not read again.
    pub repeated_paths: u64,
    /// Per peer, outbox files left for the next sync: the peer reached its read caps
    /// (`[import] max_files_per_peer`, `max_bytes_per_peer`) in this import.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub deferred: std::collections::BTreeMap<String, u64>,
    /// Peer outbox files read.
    pub scanned_files: u64,
    /// The ledger commit imported up to ("" when the ledger is empty).
    pub ledger_commit: String,
    /// False when `--max-events` stopped the import early (the next one resumes).
    pub complete: bool,
    /// What was quarantined, with reasons.
    pub rejected: Vec<Rejected>,
    /// Missing seq ranges of peers.
    pub gaps: Vec<Gap>,
    /// Files held back: waiting for missing seqs or for an operator to trust a changed key.
    pub held: Vec<HeldFile>,
    /// Peers whose manifest offers a key that differs from the pinned one.
    pub key_alerts: Vec<String>,
    /// Peers' manifests ignored by this import: they publish a key but carry no valid
    /// signature by it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub manifest_alerts: Vec<String>,
    /// Ledger schema files not used because no schema publisher signed them (or they are
    /// too large, or for a built-in type); listed by `schema list` under `refused`.
    #[serde(skip_serializing_if = "is_zero")]
    pub schemas_refused: usize,
    /// Forks and history rewrites seen so far (kept until acknowledged).
    pub alerts: Vec<Alert>,
    /// Peers whose files the mesh roster does not allow (held), or whose manifest key differs from it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unauthorized: Vec<String>,
}

/// A held file, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct HeldFile {
    /// Path in the ledger repository.
    pub path: String,
    /// Whose outbox.
    pub node_id: String,
    /// The seq it waits to apply (0 when not read yet).
    pub first_seq: u64,
    /// Why it waits.
    pub reason: HeldReason,
}

/// Imports what is new in peers' outboxes up to the ledger head this node last fetched.
pub fn import(node: &Node, lock: &SyncLock, max_events: Option<u64>) -> Result<ImportReport> {
    import_with(node, lock, max_events, &crate::progress::Progress::hidden())
}

/// [`import`], advancing `progress` by one per ledger file read.
pub fn import_with(
    node: &Node,
    _lock: &SyncLock,
    max_events: Option<u64>,
    progress: &crate::progress::Progress,
) -> Result<ImportReport> {
    let path = node.paths.ledger_repo();
    let repo = crate::store::repo::open_at(&path)?;
    let layout = Layout::new(&node.config.ledger.dir);
    let state = state::load(&node.paths.import_state())?;
    let mut run = Run::new(node, &repo, progress, state, max_events);
    let head = super::refs::import_source(&repo, &node.config)
        .in_repo(&path)
        .map_err(LedgerError::from)?;
    let mut known = KnownNodes::load(&node.paths)?;
    let mut writer = node.log.writer()?;
    // The roster first: it decides whose files may be read at all.
    run.roster = super::roster::observe(node, head, true)?;
    if let Some(head) = head {
        let published =
            pinning::manifest_keys(&repo, &layout, head, &mut run.report.manifest_alerts)
                .in_repo(&path)
                .map_err(LedgerError::from)?;
        let pinned_before = known.clone();
        // Verified key rotations move pins before manifests are compared with them.
        let root = crate::git::tree::tree_of(&repo, Some(head))
            .in_repo(&path)
            .map_err(LedgerError::from)?;
        run.commit = head.to_string();
        let keys_tree = crate::git::tree::subtree_at(&repo, root, &layout.keys_dir())
            .in_repo(&path)
            .map_err(LedgerError::from)?;
        let roster_hash = run.roster.as_ref().map(|r| r.hash());
        let inputs = |known: &KnownNodes| {
            super::rotations::fingerprint(keys_tree, roster_hash.as_deref(), known, &published)
        };
        if inputs(&known) != run.state.rotations_followed {
            let statements = super::rotations::read_all(&repo, root, &layout)
                .in_repo(&path)
                .map_err(LedgerError::from)?;
            run.follow_rotations(statements, &published, &mut known)?;
            run.state.rotations_followed = inputs(&known);
        }
        run.keys = pinning::key_states(node.id(), &published, &mut known);
        if known != pinned_before {
            known.save(&node.paths)?;
        }
        if let Some(r) = &run.roster {
            let mismatched = pinning::apply_roster(node.id(), r, &known, &published, &mut run.keys);
            run.unauthorized.extend(mismatched);
        }
        // Schemas before events: the events of this pass are judged by verified schemas only.
        run.report.schemas_refused =
            super::schema_trust::observe(node, &repo, Some(head), run.roster.as_ref(), &known)?;
        run.legs(&mut writer, &layout, head)?;
        if run.report.complete {
            run.retry_held(&mut writer, head)?;
        }
        run.flush(&mut writer)?;
        run.report.ledger_commit = head.to_string();
    }
    drop(writer);
    run.quarantine.save()?;
    crate::schema::record_flagged(&node.paths, &run.flagged)?;
    state::save(&node.paths.import_state(), &run.state)?;
    run.report.gaps = run.state.gaps();
    run.report.held = run
        .state
        .held
        .iter()
        .map(|(path, h)| HeldFile {
            path: path.clone(),
            node_id: h.node_id.clone(),
            first_seq: h.first_seq,
            reason: h.reason,
        })
        .collect();
    run.report.key_alerts = known.alerts();
    run.report.alerts = run.state.alerts.clone();
    run.report.unauthorized = run.unauthorized.iter().cloned().collect();
    Ok(run.report)
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
