//! The node's append-only NDJSON event log: locked appends, crash recovery, scans.
//!
//! The log file is the only source of truth. Beside it live two derived files that
//! make every common operation O(new data): `log_head.json` (length, counts, the
//! node's last own seq) and `log_ids.bin` (event id -> byte offset). Both are
//! rebuilt from the log whenever they disagree with it, so they are written
//! without fsync; the log itself is fsynced before an append returns.

mod index;
mod reverse;

pub use index::{IdIndex, id_bytes as index_key};

use crate::event::Envelope;
use crate::fsutil::{IoContext, PathError, read_json, write_atomic};
use crate::paths::NodePaths;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
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
}

/// Summary of the log, kept in `log_head.json` so status and publish are O(1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogHead {
    /// Bytes of the log this summary covers (always a line boundary).
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
}

/// Handle on a node's event log.
#[derive(Debug, Clone)]
pub struct EventLog {
    log: PathBuf,
    head: PathBuf,
    ids: PathBuf,
    pending: PathBuf,
    quarantine: PathBuf,
    node_id: String,
}

impl EventLog {
    /// The log of the node root `paths`, whose own events are those of `node_id`.
    pub fn new(paths: &NodePaths, node_id: &str) -> EventLog {
        EventLog {
            log: paths.events_log(),
            head: paths.log_head(),
            ids: paths.log_ids(),
            pending: paths.append_pending(),
            quarantine: paths.quarantine(),
            node_id: node_id.to_string(),
        }
    }

    /// Path of the log file.
    pub fn path(&self) -> &PathBuf {
        &self.log
    }

    /// Takes the exclusive lock, repairs a crashed append, and brings the head up to date.
    pub fn writer(&self) -> Result<LogWriter<'_>, LogError> {
        if let Some(dir) = self.log.parent() {
            fs::create_dir_all(dir).ctx("create directory", dir)?;
        }
        if let Some(dir) = self.head.parent() {
            fs::create_dir_all(dir).ctx("create directory", dir)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.log)
            .ctx("open", &self.log)?;
        file.lock().ctx("lock", &self.log)?;
        let mut w = LogWriter {
            log: self,
            file,
            head: LogHead::default(),
            index: None,
            recovery: Recovery::default(),
        };
        w.recover()?;
        Ok(w)
    }

    /// The summary of the log, caught up with any appends made since it was written.
    pub fn head(&self) -> Result<LogHead, LogError> {
        Ok(self.writer()?.head.clone())
    }

    /// Takes the lock again after `LogWriter::park`, reusing the loaded id index.
    ///
    /// Ids appended by others while the lock was free are added to the index
    /// from the log itself (cost proportional to what they appended). If the
    /// log shrank (a repair), the index is dropped and reloaded when needed.
    pub fn unpark(&self, parked: Parked) -> Result<LogWriter<'_>, LogError> {
        let mut w = self.writer()?;
        let Some(mut index) = parked.index else {
            return Ok(w);
        };
        let now = w.head.log_len;
        if now < parked.log_len || w.head.node_id != parked.node_id {
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

    /// Reads events from byte `from` up to byte `to` (a committed length from `head()`).
    pub fn scan(&self, from: u64, to: u64) -> Result<LogScan, LogError> {
        let mut file = match File::open(&self.log) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(LogScan::empty(self.log.clone()));
            }
            Err(e) => {
                return Err(PathError {
                    op: "open",
                    path: self.log.clone(),
                    source: e,
                }
                .into());
            }
        };
        file.seek(SeekFrom::Start(from)).ctx("seek", &self.log)?;
        Ok(LogScan {
            reader: Some(BufReader::with_capacity(
                1 << 20,
                file.take(to.saturating_sub(from)),
            )),
            offset: from,
            buf: Vec::with_capacity(1024),
            path: self.log.clone(),
        })
    }

    /// Reads the newest events first, from the committed end `to` back to the start.
    pub fn scan_rev(&self, to: u64) -> Result<reverse::RevScan, LogError> {
        reverse::RevScan::open(&self.log, to)
    }

    /// Reads the one event stored at `offset`.
    pub fn read_at(&self, offset: u64) -> Result<Option<Envelope>, LogError> {
        let mut scan = self.scan(offset, u64::MAX)?;
        Ok(scan.next().transpose()?.and_then(|(_, r)| r.ok()))
    }
}

