//! The daemon's main loop: scheduling, the one-pass-at-a-time rule, signals, reloads.

use super::lock::{DaemonLock, LockInfo};
use super::metrics::{Metrics, unix_now};
use super::schedule::{self, Outcome};
use super::{DaemonError, DaemonOptions, NodeOps, PassReport};

type Result<T, E = DaemonError> = std::result::Result<T, E>;
use crate::config::Config;
use crate::node::Node;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tracing::Instrument;

/// State shared by the main loop, the log follower and the HTTP server.
pub(crate) struct Shared {
    node: RwLock<Node>,
    metrics: Mutex<Metrics>,
    /// New events as JSON lines, for `/events/stream`.
    pub events: broadcast::Sender<Arc<str>>,
    /// Becomes `Some(reason)` when the daemon should stop.
    pub stop: watch::Receiver<Option<&'static str>>,
    /// Raised when the log grew: the main loop runs a dispatch pass.
    pub dispatch_wanted: Notify,
}

impl Shared {
    /// A snapshot of the node (configuration as last loaded).
    pub fn node(&self) -> Node {
        match self.node.read() {
            Ok(n) => n.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The counters.
    pub fn metrics(&self) -> MutexGuard<'_, Metrics> {
        match self.metrics.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        }
    }
}

/// Resolves once a stop was requested (at once if it already was).
pub(crate) async fn stopped(rx: &mut watch::Receiver<Option<&'static str>>) {
    // An error means the sender is gone: nobody can ask for a stop any more, so stop.
    let _ = rx.wait_for(Option::is_some).await;
}

/// Asks a running daemon (started with [`run_until`]) to stop or reload.
#[derive(Clone)]
pub struct StopHandle {
    stop: Arc<watch::Sender<Option<&'static str>>>,
    reload: mpsc::UnboundedSender<()>,
}

impl StopHandle {
    /// Finishes the pass in progress and stops; `reason` appears in logs and the summary.
    pub fn stop(&self, reason: &'static str) {
        self.stop.send_if_modified(|cur| {
            if cur.is_none() {
                *cur = Some(reason);
                true
            } else {
                false
            }
        });
    }

    /// Re-reads `mesh.toml` (as SIGHUP does).
    pub fn reload(&self) {
        let _ = self.reload.send(());
    }
}

/// The receiving side of a [`StopHandle`].
pub struct Controls {
    stop: watch::Receiver<Option<&'static str>>,
    reload: mpsc::UnboundedReceiver<()>,
}

/// A handle and the controls to pass to [`run_until`].
pub fn controls() -> (StopHandle, Controls) {
    let (stop_tx, stop_rx) = watch::channel(None);
    let (reload_tx, reload_rx) = mpsc::unbounded_channel();
    (
        StopHandle {
            stop: Arc::new(stop_tx),
            reload: reload_tx,
        },
        Controls {
            stop: stop_rx,
            reload: reload_rx,
        },
    )
}

/// What a daemon did, reported when it stops.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The node.
    pub node_id: String,
    /// Why it stopped (`SIGTERM`, `SIGINT`, or the reason given to [`StopHandle::stop`]).
    pub stopped_by: String,
    /// Seconds it ran.
    pub uptime_sec: f64,
    /// Sync passes by result.
    pub syncs: BTreeMap<&'static str, u64>,
    /// Dispatch passes by result.
    pub dispatches: BTreeMap<&'static str, u64>,
    /// The HTTP address it served, if any.
    pub listen: Option<String>,
}

