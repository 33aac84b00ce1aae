//! Dispatch: give each new event of the log to the handlers whose pattern matches,
//! and append their follow-ups as derived own events, exactly once.
//!
//! A pass resumes at the byte offset in `dispatch_cursor.json` (O(1)), reads
//! forward, and appends follow-ups in chunks under one log lock, saving the
//! cursor after each chunk. Follow-up ids depend only on their cause, handler
//! and payload, and a follow-up whose id the log already holds is not appended
//! again: a crash anywhere between append and cursor save replays the chunk
//! without duplicating anything. See `docs/dispatch.md`.

pub mod actuator;
pub mod emit;
pub mod process;
pub mod routing;
pub mod scaling;
pub mod scheduling;
pub mod table;
pub mod trace;
pub mod user;

use crate::event::Envelope;
use crate::event::pattern::Pattern;
use crate::fsutil::{PathError, read_json, write_atomic};
use crate::ledger::lease::Lease;
use crate::log::{LogError, LogWriter};
use crate::node::Node;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use table::{DecisionTable, TableError};

/// Errors of dispatch.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The decision table named in `[scaling] decision_table` is unusable.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The event log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A state file failed.
    #[error(transparent)]
    Io(#[from] PathError),
    /// Reading the ledger (lease, manifests) failed.
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    /// A follow-up could not be given an id.
    #[error("follow-up of {cause}: {source}")]
    Event {
        /// The event whose follow-up it was.
        cause: String,
        #[source]
        /// What is wrong with the follow-up.
        source: crate::event::EventError,
    },
}

/// One follow-up a handler asks for: everything but what the engine assigns.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUp {
    /// The handler that produced it (part of the derived id).
    pub handler: String,
    /// Topic.
    pub topic: String,
    /// Event type.
    pub event_type: String,
    /// Payload (no wall-clock values: it is part of the id).
    pub payload: Map<String, Value>,
}

impl FollowUp {
    /// A follow-up from `handler`.
    pub fn new(
        handler: &str,
        topic: &str,
        event_type: &str,
        payload: Map<String, Value>,
    ) -> FollowUp {
        FollowUp {
            handler: handler.to_string(),
            topic: topic.to_string(),
            event_type: event_type.to_string(),
            payload,
        }
    }
}

/// Options of one pass.
#[derive(Debug, Clone, Default)]
pub struct DispatchOptions {
    /// Stop after this many events (default: until the log end, including follow-ups).
    pub max_events: Option<u64>,
}

/// What a pass did (`mesh-dispatch --json`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DispatchReport {
    /// This node.
    pub node_id: String,
    /// Events the cursor moved over in this pass.
    pub processed_events: u64,
    /// Follow-ups appended in this pass.
    pub followup_events: u64,
    /// Where the next pass starts.
    pub cursor_offset: u64,
    /// Events this node acted on (it was the acting node and a handler matched).
    pub acted_events: u64,
    /// Follow-ups not appended because the log already held them (replay after a crash).
    pub duplicate_followups: u64,
    /// Events user handlers gave up on or skipped (see `gitmesh dead-letter list`).
    pub dead_lettered: u64,
    /// Events the log holds after the cursor.
    pub remaining_bytes: u64,
}

/// `dispatch_seen.json`: the last event dispatched and where it was.
///
/// The set of events already dispatched is the log before the cursor; the set
/// of follow-ups already emitted is the log itself (by id). This file only
/// anchors the cursor: on resume the event at `last_event_offset` must be
/// `last_event_id`, else the log was replaced (restored, rebuilt) and the pass
/// starts again from the beginning, where id dedupe keeps it harmless.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DispatchSeen {
    /// Id of the last event dispatched.
    pub last_event_id: String,
    /// Its byte offset in the log.
    pub last_event_offset: u64,
}

/// Events handled between two cursor saves.
const CHUNK: u64 = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Heartbeat,
    TaskEnqueued,
    RouteRequested,
    Summary,
    LaneFailed,
    DecisionRequested,
    DecisionMade,
    Actuator,
    User(usize),
}

