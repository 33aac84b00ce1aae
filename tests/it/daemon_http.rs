//! The daemon's HTTP endpoints, against the real binary on temp node roots.

use crate::common;
use crate::common::{TestEnv, field, publish_event};
use crate::daemon_support::{Daemon, Sse, enqueue, http_get, parse_prometheus, poll_until};
use std::time::Instant;

#[test]
fn status_endpoint_serves_the_mesh_status_object() {
    let env = TestEnv::new();
    let root = env.node("st1");
    // No built-in handler reacts to this type, so the daemon's first dispatch adds nothing.
    publish_event(&root, "coordination", "note.added", &[]);
    let d = Daemon::start(&root, &[]);
    let v = d.get_json("/status");
    assert_eq!(v["ok"], true);
    assert_eq!(v["node_id"], "st1");
    assert_eq!(v["event_count"], 1);
    let cli = common::json_ok(&root, &["mesh-status"]);
    let keys = |o: &serde_json::Value| {
        let mut k: Vec<String> = o.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&v),
        keys(&cli),
        "/status must carry the mesh-status keys"
    );
}

#[test]
fn metrics_parse_as_prometheus_text_and_count_topics() {
    let env = TestEnv::new();
    let root = env.node("me1");
    publish_event(&root, "routing", "route.requested", &[]);
    publish_event(&root, "routing", "route.requested", &[]);
    publish_event(&root, "scaling", "decision.requested", &[]);
    let d = Daemon::start(&root, &[]);
    let text = d.get("/metrics");
    let m = parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for family in [
        "gitmesh_log_events",
        "gitmesh_imported_events_total",
        "gitmesh_exported_events_total",
        "gitmesh_quarantined_items",
        "gitmesh_quarantined_total",
        "gitmesh_dead_letter_events",
        "gitmesh_sync_runs_total",
        "gitmesh_sync_last_duration_seconds",
        "gitmesh_sync_last_result",
        "gitmesh_push_retries_total",
        "gitmesh_dispatch_lag_events",
        "gitmesh_leader_epoch",
        "gitmesh_peer_stale",
        "gitmesh_peer_last_seen_age_seconds",
        "gitmesh_clock_alerts",
        "gitmesh_leadership_changes_total",
    ] {
        assert!(
            m.types.contains_key(family),
            "missing family {family}\n{text}"
        );
    }
    assert_eq!(m.types["gitmesh_sync_runs_total"], "counter");
    assert_eq!(
        m.value("gitmesh_log_events", &[("topic", "routing")]),
        Some(2.0)
    );
    assert_eq!(
        m.value("gitmesh_log_events", &[("topic", "scaling")]),
        Some(1.0)
    );
    assert_eq!(m.value("gitmesh_info", &[("node_id", "me1")]), Some(1.0));
    // The daemon syncs once at start; whatever its result, it is counted.
    let synced = poll_until("first sync counted", || {
        let t = d.get("/metrics");
        let m = parse_prometheus(&t).ok()?;
        (m.sum("gitmesh_sync_runs_total") >= 1.0).then_some(m)
    });
    assert_eq!(synced.sum("gitmesh_sync_last_result"), 1.0);
}

#[test]
fn a_publish_reaches_the_stream_and_triggers_a_dispatch_pass() {
    let env = TestEnv::new();
    let root = env.node("sse1");
    let d = Daemon::start(&root, &["--interval", "1h"]);
    let before = parse_prometheus(&d.get("/metrics")).unwrap();
    let dispatches_before = before.sum("gitmesh_dispatch_runs_total");
    let mut sse = Sse::open(&d.addr);

    let t0 = Instant::now();
    let ev = enqueue(&root, "t-1");
    let id = ev["event_id"].as_str().unwrap().to_string();
    let got = sse.wait_for(|v| v["event_id"] == id.as_str());
    let seen_after = t0.elapsed();
    assert_eq!(got, ev, "the stream carries the stored envelope");
    eprintln!("event {id} on /events/stream {seen_after:?} after the publish started");

    // The watcher ran a dispatch pass: the scheduler's follow-up reaches the stream too.
    let followup =
        sse.wait_for(|v| v["causation_id"] == id.as_str() && v["event_type"] == "task.scheduled");
    eprintln!(
        "follow-up on /events/stream {:?} after the publish started",
        t0.elapsed()
    );
    assert_eq!(followup["source"], "mesh-dispatch");
    poll_until("the dispatch pass counted in /metrics", || {
        let m = parse_prometheus(&d.get("/metrics")).ok()?;
        (m.sum("gitmesh_dispatch_runs_total") > dispatches_before
            && m.value("gitmesh_log_events", &[("topic", "scheduling")])
                .unwrap_or(0.0)
                >= 2.0)
            .then_some(())
    });
}

