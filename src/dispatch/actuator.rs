//! The command actuator: fencing and policy rules (pure), then the lane argv, the audit
//! line and the outcome event, applying each command id at most once.

use super::FollowUp;
use super::process;
use crate::config::{CausalGate, LaneConfig};
use crate::event::Envelope;
use crate::fsutil::{IoContext, PathError, append_json_line, read_json, write_json};
use crate::ledger::lease::Lease;
use crate::node::Node;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

/// Handler name of the outcome events.
pub const HANDLER: &str = "actuator";

/// Most command records kept; older ones are far outside the freshness window.
const MAX_RECORDS: usize = 4096;

/// Which way a command moves a lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Start a lane.
    ScaleUp,
    /// Stop a lane.
    ScaleDown,
}

/// The fields of a `command.requested` the actuator reads.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandView {
    /// `cmd_...`.
    pub command_id: String,
    /// The action, when it is one the actuator knows.
    pub action: Option<Direction>,
    /// Raw action text.
    pub action_text: String,
    /// The lane the decision asked for (`all`, `all_enabled`, an id, or empty).
    pub requested_lane: String,
    /// The lane to act on; empty: the actuator picks.
    pub target_lane: String,
    /// Fencing token of the issuing leader.
    pub leader_epoch: Option<u64>,
    /// The issuing leader.
    pub leader_id: String,
    /// Why a disruptive command is believed to help.
    pub causal_hypothesis_id: String,
    /// When the command was recorded.
    pub issued_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl CommandView {
    /// Reads a command event.
    pub fn from_event(ev: &Envelope) -> CommandView {
        let s = |k: &str| {
            ev.payload
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let action_text = s("action");
        CommandView {
            command_id: s("command_id"),
            action: match action_text.as_str() {
                "scale_up" => Some(Direction::ScaleUp),
                "scale_down" => Some(Direction::ScaleDown),
                _ => None,
            },
            action_text,
            requested_lane: s("requested_lane"),
            target_lane: s("target_lane"),
            leader_epoch: ev.payload.get("leader_epoch").and_then(Value::as_u64),
            leader_id: s("leader_id"),
            causal_hypothesis_id: s("causal_hypothesis_id"),
            issued_at: crate::event::parse_timestamp(&ev.timestamp),
        }
    }
}

/// Epochs the actuator has seen: the fencing memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fence {
    /// Highest leader epoch seen in an accepted command or the lease.
    pub highest_epoch: u64,
    /// The leader of each epoch seen (the newest few).
    pub epoch_leaders: BTreeMap<u64, String>,
}

impl Fence {
    /// Takes note of a leader at an epoch (keeps the newest 64 epochs).
    pub fn observe(&mut self, epoch: u64, leader: &str) {
        self.highest_epoch = self.highest_epoch.max(epoch);
        self.epoch_leaders
            .entry(epoch)
            .or_insert_with(|| leader.to_string());
        while self.epoch_leaders.len() > 64 {
            self.epoch_leaders.pop_first();
        }
    }
}

/// Everything the rules look at besides the command.
pub struct Rules<'a> {
    /// Now.
    pub now: chrono::DateTime<chrono::Utc>,
    /// `[policy] command_freshness`.
    pub freshness: Duration,
    /// `[policy] causal_gate`.
    pub gate: CausalGate,
    /// This node's lanes.
    pub lanes: &'a [LaneConfig],
    /// The lease as last seen in the ledger.
    pub lease: Option<&'a Lease>,
    /// The fencing memory.
    pub fence: &'a Fence,
    /// The command event that already used this command id, if any.
    pub command_id_used_by: Option<&'a str>,
}

/// What to do with a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Run the lane's argv.
    Apply {
        /// The lane.
        lane_id: String,
        /// Start or stop.
        direction: Direction,
        /// Set when an advisory policy let a disruptive command through.
        note: Option<String>,
    },
    /// Do nothing; record why.
    Reject {
        /// `rejected_*`.
        outcome: &'static str,
        /// Details for people.
        reason: String,
    },
}

