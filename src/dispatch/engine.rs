//! One dispatch pass: which handlers an event goes to (pure), running them, and
//! appending their follow-ups before the cursor moves.

use super::cursor::{self, DispatchCursor, DispatchSeen};
use super::table::DecisionTable;
use super::{
    DispatchError, DispatchReport, FollowUp, actuator, emit, routing, scaling, scheduling, user,
};
use crate::event::Envelope;
use crate::event::pattern::Pattern;
use crate::ledger::lease::Lease;
use crate::log::{LogError, LogWriter};
use crate::node::Node;
use crate::schema::Registry;

/// Events handled between two cursor saves.
const CHUNK: u64 = 8192;

/// Hop counts remembered in one pass before the memory is cleared (then the log answers).
const DEPTH_CACHE: usize = 65_536;

/// Ids of the stopped chain named in a hop-limit report (nearest first).
const CHAIN_SHOWN: usize = 16;

/// The topic and type of the event reporting a chain stopped at the hop limit.
pub const HOP_LIMIT_TOPIC: &str = "monitoring";
/// See [`HOP_LIMIT_TOPIC`].
pub const HOP_LIMIT_TYPE: &str = "dispatch.hop_limit_reached";

/// What the walk up a causation chain learns about one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Up {
    /// Its hop count is already known.
    Known(u32),
    /// Its cause (`""` for a root).
    Cause(String),
    /// The log does not hold it (a peer's event not imported yet).
    Missing,
}

/// Hops from an event whose cause is `cause` up to its root, counted no further
/// than `max`, and the ids walked (nearest first, at most [`CHAIN_SHOWN`]).
///
/// Pure over `up`: the hop count is a function of the causation chain, which is
/// part of every signed envelope, so every node holding the chain counts the same.
/// A cause the log does not hold counts as one hop above which nothing is known.
pub(super) fn hops<E>(
    cause: &str,
    max: u32,
    mut up: impl FnMut(&str) -> Result<Up, E>,
) -> Result<(u32, Vec<String>), E> {
    let mut d = 0u32;
    let mut chain = Vec::new();
    let mut cur = cause.to_string();
    while !cur.is_empty() {
        d += 1;
        if chain.len() < CHAIN_SHOWN {
            chain.push(cur.clone());
        }
        if d >= max {
            break;
        }
        match up(&cur)? {
            Up::Known(k) => {
                d = d.saturating_add(k).min(max);
                break;
            }
            Up::Cause(c) => cur = c,
            Up::Missing => break,
        }
    }
    Ok((d, chain))
}

/// A handler: a built-in one, or user handler `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
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

