//! `gitmesh mesh-status`.

use super::{Output, count_line};
use gitmesh::{Error, Node};
use std::fmt::Write as _;
use std::path::Path;

/// Exit code of `mesh-status --check` when the node is unhealthy.
pub const UNHEALTHY_EXIT: i32 = 3;

/// Flags of `mesh-status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Exit 3 when the node is unhealthy (for monitoring); the reasons are printed
    #[arg(long)]
    pub check: bool,
}

pub fn run(root: &Path, a: Args) -> Result<Output, Error> {
    let node = Node::open(root)?;
    let s = gitmesh::ops::status::status(&node)?;
    let mut h = String::new();
    let _ = writeln!(h, "node      {}  ({})", s.node_id, s.root);
    let _ = writeln!(h, "remote    {}", s.remote);
    if s.health.healthy {
        let _ = writeln!(h, "health    ok");
    } else {
        for r in &s.health.reasons {
            let _ = writeln!(h, "UNHEALTHY {}: {}", r.code, r.message);
        }
    }
    sync_lines(&mut h, &s.sync);
    match (&s.daemon.running, &s.daemon.holder) {
        (true, Some(d)) => {
            let _ = writeln!(
                h,
                "daemon    running (pid {}, since {}{})",
                d.pid,
                d.started_at,
                d.listen
                    .as_deref()
                    .map(|l| format!(", http://{l}"))
                    .unwrap_or_default()
            );
        }
        (true, None) => {
            let _ = writeln!(h, "daemon    running (starting)");
        }
        (false, _) => {
            let _ = writeln!(h, "daemon    not running");
        }
    }
    if let Some(d) = &s.disk {
        let _ = writeln!(
            h,
            "disk      {} MiB free of {} MiB{}",
            d.space.free_bytes / (1024 * 1024),
            d.space.total_bytes / (1024 * 1024),
            if d.low { " (LOW)" } else { "" }
        );
    }
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
                "leader    {} (epoch {}, lease until {}{})",
                l.leader_id,
                l.epoch,
                l.lease_expires_at,
                if s.lease_expired { ", EXPIRED" } else { "" }
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
    for q in &s.quarantine {
        let _ = writeln!(
            h,
            "  {:<20} {} records, {} bytes, {} pruned, {} repeated paths",
            q.peer, q.files, q.bytes, q.pruned, q.repeats
        );
    }
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
    for a in s
        .fork_alerts
        .iter()
        .chain(&s.rewrite_alerts)
        .chain(&s.rotation_alerts)
    {
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
        "ledger files wait for missing seqs, a trusted key or a clock to catch up",
    );
    let _ = writeln!(
        h,
        "clock     {} (tolerance {} s, {} leadership changes seen)",
        match s.clock.offset_sec {
            Some(o) => format!("{o:+} s against the mesh"),
            None => "offset not measured yet".into(),
        },
        s.clock.tolerance_sec,
        s.clock.leadership_changes
    );
    for a in &s.clock.alerts {
        let _ = writeln!(h, "ALERT     clock: {a}");
    }
    let _ = writeln!(h, "peers     {}", s.peers.len());
    for p in &s.peers {
        let age = p
            .age_sec
            .map(|a| format!("{a}s ago"))
            .unwrap_or_else(|| "never".into());
        let clock = p
            .clock_offset_sec
            .map(|o| format!("  clock {o:+}s"))
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "  {:<16} last seen {:<10} {}{clock}",
            p.node_id,
            age,
            if p.future {
                "FUTURE"
            } else if p.stale {
                "STALE"
            } else {
                "ok"
            }
        );
    }
    let unhealthy = !s.health.healthy;
    let mut out = Output::new(s, h);
    if a.check && unhealthy {
        out.code = UNHEALTHY_EXIT;
    }
    Ok(out)
}

/// The `sync` lines: last attempt, last success, failure streak.
fn sync_lines(h: &mut String, st: &gitmesh::ops::health::SyncState) {
    match &st.last_attempt {
        None => {
            let _ = writeln!(h, "sync      never ran on this root");
        }
        Some(a) => {
            let kind = a
                .kind
                .as_deref()
                .map(|k| format!(" ({k})"))
                .unwrap_or_default();
            let _ = writeln!(
                h,
                "sync      last attempt {} {}{kind}, {} ms",
                a.at,
                a.outcome.label(),
                a.duration_ms
            );
            if let Some(m) = &a.message {
                let _ = writeln!(h, "          error: {m}");
            }
            let _ = writeln!(
                h,
                "          last success {}, {} consecutive failures",
                st.last_success.as_deref().unwrap_or("never"),
                st.consecutive_failures
            );
        }
    }
}
