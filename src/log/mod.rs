//! The node's append-only NDJSON event log: locked appends, crash recovery, segments, scans.
//!
//! The log is a sequence of files in one global byte-offset space: sealed,
//! immutable segments under `segments/` and the active `events.ndjson` (see
//! [`segments`]). Those files are the only source of truth. Beside them live
//! derived files that make every common operation O(new data) or O(log n):
//! `log_head.json` (length, counts, the node's last own seq), `log_ids.bin`
//! (ids of the active segment -> offset) and one sorted `.idx` per sealed
//! segment. All are rebuilt from the log whenever they disagree with it; the
//! log itself is fsynced before an append returns.

mod index;
mod reverse;
mod scan;
pub mod segments;
pub mod sorted;

pub use index::{IdIndex, id_bytes as index_key};
pub use reverse::RevScan;
pub use scan::LogScan;
pub use segments::{DEFAULT_SEGMENT_BYTES, SEGMENT_BYTES_ENV};

use crate::event::Envelope;
use crate::fsutil::{IoContext, PathError, read_json, sync_dir, write_atomic};
use crate::paths::NodePaths;
use segments::{Extent, Layout, Manifest, SealedSegment, View};
use serde::{Deserialize, Serialize};
use sorted::SortedIndex;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

/// Errors of the event log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An I/O failure on a named file.
    #[error(transparent)]
    Io(#[from] PathError),
    /// An own event was appended out of sequence (a bug or a concurrent writer without the lock).
    #[error("{path}: own event {event_id} has seq {seq}, expected {expected}")]
    Sequence {
        path: PathBuf,
        event_id: String,
        seq: u64,
        expected: u64,
    },
    /// An index entry points at a line that is not the event it names.
    #[error("{path}: index entry for {event_id} at offset {offset} is stale")]
    StaleIndex {
        path: PathBuf,
        event_id: String,
        offset: u64,
    },
    /// The segment manifest disagrees with itself or with the segment files.
    #[error("{path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
    /// Segments kept being sealed while a reader tried to open the log.
    #[error("{path}: the log was sealed repeatedly while opening it; try again")]
    Busy { path: PathBuf },
    /// A seal failed half-way in this process; the log must be reopened (recovery completes it).
    #[error("{path}: sealing a segment failed ({reason}); reopen the log")]
    Poisoned { path: PathBuf, reason: String },
}

/// Summary of the log, kept in `log_head.json` so status and publish are O(1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogHead {
    /// Bytes of the log this summary covers (global offset; always a line boundary).
    pub log_len: u64,
    /// Events in the log.
    pub event_count: u64,
    /// Events emitted by this node.
    pub own_count: u64,
    /// Highest seq of this node's own events.
    pub own_seq: u64,
    /// Id of this node's latest own event.
    pub own_prev: String,
    /// Timestamp of this node's latest own event (timestamps only move forward).
    pub last_own_timestamp: String,
    /// Lines that are not events (skipped, never read as events).
    pub bad_lines: u64,
    /// The node these own counts are for.
    pub node_id: String,
}

impl LogHead {
    fn empty(node_id: &str) -> LogHead {
        LogHead {
            node_id: node_id.to_string(),
            ..LogHead::default()
        }
    }

    fn account(&mut self, env: &Envelope, end: u64) {
        self.event_count += 1;
        if env.node_id == self.node_id {
            self.own_count += 1;
            if env.seq > self.own_seq {
                self.own_seq = env.seq;
                self.own_prev = env.event_id.clone();
            }
            if env.timestamp > self.last_own_timestamp {
                self.last_own_timestamp = env.timestamp.clone();
            }
        }
        self.log_len = end;
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    start: u64,
    end: u64,
}

/// What recovery found and set aside when the log was opened.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Recovery {
    /// Bytes of a torn last line moved to quarantine.
    pub torn_bytes: u64,
    /// Bytes of an interrupted multi-line append rolled back into quarantine.
    pub rolled_back_bytes: u64,
    /// Whether the derived head/index had to be rebuilt or caught up.
    pub reindexed_events: u64,
    /// Segments whose seal was interrupted after the rename and completed now.
    pub completed_seals: u64,
}

