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
        self.file.write_all(&buf).ctx("append", &self.log.log)?;
        self.file.sync_data().ctx("fsync", &self.log.log)?;
        let mut offsets = Vec::with_capacity(events.len());
        let mut line_start = start;
        let mut records = Vec::with_capacity(events.len());
        for (env, line_end) in events.iter().zip(ends) {
            offsets.push(line_start);
            records.push((env.event_id.as_str(), line_start));
            self.head.account(env, line_end);
            line_start = line_end;
        }
        // Appending to the record file does not need the map: load it only for lookups.
        match self.index.as_mut() {
            Some(index) => index.append(&records)?,
            None => IdIndex::append_to(&self.log.ids, &records)?,
        }
        self.save_head()?;
        if events.len() > 1 {
            fs::remove_file(&self.log.pending).ctx("remove", &self.log.pending)?;
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

#[cfg(test)]
mod tests;
