//! Streaming appends: a batch too large to hold is written line by line under the
//! writer's lock, counted only at `commit`, and cut away again on failure.

use super::append::Pending;
use super::index::IdIndex;
use super::{LogError, LogHead, LogWriter};
use crate::event::Envelope;
use crate::fsutil::{IoContext, json_bytes, push_json_line, write_atomic};
use std::fs;
use std::io::Write;

/// Bytes buffered before they are written to the file.
const FLUSH_BYTES: usize = 1 << 20;

/// A batch being streamed into the log: what has been written and the head it
/// will give the log once committed.
#[derive(Debug)]
pub struct StreamBatch {
    start: u64,
    end: u64,
    head: LogHead,
    buf: Vec<u8>,
    records: Vec<(String, u64)>,
    marked: bool,
}

impl StreamBatch {
    /// Events pushed so far.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The own seq the next own event must carry.
    pub fn next_seq(&self) -> u64 {
        self.head.own_seq + 1
    }

    /// The id of the last own event pushed (or in the log before the batch).
    pub fn own_prev(&self) -> &str {
        &self.head.own_prev
    }
}

impl LogWriter<'_> {
    /// Starts a streamed batch at the log's end. Nothing is visible to readers,
    /// lookups or the head until [`LogWriter::stream_commit`].
    pub fn stream_begin(&self) -> StreamBatch {
        StreamBatch {
            start: self.head.log_len,
            end: self.head.log_len,
            head: self.head.clone(),
            buf: Vec::new(),
            records: Vec::new(),
            marked: false,
        }
    }

    /// Adds one event to the batch; own events must continue the seq chain.
    ///
    /// Lines reach the file in chunks; before the first, a marker naming the batch's
    /// start (and no end yet) is written, so a crash before the commit rolls it back.
    pub fn stream_push(&mut self, b: &mut StreamBatch, env: &Envelope) -> Result<(), LogError> {
        if let Some(reason) = &self.poisoned {
            return Err(LogError::Poisoned {
                path: self.log.log.clone(),
                reason: reason.clone(),
            });
        }
        if env.node_id == b.head.node_id && env.seq != b.head.own_seq + 1 {
            return Err(LogError::Sequence {
                path: self.log.log.clone(),
                event_id: env.event_id.clone(),
                seq: env.seq,
                expected: b.head.own_seq + 1,
            });
        }
        let before = b.buf.len();
        push_json_line(&mut b.buf, env, &self.log.log)?;
        let line_start = b.end;
        b.end += (b.buf.len() - before) as u64;
        b.records.push((env.event_id.clone(), line_start));
        b.head.account(env, b.end);
        if b.buf.len() >= FLUSH_BYTES {
            self.stream_flush(b)?;
        }
        Ok(())
    }

    fn stream_flush(&mut self, b: &mut StreamBatch) -> Result<(), LogError> {
        if b.buf.is_empty() {
            return Ok(());
        }
        if !b.marked {
            let marker = json_bytes(
                &Pending {
                    start: b.start,
                    end: u64::MAX,
                },
                &self.log.pending,
            )?;
            write_atomic(&self.log.pending, &marker, true)?;
            b.marked = true;
        }
        self.file.write_all(&b.buf).ctx("append", &self.log.log)?;
        b.buf.clear();
        Ok(())
    }

    /// Makes the batch durable and visible: one fsync, the exact marker, the id
    /// records, the head. Returns the number of events appended.
    pub fn stream_commit(&mut self, mut b: StreamBatch) -> Result<usize, LogError> {
        if b.records.is_empty() {
            return Ok(0);
        }
        let result = self.stream_finish(&mut b);
        if result.is_err() {
            self.stream_abort(b);
        }
        result
    }

    fn stream_finish(&mut self, b: &mut StreamBatch) -> Result<usize, LogError> {
        self.stream_flush(b)?;
        self.file.sync_data().ctx("fsync", &self.log.log)?;
        // With the exact end recorded, recovery keeps the whole batch.
        let marker = json_bytes(
            &Pending {
                start: b.start,
                end: b.end,
            },
            &self.log.pending,
        )?;
        write_atomic(&self.log.pending, &marker, true)?;
        let records: Vec<(&str, u64)> = b.records.iter().map(|(id, o)| (id.as_str(), *o)).collect();
        match self.index.as_mut() {
            Some(index) => index.append(&records)?,
            None => IdIndex::append_to(&self.log.ids, &records)?,
        }
        self.head = b.head.clone();
        self.save_head()?;
        fs::remove_file(&self.log.pending).ctx("remove", &self.log.pending)?;
        if self.head.log_len - self.view.active_base >= self.log.segment_bytes
            && let Err(e) = self.seal()
        {
            // The events are durable; the next writer completes or retries the seal.
            tracing::warn!(log = %self.log.log.display(), error = %e, "sealing the log segment failed");
            self.poisoned = Some(e.to_string());
        }
        Ok(b.records.len())
    }

    /// Cuts the batch's lines away again; nothing of it stays in the log.
    ///
    /// When the cut itself fails the writer is poisoned and the marker stays, so
    /// the next opener rolls the batch back.
    pub fn stream_abort(&mut self, b: StreamBatch) {
        if !b.marked {
            return;
        }
        let local = b.start - self.view.active_base;
        let cut = self
            .file
            .set_len(local)
            .and_then(|()| self.file.sync_data());
        match cut {
            Ok(()) => {
                if let Err(e) = fs::remove_file(&self.log.pending) {
                    tracing::warn!(marker = %self.log.pending.display(), error = %e, "removing the append marker failed; the next opener checks it");
                }
            }
            Err(e) => {
                tracing::warn!(log = %self.log.log.display(), error = %e, "cutting a failed batch away failed; the next opener rolls it back");
                self.poisoned = Some(format!(
                    "a failed streamed batch could not be cut away: {e}"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests;
