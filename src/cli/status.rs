//! `gitmesh mesh-status`.

use super::{Output, count_line};
use gitmesh::{Error, Node};
use std::fmt::Write as _;
use std::path::Path;

/// Flags of `mesh-status` (only the global ones).
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(root: &Path, _a: Args) -> Result<Output, Error> {
    let node = Node::open(root)?;
    let s = gitmesh::ops::status::status(&node)?;
    let mut h = String::new();
    let _ = writeln!(h, "node      {}  ({})", s.node_id, s.root);
    let _ = writeln!(h, "remote    {}", s.remote);
    let _ = writeln!(
        h,
        "events    {} total: {} own (last seq {}), {} imported",
        s.event_count, s.own_event_count, s.last_seq, s.imported_event_count
    );
    let _ = writeln!(
        h,
        "dispatch  {} events behind (cursor at byte {})",
        s.dispatch_lag, s.dispatch_cursor_offset
    );
    let _ = writeln!(
        h,
        "export    {} own events not yet exported",
        s.pending_export
    );
    match &s.leader {
        Some(l) => {
            let _ = writeln!(
                h,
                "leader    {} (epoch {}, lease until {})",
                l.leader_id, l.epoch, l.lease_expires_at
            );
        }
        None => {
            let _ = writeln!(h, "leader    none");
        }
    }
    count_line(
        &mut h,
        "quarantine ",
        s.quarantined,
        "items (state/event_mesh/quarantine/)",
    );
    count_line(
        &mut h,
        "schemas   ",
        s.schema_flagged,
        "imported events broke their schema (state/event_mesh/schema_flagged.json)",
    );
    if !s.command_outcomes.is_empty() {
        let parts: Vec<String> = s
            .command_outcomes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(h, "commands  {}", parts.join(" "));
    }
    for g in &s.gaps {
        let _ = writeln!(
            h,
            "gap       {} seq {}..{} missing",
            g.node_id, g.from_seq, g.to_seq
        );
    }
    for n in &s.key_alerts {
        let _ = writeln!(
            h,
            "ALERT     {n}: manifest key changed; its events are held until `gitmesh nodes trust {n}`"
        );
    }
    for a in s.fork_alerts.iter().chain(&s.rewrite_alerts) {
        let _ = writeln!(h, "ALERT     {} {}: {}", a.kind.code(), a.node_id, a.detail);
    }
    for a in &s.authority_alerts {
        let _ = writeln!(h, "ALERT     {} refused ({}): {}", a.kind, a.path, a.detail);
    }
    if s.roster_version > 0 {
        let _ = writeln!(h, "roster    version {}", s.roster_version);
    }
    count_line(
        &mut h,
        "held      ",
        s.held_files,
        "ledger files wait for missing seqs or a trusted key",
    );
    let _ = writeln!(h, "peers     {}", s.peers.len());
    for p in &s.peers {
        let age = p
            .age_sec
            .map(|a| format!("{a}s ago"))
            .unwrap_or_else(|| "never".into());
        let _ = writeln!(
            h,
            "  {:<16} last seen {:<10} {}",
            p.node_id,
            age,
            if p.stale { "STALE" } else { "ok" }
        );
    }
    Ok(Output::new(s, h))
}