#[test]
fn recent_events_and_trace_follow_the_causal_chain() {
    let env = TestEnv::new();
    let root = env.node("tr1");
    // Types no built-in handler reacts to, so the daemon's own dispatch adds nothing here.
    let rootev = publish_event(&root, "coordination", "note.added", &[]);
    let rid = rootev["event_id"].as_str().unwrap();
    let child = publish_event(
        &root,
        "coordination",
        "note.replied",
        &["--causation-id", rid],
    );
    let cid = child["event_id"].as_str().unwrap();
    let unrelated = publish_event(
        &root,
        "coordination",
        "note.added",
        &["--payload-json", r#"{"n":2}"#],
    );
    let d = Daemon::start(&root, &[]);

    let recent = d.get_json("/events/recent?limit=2");
    let ids = field(recent["events"].as_array().unwrap(), "event_id");
    assert_eq!(ids, vec![cid, unrelated["event_id"].as_str().unwrap()]);

    let t = d.get_json(&format!("/trace/{cid}"));
    assert_eq!(t["ok"], true);
    assert_eq!(t["root"], rid);
    let chain: Vec<(&str, u64)> = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event_id"].as_str().unwrap(),
                e["depth"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(chain, vec![(rid, 0), (cid, 1)]);

    let (code, body) = http_get(&d.addr, "/trace/evt_00000000000000000000000000000000").unwrap();
    assert_eq!(code, 404, "{body}");
    let (code, _) = http_get(&d.addr, "/trace/not-an-id").unwrap();
    assert_eq!(code, 400);
}

#[test]
fn dashboard_is_one_self_contained_page() {
    let env = TestEnv::new();
    let root = env.node("db1");
    let d = Daemon::start(&root, &[]);
    let (code, page) = http_get(&d.addr, "/").unwrap();
    assert_eq!(code, 200);
    assert!(page.contains("<html") && page.contains("EventSource(\"/events/stream\""));
    for external in ["src=\"http", "href=\"http", "@import", "url(http", "//cdn"] {
        assert!(
            !page.contains(external),
            "page loads an external asset: {external}"
        );
    }
}

#[test]
fn non_loopback_listen_is_refused_without_the_explicit_flag() {
    let env = TestEnv::new();
    let root = env.node("lo1");
    let mut c = common::gm(&root);
    c.args(["--json", "daemon", "--listen", "0.0.0.0:0"]);
    let out = common::run(c);
    assert_eq!(out.status.code(), Some(2));
    let v = common::parse_json(&out);
    assert_eq!(v["error"]["kind"], "usage");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--listen-any")
    );
}

/// A daemon on a fresh node `id` that syncs only at start (the tests below are about HTTP).
fn quiet_daemon(id: &str) -> (TestEnv, Daemon) {
    let env = TestEnv::new();
    let d = Daemon::start(&env.node(id), &["--interval", "1h"]);
    (env, d)
}

/// GET `target` from the daemon at `addr` as `Host: host` plus `headers` (each ending in CRLF),
/// on a new connection read until the daemon closes it: status code, lower-cased head, body.
fn request(addr: &str, target: &str, host: &str, headers: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(crate::daemon_support::WAIT))
        .unwrap();
    let req =
        format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n");
    // The daemon may answer and close before reading all of an oversized request.
    if let Err(e) = s.write_all(req.as_bytes()) {
        assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ),
            "{e}"
        );
    }
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_ascii_lowercase(), body.to_string())
}

