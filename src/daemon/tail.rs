//! Follows the event log from a byte offset, keeping per-topic counts incrementally.

use crate::event::Envelope;
use crate::log::{EventLog, LogError};
use std::collections::BTreeMap;

/// Counts of the events in the log, maintained as the log grows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogCounts {
    /// Events by topic.
    pub by_topic: BTreeMap<String, u64>,
    /// Events emitted by this node.
    pub own: u64,
    /// Events imported from peers.
    pub imported: u64,
    /// Lines that are not events.
    pub bad_lines: u64,
}

impl LogCounts {
    /// Accounts one event read from the log of node `me`.
    pub fn add(&mut self, env: &Envelope, me: &str) {
        *self.by_topic.entry(env.topic.clone()).or_insert(0) += 1;
        if env.node_id == me {
            self.own += 1;
        } else {
            self.imported += 1;
        }
    }
}

/// A reader positioned at a committed offset of one node's log.
#[derive(Debug, Clone)]
pub struct Tail {
    offset: u64,
    node_id: String,
    counts: LogCounts,
}

impl Tail {
    /// A tail at the start of the log of `node_id` (the first `advance` counts everything).
    pub fn new(node_id: &str) -> Tail {
        Tail {
            offset: 0,
            node_id: node_id.to_string(),
            counts: LogCounts::default(),
        }
    }

    /// The committed offset read so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The counts so far.
    pub fn counts(&self) -> &LogCounts {
        &self.counts
    }

    /// Reads the events committed since the last call and hands each to `each`.
    ///
    /// Only committed bytes (the head's length, taken under the log lock) are read,
    /// so an append in progress is never seen half-written. Returns the number of
    /// new events.
    pub fn advance(
        &mut self,
        log: &EventLog,
        mut each: impl FnMut(Envelope),
    ) -> Result<u64, LogError> {
        let end = log.head()?.log_len;
        if end < self.offset {
            // The log is shorter than what was read: it was replaced. Count afresh.
            tracing::warn!(
                offset = self.offset,
                log_len = end,
                "event log shrank; recounting from the start"
            );
            self.offset = 0;
            self.counts = LogCounts::default();
        }
        if end == self.offset {
            return Ok(0);
        }
        let mut scan = log.scan(self.offset, end)?;
        let mut n = 0;
        for item in scan.by_ref() {
            match item?.1 {
                Ok(env) => {
                    self.counts.add(&env, &self.node_id);
                    n += 1;
                    each(env);
                }
                Err(_) => self.counts.bad_lines += 1,
            }
        }
        self.offset = scan.offset().max(self.offset);
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
