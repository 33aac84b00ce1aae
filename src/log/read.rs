//! The lock-free read API: scans forward and backward, single reads, counts, the end offset.

use super::append::Pending;
use super::scan::{self, LogScan};
use super::segments::{self, Extent, SealedSegment};
use super::{EventLog, LogError, LogHead, RevScan};
use crate::event::Envelope;
use crate::fsutil::read_json;

impl EventLog {
    /// Reads events from global byte `from` up to byte `to` (a committed length from `head()`).
    ///
    /// The range may span sealed segments and the active file.
    pub fn scan(&self, from: u64, to: u64) -> Result<LogScan, LogError> {
        let (view, active) = self.layout.open_for_read()?;
        let pieces = scan::pieces(&self.layout, &view, active, from, to);
        Ok(LogScan::new(pieces, from, self.log.clone()))
    }

    /// Reads the newest events first, from the committed end `to` back to the start.
    pub fn scan_rev(&self, to: u64) -> Result<RevScan, LogError> {
        self.scan_rev_from(0, to)
    }

    /// Reads the one event stored at global `offset`.
    pub fn read_at(&self, offset: u64) -> Result<Option<Envelope>, LogError> {
        let mut scan = self.scan(offset, u64::MAX)?;
        Ok(scan.next().transpose()?.and_then(|(_, r)| r.ok()))
    }

    /// Complete lines between global offsets `from` and `to` (e.g. events behind a cursor).
    pub fn count_lines(&self, from: u64, to: u64) -> Result<u64, LogError> {
        let mut scan = self.scan(from, to)?;
        let mut n = 0;
        while scan.next_raw()?.is_some() {
            n += 1;
        }
        Ok(n)
    }

    /// The summary of the log, computed without the lock and without writing anything,
    /// for readers (status, listings): it works on a full disk and a read-only root.
    ///
    /// It starts from `log_head.json` when that lies within the log and is for this
    /// node (else from the head of the last sealed segment) and counts the complete
    /// lines after it. A batch still being written is left out; a crashed writer's
    /// leftovers are repaired by the next writer, not here.
    pub fn read_head(&self) -> Result<LogHead, LogError> {
        let manifest = self.layout.load_manifest()?;
        let sealed = self.last_sealed_head(&manifest);
        let end = self.end_offset()?;
        let stored: Option<LogHead> = read_json(&self.head).unwrap_or(None);
        let mut head = match stored {
            Some(h)
                if h.node_id == self.node_id && h.log_len >= sealed.log_len && h.log_len <= end =>
            {
                h
            }
            _ => sealed,
        };
        let mut to = end;
        if let Some(p) = read_json::<Pending>(&self.pending).unwrap_or(None)
            && p.start >= head.log_len
            && p.start < to
            && to < p.end
        {
            to = p.start;
        }
        let mut scan = self.scan(head.log_len, to)?;
        while let Some((_, parsed)) = scan.next().transpose()? {
            let line_end = scan.offset();
            match parsed {
                Ok(env) => head.account(&env, line_end),
                Err(_) => {
                    head.bad_lines += 1;
                    head.log_len = line_end;
                }
            }
        }
        Ok(head)
    }

    /// Global offset of the end of the bytes on disk, without the lock (for change polling).
    ///
    /// It may include an append still being written; read up to `head().log_len`.
    pub fn end_offset(&self) -> Result<u64, LogError> {
        let (view, active) = self.layout.open_for_read()?;
        let len = match active {
            Some(f) => segments::file_len(&f, &self.log)?,
            None => 0,
        };
        Ok(view.active_base + len)
    }

    /// Reads every line of sealed segment `e`, whether or not the manifest lists it yet.
    pub(super) fn scan_sealed(&self, e: &Extent) -> LogScan {
        let path = self.layout.segment(e.number);
        let piece = scan::Piece {
            path: path.clone(),
            file: None,
            base: e.base,
            start: 0,
            end: e.bytes,
        };
        LogScan::new(vec![piece], e.base, path)
    }

    /// The sealed segments as recorded in the manifest, oldest first.
    pub fn sealed_segments(&self) -> Result<Vec<SealedSegment>, LogError> {
        Ok(self.layout.load_manifest()?.segments)
    }
}
