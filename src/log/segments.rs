//! Sealed segments of the log: where they live, the manifest, and which file holds an offset.
//!
//! The log is a sequence of files laid end to end in one global offset space:
//! `segments/events-000001.ndjson`, `segments/events-000002.ndjson`, ... (sealed,
//! immutable), then the active `events.ndjson`. A segment's base is the sum of the
//! sizes of the segments before it, so an offset handed out once stays valid forever.

use super::{LogError, LogHead};
use crate::fsutil::{IoContext, PathError, read_json, write_json};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

/// Default size at which the active log is sealed into a segment (256 MiB).
pub const DEFAULT_SEGMENT_BYTES: u64 = 256 << 20;

/// Environment variable that overrides the seal threshold in bytes (meant for tests).
pub const SEGMENT_BYTES_ENV: &str = "GITMESH_LOG_SEGMENT_BYTES";

/// Version written into `segments.json`.
const MANIFEST_VERSION: u32 = 1;

/// Upper bound on segments found on disk beyond the manifest (each is one interrupted seal).
const MAX_UNLISTED: u32 = 64;

/// One sealed segment as recorded in `segments.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealedSegment {
    /// Its number (1-based, contiguous).
    pub number: u32,
    /// Global offset of its first byte.
    pub base: u64,
    /// Its size in bytes (it ends on a line boundary).
    pub bytes: u64,
    /// Events in it.
    pub events: u64,
    /// The log summary as of its last byte (so a lost `log_head.json` costs one segment of rescan).
    pub head: LogHead,
}

impl SealedSegment {
    /// Global offset just after its last byte.
    pub fn end(&self) -> u64 {
        self.base + self.bytes
    }

    /// Events in the log up to its end (this one and every older segment).
    pub fn events_through(&self) -> u64 {
        self.head.event_count
    }
}

/// The content of `segments.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version (1).
    pub version: u32,
    /// Sealed segments, oldest first.
    pub segments: Vec<SealedSegment>,
}

/// A sealed segment as a reader sees it: listed in the manifest or found on disk after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Extent {
    /// Segment number.
    pub number: u32,
    /// Global offset of its first byte.
    pub base: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// The files of a log and where each sits in the global offset space.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Sealed segments, oldest first.
    pub sealed: Vec<Extent>,
    /// Sealed segments found on disk but not (yet) listed in the manifest.
    pub unlisted: usize,
    /// Global offset of the first byte of the active file.
    pub active_base: u64,
}

impl View {
    /// Number the next sealed segment will get.
    pub fn next_number(&self) -> u32 {
        self.sealed.last().map_or(1, |s| s.number + 1)
    }

    /// Index into `sealed` of the segment holding `offset`, or `None` for the active file.
    pub fn locate(&self, offset: u64) -> Option<usize> {
        locate(&self.sealed, self.active_base, offset)
    }
}

/// Index of the sealed extent holding `offset` (binary search over bases); `None` when at or past `active_base`.
pub fn locate(sealed: &[Extent], active_base: u64, offset: u64) -> Option<usize> {
    if offset >= active_base || sealed.is_empty() {
        return None;
    }
    // First extent whose base is greater than offset, minus one.
    let i = sealed.partition_point(|s| s.base <= offset);
    Some(i.saturating_sub(1))
}

/// Checks that manifest entries are numbered 1.. and laid end to end from offset 0.
pub fn check_contiguous(segments: &[SealedSegment]) -> Result<(), String> {
    let mut base = 0;
    for (i, s) in segments.iter().enumerate() {
        let want = i as u32 + 1;
        if s.number != want {
            return Err(format!(
                "segment {} listed where {want} was expected",
                s.number
            ));
        }
        if s.base != base {
            return Err(format!(
                "segment {} starts at {} but the previous one ends at {base}",
                s.number, s.base
            ));
        }
        base = s.end();
    }
    Ok(())
}

