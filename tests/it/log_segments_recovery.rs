//! A segmented log survives a crash at each step of a seal, lost derived files,
//! a manifest that disagrees with its segments, and a torn last line.

use crate::common::TestEnv;
use crate::log_segments::{
    cli, cli_stdin, concatenated, draft, lines_of, node, publish_batches, scanned, sealed_files,
    seg_dir,
};
use gitmesh::event::Envelope;
use gitmesh::log::LogHead;
use std::path::{Path, PathBuf};

/// Performs the first step of a seal by hand: the rename, and nothing else.
fn rename_active_as_segment(root: &Path, n: u32) {
    std::fs::create_dir_all(seg_dir(root)).unwrap();
    std::fs::rename(
        root.join("artifacts/event_mesh/events.ndjson"),
        seg_dir(root).join(format!("events-{n:06}.ndjson")),
    )
    .unwrap();
}

#[test]
fn a_crash_between_the_rename_and_the_manifest_is_completed_on_open() {
    let env = TestEnv::new();
    let n = node(&env, "ws1", u64::MAX);
    let root = n.paths.root.clone();
    publish_batches(&n, 50);
    let head = n.log.head().unwrap();
    let whole = std::fs::read(n.log.path()).unwrap();
    let expected = lines_of(&whole);
    rename_active_as_segment(&root, 1);
    assert!(!seg_dir(&root).join("segments.json").exists());

    // Readers already see the renamed file at the same offsets, before any repair.
    assert_eq!(scanned(&n.log, 0, head.log_len), expected);
    assert_eq!(
        n.log.read_at(expected[17].0).unwrap().as_ref(),
        Some(&expected[17].1)
    );

    // The next writer lists the segment, indexes it and carries on.
    let mut w = n.log.writer().unwrap();
    assert_eq!(w.recovery().completed_seals, 1);
    assert_eq!(w.head(), &head);
    for (off, env) in &expected {
        assert_eq!(w.lookup(&env.event_id).unwrap(), Some(*off));
    }
    drop(w);
    let segs = n.log.sealed_segments().unwrap();
    assert_eq!(segs.len(), 1);
    assert_eq!(
        (segs[0].base, segs[0].bytes, segs[0].events),
        (0, whole.len() as u64, 50)
    );
    assert!(seg_dir(&root).join("events-000001.idx").exists());
    let p = n.publish(&[draft(1000)]).unwrap();
    assert_eq!(p[0].event.seq, 51);
    assert_eq!(p[0].event.prev, expected[49].1.event_id);
    let after = n.log.head().unwrap();
    assert_eq!(
        after.log_len,
        whole.len() as u64 + std::fs::metadata(n.log.path()).unwrap().len()
    );
    assert_eq!(scanned(&n.log, 0, after.log_len).len(), 51);
}

#[test]
fn a_crash_mid_seal_with_lost_derived_files_rebuilds_them_from_the_log() {
    let env = TestEnv::new();
    let n = node(&env, "ws1", 2500);
    let root = n.paths.root.clone();
    publish_batches(&n, 60);
    let head = n.log.head().unwrap();
    let sealed_before = sealed_files(&root).len();
    assert!(sealed_before >= 2);
    // Crash right after renaming the active file, and lose every derived file too.
    let k = sealed_before as u32 + 1;
    rename_active_as_segment(&root, k);
    let state = root.join("state/event_mesh");
    std::fs::remove_file(state.join("log_head.json")).unwrap();
    std::fs::remove_file(state.join("log_ids.bin")).unwrap();
    for e in std::fs::read_dir(seg_dir(&root)).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "idx") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let expected = lines_of(&concatenated(&root));
    let mut w = n.log.writer().unwrap();
    assert_eq!(w.recovery().completed_seals, 1);
    let got: &LogHead = w.head();
    assert_eq!(got, &head);
    for (off, env) in &expected {
        assert_eq!(
            w.lookup(&env.event_id).unwrap(),
            Some(*off),
            "{}",
            env.event_id
        );
    }
    drop(w);
    assert_eq!(n.log.sealed_segments().unwrap().len(), k as usize);
}

#[test]
fn a_manifest_that_disagrees_with_a_segment_file_is_an_error_naming_it() {
    let env = TestEnv::new();
    let n = node(&env, "ws1", 1500);
    publish_batches(&n, 30);
    let f = seg_dir(&n.paths.root).join("events-000001.ndjson");
    let mut bytes = std::fs::read(&f).unwrap();
    bytes.truncate(bytes.len() - 10);
    std::fs::write(&f, bytes).unwrap();
    let err = n.log.head().unwrap_err().to_string();
    assert!(err.contains("events-000001.ndjson"), "{err}");
    assert!(err.contains("manifest"), "{err}");
}

