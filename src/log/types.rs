//! The log's shared vocabulary: its error, the head summary and the recovery report.

use crate::event::Envelope;
use crate::fsutil::PathError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Errors of the event log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An I/O failure on a named file.
    #[error(transparent)]
    Io(#[from] PathError),
    /// An own event was appended out of sequence (a bug or a concurrent writer without the lock).
    #[error("{path}: own event {event_id} has seq {seq}, expected {expected}")]
    Sequence {
        /// The active log file.
        path: PathBuf,
        /// The event out of sequence.
        event_id: String,
        /// Its seq.
        seq: u64,
        /// The seq that continues the node's chain.
        expected: u64,
    },
    /// An index entry points at a line that is not the event it names.
    #[error("{path}: index entry for {event_id} at offset {offset} is stale")]
    StaleIndex {
        /// The id record file.
        path: PathBuf,
        /// The event looked up.
        event_id: String,
        /// The global offset the index gave for it.
        offset: u64,
    },
    /// The segment manifest disagrees with itself or with the segment files.
    #[error("{path}: {reason}")]
    Manifest {
        /// The manifest, or the segment index that could not be read.
        path: PathBuf,
        /// What disagrees.
        reason: String,
    },
    /// Segments kept being sealed while a reader tried to open the log.
    #[error("{path}: the log was sealed repeatedly while opening it; try again")]
    Busy {
        /// The active log file.
        path: PathBuf,
    },
    /// A seal failed half-way in this process; the log must be reopened (recovery completes it).
    #[error("{path}: sealing a segment failed ({reason}); reopen the log")]
    Poisoned {
        /// The active log file.
        path: PathBuf,
        /// The error the seal failed with.
        reason: String,
    },
}

/// Summary of the log, kept in `log_head.json` so status and publish are O(1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogHead {
    /// Bytes of the log this summary covers (global offset; always a line boundary).
    pub log_len: u64,
    /// Events in the log.
    pub event_count: u64,
    /// Events emitted by this node.
    pub own_count: u64,
    /// Highest seq of this node's own events.
    pub own_seq: u64,
    /// Id of this node's latest own event.
    pub own_prev: String,
    /// Timestamp of this node's latest own event (timestamps only move forward).
    pub last_own_timestamp: String,
    /// Lines that are not events (skipped, never read as events).
    pub bad_lines: u64,
    /// The node these own counts are for.
    pub node_id: String,
}

impl LogHead {
    /// The summary of an empty log whose own events are those of `node_id`.
    pub(super) fn empty(node_id: &str) -> LogHead {
        LogHead {
            node_id: node_id.to_string(),
            ..LogHead::default()
        }
    }

    /// Counts `env`, whose line ends at global offset `end`.
    pub(super) fn account(&mut self, env: &Envelope, end: u64) {
        self.event_count += 1;
        if env.node_id == self.node_id {
            self.own_count += 1;
            if env.seq > self.own_seq {
                self.own_seq = env.seq;
                self.own_prev = env.event_id.clone();
            }
            if env.timestamp > self.last_own_timestamp {
                self.last_own_timestamp = env.timestamp.clone();
            }
        }
        self.log_len = end;
    }
}

/// What recovery found and set aside when the log was opened.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Recovery {
    /// Bytes of a torn last line moved to quarantine.
    pub torn_bytes: u64,
    /// Bytes of an interrupted multi-line append rolled back into quarantine.
    pub rolled_back_bytes: u64,
    /// Whether the derived head/index had to be rebuilt or caught up.
    pub reindexed_events: u64,
    /// Segments whose seal was interrupted after the rename and completed now.
    pub completed_seals: u64,
}