fn reject(outcome: &'static str, reason: impl Into<String>) -> Verdict {
    Verdict::Reject {
        outcome,
        reason: reason.into(),
    }
}

/// The actuator's rules, in order: well-formed, unused id, fresh, current epoch,
/// issued by that epoch's leader, allowed by policy, and a lane to act on.
///
/// `running(lane)` tells whether a lane runs; it is only asked when the command
/// names no lane.
pub fn decide(
    cmd: &CommandView,
    r: &Rules<'_>,
    running: &mut dyn FnMut(&LaneConfig) -> bool,
) -> Verdict {
    let Some(direction) = cmd.action else {
        return reject(
            "rejected_invalid",
            format!("unknown action {:?}", cmd.action_text),
        );
    };
    if cmd.command_id.is_empty() {
        return reject("rejected_invalid", "command has no command_id");
    }
    if let Some(other) = r.command_id_used_by {
        return reject(
            "rejected_duplicate",
            format!(
                "command {} was already handled (event {other})",
                cmd.command_id
            ),
        );
    }
    let fresh_after =
        r.now - chrono::Duration::from_std(r.freshness).unwrap_or(chrono::Duration::MAX);
    match cmd.issued_at {
        Some(t) if t >= fresh_after => {}
        Some(t) => {
            return reject(
                "rejected_stale",
                format!(
                    "issued {}s ago, older than the {}s freshness window",
                    (r.now - t).num_seconds(),
                    r.freshness.as_secs()
                ),
            );
        }
        None => return reject("rejected_stale", "command has no valid timestamp"),
    }
    let Some(epoch) = cmd.leader_epoch else {
        return reject("rejected_leader_fence", "command carries no leader_epoch");
    };
    let highest = r
        .fence
        .highest_epoch
        .max(r.lease.map(|l| l.epoch).unwrap_or(0));
    if epoch < highest {
        return reject(
            "rejected_stale_epoch",
            format!("epoch {epoch} is older than epoch {highest} already seen"),
        );
    }
    let known = match r.lease {
        Some(l) if l.epoch == epoch => Some(l.leader_id.as_str()),
        _ => r.fence.epoch_leaders.get(&epoch).map(String::as_str),
    };
    if cmd.leader_id.is_empty() || known.is_some_and(|k| k != cmd.leader_id) {
        return reject(
            "rejected_leader_fence",
            format!(
                "{:?} is not the leader of epoch {epoch} (leader: {})",
                cmd.leader_id,
                known.unwrap_or("unknown")
            ),
        );
    }
    let mut note = None;
    let disruptive = direction == Direction::ScaleDown
        && matches!(cmd.requested_lane.as_str(), "all" | "all_enabled");
    if disruptive && cmd.causal_hypothesis_id.is_empty() {
        match r.gate {
            CausalGate::Enforced => {
                return reject(
                    "rejected_policy",
                    format!(
                        "scale_down of {:?} needs a causal_hypothesis_id (causal_gate = enforced)",
                        cmd.requested_lane
                    ),
                );
            }
            CausalGate::Advisory => {
                note = Some(
                    "causal_gate advisory: disruptive scale_down without causal_hypothesis_id"
                        .to_string(),
                );
            }
        }
    }
    if !cmd.target_lane.is_empty() {
        return match r.lanes.iter().find(|l| l.id == cmd.target_lane) {
            None => reject(
                "rejected_unknown_lane",
                format!("no lane {:?} on this node", cmd.target_lane),
            ),
            Some(l) if !l.enabled => reject(
                "rejected_unknown_lane",
                format!("lane {:?} is disabled", cmd.target_lane),
            ),
            Some(l) => Verdict::Apply {
                lane_id: l.id.clone(),
                direction,
                note,
            },
        };
    }
    let enabled = r.lanes.iter().filter(|l| l.enabled);
    let pick = match direction {
        Direction::ScaleDown => enabled
            .filter(|l| running(l))
            .max_by(|a, b| (a.scaling_rank, &a.id).cmp(&(b.scaling_rank, &b.id))),
        Direction::ScaleUp => enabled
            .filter(|l| !running(l))
            .min_by(|a, b| (a.scaling_rank, &a.id).cmp(&(b.scaling_rank, &b.id))),
    };
    match pick {
        Some(l) => Verdict::Apply {
            lane_id: l.id.clone(),
            direction,
            note,
        },
        None => reject(
            "rejected_no_target",
            match direction {
                Direction::ScaleDown => "no enabled lane is running",
                Direction::ScaleUp => "every enabled lane is already running",
            },
        ),
    }
}

