//! `mesh-status`: what a node holds, how far behind it is, and what it knows of its peers.

use super::error::Result;
use crate::dispatch::DispatchCursor;
use crate::dispatch::actuator::AuditLine;
use crate::ledger::clock::{self, ClockState};
use crate::ledger::lease::Lease;
use crate::ledger::manifest;
use crate::ledger::state::{self, ExportState};
use crate::node::Node;
use crate::store::{layout::Layout, repo};
use serde::Serialize;
use std::collections::BTreeMap;

/// Whether a peer whose heartbeat is `age` seconds old counts as stale (pure): not
/// seen within `stale_after`, without a readable heartbeat, or stamped in the future.
pub fn stale(age: Option<i64>, future: bool, stale_after: i64) -> bool {
    future || age.is_none_or(|a| a > stale_after)
}

/// The nodes seen within `sync.stale_after` (this node included, and at least 1),
/// from the manifests of the last fetched ledger: the fleet that shares the poll budget.
pub fn live_nodes(node: &Node) -> Result<u32> {
    let Some(r) = repo::view_ref(&node.config, &node.paths) else {
        return Ok(1);
    };
    let layout = Layout::new(&node.config.ledger.dir);
    let now = chrono::Utc::now();
    let stale_after = node.config.sync.stale_after.0.as_secs() as i64;
    let tolerance = node.config.sync.clock_tolerance.0.as_secs() as i64;
    let live = manifest::read_all(&node.paths.ledger_repo(), &r, &layout)?
        .iter()
        .filter(|m| m.node_id != node.id())
        .filter(|m| {
            let age = crate::event::parse_timestamp(&m.last_seen).map(|t| (now - t).num_seconds());
            !stale(age, age.is_some_and(|a| -a > tolerance), stale_after)
        })
        .count();
    Ok(u32::try_from(live).unwrap_or(u32::MAX).saturating_add(1))
}

/// One peer as seen through its manifest.
#[derive(Debug, Clone, Serialize)]
pub struct PeerStatus {
    /// The peer.
    pub node_id: String,
    /// Its last heartbeat.
    pub last_seen: String,
    /// Seconds since then.
    pub age_sec: Option<i64>,
    /// Not seen within `sync.stale_after`, or its heartbeat lies in the future
    /// (never for a node retired on the roster).
    pub stale: bool,
    /// Its heartbeat lies more than `sync.clock_tolerance` in this node's future (its clock is wrong).
    pub future: bool,
    /// Its clock minus the mesh reference, in seconds, as measured (null until measured).
    pub clock_offset_sec: Option<i64>,
    /// Retired on the mesh roster.
    pub retired: bool,
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
    /// Per peer, the import records in quarantine: files and bytes kept, records
    /// pruned to stay within `[import] quarantine_max_files` / `quarantine_max_bytes`.
    pub quarantine: Vec<crate::ledger::quarantine::PeerUsage>,
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
    /// Key rotation statements refused: forged (not signed by the node's trusted key),
    /// replayed or malformed; the node's key did not change.
    pub rotation_alerts: Vec<crate::ledger::trust::Alert>,
    /// Ledger files held back (waiting for missing seqs, a trusted key, or a roster entry).
    pub held_files: u64,
    /// The leader lease's expiry has passed (false when there is no lease).
    pub lease_expired: bool,
    /// The last sync attempt and the last success, by any process on this root.
    pub sync: super::health::SyncState,
    /// Whether a daemon holds this root.
    pub daemon: super::health::DaemonStatus,
    /// Free space of the node root's file system (null when it cannot be read).
    pub disk: Option<super::health::DiskStatus>,
    /// Healthy or not, and why (docs/operations.md, "Health").
    pub health: super::health::Health,
    /// This node's clock against the mesh, and what the clocks make it distrust.
    pub clock: ClockStatus,
    /// The version of the mesh roster this node trusts (0: none).
    pub roster_version: u64,
    /// Refused roster versions and leases (kept, newest last).
    pub authority_alerts: Vec<crate::ledger::roster::AuthorityAlert>,
}

/// The `clock` object of the status report.
#[derive(Debug, Clone, Serialize)]
pub struct ClockStatus {
    /// This node's clock minus the mesh reference (the median of all clocks), in seconds; null until measured.
    pub offset_sec: Option<i64>,
    /// `[sync] clock_tolerance` in seconds.
    pub tolerance_sec: u64,
    /// The own offset exceeds the tolerance: this node does not take or renew the lease.
    pub skewed: bool,
    /// Changes of leader or epoch this node has observed.
    pub leadership_changes: u64,
    /// Clock alerts, each naming its cause.
    pub alerts: Vec<String>,
}

