//! Following the log: `events --follow` as a child process and `/events/stream` resumes.

use crate::common::mesh::{Work, key_of, own_events, publish, reasons, signed_line};
use crate::common::{TestEnv, deliver, gm, publish_event, sync};
use crate::daemon_support::{Daemon, Sse, WAIT};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running `gitmesh events --follow`, its stdout read line by line on a thread.
struct Follow {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Follow {
    fn start(root: &Path, args: &[&str]) -> Follow {
        let mut c = gm(root);
        c.args(["--json", "events", "--follow"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn events --follow");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Follow { child, lines }
    }

    /// The next printed event (bounded by [`WAIT`]).
    fn next(&self) -> Value {
        let line = self
            .lines
            .recv_timeout(WAIT)
            .expect("events --follow printed nothing");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// The `event_type`s of the next `n` printed events.
    fn next_types(&self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| self.next()["event_type"].as_str().unwrap().to_string())
            .collect()
    }

    /// Whether nothing more is printed within `d`.
    fn quiet_for(&self, d: Duration) -> bool {
        self.lines.recv_timeout(d).is_err()
    }

    /// Sends `signal` to the child's pid and returns its exit status and stderr.
    fn stop(mut self, signal: i32) -> (std::process::ExitStatus, String) {
        // SAFETY: plain kill(2) of the child we started, by its pid.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        let started = std::time::Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return (st, err);
            }
            if started.elapsed() > WAIT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("events --follow did not stop on signal {signal}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn log_len(root: &Path) -> u64 {
    std::fs::metadata(root.join("artifacts/event_mesh/events.ndjson"))
        .unwrap()
        .len()
}

#[test]
fn follow_resumes_after_an_id_and_applies_patterns_to_new_events() {
    let env = TestEnv::new();
    let root = env.node("fo1");
    let first = publish_event(&root, "routing", "route.a", &[]);
    publish_event(&root, "scaling", "decision.made", &[]);
    publish_event(&root, "routing", "route.b", &[]);
    let after = first["event_id"].as_str().unwrap();

    let f = Follow::start(&root, &["--after", after, "--pattern", "routing.route.*"]);
    // What was stored after the id, filtered; then what is appended while it runs.
    assert_eq!(f.next_types(1), ["route.b"]);
    publish_event(&root, "scaling", "decision.late", &[]);
    publish_event(&root, "routing", "route.c", &[]);
    publish_event(&root, "routing", "route.deep.x", &[]);
    publish_event(&root, "routing", "route.d", &[]);
    let got: Vec<Value> = (0..2).map(|_| f.next()).collect();
    let types: Vec<&str> = got
        .iter()
        .map(|v| v["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["route.c", "route.d"],
        "route.deep.x has two segments after route"
    );
    assert_eq!(got[0]["topic"], "routing");
    assert!(
        f.quiet_for(Duration::from_millis(1500)),
        "nothing else matches"
    );
    let (st, err) = f.stop(libc::SIGTERM);
    assert!(st.success(), "SIGTERM ends a follow cleanly: {st} {err}");
}

#[test]
fn follow_resumes_from_an_offset_with_topic_and_type_filters_and_prints_each_event_once() {
    let env = TestEnv::new();
    let root = env.node("fo2");
    publish_event(&root, "routing", "route.a", &[]);
    let offset = log_len(&root).to_string();
    publish_event(&root, "routing", "route.b", &[]);
    publish_event(&root, "routing", "other.b", &[]);

    let f = Follow::start(
        &root,
        &[
            "--from-offset",
            &offset,
            "--topic",
            "routing",
            "--event-type",
            "route.*",
        ],
    );
    assert_eq!(f.next_types(1), ["route.b"], "starts right at the offset");
    // Many appends while it follows, some of them in one batch: each printed once, in order.
    for i in 0..5 {
        publish_event(&root, "routing", &format!("route.n{i}"), &[]);
    }
    let batch: String = (0..20)
        .map(|i| {
            format!(
                "{{\"topic\":\"{}\",\"event_type\":\"route.m{i}\",\"payload\":{{}}}}\n",
                if i % 2 == 0 { "routing" } else { "scaling" }
            )
        })
        .collect();
    let out = crate::common::run_with_stdin(
        {
            let mut c = gm(&root);
            c.args(["mesh-publish", "--stdin"]);
            c
        },
        batch.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut want: Vec<String> = (0..5).map(|i| format!("route.n{i}")).collect();
    want.extend((0..20).step_by(2).map(|i| format!("route.m{i}")));
    assert_eq!(f.next_types(want.len()), want);
    assert!(f.quiet_for(Duration::from_millis(1500)), "no event twice");
    let (st, err) = f.stop(libc::SIGINT);
    assert!(st.success(), "SIGINT ends a follow cleanly: {st} {err}");

    // A bad resume point is refused, naming what is wrong.
    let mut c = gm(&root);
    c.args(["events", "--follow", "--from-offset", "3"]);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("offset 3"));
}

#[test]
fn a_plain_follow_prints_only_what_is_published_after_it_started() {
    let env = TestEnv::new();
    let root = env.node("fo3");
    publish_event(&root, "coordination", "note.old", &[]);
    let f = Follow::start(&root, &[]);
    // It prints nothing stored before it started; publish until it has started and prints.
    let mut published = 0;
    let first = loop {
        assert!(
            published < 40,
            "events --follow printed none of the new events"
        );
        publish_event(&root, "coordination", &format!("note.new{published}"), &[]);
        published += 1;
        if let Ok(line) = f.lines.recv_timeout(Duration::from_millis(300)) {
            break serde_json::from_str::<Value>(&line).unwrap();
        }
    };
    let first = first["event_type"].as_str().unwrap().to_string();
    let k: usize = first.strip_prefix("note.new").unwrap().parse().unwrap();
    publish_event(&root, "coordination", "note.last", &[]);
    // From the first it printed on, every event exactly once and in order.
    let mut want: Vec<String> = (k + 1..published).map(|i| format!("note.new{i}")).collect();
    want.push("note.last".into());
    assert_eq!(f.next_types(want.len()), want);
    assert!(f.quiet_for(Duration::from_millis(1200)));
    let (st, _) = f.stop(libc::SIGTERM);
    assert!(st.success());
}

#[test]
fn sse_resumes_after_last_event_id_with_filters() {
    let env = TestEnv::new();
    let root = env.node("ssr1");
    let a = publish_event(&root, "coordination", "note.a", &[]);
    publish_event(&root, "other", "note.x", &[]);
    let b = publish_event(&root, "coordination", "note.b", &[]);
    let d = Daemon::start(&root, &["--interval", "1h"]);
    let aid = a["event_id"].as_str().unwrap();

    // A reconnecting EventSource sends the last id it saw as a header.
    let mut s = Sse::open_at(
        &d.addr,
        "/events/stream?topic=coordination&type=note.*",
        &[("Last-Event-ID", aid)],
    );
    let m = s.next_message();
    assert_eq!(m.id.as_deref(), b["event_id"].as_str(), "{m:?}");
    let v: Value = serde_json::from_str(&m.data).unwrap();
    assert_eq!(v, b, "the message carries the stored envelope");
    let c = publish_event(&root, "coordination", "note.c", &[]);
    publish_event(&root, "other", "note.y", &[]);
    let m = s.next_message();
    assert_eq!(m.id.as_deref(), c["event_id"].as_str(), "{m:?}");
    assert!(
        s.quiet_for(Duration::from_millis(1500)),
        "filtered out, or sent twice"
    );

    // Resuming from the id just received (query fallback) sends nothing old again.
    let cid = c["event_id"].as_str().unwrap();
    let mut again = Sse::open_at(
        &d.addr,
        &format!("/events/stream?pattern=coordination.note.%2A&last_event_id={cid}"),
        &[],
    );
    let e = publish_event(&root, "coordination", "note.e", &[]);
    let m = again.next_message();
    assert_eq!(m.id.as_deref(), e["event_id"].as_str(), "{m:?}");

    // An id the log does not hold: the stream says so, then carries new events.
    let mut reset = Sse::open_at(
        &d.addr,
        "/events/stream",
        &[("Last-Event-ID", "evt_00000000000000000000000000000000")],
    );
    let m = reset.next_message();
    assert_eq!(m.event.as_deref(), Some("reset"), "{m:?}");
    let f = publish_event(&root, "other", "note.f", &[]);
    assert_eq!(reset.next_message().id.as_deref(), f["event_id"].as_str());

    // A bad filter is refused before the stream starts.
    let (code, body) =
        crate::daemon_support::http_get(&d.addr, "/events/stream?pattern=a**").unwrap();
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("a**"), "{body}");
}

#[test]
fn one_bad_signature_among_many_quarantines_exactly_that_event() {
    let env = TestEnv::with_remote();
    let [victim, p] = env.nodes(["victim", "p"]);
    publish(&p, 2, "pin");
    deliver(&p, &victim, 2);
    // 300 more of p's events in one batch file: several 64-signature batches.
    publish(&p, 300, "bulk");
    let key = key_of(&p);
    let events = own_events(&p, "p");
    assert_eq!(events.len(), 302);
    let bad = events.len() - 20;
    let mut text = String::new();
    for (i, e) in events.iter().enumerate().skip(2) {
        let mut line = signed_line(e, &key);
        if i == bad {
            // Another event's valid signature: well formed, wrong for this event.
            let other: Value = serde_json::from_str(&signed_line(&events[3], &key)).unwrap();
            let mut v: serde_json::Map<String, Value> = serde_json::from_str(&line).unwrap();
            v.insert("sig".into(), other["sig"].clone());
            line = format!("{}\n", Value::Object(v));
        }
        text.push_str(&line);
    }
    let work = Work::clone(&env.url(), &env.path().join("work"));
    work.push_files(
        &[(
            "event_mesh/outbox/p/2027-01-01/000000000003.ndjson",
            text.as_bytes(),
        )],
        "p's bulk batch, one signature wrong",
    );
    let v = sync(&victim);
    assert_eq!(reasons(&v["import"]), ["bad_signature"], "{v}");
    let rejected = v["import"]["rejected"].to_string();
    assert!(
        rejected.contains(&events[bad].event_id),
        "the quarantine names the bad event: {rejected}"
    );
    // Every event before it is applied; those after it wait behind the gap it leaves.
    assert_eq!(v["import"]["imported_events"], (bad - 2) as u64, "{v}");
    let stored: Vec<String> = own_events(&victim, "p")
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert!(!stored.contains(&events[bad].event_id));
    assert!(stored.contains(&events[bad - 1].event_id));
}

#[test]
fn a_follow_ends_when_its_reader_goes_away_even_while_idle() {
    let env = TestEnv::new();
    let root = env.node("fo4");
    let mut c = gm(&root);
    c.args(["events", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().expect("spawn events --follow");
    let mut out = child.stdout.take().expect("stdout");
    // The table header shows it is running; then the reader closes the pipe.
    let mut first = [0u8; 9];
    std::io::Read::read_exact(&mut out, &mut first).unwrap();
    assert_eq!(&first, b"TIMESTAMP");
    drop(out);
    let started = std::time::Instant::now();
    let st = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if started.elapsed() > WAIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("events --follow kept running with no reader");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(st.success(), "{st}");
}

#[test]
fn resume_points_are_found_across_sealed_segments_without_the_lock() {
    use crate::log_segments::{lines_of, node, publish_batches, seg_dir};
    use gitmesh::ops::follow::{Resume, resume_offset};
    let env = TestEnv::new();
    let n = node(&env, "fs1", 3000);
    publish_batches(&n, 300);
    let root = env.path().join("fs1");
    let all = lines_of(&crate::log_segments::concatenated(&root));
    assert!(crate::log_segments::sealed_files(&root).len() >= 5);
    // Every id, sealed or active, resolves to its line; "after" is the next line's start.
    for (i, (off, e)) in all.iter().enumerate() {
        assert_eq!(n.log.find_id(&e.event_id).unwrap(), Some(*off));
        let next = all
            .get(i + 1)
            .map_or(n.log.read_head().unwrap().log_len, |x| x.0);
        assert_eq!(
            resume_offset(&n, &Resume::After(e.event_id.clone())).unwrap(),
            next
        );
        assert!(n.log.is_line_start(*off).unwrap());
        assert!(!n.log.is_line_start(*off + 1).unwrap());
    }
    // A sealed segment whose index is gone is read instead (that segment only).
    let idx: Vec<_> = std::fs::read_dir(seg_dir(&root))
        .unwrap()
        .map(|d| d.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "idx"))
        .collect();
    assert!(!idx.is_empty());
    std::fs::remove_file(&idx[0]).unwrap();
    for (off, e) in all.iter().take(20) {
        assert_eq!(n.log.find_id(&e.event_id).unwrap(), Some(*off));
    }
    // Nothing was written back: a reader never rebuilds an index.
    assert!(!idx[0].exists());
    assert_eq!(
        n.log
            .find_id("evt_00000000000000000000000000000000")
            .unwrap(),
        None
    );
}