/// Where a command stands in the actuator's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The argv was about to run (or ran) when the record was written.
    Started,
    /// The outcome is final.
    Done,
}

/// One command as the actuator handled it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandRecord {
    /// The `command.requested` event.
    pub event_id: String,
    /// Its command id.
    pub command_id: String,
    /// Its action.
    pub action: String,
    /// The lane acted on (empty when rejected before a lane was chosen).
    pub lane_id: String,
    /// `applied`, `failed`, `interrupted` or `rejected_*`.
    pub outcome: String,
    /// Why.
    pub reason: String,
    /// The command's epoch.
    pub leader_epoch: Option<u64>,
    /// Started or done.
    pub phase: Phase,
    /// Whether its line is in `commands.ndjson`.
    pub audited: bool,
}

/// One line of `commands.ndjson`, the actuator's audit trail.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditLine {
    /// When the outcome was recorded.
    pub timestamp: String,
    /// The `command.requested` event.
    pub event_id: String,
    /// Its command id.
    pub command_id: String,
    /// Its action.
    pub action: String,
    /// The lane acted on (empty when rejected before a lane was chosen).
    pub lane_id: String,
    /// `applied`, `failed`, `interrupted` or `rejected_*`.
    pub outcome: String,
    /// Why.
    pub reason: String,
    /// The command's epoch.
    pub leader_epoch: Option<u64>,
}

/// `state/event_mesh/actuator.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ActuatorState {
    /// Fencing memory.
    #[serde(default)]
    pub fence: Fence,
    /// Lanes this actuator started (true) or stopped (false).
    #[serde(default)]
    pub lanes: BTreeMap<String, bool>,
    /// The newest command records, oldest first.
    #[serde(default)]
    pub records: Vec<CommandRecord>,
}

/// Errors of the actuator's own files.
pub type ActuatorError = PathError;

/// The actuator of one node, with its record loaded.
pub struct Actuator<'n> {
    node: &'n Node,
    state: ActuatorState,
}

