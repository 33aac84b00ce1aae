//! Durable appends: the seq-chain check, one write and one fsync per batch, the batch marker.

use super::index::IdIndex;
use super::{LogError, LogWriter};
use crate::event::Envelope;
use crate::fsutil::{IoContext, json_bytes, push_json_line, write_atomic};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;

/// The byte range of a multi-line append in flight (`append_pending.json`).
///
/// Written before the lines and removed after them, so the next opener can
/// roll back a batch a crash left half-written.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Pending {
    /// Global offset where the batch starts.
    pub(super) start: u64,
    /// Global offset just after its last line.
    pub(super) end: u64,
}

/// The first own event of `events` that does not continue the chain after `own_seq`,
/// with the seq it should have had.
pub(super) fn sequence_gap<'e>(
    events: &'e [Envelope],
    node_id: &str,
    own_seq: u64,
) -> Option<(&'e Envelope, u64)> {
    let own = events.iter().filter(|e| e.node_id == node_id);
    (own_seq + 1..)
        .zip(own)
        .find(|(expected, env)| env.seq != *expected)
        .map(|(expected, env)| (env, expected))
}

impl LogWriter<'_> {
    /// Appends events durably (one write, one fsync) and returns their global offsets.
    ///
    /// Callers have already validated and deduplicated them. Own events must
    /// continue the node's seq chain. A batch of several lines is all-or-nothing:
    /// a marker written first lets the next opener roll back a partial write.
    /// When the active file reaches the segment size afterwards, it is sealed.
    pub fn append(&mut self, events: &[Envelope]) -> Result<Vec<u64>, LogError> {
        if let Some(reason) = &self.poisoned {
            return Err(LogError::Poisoned {
                path: self.log.log.clone(),
                reason: reason.clone(),
            });
        }
        if events.is_empty() {
            return Ok(Vec::new());
        }
        if let Some((env, expected)) = sequence_gap(events, &self.head.node_id, self.head.own_seq) {
            return Err(LogError::Sequence {
                path: self.log.log.clone(),
                event_id: env.event_id.clone(),
                seq: env.seq,
                expected,
            });
        }
        let start = self.head.log_len;
        let mut buf = Vec::with_capacity(events.len() * 512);
        let mut ends = Vec::with_capacity(events.len());
        for env in events {
            push_json_line(&mut buf, env, &self.log.log)?;
            ends.push(start + buf.len() as u64);
        }
        let end = start + buf.len() as u64;
        if events.len() > 1 {
            let marker = json_bytes(&Pending { start, end }, &self.log.pending)?;
            write_atomic(&self.log.pending, &marker, true)?;
        }
        let written = self
            .file
            .write_all(&buf)
            .ctx("append", &self.log.log)
            .and_then(|()| self.file.sync_data().ctx("fsync", &self.log.log));
        if let Err(e) = written {
            // Nothing is stored unless all of it is: cut off what reached the file
            // (shrinking needs no space), so a reader never sees an event the caller
            // was told failed.
            self.undo_append(start);
            return Err(e.into());
        }
        let mut offsets = Vec::with_capacity(events.len());
        let mut line_start = start;
        let mut records = Vec::with_capacity(events.len());
        for (env, line_end) in events.iter().zip(ends) {
            offsets.push(line_start);
            records.push((env.event_id.as_str(), line_start));
            self.head.account(env, line_end);
            line_start = line_end;
        }
        // The events are durable from here on: the derived files below are
        // best-effort, and the next writer rebuilds whatever they missed.
        // Appending to the record file does not need the map: load it only for lookups.
        let indexed = match self.index.as_mut() {
            Some(index) => index.append(&records),
            None => IdIndex::append_to(&self.log.ids, &records),
        };
        if let Err(e) = indexed {
            // A record file missing records must not get more appended after the gap.
            tracing::warn!(error = %e, "the events are stored, but the id index could not be updated; it is rebuilt by the next writer");
            self.poisoned = Some(format!("updating the id index failed: {e}"));
        }
        if let Err(e) = self.save_head() {
            tracing::warn!(error = %e, "the events are stored, but the log head file could not be updated; it is rebuilt from the log");
        }
        if events.len() > 1
            && let Err(e) = fs::remove_file(&self.log.pending)
        {
            // A marker whose batch is complete is ignored by recovery.
            tracing::warn!(path = %self.log.pending.display(), error = %e, "could not remove the batch marker");
        }
        if self.head.log_len - self.view.active_base >= self.log.segment_bytes
            && let Err(e) = self.seal()
        {
            // The events are durable; the next writer completes or retries the seal.
            tracing::warn!(log = %self.log.log.display(), error = %e, "sealing the log segment failed");
            self.poisoned = Some(e.to_string());
        }
        Ok(offsets)
    }
}

impl LogWriter<'_> {
    /// Cuts the active file back to global offset `start` after a failed append and
    /// drops the batch marker; if the file cannot be cut, the writer refuses further
    /// appends and the next writer's recovery removes the partial tail.
    fn undo_append(&mut self, start: u64) {
        let local = start.saturating_sub(self.view.active_base);
        let cut = self
            .file
            .set_len(local)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = cut {
            tracing::warn!(log = %self.log.log.display(), error = %e, "could not cut a failed append back");
            self.poisoned = Some(format!("a failed append could not be cut back: {e}"));
        }
        let _ = fs::remove_file(&self.log.pending);
    }
}

#[cfg(test)]
mod tests;
