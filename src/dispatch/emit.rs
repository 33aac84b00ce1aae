//! Turning handler output into derived own events and appending them under one log lock.

use super::FollowUp;
use crate::event::Envelope;
use crate::log::{LogError, LogWriter};
use std::collections::HashSet;

/// Source of every event dispatch appends.
pub const SOURCE: &str = "mesh-dispatch";

/// The derived envelope of a follow-up of `cause`, with its deterministic id.
///
/// `timestamp`, `seq` and `prev` are left empty: `append_derived` assigns them
/// under the lock. The id depends only on node, topic, type, cause, payload
/// and handler, so deriving it again after a crash gives the same id.
pub fn derive(
    node_id: &str,
    cause: &Envelope,
    f: FollowUp,
) -> Result<Envelope, crate::event::EventError> {
    let correlation = if cause.correlation_id.is_empty() {
        cause.event_id.clone()
    } else {
        cause.correlation_id.clone()
    };
    let mut env = Envelope {
        event_id: String::new(),
        timestamp: String::new(),
        topic: f.topic,
        event_type: f.event_type,
        node_id: node_id.to_string(),
        source: SOURCE.to_string(),
        causation_id: cause.event_id.clone(),
        correlation_id: correlation,
        seq: 0,
        prev: String::new(),
        payload: crate::event::ijson::canonical_payload(f.payload),
        dedupe_key: None,
        handler: Some(f.handler),
        schema_version: None,
        sig: None,
    };
    env.event_id = derived_id(&env)?;
    Ok(env)
}

/// The id of a derived event, from its own `handler` (docs/envelope.md, "Ids").
pub fn derived_id(env: &Envelope) -> Result<String, crate::event::EventError> {
    let handler = env.handler.as_deref().unwrap_or_default();
    crate::event::compute_id(env, crate::event::IdForm::Derived { handler })
}

/// Appends derived own events that the log does not hold yet, in one write.
///
/// Each gets the next `seq`, `prev` and a timestamp that never goes backwards.
/// Events whose id is already in the log (or earlier in `events`) are dropped:
/// that is what makes a replay after a crash harmless. Returns the appended ones.
pub fn append_derived(
    w: &mut LogWriter<'_>,
    events: Vec<Envelope>,
) -> Result<Vec<Envelope>, LogError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let mut seq = w.head().own_seq;
    let mut prev = w.head().own_prev.clone();
    let first = w.next_own_timestamp(chrono::Utc::now());
    let mut t = crate::event::parse_timestamp(&first).unwrap_or_else(chrono::Utc::now);
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let in_log: Vec<bool> = w.lookup_many(&ids)?.iter().map(Option::is_some).collect();
    let mut seen = HashSet::with_capacity(events.len());
    let mut fresh = Vec::with_capacity(events.len());
    for (mut env, in_log) in events.into_iter().zip(in_log) {
        if !seen.insert(env.event_id.clone()) || in_log {
            continue;
        }
        seq += 1;
        env.seq = seq;
        env.prev = std::mem::replace(&mut prev, env.event_id.clone());
        env.timestamp = crate::event::format_timestamp(t);
        t += chrono::Duration::microseconds(1);
        fresh.push(env);
    }
    w.append(&fresh)?;
    Ok(fresh)
}

#[cfg(test)]
mod tests;
