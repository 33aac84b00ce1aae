//! What became of a command, and the `command.applied` / `command.rejected` event saying so.

use super::HANDLER;
use super::record::CommandRecord;
use crate::dispatch::FollowUp;
use crate::event::Envelope;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What became of a command; the string forms are those of the audit trail and the events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Not settled yet: a record written before its lane argv ran (stored as `""`).
    #[default]
    #[serde(rename = "")]
    Pending,
    /// The lane argv ran and succeeded.
    Applied,
    /// The lane argv failed, timed out, could not start, or is not configured.
    Failed,
    /// The actuator stopped while the argv ran; it is not run again.
    Interrupted,
    /// Malformed: unknown action or no command id.
    RejectedInvalid,
    /// The command id was already applied (or is being applied).
    RejectedDuplicate,
    /// Older than the freshness window, or without a valid timestamp.
    RejectedStale,
    /// Issued further in the future than `[sync] clock_tolerance`: the issuer's clock is wrong.
    RejectedFuture,
    /// Issued under an epoch older than one already seen.
    RejectedStaleEpoch,
    /// No epoch, or not issued by that epoch's leader.
    RejectedLeaderFence,
    /// No verified lease is known for the command's epoch.
    RejectedUnverifiedEpoch,
    /// The event is not signed by the node that held the verified lease of its epoch.
    RejectedNotLeaderSigned,
    /// Blocked by the causal gate.
    RejectedPolicy,
    /// Names a lane this node does not have, or a disabled one.
    RejectedUnknownLane,
    /// No enabled lane is in a state the command could change.
    RejectedNoTarget,
}

impl Outcome {
    /// The string form, as written to files and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "",
            Outcome::Applied => "applied",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
            Outcome::RejectedInvalid => "rejected_invalid",
            Outcome::RejectedDuplicate => "rejected_duplicate",
            Outcome::RejectedStale => "rejected_stale",
            Outcome::RejectedFuture => "rejected_future",
            Outcome::RejectedStaleEpoch => "rejected_stale_epoch",
            Outcome::RejectedLeaderFence => "rejected_leader_fence",
            Outcome::RejectedUnverifiedEpoch => "rejected_unverified_epoch",
            Outcome::RejectedNotLeaderSigned => "rejected_not_leader_signed",
            Outcome::RejectedPolicy => "rejected_policy",
            Outcome::RejectedUnknownLane => "rejected_unknown_lane",
            Outcome::RejectedNoTarget => "rejected_no_target",
        }
    }

    /// Whether no outcome is recorded yet (the empty string form).
    pub fn is_empty(self) -> bool {
        self == Outcome::Pending
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `command.applied` / `command.rejected` follow-up of a record (no wall-clock values).
pub fn outcome_event(ev: &Envelope, rec: &CommandRecord) -> FollowUp {
    let mut p = Map::new();
    p.insert("command_id".into(), Value::from(rec.command_id.clone()));
    p.insert("command_event_id".into(), Value::from(ev.event_id.clone()));
    p.insert("action".into(), Value::from(rec.action.clone()));
    p.insert("lane_id".into(), Value::from(rec.lane_id.clone()));
    p.insert("outcome".into(), Value::from(rec.outcome.as_str()));
    p.insert("reason".into(), Value::from(rec.reason.clone()));
    p.insert(
        "leader_epoch".into(),
        rec.leader_epoch.map(Value::from).unwrap_or(Value::Null),
    );
    let kind = if rec.outcome == Outcome::Applied {
        "command.applied"
    } else {
        "command.rejected"
    };
    FollowUp::new(HANDLER, "scaling", kind, p)
}