/// Paths of the segment files of one log.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The active log file.
    pub active: PathBuf,
    /// Directory of sealed segments, their indexes and the manifest.
    pub dir: PathBuf,
    /// `segments.json`.
    pub manifest: PathBuf,
}

impl Layout {
    /// The layout of the log whose active file is `active`.
    pub fn new(active: &Path) -> Layout {
        let dir = active.parent().unwrap_or(Path::new(".")).join("segments");
        Layout {
            active: active.to_path_buf(),
            manifest: dir.join("segments.json"),
            dir,
        }
    }

    /// The sealed log file of segment `n`.
    pub fn segment(&self, n: u32) -> PathBuf {
        self.dir.join(format!("events-{n:06}.ndjson"))
    }

    /// The sorted id index of segment `n`.
    pub fn index(&self, n: u32) -> PathBuf {
        self.dir.join(format!("events-{n:06}.idx"))
    }

    /// Reads the manifest (empty when there is none) and checks it.
    pub fn load_manifest(&self) -> Result<Manifest, LogError> {
        let m: Manifest = read_json(&self.manifest)?.unwrap_or(Manifest {
            version: MANIFEST_VERSION,
            segments: Vec::new(),
        });
        if m.version != MANIFEST_VERSION {
            return Err(self.bad(format!("unsupported version {}", m.version)));
        }
        check_contiguous(&m.segments).map_err(|r| self.bad(r))?;
        Ok(m)
    }

    /// Replaces the manifest atomically and durably.
    pub fn save_manifest(&self, m: &Manifest) -> Result<(), LogError> {
        Ok(write_json(&self.manifest, m)?)
    }

    fn bad(&self, reason: String) -> LogError {
        LogError::Manifest {
            path: self.manifest.clone(),
            reason,
        }
    }

    /// The sealed extents: those of the manifest plus any sealed file found right after them.
    pub fn view(&self, m: &Manifest) -> Result<View, LogError> {
        let mut sealed: Vec<Extent> = m
            .segments
            .iter()
            .map(|s| Extent {
                number: s.number,
                base: s.base,
                bytes: s.bytes,
            })
            .collect();
        let mut end = m.segments.last().map_or(0, SealedSegment::end);
        let mut unlisted = 0;
        let first = m.segments.len() as u32 + 1;
        for n in first..first + MAX_UNLISTED {
            let path = self.segment(n);
            let bytes = match fs::metadata(&path) {
                Ok(md) => md.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) => return Err(io_err("stat", &path, e)),
            };
            sealed.push(Extent {
                number: n,
                base: end,
                bytes,
            });
            end += bytes;
            unlisted += 1;
        }
        Ok(View {
            sealed,
            unlisted,
            active_base: end,
        })
    }

    /// A consistent view plus the active file opened for reading (`None` when it does not exist).
    ///
    /// Readers take no lock. A seal renames the active file to the next segment
    /// number before a new active file is created, so if that segment number is
    /// still free after the active file was opened, the file and the view agree.
    pub fn open_for_read(&self) -> Result<(View, Option<File>), LogError> {
        for _ in 0..16 {
            let m = self.load_manifest()?;
            let view = self.view(&m)?;
            let file = match File::open(&self.active) {
                Ok(f) => Some(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(io_err("open", &self.active, e)),
            };
            if !self.segment(view.next_number()).exists() {
                return Ok((view, file));
            }
        }
        Err(LogError::Busy {
            path: self.active.clone(),
        })
    }
}

/// An I/O error on `path` as a log error.
pub fn io_err(op: &'static str, path: &Path, source: std::io::Error) -> LogError {
    PathError {
        op,
        path: path.to_path_buf(),
        source,
    }
    .into()
}

/// Size of an open file.
pub fn file_len(f: &File, path: &Path) -> Result<u64, PathError> {
    Ok(f.metadata().ctx("stat", path)?.len())
}

#[cfg(test)]
mod tests;
