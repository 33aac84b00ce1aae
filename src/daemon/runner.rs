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
    /// Raised when the log grew by own events: the main loop pushes after the debounce.
    pub push_wanted: Notify,
    /// Raised by SIGUSR1 and `POST /sync`: the main loop syncs at once (one permit, so
    /// requests made while a sync is due or running coalesce into one).
    pub sync_now: Arc<Notify>,
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
    sync_now: Arc<Notify>,
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

    /// Starts a sync at once, coalesced with one already asked for (as SIGUSR1 does).
    pub fn sync_now(&self) {
        self.sync_now.notify_one();
    }
}

/// The receiving side of a [`StopHandle`].
pub struct Controls {
    stop: watch::Receiver<Option<&'static str>>,
    reload: mpsc::UnboundedReceiver<()>,
    sync_now: Arc<Notify>,
}

/// A handle and the controls to pass to [`run_until`].
pub fn controls() -> (StopHandle, Controls) {
    let (stop_tx, stop_rx) = watch::channel(None);
    let (reload_tx, reload_rx) = mpsc::unbounded_channel();
    let sync_now = Arc::new(Notify::new());
    (
        StopHandle {
            stop: Arc::new(stop_tx),
            reload: reload_tx,
            sync_now: sync_now.clone(),
        },
        Controls {
            stop: stop_rx,
            reload: reload_rx,
            sync_now,
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

/// Runs the daemon on `root` until SIGTERM or SIGINT; SIGHUP reloads `mesh.toml`,
/// SIGUSR1 starts a sync at once.
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
    let mut usr1 = sig(SignalKind::user_defined1())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: stopping"); handle.stop("SIGTERM") }
                _ = int.recv() => { tracing::info!("SIGINT: stopping"); handle.stop("SIGINT") }
                _ = hup.recv() => { tracing::info!("SIGHUP: reloading mesh.toml"); handle.reload() }
                _ = usr1.recv() => { tracing::info!("SIGUSR1: syncing now"); handle.sync_now() }
            }
        }
    });
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Sync,
    Dispatch,
    /// Export and push own events (after the debounce).
    Push,
    /// A fetch (one ref advertisement when nothing moved); import and dispatch when it moved.
    Poll,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Sync => "sync",
            Step::Dispatch => "dispatch",
            Step::Push => "push",
            Step::Poll => "poll",
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
        push_wanted: Notify::new(),
        sync_now: controls.sync_now.clone(),
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
        live_nodes: 1,
        last_sync_end: None,
        polls_paused: false,
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
    SyncNow,
    Dispatch,
    Appended,
    Push,
    Poll,
}

struct Looper {
    shared: Arc<Shared>,
    ops: Arc<dyn NodeOps>,
    opts: DaemonOptions,
    stop: watch::Receiver<Option<&'static str>>,
    offline_streak: u32,
    /// Nodes sharing the poll budget, counted after each full sync.
    live_nodes: u32,
    /// When the last full sync ended (a sync asked for now keeps a gap after it).
    last_sync_end: Option<tokio::time::Instant>,
    /// The remote was out of reach at the last poll or push: no polls until a full sync reaches it.
    polls_paused: bool,
}

/// When own appends waiting for a push came: the first and the last of the burst.
#[derive(Clone, Copy)]
struct Burst {
    first: tokio::time::Instant,
    last: tokio::time::Instant,
}

impl Looper {
    fn stopping(&self) -> bool {
        self.stop.borrow().is_some() || self.stop.has_changed().is_err()
    }

    async fn main_loop(&mut self, controls: &mut Controls) -> Result<()> {
        use tokio::time::Instant as At;
        // The first sync runs at once: heartbeat, lease, and catching up after downtime.
        let mut next_sync = At::now();
        let mut next_poll: Option<At> = None;
        let mut burst: Option<Burst> = None;
        let shared = self.shared.clone();
        let mut stop = self.stop.clone();
        // A branch whose time is `None` is disabled; this only fills the type.
        let never = || At::now() + Duration::from_secs(86_400);
        while !self.stopping() {
            let push_at = burst.map(|b| {
                schedule::push_deadline(
                    b.first,
                    b.last,
                    self.shared.node().config.sync.push_debounce.0,
                )
            });
            let wake = tokio::select! {
                biased;
                _ = stopped(&mut stop) => Wake::Stop,
                Some(()) = controls.reload.recv() => Wake::Reload,
                _ = tokio::time::sleep_until(next_sync) => Wake::Sync,
                _ = shared.sync_now.notified() => Wake::SyncNow,
                _ = tokio::time::sleep_until(push_at.unwrap_or_else(never)), if push_at.is_some() => Wake::Push,
                _ = shared.dispatch_wanted.notified() => Wake::Dispatch,
                _ = shared.push_wanted.notified() => Wake::Appended,
                _ = tokio::time::sleep_until(next_poll.unwrap_or_else(never)), if next_poll.is_some() => Wake::Poll,
            };
            match wake {
                Wake::Stop => break,
                Wake::Reload => self.reload(),
                Wake::SyncNow => {
                    self.shared.metrics().sync_requests += 1;
                    next_sync = schedule::sync_now_at(At::now(), self.last_sync_end);
                }
                Wake::Sync => {
                    let outcome = self.step(Step::Sync).await?;
                    let delay = self.after_sync(outcome);
                    let now = At::now();
                    next_sync = now + delay;
                    self.last_sync_end = Some(now);
                    if outcome == Outcome::Ok {
                        // The sync exported and pushed everything appended before it.
                        burst = None;
                        self.polls_paused = false;
                        self.count_live_nodes().await;
                    }
                    next_poll = self.next_poll(now);
                }
                Wake::Dispatch => {
                    self.step(Step::Dispatch).await?;
                }
                Wake::Appended => {
                    let now = At::now();
                    burst = Some(match burst {
                        Some(b) => Burst { last: now, ..b },
                        None => Burst {
                            first: now,
                            last: now,
                        },
                    });
                }
                Wake::Push => {
                    burst = None;
                    if self.step(Step::Push).await? == Outcome::Offline {
                        self.pause_polls();
                        next_poll = None;
                    }
                }
                Wake::Poll => {
                    // Polls keep their period from start to start: a fetch and import
                    // after a move does not stretch the time to the next look, and
                    // there is still at most one poll per period.
                    let started = At::now();
                    if self.poll().await? == Some(true) {
                        self.shared.metrics().polls_moved += 1;
                    }
                    next_poll = self.next_poll(started).map(|at| at.max(At::now()));
                }
            }
        }
        Ok(())
    }

