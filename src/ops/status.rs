//! `mesh-status`: what a node holds, how far behind it is, and what it knows of its peers.

use super::error::Result;
use crate::dispatch::DispatchCursor;
use crate::dispatch::actuator::AuditLine;
use crate::ledger::lease::Lease;
use crate::ledger::manifest;
use crate::ledger::state::{self, ExportState};
use crate::node::Node;
use crate::store::{layout::Layout, repo};
use serde::Serialize;
use std::collections::BTreeMap;

/// One peer as seen through its manifest.
#[derive(Debug, Clone, Serialize)]
pub struct PeerStatus {
    /// The peer.
    pub node_id: String,
    /// Its last heartbeat.
    pub last_seen: String,
    /// Seconds since then.
    pub age_sec: Option<i64>,
    /// Not seen within `sync.stale_after`.
    pub stale: bool,
    /// Its advertised capabilities.
    pub capabilities: Vec<String>,
}

/// The whole `mesh-status` report.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// This node.
    pub node_id: String,
    /// Its root.
    pub root: String,
    /// The shared repository.
    pub remote: String,
    /// Events in the log.
    pub event_count: u64,
    /// Events this node emitted.
    pub own_event_count: u64,
    /// Events imported from peers.
    pub imported_event_count: u64,
    /// Highest own seq.
    pub last_seq: u64,
    /// Where dispatch resumes (bytes into the log).
    pub dispatch_cursor_offset: u64,
    /// Events appended since the cursor.
    pub dispatch_lag: u64,
    /// Own events not yet exported.
    pub pending_export: u64,
    /// Peers known from the ledger manifests.
    pub peers: Vec<PeerStatus>,
    /// The leader lease as last seen, or null.
    pub leader: Option<Lease>,
    /// Items in quarantine.
    pub quarantined: u64,
    /// Actuator outcomes by name.
    pub command_outcomes: BTreeMap<String, u64>,
    /// The latest actuator record.
    pub latest_command: Option<AuditLine>,
    /// The highest leader epoch seen in a command record.
    pub latest_leader_epoch: Option<u64>,
    /// Log lines that are not events (skipped).
    pub bad_log_lines: u64,
    /// Seq ranges of peers that are missing while later seqs were imported.
    pub gaps: Vec<crate::ledger::seqs::Gap>,
    /// Imported events accepted although they broke their schema (`accept-and-flag`).
    pub schema_flagged: u64,
    /// Peers whose manifest offers a key that differs from the pinned one (`gitmesh nodes trust`).
    pub key_alerts: Vec<String>,
    /// Forks seen: two different events of one peer with the same seq.
    pub fork_alerts: Vec<crate::ledger::trust::Alert>,
    /// Peers' batches that were modified or deleted after they were imported.
    pub rewrite_alerts: Vec<crate::ledger::trust::Alert>,
    /// Ledger files held back (waiting for missing seqs or for a trusted key).
    pub held_files: u64,
}

/// Builds the status report.
pub fn status(node: &Node) -> Result<Status> {
    let head = node.log.head()?;
    let cursor: DispatchCursor = state::load(&node.paths.dispatch_cursor())?;
    let export: ExportState = state::load(&node.paths.export_seen())?;
    let dispatch_lag = node
        .log
        .count_lines(cursor.offset.min(head.log_len), head.log_len)?;
    let layout = Layout::new(&node.config.ledger.dir);
    let view = repo::view_ref(&node.config, &node.paths);
    let now = chrono::Utc::now();
    let stale_after = node.config.sync.stale_after.0.as_secs() as i64;
    let mut peers = Vec::new();
    if let Some(r) = &view {
        for m in manifest::read_all(&node.paths.ledger_repo(), r, &layout)? {
            let age = crate::event::parse_timestamp(&m.last_seen).map(|t| (now - t).num_seconds());
            peers.push(PeerStatus {
                stale: age.is_none_or(|a| a > stale_after),
                node_id: m.node_id,
                last_seen: m.last_seen,
                age_sec: age,
                capabilities: m.capabilities,
            });
        }
    }
    // The lease the remote confirmed, as dispatch uses it (not an unpushed claim).
    let leader = crate::ledger::lease::read_confirmed(node)?;
    let (command_outcomes, latest_command, latest_leader_epoch) = commands(node)?;
    let imports: state::ImportState = state::load(&node.paths.import_state())?;
    Ok(Status {
        node_id: node.id().to_string(),
        root: std::path::absolute(&node.paths.root)
            .unwrap_or(node.paths.root.clone())
            .display()
            .to_string(),
        remote: repo::display_url(&node.config, &node.paths),
        event_count: head.event_count,
        own_event_count: head.own_count,
        imported_event_count: head.event_count - head.own_count,
        last_seq: head.own_seq,
        dispatch_cursor_offset: cursor.offset,
        dispatch_lag,
        pending_export: head.own_seq.saturating_sub(export.exported_through_seq),
        peers,
        leader,
        quarantined: count_quarantined(node),
        command_outcomes,
        latest_command,
        latest_leader_epoch,
        bad_log_lines: head.bad_lines,
        gaps: imports.gaps(),
        schema_flagged: crate::schema::flagged(&node.paths)?.count,
        key_alerts: crate::keys::KnownNodes::load(&node.paths)?.alerts(),
        fork_alerts: alerts(&imports, crate::ledger::quarantine::Reason::Fork),
        rewrite_alerts: alerts(&imports, crate::ledger::quarantine::Reason::HistoryRewrite),
        held_files: imports.held.len() as u64,
    })
}

fn alerts(
    st: &state::ImportState,
    kind: crate::ledger::quarantine::Reason,
) -> Vec<crate::ledger::trust::Alert> {
    st.alerts
        .iter()
        .filter(|a| a.kind == kind)
        .cloned()
        .collect()
}

fn count_quarantined(node: &Node) -> u64 {
    std::fs::read_dir(node.paths.quarantine())
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| !e.file_name().to_string_lossy().ends_with(".reason"))
                .count() as u64
        })
        .unwrap_or(0)
}

type CommandSummary = (BTreeMap<String, u64>, Option<AuditLine>, Option<u64>);

fn commands(node: &Node) -> Result<CommandSummary> {
    let path = node.paths.commands_log();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(e) => {
            return Err(crate::fsutil::PathError {
                op: "read",
                path,
                source: e,
            }
            .into());
        }
    };
    let mut outcomes = BTreeMap::new();
    let mut latest = None;
    let mut epoch: Option<u64> = None;
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<AuditLine>(line) else {
            continue;
        };
        if !v.outcome.is_empty() {
            *outcomes.entry(v.outcome.to_string()).or_insert(0) += 1;
        }
        if let Some(e) = v.leader_epoch {
            epoch = Some(epoch.map_or(e, |x| x.max(e)));
        }
        latest = Some(v);
    }
    Ok((outcomes, latest, epoch))
}
