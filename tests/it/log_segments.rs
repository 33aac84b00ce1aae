//! The log sealed into segments behaves exactly like one file: rotation, scans,
//! lookups, dedupe, concurrent publishers and readers (crashes mid-seal are in
//! `log_segments_recovery`).

use crate::common;
use crate::common::{TestEnv, field, gm, json_ok, publish_args};
use gitmesh::event::Envelope;
use gitmesh::log::{EventLog, SEGMENT_BYTES_ENV};
use gitmesh::node::{Draft, Node};
use gitmesh::paths::NodePaths;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

pub(crate) fn draft(i: usize) -> Draft {
    let payload = json!({"i": i, "pad": "x".repeat(i % 40)});
    Draft {
        topic: "monitoring".into(),
        event_type: "heartbeat.changed".into(),
        payload: payload.as_object().unwrap().clone(),
        ..Draft::default()
    }
}

/// A node root whose log seals at `segment_bytes`.
pub(crate) fn node(env: &TestEnv, name: &str, segment_bytes: u64) -> Node {
    let root = env.node(name);
    let mut n = Node::open(&root).unwrap();
    n.log = n.log.with_segment_bytes(segment_bytes);
    n
}

/// Publishes `total` events in batches of 1, 2, 3, ... and returns the batches' envelopes.
pub(crate) fn publish_batches(n: &Node, total: usize) -> Vec<Vec<Envelope>> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut size = 1;
    while i < total {
        let k = size.min(total - i);
        let drafts: Vec<Draft> = (i..i + k).map(draft).collect();
        out.push(
            n.publish(&drafts)
                .unwrap()
                .into_iter()
                .map(|p| p.event)
                .collect(),
        );
        i += k;
        size = size % 7 + 1;
    }
    out
}

pub(crate) fn seg_dir(root: &Path) -> PathBuf {
    root.join("artifacts/event_mesh/segments")
}

pub(crate) fn sealed_files(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(seg_dir(root))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "ndjson"));
    v.sort();
    v
}

/// The whole log as one byte string: sealed segments in order, then the active file.
pub(crate) fn concatenated(root: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for p in sealed_files(root) {
        all.extend(std::fs::read(p).unwrap());
    }
    all.extend(std::fs::read(root.join("artifacts/event_mesh/events.ndjson")).unwrap_or_default());
    all
}

/// `(offset, event)` of every line of a single-file log.
pub(crate) fn lines_of(bytes: &[u8]) -> Vec<(u64, Envelope)> {
    let mut out = Vec::new();
    let mut off = 0u64;
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        assert_eq!(line.last(), Some(&b'\n'), "a stored line has no newline");
        let env = Envelope::from_json_line(&line[..line.len() - 1]).unwrap();
        out.push((off, env));
        off += line.len() as u64;
    }
    out
}

pub(crate) fn scanned(log: &EventLog, from: u64, to: u64) -> Vec<(u64, Envelope)> {
    log.scan(from, to)
        .unwrap()
        .map(|r| {
            let (o, e) = r.unwrap();
            (o, e.unwrap())
        })
        .collect()
}

#[test]
fn the_active_file_is_sealed_once_it_reaches_the_threshold() {
    let env = TestEnv::new();
    let n = node(&env, "ws1", 4096);
    let root = n.paths.root.clone();
    let mut before = Vec::new();
    let mut published = 0;
    while sealed_files(&root).is_empty() {
        before = std::fs::read(n.log.path()).unwrap_or_default();
        n.publish(&[draft(published)]).unwrap();
        published += 1;
        assert!(published < 200, "no seal after {published} events");
    }
    // The append that crossed 4096 bytes sealed the file; the one before did not.
    assert!(before.len() < 4096);
    let sealed = std::fs::read(seg_dir(&root).join("events-000001.ndjson")).unwrap();
    assert!(sealed.len() >= 4096 && sealed.starts_with(&before));
    assert_eq!(std::fs::metadata(n.log.path()).unwrap().len(), 0);
    assert!(seg_dir(&root).join("events-000001.idx").exists());
    assert_eq!(n.log.end_offset().unwrap(), sealed.len() as u64);
    let segs = n.log.sealed_segments().unwrap();
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].number, 1);
    assert_eq!(segs[0].base, 0);
    assert_eq!(segs[0].bytes, sealed.len() as u64);
    assert_eq!(segs[0].events, published as u64);
    let head = n.log.head().unwrap();
    assert_eq!(head.log_len, sealed.len() as u64);
    assert_eq!(head.event_count, published as u64);
    assert_eq!(segs[0].head, head);
    // The manifest is plain JSON a person can read.
    let m: Value =
        serde_json::from_slice(&std::fs::read(seg_dir(&root).join("segments.json")).unwrap())
            .unwrap();
    assert_eq!(m["version"], 1);
    assert_eq!(m["segments"][0]["bytes"], sealed.len() as u64);
    // The next event goes to the new active file at the next global offset.
    let p = n.publish(&[draft(999)]).unwrap();
    assert_eq!(n.log.end_offset().unwrap(), n.log.head().unwrap().log_len);
    let w = n.log.writer();
    let mut w = w.unwrap();
    assert_eq!(
        w.lookup(&p[0].event.event_id).unwrap(),
        Some(sealed.len() as u64)
    );
}