/// Handle on a node's event log.
#[derive(Debug, Clone)]
pub struct EventLog {
    log: PathBuf,
    layout: Layout,
    lock: PathBuf,
    head: PathBuf,
    ids: PathBuf,
    pending: PathBuf,
    quarantine: PathBuf,
    node_id: String,
    segment_bytes: u64,
}

/// The seal threshold: `GITMESH_LOG_SEGMENT_BYTES` when set to a positive integer, else the default.
pub fn segment_bytes_from_env() -> u64 {
    std::env::var(SEGMENT_BYTES_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_SEGMENT_BYTES)
}

impl EventLog {
    /// The log of the node root `paths`, whose own events are those of `node_id`.
    pub fn new(paths: &NodePaths, node_id: &str) -> EventLog {
        let log = paths.events_log();
        let state = paths
            .log_head()
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default();
        EventLog {
            layout: Layout::new(&log),
            log,
            lock: state.join("log.lock"),
            head: paths.log_head(),
            ids: paths.log_ids(),
            pending: paths.append_pending(),
            quarantine: paths.quarantine(),
            node_id: node_id.to_string(),
            segment_bytes: segment_bytes_from_env(),
        }
    }

    /// The same log sealing its active file once it reaches `bytes` (at least 1).
    pub fn with_segment_bytes(mut self, bytes: u64) -> EventLog {
        self.segment_bytes = bytes.max(1);
        self
    }

    /// Size at which the active file is sealed into a segment.
    pub fn segment_bytes(&self) -> u64 {
        self.segment_bytes
    }

    /// Path of the active log file (the newest part of the log only; offsets are global).
    pub fn path(&self) -> &PathBuf {
        &self.log
    }

