//! The daemon loop in-process, with operations that record their calls and do real work.

use crate::common::TestEnv;
use gitmesh::daemon::{DaemonOptions, NodeOps, controls, run_until};
use gitmesh::dispatch::DispatchReport;
use gitmesh::ops::OpsError;
use gitmesh::ops::query::{EventFilter, events};
use gitmesh::ops::sync::SyncReport;
use gitmesh::{Draft, Node};
use serde_json::json;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Sync sleeps a little (a slow network); dispatch answers each `test.ping` with a `test.pong`.
#[derive(Default)]
struct Recording {
    offline: bool,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    syncs: AtomicUsize,
    dispatches: AtomicUsize,
    cursor: Mutex<u64>,
}

impl Recording {
    fn enter(&self) -> Guard<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Guard(&self.in_flight)
    }
}

struct Guard<'a>(&'a AtomicUsize);
impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl NodeOps for Recording {
    fn sync(&self, _node: &Node) -> Result<SyncReport, OpsError> {
        let _g = self.enter();
        self.syncs.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        let mut r = SyncReport::default();
        r.push.pushed = !self.offline;
        r.push.attempts = 1;
        r.push.offline = self.offline;
        Ok(r)
    }

    fn dispatch(&self, node: &Node) -> Result<DispatchReport, OpsError> {
        let _g = self.enter();
        self.dispatches.fetch_add(1, Ordering::SeqCst);
        let mut cursor = self.cursor.lock().unwrap();
        let end = node.log.head()?.log_len;
        let mut pongs = Vec::new();
        let mut processed = 0;
        for item in node.log.scan(*cursor, end)? {
            let (_, env) = item?;
            let Ok(env) = env else { continue };
            processed += 1;
            if env.event_type == "test.ping" {
                pongs.push(Draft {
                    topic: "monitoring".into(),
                    event_type: "test.pong".into(),
                    causation_id: env.event_id.clone(),
                    source: Some("mesh-dispatch".into()),
                    ..Default::default()
                });
            }
        }
        *cursor = end;
        let n = pongs.len();
        if n > 0 {
            node.publish(&pongs)?;
        }
        Ok(DispatchReport {
            processed_events: processed,
            followup_events: n as u64,
            ..Default::default()
        })
    }
}

fn count(root: &std::path::Path, event_type: &str) -> usize {
    let node = Node::open(root).unwrap();
    let f = EventFilter {
        event_type: Some(event_type.into()),
        ..Default::default()
    };
    events(&node, &f).unwrap().len()
}

#[test]
fn appended_events_are_dispatched_and_passes_never_overlap() {
    let env = TestEnv::new();
    let root = env.node("ops1");
    let ops = Arc::new(Recording::default());
    let (handle, ctl) = controls();
    let opts = DaemonOptions {
        interval: Some(Duration::from_millis(150)),
        ..Default::default()
    };
    let daemon = {
        let (root, ops) = (root.clone(), ops.clone());
        std::thread::spawn(move || run_until(&root, opts, ops, ctl))
    };
    let node = Node::open(&root).unwrap();
    for i in 0..5 {
        let mut payload = serde_json::Map::new();
        payload.insert("i".into(), json!(i));
        node.publish(&[Draft {
            topic: "monitoring".into(),
            event_type: "test.ping".into(),
            payload,
            ..Default::default()
        }])
        .unwrap();
        std::thread::sleep(Duration::from_millis(60));
    }
    let start = Instant::now();
    while count(&root, "test.pong") < 5 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "pings were not dispatched"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    handle.stop("test");
    let summary = daemon.join().unwrap().unwrap();
    assert_eq!(summary.stopped_by, "test");
    assert_eq!(
        count(&root, "test.pong"),
        5,
        "each ping answered exactly once"
    );
    assert_eq!(
        ops.max_in_flight.load(Ordering::SeqCst),
        1,
        "never two passes at once"
    );
    assert!(summary.dispatches.get("ok").copied().unwrap_or(0) >= 1);
    assert!(ops.syncs.load(Ordering::SeqCst) >= 1);
}

