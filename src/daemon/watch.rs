//! Follows the event log: file notifications (debounced) plus a fallback poll.
//!
//! Each new committed event updates the per-topic counts, goes to the
//! `/events/stream` subscribers, and asks the main loop for a dispatch pass.

use super::runner::{Shared, stopped};
use super::tail::Tail;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Coalesces a burst of notifications (one append can raise several).
const DEBOUNCE: Duration = Duration::from_millis(25);

/// Counts the whole log once, then follows it until the daemon stops.
pub(crate) async fn follow(
    shared: Arc<Shared>,
    poll: Duration,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let node = shared.node();
    let log = node.log.clone();
    let log_path = node.log.path().clone();
    let wake = Arc::new(Notify::new());
    let _watcher = {
        let wake = wake.clone();
        crate::log::watch::watch_log(&node.paths.artifacts(), &log_path, move || {
            wake.notify_one()
        })
    };

    let me = node.id().to_string();
    let mut tail = Tail::new(node.id());
    let started = std::time::Instant::now();
    let baseline = {
        let log = log.clone();
        tokio::task::spawn_blocking(move || {
            let r = tail.advance(&log, |_| {});
            (tail, r)
        })
        .await
    };
    let mut tail = match baseline {
        Ok((t, Ok(n))) => {
            tracing::info!(
                events = n,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "counted the event log"
            );
            t
        }
        Ok((t, Err(e))) => {
            tracing::warn!(error = %e, "could not count the event log; counting as it grows");
            t
        }
        Err(e) => {
            tracing::error!(error = %e, "log counter task failed");
            return;
        }
    };
    shared.metrics().log = tail.counts().clone();
    let _ = ready.send(());

    let mut stop = shared.stop.clone();
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            _ = wake.notified() => tokio::time::sleep(DEBOUNCE).await,
            _ = tick.tick() => {
                // Global end offset: stays right after the active file is sealed into a segment.
                let size = log.end_offset().unwrap_or(0);
                if size == tail.offset() {
                    continue;
                }
            }
        }
        let log = log.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let mut fresh = Vec::new();
            let r = tail.advance(&log, |e| fresh.push(e));
            (tail, r, fresh)
        })
        .await;
        let (t, result, fresh) = match joined {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "log follower task failed");
                return;
            }
        };
        tail = t;
        if let Err(e) = result {
            tracing::warn!(error = %e, "reading new events failed; retrying on the next change");
        }
        if fresh.is_empty() {
            continue;
        }
        shared.metrics().log = tail.counts().clone();
        tracing::debug!(new_events = fresh.len(), offset = tail.offset(), "log grew");
        for e in &fresh {
            // No subscribers is not an error.
            let _ = shared.events.send(Arc::from(e.to_json_line().trim_end()));
        }
        shared.dispatch_wanted.notify_one();
        if fresh.iter().any(|e| e.node_id == me) {
            shared.push_wanted.notify_one();
        }
    }
}
