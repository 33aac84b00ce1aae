//! What the daemon counts, and its exposition through a `prometheus-client` registry.

use super::schedule::Outcome;
use super::tail::LogCounts;
use crate::ops::status::Status;
use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

/// Upper bounds of the pass duration buckets, in seconds: a dispatch pass takes
/// milliseconds, a sync over a slow network up to minutes.
const DURATION_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
];

/// Counters of one kind of pass (sync or dispatch).
#[derive(Debug, Clone)]
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
    /// Durations of all passes, in seconds (a clone observes the same histogram).
    pub durations: Histogram,
}

impl Default for PassStats {
    fn default() -> PassStats {
        PassStats {
            runs: BTreeMap::new(),
            last_duration: 0.0,
            last_outcome: None,
            last_success_unix: None,
            last_error: None,
            durations: Histogram::new(DURATION_BUCKETS),
        }
    }
}

impl PassStats {
    /// Records one finished pass.
    pub fn record(&mut self, outcome: Outcome, secs: f64, error: Option<String>) {
        *self.runs.entry(outcome.label()).or_insert(0) += 1;
        self.durations.observe(secs);
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
    /// Export-and-push passes run shortly after own appends.
    pub push: PassStats,
    /// Polls of the remote (a fetch each; import and dispatch when it moved).
    pub poll: PassStats,
    /// Polls that found the remote moved.
    pub polls_moved: u64,
    /// Live nodes sharing the poll budget, as last counted.
    pub live_nodes: u32,
    /// Current time between polls (0: not polling).
    pub poll_period: f64,
    /// Syncs asked for by SIGUSR1 or `POST /sync`.
    pub sync_requests: u64,
}

impl Metrics {
    /// Adds the counts of one pass's report.
    pub fn absorb(&mut self, report: &super::PassReport) {
        if let super::PassReport::Sync(r) | super::PassReport::Poll(r) = report {
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
    /// Dead letters not resolved by a successful retry.
    pub dead_letters: u64,
}

/// The exposition formats `/metrics` answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4, for any client that does not ask for OpenMetrics.
    Prometheus,
    /// OpenMetrics 1.0 text, for scrapers that list it in `Accept`.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics only when named without `q=0`.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let wants_openmetrics = accept.unwrap_or("").split(',').any(|range| {
            let mut parts = range.split(';').map(str::trim);
            parts.next() == Some("application/openmetrics-text")
                && !parts.any(|p| matches!(p, "q=0" | "q=0.0" | "q=0.00" | "q=0.000"))
        });
        if wants_openmetrics {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    /// The `Content-Type` of what [`render`] writes in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Outcome labels of a pass, all exposed so a rate over any of them starts at 0.
const RESULTS: [&str; 4] = ["ok", "offline", "busy", "error"];

/// A gauge holding a count.
type Count = Gauge<u64, AtomicU64>;
/// A gauge holding seconds or a Unix time.
type Seconds = Gauge<f64, AtomicU64>;
/// One label of a family member.
type Label = [(&'static str, String); 1];

/// The registry of one scrape: values are copied in, so a scrape never holds the daemon's lock.
struct Scrape(Registry);

impl Scrape {
    fn counter(&mut self, name: &str, help: &str, v: u64) {
        let c = Counter::<u64>::default();
        c.inc_by(v);
        self.0.register(name, help, c);
    }

    fn count(&mut self, name: &str, help: &str, v: u64) {
        let g = Count::default();
        g.set(v);
        self.0.register(name, help, g);
    }

    /// A gauge in bytes; `name` is without the `_bytes` suffix the unit adds.
    fn bytes(&mut self, name: &str, help: &str, v: u64) {
        let g = Count::default();
        g.set(v);
        self.0.register_with_unit(name, help, Unit::Bytes, g);
    }

    /// A gauge in seconds; `name` is without the `_seconds` suffix the unit adds.
    fn seconds(&mut self, name: &str, help: &str, v: f64) {
        let g = Seconds::default();
        g.set(v);
        self.0.register_with_unit(name, help, Unit::Seconds, g);
    }

    /// A per-peer gauge in seconds (peers without a value are left out).
    fn peer_seconds<'a>(
        &mut self,
        name: &str,
        help: &str,
        rows: impl IntoIterator<Item = (&'a crate::ops::status::PeerStatus, Option<i64>)>,
    ) {
        let f = Family::<Label, Gauge>::default();
        for (p, v) in rows {
            if let Some(v) = v {
                f.get_or_create(&[("peer", p.node_id.clone())]).set(v);
            }
        }
        self.0.register_with_unit(name, help, Unit::Seconds, f);
    }

    fn counters(&mut self, name: &str, help: &str, key: &'static str, rows: &[(&str, u64)]) {
        let f = Family::<Label, Counter<u64>>::default();
        for (value, n) in rows {
            f.get_or_create(&[(key, value.to_string())]).inc_by(*n);
        }
        self.0.register(name, help, f);
    }

    fn counts<'a>(
        &mut self,
        name: &str,
        help: &str,
        key: &'static str,
        rows: impl IntoIterator<Item = (&'a str, u64)>,
    ) {
        let f = Family::<Label, Count>::default();
        for (value, n) in rows {
            f.get_or_create(&[(key, value.to_string())]).set(n);
        }
        self.0.register(name, help, f);
    }
}

/// Renders all metrics in `format`.
pub fn render(
    node_id: &str,
    m: &Metrics,
    snap: &Snapshot,
    format: Format,
) -> Result<String, std::fmt::Error> {
    let registry = registry(node_id, m, snap);
    let mut out = String::new();
    match format {
        Format::Prometheus => prometheus_text::encode(&mut out, &registry)?,
        Format::OpenMetrics => text::encode(&mut out, &registry)?,
    }
    Ok(out)
}

/// Registers every metric of one scrape (help texts get their final full stop from the registry).
fn registry(node_id: &str, m: &Metrics, snap: &Snapshot) -> Registry {
    let mut s = Scrape(Registry::default());
    s.0.register(
        "gitmesh",
        "Constant 1, labelled with the node and version",
        Info::new([
            ("node_id", node_id.to_string()),
            ("version", env!("CARGO_PKG_VERSION").to_string()),
        ]),
    );
    s.seconds(
        "gitmesh_daemon_start_time",
        "Unix time the daemon started",
        m.started_unix,
    );
    s.counts(
        "gitmesh_log_events",
        "Events in the node's log by topic (kept by tailing the log)",
        "topic",
        m.log.by_topic.iter().map(|(t, n)| (t.as_str(), *n)),
    );
    s.counts(
        "gitmesh_log_events_by_origin",
        "Events in the log emitted by this node (own) or imported from peers",
        "origin",
        [("own", m.log.own), ("imported", m.log.imported)],
    );
    s.count(
        "gitmesh_log_bad_lines",
        "Log lines that are not events (skipped)",
        m.log.bad_lines,
    );
    s.counter(
        "gitmesh_imported_events",
        "Events imported by this daemon's syncs",
        m.imported,
    );
    s.counter(
        "gitmesh_exported_events",
        "Own events exported by this daemon's syncs",
        m.exported,
    );
    s.counter(
        "gitmesh_quarantined",
        "Ledger items quarantined by this daemon's syncs",
        m.quarantined,
    );
    s.counter(
        "gitmesh_dispatched_events",
        "Events processed by dispatch (daemon passes and syncs)",
        m.dispatched,
    );
    s.counter(
        "gitmesh_followup_events",
        "Follow-up events produced by dispatch",
        m.followups,
    );
    s.counter(
        "gitmesh_push_retries",
        "Push attempts beyond the first (rejected pushes retried)",
        m.push_retries,
    );
    s.counter(
        "gitmesh_compacted_batches",
        "Own ledger batch files rolled into archives by this daemon's syncs",
        m.compacted_batches,
    );
    s.counters(
        "gitmesh_remote_requests",
        "Requests this daemon made to the remote, by git command",
        "op",
        &crate::git::cli::RemoteOp::ALL
            .iter()
            .zip(crate::git::cli::remote_requests())
            .map(|(op, n)| (op.label(), n))
            .collect::<Vec<_>>(),
    );
    s.counter(
        "gitmesh_polls_moved",
        "Polls that found the remote moved (each followed by a fetch and import)",
        m.polls_moved,
    );
    s.counter(
        "gitmesh_sync_requests",
        "Syncs asked for by SIGUSR1 or POST /sync",
        m.sync_requests,
    );
    s.count(
        "gitmesh_live_nodes",
        "Live nodes sharing the poll budget (seen within sync.stale_after, this one included)",
        m.live_nodes.into(),
    );
    s.seconds(
        "gitmesh_poll_period",
        "Time between polls of the remote (0 when not polling)",
        m.poll_period,
    );
    for (name, stats) in [
        ("sync", &m.sync),
        ("dispatch", &m.dispatch),
        ("push", &m.push),
        ("poll", &m.poll),
    ] {
        let runs: Vec<(&str, u64)> = RESULTS
            .iter()
            .map(|r| (*r, stats.runs.get(r).copied().unwrap_or(0)))
            .collect();
        s.counters(
            &format!("gitmesh_{name}_runs"),
            &format!("{name} passes by result"),
            "result",
            &runs,
        );
        s.seconds(
            &format!("gitmesh_{name}_last_duration"),
            &format!("Duration of the last {name} pass"),
            stats.last_duration,
        );
        s.0.register_with_unit(
            format!("gitmesh_{name}_duration"),
            format!("Durations of {name} passes"),
            Unit::Seconds,
            stats.durations.clone(),
        );
        let last = stats.last_outcome.map(|o| o.label());
        s.counts(
            &format!("gitmesh_{name}_last_result"),
            &format!("1 for the result of the last {name} pass"),
            "result",
            RESULTS.map(|r| (r, u64::from(last == Some(r)))),
        );
        s.seconds(
            &format!("gitmesh_{name}_last_success_time"),
            &format!("Unix time of the last successful {name} pass (0 if none)"),
            stats.last_success_unix.unwrap_or(0.0),
        );
    }
    s.count(
        "gitmesh_sync_offline_streak",
        "Consecutive syncs that could not reach the remote",
        m.offline_streak.into(),
    );
    s.seconds(
        "gitmesh_next_sync",
        "Delay chosen for the next sync (interval, jitter, backoff)",
        m.next_sync_in,
    );
    s.count(
        "gitmesh_sse_clients",
        "Open /events/stream connections",
        m.sse_clients,
    );
    s.counter(
        "gitmesh_config_reloads",
        "Successful mesh.toml reloads (SIGHUP)",
        m.reloads,
    );
    s.counter(
        "gitmesh_config_reload_failures",
        "Rejected mesh.toml reloads (the old configuration was kept)",
        m.reload_failures,
    );
    s.count(
        "gitmesh_dead_letter_events",
        "Dead letters not yet resolved by a successful retry",
        snap.dead_letters,
    );
    s.count(
        "gitmesh_status_ok",
        "1 if the status report could be built at scrape time",
        u64::from(snap.status.is_some()),
    );
    if let Some(st) = &snap.status {
        register_status(&mut s, node_id, st);
        register_health(&mut s, st);
    }
    register_process(&mut s, &super::process::sample());
    s.0
}

/// The health report: the recorded syncs of every process on the root, disk, verdict.
fn register_health(s: &mut Scrape, st: &Status) {
    let last_success = st
        .sync
        .last_success
        .as_deref()
        .and_then(crate::event::parse_timestamp)
        .map_or(0.0, |t| t.timestamp_micros() as f64 / 1e6);
    s.seconds(
        "gitmesh_last_sync_success_time",
        "Unix time of the last successful sync by any process on this root (0 if none)",
        last_success,
    );
    s.count(
        "gitmesh_sync_consecutive_failures",
        "Syncs by any process on this root that failed since the last success",
        st.sync.consecutive_failures.into(),
    );
    s.count(
        "gitmesh_healthy",
        "1 if the node is healthy (docs/operations.md, Health)",
        u64::from(st.health.healthy),
    );
    s.counts(
        "gitmesh_unhealthy_reason",
        "1 for each reason the node is unhealthy",
        "reason",
        REASONS.map(|r| (r, u64::from(st.health.reasons.iter().any(|x| x.code == r)))),
    );
    s.count(
        "gitmesh_lease_expired",
        "1 if the leader lease as last seen has expired",
        u64::from(st.lease_expired),
    );
    if let Some(d) = &st.disk {
        s.bytes(
            "gitmesh_disk_free",
            "Bytes still writable on the node root's file system",
            d.space.free_bytes,
        );
        s.bytes(
            "gitmesh_disk_min_free",
            "Free space below which the node is unhealthy ([health] min_free_mb)",
            d.min_free_bytes,
        );
    }
}

/// Every code of `ops::health::Reason`, all exposed so an alert rule sees 0 too.
const REASONS: [&str; 5] = [
    "sync_failing",
    "sync_refused",
    "sync_stale",
    "alerts",
    "low_disk",
];

/// The standard process metrics (`process_*`), as far as this system reports them.
fn register_process(s: &mut Scrape, p: &super::process::ProcessSample) {
    if let Some(v) = p.resident_memory_bytes {
        s.bytes("process_resident_memory", "Resident memory size", v);
    }
    if let Some(v) = p.open_fds {
        s.count("process_open_fds", "Open file descriptors", v);
    }
    if let Some(v) = p.max_fds {
        s.count("process_max_fds", "Limit of open file descriptors", v);
    }
    if let Some(v) = p.cpu_seconds {
        let c = Counter::<f64, AtomicU64>::default();
        c.inc_by(v);
        s.0.register_with_unit("process_cpu", "User and system CPU time", Unit::Seconds, c);
    }
    if let Some(v) = p.start_time_unix {
        s.seconds("process_start_time", "Unix time the process started", v);
    }
}

fn register_status(s: &mut Scrape, node_id: &str, st: &Status) {
    s.count(
        "gitmesh_dispatch_lag_events",
        "Events appended since the dispatch cursor",
        st.dispatch_lag,
    );
    s.count(
        "gitmesh_pending_export_events",
        "Own events not yet exported",
        st.pending_export,
    );
    s.count(
        "gitmesh_quarantined_items",
        "Items in the quarantine directory",
        st.quarantined,
    );
    let q = &st.quarantine;
    s.counts(
        "gitmesh_quarantine_files",
        "Import records in quarantine, per peer (capped by import.quarantine_max_files)",
        "peer",
        q.iter().map(|u| (u.peer.as_str(), u.files)),
    );
    s.counts(
        "gitmesh_quarantine_bytes",
        "Bytes of import records in quarantine, per peer (capped by import.quarantine_max_bytes)",
        "peer",
        q.iter().map(|u| (u.peer.as_str(), u.bytes)),
    );
    let pruned: Vec<(&str, u64)> = q.iter().map(|u| (u.peer.as_str(), u.pruned)).collect();
    s.counters(
        "gitmesh_quarantine_pruned",
        "Oldest quarantine records removed to keep a peer within its caps",
        "peer",
        &pruned,
    );
    s.count(
        "gitmesh_last_seq",
        "Highest own sequence number",
        st.last_seq,
    );
    let lease = st.leader.as_ref();
    s.count(
        "gitmesh_leader_epoch",
        "Epoch of the leader lease as last seen (0 if none)",
        lease.map_or(0, |l| l.epoch),
    );
    let leader = lease.map(|l| l.leader_id.as_str());
    let expires = lease.and_then(|l| crate::event::parse_timestamp(&l.lease_expires_at));
    let holds = leader == Some(node_id) && expires.is_some_and(|t| t > chrono::Utc::now());
    s.count(
        "gitmesh_is_leader",
        "1 if this node holds an unexpired leader lease",
        u64::from(holds),
    );
    if let Some(o) = st.clock.offset_sec {
        s.seconds(
            "gitmesh_clock_offset",
            "This node's clock minus the mesh reference (median of all clocks)",
            o as f64,
        );
    }
    s.peer_seconds(
        "gitmesh_peer_clock_offset",
        "Each peer's clock minus the mesh reference, from its heartbeats",
        st.peers.iter().map(|p| (p, p.clock_offset_sec)),
    );
    s.count(
        "gitmesh_clock_alerts",
        "Clock alerts (own skew, peers beyond clock_tolerance, an implausible lease)",
        st.clock.alerts.len() as u64,
    );
    s.counter(
        "gitmesh_leadership_changes",
        "Changes of leader or epoch this node has observed",
        st.clock.leadership_changes,
    );
    s.peer_seconds(
        "gitmesh_peer_last_seen_age",
        "Seconds since each node's last heartbeat in the ledger",
        st.peers.iter().map(|p| (p, p.age_sec)),
    );
    s.counts(
        "gitmesh_peer_stale",
        "1 if a node has not been seen within sync.stale_after",
        "peer",
        st.peers
            .iter()
            .map(|p| (p.node_id.as_str(), u64::from(p.stale))),
    );
    s.count(
        "gitmesh_peers_stale",
        "Number of stale nodes",
        st.peers.iter().filter(|p| p.stale).count() as u64,
    );
}

#[cfg(test)]
mod tests;