/// Runs the daemon on `root` until SIGTERM or SIGINT; SIGHUP reloads `mesh.toml`.
pub fn run(root: &Path, opts: DaemonOptions, ops: Arc<dyn NodeOps>) -> Result<Summary> {
    opts.check()?;
    let rt = runtime()?;
    let result = rt.block_on(async move {
        let (handle, controls) = controls();
        forward_signals(handle)?;
        serve(root, opts, ops, controls).await
    });
    // A pass that outlived the grace period must not hold the process open.
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Runs the daemon on `root` until the handle of `controls` says stop (no signal handlers).
pub fn run_until(
    root: &Path,
    opts: DaemonOptions,
    ops: Arc<dyn NodeOps>,
    controls: Controls,
) -> Result<Summary> {
    opts.check()?;
    let rt = runtime()?;
    let result = rt.block_on(serve(root, opts, ops, controls));
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .thread_name("gitmesh-daemon")
        .build()
        .map_err(|e| DaemonError::Runtime(e.to_string()))
}

fn forward_signals(handle: StopHandle) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let sig = |k| signal(k).map_err(|e| DaemonError::Runtime(format!("signal handler: {e}")));
    let mut term = sig(SignalKind::terminate())?;
    let mut int = sig(SignalKind::interrupt())?;
    let mut hup = sig(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: stopping"); handle.stop("SIGTERM") }
                _ = int.recv() => { tracing::info!("SIGINT: stopping"); handle.stop("SIGINT") }
                _ = hup.recv() => { tracing::info!("SIGHUP: reloading mesh.toml"); handle.reload() }
            }
        }
    });
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Sync,
    Dispatch,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Sync => "sync",
            Step::Dispatch => "dispatch",
        }
    }
}

async fn serve(
    root: &Path,
    opts: DaemonOptions,
    ops: Arc<dyn NodeOps>,
    mut controls: Controls,
) -> Result<Summary> {
    let node = Node::open(root)?;
    let node_id = node.id().to_string();
    let longest = node.config.sync.longest_interval_for_lease();
    if let Some(i) = opts.interval.filter(|i| *i > longest) {
        tracing::warn!(
            interval_s = i.as_secs_f64(),
            synced_every_s = longest.as_secs_f64(),
            "--interval is too long for sync.lease_ttl: the lease could lapse between syncs; \
             syncing every lease_ttl / 2.2 instead"
        );
    }
    let mut lock = DaemonLock::acquire(&node.paths.daemon_lock())?;
    let listener = match opts.listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| DaemonError::Bind { addr, source })?,
        ),
        None => None,
    };
    let listen = listener
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map(|a| a.to_string());
    lock.write_info(&LockInfo {
        pid: std::process::id(),
        started_at: crate::event::now_timestamp(),
        listen: listen.clone(),
    })?;

    let (events, _) = broadcast::channel(1024);
    let metrics = Metrics {
        started_unix: unix_now(),
        ..Default::default()
    };
    let shared = Arc::new(Shared {
        node: RwLock::new(node),
        metrics: Mutex::new(metrics),
        events,
        stop: controls.stop.clone(),
        dispatch_wanted: Notify::new(),
    });
    let started = Instant::now();
    tracing::info!(node_id = %node_id, root = %root.display(), listen = listen.as_deref().unwrap_or("-"), "daemon started");

    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let follower = tokio::spawn(super::watch::follow(
        shared.clone(),
        opts.poll_interval,
        ready_tx,
    ));
    // Counting the log first keeps the metrics exact; a stop still ends the wait.
    // Connections made meanwhile wait in the listener's backlog.
    let mut stop = controls.stop.clone();
    tokio::select! {
        _ = ready_rx => {}
        _ = stopped(&mut stop) => {}
    }
    let server = listener.map(|l| tokio::spawn(super::http::serve(l, shared.clone())));

    let mut looper = Looper {
        shared: shared.clone(),
        ops,
        opts,
        stop,
        offline_streak: 0,
    };
    let outcome = looper.main_loop(&mut controls).await;

    // Stop the follower and the server; neither holds a lock that matters.
    drop(controls);
    let _ = tokio::time::timeout(Duration::from_secs(3), follower).await;
    if let Some(s) = server {
        let _ = tokio::time::timeout(Duration::from_secs(3), s).await;
    }
    let m = shared.metrics().clone();
    drop(lock);
    outcome?;
    let stopped_by = (*shared.stop.borrow()).unwrap_or("stop").to_string();
    tracing::info!(stopped_by = %stopped_by, "daemon stopped");
    Ok(Summary {
        node_id,
        stopped_by,
        uptime_sec: started.elapsed().as_secs_f64(),
        syncs: m.sync.runs,
        dispatches: m.dispatch.runs,
        listen,
    })
}

