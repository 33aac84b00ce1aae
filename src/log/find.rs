//! Lock-free positioning for readers that resume: an id's offset through the indexes, line starts.

use super::index::{IdIndex, id_bytes as index_key};
use super::scan;
use super::segments::io_err;
use super::sorted::SortedIndex;
use super::{EventLog, LogError, RevScan};
use std::os::unix::fs::FileExt;

impl EventLog {
    /// Global offset of the event with this id, found without the lock and without writing.
    ///
    /// The active segment's `log_ids.bin` first, then each sealed segment's sorted
    /// index, newest first (two small reads each). A sealed segment whose index is
    /// missing or stale is scanned instead, so the cost stays one segment, not the
    /// history. The hit is checked against the line it points at; an index that
    /// disagrees with the log is reported, never trusted.
    pub fn find_id(&self, event_id: &str) -> Result<Option<u64>, LogError> {
        let Some(key) = index_key(event_id) else {
            return Ok(None);
        };
        let (view, _) = self.layout.open_for_read()?;
        let mut found = IdIndex::scan_file(&self.ids, &key, view.active_base)?;
        if found.is_none() {
            // The newest lines of the active file may not have reached `log_ids.bin`
            // yet (it is written after the fsync): read them, bounded by the segment.
            found = self.scan_for(event_id, view.active_base, u64::MAX)?;
        }
        if found.is_none() {
            for e in view.sealed.iter().rev() {
                let path = self.layout.index(e.number);
                found = match SortedIndex::open(&path, e.base, e.bytes)? {
                    Some(idx) => idx.get(&key)?,
                    None => self.scan_for(event_id, e.base, e.base + e.bytes)?,
                };
                if found.is_some() {
                    break;
                }
            }
        }
        let Some(offset) = found else { return Ok(None) };
        match self.read_at(offset)? {
            Some(env) if env.event_id == event_id => Ok(Some(offset)),
            _ => Err(LogError::StaleIndex {
                path: self.ids.clone(),
                event_id: event_id.to_string(),
                offset,
            }),
        }
    }

    /// Offset of `event_id` in the range `from..to`, by reading it.
    fn scan_for(&self, event_id: &str, from: u64, to: u64) -> Result<Option<u64>, LogError> {
        let mut scan = self.scan(from, to)?;
        let needle = event_id.as_bytes();
        while let Some((off, line)) = scan.next_raw()? {
            // A cheap byte test first (the id may also be another event's cause); the parse decides.
            if line.windows(needle.len()).any(|w| w == needle)
                && let Ok(env) = crate::event::Envelope::from_json_line(line)
                && env.event_id == event_id
            {
                return Ok(Some(off));
            }
        }
        Ok(None)
    }

    /// Offset just after the line that starts at `offset` (`None` if no complete line starts there).
    pub fn line_end(&self, offset: u64) -> Result<Option<u64>, LogError> {
        let mut scan = self.scan(offset, u64::MAX)?;
        let complete = scan.next_raw()?.is_some();
        Ok(complete.then(|| scan.offset()))
    }

    /// Whether `offset` is where a line starts (0, or just after a newline).
    pub fn is_line_start(&self, offset: u64) -> Result<bool, LogError> {
        if offset == 0 {
            return Ok(true);
        }
        let (view, active) = self.layout.open_for_read()?;
        let at = offset - 1;
        let mut b = [0u8; 1];
        let read = match view.locate(at) {
            Some(i) => {
                let e = view.sealed[i];
                let path = self.layout.segment(e.number);
                let f = std::fs::File::open(&path).map_err(|err| io_err("open", &path, err))?;
                f.read_at(&mut b, at - e.base)
                    .map_err(|err| io_err("read", &path, err))?
            }
            None => match active {
                Some(f) => f
                    .read_at(&mut b, at - view.active_base)
                    .map_err(|err| io_err("read", &self.log, err))?,
                None => 0,
            },
        };
        Ok(read == 1 && b[0] == b'\n')
    }

    /// Reads the newest events first, from the committed end `to` back to `from`.
    pub fn scan_rev_from(&self, from: u64, to: u64) -> Result<RevScan, LogError> {
        let (view, active) = self.layout.open_for_read()?;
        Ok(RevScan::new(scan::pieces(
            &self.layout,
            &view,
            active,
            from,
            to,
        )))
    }
}
