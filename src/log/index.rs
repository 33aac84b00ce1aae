//! `log_ids.bin`: fixed-size records mapping the ids of the active segment to their global offsets.

use crate::fsutil::{IoContext, PathError};
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Bytes of one record: 16 id bytes and a little-endian u64 offset.
pub const RECORD: usize = 24;

/// In-memory id -> offset map backed by an append-only record file.
#[derive(Debug)]
pub struct IdIndex {
    path: PathBuf,
    map: HashMap<[u8; 16], u64>,
}

/// The 16 bytes behind `evt_` + 32 hex digits; `None` for anything else.
pub fn id_bytes(event_id: &str) -> Option<[u8; 16]> {
    let hex = event_id.strip_prefix("evt_")?;
    let mut out = [0u8; 16];
    hex::decode_to_slice(hex, &mut out).ok()?;
    Some(out)
}

fn decode(bytes: &[u8]) -> impl Iterator<Item = ([u8; 16], u64)> + '_ {
    bytes.chunks_exact(RECORD).map(|rec| {
        let mut id = [0u8; 16];
        id.copy_from_slice(&rec[..16]);
        let mut off = [0u8; 8];
        off.copy_from_slice(&rec[16..]);
        (id, u64::from_le_bytes(off))
    })
}

impl IdIndex {
    /// Loads every whole record at or after `min_offset` (the active segment's base).
    ///
    /// A torn trailing record (crash mid-append) is cut off. Records of an older
    /// segment, left behind by a crash just after a seal, are skipped.
    pub fn load(path: &Path, min_offset: u64) -> Result<IdIndex, PathError> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).ctx("read", path),
        };
        let whole = bytes.len() / RECORD * RECORD;
        if whole != bytes.len() {
            OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| f.set_len(whole as u64))
                .ctx("truncate", path)?;
        }
        let mut map = HashMap::with_capacity(whole / RECORD);
        for (id, off) in decode(&bytes[..whole]) {
            if off >= min_offset {
                map.insert(id, off);
            }
        }
        Ok(IdIndex {
            path: path.to_path_buf(),
            map,
        })
    }

    /// An empty index backed by `path` (the file is left as it is).
    pub fn empty(path: &Path) -> IdIndex {
        IdIndex {
            path: path.to_path_buf(),
            map: HashMap::new(),
        }
    }

    /// Empties the index file (before a rebuild from the log).
    pub fn reset(path: &Path) -> Result<(), PathError> {
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).ctx("remove", path),
        }
    }

    /// Offset of an event id.
    pub fn get(&self, event_id: &str) -> Option<u64> {
        id_bytes(event_id).and_then(|k| self.get_key(&k))
    }

    /// Offset of an id given as its 16 bytes.
    pub fn get_key(&self, key: &[u8; 16]) -> Option<u64> {
        self.map.get(key).copied()
    }

    /// Offset of `key` found by reading the record file once, without building the map.
    ///
    /// A few lookups (one CLI publish) cost one sequential read of a file bounded
    /// by the segment size instead of a map of every record; the latest record wins.
    pub fn scan_file(
        path: &Path,
        key: &[u8; 16],
        min_offset: u64,
    ) -> Result<Option<u64>, PathError> {
        Ok(Self::scan_file_many(path, std::slice::from_ref(key), min_offset)?[0])
    }

    /// Offsets of many keys in one sequential read of the record file, in the order given.
    ///
    /// An import or a dispatch batch checks all its ids in a single pass instead of
    /// building a map of every record: a 64 Ki-bit filter on the first two id
    /// bytes rejects almost every record before the sorted keys are searched, so
    /// the pass costs about as much as reading the file. The latest record wins.
    pub fn scan_file_many(
        path: &Path,
        keys: &[[u8; 16]],
        min_offset: u64,
    ) -> Result<Vec<Option<u64>>, PathError> {
        let mut found = vec![None; keys.len()];
        if keys.is_empty() {
            return Ok(found);
        }
        let mut f = match fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
            Err(e) => return Err(e).ctx("open", path),
        };
        let mut sorted: Vec<([u8; 16], usize)> = keys.iter().copied().zip(0..).collect();
        sorted.sort_unstable();
        let mut filter = vec![0u64; 1024];
        let bucket = |id: &[u8; 16]| usize::from(u16::from_be_bytes([id[0], id[1]]));
        for (k, _) in &sorted {
            let b = bucket(k);
            filter[b / 64] |= 1 << (b % 64);
        }
        let mut buf = vec![0u8; RECORD * 43_690];
        let mut filled = 0;
        loop {
            let n = std::io::Read::read(&mut f, &mut buf[filled..]).ctx("read", path)?;
            filled += n;
            let whole = filled / RECORD * RECORD;
            for (id, off) in decode(&buf[..whole]) {
                let b = bucket(&id);
                if filter[b / 64] & (1 << (b % 64)) == 0 || off < min_offset {
                    continue;
                }
                // The same key may be asked for twice; every copy gets the offset.
                let first = sorted.partition_point(|(k, _)| *k < id);
                for (_, i) in sorted[first..].iter().take_while(|(k, _)| *k == id) {
                    found[*i] = Some(off);
                }
            }
            buf.copy_within(whole..filled, 0);
            filled -= whole;
            if n == 0 {
                return Ok(found);
            }
        }
    }

    /// Records of the file whose offsets lie in `from..to`, in file order (whole records only).
    pub fn records_in(path: &Path, from: u64, to: u64) -> Result<Vec<([u8; 16], u64)>, PathError> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).ctx("read", path),
        };
        let whole = bytes.len() / RECORD * RECORD;
        Ok(decode(&bytes[..whole])
            .filter(|(_, off)| (from..to).contains(off))
            .collect())
    }

    /// Number of ids held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it holds no id.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Adds a record to the map only (its line is already in the file).
    pub fn remember(&mut self, event_id: &str, offset: u64) {
        if let Some(k) = id_bytes(event_id) {
            self.map.insert(k, offset);
        }
    }

    /// Adds records to the file and the map.
    pub fn append(&mut self, records: &[(&str, u64)]) -> Result<(), PathError> {
        Self::append_to(&self.path, records)?;
        for (id, off) in records {
            if let Some(k) = id_bytes(id) {
                self.map.insert(k, *off);
            }
        }
        Ok(())
    }

    /// Appends records to the index file without loading it.
    pub fn append_to(path: &Path, records: &[(&str, u64)]) -> Result<(), PathError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(records.len() * RECORD);
        for (id, off) in records {
            if let Some(k) = id_bytes(id) {
                buf.extend_from_slice(&k);
                buf.extend_from_slice(&off.to_le_bytes());
            }
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ctx("open", path)?;
        f.write_all(&buf).ctx("append", path)
    }
}

#[cfg(test)]
mod tests;