enum Wake {
    Stop,
    Reload,
    Sync,
    Dispatch,
}

struct Looper {
    shared: Arc<Shared>,
    ops: Arc<dyn NodeOps>,
    opts: DaemonOptions,
    stop: watch::Receiver<Option<&'static str>>,
    offline_streak: u32,
}

impl Looper {
    fn stopping(&self) -> bool {
        self.stop.borrow().is_some() || self.stop.has_changed().is_err()
    }

    async fn main_loop(&mut self, controls: &mut Controls) -> Result<()> {
        // The first sync runs at once: heartbeat, lease, and catching up after downtime.
        let mut next_sync = tokio::time::Instant::now();
        let shared = self.shared.clone();
        let mut stop = self.stop.clone();
        while !self.stopping() {
            let wake = tokio::select! {
                biased;
                _ = stopped(&mut stop) => Wake::Stop,
                Some(()) = controls.reload.recv() => Wake::Reload,
                _ = tokio::time::sleep_until(next_sync) => Wake::Sync,
                _ = shared.dispatch_wanted.notified() => Wake::Dispatch,
            };
            match wake {
                Wake::Stop => break,
                Wake::Reload => self.reload(),
                Wake::Sync => {
                    let outcome = self.step(Step::Sync).await?;
                    let delay = self.after_sync(outcome);
                    next_sync = tokio::time::Instant::now() + delay;
                }
                Wake::Dispatch => {
                    self.step(Step::Dispatch).await?;
                }
            }
        }
        Ok(())
    }

    /// The sync interval: `--interval` or `[sync] interval`, but never so long that the
    /// leader's lease could lapse between two syncs (`mesh.toml` refuses that; the flag is capped).
    fn interval(&self) -> Duration {
        let sync = self.shared.node().config.sync;
        let want = self.opts.interval.unwrap_or(sync.interval.0);
        want.min(sync.longest_interval_for_lease())
    }

    /// Decides the delay before the next sync from how this one ended.
    fn after_sync(&mut self, outcome: Outcome) -> Duration {
        let unit: f64 = rand::random();
        let delay = match outcome {
            Outcome::Offline => {
                self.offline_streak = self.offline_streak.saturating_add(1);
                schedule::next_sync_delay(
                    self.interval(),
                    self.offline_streak,
                    self.opts.max_backoff,
                    unit,
                )
            }
            Outcome::Busy => schedule::jitter(schedule::BUSY_RETRY, unit),
            Outcome::Ok | Outcome::Failed => {
                self.offline_streak = 0;
                schedule::next_sync_delay(self.interval(), 0, self.opts.max_backoff, unit)
            }
        };
        let mut m = self.shared.metrics();
        m.offline_streak = self.offline_streak;
        m.next_sync_in = delay.as_secs_f64();
        tracing::debug!(next_sync_in_s = delay.as_secs_f64(), "sync scheduled");
        delay
    }

