//! Crash recovery when a writer opens the log: interrupted seals, batches and lines, stale heads.
//!
//! The decisions (what to cut, which head to trust) are pure functions; the
//! writer methods here only gather their inputs from disk and carry them out.

use super::append::Pending;
use super::index::{self, IdIndex};
use super::scan::{self, LogScan};
use super::segments::{Extent, Manifest, SealedSegment, View};
use super::sorted::SortedIndex;
use super::{EventLog, LogError, LogHead, LogWriter, reverse};
use crate::fsutil::{IoContext, read_json};
use std::fs::{self, File};

/// Records flushed to `log_ids.bin` at a time while re-indexing, to bound memory.
const REINDEX_BATCH: usize = 65_536;

/// Where an interrupted batch is cut back to: its start, when the active file
/// (global length `len`, first byte at `base`) ends strictly inside it.
pub(super) fn rollback_start(pending: &Pending, base: u64, len: u64) -> Option<u64> {
    (pending.start >= base && len < pending.end && len > pending.start).then_some(pending.start)
}

/// What the log and its derived files hold when a writer opens it.
#[derive(Debug, Clone, Copy)]
pub(super) struct OnDisk<'a> {
    /// Global offset of the active file's first byte.
    pub(super) base: u64,
    /// Global length of the log after any tail was cut off.
    pub(super) len: u64,
    /// The node whose own events the head counts.
    pub(super) node_id: &'a str,
    /// Records in `log_ids.bin`.
    pub(super) records: u64,
    /// Events in the sealed segments.
    pub(super) sealed_events: u64,
    /// The node the last sealed segment's head was computed for, if one is sealed.
    pub(super) last_sealed_node: Option<&'a str>,
}

/// Where catching the head up with the log starts.
#[derive(Debug, PartialEq)]
pub(super) enum HeadStart {
    /// The stored head agrees with the log: continue from it.
    Stored(LogHead),
    /// Empty the record file and start from the end of the sealed segments,
    /// first recomputing the sealed heads when they were counted for another node.
    Rescan { rebuild_sealed: bool },
}

/// Whether the stored head can be trusted: it must lie within the active file,
/// be for this node, and the record file must hold a record per active event it
/// covers (fewer means the record file was lost or cut, e.g. by a power loss).
pub(super) fn head_start(stored: Option<LogHead>, disk: &OnDisk<'_>) -> HeadStart {
    match stored {
        Some(h)
            if h.log_len >= disk.base
                && h.log_len <= disk.len
                && h.node_id == disk.node_id
                && disk.records >= h.event_count.saturating_sub(disk.sealed_events) =>
        {
            HeadStart::Stored(h)
        }
        _ => HeadStart::Rescan {
            rebuild_sealed: disk.last_sealed_node.is_some_and(|n| n != disk.node_id),
        },
    }
}

impl EventLog {
    /// Fails when a sealed segment's size differs from its manifest entry.
    pub(super) fn check_sealed_sizes(&self, m: &Manifest) -> Result<(), LogError> {
        for s in &m.segments {
            let path = self.layout.segment(s.number);
            let len = fs::metadata(&path).ctx("stat", &path)?.len();
            if len != s.bytes {
                return Err(LogError::Manifest {
                    path: self.layout.manifest.clone(),
                    reason: format!(
                        "{} has {len} bytes but the manifest records {}",
                        path.display(),
                        s.bytes
                    ),
                });
            }
        }
        Ok(())
    }

    /// Adds sealed files found after the manifest (a crash between rename and manifest write).
    pub(super) fn complete_seals(&self, m: &mut Manifest, view: &View) -> Result<u64, LogError> {
        let stored: Option<LogHead> = read_json(&self.head).unwrap_or(None);
        let mut done = 0;
        let listed = m.segments.len();
        for e in view.sealed[listed..].iter().copied() {
            let prev = self.last_sealed_head(m);
            let head = match &stored {
                Some(h) if h.log_len == e.base + e.bytes && h.node_id == self.node_id => h.clone(),
                _ => self.head_through(&e, prev.clone())?,
            };
            let events = head.event_count - prev.event_count;
            let seg = SealedSegment {
                number: e.number,
                base: e.base,
                bytes: e.bytes,
                events,
                head,
            };
            if SortedIndex::open(&self.layout.index(e.number), e.base, e.bytes)?.is_none() {
                self.write_sealed_index(&e, events)?;
            }
            m.segments.push(seg);
            self.layout.save_manifest(m)?;
            tracing::warn!(segment = %self.layout.segment(e.number).display(), "completed an interrupted seal");
            done += 1;
        }
        Ok(done)
    }

    /// `head` advanced over every line of sealed segment `e`.
    fn head_through(&self, e: &Extent, mut head: LogHead) -> Result<LogHead, LogError> {
        let mut scan = self.scan_sealed(e);
        while let Some(item) = scan.next().transpose()? {
            let end = scan.offset();
            match item.1 {
                Ok(env) => head.account(&env, end),
                Err(_) => {
                    head.bad_lines += 1;
                    head.log_len = end;
                }
            }
        }
        head.log_len = e.base + e.bytes;
        Ok(head)
    }
}

