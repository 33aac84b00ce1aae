//! Sealing: turning the full active file into the next numbered, indexed, immutable segment.

use super::index::{IdIndex, id_bytes as index_key};
use super::segments::{Extent, Manifest, SealedSegment};
use super::sorted::SortedIndex;
use super::{EventLog, LogError, LogHead, LogWriter};
use crate::fsutil::{IoContext, sync_dir};
use std::fs;

impl EventLog {
    /// The head as of the end of the last sealed segment (an empty head when none is sealed).
    pub(super) fn last_sealed_head(&self, m: &Manifest) -> LogHead {
        m.segments
            .last()
            .map_or_else(|| LogHead::empty(&self.node_id), |s| s.head.clone())
    }

    /// Writes the sorted index of a sealed segment from `log_ids.bin` when it covers
    /// exactly `events` records of the segment, else from a scan of the segment.
    pub(super) fn write_sealed_index(&self, e: &Extent, events: u64) -> Result<(), LogError> {
        let end = e.base + e.bytes;
        let mut records = IdIndex::records_in(&self.ids, e.base, end)?;
        if records.len() as u64 != events {
            records.clear();
            let mut scan = self.scan_sealed(e);
            while let Some((off, parsed)) = scan.next().transpose()? {
                if let Ok(env) = parsed
                    && let Some(k) = index_key(&env.event_id)
                {
                    records.push((k, off));
                }
            }
        }
        SortedIndex::write(&self.layout.index(e.number), records, e.base, e.bytes)?;
        Ok(())
    }
}

impl LogWriter<'_> {
    /// Seals the active file into the next numbered segment (the lock is held).
    ///
    /// Order: rename of the active file (directories fsynced), sorted index
    /// (fsynced), manifest (atomic, fsynced), new empty active file, then the
    /// active record file is emptied. The rename is the commit point: a crash
    /// after it leaves a segment file the manifest does not list yet; readers
    /// already count it from its file and the next writer lists it and writes
    /// its index (see `complete_seals`).
    pub(super) fn seal(&mut self) -> Result<(), LogError> {
        let layout = &self.log.layout;
        let e = Extent {
            number: self.view.next_number(),
            base: self.view.active_base,
            bytes: self.head.log_len - self.view.active_base,
        };
        let prev = self.log.last_sealed_head(&self.manifest);
        let events = self.head.event_count - prev.event_count;
        fs::create_dir_all(&layout.dir).ctx("create directory", &layout.dir)?;
        let seg_path = layout.segment(e.number);
        fs::rename(&self.log.log, &seg_path).ctx("rename", &seg_path)?;
        sync_dir(&layout.dir)?;
        if let Some(parent) = self.log.log.parent() {
            sync_dir(parent)?;
        }
        self.log.write_sealed_index(&e, events)?;
        self.manifest.segments.push(SealedSegment {
            number: e.number,
            base: e.base,
            bytes: e.bytes,
            events,
            head: self.head.clone(),
        });
        layout.save_manifest(&self.manifest)?;
        self.file = self.log.open_active()?;
        if let Some(parent) = self.log.log.parent() {
            sync_dir(parent)?;
        }
        IdIndex::reset(&self.log.ids)?;
        self.index = Some(IdIndex::empty(&self.log.ids));
        self.view.sealed.push(e);
        self.view.active_base = e.base + e.bytes;
        self.sealed_idx.push(None);
        tracing::info!(segment = %seg_path.display(), bytes = e.bytes, events, "sealed a log segment");
        Ok(())
    }
}