/// Builds the status report.
///
/// It only reads: it works on a full disk and on a read-only node root.
pub fn status(node: &Node) -> Result<Status> {
    let head = node.log.read_head()?;
    let cursor: DispatchCursor = state::load(&node.paths.dispatch_cursor())?;
    let export: ExportState = state::load(&node.paths.export_seen())?;
    let dispatch_lag = node
        .log
        .count_lines(cursor.offset.min(head.log_len), head.log_len)?;
    let layout = Layout::new(&node.config.ledger.dir);
    let view = repo::view_ref(&node.config, &node.paths);
    let now = chrono::Utc::now();
    let stale_after = node.config.sync.stale_after.0.as_secs() as i64;
    let tolerance = node.config.sync.clock_tolerance.0.as_secs() as i64;
    let clocks: ClockState = state::load(&node.paths.clock_state())?;
    let offsets = clocks.peer_offsets();
    let mut clock_alerts = Vec::new();
    let mut peers = Vec::new();
    let roster = crate::ledger::roster::load_trusted(&node.paths)?;
    let retired = |n: &str| {
        roster
            .as_ref()
            .and_then(|r| r.nodes.get(n))
            .is_some_and(|e| e.retired)
    };
    if let Some(r) = &view {
        for m in manifest::read_all(&node.paths.ledger_repo(), r, &layout)? {
            let age = crate::event::parse_timestamp(&m.last_seen).map(|t| (now - t).num_seconds());
            let gone = retired(&m.node_id);
            let future = age.is_some_and(|a| -a > tolerance);
            let offset = offsets.get(&m.node_id).copied();
            if future {
                clock_alerts.push(format!(
                    "node {}: heartbeat {} s in this node's future (clock_tolerance {tolerance} s); not shown live",
                    m.node_id,
                    -age.unwrap_or(0)
                ));
            } else if let Some(o) = offset.filter(|o| o.abs() > tolerance) {
                clock_alerts.push(format!(
                    "node {}: clock {} s {} the mesh (clock_tolerance {tolerance} s)",
                    m.node_id,
                    o.abs(),
                    if o > 0 { "ahead of" } else { "behind" }
                ));
            }
            peers.push(PeerStatus {
                future,
                clock_offset_sec: offset,
                stale: !gone && stale(age, future, stale_after),
                retired: gone,
                node_id: m.node_id,
                last_seen: m.last_seen,
                age_sec: age,
                capabilities: m.capabilities,
            });
        }
    }
    // The lease the remote confirmed, as dispatch uses it (not an unpushed claim).
    let leader = crate::ledger::lease::read_trusted(node)?;
    let own = clocks.own_offset();
    let tol = chrono::Duration::seconds(tolerance);
    let skew = clock::skew_refusal(own, tol);
    if let (Some(l), Some(o)) = (&leader, own) {
        let ttl = chrono::Duration::from_std(node.config.sync.lease_ttl.0).unwrap_or_default();
        let mesh_now = clock::reference_now(now, Some(chrono::Duration::seconds(o)));
        if !clock::lease_expiry_plausible(l.expires(), ttl, mesh_now, tol) {
            clock_alerts.push(format!(
                "leader lease of {} (epoch {}) expires {}, beyond lease_ttl + clock_tolerance ahead: \
                 invalid, the next sync takes it over",
                l.leader_id, l.epoch, l.lease_expires_at
            ));
        }
    }
    let clock = ClockStatus {
        offset_sec: own,
        tolerance_sec: tolerance as u64,
        skewed: skew.is_some(),
        leadership_changes: clocks.leadership_changes,
        alerts: skew.into_iter().chain(clock_alerts).collect(),
    };
    let (command_outcomes, latest_command, latest_leader_epoch) = commands(node)?;
    let imports: state::ImportState = state::load(&node.paths.import_state())?;
    let key_alerts = crate::keys::KnownNodes::load(&node.paths)?.alerts();
    let fork_alerts = alerts(&imports, crate::ledger::quarantine::Reason::Fork);
    let rewrite_alerts = alerts(&imports, crate::ledger::quarantine::Reason::HistoryRewrite);
    let rotation_alerts = alerts(&imports, crate::ledger::quarantine::Reason::BadRotation);
    let sync = super::health::load(&node.paths);
    let disk = super::health::disk_status(&node.paths, node.config.health.min_free_mb);
    let health = super::health::assess(&super::health::HealthInputs {
        now,
        sync: &sync,
        max_failed_syncs: node.config.health.max_failed_syncs,
        max_sync_age: node.config.max_sync_age(),
        disk,
        alerts: key_alerts
            .iter()
            .map(|n| format!("key changed: {n}"))
            .chain(
                fork_alerts
                    .iter()
                    .chain(&rewrite_alerts)
                    .chain(&rotation_alerts)
                    .map(|a| format!("{} {}", a.kind.code(), a.node_id)),
            )
            .collect(),
    });
    let lease_expired = leader.as_ref().is_some_and(|l| {
        crate::event::parse_timestamp(&l.lease_expires_at).is_none_or(|t| t <= now)
    });
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
        quarantine: crate::ledger::quarantine::load_index(&node.paths.quarantine_index()).usage(),
        command_outcomes,
        latest_command,
        latest_leader_epoch,
        bad_log_lines: head.bad_lines,
        gaps: imports.gaps(),
        schema_flagged: crate::schema::flagged(&node.paths)?.count,
        key_alerts,
        fork_alerts,
        rewrite_alerts,
        rotation_alerts,
        held_files: imports.held.len() as u64,
        lease_expired,
        sync,
        daemon: super::health::daemon_status(&node.paths),
        disk,
        health,
        clock,
        roster_version: roster.as_ref().map_or(0, |r| r.version),
        authority_alerts: crate::ledger::roster::load_alerts(&node.paths)?,
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

#[cfg(test)]
mod tests;