/// Exclusive, recovered access to the log for appending.
pub struct LogWriter<'a> {
    log: &'a EventLog,
    file: File,
    head: LogHead,
    index: Option<IdIndex>,
    recovery: Recovery,
}

impl LogWriter<'_> {
    /// The summary as of now (covers every committed line).
    pub fn head(&self) -> &LogHead {
        &self.head
    }

    /// Releases the lock, keeping the loaded id index for `EventLog::unpark`.
    pub fn park(self) -> Parked {
        Parked {
            index: self.index,
            log_len: self.head.log_len,
            node_id: self.head.node_id,
        }
    }

    /// What recovery did when this writer was opened.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    fn index(&mut self) -> Result<&mut IdIndex, LogError> {
        if self.index.is_none() {
            self.index = Some(IdIndex::load(&self.log.ids)?);
        }
        // Just set above when it was None.
        Ok(self.index.as_mut().unwrap_or_else(|| unreachable!()))
    }

    /// Byte offset of the event with this id, if the log holds it.
    pub fn lookup(&mut self, event_id: &str) -> Result<Option<u64>, LogError> {
        Ok(self.index()?.get(event_id))
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
        match self.log.read_at(offset)? {
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

    /// Appends events durably (one write, one fsync) and returns their offsets.
    ///
    /// Callers have already validated and deduplicated them. Own events must
    /// continue the node's seq chain. A batch of several lines is all-or-nothing:
    /// a marker written first lets the next opener roll back a partial write.
    pub fn append(&mut self, events: &[Envelope]) -> Result<Vec<u64>, LogError> {
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
        // Only a loaded index needs its map updated; otherwise the records just go to its file.
        match self.index.as_mut() {
            Some(index) => index.append(&records)?,
            None => IdIndex::append_to(&self.log.ids, &records)?,
        }
        self.save_head()?;
        if events.len() > 1 {
            fs::remove_file(&self.log.pending).ctx("remove", &self.log.pending)?;
        }
        Ok(offsets)
    }

    fn save_head(&self) -> Result<(), LogError> {
        let bytes = serde_json::to_vec(&self.head).unwrap_or_default();
        write_atomic(&self.log.head, &bytes, false)?;
        Ok(())
    }

    fn len(&self) -> Result<u64, LogError> {
        Ok(self.file.metadata().ctx("stat", &self.log.log)?.len())
    }

    fn quarantine_tail(&mut self, from: u64, to: u64, reason: &str) -> Result<u64, LogError> {
        let q = &self.log.quarantine;
        fs::create_dir_all(q).ctx("create directory", q)?;
        let mut bytes = Vec::new();
        let mut f = File::open(&self.log.log).ctx("open", &self.log.log)?;
        f.seek(SeekFrom::Start(from)).ctx("seek", &self.log.log)?;
        f.take(to - from)
            .read_to_end(&mut bytes)
            .ctx("read", &self.log.log)?;
        let name = format!("log-{reason}-{from}-{}.ndjson", std::process::id());
        write_atomic(&q.join(&name), &bytes, true)?;
        let reason_file = q.join(format!("{name}.reason"));
        let text = format!(
            "{reason}: bytes {from}..{to} of {} were not a complete append\n",
            self.log.log.display()
        );
        write_atomic(&reason_file, text.as_bytes(), true)?;
        self.file.set_len(from).ctx("truncate", &self.log.log)?;
        self.file.sync_all().ctx("fsync", &self.log.log)?;
        tracing::warn!(log = %self.log.log.display(), from, to, reason, quarantined = %name, "repaired event log");
        Ok(to - from)
    }

    fn recover(&mut self) -> Result<(), LogError> {
        let mut len = self.len()?;
        if let Some(p) = read_json::<Pending>(&self.log.pending).unwrap_or(None) {
            if len < p.end && len > p.start {
                self.recovery.rolled_back_bytes =
                    self.quarantine_tail(p.start, len, "incomplete-batch")?;
                len = p.start;
            }
            fs::remove_file(&self.log.pending).ctx("remove", &self.log.pending)?;
        }
        if len > 0 {
            let cut = reverse::last_line_end(&self.log.log, len)?;
            if cut < len {
                self.recovery.torn_bytes = self.quarantine_tail(cut, len, "torn-line")?;
                len = cut;
            }
        }
        let stored: Option<LogHead> = read_json(&self.log.head).unwrap_or(None);
        let mut head = match stored {
            Some(h) if h.log_len <= len && h.node_id == self.log.node_id => h,
            _ => {
                IdIndex::reset(&self.log.ids)?;
                LogHead {
                    node_id: self.log.node_id.clone(),
                    ..LogHead::default()
                }
            }
        };
        if head.log_len < len {
            let mut records: Vec<(String, u64)> = Vec::new();
            let mut scan = self.log.scan(head.log_len, len)?;
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
            }
            self.recovery.reindexed_events = records.len() as u64;
            let refs: Vec<(&str, u64)> = records.iter().map(|(id, o)| (id.as_str(), *o)).collect();
            IdIndex::append_to(&self.log.ids, &refs)?;
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
}

/// Forward iterator over `(offset, event)` pairs of a log range.
pub struct LogScan {
    reader: Option<BufReader<std::io::Take<File>>>,
    offset: u64,
    buf: Vec<u8>,
    path: PathBuf,
}

impl LogScan {
    fn empty(path: PathBuf) -> LogScan {
        LogScan {
            reader: None,
            offset: 0,
            buf: Vec::new(),
            path,
        }
    }

    /// Byte offset just after the last line returned.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next raw line (without its newline) and its offset; incomplete lines end the scan.
    pub fn next_raw(&mut self) -> Result<Option<(u64, &[u8])>, LogError> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(None);
        };
        self.buf.clear();
        let n = reader
            .read_until(b'\n', &mut self.buf)
            .ctx("read", &self.path)?;
        if n == 0 || self.buf.last() != Some(&b'\n') {
            return Ok(None);
        }
        let start = self.offset;
        self.offset += n as u64;
        Ok(Some((start, &self.buf[..n - 1])))
    }
}

