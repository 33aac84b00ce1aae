//! Propagation between full syncs: a push soon after an own append, polls of the
//! remote's heads, and a sync asked for by SIGUSR1 or `POST /sync`.

use crate::common::{self, TestEnv, publish_event, set_config_key};
use crate::daemon_support::{Daemon, WAIT, http_get, http_request, poll_until};
use std::path::Path;
use std::time::{Duration, Instant};

fn ok_syncs(d: &Daemon) -> f64 {
    d.metric("gitmesh_sync_runs_total", &[("result", "ok")])
}

fn has_event(root: &Path, id: &str) -> bool {
    common::event_ids(root, &[]).iter().any(|e| e == id)
}

/// A daemon on `root` that syncs every 60 s, after its first sync.
fn started(root: &Path) -> Daemon {
    let d = Daemon::start(root, &[]);
    poll_until("the first sync", || (ok_syncs(&d) >= 1.0).then_some(()));
    d
}

/// Publishes on `peer` and pushes it with `mesh-sync`; returns the event id.
fn published_by(peer: &Path, n: u32) -> String {
    let ev = publish_event(
        peer,
        "monitoring",
        "test.tick",
        &["--payload-json", &format!(r#"{{"n":{n}}}"#)],
    );
    common::sync(peer);
    ev["event_id"].as_str().unwrap().to_string()
}

/// Two nodes; the first never polls, so only a sync brings it the second's events.
fn quiet_pair(env: &TestEnv) -> (std::path::PathBuf, std::path::PathBuf) {
    let [a, b] = env.nodes(["qa", "qb"]);
    set_config_key(&a, "poll_budget", "0");
    (a, b)
}

#[test]
fn sigusr1_syncs_at_once() {
    let env = TestEnv::with_remote();
    let (a, b) = quiet_pair(&env);
    let d = started(&a);
    assert_eq!(d.metric("gitmesh_poll_period_seconds", &[]), 0.0);
    let id = published_by(&b, 1);

    let t0 = Instant::now();
    d.signal("USR1");
    poll_until("the event after SIGUSR1", || {
        has_event(&a, &id).then_some(())
    });
    eprintln!("imported {:?} after SIGUSR1", t0.elapsed());
    assert!(t0.elapsed() < WAIT);
    poll_until("the sync recorded", || (ok_syncs(&d) >= 2.0).then_some(()));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ok_syncs(&d), 2.0, "one sync at start, one asked for");
    assert_eq!(d.metric("gitmesh_sync_requests_total", &[]), 1.0);
}

#[test]
fn post_sync_syncs_at_once_and_refuses_other_origins() {
    let env = TestEnv::with_remote();
    let (a, b) = quiet_pair(&env);
    let d = started(&a);
    let id = published_by(&b, 2);

    let (code, body) = http_request(&d.addr, "POST", "/sync", &["Origin: http://evil.example"])
        .expect("POST /sync");
    assert_eq!(code, 403, "{body}");
    let (code, _) = http_request(&d.addr, "GET", "/sync", &[]).expect("GET /sync");
    assert_eq!(code, 405, "only POST starts a sync");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(ok_syncs(&d), 1.0, "a refused request started no sync");
    assert!(!has_event(&a, &id));

    let t0 = Instant::now();
    // Requests made together coalesce into one sync.
    for _ in 0..3 {
        let (code, body) = http_request(&d.addr, "POST", "/sync", &[]).expect("POST /sync");
        assert_eq!(code, 202, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v, serde_json::json!({"ok": true, "queued": true}));
    }
    poll_until("the event after POST /sync", || {
        has_event(&a, &id).then_some(())
    });
    eprintln!("imported {:?} after POST /sync", t0.elapsed());
    std::thread::sleep(Duration::from_millis(2500));
    let syncs = ok_syncs(&d);
    assert!(
        (2.0..=3.0).contains(&syncs),
        "three requests at once ran {} syncs",
        syncs - 1.0
    );
}

#[test]
fn a_burst_of_appends_is_pushed_as_one_commit_without_waiting_for_the_interval() {
    let env = TestEnv::with_remote();
    let a = env.node("ba");
    set_config_key(&a, "poll_budget", "0");
    set_config_key(&a, "push_debounce", "\"2s\"");
    let d = started(&a);
    let commits = || {
        common::git(env.remote(), &["rev-list", "--count", "main"])
            .trim()
            .parse::<u32>()
            .unwrap()
    };
    let before = commits();
    let ticks = || {
        common::outbox_events(env.remote(), "ba")
            .iter()
            .filter(|(_, e)| e["event_type"] == "test.tick")
            .count()
    };
    assert_eq!(ticks(), 0);
    for n in 0..5 {
        publish_event(
            &a,
            "monitoring",
            "test.tick",
            &["--payload-json", &format!(r#"{{"n":{n}}}"#)],
        );
    }
    poll_until("the burst on the remote", || (ticks() == 5).then_some(()));
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(commits(), before + 1, "five appends, one commit");
    assert_eq!(ok_syncs(&d), 1.0, "pushed by the push pass, not a sync");
    assert_eq!(
        d.metric("gitmesh_push_runs_total", &[("result", "ok")]),
        1.0
    );
}

#[test]
fn a_poll_that_sees_the_remote_move_imports_without_waiting_for_the_interval() {
    poll_imports("shared-branch");
}

#[test]
fn a_poll_sees_a_peers_own_ref_move_in_per_node_mode() {
    poll_imports("per-node-refs");
}

fn poll_imports(mode: &str) {
    let env = TestEnv::with_remote();
    let a = env.node_with("pa", &["--ledger-mode", mode]);
    let b = env.node_with("pb", &["--ledger-mode", mode]);
    let da = started(&a);
    let db = started(&b);
    assert_eq!(da.metric("gitmesh_poll_period_seconds", &[]), 1.0);
    let ev = publish_event(
        &b,
        "monitoring",
        "test.tick",
        &["--payload-json", r#"{"n":7}"#],
    );
    let id = ev["event_id"].as_str().unwrap().to_string();

    let t0 = Instant::now();
    poll_until("the peer's event", || has_event(&a, &id).then_some(()));
    eprintln!("publish to peer's log in {:?}", t0.elapsed());
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    // The event is in the log once import appends it; the poll is counted when
    // its pass, dispatch included, ends.
    poll_until("the poll that moved, counted", || {
        (da.metric("gitmesh_polls_moved_total", &[]) >= 1.0).then_some(())
    });
    assert_eq!(ok_syncs(&da), 1.0, "no full sync between");
    assert_eq!(ok_syncs(&db), 1.0, "no full sync between");
    // A poll is one fetch: a ref advertisement, and objects only when a head moved.
    let polls = da.metric("gitmesh_poll_runs_total", &[("result", "ok")]);
    assert!(polls >= 1.0);
    assert_eq!(
        da.metric("gitmesh_remote_requests_total", &[("op", "ls_remote")]),
        0.0
    );
    assert!(da.metric("gitmesh_remote_requests_total", &[("op", "fetch")]) >= polls);
    // Nothing twice.
    let ids = common::event_ids(&a, &[]);
    assert_eq!(ids.iter().filter(|e| **e == id).count(), 1);
}

#[test]
fn a_flood_of_sync_requests_runs_at_most_one_sync_a_second() {
    let env = TestEnv::with_remote();
    let (a, b) = quiet_pair(&env);
    let d = started(&a);
    let id = published_by(&b, 3);
    let pid = d.child.id() as libc::pid_t;

    let t0 = Instant::now();
    // 2,000 signals and 100 HTTP requests over about three seconds.
    for round in 0..100 {
        for _ in 0..20 {
            // SAFETY: kill(2) on the pid of a child this test started and still owns.
            assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
        }
        let (code, body) = http_request(&d.addr, "POST", "/sync", &[]).expect("POST /sync");
        assert_eq!(code, 202, "request {round}: {body}");
        std::thread::sleep(Duration::from_millis(30));
    }
    let flood = t0.elapsed();
    poll_until("the event after the flood", || {
        has_event(&a, &id).then_some(())
    });
    std::thread::sleep(Duration::from_millis(2500));
    let window = t0.elapsed().as_secs_f64();
    let syncs = ok_syncs(&d) - 1.0;
    eprintln!("{syncs} syncs for a flood of {flood:?}, {window:.1} s observed");
    assert!(syncs >= 1.0, "the flood asked for a sync");
    assert!(
        syncs <= window.ceil() + 1.0,
        "{syncs} syncs in {window:.1} s: requests must coalesce to at most one a second"
    );
    let requests = d.metric("gitmesh_remote_requests_total", &[("op", "fetch")]);
    assert!(
        requests <= syncs + 2.0,
        "{requests} fetches for {syncs} syncs"
    );
    let (code, body) = http_get(&d.addr, "/healthz").expect("GET /healthz");
    assert_eq!(code, 200, "the daemon still answers: {body}");
    assert_eq!(
        common::event_ids(&a, &[])
            .iter()
            .filter(|e| **e == id)
            .count(),
        1,
        "imported once"
    );
}