/// The built-in handlers and the events they take.
pub(super) fn builtins() -> Vec<(Pattern, Kind)> {
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
        // A heartbeat from the future says nothing about when the peer was last alive.
        let tolerance = chrono::Duration::from_std(node.config.sync.clock_tolerance.0)
            .unwrap_or(chrono::Duration::MAX);
        for m in crate::ledger::manifest::read_all(&node.paths.ledger_repo(), &r, &layout)? {
            let fresh = crate::event::parse_timestamp(&m.last_seen).is_some_and(|t| {
                now - t <= stale && !crate::ledger::clock::in_future(t, now, tolerance)
            });
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

/// The handlers an event goes to, in order (pure): those whose pattern matches,
/// except a user handler on its own follow-ups (`takes` says). Every node weighs a
/// `decision.made` (only the leader turns it into a command); every other handler
/// runs only on the event's acting node.
fn handlers_for(
    handlers: &[(Pattern, Kind)],
    ev: &Envelope,
    acting: bool,
    takes: impl Fn(usize) -> bool,
) -> Vec<Kind> {
    handlers
        .iter()
        .filter(|(p, _)| p.matches_parts(&ev.topic, &ev.event_type))
        .map(|(_, kind)| *kind)
        .filter(|kind| match kind {
            Kind::User(u) => acting && takes(*u),
            Kind::DecisionMade => true,
            _ => acting,
        })
        .collect()
}

/// One dispatch pass in progress: the log writer (parked while outside processes
/// run), lazily read inputs (lease, live nodes, actuator), follow-ups not yet
/// appended, and the cursor.
pub(super) struct Engine<'n> {
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
    depths: std::collections::HashMap<String, u32>,
    cursor: DispatchCursor,
    seen: DispatchSeen,
    report: DispatchReport,
}

impl<'n> Engine<'n> {
    /// An engine at `cursor` holding the log `writer`.
    pub(super) fn new(
        node: &'n Node,
        writer: LogWriter<'n>,
        handlers: Vec<(Pattern, Kind)>,
        table: DecisionTable,
        users: user::UserHandlers<'n>,
        cursor: DispatchCursor,
        seen: DispatchSeen,
    ) -> Engine<'n> {
        Engine {
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
            depths: std::collections::HashMap::new(),
            cursor,
            seen,
            report: DispatchReport {
                node_id: node.id().to_string(),
                ..DispatchReport::default()
            },
        }
    }

    /// Dispatches from the cursor to the log end (follow-ups included) or `max` events,
    /// handlers seeing events upcast by `schemas` when given; then reports.
    pub(super) fn pass(
        mut self,
        schemas: Option<&Registry>,
        max: u64,
    ) -> Result<DispatchReport, DispatchError> {
        let node = self.node;
        let mut since_flush = 0u64;
        'pass: while self.report.processed_events < max {
            let end = self.writer()?.head().log_len;
            if self.cursor.offset >= end {
                break;
            }
            let mut scan = node.log.scan(self.cursor.offset, end)?;
            let mut progressed = false;
            while let Some(item) = scan.next().transpose()? {
                let (offset, parsed) = item;
                let next = scan.offset();
                match parsed {
                    Ok(ev) => {
                        match schemas {
                            Some(r) => self.handle(&r.upcast(&ev))?,
                            None => self.handle(&ev)?,
                        }
                        self.seen = DispatchSeen {
                            last_event_id: ev.event_id,
                            last_event_offset: offset,
                        };
                    }
                    Err(err) => {
                        tracing::warn!(offset, error = %err, "skipping a log line that is not an event");
                    }
                }
                self.cursor.offset = next;
                self.cursor.processed_events += 1;
                self.report.processed_events += 1;
                progressed = true;
                since_flush += 1;
                if since_flush >= CHUNK {
                    self.flush()?;
                    since_flush = 0;
                }
                if self.report.processed_events >= max {
                    break 'pass;
                }
            }
            if !progressed {
                break;
            }
            // Follow-ups appended by this pass are dispatched in the same pass.
            self.flush()?;
            since_flush = 0;
        }
        self.flush()?;
        self.report.cursor_offset = self.cursor.offset;
        let end = self.writer()?.head().log_len;
        self.report.remaining_bytes = end.saturating_sub(self.cursor.offset);
        Ok(self.report)
    }

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
        cursor::save(&self.node.paths, &self.cursor, &self.seen)?;
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

    /// The report of a chain stopped at `ev`, when `ev` lies `max_hops` or more
    /// below its root; records `ev`'s hop count for its follow-ups either way.
    fn hop_limited(
        &mut self,
        ev: &Envelope,
        kinds: &[Kind],
    ) -> Result<Option<FollowUp>, DispatchError> {
        let max = self.node.config.dispatch.max_hops;
        let mut depths = std::mem::take(&mut self.depths);
        let walked = hops(&ev.causation_id, max, |id| -> Result<Up, DispatchError> {
            if let Some(k) = depths.get(id) {
                return Ok(Up::Known(*k));
            }
            Ok(match self.writer()?.get(id)? {
                Some(e) => Up::Cause(e.causation_id),
                None => Up::Missing,
            })
        });
        if depths.len() >= DEPTH_CACHE {
            depths.clear();
        }
        let depth = match walked {
            Ok((d, _)) => d,
            Err(e) => {
                self.depths = depths;
                return Err(e);
            }
        };
        depths.insert(ev.event_id.clone(), depth);
        self.depths = depths;
        if depth < max {
            return Ok(None);
        }
        // The ids of the stopped chain, from the log (the memory of the pass
        // cut the walk short): at most `max` lookups, only when a chain stops.
        let (_, chain) = hops(&ev.causation_id, max, |id| -> Result<Up, DispatchError> {
            Ok(match self.writer()?.get(id)? {
                Some(e) => Up::Cause(e.causation_id),
                None => Up::Missing,
            })
        })?;
        let handlers: Vec<serde_json::Value> = kinds
            .iter()
            .map(|k| match k {
                Kind::User(u) => self.users.name(*u).to_string(),
                other => format!("{other:?}"),
            })
            .map(serde_json::Value::String)
            .collect();
        let mut p = serde_json::Map::new();
        p.insert("stopped_event_id".into(), ev.event_id.clone().into());
        p.insert("stopped_kind".into(), ev.kind().into());
        p.insert("correlation_id".into(), ev.correlation_id.clone().into());
        p.insert("hops".into(), depth.into());
        p.insert("max_hops".into(), max.into());
        p.insert(
            "chain".into(),
            serde_json::Value::Array(chain.into_iter().map(Into::into).collect()),
        );
        p.insert("handlers".into(), serde_json::Value::Array(handlers));
        Ok(Some(FollowUp::new(
            emit::SOURCE,
            HOP_LIMIT_TOPIC,
            HOP_LIMIT_TYPE,
            p,
        )))
    }

    /// Runs the handlers `ev` goes to and queues their follow-ups.
    fn handle(&mut self, ev: &Envelope) -> Result<(), DispatchError> {
        let me = self.node.id();
        let acting = ev.acting_node() == me;
        let users = &self.users;
        let kinds = handlers_for(&self.handlers, ev, acting, |u| users.takes(u, ev));
        if kinds.is_empty() {
            return Ok(());
        }
        if let Some(report) = self.hop_limited(ev, &kinds)? {
            self.report.hop_limited += 1;
            tracing::warn!(event_id = %ev.event_id, correlation_id = %ev.correlation_id, "causation hop limit reached; the event goes to no handler");
            if ev.topic != HOP_LIMIT_TOPIC || ev.event_type != HOP_LIMIT_TYPE {
                let env = emit::derive(me, ev, report).map_err(|source| DispatchError::Event {
                    cause: ev.event_id.clone(),
                    source,
                })?;
                self.pending.push(env);
            }
            return Ok(());
        }
        let mut out: Vec<FollowUp> = Vec::new();
        let mut acted = false;
        for kind in kinds {
            if kind == Kind::DecisionMade {
                // Scaling commands: only the holder of an unexpired lease, whoever made the decision.
                let sync = &self.node.config.sync;
                let ttl = chrono::Duration::from_std(sync.lease_ttl.0).unwrap_or_default();
                let tol = chrono::Duration::from_std(sync.clock_tolerance.0).unwrap_or_default();
                let now = self.now;
                // An implausible expiry (beyond ttl + tolerance ahead) is no lease at all.
                let valid = |l: &Lease| {
                    l.held_by(me, now)
                        && crate::ledger::clock::lease_expiry_plausible(l.expires(), ttl, now, tol)
                };
                let lead = self.lease()?.filter(valid).map(|l| scaling::Leadership {
                    leader_id: l.leader_id,
                    epoch: l.epoch,
                });
                if lead.is_some() {
                    acted = true;
                }
                out.extend(scaling::on_decision_made(ev, lead.as_ref()));
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

#[cfg(test)]
mod tests;