#[test]
fn requests_for_another_host_are_refused_against_dns_rebinding() {
    let (_env, d) = quiet_daemon("host1");
    let status_as = |host: &str| request(&d.addr, "/status", host, "");
    let (code, _, body) = status_as("evil.example");
    assert_eq!(code, 421, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["kind"], "host");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("DNS rebinding"),
        "{body}"
    );
    // A rebinding page keeps the daemon's port but not its name.
    let port = d.addr.rsplit_once(':').unwrap().1;
    assert_eq!(status_as(&format!("evil.example:{port}")).0, 421);
    assert_eq!(status_as(&format!("localhost:{port}")).0, 200);
    assert_eq!(status_as(&format!("[::1]:{port}")).0, 200);
    // The absolute form of a request line names the host too.
    let absolute = format!("http://evil.example:{port}/status");
    assert_eq!(request(&d.addr, &absolute, &d.addr, "").0, 421);
}

#[test]
fn oversized_requests_are_refused() {
    let (_env, d) = quiet_daemon("big1");
    let (code, _, _) = request(&d.addr, "/status", &d.addr, "Content-Length: 1048576\r\n");
    assert_eq!(code, 413, "a 1 MiB body is refused before it is read");
    let filler = format!("X-Filler: {}\r\n", "x".repeat(128 * 1024));
    let (code, _, _) = request(&d.addr, "/status", &d.addr, &filler);
    assert_eq!(code, 431, "a 128 KiB head is refused");
    assert_eq!(d.get_json("/status")["ok"], true);
}

#[test]
fn metrics_are_openmetrics_when_the_scraper_asks_for_it() {
    let (_env, d) = quiet_daemon("om1");
    let (code, head, body) = request(&d.addr, "/metrics", &d.addr, "");
    assert_eq!(code, 200);
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(!body.contains("# EOF"));
    let accept = "Accept: application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3\r\n";
    let (code, head, body) = request(&d.addr, "/metrics", &d.addr, accept);
    assert_eq!(code, 200);
    assert!(
        head.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert!(
        body.contains("# TYPE gitmesh_sync_runs counter\n"),
        "{body}"
    );
    assert!(
        body.contains("gitmesh_sync_runs_total{result=\"ok\"}"),
        "{body}"
    );
}

/// Open file descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn idle_connections_cannot_exhaust_descriptors_or_lock_out_a_fresh_request() {
    // The documented limits: 256 connections, 10 s to send a request's headers.
    const CAP: usize = 256;
    const EXTRA: usize = 64;
    let (_env, d) = quiet_daemon("idle1");
    let pid = d.child.id();
    let before = open_fds(pid);
    let idle: Vec<std::net::TcpStream> = (0..CAP + EXTRA)
        .map(|_| std::net::TcpStream::connect(&d.addr).unwrap())
        .collect();
    let opened = Instant::now();
    // Give the daemon time to accept everything it is willing to.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let during = open_fds(pid);
    assert!(
        // A little slack for files the daemon itself opens meanwhile.
        during <= before + CAP + 8,
        "{during} descriptors with {} idle clients, {before} before",
        idle.len()
    );

    let (code, _, body) = request(&d.addr, "/status", &d.addr, "");
    let answered = opened.elapsed();
    eprintln!(
        "{during} descriptors (from {before}) with {} idle clients; a fresh /status answered after {answered:?}",
        idle.len()
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        answered < std::time::Duration::from_secs(25),
        "{answered:?}"
    );

    // The idle clients were disconnected by the daemon, not left open.
    use std::io::Read;
    let mut first = &idle[0];
    first
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 16];
    match first.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("an idle connection is closed after the header timeout: {other:?}"),
    }
    drop(idle);
    poll_until("descriptors released", || {
        (open_fds(pid) <= before + 8).then_some(())
    });
}

#[test]
fn pass_durations_are_a_histogram() {
    let (_env, d) = quiet_daemon("hist1");
    let m = poll_until("the first sync in the histogram", || {
        let m = parse_prometheus(&d.get("/metrics")).ok()?;
        (m.value("gitmesh_sync_duration_seconds_count", &[])? >= 1.0).then_some(m)
    });
    assert_eq!(m.types["gitmesh_sync_duration_seconds"], "histogram");
    let count = m.value("gitmesh_sync_duration_seconds_count", &[]);
    let everything = m.value("gitmesh_sync_duration_seconds_bucket", &[("le", "+Inf")]);
    assert_eq!(everything, count, "the +Inf bucket holds every pass");
    let last = m.value("gitmesh_sync_last_duration_seconds", &[]).unwrap();
    let sum = m.value("gitmesh_sync_duration_seconds_sum", &[]).unwrap();
    assert!(sum >= last && last > 0.0, "sum {sum}, last {last}");
}
