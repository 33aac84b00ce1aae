//! The fields of a `command.requested` event the actuator reads.

use crate::event::Envelope;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    /// The issuing leader, as the payload names it.
    pub leader_id: String,
    /// The node whose signature the event carries (its `node_id`, verified on import).
    pub signed_by: String,
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
            signed_by: ev.node_id.clone(),
            causal_hypothesis_id: s("causal_hypothesis_id"),
            issued_at: crate::event::parse_timestamp(&ev.timestamp),
        }
    }
}

/// The free-text `reason` of a command event (empty when absent).
pub(super) fn command_reason(ev: &Envelope) -> String {
    ev.payload
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}
