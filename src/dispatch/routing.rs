//! Routing: pick the best healthy option of a `route.requested`, or a capable live node.

use super::FollowUp;
use crate::event::Envelope;
use serde_json::{Map, Value, json};

/// Handler name (part of the derived ids).
pub const HANDLER: &str = "routing";

/// A node that may receive work: its manifest is fresh (or it is this node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveNode {
    /// The node.
    pub node_id: String,
    /// What it advertises.
    pub capabilities: Vec<String>,
}

/// Keys of the request copied into the selection event.
const PASS: &[&str] = &["task_id", "execution_dag_id", "causal_hypothesis_id"];

/// Whether the request needs the list of live nodes (no options, but capabilities).
pub fn needs_nodes(ev: &Envelope) -> bool {
    options(ev).is_empty() && !required(ev).is_empty()
}

fn options(ev: &Envelope) -> &[Value] {
    match ev.payload.get("options") {
        Some(Value::Array(a)) => a,
        _ => &[],
    }
}

fn required(ev: &Envelope) -> Vec<&str> {
    match ev.payload.get("required_capabilities") {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) if !s.is_empty() => vec![s.as_str()],
        _ => Vec::new(),
    }
}

/// `routing/route.requested` -> `route.selected` or `route.blocked`.
///
/// With options: the highest `score` among options whose `healthy` is not
/// false; ties go to the smallest `(lane_id, provider, model)`, then the
/// earliest. Without options but with `required_capabilities`: the live node
/// holding all of them with the highest rendezvous hash of the `task_id`
/// (stable as nodes come and go), named as `target_node`. `live` is only
/// consulted in that second case.
pub fn on_route_requested(ev: &Envelope, live: &[LiveNode]) -> Vec<FollowUp> {
    let mut base = Map::new();
    for k in PASS {
        if let Some(v) = ev.payload.get(*k) {
            base.insert((*k).into(), v.clone());
        }
    }
    let opts = options(ev);
    let req = required(ev);
    if opts.is_empty() && !req.is_empty() {
        let task = ev
            .payload
            .get("task_id")
            .map(key_text)
            .unwrap_or_else(|| ev.event_id.clone());
        return match pick_node(&task, &req, live) {
            Some(node) => {
                base.insert("selected".into(), Value::Bool(true));
                base.insert("selection".into(), json!({"node_id": node}));
                base.insert("target_node".into(), Value::from(node));
                vec![FollowUp::new(HANDLER, "routing", "route.selected", base)]
            }
            None => blocked(base, "no_capable_node"),
        };
    }
    match best_option(opts) {
        Some(sel) => {
            base.insert("selected".into(), Value::Bool(true));
            base.insert("selection".into(), sel);
            vec![FollowUp::new(HANDLER, "routing", "route.selected", base)]
        }
        None => blocked(base, "no_healthy_option"),
    }
}

fn blocked(mut base: Map<String, Value>, reason: &str) -> Vec<FollowUp> {
    base.insert("selected".into(), Value::Bool(false));
    base.insert("reason".into(), Value::from(reason));
    vec![FollowUp::new(HANDLER, "routing", "route.blocked", base)]
}

fn key_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn text<'a>(o: &'a Map<String, Value>, k: &str) -> &'a str {
    o.get(k).and_then(Value::as_str).unwrap_or("")
}

/// The best healthy option as `{lane_id, provider, model, score}`.
pub fn best_option(opts: &[Value]) -> Option<Value> {
    let mut best: Option<(&Map<String, Value>, f64)> = None;
    for o in opts.iter().filter_map(Value::as_object) {
        if o.get("healthy") == Some(&Value::Bool(false)) {
            continue;
        }
        let score = o.get("score").and_then(Value::as_f64).unwrap_or(0.0);
        if !score.is_finite() {
            continue;
        }
        let better = match best {
            None => true,
            Some((b, bs)) => {
                score > bs
                    || (score == bs
                        && (text(o, "lane_id"), text(o, "provider"), text(o, "model"))
                            < (text(b, "lane_id"), text(b, "provider"), text(b, "model")))
            }
        };
        if better {
            best = Some((o, score));
        }
    }
    best.map(|(o, _)| {
        json!({
            "lane_id": o.get("lane_id").cloned().unwrap_or(Value::Null),
            "provider": o.get("provider").cloned().unwrap_or(Value::Null),
            "model": o.get("model").cloned().unwrap_or(Value::Null),
            "score": o.get("score").cloned().unwrap_or(Value::from(0)),
        })
    })
}

/// Rendezvous (highest random weight) choice of a node having every required capability.
pub fn pick_node(task: &str, required: &[&str], live: &[LiveNode]) -> Option<String> {
    live.iter()
        .filter(|n| {
            required
                .iter()
                .all(|c| n.capabilities.iter().any(|h| h == c))
        })
        .map(|n| {
            let mut h = blake3::Hasher::new();
            h.update(task.as_bytes());
            h.update(&[0]);
            h.update(n.node_id.as_bytes());
            (*h.finalize().as_bytes(), &n.node_id)
        })
        .max()
        .map(|(_, id)| id.clone())
}

#[cfg(test)]
mod tests;