#[test]
fn a_torn_line_is_quarantined_before_the_append_that_seals() {
    let env = TestEnv::new();
    let root = env.node("ws1");
    let seg = 6000;
    let mut input = String::new();
    for i in 0..10 {
        input.push_str(&format!(
            "{{\"topic\":\"monitoring\",\"event_type\":\"heartbeat.changed\",\"payload\":{{\"i\":{i}}}}}\n"
        ));
    }
    cli_stdin(&root, seg, &input);
    assert!(sealed_files(&root).is_empty());
    // A publisher killed mid-write left half a line.
    let active = root.join("artifacts/event_mesh/events.ndjson");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&active)
        .unwrap();
    use std::io::Write;
    f.write_all(br#"{"event_id":"evt_0123","topic":"monitor"#)
        .unwrap();
    drop(f);
    // The next batch crosses the threshold: recovery cuts the torn line, then the file is sealed.
    cli_stdin(&root, seg, &input);
    assert_eq!(sealed_files(&root).len(), 1);
    let all = lines_of(&concatenated(&root));
    assert_eq!(all.len(), 20);
    let s = cli(&root, seg, &["mesh-status"]);
    assert_eq!(s["event_count"], 20);
    assert_eq!(s["quarantined"], 1);
    let q: Vec<PathBuf> = std::fs::read_dir(root.join("state/event_mesh/quarantine"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .collect();
    assert_eq!(
        std::fs::read(&q[0]).unwrap(),
        br#"{"event_id":"evt_0123","topic":"monitor"#
    );
}

#[test]
fn a_crash_after_the_manifest_but_before_the_new_active_file_is_harmless() {
    let env = TestEnv::new();
    let n = node(&env, "ws1", 3000);
    let root = n.paths.root.clone();
    let ids_file = root.join("state/event_mesh/log_ids.bin");
    let mut before_seal = Vec::new();
    let mut i = 0;
    while sealed_files(&root).is_empty() {
        before_seal = std::fs::read(&ids_file).unwrap_or_default();
        n.publish(&[draft(i)]).unwrap();
        i += 1;
    }
    // Back to the moment after the manifest write: no active file yet, and the
    // active record file still holds (most of) the sealed segment's records.
    std::fs::remove_file(n.log.path()).unwrap();
    std::fs::write(&ids_file, &before_seal).unwrap();
    let more: Vec<Envelope> = publish_batches(&n, 30).into_iter().flatten().collect();
    let expected = lines_of(&concatenated(&root));
    assert_eq!(expected.len(), i + 30);
    let mut w = n.log.writer().unwrap();
    for (off, env) in &expected {
        assert_eq!(w.lookup(&env.event_id).unwrap(), Some(*off));
    }
    drop(w);
    assert_eq!(n.log.head().unwrap().event_count, (i + 30) as u64);
    assert_eq!(more.last().unwrap().seq, (i + 30) as u64);
    // Later indexes hold only their own segment's ids.
    for s in n.log.sealed_segments().unwrap().iter().skip(1) {
        let idx = gitmesh::log::sorted::SortedIndex::open(
            &seg_dir(&root).join(format!("events-{:06}.idx", s.number)),
            s.base,
            s.bytes,
        )
        .unwrap()
        .unwrap();
        assert_eq!(idx.header().count, s.events);
    }
}

#[test]
fn a_lost_active_record_file_is_rebuilt_so_dedupe_still_holds() {
    let env = TestEnv::new();
    let root = env.node("ws1");
    let seg = 2000;
    let keyed = [
        "mesh-publish",
        "--topic",
        "scheduling",
        "--event-type",
        "task.enqueued",
        "--dedupe-key",
        "k-active",
        "--payload-json",
        r#"{"task_id":"t-active"}"#,
    ];
    // Enough events to seal once, then the keyed one lands in the active segment.
    let mut input = String::new();
    for i in 0..12 {
        input.push_str(&format!(
            "{{\"topic\":\"monitoring\",\"event_type\":\"tick\",\"payload\":{{\"i\":{i}}}}}\n"
        ));
    }
    cli_stdin(&root, seg, &input);
    assert_eq!(sealed_files(&root).len(), 1);
    let first = cli(&root, seg, &keyed);
    std::fs::remove_file(root.join("state/event_mesh/log_ids.bin")).unwrap();
    let again = cli(&root, seg, &keyed);
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["event"], first["event"]);
    assert_eq!(lines_of(&concatenated(&root)).len(), 13);
}
