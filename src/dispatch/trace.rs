//! `trace`: the causal tree around one event, across every node whose events this log holds.

use crate::event::Envelope;
use crate::log::LogError;
use crate::node::Node;
use serde::Serialize;
use std::collections::HashMap;

/// One event of a trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceEvent {
    /// The event.
    pub event_id: String,
    /// Its cause (`""` for the root).
    pub causation_id: String,
    /// The node that emitted it.
    pub node_id: String,
    /// Topic.
    pub topic: String,
    /// Event type.
    pub event_type: String,
    /// When it was recorded.
    pub timestamp: String,
    /// The handler that derived it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    /// Its producer (`cli`, `mesh-dispatch`, ...).
    pub source: String,
    /// Distance from the root.
    pub depth: usize,
}

/// The tree: its root and every event under it, depth-first in time order.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    /// Id of the root (the oldest ancestor this log holds).
    pub root: String,
    /// Root first, then each child after its parent.
    pub events: Vec<TraceEvent>,
}

/// Errors of `trace`.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The log holds no event with that id.
    #[error("no event {0} in this node's log")]
    NotFound(String),
}

fn summary(e: &Envelope, depth: usize) -> TraceEvent {
    TraceEvent {
        event_id: e.event_id.clone(),
        causation_id: e.causation_id.clone(),
        node_id: e.node_id.clone(),
        topic: e.topic.clone(),
        event_type: e.event_type.clone(),
        timestamp: e.timestamp.clone(),
        handler: e.handler.clone(),
        source: e.source.clone(),
        depth,
    }
}

/// Builds the trace of `event_id` in one scan of the log.
///
/// Every event of a causal tree carries the root's id as `correlation_id`, so
/// the scan keeps only events of that correlation (plus, for logs whose
/// correlation ids are incomplete, any event whose cause is already kept).
pub fn trace(node: &Node, event_id: &str) -> Result<Trace, TraceError> {
    let mut w = node.log.writer()?;
    let Some(target) = w.get(event_id)? else {
        return Err(TraceError::NotFound(event_id.to_string()));
    };
    let end = w.head().log_len;
    drop(w);
    let corr = if target.correlation_id.is_empty() {
        target.event_id.clone()
    } else {
        target.correlation_id.clone()
    };
    let mut kept: HashMap<String, Envelope> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for item in node.log.scan(0, end)? {
        let (_, parsed) = item?;
        let Ok(e) = parsed else { continue };
        let ours = e.correlation_id == corr
            || e.event_id == corr
            || (!e.causation_id.is_empty() && kept.contains_key(&e.causation_id));
        if ours && !kept.contains_key(&e.event_id) {
            order.push(e.event_id.clone());
            kept.insert(e.event_id.clone(), e);
        }
    }
    // Walk up from the event to the oldest ancestor held.
    let mut root = target.event_id.clone();
    let mut hops = 0;
    while let Some(parent) = kept.get(&root).map(|e| e.causation_id.clone())
        && !parent.is_empty()
        && kept.contains_key(&parent)
        && hops < kept.len()
    {
        root = parent;
        hops += 1;
    }
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for id in &order {
        let e = &kept[id];
        if !e.causation_id.is_empty() {
            children
                .entry(e.causation_id.as_str())
                .or_default()
                .push(id.as_str());
        }
    }
    let mut events = Vec::new();
    let mut stack: Vec<(&str, usize)> = vec![(root.as_str(), 0)];
    let mut visited = std::collections::HashSet::new();
    while let Some((id, depth)) = stack.pop() {
        if !visited.insert(id) {
            continue;
        }
        if let Some(e) = kept.get(id) {
            events.push(summary(e, depth));
        }
        if let Some(kids) = children.get(id) {
            for k in kids.iter().rev() {
                stack.push((k, depth + 1));
            }
        }
    }
    Ok(Trace { root, events })
}

/// The tree as indented text for people.
pub fn render(t: &Trace) -> String {
    let mut s = String::new();
    for e in &t.events {
        let indent = "  ".repeat(e.depth);
        let branch = if e.depth == 0 { "" } else { "└─ " };
        s.push_str(&format!(
            "{indent}{branch}{}.{}  {}  node {}  at {}{}\n",
            e.topic,
            e.event_type,
            e.event_id,
            e.node_id,
            e.timestamp,
            e.handler
                .as_ref()
                .map(|h| format!("  handler {h}"))
                .unwrap_or_default()
        ));
    }
    s
}