impl<'n> Actuator<'n> {
    /// Loads the record (empty when absent).
    pub fn load(node: &'n Node) -> Result<Actuator<'n>, ActuatorError> {
        let state = read_json(&node.paths.actuator_state())?.unwrap_or_default();
        Ok(Actuator { node, state })
    }

    fn save(&self) -> Result<(), ActuatorError> {
        write_json(&self.node.paths.actuator_state(), &self.state)
    }

    fn record_mut(&mut self, event_id: &str) -> Option<&mut CommandRecord> {
        self.state
            .records
            .iter_mut()
            .rev()
            .find(|r| r.event_id == event_id)
    }

    /// Handles one `command.requested` addressed to this node; returns the outcome event.
    ///
    /// Crash safety: the record is written durably before the argv runs
    /// (`started`) and after (`done`); a record found `started` means the
    /// actuator stopped mid-run, so the outcome is `interrupted` and the argv is
    /// not run again (at most once). The audit line is checked against the
    /// last line of `commands.ndjson` before it is written, so it is written once.
    pub fn handle(
        &mut self,
        ev: &Envelope,
        lease: Option<&Lease>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<FollowUp>, ActuatorError> {
        if let Some(l) = lease {
            self.state.fence.observe(l.epoch, &l.leader_id);
        }
        if self.record_mut(&ev.event_id).is_none() {
            let rec = self.decide_and_run(ev, lease, now)?;
            self.state.records.push(rec);
            let extra = self.state.records.len().saturating_sub(MAX_RECORDS);
            self.state.records.drain(..extra);
            self.save()?;
        }
        let rec = self
            .record_mut(&ev.event_id)
            .map(|r| {
                if r.phase == Phase::Started {
                    r.phase = Phase::Done;
                    r.outcome = "interrupted".into();
                    r.reason = "the actuator stopped while the lane command ran; not run again (at most once)".into();
                }
                r.clone()
            })
            .unwrap_or_else(|| unreachable!("record pushed above"));
        if !rec.audited {
            self.audit(ev, &rec)?;
            if let Some(r) = self.record_mut(&ev.event_id) {
                r.audited = true;
                r.phase = Phase::Done;
            }
            self.save()?;
        }
        Ok(vec![outcome_event(ev, &rec)])
    }

    fn decide_and_run(
        &mut self,
        ev: &Envelope,
        lease: Option<&Lease>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<CommandRecord, ActuatorError> {
        let cmd = CommandView::from_event(ev);
        let cfg = &self.node.config;
        let used_by = self
            .state
            .records
            .iter()
            .find(|r| {
                !r.command_id.is_empty()
                    && r.command_id == cmd.command_id
                    && (r.phase == Phase::Started
                        || matches!(r.outcome.as_str(), "applied" | "interrupted"))
            })
            .map(|r| r.event_id.clone());
        let lanes_state = self.state.lanes.clone();
        let rules = Rules {
            now,
            freshness: cfg.policy.command_freshness.0,
            gate: cfg.policy.causal_gate,
            lanes: &cfg.lanes,
            lease,
            fence: &self.state.fence,
            command_id_used_by: used_by.as_deref(),
        };
        let mut running = |l: &LaneConfig| lane_running(l, &lanes_state);
        let verdict = decide(&cmd, &rules, &mut running);
        let mut rec = CommandRecord {
            event_id: ev.event_id.clone(),
            command_id: cmd.command_id.clone(),
            action: cmd.action_text.clone(),
            lane_id: String::new(),
            outcome: String::new(),
            reason: String::new(),
            leader_epoch: cmd.leader_epoch,
            phase: Phase::Done,
            audited: false,
        };
        match verdict {
            Verdict::Reject { outcome, reason } => {
                tracing::info!(event_id = %ev.event_id, command_id = %cmd.command_id, outcome, %reason, "command rejected");
                rec.outcome = outcome.into();
                rec.reason = reason;
                Ok(rec)
            }
            Verdict::Apply {
                lane_id,
                direction,
                note,
            } => {
                if let Some(epoch) = cmd.leader_epoch {
                    self.state.fence.observe(epoch, &cmd.leader_id);
                }
                if let Some(n) = &note {
                    tracing::warn!(event_id = %ev.event_id, command_id = %cmd.command_id, "{n}");
                }
                rec.lane_id = lane_id.clone();
                rec.phase = Phase::Started;
                self.state.records.push(rec.clone());
                self.save()?;
                self.state.records.pop();
                let Some(lane) = cfg.lanes.iter().find(|l| l.id == lane_id) else {
                    unreachable!("decide only picks configured lanes")
                };
                let argv = match direction {
                    Direction::ScaleUp => &lane.start,
                    Direction::ScaleDown => &lane.stop,
                };
                let env = lane_env(ev, &cmd, &lane_id, &self.node.config.node_id);
                let (outcome, reason) = if argv.is_empty() {
                    (
                        "failed",
                        format!(
                            "lane {lane_id:?} has no {} argv",
                            match direction {
                                Direction::ScaleUp => "start",
                                Direction::ScaleDown => "stop",
                            }
                        ),
                    )
                } else {
                    match process::run(argv, &env, None, lane.timeout.0) {
                        Ok(out) if out.success() => {
                            self.state
                                .lanes
                                .insert(lane_id.clone(), direction == Direction::ScaleUp);
                            ("applied", note.unwrap_or_else(|| cmd_reason(ev)))
                        }
                        Ok(out) => ("failed", format!("{}: {}", argv[0], out.describe())),
                        Err(e) => ("failed", format!("cannot run {}: {e}", argv[0])),
                    }
                };
                rec.phase = Phase::Done;
                rec.outcome = outcome.into();
                rec.reason = reason;
                tracing::info!(event_id = %ev.event_id, command_id = %cmd.command_id, lane = %lane_id, outcome, "command handled");
                Ok(rec)
            }
        }
    }

    fn audit(&self, ev: &Envelope, rec: &CommandRecord) -> Result<(), ActuatorError> {
        let path = self.node.paths.commands_log();
        if last_line_names(&path, &ev.event_id)? {
            return Ok(());
        }
        let line = AuditLine {
            timestamp: crate::event::now_timestamp(),
            event_id: ev.event_id.clone(),
            command_id: rec.command_id.clone(),
            action: rec.action.clone(),
            lane_id: rec.lane_id.clone(),
            outcome: rec.outcome.clone(),
            reason: rec.reason.clone(),
            leader_epoch: rec.leader_epoch,
        };
        append_json_line(&path, &line)
    }
}

fn cmd_reason(ev: &Envelope) -> String {
    ev.payload
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn lane_running(l: &LaneConfig, recorded: &BTreeMap<String, bool>) -> bool {
    if let Some(status) = &l.status
        && !status.is_empty()
        && let Ok(out) = process::run(status, &[], None, l.timeout.0)
        && !out.timed_out
    {
        return out.code == Some(0);
    }
    recorded.get(&l.id).copied().unwrap_or(false)
}

fn lane_env(ev: &Envelope, cmd: &CommandView, lane: &str, node: &str) -> Vec<(String, String)> {
    vec![
        ("GITMESH_COMMAND_ID".into(), cmd.command_id.clone()),
        ("GITMESH_COMMAND_EVENT_ID".into(), ev.event_id.clone()),
        ("GITMESH_ACTION".into(), cmd.action_text.clone()),
        ("GITMESH_LANE_ID".into(), lane.to_string()),
        (
            "GITMESH_LEADER_EPOCH".into(),
            cmd.leader_epoch.map(|e| e.to_string()).unwrap_or_default(),
        ),
        ("GITMESH_LEADER_ID".into(), cmd.leader_id.clone()),
        ("GITMESH_REASON".into(), cmd_reason(ev)),
        ("GITMESH_NODE_ID".into(), node.to_string()),
    ]
}

/// Whether the last line of `path` is the audit line of `event_id` (the crash window).
fn last_line_names(path: &Path, event_id: &str) -> Result<bool, PathError> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).ctx("open", path),
    };
    let len = f.metadata().ctx("stat", path)?.len();
    let from = len.saturating_sub(16 * 1024);
    f.seek(SeekFrom::Start(from)).ctx("seek", path)?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ctx("read", path)?;
    let text = String::from_utf8_lossy(&buf);
    let Some(last) = text.trim_end_matches('\n').rsplit('\n').next() else {
        return Ok(false);
    };
    Ok(serde_json::from_str::<Value>(last)
        .ok()
        .and_then(|v| {
            v.get("event_id")
                .and_then(Value::as_str)
                .map(|s| s == event_id)
        })
        .unwrap_or(false))
}

/// The `command.applied` / `command.rejected` follow-up of a record (no wall-clock values).
pub fn outcome_event(ev: &Envelope, rec: &CommandRecord) -> FollowUp {
    let mut p = Map::new();
    p.insert("command_id".into(), Value::from(rec.command_id.clone()));
    p.insert("command_event_id".into(), Value::from(ev.event_id.clone()));
    p.insert("action".into(), Value::from(rec.action.clone()));
    p.insert("lane_id".into(), Value::from(rec.lane_id.clone()));
    p.insert("outcome".into(), Value::from(rec.outcome.clone()));
    p.insert("reason".into(), Value::from(rec.reason.clone()));
    p.insert(
        "leader_epoch".into(),
        rec.leader_epoch.map(Value::from).unwrap_or(Value::Null),
    );
    let kind = if rec.outcome == "applied" {
        "command.applied"
    } else {
        "command.rejected"
    };
    FollowUp::new(HANDLER, "scaling", kind, p)
}

#[cfg(test)]
mod tests;
