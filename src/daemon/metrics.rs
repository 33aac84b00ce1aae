//! What the daemon counts, and its rendering in the Prometheus text exposition format.

use super::schedule::Outcome;
use super::tail::LogCounts;
use crate::ops::status::Status;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Counters of one kind of pass (sync or dispatch).
#[derive(Debug, Clone, Default)]
pub struct PassStats {
    /// Passes by outcome label.
    pub runs: BTreeMap<&'static str, u64>,
    /// Duration of the last pass, in seconds.
    pub last_duration: f64,
    /// Outcome of the last pass.
    pub last_outcome: Option<Outcome>,
    /// Unix time of the last successful pass.
    pub last_success_unix: Option<f64>,
    /// Message of the last failure.
    pub last_error: Option<String>,
}

impl PassStats {
    /// Records one finished pass.
    pub fn record(&mut self, outcome: Outcome, secs: f64, error: Option<String>) {
        *self.runs.entry(outcome.label()).or_insert(0) += 1;
        self.last_duration = secs;
        self.last_outcome = Some(outcome);
        if outcome == Outcome::Ok {
            self.last_success_unix = Some(unix_now());
        }
        if error.is_some() {
            self.last_error = error;
        }
    }
}

/// Everything the daemon has counted since it started.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Event log counts, kept by tailing the log.
    pub log: LogCounts,
    /// Sync passes.
    pub sync: PassStats,
    /// Dispatch passes (those the daemon ran on its own; syncs dispatch too).
    pub dispatch: PassStats,
    /// Events imported by the daemon's syncs.
    pub imported: u64,
    /// Events exported by the daemon's syncs.
    pub exported: u64,
    /// Items quarantined by the daemon's syncs.
    pub quarantined: u64,
    /// Events processed by dispatch (daemon passes and syncs).
    pub dispatched: u64,
    /// Follow-up events produced by dispatch.
    pub followups: u64,
    /// Push attempts beyond the first, summed over syncs.
    pub push_retries: u64,
    /// Own batch files rolled into archives by the daemon's syncs (`compact_after_files`).
    pub compacted_batches: u64,
    /// Consecutive offline syncs (0 when the remote was last reached).
    pub offline_streak: u32,
    /// Seconds until the next scheduled sync, as last decided.
    pub next_sync_in: f64,
    /// Open `/events/stream` connections.
    pub sse_clients: u64,
    /// Unix time the daemon started.
    pub started_unix: f64,
    /// Successful configuration reloads.
    pub reloads: u64,
    /// Rejected configuration reloads.
    pub reload_failures: u64,
}

