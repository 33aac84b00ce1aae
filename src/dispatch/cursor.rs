//! Where a dispatch pass resumes: `dispatch_cursor.json` and its anchor `dispatch_seen.json`.

use crate::fsutil::{IoContext, PathError, write_atomic};
use crate::log::LogError;
use crate::node::Node;
use crate::paths::NodePaths;
use serde::{Deserialize, Serialize};

/// `dispatch_cursor.json`: where the next dispatch pass starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DispatchCursor {
    /// Byte offset into the log; everything before it has been dispatched.
    pub offset: u64,
    /// Events dispatched in total (for status and metrics).
    #[serde(default)]
    pub processed_events: u64,
}

/// `dispatch_seen.json`: the last event dispatched and where it was.
///
/// The set of events already dispatched is the log before the cursor; the set
/// of follow-ups already emitted is the log itself (by id). This file only
/// anchors the cursor: on resume the event at `last_event_offset` must be
/// `last_event_id`, else the log was replaced (restored, rebuilt) and the pass
/// starts again from the beginning, where id dedupe keeps it harmless.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DispatchSeen {
    /// Id of the last event dispatched.
    pub last_event_id: String,
    /// Its byte offset in the log.
    pub last_event_offset: u64,
}

/// Whether a saved cursor still points into this log: the anchor event must be
/// where `dispatch_seen.json` says (else the log was replaced and the pass restarts).
pub(super) fn cursor_is_valid(
    node: &Node,
    cursor: &DispatchCursor,
    seen: &DispatchSeen,
    log_len: u64,
) -> Result<bool, LogError> {
    if cursor.offset == 0 {
        return Ok(true);
    }
    if cursor.offset > log_len {
        return Ok(false);
    }
    if seen.last_event_id.is_empty() {
        // Written by a version without the anchor: trust it.
        return Ok(true);
    }
    if seen.last_event_offset >= log_len {
        return Ok(false);
    }
    // The anchor may be ahead of the cursor (the two files are replaced one after
    // the other); replaying from the cursor is harmless, so only its identity counts.
    Ok(node
        .log
        .read_at(seen.last_event_offset)?
        .is_some_and(|e| e.event_id == seen.last_event_id))
}

/// Saves the cursor and its anchor (not fsynced: losing them only replays a chunk,
/// and replay is harmless).
pub(super) fn save(
    paths: &NodePaths,
    cursor: &DispatchCursor,
    seen: &DispatchSeen,
) -> Result<(), PathError> {
    for (path, bytes) in [
        (paths.dispatch_cursor(), serde_json::to_vec_pretty(cursor)),
        (paths.dispatch_seen(), serde_json::to_vec_pretty(seen)),
    ] {
        let bytes = bytes
            .map_err(std::io::Error::other)
            .ctx("serialize", &path)?;
        write_atomic(&path, &bytes, false)?;
    }
    Ok(())
}