fn builtins() -> Vec<(Pattern, Kind)> {
    [
        ("monitoring.heartbeat.changed", Kind::Heartbeat),
        ("scheduling.task.enqueued", Kind::TaskEnqueued),
        ("routing.route.requested", Kind::RouteRequested),
        ("scheduling.lanes.ensure.summary", Kind::Summary),
        ("scheduling.lanes.start.summary", Kind::Summary),
        ("monitoring.lane.ensure_failed", Kind::LaneFailed),
        ("monitoring.lane.start_failed", Kind::LaneFailed),
        ("scaling.decision.requested", Kind::DecisionRequested),
        ("scaling.decision.made", Kind::DecisionMade),
        ("scaling.command.requested", Kind::Actuator),
    ]
    .into_iter()
    .filter_map(|(p, k)| Pattern::parse(p).ok().map(|p| (p, k)))
    .collect()
}

/// `dispatch_cursor.json`: where the next dispatch pass starts.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DispatchCursor {
    /// Byte offset into the log; everything before it has been dispatched.
    pub offset: u64,
    /// Events dispatched in total (for status and metrics).
    #[serde(default)]
    pub processed_events: u64,
}

/// Loads the decision table named in `mesh.toml` (relative to the node root), or the default.
pub fn load_table(node: &Node) -> Result<DecisionTable, TableError> {
    match &node.config.scaling.decision_table {
        Some(p) => DecisionTable::load(&node.paths.root.join(p)),
        None => Ok(DecisionTable::default_table()),
    }
}

/// Live nodes for capability routing: fresh manifests, and this node itself.
fn live_nodes(
    node: &Node,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<routing::LiveNode>, DispatchError> {
    let mut out = vec![routing::LiveNode {
        node_id: node.id().to_string(),
        capabilities: node.config.capabilities.clone(),
    }];
    if let Some(r) = crate::store::repo::peers_ref(&node.config, &node.paths) {
        let layout = crate::store::layout::Layout::new(&node.config.ledger.dir);
        let stale = chrono::Duration::from_std(node.config.sync.stale_after.0)
            .unwrap_or(chrono::Duration::MAX);
        for m in crate::ledger::manifest::read_all(&node.paths.ledger_repo(), &r, &layout)? {
            let fresh =
                crate::event::parse_timestamp(&m.last_seen).is_some_and(|t| now - t <= stale);
            if fresh && m.node_id != node.id() {
                out.push(routing::LiveNode {
                    node_id: m.node_id,
                    capabilities: m.capabilities,
                });
            }
        }
    }
    Ok(out)
}

struct Engine<'n> {
    node: &'n Node,
    writer: Option<LogWriter<'n>>,
    parked: Option<crate::log::Parked>,
    handlers: Vec<(Pattern, Kind)>,
    table: DecisionTable,
    now: chrono::DateTime<chrono::Utc>,
    lease: Option<Option<Lease>>,
    live: Option<Vec<routing::LiveNode>>,
    actuator: Option<actuator::Actuator<'n>>,
    users: user::UserHandlers<'n>,
    pending: Vec<Envelope>,
    cursor: DispatchCursor,
    seen: DispatchSeen,
    report: DispatchReport,
}