    /// Paths of the segment directory, manifest and segment files.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Takes the exclusive lock, repairs a crashed append or seal, and brings the head up to date.
    pub fn writer(&self) -> Result<LogWriter<'_>, LogError> {
        for dir in [self.log.parent(), self.lock.parent(), self.head.parent()]
            .into_iter()
            .flatten()
        {
            fs::create_dir_all(dir).ctx("create directory", dir)?;
        }
        // The lock lives in its own file: the active log file is renamed when sealed.
        let lock = crate::fsutil::open_lock_file(&self.lock)?;
        lock.lock().ctx("lock", &self.lock)?;
        let mut recovery = Recovery::default();
        let mut manifest = self.layout.load_manifest()?;
        let mut view = self.layout.view(&manifest)?;
        if view.unlisted > 0 {
            recovery.completed_seals = self.complete_seals(&mut manifest, &view)?;
            view = self.layout.view(&manifest)?;
        }
        self.check_sealed_sizes(&manifest)?;
        let file = self.open_active()?;
        let sealed_idx = (0..view.sealed.len()).map(|_| None).collect();
        let mut w = LogWriter {
            log: self,
            _lock: lock,
            file,
            head: LogHead::default(),
            index: None,
            recovery,
            manifest,
            view,
            sealed_idx,
            poisoned: None,
            file_probes: 0,
        };
        w.recover()?;
        Ok(w)
    }

    fn open_active(&self) -> Result<File, LogError> {
        Ok(OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.log)
            .ctx("open", &self.log)?)
    }

    fn check_sealed_sizes(&self, m: &Manifest) -> Result<(), LogError> {
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
    fn complete_seals(&self, m: &mut Manifest, view: &View) -> Result<u64, LogError> {
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

    fn last_sealed_head(&self, m: &Manifest) -> LogHead {
        m.segments
            .last()
            .map_or_else(|| LogHead::empty(&self.node_id), |s| s.head.clone())
    }

    /// `prev` advanced over every line of sealed segment `e`.
    fn head_through(&self, e: &Extent, mut head: LogHead) -> Result<LogHead, LogError> {
        let piece = scan::Piece {
            path: self.layout.segment(e.number),
            file: None,
            base: e.base,
            start: 0,
            end: e.bytes,
        };
        let mut scan = LogScan::new(vec![piece], e.base, self.layout.segment(e.number));
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

    /// Writes the sorted index of a sealed segment from `log_ids.bin` when it covers
    /// exactly `events` records of the segment, else from a scan of the segment.
    fn write_sealed_index(&self, e: &Extent, events: u64) -> Result<(), LogError> {
        let end = e.base + e.bytes;
        let mut records = IdIndex::records_in(&self.ids, e.base, end)?;
        if records.len() as u64 != events {
            records.clear();
            let piece = scan::Piece {
                path: self.layout.segment(e.number),
                file: None,
                base: e.base,
                start: 0,
                end: e.bytes,
            };
            let mut scan = LogScan::new(vec![piece], e.base, self.layout.segment(e.number));
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

    /// The summary of the log, caught up with any appends made since it was written.
    pub fn head(&self) -> Result<LogHead, LogError> {
        Ok(self.writer()?.head.clone())
    }

    /// Takes the lock again after `LogWriter::park`, reusing the loaded id index.
    ///
    /// Ids appended by others while the lock was free are added to the index
    /// from the log itself (cost proportional to what they appended). If the
    /// active segment was sealed meanwhile, or the log shrank (a repair), the
    /// index is dropped and reloaded when needed.
    pub fn unpark(&self, parked: Parked) -> Result<LogWriter<'_>, LogError> {
        let mut w = self.writer()?;
        let Some(mut index) = parked.index else {
            return Ok(w);
        };
        let now = w.head.log_len;
        if now < parked.log_len
            || w.head.node_id != parked.node_id
            || w.view.active_base != parked.active_base
        {
            return Ok(w);
        }
        if now > parked.log_len {
            let mut scan = self.scan(parked.log_len, now)?;
            while let Some(item) = scan.next().transpose()? {
                if let (offset, Ok(env)) = item {
                    index.remember(&env.event_id, offset);
                }
            }
        }
        w.index = Some(index);
        Ok(w)
    }

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

    /// The sealed segments as recorded in the manifest, oldest first.
    pub fn sealed_segments(&self) -> Result<Vec<SealedSegment>, LogError> {
        Ok(self.layout.load_manifest()?.segments)
    }
}

/// Exclusive, recovered access to the log for appending.
pub struct LogWriter<'a> {
    log: &'a EventLog,
    _lock: File,
    file: File,
    head: LogHead,
    index: Option<IdIndex>,
    recovery: Recovery,
    manifest: Manifest,
    view: View,
    sealed_idx: Vec<Option<SortedIndex>>,
    poisoned: Option<String>,
    file_probes: u32,
}

/// Lookups a writer answers by reading `log_ids.bin` before it builds the in-memory map.
///
/// Both cost time proportional to the active segment; building the map costs
/// about as much as 50 to 90 sequential reads of the file (measured). So a
/// writer with a few lookups (a CLI publish) only reads the file, and one with
/// many (a keyed `--stdin` batch) builds the map once after 32 reads. Batches
/// that know all their ids up front use `lookup_many` instead: one read.
const FILE_PROBES: u32 = 32;

impl LogWriter<'_> {
    /// Releases the lock, keeping the loaded id index for `EventLog::unpark`.
    pub fn park(self) -> Parked {
        Parked {
            index: self.index,
            log_len: self.head.log_len,
            node_id: self.head.node_id,
            active_base: self.view.active_base,
        }
    }

    /// The summary as of now (covers every committed line).
    pub fn head(&self) -> &LogHead {
        &self.head
    }

    /// What recovery did when this writer was opened.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

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

    /// The next timestamp for an own event: now, or just after the last one if the clock is behind.
    pub fn next_own_timestamp(&self, now: chrono::DateTime<chrono::Utc>) -> String {
        let ts = crate::event::format_timestamp(now);
        if ts > self.head.last_own_timestamp {
            return ts;
        }
        match crate::event::parse_timestamp(&self.head.last_own_timestamp) {
            Some(last) => crate::event::format_timestamp(last + chrono::Duration::microseconds(1)),
            None => ts,
        }
    }

    /// Appends events durably (one write, one fsync) and returns their global offsets.
    ///
    /// Callers have already validated and deduplicated them. Own events must
    /// continue the node's seq chain. A batch of several lines is all-or-nothing:
    /// a marker written first lets the next opener roll back a partial write.
    /// When the active file reaches the segment size afterwards, it is sealed.
    pub fn append(&mut self, events: &[Envelope]) -> Result<Vec<u64>, LogError> {
        if let Some(reason) = &self.poisoned {
            return Err(LogError::Poisoned {
                path: self.log.log.clone(),
                reason: reason.clone(),
            });
        }
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let own = events.iter().filter(|e| e.node_id == self.head.node_id);
        for (expected, env) in (self.head.own_seq + 1..).zip(own) {
            if env.seq != expected {
                return Err(LogError::Sequence {
                    path: self.log.log.clone(),
                    event_id: env.event_id.clone(),
                    seq: env.seq,
                    expected,
                });
            }
        }
        let start = self.head.log_len;
        let mut buf = Vec::with_capacity(events.len() * 512);
        let mut ends = Vec::with_capacity(events.len());
        for env in events {
            serde_json::to_writer(&mut buf, env)
                .map_err(std::io::Error::other)
                .ctx("serialize", &self.log.log)?;
            buf.push(b'\n');
            ends.push(start + buf.len() as u64);
        }
        let end = start + buf.len() as u64;
        if events.len() > 1 {
            let marker = serde_json::to_vec(&Pending { start, end }).unwrap_or_default();
            write_atomic(&self.log.pending, &marker, true)?;
        }
        self.file.write_all(&buf).ctx("append", &self.log.log)?;
        self.file.sync_data().ctx("fsync", &self.log.log)?;
        let mut offsets = Vec::with_capacity(events.len());
        let mut line_start = start;
        let mut records = Vec::with_capacity(events.len());
        for (env, line_end) in events.iter().zip(ends) {
            offsets.push(line_start);
            records.push((env.event_id.as_str(), line_start));
            self.head.account(env, line_end);
            line_start = line_end;
        }
        // Appending to the record file does not need the map: load it only for lookups.
        match self.index.as_mut() {
            Some(index) => index.append(&records)?,
            None => IdIndex::append_to(&self.log.ids, &records)?,
        }
        self.save_head()?;
        if events.len() > 1 {
            fs::remove_file(&self.log.pending).ctx("remove", &self.log.pending)?;
        }
        if self.head.log_len - self.view.active_base >= self.log.segment_bytes
            && let Err(e) = self.seal()
        {
            // The events are durable; the next writer completes or retries the seal.
            tracing::warn!(log = %self.log.log.display(), error = %e, "sealing the log segment failed");
            self.poisoned = Some(e.to_string());
        }
        Ok(offsets)
    }

    /// Seals the active file into the next numbered segment (the lock is held).
    ///
    /// Order: rename of the active file (directories fsynced), sorted index
    /// (fsynced), manifest (atomic, fsynced), new empty active file, then the
    /// active record file is emptied. The rename is the commit point: a crash
    /// after it leaves a segment file the manifest does not list yet; readers
    /// already count it from its file and the next writer lists it and writes
    /// its index (see `complete_seals`).
    fn seal(&mut self) -> Result<(), LogError> {
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

    fn save_head(&self) -> Result<(), LogError> {
        let bytes = serde_json::to_vec(&self.head).unwrap_or_default();
        write_atomic(&self.log.head, &bytes, false)?;
        Ok(())
    }

    fn active_len(&self) -> Result<u64, LogError> {
        Ok(segments::file_len(&self.file, &self.log.log)?)
    }

    /// Moves global bytes `from..to` of the active file to quarantine and truncates it at `from`.
    fn quarantine_tail(&mut self, from: u64, to: u64, reason: &str) -> Result<u64, LogError> {
        let base = self.view.active_base;
        let q = &self.log.quarantine;
        fs::create_dir_all(q).ctx("create directory", q)?;
        let mut bytes = Vec::new();
        let mut f = File::open(&self.log.log).ctx("open", &self.log.log)?;
        f.seek(SeekFrom::Start(from - base))
            .ctx("seek", &self.log.log)?;
        f.take(to - from)
            .read_to_end(&mut bytes)
            .ctx("read", &self.log.log)?;
        let name = format!("log-{reason}-{from}-{}.ndjson", std::process::id());
        write_atomic(&q.join(&name), &bytes, true)?;
        let reason_file = q.join(format!("{name}.reason"));
        let text = format!(
            "{reason}: bytes {from}..{to} of the log ({} from byte {}) were not a complete append\n",
            self.log.log.display(),
            from - base
        );
        write_atomic(&reason_file, text.as_bytes(), true)?;
        self.file
            .set_len(from - base)
            .ctx("truncate", &self.log.log)?;
        self.file.sync_all().ctx("fsync", &self.log.log)?;
        tracing::warn!(log = %self.log.log.display(), from, to, reason, quarantined = %name, "repaired event log");
        Ok(to - from)
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

    fn recover(&mut self) -> Result<(), LogError> {
        let base = self.view.active_base;
        let mut len = base + self.active_len()?;
        if let Some(p) = read_json::<Pending>(&self.log.pending).unwrap_or(None) {
            if p.start >= base && len < p.end && len > p.start {
                self.recovery.rolled_back_bytes =
                    self.quarantine_tail(p.start, len, "incomplete-batch")?;
                len = p.start;
            }
            fs::remove_file(&self.log.pending).ctx("remove", &self.log.pending)?;
        }
        if len > base {
            let cut = base + reverse::last_line_end(&self.log.log, len - base)?;
            if cut < len {
                self.recovery.torn_bytes = self.quarantine_tail(cut, len, "torn-line")?;
                len = cut;
            }
        }
        let stored: Option<LogHead> = read_json(&self.log.head).unwrap_or(None);
        // The record file must hold a record per event of the active segment the
        // head covers; fewer means it was lost or cut (e.g. a power loss).
        let sealed_events = self
            .manifest
            .segments
            .last()
            .map_or(0, |s| s.events_through());
        let records = fs::metadata(&self.log.ids).map_or(0, |m| m.len() / index::RECORD as u64);
        let mut head = match stored {
            Some(h)
                if h.log_len >= base
                    && h.log_len <= len
                    && h.node_id == self.log.node_id
                    && records >= h.event_count.saturating_sub(sealed_events) =>
            {
                h
            }
            _ => {
                // Start over from the end of the sealed segments: at most one segment to rescan.
                IdIndex::reset(&self.log.ids)?;
                if self
                    .manifest
                    .segments
                    .last()
                    .is_some_and(|s| s.head.node_id != self.log.node_id)
                {
                    self.rebuild_sealed_heads()?;
                }
                self.log.last_sealed_head(&self.manifest)
            }
        };
        if head.log_len < len {
            let mut records: Vec<(String, u64)> = Vec::new();
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
                let refs: Vec<(&str, u64)> =
                    records.iter().map(|(id, o)| (id.as_str(), *o)).collect();
                IdIndex::append_to(&self.log.ids, &refs)?;
                let n = records.len() as u64;
                records.clear();
                Ok(n)
            };
            let mut reindexed = 0;
            while let Some(item) = scan.next().transpose()? {
                let (offset, parsed) = item;
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
                // Bounded memory while re-indexing a whole segment.
                if records.len() >= 65_536 {
                    reindexed += flush(&mut records)?;
                }
            }
            reindexed += flush(&mut records)?;
            self.recovery.reindexed_events = reindexed;
            self.head = head;
            self.save_head()?;
        } else {
            self.head = head;
        }
        Ok(())
    }
}

/// The id index of a writer whose lock was released (see `LogWriter::park`).
pub struct Parked {
    index: Option<IdIndex>,
    log_len: u64,
    node_id: String,
    active_base: u64,
}

#[cfg(test)]
mod park_tests;
