//! The causal chain around one event, built from one scan of the log.

use crate::event::Envelope;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// One event of a trace, with its depth below the root.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceItem {
    /// The event.
    pub event_id: String,
    /// What it reacts to (`""` for a root).
    pub causation_id: String,
    /// Root of its chain.
    pub correlation_id: String,
    /// Emitting node.
    pub node_id: String,
    /// Topic.
    pub topic: String,
    /// Event type.
    pub event_type: String,
    /// When it was recorded.
    pub timestamp: String,
    /// Steps below the root (0 for the root; events whose cause is missing count from 0).
    pub depth: usize,
}

/// A causal chain: the root and every event linked to it, in log order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trace {
    /// Id of the chain's root.
    pub root: String,
    /// The event asked about.
    pub focus: String,
    /// The chain, in log order.
    pub events: Vec<TraceItem>,
}

/// Builds the trace of `event_id` from all events of a log (in log order).
///
/// The chain is every event sharing the focus event's correlation id, plus its
/// ancestors by causation (in case a peer set a different correlation) and the
/// descendants of any event already in the chain. Returns `None` when the event
/// is not in the log.
pub fn build(events: impl IntoIterator<Item = Envelope>, event_id: &str) -> Option<Trace> {
    let items: Vec<TraceItem> = events
        .into_iter()
        .map(|e| TraceItem {
            event_id: e.event_id,
            causation_id: e.causation_id,
            correlation_id: e.correlation_id,
            node_id: e.node_id,
            topic: e.topic,
            event_type: e.event_type,
            timestamp: e.timestamp,
            depth: 0,
        })
        .collect();
    let by_id: HashMap<&str, usize> = items
        .iter()
        .enumerate()
        .map(|(i, e)| (e.event_id.as_str(), i))
        .collect();
    let focus = *by_id.get(event_id)?;
    let mut chain: HashSet<usize> = HashSet::new();
    // Ancestors by causation, bounded by the number of events (ids could form a cycle).
    let mut cur = focus;
    let mut root = focus;
    for _ in 0..items.len() {
        chain.insert(cur);
        root = cur;
        match by_id.get(items[cur].causation_id.as_str()) {
            Some(&p) if !chain.contains(&p) => cur = p,
            _ => break,
        }
    }
    let correlation = items[root].correlation_id.clone();
    let wanted = if correlation.is_empty() {
        items[root].event_id.clone()
    } else {
        correlation
    };
    for (i, e) in items.iter().enumerate() {
        if e.correlation_id == wanted || e.event_id == wanted {
            chain.insert(i);
        }
    }
    // Descendants: causes precede effects in a log, but imports can reorder them,
    // so repeat until nothing is added.
    loop {
        let ids: HashSet<&str> = chain.iter().map(|&i| items[i].event_id.as_str()).collect();
        let more: Vec<usize> = (0..items.len())
            .filter(|i| !chain.contains(i) && ids.contains(items[*i].causation_id.as_str()))
            .collect();
        if more.is_empty() {
            break;
        }
        chain.extend(more);
    }
    let mut ordered: Vec<usize> = chain.into_iter().collect();
    ordered.sort_unstable();
    let mut depth: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(ordered.len());
    for i in ordered {
        let mut item = items[i].clone();
        item.depth = depth.get(&item.causation_id).map_or(0, |d| d + 1);
        depth.insert(item.event_id.clone(), item.depth);
        out.push(item);
    }
    let root_id = out
        .iter()
        .find(|e| e.event_id == wanted)
        .map(|e| e.event_id.clone())
        .unwrap_or_else(|| items[root].event_id.clone());
    Some(Trace {
        root: root_id,
        focus: event_id.to_string(),
        events: out,
    })
}

/// Most ancestors looked up by id before the scan (a chain deeper than this is
/// shown from there down).
const MAX_ANCESTORS: usize = 1024;

/// Events scanned between two looks at the cancel flag.
const CANCEL_EVERY: usize = 4096;

/// The trace of `event_id` from `node`'s log, in bounded memory.
///
/// The event and its ancestors are found through the id index (an unknown id
/// costs a lookup, not a scan); then one scan keeps only the chain's events
/// (same correlation, the ancestors, and effects of kept events) for [`build`].
/// `None` when the log does not hold the event, or when `cancel` was set (the
/// client went away and nobody reads the answer).
pub fn from_log(
    node: &crate::node::Node,
    event_id: &str,
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<Option<Trace>, crate::log::LogError> {
    use std::sync::atomic::Ordering;
    let mut w = node.log.writer()?;
    let Some(target) = w.get(event_id)? else {
        return Ok(None);
    };
    let mut ancestors: HashSet<String> = HashSet::new();
    ancestors.insert(target.event_id.clone());
    let mut top = target;
    while !top.causation_id.is_empty() && ancestors.len() < MAX_ANCESTORS {
        match w.get(&top.causation_id)? {
            Some(p) if ancestors.insert(p.event_id.clone()) => top = p,
            _ => break,
        }
    }
    let end = w.head().log_len;
    drop(w);
    let corr = if top.correlation_id.is_empty() {
        top.event_id.clone()
    } else {
        top.correlation_id.clone()
    };
    let mut kept_ids: HashSet<String> = HashSet::new();
    let mut kept = Vec::new();
    for (n, item) in node.log.scan(0, end)?.enumerate() {
        if n % CANCEL_EVERY == 0 && cancel.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let (_, parsed) = item?;
        let Ok(e) = parsed else { continue };
        let ours = e.correlation_id == corr
            || e.event_id == corr
            || ancestors.contains(&e.event_id)
            || (!e.causation_id.is_empty() && kept_ids.contains(&e.causation_id));
        if ours && kept_ids.insert(e.event_id.clone()) {
            kept.push(e);
        }
    }
    Ok(build(kept, event_id))
}

#[cfg(test)]
mod tests;
