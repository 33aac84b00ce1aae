//! Waking a reader when the log changes: file notifications on the log's directory.
//!
//! Notifications are a hint, not a record: a reader re-reads the committed
//! length after each wake and also polls on a bounded interval, because
//! notifications can be unavailable (some network file systems) or dropped.

use notify::{EventKind, RecursiveMode, Watcher};
use std::path::Path;

/// Watches the directory of the active log file and calls `wake` on each change to it.
///
/// Returns the watcher (dropping it stops watching), or `None` when notifications
/// are unavailable; the reason is logged and the caller polls.
pub fn watch_log(
    dir: &Path,
    log_path: &Path,
    wake: impl Fn() + Send + 'static,
) -> Option<notify::RecommendedWatcher> {
    if let Err(e) = std::fs::create_dir_all(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot create the log directory; polling only");
        return None;
    }
    let name = log_path.file_name().map(|n| n.to_os_string());
    let handler = move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if matches!(ev.kind, EventKind::Access(_)) {
            return;
        }
        // A seal renames the active file, which names it too.
        if ev.paths.iter().any(|p| p.file_name() == name.as_deref()) {
            wake();
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "file notifications unavailable; polling the log instead");
            return None;
        }
    };
    if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the log directory; polling instead");
        return None;
    }
    Some(watcher)
}
