//! A full or read-only disk gives honest answers: a publish either stores its
//! event and says so or stores nothing (so a client's retry never duplicates),
//! reads never need to write, and status reports low space before it runs out.
//!
//! These tests mount a real small tmpfs and so need root; elsewhere they say
//! SKIPPED on stderr and pass without checking anything.

use crate::common::{TestEnv, gm, json_ok, run, set_config_key};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `4m`) at `path`; None (said loudly) when not possible.
    fn mount(path: &Path, size: &str, test: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status();
        if !st.is_ok_and(|s| s.success()) {
            eprintln!("SKIPPED {test}: cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)");
            return None;
        }
        Some(Tmpfs {
            path: path.to_path_buf(),
        })
    }

    /// `mount -o remount,OPTS`.
    fn remount(&self, opts: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(st.success(), "remount {opts}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Node `a` initialised on a fresh tmpfs of `size`; None when no tmpfs can be mounted.
fn node_on_tmpfs(env: &TestEnv, size: &str, test: &str) -> Option<(Tmpfs, PathBuf)> {
    let fs = Tmpfs::mount(&env.path().join("mnt"), size, test)?;
    let root = fs.path.join("a");
    json_ok(&root, &["mesh-init", "--node-id", "a"]);
    Some((fs, root))
}

/// `gitmesh --json ARGS` on `root`: (exit code, JSON).
fn gm_json(root: &Path, args: &[&str]) -> (i32, Value) {
    let mut c = gm(root);
    c.arg("--json").args(args);
    let out = run(c);
    (
        out.status.code().unwrap_or(-1),
        crate::common::parse_json(&out),
    )
}

/// Publishes a keyed event: (exit code, JSON).
fn publish_keyed(root: &Path, key: &str) -> (i32, Value) {
    let payload = format!("{{\"key\":\"{key}\",\"pad\":\"{}\"}}", "x".repeat(300));
    gm_json(
        root,
        &[
            "mesh-publish",
            "--topic",
            "disk",
            "--event-type",
            "fill.step",
            "--dedupe-key",
            key,
            "--payload-json",
            &payload,
        ],
    )
}

/// The events of the log, read with `events` (which must work, full disk or not).
fn events(root: &Path) -> Vec<Value> {
    json_ok(root, &["events"])["events"]
        .as_array()
        .unwrap()
        .clone()
}

/// Fills the file system holding `dir` to the last byte with `filler`.
fn fill(filler: &Path) {
    let mut f = std::fs::File::create(filler).unwrap();
    for chunk in [65536usize, 4096, 512, 64, 1] {
        let buf = vec![0u8; chunk];
        while f.write_all(&buf).is_ok() && f.flush().is_ok() {}
    }
    let _ = f.sync_all();
}

#[test]
fn a_publish_on_a_full_disk_stores_its_event_and_says_so_or_stores_nothing() {
    let env = TestEnv::new();
    let Some((fs, root)) = node_on_tmpfs(&env, "4m", "disk_full") else {
        return;
    };
    let filler = fs.path.join("filler");
    fill(&filler);
    // One page back, so some appends fit and the derived files after them may not.
    let len = std::fs::metadata(&filler).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(len.saturating_sub(8192))
        .unwrap();

    let mut stored = Vec::new();
    let mut refused = Vec::new();
    let mut failures_in_a_row = 0;
    for i in 0..200 {
        let key = format!("k{i}");
        let before = events(&root).len();
        let (code, v) = publish_keyed(&root, &key);
        let after = events(&root);
        let found = after.iter().any(|e| e["dedupe_key"] == key.as_str());
        if code == 0 {
            assert_eq!(v["duplicate"], false, "{v}");
            assert!(found, "reported stored but not in the log: {v}");
            assert_eq!(after.len(), before + 1);
            stored.push(key);
            failures_in_a_row = 0;
        } else {
            assert_eq!(code, 1, "{v}");
            assert!(!found, "reported failed but stored: {v}");
            assert_eq!(after.len(), before, "a failed publish stores nothing");
            let msg = v["error"]["message"].as_str().unwrap();
            assert!(msg.contains("No space left"), "the error says why: {msg}");
            refused.push(key);
            failures_in_a_row += 1;
            if failures_in_a_row == 3 {
                break;
            }
        }
    }
    assert!(!refused.is_empty(), "the disk never filled up");

    // Reads work on the full disk, and status says the disk is low.
    let s = json_ok(&root, &["mesh-status"]);
    assert_eq!(s["event_count"], stored.len() as u64, "{s}");
    assert_eq!(s["disk"]["low"], true, "{s}");
    assert!(
        s["health"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "low_disk"),
        "{s}"
    );

    // Space freed: retrying every publish never duplicates, and nothing was lost.
    std::fs::remove_file(&filler).unwrap();
    for key in &stored {
        let (code, v) = publish_keyed(&root, key);
        assert_eq!(
            (code, &v["duplicate"]),
            (0, &Value::Bool(true)),
            "{key}: {v}"
        );
    }
    for key in &refused {
        let (code, v) = publish_keyed(&root, key);
        assert_eq!(
            (code, &v["duplicate"]),
            (0, &Value::Bool(false)),
            "{key}: {v}"
        );
    }
    let all = events(&root);
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    let n = (stored.len() + refused.len()) as u64;
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "no seq lost or reused");
    let s = json_ok(&root, &["mesh-status"]);
    assert_eq!(
        (s["event_count"].as_u64(), s["last_seq"].as_u64()),
        (Some(n), Some(n))
    );
}

#[test]
fn reads_never_write_on_a_read_only_root() {
    let env = TestEnv::new();
    let Some((fs, root)) = node_on_tmpfs(&env, "16m", "read_only_root") else {
        return;
    };
    set_config_key(&root, "min_free_mb", "1");
    for key in ["r1", "r2", "r3"] {
        assert_eq!(publish_keyed(&root, key).0, 0);
    }
    json_ok(&root, &["mesh-dispatch"]);
    // The derived head is gone: readers must count the log without rewriting it.
    std::fs::remove_file(root.join("state/event_mesh/log_head.json")).unwrap();
    fs.remount("ro");

    assert_eq!(events(&root).len(), 3);
    let limited = json_ok(&root, &["events", "--limit", "2"]);
    assert_eq!(limited["events"].as_array().unwrap().len(), 2);
    let s = json_ok(&root, &["mesh-status"]);
    assert_eq!(
        (s["event_count"].as_u64(), s["last_seq"].as_u64()),
        (Some(3), Some(3)),
        "{s}"
    );
    assert_eq!(s["health"]["healthy"], true, "{s}");
    assert_eq!(gm_json(&root, &["mesh-status", "--check"]).0, 0);
    json_ok(&root, &["dead-letter", "list"]);
    // A write fails as what it is, and stores nothing.
    let (code, v) = publish_keyed(&root, "r4");
    assert_eq!(code, 1, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Read-only"),
        "{v}"
    );

    fs.remount("rw");
    let (code, v) = publish_keyed(&root, "r4");
    assert_eq!((code, v["event"]["seq"].as_u64()), (0, Some(4)), "{v}");
}
