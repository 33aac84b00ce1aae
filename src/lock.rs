//! Advisory file locks (`std::fs::File::lock`), the one shape behind every lock file of
//! a node root: the sync lock, the dispatch lock, the log's writer lock and the daemon
//! lock. The operating system releases a lock when its holder dies, however it dies,
//! so no lock file ever needs cleaning up by hand.

use crate::fsutil::{IoContext, PathError};
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often a bounded wait retries.
const POLL: Duration = Duration::from_millis(50);

/// An exclusive lock on a file, held until dropped.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Opens (creating it and its directory) and locks `path`, blocking until it is free.
    pub fn lock(path: &Path) -> Result<FileLock, PathError> {
        let file = crate::fsutil::open_lock_file(path)?;
        file.lock().ctx("lock", path)?;
        Ok(FileLock {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Opens (creating it and its directory) and locks `path`, polling for up to `wait`;
    /// `Ok(None)` when another holder still has it then.
    pub fn try_lock_for(path: &Path, wait: Duration) -> Result<Option<FileLock>, PathError> {
        let file = crate::fsutil::open_lock_file(path)?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(Some(FileLock {
                        file,
                        path: path.to_path_buf(),
                    }));
                }
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(POLL.min(deadline - Instant::now()));
                }
                Err(TryLockError::WouldBlock) => return Ok(None),
                Err(TryLockError::Error(e)) => return Err(e).ctx("lock", path),
            }
        }
    }

    /// Whether another open file holds a lock on `path`, without creating or writing
    /// anything (false when the file does not exist).
    pub fn is_held(path: &Path) -> Result<bool, PathError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e).ctx("open", path),
        };
        // A shared lock conflicts only with an exclusive holder; it goes with `file`.
        match file.try_lock_shared() {
            Ok(()) => Ok(false),
            Err(TryLockError::WouldBlock) => Ok(true),
            Err(TryLockError::Error(e)) => Err(e).ctx("lock", path),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open lock file, for holders that record who they are in it.
    pub fn file_mut(&mut self) -> &mut File {
        &mut self.file
    }
}

#[cfg(test)]
mod tests;
