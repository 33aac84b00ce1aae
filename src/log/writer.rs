//! The locked writer's lifecycle: taking the lock, parking and resuming it, the head it keeps.

use super::index::IdIndex;
use super::segments::{self, Manifest, View};
use super::sorted::SortedIndex;
use super::{EventLog, LogError, LogHead, Recovery};
use crate::fsutil::{IoContext, json_bytes, write_atomic};
use std::fs::{self, File};

/// Exclusive, recovered access to the log for appending.
pub struct LogWriter<'a> {
    pub(super) log: &'a EventLog,
    pub(super) _lock: crate::lock::FileLock,
    pub(super) file: File,
    pub(super) head: LogHead,
    pub(super) index: Option<IdIndex>,
    pub(super) recovery: Recovery,
    pub(super) manifest: Manifest,
    pub(super) view: View,
    pub(super) sealed_idx: Vec<Option<SortedIndex>>,
    pub(super) poisoned: Option<String>,
    pub(super) file_probes: u32,
}

/// The id index of a writer whose lock was released (see `LogWriter::park`).
pub struct Parked {
    index: Option<IdIndex>,
    log_len: u64,
    node_id: String,
    active_base: u64,
}

impl EventLog {
    /// Takes the exclusive lock, repairs a crashed append or seal, and brings the head up to date.
    pub fn writer(&self) -> Result<LogWriter<'_>, LogError> {
        for dir in [self.log.parent(), self.lock.parent(), self.head.parent()]
            .into_iter()
            .flatten()
        {
            fs::create_dir_all(dir).ctx("create directory", dir)?;
        }
        // The lock lives in its own file: the active log file is renamed when sealed.
        let lock = crate::lock::FileLock::lock(&self.lock)?;
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
}

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

    /// Writes the head to `log_head.json` (not fsynced: it is rebuilt from the log when lost).
    pub(super) fn save_head(&self) -> Result<(), LogError> {
        let bytes = json_bytes(&self.head, &self.log.head)?;
        write_atomic(&self.log.head, &bytes, false)?;
        Ok(())
    }

    /// Bytes in the active file.
    pub(super) fn active_len(&self) -> Result<u64, LogError> {
        Ok(segments::file_len(&self.file, &self.log.log)?)
    }
}

#[cfg(test)]
mod tests;