impl Iterator for LogScan {
    type Item = Result<(u64, Result<Envelope, crate::event::EventError>), LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_raw() {
            Ok(Some((offset, line))) => Some(Ok((offset, Envelope::from_json_line(line)))),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

#[cfg(test)]
mod park_tests {
    use super::*;
    use crate::event::{IdForm, compute_id};

    fn env(node: &str, seq: u64, prev: &str, n: u64) -> Envelope {
        let mut e = Envelope {
            event_id: String::new(),
            timestamp: format!("2026-11-23T12:00:00.{n:06}Z"),
            topic: "t".into(),
            event_type: "e".into(),
            node_id: node.into(),
            source: "cli".into(),
            causation_id: String::new(),
            correlation_id: String::new(),
            seq,
            prev: prev.into(),
            payload: Default::default(),
            dedupe_key: None,
            handler: None,
            schema_version: None,
            sig: None,
        };
        e.event_id = compute_id(&e, IdForm::Plain).unwrap();
        e.correlation_id = e.event_id.clone();
        e
    }

    #[test]
    fn a_parked_index_catches_up_with_appends_made_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let paths = NodePaths::new(dir.path());
        let log = EventLog::new(&paths, "n1");
        let a = env("n1", 1, "", 1);
        let mut w = log.writer().unwrap();
        w.append(std::slice::from_ref(&a)).unwrap();
        assert!(w.contains(&a.event_id).unwrap());
        let parked = w.park();
        // Someone else appends while the lock is free.
        let b = env("peer", 7, "", 2);
        log.writer()
            .unwrap()
            .append(std::slice::from_ref(&b))
            .unwrap();
        let mut w = log.unpark(parked).unwrap();
        assert!(w.contains(&a.event_id).unwrap());
        assert!(w.contains(&b.event_id).unwrap());
        assert_eq!(w.get(&b.event_id).unwrap().unwrap(), b);
        assert_eq!(w.head().event_count, 2);
    }
}