impl<'n> Engine<'n> {
    fn writer(&mut self) -> Result<&mut LogWriter<'n>, LogError> {
        if self.writer.is_none() {
            self.writer = Some(match self.parked.take() {
                Some(p) => self.node.log.unpark(p)?,
                None => self.node.log.writer()?,
            });
        }
        Ok(self
            .writer
            .as_mut()
            .unwrap_or_else(|| unreachable!("opened above")))
    }

    fn lease(&mut self) -> Result<Option<Lease>, DispatchError> {
        if self.lease.is_none() {
            self.lease = Some(crate::ledger::lease::read_confirmed(self.node)?);
        }
        Ok(self.lease.clone().flatten())
    }

    /// Appends pending follow-ups, then saves the cursor: the order that makes replay safe.
    fn flush(&mut self) -> Result<(), DispatchError> {
        let pending = std::mem::take(&mut self.pending);
        let n = pending.len() as u64;
        let w = self.writer()?;
        let fresh = emit::append_derived(w, pending)?;
        self.report.followup_events += fresh.len() as u64;
        self.report.duplicate_followups += n - fresh.len() as u64;
        // Not fsynced: losing it only replays a chunk, and replay is harmless.
        let bytes = serde_json::to_vec_pretty(&self.cursor).unwrap_or_default();
        write_atomic(&self.node.paths.dispatch_cursor(), &bytes, false)?;
        let bytes = serde_json::to_vec_pretty(&self.seen).unwrap_or_default();
        write_atomic(&self.node.paths.dispatch_seen(), &bytes, false)?;
        Ok(())
    }

    /// Before a handler runs an outside process: make progress durable and release the log lock
    /// (the process may itself publish to this node).
    fn release(&mut self) -> Result<(), DispatchError> {
        self.flush()?;
        if let Some(w) = self.writer.take() {
            self.parked = Some(w.park());
        }
        Ok(())
    }

    fn handle(&mut self, ev: &Envelope) -> Result<(), DispatchError> {
        let me = self.node.id();
        let acting = ev.acting_node() == me;
        let mut out: Vec<FollowUp> = Vec::new();
        let mut acted = false;
        for i in 0..self.handlers.len() {
            let (p, kind) = &self.handlers[i];
            if !p.matches_parts(&ev.topic, &ev.event_type) {
                continue;
            }
            let kind = *kind;
            if let Kind::User(u) = kind
                && !self.users.takes(u, ev)
            {
                continue;
            }
            if kind == Kind::DecisionMade {
                // Scaling commands: only the holder of an unexpired lease, whoever made the decision.
                let lead = self.lease()?.filter(|l| l.held_by(me, self.now)).map(|l| {
                    scaling::Leadership {
                        leader_id: l.leader_id,
                        epoch: l.epoch,
                    }
                });
                if lead.is_some() {
                    acted = true;
                }
                out.extend(scaling::on_decision_made(ev, lead.as_ref()));
                continue;
            }
            if !acting {
                continue;
            }
            acted = true;
            match kind {
                Kind::Heartbeat => out.extend(scheduling::on_heartbeat(ev)),
                Kind::TaskEnqueued => out.extend(scheduling::on_task_enqueued(ev)),
                Kind::RouteRequested => {
                    if routing::needs_nodes(ev) && self.live.is_none() {
                        self.live = Some(live_nodes(self.node, self.now)?);
                    }
                    out.extend(routing::on_route_requested(
                        ev,
                        self.live.as_deref().unwrap_or(&[]),
                    ));
                }
                Kind::Summary => out.extend(scaling::on_summary(ev)),
                Kind::LaneFailed => out.extend(scaling::on_lane_failed(ev)),
                Kind::DecisionRequested => {
                    out.extend(scaling::on_decision_requested(ev, &self.table))
                }
                Kind::DecisionMade => {}
                Kind::Actuator => {
                    self.release()?;
                    let lease = self.lease()?;
                    if self.actuator.is_none() {
                        self.actuator = Some(actuator::Actuator::load(self.node)?);
                    }
                    if let Some(a) = self.actuator.as_mut() {
                        out.extend(a.handle(ev, lease.as_ref(), chrono::Utc::now())?);
                    }
                }
                Kind::User(u) => {
                    self.release()?;
                    match self.users.run(u, ev, false)? {
                        user::RunResult::Done(f) => out.extend(f),
                        user::RunResult::DeadLettered | user::RunResult::Skipped => {
                            self.report.dead_lettered += 1
                        }
                    }
                }
            }
        }
        if acted {
            self.report.acted_events += 1;
        }
        for f in out {
            let env = emit::derive(me, ev, f).map_err(|source| DispatchError::Event {
                cause: ev.event_id.clone(),
                source,
            })?;
            self.pending.push(env);
        }
        Ok(())
    }
}

fn cursor_is_valid(
    node: &Node,
    cursor: &DispatchCursor,
    seen: &DispatchSeen,
    log_len: u64,
) -> Result<bool, LogError> {
    if cursor.offset == 0 {
        return Ok(true);
    }
    if cursor.offset > log_len {
        return Ok(false);
    }
    if seen.last_event_id.is_empty() {
        // Written by a version without the anchor: trust it.
        return Ok(true);
    }
    if seen.last_event_offset >= log_len {
        return Ok(false);
    }
    // The anchor may be ahead of the cursor (the two files are replaced one after
    // the other); replaying from the cursor is harmless, so only its identity counts.
    Ok(node
        .log
        .read_at(seen.last_event_offset)?
        .is_some_and(|e| e.event_id == seen.last_event_id))
}

