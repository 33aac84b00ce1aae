//! `segments/events-NNNNNN.idx`: the id index of one sealed segment, sorted and searched in place.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! 0   8 bytes  magic "GMIDX\0\0\x01"
//! 8   u64      global base offset of the segment it indexes
//! 16  u64      size in bytes of that segment
//! 24  u64      record count
//! 32  u32      fan-out bits b (0..=16), then u32 zero
//! 40  2^b x u64   fan-out: entry i = records whose id's first b bits are <= i
//! ..  count x (16-byte id, u64 global offset), sorted by id, one record per id
//! ```
//!
//! A lookup reads the two fan-out entries that bound the id's bucket (one
//! `pread`), then the bucket's records (one `pread` of about 8 records), so a
//! hit or a miss costs two small reads per segment whatever its size. Nothing
//! is loaded into memory, so memory does not grow with the history.

use crate::fsutil::{IoContext, PathError, write_atomic};
use std::cmp::Ordering;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// First bytes of every index file.
pub const MAGIC: [u8; 8] = *b"GMIDX\0\0\x01";
const HEADER: u64 = 40;
const RECORD: usize = 24;
/// Most records a bucket read fetches at once; larger ranges are bisected through the file first.
const WINDOW: u64 = 512;
/// Largest fan-out (2^16 buckets, 512 KiB).
const MAX_BITS: u32 = 16;
/// Records per bucket the fan-out aims for.
const PER_BUCKET: u64 = 8;

/// Fan-out bits for `count` records: the fewest that leave about `PER_BUCKET` records per bucket.
pub fn fanout_bits(count: u64) -> u32 {
    let mut bits = 0;
    while bits < MAX_BITS && (count >> bits) > PER_BUCKET {
        bits += 1;
    }
    bits
}

/// The bucket of an id: its first `bits` bits.
pub fn bucket(id: &[u8; 16], bits: u32) -> usize {
    if bits == 0 {
        return 0;
    }
    (u16::from_be_bytes([id[0], id[1]]) >> (16 - bits)) as usize
}

/// What an index file says about itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Header {
    /// Global base offset of the indexed segment.
    pub base: u64,
    /// Size of the indexed segment.
    pub bytes: u64,
    /// Records in the index.
    pub count: u64,
    /// Fan-out bits.
    pub bits: u32,
}

impl Header {
    fn records_at(&self) -> u64 {
        HEADER + (1u64 << self.bits) * 8
    }

    /// Size the whole file must have.
    pub fn file_len(&self) -> u64 {
        self.records_at() + self.count * RECORD as u64
    }

    fn parse(b: &[u8; HEADER as usize]) -> Option<Header> {
        if b[..8] != MAGIC {
            return None;
        }
        let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        let bits = u32::from_le_bytes(b[32..36].try_into().unwrap_or_default());
        (bits <= MAX_BITS).then_some(Header {
            base: u(8),
            bytes: u(16),
            count: u(24),
            bits,
        })
    }
}

/// Encodes records `(id, global offset)` in any order into an index file's bytes.
///
/// An id present twice keeps its highest offset, as a map filled in log order would.
pub fn encode(records: Vec<([u8; 16], u64)>, base: u64, bytes: u64) -> Vec<u8> {
    let bits = fanout_bits(records.len() as u64);
    encode_with_bits(records, base, bytes, bits)
}

/// [`encode`] with a chosen fan-out (0 = plain binary search); for measuring the fan-out.
pub fn encode_with_bits(
    mut records: Vec<([u8; 16], u64)>,
    base: u64,
    bytes: u64,
    bits: u32,
) -> Vec<u8> {
    records.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    records.dedup_by_key(|r| r.0);
    let count = records.len() as u64;
    let bits = bits.min(MAX_BITS);
    let h = Header {
        base,
        bytes,
        count,
        bits,
    };
    let mut out = Vec::with_capacity(h.file_len() as usize);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&base.to_le_bytes());
    out.extend_from_slice(&bytes.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    let mut fan = vec![0u64; 1 << bits];
    for (id, _) in &records {
        fan[bucket(id, bits)] += 1;
    }
    let mut total = 0;
    for f in &mut fan {
        total += *f;
        out.extend_from_slice(&total.to_le_bytes());
    }
    for (id, off) in &records {
        out.extend_from_slice(id);
        out.extend_from_slice(&off.to_le_bytes());
    }
    out
}