impl Metrics {
    /// Adds the counts of one pass's report.
    pub fn absorb(&mut self, report: &super::PassReport) {
        if let super::PassReport::Sync(r) = report {
            self.imported += r.import.imported_events;
            self.quarantined += r.import.quarantined;
            self.exported += r.export.exported_events;
            self.push_retries += u64::from(r.push.attempts.saturating_sub(1));
            self.compacted_batches += r.compact.as_ref().map_or(0, |c| c.archived_batches);
        }
        if let Some(d) = report.dispatch() {
            self.dispatched += d.processed_events;
            self.followups += d.followup_events;
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Values read from the node's files at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The `mesh-status` report, when it could be built.
    pub status: Option<Status>,
    /// Lines in the dead-letter file.
    pub dead_letters: u64,
}

struct Writer {
    out: String,
}

impl Writer {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
    }
    fn one(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Renders all metrics as Prometheus text (version 0.0.4).
pub fn render(node_id: &str, m: &Metrics, snap: &Snapshot) -> String {
    let mut w = Writer { out: String::new() };
    w.family(
        "gitmesh_info",
        "gauge",
        "Constant 1, labelled with the node and version.",
    );
    w.sample(
        "gitmesh_info",
        &[("node_id", node_id), ("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    w.one(
        "gitmesh_daemon_start_time_seconds",
        "gauge",
        "Unix time the daemon started.",
        m.started_unix,
    );
    w.family(
        "gitmesh_log_events",
        "gauge",
        "Events in the node's log by topic (kept by tailing the log).",
    );
    for (topic, n) in &m.log.by_topic {
        w.sample("gitmesh_log_events", &[("topic", topic)], *n as f64);
    }
    w.family(
        "gitmesh_log_events_by_origin",
        "gauge",
        "Events in the log emitted by this node (own) or imported from peers.",
    );
    w.sample(
        "gitmesh_log_events_by_origin",
        &[("origin", "own")],
        m.log.own as f64,
    );
    w.sample(
        "gitmesh_log_events_by_origin",
        &[("origin", "imported")],
        m.log.imported as f64,
    );
    w.one(
        "gitmesh_log_bad_lines",
        "gauge",
        "Log lines that are not events (skipped).",
        m.log.bad_lines as f64,
    );
    w.one(
        "gitmesh_imported_events_total",
        "counter",
        "Events imported by this daemon's syncs.",
        m.imported as f64,
    );
    w.one(
        "gitmesh_exported_events_total",
        "counter",
        "Own events exported by this daemon's syncs.",
        m.exported as f64,
    );
    w.one(
        "gitmesh_quarantined_total",
        "counter",
        "Ledger items quarantined by this daemon's syncs.",
        m.quarantined as f64,
    );
    w.one(
        "gitmesh_dispatched_events_total",
        "counter",
        "Events processed by dispatch (daemon passes and syncs).",
        m.dispatched as f64,
    );
    w.one(
        "gitmesh_followup_events_total",
        "counter",
        "Follow-up events produced by dispatch.",
        m.followups as f64,
    );
    w.one(
        "gitmesh_push_retries_total",
        "counter",
        "Push attempts beyond the first (rejected pushes retried).",
        m.push_retries as f64,
    );
    w.one(
        "gitmesh_compacted_batches_total",
        "counter",
        "Own ledger batch files rolled into archives by this daemon's syncs.",
        m.compacted_batches as f64,
    );
    for (name, stats) in [("sync", &m.sync), ("dispatch", &m.dispatch)] {
        let runs = format!("gitmesh_{name}_runs_total");
        w.family(&runs, "counter", &format!("{name} passes by result."));
        for result in ["ok", "offline", "busy", "error"] {
            let n = stats.runs.get(result).copied().unwrap_or(0);
            w.sample(&runs, &[("result", result)], n as f64);
        }
        w.one(
            &format!("gitmesh_{name}_last_duration_seconds"),
            "gauge",
            &format!("Duration of the last {name} pass."),
            stats.last_duration,
        );
        let last = format!("gitmesh_{name}_last_result");
        w.family(
            &last,
            "gauge",
            &format!("1 for the result of the last {name} pass."),
        );
        for result in ["ok", "offline", "busy", "error"] {
            let on = stats.last_outcome.map(|o| o.label()) == Some(result);
            w.sample(&last, &[("result", result)], if on { 1.0 } else { 0.0 });
        }
        w.one(
            &format!("gitmesh_{name}_last_success_time_seconds"),
            "gauge",
            &format!("Unix time of the last successful {name} pass (0 if none)."),
            stats.last_success_unix.unwrap_or(0.0),
        );
    }
    w.one(
        "gitmesh_sync_offline_streak",
        "gauge",
        "Consecutive syncs that could not reach the remote.",
        m.offline_streak as f64,
    );
    w.one(
        "gitmesh_next_sync_seconds",
        "gauge",
        "Delay chosen for the next sync (interval, jitter, backoff).",
        m.next_sync_in,
    );
    w.one(
        "gitmesh_sse_clients",
        "gauge",
        "Open /events/stream connections.",
        m.sse_clients as f64,
    );
    w.one(
        "gitmesh_config_reloads_total",
        "counter",
        "Successful mesh.toml reloads (SIGHUP).",
        m.reloads as f64,
    );
    w.one(
        "gitmesh_config_reload_failures_total",
        "counter",
        "Rejected mesh.toml reloads (the old configuration was kept).",
        m.reload_failures as f64,
    );
    w.one(
        "gitmesh_dead_letter_events",
        "gauge",
        "Lines in the dead-letter file.",
        snap.dead_letters as f64,
    );
    w.one(
        "gitmesh_status_ok",
        "gauge",
        "1 if the status report could be built at scrape time.",
        if snap.status.is_some() { 1.0 } else { 0.0 },
    );
    if let Some(s) = &snap.status {
        render_status(&mut w, node_id, s);
    }
    w.out
}

fn render_status(w: &mut Writer, node_id: &str, s: &Status) {
    w.one(
        "gitmesh_dispatch_lag_events",
        "gauge",
        "Events appended since the dispatch cursor.",
        s.dispatch_lag as f64,
    );
    w.one(
        "gitmesh_pending_export_events",
        "gauge",
        "Own events not yet exported.",
        s.pending_export as f64,
    );
    w.one(
        "gitmesh_quarantined_items",
        "gauge",
        "Items in the quarantine directory.",
        s.quarantined as f64,
    );
    w.one(
        "gitmesh_last_seq",
        "gauge",
        "Highest own sequence number.",
        s.last_seq as f64,
    );
    let epoch = s.leader.as_ref().map(|l| l.epoch);
    w.one(
        "gitmesh_leader_epoch",
        "gauge",
        "Epoch of the leader lease as last seen (0 if none).",
        epoch.unwrap_or(0) as f64,
    );
    let leader = s.leader.as_ref().map(|l| l.leader_id.as_str());
    let expires = s
        .leader
        .as_ref()
        .and_then(|l| crate::event::parse_timestamp(&l.lease_expires_at));
    let holds = leader == Some(node_id) && expires.is_some_and(|t| t > chrono::Utc::now());
    w.one(
        "gitmesh_is_leader",
        "gauge",
        "1 if this node holds an unexpired leader lease.",
        if holds { 1.0 } else { 0.0 },
    );
    w.family(
        "gitmesh_peer_last_seen_age_seconds",
        "gauge",
        "Seconds since each node's last heartbeat in the ledger.",
    );
    for p in &s.peers {
        if let Some(a) = p.age_sec {
            w.sample(
                "gitmesh_peer_last_seen_age_seconds",
                &[("peer", &p.node_id)],
                a as f64,
            );
        }
    }
    w.family(
        "gitmesh_peer_stale",
        "gauge",
        "1 if a node has not been seen within sync.stale_after.",
    );
    for p in &s.peers {
        w.sample(
            "gitmesh_peer_stale",
            &[("peer", &p.node_id)],
            if p.stale { 1.0 } else { 0.0 },
        );
    }
    w.one(
        "gitmesh_peers_stale",
        "gauge",
        "Number of stale nodes.",
        s.peers.iter().filter(|p| p.stale).count() as f64,
    );
}

#[cfg(test)]
mod tests;
