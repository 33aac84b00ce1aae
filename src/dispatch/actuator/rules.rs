//! The actuator's rules (pure): fencing, freshness, policy and the choice of a lane.

use super::command::{CommandView, Direction};
use super::outcome::Outcome;
use crate::config::{CausalGate, LaneConfig};
use crate::ledger::lease::Lease;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Epochs the actuator has seen: the fencing memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fence {
    /// Highest leader epoch seen in a verified lease.
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
    /// `[sync] clock_tolerance`: a command issued further ahead than this is from the future.
    pub tolerance: Duration,
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
        /// One of the `rejected_*` outcomes.
        outcome: Outcome,
        /// Details for people.
        reason: String,
    },
}

fn reject(outcome: Outcome, reason: impl Into<String>) -> Verdict {
    Verdict::Reject {
        outcome,
        reason: reason.into(),
    }
}

/// The actuator's rules, in order: well-formed, unused id, fresh and not from the
/// future, current epoch, an epoch with a verified lease, named and signed by
/// that epoch's leader, allowed by policy, and a lane to act on.
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
            Outcome::RejectedInvalid,
            format!("unknown action {:?}", cmd.action_text),
        );
    };
    if cmd.command_id.is_empty() {
        return reject(Outcome::RejectedInvalid, "command has no command_id");
    }
    if let Some(other) = r.command_id_used_by {
        return reject(
            Outcome::RejectedDuplicate,
            format!(
                "command {} was already handled (event {other})",
                cmd.command_id
            ),
        );
    }
    let fresh_after =
        r.now - chrono::Duration::from_std(r.freshness).unwrap_or(chrono::Duration::MAX);
    let tolerance = chrono::Duration::from_std(r.tolerance).unwrap_or(chrono::Duration::MAX);
    match cmd.issued_at {
        Some(t) if crate::ledger::clock::in_future(t, r.now, tolerance) => {
            return reject(
                Outcome::RejectedFuture,
                format!(
                    "issued {}s in this node's future, beyond the {}s clock tolerance: the \
                     issuer's clock is wrong",
                    (t - r.now).num_seconds(),
                    r.tolerance.as_secs()
                ),
            );
        }
        Some(t) if t >= fresh_after => {}
        Some(t) => {
            return reject(
                Outcome::RejectedStale,
                format!(
                    "issued {}s ago, older than the {}s freshness window",
                    (r.now - t).num_seconds(),
                    r.freshness.as_secs()
                ),
            );
        }
        None => return reject(Outcome::RejectedStale, "command has no valid timestamp"),
    }
    let Some(epoch) = cmd.leader_epoch else {
        return reject(
            Outcome::RejectedLeaderFence,
            "command carries no leader_epoch",
        );
    };
    let highest = r
        .fence
        .highest_epoch
        .max(r.lease.map(|l| l.epoch).unwrap_or(0));
    if epoch < highest {
        return reject(
            Outcome::RejectedStaleEpoch,
            format!("epoch {epoch} is older than epoch {highest} already seen"),
        );
    }
    let known = match r.lease {
        Some(l) if l.epoch == epoch => Some(l.leader_id.as_str()),
        _ => r.fence.epoch_leaders.get(&epoch).map(String::as_str),
    };
    if cmd.leader_id.is_empty() {
        return reject(Outcome::RejectedLeaderFence, "command names no leader_id");
    }
    let Some(known) = known else {
        return reject(
            Outcome::RejectedUnverifiedEpoch,
            format!("no verified lease is known for epoch {epoch}"),
        );
    };
    if known != cmd.leader_id {
        return reject(
            Outcome::RejectedLeaderFence,
            format!(
                "{:?} is not the leader of epoch {epoch} (leader: {known})",
                cmd.leader_id
            ),
        );
    }
    if cmd.signed_by != known {
        return reject(
            Outcome::RejectedNotLeaderSigned,
            format!(
                "the command event is signed by {:?}, not by {known:?}, the leader of epoch {epoch}",
                cmd.signed_by
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
                    Outcome::RejectedPolicy,
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
                Outcome::RejectedUnknownLane,
                format!("no lane {:?} on this node", cmd.target_lane),
            ),
            Some(l) if !l.enabled => reject(
                Outcome::RejectedUnknownLane,
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
            Outcome::RejectedNoTarget,
            match direction {
                Direction::ScaleDown => "no enabled lane is running",
                Direction::ScaleUp => "every enabled lane is already running",
            },
        ),
    }
}

#[cfg(test)]
mod tests;
