//! Finding events by id: the active segment's records first, then each sealed segment's index.

use super::index::{IdIndex, id_bytes as index_key};
use super::scan::{self, LogScan};
use super::sorted::SortedIndex;
use super::{LogError, LogWriter};
use crate::event::Envelope;
use std::fs::File;

/// Lookups a writer answers by reading `log_ids.bin` before it builds the in-memory map.
///
/// Both cost time proportional to the active segment; building the map costs
/// about as much as 50 to 90 sequential reads of the file (measured). So a
/// writer with a few lookups (a CLI publish) only reads the file, and one with
/// many (a keyed `--stdin` batch) builds the map once after 32 reads. Batches
/// that know all their ids up front use `lookup_many` instead: one read.
const FILE_PROBES: u32 = 32;

impl LogWriter<'_> {
    fn index(&mut self) -> Result<&mut IdIndex, LogError> {
        if self.index.is_none() {
            self.index = Some(IdIndex::load(&self.log.ids, self.view.active_base)?);
        }
        // Just set above when it was None.
        Ok(self.index.as_mut().unwrap_or_else(|| unreachable!()))
    }

    fn sealed_index(&mut self, i: usize) -> Result<&SortedIndex, LogError> {
        if self.sealed_idx[i].is_none() {
            let e = self.view.sealed[i];
            let path = self.log.layout.index(e.number);
            let mut idx = SortedIndex::open(&path, e.base, e.bytes)?;
            if idx.is_none() {
                tracing::warn!(index = %path.display(), "rebuilding a missing or stale segment index");
                let events = self.manifest.segments.get(i).map_or(u64::MAX, |s| s.events);
                self.log.write_sealed_index(&e, events)?;
                idx = SortedIndex::open(&path, e.base, e.bytes)?;
            }
            let Some(idx) = idx else {
                return Err(LogError::Manifest {
                    path,
                    reason: "segment index unreadable right after it was rebuilt".into(),
                });
            };
            self.sealed_idx[i] = Some(idx);
        }
        // Just set above when it was None.
        Ok(self.sealed_idx[i]
            .as_ref()
            .unwrap_or_else(|| unreachable!()))
    }

    /// Global byte offset of the event with this id, if the log holds it.
    ///
    /// The active segment's records first (read straight from `log_ids.bin` for
    /// the first 32 lookups of a writer, then from a map built once), then each
    /// sealed segment's sorted index, newest first: two small reads per segment.
    pub fn lookup(&mut self, event_id: &str) -> Result<Option<u64>, LogError> {
        let Some(key) = index_key(event_id) else {
            return Ok(None);
        };
        let active = if self.index.is_none() && self.file_probes < FILE_PROBES {
            self.file_probes += 1;
            IdIndex::scan_file(&self.log.ids, &key, self.view.active_base)?
        } else {
            self.index()?.get_key(&key)
        };
        if let Some(off) = active {
            return Ok(Some(off));
        }
        for i in (0..self.view.sealed.len()).rev() {
            if let Some(off) = self.sealed_index(i)?.get(&key)? {
                return Ok(Some(off));
            }
        }
        Ok(None)
    }

    /// Global byte offsets of many ids at once, in the order given (`None`: not in the log).
    ///
    /// For a batch (an import file, a dispatch's follow-ups): the active segment's
    /// records are read in one pass (or taken from the map if a writer has
    /// built it), then only the ids still missing are searched in each sealed
    /// index. The cost follows the batch and the bounded active segment, never
    /// the history, and no map of the active segment is built.
    pub fn lookup_many(&mut self, event_ids: &[&str]) -> Result<Vec<Option<u64>>, LogError> {
        let keys: Vec<Option<[u8; 16]>> = event_ids.iter().map(|id| index_key(id)).collect();
        let mut found = vec![None; keys.len()];
        let wanted: Vec<(usize, [u8; 16])> = keys
            .iter()
            .enumerate()
            .filter_map(|(i, k)| k.map(|k| (i, k)))
            .collect();
        if wanted.is_empty() {
            return Ok(found);
        }
        if let Some(index) = &self.index {
            for (i, k) in &wanted {
                found[*i] = index.get_key(k);
            }
        } else {
            let just_keys: Vec<[u8; 16]> = wanted.iter().map(|(_, k)| *k).collect();
            let active = IdIndex::scan_file_many(&self.log.ids, &just_keys, self.view.active_base)?;
            for ((i, _), off) in wanted.iter().zip(active) {
                found[*i] = off;
            }
        }
        for s in (0..self.view.sealed.len()).rev() {
            let missing: Vec<(usize, [u8; 16])> = wanted
                .iter()
                .filter(|(i, _)| found[*i].is_none())
                .copied()
                .collect();
            if missing.is_empty() {
                break;
            }
            let idx = self.sealed_index(s)?;
            for (i, k) in missing {
                found[i] = idx.get(&k)?;
            }
        }
        Ok(found)
    }

    /// Whether the log already holds an event with this id.
    pub fn contains(&mut self, event_id: &str) -> Result<bool, LogError> {
        Ok(self.lookup(event_id)?.is_some())
    }

    /// The stored event with this id, if any.
    pub fn get(&mut self, event_id: &str) -> Result<Option<Envelope>, LogError> {
        let Some(offset) = self.lookup(event_id)? else {
            return Ok(None);
        };
        let active = File::open(&self.log.log).ok();
        let pieces = scan::pieces(&self.log.layout, &self.view, active, offset, u64::MAX);
        let mut scan = LogScan::new(pieces, offset, self.log.log.clone());
        match scan.next().transpose()?.and_then(|(_, r)| r.ok()) {
            Some(env) if env.event_id == event_id => Ok(Some(env)),
            _ => Err(LogError::StaleIndex {
                path: self.log.ids.clone(),
                event_id: event_id.to_string(),
                offset,
            }),
        }
    }
}
