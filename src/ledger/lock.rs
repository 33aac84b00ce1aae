//! The per-node sync lock: one sync, export or import at a time on a node root.

use super::LedgerError;
use crate::fsutil::IoContext;
use crate::paths::NodePaths;
use std::fs::{File, OpenOptions, TryLockError};
use std::time::{Duration, Instant};

/// Proof that the caller holds the node's sync lock; released on drop.
#[derive(Debug)]
pub struct SyncLock {
    _file: File,
}

impl SyncLock {
    /// Takes the lock, waiting up to `wait` for a running holder to finish.
    pub fn acquire(paths: &NodePaths, wait: Duration) -> Result<SyncLock, LedgerError> {
        let path = paths.sync_lock();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).ctx("create directory", dir)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .ctx("open", &path)?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(SyncLock { _file: file }),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => return Err(LedgerError::Busy { path }),
                Err(TryLockError::Error(e)) => return Err(e).ctx("lock", &path)?,
            }
        }
    }
}
