//! The per-root daemon lock: `state/event_mesh/daemon.lock`, held for the daemon's life.
//!
//! The file also says who holds it (pid, start time, HTTP address) so operators and
//! scripts can find a running daemon's endpoints.

use super::DaemonError;
use crate::fsutil::IoContext;
use crate::lock::FileLock;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

/// What a running daemon writes into its lock file (defined with the health report that reads it).
pub use crate::ops::health::LockInfo;

/// How long a starting daemon waits for the lock (longer than any status probe holds it).
const PROBE_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// The held lock; released when dropped (or when the process exits, however it exits).
#[derive(Debug)]
pub struct DaemonLock {
    lock: FileLock,
}

impl DaemonLock {
    /// Takes the lock (waiting at most [`PROBE_GRACE`]), or fails with `Busy` naming the holder.
    pub fn acquire(path: &Path) -> Result<DaemonLock, DaemonError> {
        // A short wait: `mesh-status` probes this lock with a shared lock held for
        // microseconds, which must not make a starting daemon think it is taken.
        match FileLock::try_lock_for(path, PROBE_GRACE)? {
            Some(lock) => Ok(DaemonLock { lock }),
            None => {
                let holder = std::fs::read(path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<LockInfo>(&b).ok());
                Err(DaemonError::Busy {
                    path: path.to_path_buf(),
                    pid: holder.map(|h| h.pid),
                })
            }
        }
    }

    /// Replaces the lock file's contents with `info` (the lock stays held).
    pub fn write_info(&mut self, info: &LockInfo) -> Result<(), DaemonError> {
        let path = self.lock.path().to_path_buf();
        let bytes = serde_json::to_vec(info)
            .map_err(std::io::Error::other)
            .ctx("serialize", &path)?;
        let file = self.lock.file_mut();
        file.set_len(0).ctx("truncate", &path)?;
        file.seek(SeekFrom::Start(0)).ctx("seek", &path)?;
        file.write_all(&bytes).ctx("write", &path)?;
        file.write_all(b"\n").ctx("write", &path)?;
        Ok(())
    }

    /// Reads the holder's info from a lock file, if any is recorded.
    pub fn read_info(path: &Path) -> Option<LockInfo> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }
}

impl Drop for DaemonLock {
    fn drop(&mut self) {
        // Say nobody holds it any more; the lock itself goes with the file handle.
        let file = self.lock.file_mut();
        let _ = file.set_len(0);
        let _ = file.unlock();
    }
}

#[cfg(test)]
mod tests;