#[test]
fn scans_reads_and_lookups_across_segments_match_a_single_file() {
    let env = TestEnv::new();
    let single = node(&env, "ws1", u64::MAX);
    let batches = publish_batches(&single, 400);
    // The same appends into a log that seals every ~3 KB.
    let seg_root = env.path().join("segmented");
    let seg_log = EventLog::new(&NodePaths::new(&seg_root), "ws1").with_segment_bytes(3000);
    {
        let mut w = seg_log.writer().unwrap();
        for b in &batches {
            w.append(b).unwrap();
        }
    }
    let nseg = sealed_files(&seg_root).len();
    assert!(nseg >= 10, "expected many segments, got {nseg}");
    let whole = std::fs::read(single.log.path()).unwrap();
    assert_eq!(
        concatenated(&seg_root),
        whole,
        "segments laid end to end are the log"
    );
    let expected = lines_of(&whole);
    let len = whole.len() as u64;
    let head_single = single.log.head().unwrap();
    let head_seg = seg_log.head().unwrap();
    assert_eq!(head_seg, head_single);
    assert_eq!(head_seg.log_len, len);

    assert_eq!(scanned(&seg_log, 0, len), expected);
    // Ranges that start and end anywhere (on line boundaries) across segment borders.
    for (a, b) in [(1, 5), (37, 210), (100, 101), (0, 399), (250, 400)] {
        let from = expected[a].0;
        let to = expected.get(b).map_or(len, |x| x.0);
        assert_eq!(scanned(&seg_log, from, to), expected[a..b].to_vec());
        assert_eq!(seg_log.count_lines(from, to).unwrap(), (b - a) as u64);
    }
    let rev: Vec<(u64, Envelope)> = seg_log
        .scan_rev(len)
        .unwrap()
        .map(|r| {
            let (o, e) = r.unwrap();
            (o, e.unwrap())
        })
        .collect();
    let mut want_rev = expected.clone();
    want_rev.reverse();
    assert_eq!(rev, want_rev);
    // A reverse scan from a mid-log committed length.
    let mid = expected[123].0;
    assert_eq!(seg_log.scan_rev(mid).unwrap().count(), 123);

    // A batch lookup (one pass over the active records, then the sealed indexes)
    // agrees with one lookup per id, before and after a writer has built its map.
    let mut ids: Vec<&str> = expected.iter().map(|(_, e)| e.event_id.as_str()).collect();
    ids.extend([
        "evt_00000000000000000000000000000000",
        "not-an-id",
        expected[5].1.event_id.as_str(),
    ]);
    let mut want: Vec<Option<u64>> = expected.iter().map(|(o, _)| Some(*o)).collect();
    want.extend([None, None, Some(expected[5].0)]);
    assert_eq!(seg_log.writer().unwrap().lookup_many(&ids).unwrap(), want);

    let mut w = seg_log.writer().unwrap();
    for (off, env) in &expected {
        assert_eq!(seg_log.read_at(*off).unwrap().as_ref(), Some(env));
        assert_eq!(w.lookup(&env.event_id).unwrap(), Some(*off));
        assert_eq!(w.get(&env.event_id).unwrap().as_ref(), Some(env));
    }
    assert_eq!(w.lookup_many(&ids).unwrap(), want);
    assert!(!w.contains("evt_00000000000000000000000000000000").unwrap());
    assert!(!w.contains("not-an-id").unwrap());
    assert_eq!(seg_log.read_at(len).unwrap(), None);
}

#[test]
fn readers_holding_old_offsets_keep_working_after_seals() {
    let env = TestEnv::new();
    let n = node(&env, "ws1", 2000);
    publish_batches(&n, 10);
    let cursor = n.log.head().unwrap().log_len;
    let later: Vec<Envelope> = publish_batches(&n, 60).into_iter().flatten().collect();
    assert!(n.log.sealed_segments().unwrap().len() >= 3);
    let end = n.log.head().unwrap().log_len;
    let got: Vec<Envelope> = scanned(&n.log, cursor, end)
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    assert_eq!(got, later);
}

