//! `events`: filtered listings of the log, newest-first when limited so they stay O(limit).

use super::error::Result;
use crate::event::Envelope;
use crate::node::Node;

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only this topic.
    pub topic: Option<String>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// Only events emitted by this node.
    pub node: Option<String>,
    /// Only events recorded at or after this instant.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// At most this many: the newest ones.
    pub limit: Option<usize>,
}

impl EventFilter {
    /// Whether an event passes the filter (ignoring the limit).
    pub fn matches(&self, e: &Envelope) -> bool {
        self.topic.as_ref().is_none_or(|t| &e.topic == t)
            && self.event_type.as_ref().is_none_or(|t| &e.event_type == t)
            && self.node.as_ref().is_none_or(|n| &e.node_id == n)
            && self
                .since
                .is_none_or(|s| crate::event::parse_timestamp(&e.timestamp).is_some_and(|t| t >= s))
    }
}

/// Lists matching events, oldest first.
pub fn events(node: &Node, filter: &EventFilter) -> Result<Vec<Envelope>> {
    let head = node.log.read_head()?;
    let mut out = Vec::new();
    match filter.limit {
        Some(limit) => {
            for item in node.log.scan_rev(head.log_len)? {
                if out.len() >= limit {
                    break;
                }
                if let (_, Ok(e)) = item?
                    && filter.matches(&e)
                {
                    out.push(e);
                }
            }
            out.reverse();
        }
        None => {
            for item in node.log.scan(0, head.log_len)? {
                if let (_, Ok(e)) = item?
                    && filter.matches(&e)
                {
                    out.push(e);
                }
            }
        }
    }
    Ok(out)
}
