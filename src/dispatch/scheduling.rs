//! Scheduling handlers: heartbeats become ticks, enqueued tasks become scheduled and routed.

use super::FollowUp;
use crate::event::Envelope;
use serde_json::{Map, Value};

/// Handler name (part of the derived ids).
pub const HANDLER: &str = "scheduling";

/// Keys copied from a `task.enqueued` payload into `task.scheduled` and `route.requested`.
const TASK_KEYS: &[&str] = &[
    "task_id",
    "priority",
    "required_capabilities",
    "execution_dag_id",
    "causal_hypothesis_id",
];

/// `monitoring/heartbeat.changed` -> `scheduling/tick.requested`.
pub fn on_heartbeat(ev: &Envelope) -> Vec<FollowUp> {
    let mut p = Map::new();
    p.insert("reason".into(), Value::from("heartbeat_changed"));
    p.insert("heartbeat_node".into(), Value::from(ev.node_id.clone()));
    vec![FollowUp::new(HANDLER, "scheduling", "tick.requested", p)]
}

/// `scheduling/task.enqueued` with a `task_id` -> `task.scheduled` and `routing/route.requested`.
///
/// The route request carries the task's `routing_options` as `options` (an empty
/// list when absent) and its `required_capabilities`. Without a `task_id` there
/// is nothing to schedule and no follow-up.
pub fn on_task_enqueued(ev: &Envelope) -> Vec<FollowUp> {
    let Some(task_id) = ev.payload.get("task_id").filter(|v| is_id(v)) else {
        return Vec::new();
    };
    let mut scheduled = Map::new();
    for k in TASK_KEYS {
        if let Some(v) = ev.payload.get(*k) {
            scheduled.insert((*k).into(), v.clone());
        }
    }
    scheduled.insert("task_id".into(), task_id.clone());
    scheduled.insert("enqueued_event_id".into(), Value::from(ev.event_id.clone()));
    let mut route = scheduled.clone();
    route.remove("enqueued_event_id");
    let options = match ev.payload.get("routing_options") {
        Some(Value::Array(a)) => Value::Array(a.clone()),
        _ => Value::Array(Vec::new()),
    };
    route.insert("options".into(), options);
    vec![
        FollowUp::new(HANDLER, "scheduling", "task.scheduled", scheduled),
        FollowUp::new(HANDLER, "routing", "route.requested", route),
    ]
}

fn is_id(v: &Value) -> bool {
    match v {
        Value::String(s) => !s.is_empty(),
        Value::Number(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests;