impl LogWriter<'_> {
    /// Repairs the active file's tail and brings the head and record file up to date.
    pub(super) fn recover(&mut self) -> Result<(), LogError> {
        let base = self.view.active_base;
        let len = base + self.active_len()?;
        let len = self.roll_back_batch(len)?;
        let len = self.cut_torn_line(len)?;
        let head = self.starting_head(len)?;
        if head.log_len < len {
            let (head, reindexed) = self.catch_up(head, len)?;
            self.recovery.reindexed_events = reindexed;
            self.head = head;
            // The head is derived: a full disk must not stop appends the log has room for.
            if let Err(e) = self.save_head() {
                tracing::warn!(error = %e, "the log head file could not be updated; it is rebuilt from the log");
            }
        } else {
            self.head = head;
        }
        Ok(())
    }

    /// Quarantines a batch a crash left half-written; returns the log's new length.
    fn roll_back_batch(&mut self, len: u64) -> Result<u64, LogError> {
        let Some(p) = read_json::<Pending>(&self.log.pending).unwrap_or(None) else {
            return Ok(len);
        };
        let mut len = len;
        if let Some(start) = rollback_start(&p, self.view.active_base, len) {
            self.recovery.rolled_back_bytes =
                self.quarantine_tail(start, len, "incomplete-batch")?;
            len = start;
        }
        fs::remove_file(&self.log.pending).ctx("remove", &self.log.pending)?;
        Ok(len)
    }

    /// Quarantines a last line without its newline; returns the log's new length.
    fn cut_torn_line(&mut self, len: u64) -> Result<u64, LogError> {
        let base = self.view.active_base;
        if len <= base {
            return Ok(len);
        }
        let cut = base + reverse::last_line_end(&self.log.log, len - base)?;
        if cut >= len {
            return Ok(len);
        }
        self.recovery.torn_bytes = self.quarantine_tail(cut, len, "torn-line")?;
        Ok(cut)
    }

    /// The stored head when it can be trusted, else the head at the end of the sealed segments.
    fn starting_head(&mut self, len: u64) -> Result<LogHead, LogError> {
        let stored: Option<LogHead> = read_json(&self.log.head).unwrap_or(None);
        let last = self.manifest.segments.last();
        let disk = OnDisk {
            base: self.view.active_base,
            len,
            node_id: &self.log.node_id,
            records: fs::metadata(&self.log.ids).map_or(0, |m| m.len() / index::RECORD as u64),
            sealed_events: last.map_or(0, |s| s.events_through()),
            last_sealed_node: last.map(|s| s.head.node_id.as_str()),
        };
        match head_start(stored, &disk) {
            HeadStart::Stored(h) => Ok(h),
            HeadStart::Rescan { rebuild_sealed } => {
                // At most one segment to rescan: the active one.
                IdIndex::reset(&self.log.ids)?;
                if rebuild_sealed {
                    self.rebuild_sealed_heads()?;
                }
                Ok(self.log.last_sealed_head(&self.manifest))
            }
        }
    }

    /// Recomputes every sealed segment's head (the node id changed) and saves the manifest.
    fn rebuild_sealed_heads(&mut self) -> Result<(), LogError> {
        let mut head = LogHead::empty(&self.log.node_id);
        for i in 0..self.manifest.segments.len() {
            let e = self.view.sealed[i];
            head = self.log.head_through(&e, head)?;
            self.manifest.segments[i].head = head.clone();
        }
        self.log.layout.save_manifest(&self.manifest)?;
        Ok(())
    }

    /// `head` advanced over the lines up to `len`, their ids added to the record file;
    /// also returns how many ids were added.
    fn catch_up(&self, mut head: LogHead, len: u64) -> Result<(LogHead, u64), LogError> {
        let active = File::open(&self.log.log).ctx("open", &self.log.log)?;
        let pieces = scan::pieces(
            &self.log.layout,
            &self.view,
            Some(active),
            head.log_len,
            len,
        );
        let mut scan = LogScan::new(pieces, head.log_len, self.log.log.clone());
        let flush = |records: &mut Vec<(String, u64)>| -> Result<u64, LogError> {
            let refs: Vec<(&str, u64)> = records.iter().map(|(id, o)| (id.as_str(), *o)).collect();
            IdIndex::append_to(&self.log.ids, &refs)?;
            let n = records.len() as u64;
            records.clear();
            Ok(n)
        };
        let mut records: Vec<(String, u64)> = Vec::new();
        let mut reindexed = 0;
        while let Some((offset, parsed)) = scan.next().transpose()? {
            let end = scan.offset();
            match parsed {
                Ok(env) => {
                    records.push((env.event_id.clone(), offset));
                    head.account(&env, end);
                }
                Err(e) => {
                    tracing::warn!(log = %self.log.log.display(), offset, error = %e, "skipping a line that is not an event");
                    head.bad_lines += 1;
                    head.log_len = end;
                }
            }
            if records.len() >= REINDEX_BATCH {
                reindexed += flush(&mut records)?;
            }
        }
        reindexed += flush(&mut records)?;
        Ok((head, reindexed))
    }
}

#[cfg(test)]
mod tests;
