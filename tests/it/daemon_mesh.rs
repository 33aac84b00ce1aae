//! Two daemons on one shared remote: local dispatch, import through sync, clean stops.

use crate::common;
use crate::common::{TestEnv, publish_event};
use crate::daemon_support::{Daemon, Sse, enqueue};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Event id -> how many times it is in the node's log.
fn log_ids(root: &Path) -> HashMap<String, usize> {
    let v = common::json_ok(root, &["events"]);
    let mut m = HashMap::new();
    for e in v["events"].as_array().unwrap() {
        *m.entry(e["event_id"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    m
}

#[test]
fn a_publish_is_dispatched_locally_and_reaches_the_peer_daemon() {
    let env = TestEnv::with_remote();
    let [n1, n2] = env.nodes(["m1", "m2"]);
    let d1 = Daemon::start(&n1, &["--interval", "1s"]);
    let d2 = Daemon::start(&n2, &["--interval", "1s"]);
    let mut s1 = Sse::open(&d1.addr);
    let mut s2 = Sse::open(&d2.addr);

    let t0 = Instant::now();
    let ev = enqueue(&n1, "t-42");
    let id = ev["event_id"].as_str().unwrap().to_string();
    // The built-in scheduling handler answers on the origin node.
    let follow = s1.wait_for(|v| v["causation_id"] == id.as_str());
    eprintln!(
        "local follow-up {} {:?} after the publish",
        follow["event_type"],
        t0.elapsed()
    );
    let imported = s2.wait_for(|v| v["event_id"] == id.as_str());
    eprintln!("imported by the peer {:?} after the publish", t0.elapsed());
    assert_eq!(imported["node_id"], "m1");

    d1.signal("TERM");
    d2.signal("TERM");
    let (st1, _, e1) = d1.wait_exit(Duration::from_secs(60));
    let (st2, _, e2) = d2.wait_exit(Duration::from_secs(60));
    assert_eq!(st1.code(), Some(0), "{e1}");
    assert_eq!(st2.code(), Some(0), "{e2}");
}

#[test]
fn sigterm_during_syncs_loses_and_duplicates_nothing() {
    let env = TestEnv::with_remote();
    let [n1, n2] = env.nodes(["k1", "k2"]);
    let mut published = Vec::new();
    for i in 0..3 {
        let d = Daemon::start(&n1, &["--interval", "1s"]);
        for j in 0..10 {
            let p = format!(r#"{{"round":{i},"j":{j}}}"#);
            let e = publish_event(
                &n1,
                "monitoring",
                "lane.ensure_failed",
                &["--payload-json", &p],
            );
            published.push(e["event_id"].as_str().unwrap().to_string());
        }
        // Stop while syncs and dispatches are likely in flight.
        std::thread::sleep(Duration::from_millis(300 * (i + 1)));
        d.signal("TERM");
        let (st, _, err) = d.wait_exit(Duration::from_secs(60));
        assert_eq!(st.code(), Some(0), "round {i}: {err}");
    }
    // Finish by hand: everything must be exported once and imported once.
    common::json_ok(&n1, &["mesh-sync"]);
    common::json_ok(&n2, &["mesh-sync"]);
    let ids1 = log_ids(&n1);
    let ids2 = log_ids(&n2);
    for (id, n) in &ids1 {
        assert_eq!(*n, 1, "{id} is {n} times in the origin's log");
    }
    for id in &published {
        assert_eq!(ids1.get(id), Some(&1), "{id} missing on the origin");
        assert_eq!(
            ids2.get(id),
            Some(&1),
            "{id} not imported exactly once by the peer"
        );
    }
}