/// Takes the node's dispatch lock (waiting for a pass already running), held until dropped.
///
/// The log lock is released while handlers run outside processes, so this
/// second lock is what keeps two passes (say, the daemon and a manual run)
/// from running the same handler on the same event at once.
pub fn lock_dispatch(node: &Node) -> Result<std::fs::File, PathError> {
    use crate::fsutil::IoContext;
    let path = node.paths.dispatch_lock();
    let f = crate::fsutil::open_lock_file(&path)?;
    f.lock().ctx("lock", &path)?;
    Ok(f)
}

/// Runs one dispatch pass on `node`.
pub fn run(node: &Node, opts: &DispatchOptions) -> Result<DispatchReport, DispatchError> {
    let _pass = lock_dispatch(node)?;
    let table = load_table(node)?;
    let mut cursor: DispatchCursor = read_json(&node.paths.dispatch_cursor())?.unwrap_or_default();
    let seen: DispatchSeen = read_json(&node.paths.dispatch_seen())?.unwrap_or_default();
    let mut handlers = builtins();
    let users = user::UserHandlers::load(node)?;
    for i in 0..users.len() {
        handlers.push((users.pattern(i).clone(), Kind::User(i)));
    }
    let writer = node.log.writer()?;
    let log_len = writer.head().log_len;
    if !cursor_is_valid(node, &cursor, &seen, log_len)? {
        tracing::warn!(
            offset = cursor.offset,
            log_len,
            "dispatch cursor does not match the log (replaced or restored?); dispatching again from the start, follow-ups dedupe by id"
        );
        cursor.offset = 0;
    }
    let mut e = Engine {
        node,
        writer: Some(writer),
        parked: None,
        handlers,
        table,
        now: chrono::Utc::now(),
        lease: None,
        live: None,
        actuator: None,
        users,
        pending: Vec::new(),
        cursor,
        seen,
        report: DispatchReport {
            node_id: node.id().to_string(),
            ..DispatchReport::default()
        },
    };
    // Handlers see events upcast to the newest payload schema this node knows.
    let schemas = match node.schemas() {
        Ok(r) => Some(r),
        Err(err) => {
            tracing::warn!(error = %err, "schemas could not be loaded; handlers see stored payloads");
            None
        }
    };
    let max = opts.max_events.unwrap_or(u64::MAX);
    let mut since_flush = 0u64;
    'pass: while e.report.processed_events < max {
        let end = e.writer()?.head().log_len;
        if e.cursor.offset >= end {
            break;
        }
        let mut scan = node.log.scan(e.cursor.offset, end)?;
        let mut progressed = false;
        while let Some(item) = scan.next().transpose()? {
            let (offset, parsed) = item;
            let next = scan.offset();
            match parsed {
                Ok(ev) => {
                    match schemas {
                        Some(r) => e.handle(&r.upcast(&ev))?,
                        None => e.handle(&ev)?,
                    }
                    e.seen = DispatchSeen {
                        last_event_id: ev.event_id,
                        last_event_offset: offset,
                    };
                }
                Err(err) => {
                    tracing::warn!(offset, error = %err, "skipping a log line that is not an event");
                }
            }
            e.cursor.offset = next;
            e.cursor.processed_events += 1;
            e.report.processed_events += 1;
            progressed = true;
            since_flush += 1;
            if since_flush >= CHUNK {
                e.flush()?;
                since_flush = 0;
            }
            if e.report.processed_events >= max {
                break 'pass;
            }
        }
        if !progressed {
            break;
        }
        // Follow-ups appended by this pass are dispatched in the same pass.
        e.flush()?;
        since_flush = 0;
    }
    e.flush()?;
    e.report.cursor_offset = e.cursor.offset;
    let end = e.writer()?.head().log_len;
    e.report.remaining_bytes = end.saturating_sub(e.cursor.offset);
    Ok(e.report)
}

#[cfg(test)]
pub(crate) mod testutil;
