//! `events`: filtered listings of the log, newest-first when limited so they stay O(limit).

use super::error::{OpsError, Result};
use crate::event::Envelope;
use crate::event::pattern::Pattern;
use crate::node::Node;

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only this topic; `*` for any.
    pub topic: Option<String>,
    /// Only this event type, or a pattern over its dotted segments (`route.*`, `route.**`).
    pub event_type: Option<String>,
    /// Only events whose `topic.event_type` matches one of these handler patterns.
    pub patterns: Vec<String>,
    /// Only events emitted by this node.
    pub node: Option<String>,
    /// Only events recorded at or after this instant.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// At most this many: the newest ones.
    pub limit: Option<usize>,
}

/// Most `patterns` one filter may carry (each is tried against every event).
pub const MAX_PATTERNS: usize = 64;

/// A filter checked once, its patterns parsed, ready to test events.
#[derive(Debug, Clone)]
pub struct Selector {
    topic: Option<String>,
    event_type: Option<TypeMatch>,
    patterns: Vec<Pattern>,
    node: Option<String>,
    since: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone)]
enum TypeMatch {
    Exact(String),
    /// The type's pattern behind a `*` for the topic.
    Pattern(Pattern),
}

impl EventFilter {
    /// Checks the filter and parses its patterns; a bad one is named in the error.
    pub fn compile(&self) -> Result<Selector> {
        let topic = match self.topic.as_deref() {
            None | Some("*") => None,
            Some(t) if t.contains('*') || t.contains('.') => {
                return Err(OpsError::Usage(format!(
                    "topic {t:?}: give a topic name or `*`; to match names with dots use a pattern"
                )));
            }
            Some(t) => Some(t.to_string()),
        };
        let event_type = match self.event_type.as_deref() {
            None => None,
            Some(t) if t.contains('*') => Some(TypeMatch::Pattern(
                Pattern::parse(&format!("*.{t}"))
                    .map_err(|e| OpsError::Usage(format!("event type {t:?}: {}", e.reason)))?,
            )),
            Some(t) => Some(TypeMatch::Exact(t.to_string())),
        };
        if self.patterns.len() > MAX_PATTERNS {
            return Err(OpsError::Usage(format!(
                "{} patterns given; at most {MAX_PATTERNS}",
                self.patterns.len()
            )));
        }
        let patterns = self
            .patterns
            .iter()
            .map(|p| Pattern::parse(p).map_err(|e| OpsError::Usage(e.to_string())))
            .collect::<Result<Vec<_>>>()?;
        Ok(Selector {
            topic,
            event_type,
            patterns,
            node: self.node.clone(),
            since: self.since,
        })
    }
}

impl Selector {
    /// Whether an event passes the filter (the limit aside).
    pub fn matches(&self, e: &Envelope) -> bool {
        self.topic.as_ref().is_none_or(|t| &e.topic == t)
            && self.event_type.as_ref().is_none_or(|t| match t {
                TypeMatch::Exact(t) => &e.event_type == t,
                TypeMatch::Pattern(p) => p.matches_parts(&e.topic, &e.event_type),
            })
            && (self.patterns.is_empty()
                || self
                    .patterns
                    .iter()
                    .any(|p| p.matches_parts(&e.topic, &e.event_type)))
            && self.node.as_ref().is_none_or(|n| &e.node_id == n)
            && self
                .since
                .is_none_or(|s| crate::event::parse_timestamp(&e.timestamp).is_some_and(|t| t >= s))
    }
}

/// Lists matching events, oldest first.
pub fn events(node: &Node, filter: &EventFilter) -> Result<Vec<Envelope>> {
    let end = node.log.read_head()?.log_len;
    Ok(events_between(node, filter, 0, end)?
        .into_iter()
        .map(|(_, e)| e)
        .collect())
}

/// Lists matching events stored between global offsets `from` and `to`, oldest
/// first, each with its offset; with a limit, the newest ones, read backwards.
pub fn events_between(
    node: &Node,
    filter: &EventFilter,
    from: u64,
    to: u64,
) -> Result<Vec<(u64, Envelope)>> {
    let sel = filter.compile()?;
    let mut out = Vec::new();
    match filter.limit {
        Some(limit) => {
            for item in node.log.scan_rev_from(from, to)? {
                if out.len() >= limit {
                    break;
                }
                if let (off, Ok(e)) = item?
                    && sel.matches(&e)
                {
                    out.push((off, e));
                }
            }
            out.reverse();
        }
        None => {
            for item in node.log.scan(from, to)? {
                if let (off, Ok(e)) = item?
                    && sel.matches(&e)
                {
                    out.push((off, e));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
