//! The log handle: where a node's log files live and when its active file is sealed.

use super::LogError;
use super::segments::{DEFAULT_SEGMENT_BYTES, Layout, SEGMENT_BYTES_ENV};
use crate::fsutil::IoContext;
use crate::paths::NodePaths;
use std::fs::{File, OpenOptions};
use std::path::PathBuf;

/// Handle on a node's event log.
#[derive(Debug, Clone)]
pub struct EventLog {
    pub(super) log: PathBuf,
    pub(super) layout: Layout,
    pub(super) lock: PathBuf,
    pub(super) head: PathBuf,
    pub(super) ids: PathBuf,
    pub(super) pending: PathBuf,
    pub(super) quarantine: PathBuf,
    pub(super) node_id: String,
    pub(super) segment_bytes: u64,
}

/// The seal threshold: `GITMESH_LOG_SEGMENT_BYTES` when set to a positive integer, else the default.
pub fn segment_bytes_from_env() -> u64 {
    std::env::var(SEGMENT_BYTES_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_SEGMENT_BYTES)
}

impl EventLog {
    /// The log of the node root `paths`, whose own events are those of `node_id`.
    pub fn new(paths: &NodePaths, node_id: &str) -> EventLog {
        let log = paths.events_log();
        let state = paths
            .log_head()
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default();
        EventLog {
            layout: Layout::new(&log),
            log,
            lock: state.join("log.lock"),
            head: paths.log_head(),
            ids: paths.log_ids(),
            pending: paths.append_pending(),
            quarantine: paths.quarantine(),
            node_id: node_id.to_string(),
            segment_bytes: segment_bytes_from_env(),
        }
    }

    /// The same log sealing its active file once it reaches `bytes` (at least 1).
    pub fn with_segment_bytes(mut self, bytes: u64) -> EventLog {
        self.segment_bytes = bytes.max(1);
        self
    }

    /// Size at which the active file is sealed into a segment.
    pub fn segment_bytes(&self) -> u64 {
        self.segment_bytes
    }

    /// Path of the active log file (the newest part of the log only; offsets are global).
    pub fn path(&self) -> &PathBuf {
        &self.log
    }

    /// Paths of the segment directory, manifest and segment files.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Opens the active file for reading and appending, creating it when missing.
    pub(super) fn open_active(&self) -> Result<File, LogError> {
        Ok(OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.log)
            .ctx("open", &self.log)?)
    }
}