#[test]
fn offline_syncs_back_off_exponentially() {
    let env = TestEnv::new();
    let root = env.node("ops2");
    let ops = Arc::new(Recording {
        offline: true,
        ..Default::default()
    });
    let (handle, ctl) = controls();
    let opts = DaemonOptions {
        interval: Some(Duration::from_millis(100)),
        max_backoff: Duration::from_secs(60),
        ..Default::default()
    };
    let daemon = {
        let (root, ops) = (root.clone(), ops.clone());
        std::thread::spawn(move || run_until(&root, opts, ops, ctl))
    };
    std::thread::sleep(Duration::from_millis(1500));
    handle.stop("test");
    let summary = daemon.join().unwrap().unwrap();
    let syncs = ops.syncs.load(Ordering::SeqCst);
    // Without backoff 1.5 s of 100 ms intervals would be ~15 syncs; with it,
    // at about 0, 0.25, 0.7, 1.55 s: at most 4.
    assert!((2..=4).contains(&syncs), "{syncs} syncs in 1.5 s");
    assert_eq!(summary.syncs.get("offline").copied(), Some(syncs as u64));
}

#[test]
fn a_stop_waits_for_the_pass_in_progress() {
    struct Slow(AtomicUsize, AtomicUsize);
    impl NodeOps for Slow {
        fn sync(&self, _n: &Node) -> Result<SyncReport, OpsError> {
            self.1.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(700));
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(SyncReport::default())
        }
        fn dispatch(&self, _n: &Node) -> Result<DispatchReport, OpsError> {
            Ok(DispatchReport::default())
        }
    }
    let env = TestEnv::new();
    let root = env.node("ops3");
    let ops = Arc::new(Slow(AtomicUsize::new(0), AtomicUsize::new(0)));
    let (handle, ctl) = controls();
    let daemon = {
        let (root, ops) = (root.clone(), ops.clone());
        std::thread::spawn(move || run_until(&root, DaemonOptions::default(), ops, ctl))
    };
    let start = Instant::now();
    while ops.1.load(Ordering::SeqCst) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the first sync never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    handle.stop("test");
    let summary = daemon.join().unwrap().unwrap();
    assert_eq!(
        ops.0.load(Ordering::SeqCst),
        1,
        "the sync in progress finished"
    );
    assert_eq!(summary.syncs.get("ok").copied(), Some(1));
}

#[test]
fn a_pass_outliving_the_stop_timeout_is_reported() {
    struct Stuck(AtomicUsize);
    impl NodeOps for Stuck {
        fn sync(&self, _n: &Node) -> Result<SyncReport, OpsError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_secs(3));
            Ok(SyncReport::default())
        }
        fn dispatch(&self, _n: &Node) -> Result<DispatchReport, OpsError> {
            Ok(DispatchReport::default())
        }
    }
    let env = TestEnv::new();
    let root = env.node("ops4");
    let ops = Arc::new(Stuck(AtomicUsize::new(0)));
    let (handle, ctl) = controls();
    let opts = DaemonOptions {
        shutdown_grace: Duration::from_millis(100),
        ..Default::default()
    };
    let daemon = {
        let (root, ops) = (root.clone(), ops.clone());
        std::thread::spawn(move || run_until(&root, opts, ops, ctl))
    };
    let start = Instant::now();
    while ops.0.load(Ordering::SeqCst) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the first sync never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    handle.stop("test");
    let err = daemon.join().unwrap().unwrap_err();
    assert_eq!(err.kind(), "stop_timeout");
    assert!(err.to_string().contains("sync"), "{err}");
    // The lock is released even so: the root can be run again.
    let lock = root.join("state/event_mesh/daemon.lock");
    let f = std::fs::File::open(&lock).unwrap();
    assert!(f.try_lock().is_ok(), "daemon.lock still held");
}
