//! Following the log: where a reader resumes, and reading what was committed since.
//!
//! A follower keeps a global byte offset and reads only committed lines (the
//! head's length, which leaves out a batch still being written), so each event
//! is handed out once and in log order, across seals and restarts: a reader
//! that saved the last event id or offset resumes right after it.

use super::error::{OpsError, Result};
use super::query::Selector;
use crate::event::Envelope;
use crate::log::EventLog;
use crate::log::watch::watch_log;
use crate::node::Node;
use std::ops::ControlFlow;
use std::sync::mpsc;
use std::time::Duration;

/// Where a follow resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// Right after the event with this id.
    After(String),
    /// At this global byte offset (0 replays the whole log).
    Offset(u64),
}

/// The offset a follow resumes at, checked against the log.
///
/// An id is found through the id indexes (the cost follows one segment, not
/// the history); an unknown id is an error rather than a silent replay. An
/// offset must lie within the committed log and on a line start.
pub fn resume_offset(node: &Node, resume: &Resume) -> Result<u64> {
    let end = node.log.read_head()?.log_len;
    match resume {
        Resume::After(id) => {
            if crate::log::index_key(id).is_none() {
                return Err(OpsError::Usage(format!(
                    "{id:?} is not an event id (evt_ + 32 hex digits)"
                )));
            }
            let Some(at) = node.log.find_id(id)? else {
                return Err(OpsError::NotFound(format!(
                    "event {id} is not in this node's log; nothing to resume after"
                )));
            };
            match node.log.line_end(at)? {
                Some(next) => Ok(next.min(end)),
                None => Ok(end),
            }
        }
        Resume::Offset(n) => {
            if *n > end {
                return Err(OpsError::Usage(format!(
                    "offset {n} is past the end of the log ({end} bytes)"
                )));
            }
            if !node.log.is_line_start(*n)? {
                return Err(OpsError::Usage(format!(
                    "offset {n} is not the start of a line of the log; use an offset a reader \
                     was given (0 replays everything)"
                )));
            }
            Ok(*n)
        }
    }
}

/// What one [`Follower::poll`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Lines read (matching or not).
    pub lines: usize,
    /// Events handed to the caller.
    pub matched: usize,
    /// Whether the follower reached the committed end.
    pub caught_up: bool,
    /// Whether the caller asked to stop.
    pub stopped: bool,
}

/// A reader positioned at a committed offset of a log.
#[derive(Debug, Clone)]
pub struct Follower {
    offset: u64,
}

impl Follower {
    /// A follower that reads from global `offset` on.
    pub fn new(offset: u64) -> Follower {
        Follower { offset }
    }

    /// Offset just after the last line read.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads at most `max_lines` committed lines after the offset and hands each
    /// matching event (with its offset) to `each`, which may stop the read.
    ///
    /// The offset moves past a line only once `each` has returned for it, so a
    /// reader that stops (its output closed) resumes at the first line it did not
    /// take. A log that became shorter than the offset (replaced by a restore) is
    /// followed from its new end, with a warning.
    pub fn poll(
        &mut self,
        log: &EventLog,
        sel: &Selector,
        max_lines: usize,
        mut each: impl FnMut(u64, &Envelope) -> ControlFlow<()>,
    ) -> Result<Progress> {
        let end = log.read_head()?.log_len;
        let mut p = Progress::default();
        if end < self.offset {
            tracing::warn!(
                offset = self.offset,
                log_len = end,
                "the event log is shorter than the follow position; following from its end"
            );
            self.offset = end;
        }
        let mut scan = log.scan(self.offset, end)?;
        while p.lines < max_lines {
            let Some((off, line)) = scan.next_raw()? else {
                p.caught_up = true;
                break;
            };
            p.lines += 1;
            if let Ok(env) = Envelope::from_json_line(line)
                && sel.matches(&env)
            {
                p.matched += 1;
                if each(off, &env).is_break() {
                    p.stopped = true;
                    return Ok(p);
                }
            }
            self.offset = scan.offset();
        }
        if !p.caught_up {
            p.caught_up = self.offset >= end;
        }
        Ok(p)
    }
}

/// Why a [`LogWaiter::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The log's directory changed.
    Changed,
    /// The poll interval passed without a notification.
    Timeout,
    /// Someone asked the follow to end (a signal).
    Stop,
}

/// Blocks a follower until the log changes, a poll interval passes or a stop is sent.
pub struct LogWaiter {
    rx: mpsc::Receiver<Wake>,
    tx: mpsc::SyncSender<Wake>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl LogWaiter {
    /// Watches `node`'s log (polling only when notifications are unavailable).
    pub fn new(node: &Node) -> LogWaiter {
        // One pending wake is enough: every wake re-reads up to the committed end.
        let (tx, rx) = mpsc::sync_channel(1);
        let notify_tx = tx.clone();
        let watcher = watch_log(&node.paths.artifacts(), node.log.path(), move || {
            let _ = notify_tx.try_send(Wake::Changed);
        });
        LogWaiter {
            rx,
            tx,
            _watcher: watcher,
        }
    }

    /// A handle that ends the wait from another thread (a signal handler's thread).
    pub fn stopper(&self) -> Stopper {
        Stopper(self.tx.clone())
    }

    /// Waits at most `poll` for a change or a stop.
    pub fn wait(&self, poll: Duration) -> Wake {
        match self.rx.recv_timeout(poll) {
            Ok(w) => w,
            Err(mpsc::RecvTimeoutError::Timeout) => Wake::Timeout,
            Err(mpsc::RecvTimeoutError::Disconnected) => Wake::Stop,
        }
    }
}

/// Sends [`Wake::Stop`] to a [`LogWaiter`].
#[derive(Debug, Clone)]
pub struct Stopper(mpsc::SyncSender<Wake>);

impl Stopper {
    /// Ends the wait in progress, or the next one.
    pub fn stop(&self) {
        // A full channel holds a wake already; the follower checks its stop flag on it.
        let _ = self.0.send(Wake::Stop);
    }
}
