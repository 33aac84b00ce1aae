//! Scaling handlers: lane reports become decision requests, the decision table decides,
//! and the leader turns scale decisions into commands for the target node.

use super::FollowUp;
use super::table::{Action, DecisionTable};
use crate::event::Envelope;
use serde_json::{Map, Value, json};

/// Handler name (part of the derived ids).
pub const HANDLER: &str = "scaling";

/// Facts the default table reads; missing ones count as 0.
pub const COUNT_FACTS: &[&str] = &[
    "started_count",
    "restarted_count",
    "failed_count",
    "scaled_up_count",
    "scaled_down_count",
    "parallel_groups_at_limit",
];

/// Keys carried unchanged from request to decision to command.
pub const PASS_THROUGH: &[&str] = &[
    "requested_lane",
    "leader_epoch",
    "execution_dag_id",
    "causal_hypothesis_id",
];

fn copy_pass_through(from: &Map<String, Value>, to: &mut Map<String, Value>) {
    for k in PASS_THROUGH {
        if let Some(v) = from.get(*k) {
            to.insert((*k).into(), v.clone());
        }
    }
}

fn count(v: Option<&Value>) -> Value {
    match v {
        Some(Value::Number(n)) => Value::Number(n.clone()),
        _ => Value::from(0),
    }
}

/// `scheduling/lanes.ensure.summary` or `lanes.start.summary` -> `scaling/decision.requested`.
///
/// Carries every count the table reads (0 when absent), any other numeric
/// `*_count` field, and the pass-through keys.
pub fn on_summary(ev: &Envelope) -> Vec<FollowUp> {
    let mut p = Map::new();
    for k in COUNT_FACTS {
        p.insert((*k).into(), count(ev.payload.get(*k)));
    }
    for (k, v) in &ev.payload {
        if k.ends_with("_count") && v.is_number() && !p.contains_key(k) {
            p.insert(k.clone(), v.clone());
        }
    }
    copy_pass_through(&ev.payload, &mut p);
    p.insert(
        "source_event_type".into(),
        Value::from(ev.event_type.clone()),
    );
    vec![FollowUp::new(HANDLER, "scaling", "decision.requested", p)]
}

/// `monitoring/lane.ensure_failed` or `lane.start_failed` -> `decision.requested` with `failed_count` 1.
///
/// The failed lane (`lane_id`) becomes the `requested_lane` unless one is given.
pub fn on_lane_failed(ev: &Envelope) -> Vec<FollowUp> {
    let mut p = Map::new();
    for k in COUNT_FACTS {
        p.insert((*k).into(), Value::from(0));
    }
    p.insert("failed_count".into(), Value::from(1));
    copy_pass_through(&ev.payload, &mut p);
    if !p.contains_key("requested_lane")
        && let Some(Value::String(lane)) = ev.payload.get("lane_id")
    {
        p.insert("requested_lane".into(), Value::from(lane.clone()));
    }
    p.insert(
        "source_event_type".into(),
        Value::from(ev.event_type.clone()),
    );
    vec![FollowUp::new(HANDLER, "scaling", "decision.requested", p)]
}

/// Hash of the canonical JSON of a value: 32 hex digits.
pub fn value_hash(v: &Value) -> String {
    let mut bytes = Vec::with_capacity(256);
    if crate::event::canon::write(v, &mut bytes).is_err() {
        bytes = crate::event::canonical_json(v).unwrap_or_default();
    }
    blake3::hash(&bytes).to_hex()[..32].to_string()
}