    /// Stops polling until a full sync reaches the remote again (its back-off governs).
    fn pause_polls(&mut self) {
        if !self.polls_paused {
            tracing::info!("remote out of reach: polls paused until a sync reaches it");
        }
        self.polls_paused = true;
    }

    /// When to poll next: the period for the live fleet and the budget, with jitter.
    fn next_poll(&self, now: tokio::time::Instant) -> Option<tokio::time::Instant> {
        let budget = self.shared.node().config.sync.poll_budget;
        let period = schedule::poll_period(self.live_nodes, budget, self.interval())
            .filter(|_| !self.polls_paused);
        self.shared.metrics().poll_period = period.map_or(0.0, |p| p.as_secs_f64());
        period.map(|p| now + schedule::jitter(p, rand::random()))
    }

    /// Counts the live nodes from the heartbeats just fetched (keeps the old count on error).
    async fn count_live_nodes(&mut self) {
        let node = self.shared.node();
        let ops = self.ops.clone();
        match tokio::task::spawn_blocking(move || ops.live_nodes(&node)).await {
            Ok(Ok(n)) => {
                if n != self.live_nodes {
                    tracing::info!(live_nodes = n, "live nodes changed; poll period follows");
                }
                self.live_nodes = n.max(1);
                self.shared.metrics().live_nodes = self.live_nodes;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot count live nodes; keeping {}", self.live_nodes)
            }
            Err(e) => tracing::warn!(error = %e, "live node count task failed"),
        }
    }

    /// One poll; `Some(moved)` when the remote answered.
    async fn poll(&mut self) -> Result<Option<bool>> {
        let moved = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let outcome = self.step_with(Step::Poll, Some(moved.clone())).await?;
        match outcome {
            Outcome::Ok => Ok(Some(moved.load(std::sync::atomic::Ordering::SeqCst))),
            Outcome::Offline => {
                self.pause_polls();
                Ok(None)
            }
            _ => Ok(None),
        }
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
        self.step_with(step, None).await
    }

    /// [`Self::step`]; a poll stores whether the remote moved in `moved`.
    async fn step_with(
        &mut self,
        step: Step,
        moved: Option<Arc<std::sync::atomic::AtomicBool>>,
    ) -> Result<Outcome> {
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
                Step::Push => ops.push(&node).map(|r| PassReport::Sync(Box::new(r))),
                Step::Dispatch => ops.dispatch(&node).map(PassReport::Dispatch),
                Step::Poll => ops.pull(&node).map(|r| {
                    if let Some(flag) = &moved {
                        flag.store(r.remote_moved, std::sync::atomic::Ordering::SeqCst);
                    }
                    PassReport::Poll(Box::new(r))
                }),
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
        if step == Step::Push
            && let Ok(PassReport::Sync(r)) = &result
            && r.push.contended
        {
            // Every attempt lost the race: the events wait for another push after
            // the debounce, not for the next append or full sync.
            self.shared.push_wanted.notify_one();
        }
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
            Step::Push => &mut m.push,
            Step::Poll => &mut m.poll,
        };
        stats.record(outcome, secs, err.clone());
        drop(m);
        let ms = (secs * 1000.0) as u64;
        match (outcome, result) {
            (Outcome::Ok, Ok(PassReport::Poll(r))) if !r.remote_moved => {
                tracing::debug!(duration_ms = ms, moved = false, "poll done")
            }
            (Outcome::Ok, Ok(r)) => {
                let sync = match r {
                    PassReport::Sync(s) | PassReport::Poll(s) => Some(s),
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
