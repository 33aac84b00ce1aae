//! The per-node sync lock: one sync, export or import at a time on a node root.

use super::LedgerError;
use crate::lock::FileLock;
use crate::paths::NodePaths;
use std::time::Duration;

/// Proof that the caller holds the node's sync lock; released on drop.
#[derive(Debug)]
pub struct SyncLock {
    _lock: FileLock,
}

impl SyncLock {
    /// Takes the lock, waiting up to `wait` for a running holder to finish.
    pub fn acquire(paths: &NodePaths, wait: Duration) -> Result<SyncLock, LedgerError> {
        let path = paths.sync_lock();
        let Some(lock) = FileLock::try_lock_for(&path, wait)? else {
            return Err(LedgerError::Busy { path });
        };
        clear_stale_ref_locks(&paths.ledger_repo());
        Ok(SyncLock { _lock: lock })
    }
}

/// How old a lock of a remote-tracking ref must be to count as abandoned. On
/// Linux git children die with gitmesh (`git::cli`), so under the sync lock no
/// git of ours can still be running and every lock is stale. Elsewhere the git
/// child of a killed sync may run on, holding the lock only for a moment.
#[cfg(target_os = "linux")]
const TRACKING_LOCK_STALE: Option<Duration> = None;
#[cfg(not(target_os = "linux"))]
const TRACKING_LOCK_STALE: Option<Duration> = Some(Duration::from_secs(30));

/// Removes ref lock files a killed holder left in the ledger repository.
///
/// Local branches are written only under the sync lock, which the caller now
/// holds, so any `refs/heads/**.lock` is abandoned (a process killed between
/// creating the lock and renaming it over the ref) and would fail every later
/// sync. A `refs/remotes/**.lock` is removed too (see [`TRACKING_LOCK_STALE`]).
fn clear_stale_ref_locks(repo: &std::path::Path) {
    sweep(&repo.join("refs").join("heads"), None);
    sweep(&repo.join("refs").join("remotes"), TRACKING_LOCK_STALE);
}

fn sweep(dir: &std::path::Path, min_age: Option<Duration>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            sweep(&path, min_age);
        } else if ft.is_file() && path.extension().is_some_and(|x| x == "lock") {
            let old_enough = match min_age {
                None => true,
                Some(age) => e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|el| el >= age),
            };
            if old_enough {
                tracing::warn!(path = %path.display(), "removing a ref lock left by a killed process");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}