    /// Runs one pass on a blocking thread and records it; a stop waits for it, bounded.
    async fn step(&mut self, step: Step) -> Result<Outcome> {
        let mut node = self.shared.node();
        // The sync renews the lease from the interval it actually runs at.
        node.config.sync.interval = crate::config::HumanDuration(self.interval());
        let ops = self.ops.clone();
        let span = tracing::info_span!("pass", step = step.name(), node_id = %node.id());
        let started = Instant::now();
        let inner = span.clone();
        let mut handle = tokio::task::spawn_blocking(move || {
            inner.in_scope(|| match step {
                Step::Sync => ops.sync(&node).map(|r| PassReport::Sync(Box::new(r))),
                Step::Dispatch => ops.dispatch(&node).map(PassReport::Dispatch),
            })
        });
        let joined = tokio::select! {
            r = &mut handle => r,
            _ = stopped(&mut self.stop) => {
                let grace = self.opts.shutdown_grace;
                tracing::info!(step = step.name(), grace_s = grace.as_secs_f64(), "stop requested; finishing the pass in progress");
                match tokio::time::timeout(grace, &mut handle).await {
                    Ok(r) => r,
                    Err(_) => return Err(DaemonError::StopTimeout { step: step.name(), grace }),
                }
            }
        };
        let result = match joined {
            Ok(r) => r.map_err(|e| DaemonError::Pass(Box::new(e))),
            Err(e) => Err(DaemonError::Panicked {
                step: step.name(),
                message: e.to_string(),
            }),
        };
        let secs = started.elapsed().as_secs_f64();
        let outcome = schedule::classify(&result);
        if let Ok(r) = &result
            && r.dispatch().is_some_and(|d| d.remaining_bytes > 0)
        {
            // The pass stopped at its bound: the rest comes in the next dispatch pass,
            // after a sync that is due (the main loop prefers it).
            self.shared.dispatch_wanted.notify_one();
        }
        async { self.record(step, outcome, secs, &result) }
            .instrument(span)
            .await;
        Ok(outcome)
    }

    fn record(&self, step: Step, outcome: Outcome, secs: f64, result: &Result<PassReport>) {
        let err = result.as_ref().err().map(|e| e.to_string());
        let mut m = self.shared.metrics();
        if let Ok(r) = result {
            m.absorb(r);
        }
        let stats = match step {
            Step::Sync => &mut m.sync,
            Step::Dispatch => &mut m.dispatch,
        };
        stats.record(outcome, secs, err.clone());
        drop(m);
        let ms = (secs * 1000.0) as u64;
        match (outcome, result) {
            (Outcome::Ok, Ok(r)) => {
                let sync = match r {
                    PassReport::Sync(s) => Some(s),
                    PassReport::Dispatch(_) => None,
                };
                tracing::info!(
                    duration_ms = ms,
                    imported = sync.map(|s| s.import.imported_events),
                    exported = sync.map(|s| s.export.exported_events),
                    compacted = sync
                        .and_then(|s| s.compact.as_ref())
                        .map(|c| c.archived_batches),
                    processed = r.dispatch().map(|d| d.processed_events),
                    "{} done",
                    step.name()
                )
            }
            (Outcome::Offline, _) => tracing::warn!(
                duration_ms = ms,
                offline_streak = self.offline_streak + 1,
                "{}: remote unreachable; local work done, backing off",
                step.name()
            ),
            (Outcome::Busy, _) => tracing::info!(
                duration_ms = ms,
                "{}: another sync holds the lock; retrying shortly",
                step.name()
            ),
            _ => tracing::error!(
                duration_ms = ms,
                kind = result.as_ref().err().map(|e| e.kind()),
                error = err.as_deref().unwrap_or("?"),
                "{} failed",
                step.name()
            ),
        }
    }

    /// Re-reads `mesh.toml`; an invalid file or a changed node id keeps the old config.
    fn reload(&self) {
        let cur = self.shared.node();
        let result = Config::load(&cur.paths.config());
        let mut m = self.shared.metrics();
        match result {
            Ok(cfg) if cfg.node_id != cur.config.node_id => {
                m.reload_failures += 1;
                tracing::error!(
                    old = %cur.config.node_id,
                    new = %cfg.node_id,
                    "mesh.toml changes node_id; a node cannot be renamed while running. Keeping the previous configuration"
                );
            }
            Ok(cfg) => {
                m.reloads += 1;
                let interval = cfg.sync.interval.0;
                match self.shared.node.write() {
                    Ok(mut n) => n.config = cfg,
                    Err(p) => p.into_inner().config = cfg,
                }
                tracing::info!(interval_s = interval.as_secs_f64(), "mesh.toml reloaded");
            }
            Err(e) => {
                m.reload_failures += 1;
                tracing::error!(error = %e, "mesh.toml rejected; keeping the previous configuration");
            }
        }
    }
}
