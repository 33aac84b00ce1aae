//! Crash safety and concurrency of the log: SIGKILL mid-batch, torn lines, 8 publishers.

use crate::common::{TestEnv, field, gm, json_ok, publish_args, publish_event, run_with_stdin};
use serde_json::Value;
use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;

fn stored(root: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(root.join("artifacts/event_mesh/events.ndjson"))
        .unwrap_or_default();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "log must end on a line boundary"
    );
    text.lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("unreadable stored line {l:?}: {e}"))
        })
        .collect()
}

fn assert_chain(events: &[Value], node: &str) {
    let own: Vec<&Value> = events.iter().filter(|e| e["node_id"] == node).collect();
    let mut prev = String::new();
    for (i, e) in own.iter().enumerate() {
        assert_eq!(
            e["seq"].as_u64().unwrap(),
            i as u64 + 1,
            "seq gap or repeat at {e}"
        );
        assert_eq!(
            e["prev"].as_str().unwrap(),
            prev,
            "prev chain broken at {e}"
        );
        prev = e["event_id"].as_str().unwrap().to_string();
    }
    let ids: HashSet<&str> = field(events, "event_id").into_iter().collect();
    assert_eq!(ids.len(), events.len(), "duplicate event ids");
}

#[test]
fn sigkill_during_a_large_stdin_batch_leaves_all_or_nothing() {
    let env = TestEnv::new();
    let root = env.node("ws1");
    let batch = 10_000;
    let mut input = String::with_capacity(batch * 80);
    for i in 0..batch {
        input.push_str(&format!("{{\"topic\":\"load\",\"event_type\":\"tick\",\"payload\":{{\"i\":{i},\"pad\":\"{}\"}}}}\n", "p".repeat(64)));
    }
    // Calibrate: how long one whole batch takes on this machine and build.
    let t0 = std::time::Instant::now();
    let mut c = gm(&root);
    c.args(["mesh-publish", "--stdin"]);
    assert!(run_with_stdin(c, input.as_bytes()).status.success());
    let full = t0.elapsed();
    let mut total = stored(&root).len();
    assert_eq!(total, batch);
    let mut killed_mid_write = 0;
    let rounds = 8u32;
    for round in 0..rounds {
        let mut c = gm(&root);
        c.args(["mesh-publish", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = c.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let data = input.clone();
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(data.as_bytes());
        });
        // Spread the kills over parsing, appending and fsync: 40% to 120% of a full run.
        std::thread::sleep(full * (40 + round * 80 / rounds) / 100);
        let pid = child.id() as i32;
        // SAFETY: pid is our own child, not yet reaped.
        unsafe { libc_kill(pid) };
        let status = child.wait().unwrap();
        let _ = feeder.join();
        // Readers never write: the next writer rolls a cut batch back; then the
        // batch is all there or absent.
        json_ok(&root, &["mesh-dispatch"]);
        let s = json_ok(&root, &["mesh-status"]);
        let events = stored(&root);
        let added = events.len() - total;
        assert!(
            added == 0 || added == batch,
            "round {round}: partial batch of {added} events visible"
        );
        assert_eq!(s["event_count"].as_u64().unwrap() as usize, events.len());
        if added == 0 && status.code().is_none() {
            killed_mid_write += 1;
        }
        total = events.len();
        assert_chain(&events, "ws1");
        eprintln!(
            "round {round}: added {added}, status {status:?}, quarantined {}",
            s["quarantined"]
        );
    }
    // The node keeps working afterwards.
    let p = json_ok(&root, &publish_args("t", "after.crash", &[]));
    assert_eq!(p["event"]["seq"].as_u64().unwrap() as usize, total + 1);
    assert!(killed_mid_write > 0 || total > batch);
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

unsafe fn libc_kill(pid: i32) {
    // SIGKILL = 9 on Linux.
    unsafe { kill(pid, 9) };
}

/// Node `ws1` holding one event; returns its root and its log file.
fn one_event_node(env: &TestEnv) -> (PathBuf, PathBuf) {
    let root = env.node("ws1");
    publish_event(&root, "t", "one", &[]);
    let log = root.join("artifacts/event_mesh/events.ndjson");
    (root, log)
}

#[test]
fn an_interrupted_multi_line_append_is_rolled_back() {
    let env = TestEnv::new();
    let (root, log) = one_event_node(&env);
    let start = std::fs::metadata(&log).unwrap().len();
    // What a writer killed mid-batch leaves: its marker, two whole lines and a torn third.
    let line = std::fs::read_to_string(&log).unwrap();
    let partial = format!("{line}{line}{}", &line[..10]);
    let end = start + 3 * line.len() as u64;
    std::fs::write(
        root.join("state/event_mesh/append.pending"),
        format!("{{\"start\":{start},\"end\":{end}}}"),
    )
    .unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(partial.as_bytes())
        .unwrap();
    let s = json_ok(&root, &["mesh-status"]);
    assert_eq!(s["event_count"], 1, "the half-written batch must not count");
    // Readers never write; the next writer rolls the batch back.
    json_ok(&root, &["mesh-dispatch"]);
    assert_eq!(std::fs::metadata(&log).unwrap().len(), start);
    assert!(!root.join("state/event_mesh/append.pending").exists());
    let q: Vec<_> = std::fs::read_dir(root.join("state/event_mesh/quarantine"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        q.iter()
            .any(|n| n.to_string_lossy().contains("incomplete-batch")),
        "{q:?}"
    );
}

#[test]
fn a_torn_last_line_is_quarantined_and_never_read() {
    let env = TestEnv::new();
    let (root, log) = one_event_node(&env);
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(b"{\"event_id\":\"evt_0123").unwrap();
    drop(f);
    assert_eq!(json_ok(&root, &["mesh-status"])["event_count"], 1);
    // Readers never write; the next writer quarantines the torn line.
    json_ok(&root, &["mesh-dispatch"]);
    let s = json_ok(&root, &["mesh-status"]);
    assert_eq!(s["event_count"], 1);
    assert_eq!(s["quarantined"], 1);
    let q: Vec<_> = std::fs::read_dir(root.join("state/event_mesh/quarantine"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        q.iter().any(|n| n.to_string_lossy().contains("torn-line")),
        "{q:?}"
    );
    let p = json_ok(
        &root,
        &["mesh-publish", "--topic", "t", "--event-type", "two"],
    );
    assert_eq!(p["event"]["seq"], 2);
    assert_eq!(stored(&root).len(), 2);
}

#[test]
fn eight_concurrent_publishers_never_interleave_or_lose_lines() {
    let env = TestEnv::new();
    let root = env.node("ws1");
    let per = 15;
    let mut handles = Vec::new();
    for w in 0..8 {
        let root = root.clone();
        handles.push(std::thread::spawn(move || {
            let mut ids = Vec::new();
            for i in 0..per {
                let payload = format!(
                    "{{\"writer\":{w},\"i\":{i},\"pad\":\"{}\"}}",
                    "z".repeat(300)
                );
                let v = publish_event(&root, "load", "w", &["--payload-json", &payload]);
                ids.push(v["event_id"].as_str().unwrap().to_string());
            }
            ids
        }));
    }
    let acked: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let events = stored(&root);
    assert_eq!(events.len(), 8 * per);
    assert_chain(&events, "ws1");
    let ids: HashSet<&str> = field(&events, "event_id").into_iter().collect();
    for id in &acked {
        assert!(ids.contains(id.as_str()), "acknowledged {id} missing");
    }
}
