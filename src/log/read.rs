//! The lock-free read API: scans forward and backward, single reads, counts, the end offset.

use super::scan::{self, LogScan};
use super::segments::{self, Extent, SealedSegment};
use super::{EventLog, LogError, RevScan};
use crate::event::Envelope;

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
        let (view, active) = self.layout.open_for_read()?;
        Ok(RevScan::new(scan::pieces(
            &self.layout,
            &view,
            active,
            0,
            to,
        )))
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