/// `scaling/decision.requested` -> `decision.made` by the first-hit table.
pub fn on_decision_requested(ev: &Envelope, table: &DecisionTable) -> Vec<FollowUp> {
    let mut facts = ev.payload.clone();
    for k in COUNT_FACTS {
        if !facts.get(*k).is_some_and(Value::is_number) {
            facts.insert((*k).into(), Value::from(0));
        }
    }
    let d = table.decide(&facts);
    let inputs_hash = value_hash(&Value::Object(facts.clone()));
    let mut p = Map::new();
    p.insert("action".into(), Value::from(d.action.as_str()));
    p.insert("reason".into(), Value::from(d.reason));
    p.insert("target_delta".into(), Value::from(d.target_delta));
    p.insert(
        "decision_trace".into(),
        json!({
            "decision_table_version": table.version,
            "matched_rule_ids": d.matched_rule_ids,
            "inputs_hash": inputs_hash,
        }),
    );
    let mut inputs = Map::new();
    for k in COUNT_FACTS {
        inputs.insert((*k).into(), facts[*k].clone());
    }
    p.insert("inputs".into(), Value::Object(inputs));
    copy_pass_through(&ev.payload, &mut p);
    if let Some(t) = ev.payload.get("target_node") {
        p.insert("target_node".into(), t.clone());
    }
    vec![FollowUp::new(HANDLER, "scaling", "decision.made", p)]
}

/// The lease as this node last saw it, when it holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    /// This node.
    pub leader_id: String,
    /// The lease epoch (fencing token).
    pub epoch: u64,
}

/// The deterministic command id: `cmd_` + hash of what the command does and why.
pub fn command_id(
    action: &str,
    requested_lane: &str,
    target_lane: &str,
    delta: i64,
    reason: &str,
    origin_decision: &str,
) -> String {
    let v = json!([
        action,
        requested_lane,
        target_lane,
        delta,
        reason,
        origin_decision
    ]);
    format!("cmd_{}", value_hash(&v))
}

/// `scaling/decision.made` with `scale_up`/`scale_down` -> `command.requested` (leader only).
///
/// The caller passes `Some` only when this node holds an unexpired lease.
/// `target_lane` is the requested lane unless it is empty, `all` or
/// `all_enabled` (then the actuator picks one). `target_node` is the
/// decision's `target_node`, else the node that made the decision.
pub fn on_decision_made(ev: &Envelope, leader: Option<&Leadership>) -> Vec<FollowUp> {
    let Some(leader) = leader else {
        return Vec::new();
    };
    let action = ev
        .payload
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !matches!(
        Action::parse(action),
        Some(Action::ScaleUp | Action::ScaleDown)
    ) {
        return Vec::new();
    }
    let requested = ev
        .payload
        .get("requested_lane")
        .and_then(Value::as_str)
        .unwrap_or("");
    let target_lane = match requested {
        "all" | "all_enabled" => "",
        lane => lane,
    };
    let delta = ev
        .payload
        .get("target_delta")
        .and_then(Value::as_i64)
        .unwrap_or(match action {
            "scale_up" => 1,
            _ => -1,
        });
    let reason = ev
        .payload
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("");
    let target_node = match ev.payload.get("target_node") {
        Some(Value::String(n)) if !n.is_empty() => n.clone(),
        _ => ev.node_id.clone(),
    };
    let mut p = Map::new();
    p.insert(
        "command_id".into(),
        Value::from(command_id(
            action,
            requested,
            target_lane,
            delta,
            reason,
            &ev.event_id,
        )),
    );
    p.insert("action".into(), Value::from(action));
    p.insert("requested_lane".into(), Value::from(requested));
    p.insert("target_lane".into(), Value::from(target_lane));
    p.insert("target_delta".into(), Value::from(delta));
    p.insert("reason".into(), Value::from(reason));
    p.insert("leader_epoch".into(), Value::from(leader.epoch));
    p.insert("leader_id".into(), Value::from(leader.leader_id.clone()));
    p.insert("target_node".into(), Value::from(target_node));
    if let Some(t) = ev.payload.get("decision_trace") {
        p.insert("decision_trace".into(), t.clone());
    }
    p.insert(
        "origin_decision_event_id".into(),
        Value::from(ev.event_id.clone()),
    );
    for k in ["execution_dag_id", "causal_hypothesis_id"] {
        if let Some(v) = ev.payload.get(k) {
            p.insert(k.into(), v.clone());
        }
    }
    vec![FollowUp::new(HANDLER, "scaling", "command.requested", p)]
}

#[cfg(test)]
mod tests;