/// Binary search of `key` in a slice of whole sorted records.
pub fn search_records(buf: &[u8], key: &[u8; 16]) -> Option<u64> {
    let n = buf.len() / RECORD;
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = (lo + hi) / 2;
        let rec = &buf[mid * RECORD..(mid + 1) * RECORD];
        match rec[..16].cmp(key) {
            Ordering::Equal => {
                return Some(u64::from_le_bytes(rec[16..].try_into().unwrap_or_default()));
            }
            Ordering::Less => lo = mid + 1,
            Ordering::Greater => hi = mid,
        }
    }
    None
}

/// An open index file of one sealed segment.
#[derive(Debug)]
pub struct SortedIndex {
    file: File,
    path: PathBuf,
    header: Header,
}

impl SortedIndex {
    /// Writes an index file durably (temp file, fsync, rename).
    pub fn write(
        path: &Path,
        records: Vec<([u8; 16], u64)>,
        base: u64,
        bytes: u64,
    ) -> Result<(), PathError> {
        write_atomic(path, &encode(records, base, bytes), true)
    }

    /// Opens the index of the segment at `base` of `bytes`; `None` if it is missing or not for that segment.
    pub fn open(path: &Path, base: u64, bytes: u64) -> Result<Option<SortedIndex>, PathError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).ctx("open", path),
        };
        let len = file.metadata().ctx("stat", path)?.len();
        if len < HEADER {
            return Ok(None);
        }
        let mut b = [0u8; HEADER as usize];
        file.read_exact_at(&mut b, 0).ctx("read", path)?;
        let Some(header) = Header::parse(&b) else {
            return Ok(None);
        };
        if header.base != base || header.bytes != bytes || header.file_len() != len {
            return Ok(None);
        }
        Ok(Some(SortedIndex {
            file,
            path: path.to_path_buf(),
            header,
        }))
    }

    /// What the file says about itself.
    pub fn header(&self) -> Header {
        self.header
    }

    fn read(&self, buf: &mut [u8], at: u64) -> Result<(), PathError> {
        self.file.read_exact_at(buf, at).ctx("read", &self.path)
    }

    /// Global offset of the event with this id, if the segment holds it.
    pub fn get(&self, key: &[u8; 16]) -> Result<Option<u64>, PathError> {
        self.get_windowed(key, WINDOW)
    }

    fn get_windowed(&self, key: &[u8; 16], window: u64) -> Result<Option<u64>, PathError> {
        let h = self.header;
        if h.count == 0 {
            return Ok(None);
        }
        let b = bucket(key, h.bits) as u64;
        let (mut lo, mut hi) = if b == 0 {
            let mut e = [0u8; 8];
            self.read(&mut e, HEADER)?;
            (0, u64::from_le_bytes(e))
        } else {
            let mut e = [0u8; 16];
            self.read(&mut e, HEADER + (b - 1) * 8)?;
            let (a, z) = e.split_at(8);
            (
                u64::from_le_bytes(a.try_into().unwrap_or_default()),
                u64::from_le_bytes(z.try_into().unwrap_or_default()),
            )
        };
        hi = hi.min(h.count);
        let at = h.records_at();
        let mut rec = [0u8; RECORD];
        while hi.saturating_sub(lo) > window.max(1) {
            let mid = lo + (hi - lo) / 2;
            self.read(&mut rec, at + mid * RECORD as u64)?;
            match rec[..16].cmp(key) {
                Ordering::Equal => {
                    return Ok(Some(u64::from_le_bytes(
                        rec[16..].try_into().unwrap_or_default(),
                    )));
                }
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
            }
        }
        if lo >= hi {
            return Ok(None);
        }
        let mut buf = vec![0u8; ((hi - lo) as usize) * RECORD];
        self.read(&mut buf, at + lo * RECORD as u64)?;
        Ok(search_records(&buf, key))
    }
}

#[cfg(test)]
mod tests;
