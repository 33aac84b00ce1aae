//! The command actuator: fencing and policy rules (pure), then the lane argv, the audit
//! line and the outcome event, applying each command id at most once.
//!
//! `rules` decides, `lane` runs a lane's argv and reads its end, `record` keeps the
//! actuator's memory and audit trail, `outcome` names results; this module is the
//! shell that orders them so a crash never runs a command twice.

mod command;
mod lane;
mod outcome;
mod record;
mod rules;

pub use command::{CommandView, Direction};
pub use lane::LaneRun;
pub use outcome::{Outcome, outcome_event};
pub use record::{ActuatorState, AuditLine, CommandRecord, Phase};
pub use rules::{Fence, Rules, Verdict, decide};

use super::FollowUp;
use crate::event::Envelope;
use crate::fsutil::{PathError, read_json, write_json};
use crate::ledger::lease::Lease;
use crate::node::Node;

/// Handler name of the outcome events.
pub const HANDLER: &str = "actuator";

/// Errors of the actuator's own files.
pub type ActuatorError = PathError;

/// What handling a command seen for the first time comes to, before anything runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Rejected: the record is final and nothing runs.
    Settled(CommandRecord),
    /// Accepted: record `started` durably, run the lane's argv, then settle.
    Run {
        /// The record, `started`, naming the lane.
        record: CommandRecord,
        /// Start or stop.
        direction: Direction,
        /// Set when an advisory policy let a disruptive command through.
        note: Option<String>,
    },
}

/// Turns a verdict on `cmd` (event `ev`) into the record to keep and whether to run (pure).
pub fn step(ev: &Envelope, cmd: &CommandView, verdict: Verdict) -> Step {
    let mut record = CommandRecord::new(ev, cmd);
    match verdict {
        Verdict::Reject { outcome, reason } => {
            record.outcome = outcome;
            record.reason = reason;
            Step::Settled(record)
        }
        Verdict::Apply {
            lane_id,
            direction,
            note,
        } => {
            record.lane_id = lane_id;
            record.phase = Phase::Started;
            Step::Run {
                record,
                direction,
                note,
            }
        }
    }
}

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

    /// Handles one `command.requested` addressed to this node; returns the outcome event.
    /// `lease` is the verified lease: the only thing that moves the fence.
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
        if self.state.record_mut(&ev.event_id).is_none() {
            let rec = self.decide_and_run(ev, lease, now)?;
            self.state.push(rec);
            self.save()?;
        }
        let Some(rec) = self.state.record_mut(&ev.event_id) else {
            unreachable!("record pushed above")
        };
        rec.settle_interrupted();
        let rec = rec.clone();
        if !rec.audited {
            let line = AuditLine::of(&rec, crate::event::now_timestamp());
            record::append_audit(&self.node.paths.commands_log(), &line)?;
            if let Some(r) = self.state.record_mut(&ev.event_id) {
                r.audited = true;
                r.phase = Phase::Done;
            }
            self.save()?;
        }
        Ok(vec![outcome_event(ev, &rec)])
    }

    /// The rules applied to `cmd`; lanes' status argv run only when the command names no lane.
    fn verdict(
        &self,
        cmd: &CommandView,
        lease: Option<&Lease>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Verdict {
        let cfg = &self.node.config;
        let used_by = self.state.command_id_used_by(&cmd.command_id);
        let rules = Rules {
            now,
            freshness: cfg.policy.command_freshness.0,
            tolerance: cfg.sync.clock_tolerance.0,
            gate: cfg.policy.causal_gate,
            lanes: &cfg.lanes,
            lease,
            fence: &self.state.fence,
            command_id_used_by: used_by.as_deref(),
        };
        let recorded = &self.state.lanes;
        decide(cmd, &rules, &mut |l| lane::running(l, recorded))
    }

    /// Decides on a new command and, when accepted, runs its lane argv once.
    fn decide_and_run(
        &mut self,
        ev: &Envelope,
        lease: Option<&Lease>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<CommandRecord, ActuatorError> {
        let cmd = CommandView::from_event(ev);
        let (mut rec, direction, note) = match step(ev, &cmd, self.verdict(&cmd, lease, now)) {
            Step::Settled(rec) => {
                tracing::info!(event_id = %ev.event_id, command_id = %cmd.command_id, outcome = rec.outcome.as_str(), reason = %rec.reason, "command rejected");
                return Ok(rec);
            }
            Step::Run {
                record,
                direction,
                note,
            } => (record, direction, note),
        };
        if let Some(n) = &note {
            tracing::warn!(event_id = %ev.event_id, command_id = %cmd.command_id, "{n}");
        }
        // Durable before the argv runs: a stop from here on settles as interrupted.
        self.state.records.push(rec.clone());
        self.save()?;
        self.state.records.pop();
        let node = self.node;
        let Some(lane) = node.config.lanes.iter().find(|l| l.id == rec.lane_id) else {
            unreachable!("decide only picks configured lanes")
        };
        let reason = command::command_reason(ev);
        let env = lane::env(ev, &cmd, &lane.id, &node.config.node_id, &reason);
        let run = lane::run(lane, direction, &env);
        let (outcome, why) = lane::settle(lane, direction, &run, note.unwrap_or(reason));
        if outcome == Outcome::Applied {
            self.state
                .lanes
                .insert(lane.id.clone(), direction == Direction::ScaleUp);
        }
        rec.phase = Phase::Done;
        rec.outcome = outcome;
        rec.reason = why;
        tracing::info!(event_id = %ev.event_id, command_id = %cmd.command_id, lane = %lane.id, outcome = outcome.as_str(), "command handled");
        Ok(rec)
    }
}

#[cfg(test)]
mod tests;