pub(crate) fn cli(root: &Path, segment_bytes: u64, args: &[&str]) -> Value {
    let mut c = gm(root);
    c.env(SEGMENT_BYTES_ENV, segment_bytes.to_string())
        .arg("--json")
        .args(args);
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub(crate) fn cli_stdin(root: &Path, segment_bytes: u64, input: &str) -> Value {
    let mut c = gm(root);
    c.env(SEGMENT_BYTES_ENV, segment_bytes.to_string())
        .args(["--json", "mesh-publish", "--stdin"]);
    let out = common::run_with_stdin(c, input.as_bytes());
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn cli_dedupe_events_and_status_work_across_segments() {
    let env = TestEnv::new();
    let root = env.node("ws1");
    let seg = 1500;
    // The same dedupe key each time; only the first publish is stored.
    let keyed = |task: &str| {
        let payload = format!(r#"{{"task_id":"{task}"}}"#);
        let extra = ["--dedupe-key", "job-1", "--payload-json", &payload];
        cli(
            &root,
            seg,
            &publish_args("scheduling", "task.enqueued", &extra),
        )
    };
    let first = keyed("t1");
    let first_id = first["event"]["event_id"].as_str().unwrap().to_string();
    for round in 0..6 {
        let mut input = String::new();
        for i in 0..5 {
            input.push_str(&format!(
                "{{\"topic\":\"monitoring\",\"event_type\":\"heartbeat.changed\",\"payload\":{{\"round\":{round},\"i\":{i}}}}}\n"
            ));
        }
        assert_eq!(cli_stdin(&root, seg, &input)["published"], 5);
        cli(&root, seg, &publish_args("monitoring", "tick", &[]));
    }
    assert!(
        sealed_files(&root).len() >= 3,
        "the log should have rotated"
    );
    // The keyed event is in the first sealed segment; a repeat finds it there.
    let again = keyed("other");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["event"], first["event"]);
    // A follow-up of the old event takes its correlation id from the sealed segment.
    let follow = cli(
        &root,
        seg,
        &publish_args(
            "scheduling",
            "task.scheduled",
            &[
                "--causation-id",
                &first_id,
                "--payload-json",
                r#"{"task_id":"t1"}"#,
            ],
        ),
    );
    assert_eq!(follow["event"]["correlation_id"], first_id.as_str());

    let all = lines_of(&concatenated(&root));
    let total = all.len();
    assert_eq!(total, 1 + 6 * 6 + 1);
    let listed = cli(&root, seg, &["events"]);
    let listed = listed["events"].as_array().unwrap();
    assert_eq!(listed.len(), total);
    for (got, (_, want)) in listed.iter().zip(&all) {
        assert_eq!(got["event_id"], want.event_id.as_str());
    }
    let last = cli(&root, seg, &["events", "--limit", "20"]);
    let last = field(last["events"].as_array().unwrap(), "event_id");
    let want: Vec<&str> = all[total - 20..]
        .iter()
        .map(|(_, e)| e.event_id.as_str())
        .collect();
    assert_eq!(last, want);
    let s = cli(&root, seg, &["mesh-status"]);
    assert_eq!(s["event_count"], total as u64);
    assert_eq!(s["last_seq"], total as u64);
    assert_eq!(s["dispatch_lag"], total as u64);
    // Without the override (default threshold) the same log reads the same.
    assert_eq!(
        json_ok(&root, &["mesh-status"])["event_count"],
        total as u64
    );
}

#[test]
fn concurrent_publishers_never_lose_or_repeat_events_across_seals() {
    let env = TestEnv::new();
    let root = env.node("ws1");
    let seg = 2000;
    let procs = 4;
    let per = 12;
    let mut children = Vec::new();
    for p in 0..procs {
        let mut input = String::new();
        for i in 0..per {
            input.push_str(&format!(
                "{{\"topic\":\"monitoring\",\"event_type\":\"tick\",\"payload\":{{\"p\":{p},\"i\":{i}}}}}\n"
            ));
        }
        let root = root.clone();
        children.push(std::thread::spawn(move || {
            // One line per process run, so the processes interleave with each other's seals.
            for line in input.lines() {
                cli_stdin(&root, seg, &format!("{line}\n"));
            }
        }));
    }
    for c in children {
        c.join().unwrap();
    }
    let all = lines_of(&concatenated(&root));
    assert_eq!(all.len(), procs * per);
    assert!(sealed_files(&root).len() >= 2);
    let mut prev = String::new();
    for (i, (_, e)) in all.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
        assert_eq!(e.prev, prev);
        prev = e.event_id.clone();
    }
    let head = Node::open(&root).unwrap().log.head().unwrap();
    assert_eq!(head.event_count, (procs * per) as u64);
    assert_eq!(head.own_seq, (procs * per) as u64);
}

#[test]
fn readers_see_a_consistent_log_while_a_writer_seals() {
    let env = TestEnv::new();
    let n = node(&env, "ws1", 1200);
    let writer = {
        let n = n.clone();
        std::thread::spawn(move || publish_batches(&n, 150))
    };
    let mut rounds = 0;
    let mut last = 0;
    while !writer.is_finished() && rounds < 10_000 {
        let head = n.log.head().unwrap();
        let got = scanned(&n.log, 0, head.log_len);
        assert_eq!(got.len() as u64, head.event_count);
        assert!(
            got.windows(2)
                .all(|w| w[0].0 < w[1].0 && w[1].1.seq == w[0].1.seq + 1)
        );
        let newest: Vec<u64> = n
            .log
            .scan_rev(head.log_len)
            .unwrap()
            .take(3)
            .map(|r| r.unwrap().1.unwrap().seq)
            .collect();
        let want: Vec<u64> = (1..=head.event_count).rev().take(3).collect();
        assert_eq!(newest, want);
        assert!(head.event_count >= last);
        last = head.event_count;
        rounds += 1;
    }
    writer.join().unwrap();
    assert!(n.log.sealed_segments().unwrap().len() >= 10);
    assert!(rounds > 1);
}
