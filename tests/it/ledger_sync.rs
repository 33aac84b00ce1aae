//! Several nodes exchanging events through one real git remote: a bare repository
//! over the file protocol and `git daemon` on 127.0.0.1.

use crate::common;
use crate::common::mesh::Work;
use crate::common::{
    TestEnv, event_ids, field, git, gm, init_node, json_ok, parse_json, printed, publish_batch,
    run, set_config_key, sync,
};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Every node holds exactly the union of all events, each once.
fn assert_converged(roots: &[PathBuf], expected_total: usize) {
    let mut union = BTreeSet::new();
    for r in roots {
        let ids = event_ids(r, &[]);
        let set: BTreeSet<_> = ids.iter().cloned().collect();
        assert_eq!(set.len(), ids.len(), "{} holds duplicates", r.display());
        union.extend(set);
    }
    assert_eq!(union.len(), expected_total, "events were lost");
    for r in roots {
        let st = json_ok(r, &["mesh-status"]);
        assert_eq!(st["event_count"], expected_total, "{}: {st}", r.display());
        assert_eq!(st["pending_export"], 0);
        assert_eq!(st["peers"].as_array().unwrap().len(), roots.len());
    }
}

fn assert_linear(remote: &Path) {
    let merges = git(remote, &["rev-list", "--min-parents=2", "--count", "main"]);
    assert_eq!(merges.trim(), "0", "the shared branch has merge commits");
}

/// Each outbox holds its node's events only, each exactly once, in seq order.
fn assert_outboxes_hold_only_own_events_once(remote: &Path, names: &[&str], total: usize) {
    let mut all = 0;
    for n in names {
        let files = git(
            remote,
            &[
                "ls-tree",
                "-r",
                "--name-only",
                "main",
                &format!("event_mesh/outbox/{n}"),
            ],
        );
        let mut seqs = Vec::new();
        for f in files.lines() {
            for line in git(remote, &["show", &format!("main:{f}")]).lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                assert_eq!(v["node_id"], *n, "{f} holds another node's event");
                seqs.push(v["seq"].as_u64().unwrap());
            }
        }
        seqs.sort_unstable();
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(
            seqs, expected,
            "outbox of {n} must hold seqs 1..n once each"
        );
        all += seqs.len();
    }
    assert_eq!(
        all, total,
        "imported events were re-exported or events are missing"
    );
}

/// Nodes publish and sync in turns, then all at once as racing child processes.
fn scenario(env: &TestEnv, mode: &str) {
    let remote_path = env.remote();
    let names = ["n1", "n2", "n3", "n4"];
    let roots: Vec<PathBuf> = names
        .iter()
        .map(|n| {
            let r = env.node_with(n, &["--ledger-mode", mode]);
            set_config_key(&r, "lease_ttl", "\"1h\"");
            r
        })
        .collect();
    let mut total = 0;
    // Interleaved: publish on one, sync it, publish on the next...
    for (i, r) in roots.iter().enumerate() {
        publish_batch(r, 5 + i, "turn");
        total += 5 + i;
        sync(r);
    }
    // Racing: everyone publishes, then all syncs start at once.
    for round in 0..2 {
        for r in &roots {
            publish_batch(r, 7, &format!("race{round}"));
            total += 7;
        }
        let children: Vec<(PathBuf, Child)> = roots
            .iter()
            .map(|r| {
                let mut c = gm(r);
                c.args(["--json", "mesh-sync"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                (r.clone(), c.spawn().unwrap())
            })
            .collect();
        for (r, child) in children {
            let out = child.wait_with_output().unwrap();
            let v = parse_json(&out);
            assert!(
                out.status.success() && v["ok"] == true && v["push"]["pushed"] == true,
                "{}: {v}",
                r.display()
            );
        }
    }
    for _ in 0..2 {
        for r in &roots {
            sync(r);
        }
    }
    assert_converged(&roots, total);
    assert_linear(remote_path);
    if mode == "per-node-refs" {
        // Each node's files are on its own ref only; the shared branch holds the lease.
        let refs = git(remote_path, &["for-each-ref", "--format=%(refname)"]);
        for n in names {
            assert!(refs.contains(&format!("refs/heads/gitmesh/{n}")), "{refs}");
        }
        let shared = git(remote_path, &["ls-tree", "-r", "--name-only", "main"]);
        assert_eq!(shared.trim(), "event_mesh/leases/leader.json", "{shared}");
        let own = git(remote_path, &["ls-tree", "-r", "--name-only", "gitmesh/n2"]);
        assert!(
            own.lines()
                .all(|l| l.starts_with("event_mesh/outbox/n2/") || l == "event_mesh/nodes/n2.json"),
            "{own}"
        );
    } else {
        assert_outboxes_hold_only_own_events_once(remote_path, &names, total);
    }
    // Nothing new: a sync pushes nothing and the remote does not move.
    let before = git(remote_path, &["for-each-ref"]);
    for r in &roots {
        let v = sync(r);
        assert_eq!(v["push"]["pushed"], false, "{v}");
        assert_eq!(v["push"]["attempts"], 0, "{v}");
        assert_eq!(v["import"]["imported_events"], 0);
        assert_eq!(v["export"]["exported_events"], 0);
    }
    assert_eq!(git(remote_path, &["for-each-ref"]), before);
    // Exactly one leader, seen identically everywhere.
    let leaders: BTreeSet<String> = roots
        .iter()
        .map(|r| json_ok(r, &["mesh-status"])["leader"]["leader_id"].to_string())
        .collect();
    assert_eq!(leaders.len(), 1, "{leaders:?}");
}

#[test]
fn nodes_converge_through_a_file_remote_with_racing_pushes() {
    let env = TestEnv::with_remote();
    scenario(&env, "shared-branch");
}

#[test]
fn per_node_refs_converge_through_a_file_remote() {
    let env = TestEnv::with_remote();
    scenario(&env, "per-node-refs");
}

#[test]
fn per_node_refs_converge_through_git_daemon() {
    scenario(&TestEnv::served(), "per-node-refs");
}

#[test]
fn nodes_converge_through_git_daemon_with_racing_pushes() {
    scenario(&TestEnv::served(), "shared-branch");
}

/// A server on 127.0.0.1 that accepts connections and resets them without
/// answering, as git daemon does past its connection limit. Stopped on drop.
struct ResettingServer {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<usize>>,
}

impl ResettingServer {
    fn start() -> ResettingServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut resets = 0;
            let deadline = Instant::now() + Duration::from_secs(60);
            while !flag.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((conn, _)) => {
                        // Let the client's request arrive, then close without reading
                        // it: unread data makes the kernel answer with a reset.
                        std::thread::sleep(Duration::from_millis(100));
                        drop(conn);
                        resets += 1;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            resets
        });
        ResettingServer {
            port,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the server and returns how many connections it reset.
    fn stop(mut self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for ResettingServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_remote_that_resets_connections_means_retry_later_not_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ResettingServer::start();
    let url = format!("git://127.0.0.1:{}/mesh.git", server.port);
    let a = init_node(tmp.path(), "a", Some(&url));
    publish_batch(&a, 2, "reset");
    let mut c = gm(&a);
    c.args(["--json", "mesh-sync"]);
    let out = run(c);
    let v = parse_json(&out);
    assert_eq!(out.status.code(), Some(75), "{v}");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["push"]["offline"], true, "{v}");
    assert_eq!(v["export"]["exported_events"], 2, "local work is done: {v}");
    assert!(server.stop() >= 1, "the sync never reached the server");
}

#[test]
fn offline_sync_keeps_local_work_exits_75_and_delivers_later() {
    offline_then_delivered("shared-branch");
}

#[test]
fn per_node_refs_offline_sync_keeps_local_work_and_delivers_later() {
    offline_then_delivered("per-node-refs");
}

fn offline_then_delivered(mode: &str) {
    let env = TestEnv::with_remote();
    let [a, b] = ["a", "b"].map(|n| env.node_with(n, &["--ledger-mode", mode]));
    publish_batch(&a, 3, "before");
    sync(&a);
    let away = env.path().join("moved-away.git");
    std::fs::rename(env.remote(), &away).unwrap();
    publish_batch(&a, 4, "offline");
    let mut c = gm(&a);
    c.args(["--json", "mesh-sync"]);
    let out = run(c);
    let v = parse_json(&out);
    assert_eq!(out.status.code(), Some(75), "{v}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["push"]["offline"], true);
    assert_eq!(v["push"]["pushed"], false);
    assert_eq!(
        v["export"]["exported_events"], 4,
        "local work is done offline"
    );
    assert_eq!(json_ok(&a, &["mesh-status"])["pending_export"], 0);
    std::fs::rename(&away, env.remote()).unwrap();
    let v = sync(&a);
    assert_eq!(v["push"]["pushed"], true, "{v}");
    assert_eq!(v["export"]["exported_events"], 0, "exported while offline");
    sync(&b);
    assert_eq!(event_ids(&b, &[]).len(), 7);
}

#[test]
fn init_with_an_unreachable_remote_is_not_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nowhere.git");
    let root = tmp.path().join("a");
    let v = json_ok(
        &root,
        &[
            "mesh-init",
            "--node-id",
            "a",
            "--remote",
            missing.to_str().unwrap(),
        ],
    );
    assert_eq!(v["ledger"]["offline"], true, "{v}");
    assert_eq!(v["ledger"]["pushed"], false);
    // The remote appears: the next sync publishes the manifest.
    common::bare_remote(tmp.path(), "nowhere.git");
    let v = sync(&root);
    assert_eq!(v["push"]["pushed"], true, "{v}");
    let listed = git(&missing, &["ls-tree", "-r", "--name-only", "main"]);
    assert!(listed.contains("event_mesh/nodes/a.json"), "{listed}");
}

#[test]
fn embedded_remote_single_node_syncs_and_takes_the_lease() {
    let env = TestEnv::new();
    let a = env.node("solo");
    publish_batch(&a, 2, "x");
    let v = sync(&a);
    assert_eq!(v["push"]["pushed"], true, "{v}");
    assert_eq!(v["leader"]["leader_id"], "solo");
    let st = json_ok(&a, &["mesh-status"]);
    assert_eq!(st["leader"]["leader_id"], "solo");
    assert_eq!(st["leader"]["epoch"], 1);
}

#[test]
fn a_second_sync_on_a_busy_node_waits_then_fails_with_busy() {
    let env = TestEnv::new();
    let a = env.node("a");
    set_config_key(&a, "lock_wait", "\"300ms\"");
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(a.join("state/event_mesh/sync.lock"))
        .unwrap();
    lock.lock().unwrap();
    let mut c = gm(&a);
    c.args(["--json", "mesh-sync"]);
    let started = Instant::now();
    let out = run(c);
    let v = parse_json(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["error"]["kind"], "busy");
    assert!(started.elapsed() >= Duration::from_millis(300));
    lock.unlock().unwrap();
    sync(&a);
}

#[test]
fn max_events_splits_export_and_import_and_both_resume() {
    let env = TestEnv::with_remote();
    let [a, b] = env.nodes(["a", "b"]);
    publish_batch(&a, 25, "x");
    let v = json_ok(&a, &["mesh-export", "--max-events", "10"]);
    assert_eq!(v["exported_events"], 10);
    assert_eq!(v["complete"], false);
    let v = json_ok(&a, &["mesh-export"]);
    assert_eq!(v["exported_events"], 15);
    assert_eq!(v["exported_through_seq"], 25);
    assert_eq!(json_ok(&a, &["mesh-export"])["exported_events"], 0);
    sync(&a);
    json_ok(&b, &["mesh-sync", "--no-push", "--max-events", "0"]);
    let v = json_ok(&b, &["mesh-import", "--max-events", "5"]);
    assert_eq!(v["imported_events"], 10, "whole batch files are imported");
    assert_eq!(v["complete"], false);
    let v = json_ok(&b, &["mesh-import"]);
    assert_eq!(v["imported_events"], 15);
    assert_eq!(v["complete"], true);
    assert_eq!(json_ok(&b, &["mesh-import"])["imported_events"], 0);
    assert_eq!(event_ids(&b, &[]).len(), 25);
}

#[test]
fn staged_schemas_are_carried_into_the_ledger() {
    let env = TestEnv::with_remote();
    let a = env.node("a");
    let staged = a.join("state/event_mesh/schema_outbox/monitoring/test.tick");
    std::fs::create_dir_all(&staged).unwrap();
    std::fs::write(staged.join("v1.json"), "{\"type\":\"object\"}\n").unwrap();
    let v = sync(&a);
    assert_eq!(v["export"]["schemas"][0], "monitoring/test.tick/v1.json");
    let shown = git(
        env.remote(),
        &[
            "show",
            "main:event_mesh/schemas/monitoring/test.tick/v1.json",
        ],
    );
    assert_eq!(shown.trim(), "{\"type\":\"object\"}");
    assert!(
        !staged.join("v1.json").exists(),
        "pushed files leave the staging area"
    );
}

/// Exported batches land in day directories with 12-digit names and stay the same bytes as the log.
#[test]
fn batches_follow_the_documented_layout() {
    let env = TestEnv::with_remote();
    let a = env.node("a");
    publish_batch(&a, 3, "x");
    sync(&a);
    let files = git(
        env.remote(),
        &[
            "ls-tree",
            "-r",
            "--name-only",
            "main",
            "event_mesh/outbox/a",
        ],
    );
    let lines: Vec<&str> = files.lines().collect();
    assert_eq!(lines.len(), 1, "{files}");
    let name = lines[0];
    let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(
        name,
        format!("event_mesh/outbox/a/{day}/000000000001.ndjson")
    );
    // The batch holds the log's events, each signed at export time.
    let batch = git(env.remote(), &["show", &format!("main:{name}")]);
    let log = std::fs::read_to_string(a.join("artifacts/event_mesh/events.ndjson")).unwrap();
    let unsigned: Vec<Value> = batch
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            let sig = v.as_object_mut().unwrap().remove("sig").unwrap();
            assert_eq!(sig.as_str().unwrap().len(), 128, "hex ed25519 signature");
            v
        })
        .collect();
    let logged: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(unsigned, logged);
    let manifest: Value = serde_json::from_str(&git(
        env.remote(),
        &["show", "main:event_mesh/nodes/a.json"],
    ))
    .unwrap();
    assert_eq!(manifest["exported_through_seq"], 3);
    assert_eq!(manifest["node_id"], "a");
}

/// The log lines of `n` events of node `name`, published on a root outside the mesh.
fn foreign_lines(env: &TestEnv, name: &str, n: usize, tag: &str) -> Vec<String> {
    let root = env.path().join(format!("{name}-src"));
    json_ok(&root, &["mesh-init", "--node-id", name]);
    publish_batch(&root, n, tag);
    std::fs::read_to_string(root.join("artifacts/event_mesh/events.ndjson"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Quarantine reasons by file name in a node root.
fn quarantine_reasons(root: &Path) -> HashMap<String, String> {
    let dir = root.join("state/event_mesh/quarantine");
    let mut out = HashMap::new();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(item) = name.strip_suffix(".reason") {
            let text = std::fs::read_to_string(e.path()).unwrap();
            let code = text.split(':').next().unwrap().to_string();
            out.insert(item.to_string(), code);
        }
    }
    out
}

#[test]
fn bad_peers_are_quarantined_and_the_import_goes_on() {
    let env = TestEnv::with_remote();
    let victim = env.node("victim");
    // Real events of two other nodes, crafted into a hostile outbox by hand.
    let evil_lines = foreign_lines(&env, "evil", 4, "e");
    let other_line = foreign_lines(&env, "other", 1, "o").remove(0);

    let work = Work::clone(&env.url(), &env.path().join("work"));
    let d = work.dir.join("event_mesh/outbox/evil/2026-01-01");
    std::fs::create_dir_all(&d).unwrap();
    // seq 1 valid, then a truncated line.
    let truncated = &evil_lines[1][..evil_lines[1].len() / 2];
    std::fs::write(
        d.join("000000000001.ndjson"),
        format!("{}\n{truncated}\n", evil_lines[0]),
    )
    .unwrap();
    // seq 2 with its payload changed: the id no longer matches.
    let tampered = evil_lines[1].replace("\"tag\":\"e\"", "\"tag\":\"forged\"");
    assert_ne!(tampered, evil_lines[1]);
    std::fs::write(d.join("000000000002.ndjson"), format!("{tampered}\n")).unwrap();
    // seq 4 valid, with a gap at 3; then another node's event in evil's outbox.
    std::fs::write(
        d.join("000000000004.ndjson"),
        format!("{}\n{other_line}\n", evil_lines[3]),
    )
    .unwrap();
    // A 10 MB line.
    std::fs::write(d.join("000000000005.ndjson"), "x".repeat(10 << 20) + "\n").unwrap();
    // A symlink.
    std::os::unix::fs::symlink("/etc/passwd", d.join("000000000006.ndjson")).unwrap();
    // Not UTF-8.
    std::fs::write(
        d.join("000000000007.ndjson"),
        b"{\"event_id\":\"\xff\xfe\"}\n",
    )
    .unwrap();
    work.commit_push("hostile peer");

    let v = sync(&victim);
    // seq 1 is imported; seq 4 waits behind the missing 2..3 (held, not skipped).
    assert_eq!(v["import"]["imported_events"], 1, "{v}");
    assert_eq!(v["import"]["held"][0]["first_seq"], 4, "{v}");
    assert_eq!(v["import"]["quarantined"], 6, "{v}");
    assert_eq!(v["import"]["scanned_files"], 6, "{v}");
    let mut codes = field(v["import"]["rejected"].as_array().unwrap(), "reason");
    codes.sort();
    assert_eq!(
        codes,
        [
            "file_too_large",
            "id_mismatch",
            "invalid_json",
            "not_utf8",
            "symlink",
            "wrong_node"
        ]
    );
    let on_disk: BTreeSet<String> = quarantine_reasons(&victim).into_values().collect();
    assert_eq!(on_disk.len(), 6, "{on_disk:?}");
    let st = json_ok(&victim, &["mesh-status"]);
    assert_eq!(st["quarantined"], 6);
    assert_eq!(st["imported_event_count"], 1);
    assert_eq!(st["held_files"], 1);
    assert_eq!(st["gaps"][0]["node_id"], "evil");
    assert_eq!(
        (
            st["gaps"][0]["from_seq"].as_u64(),
            st["gaps"][0]["to_seq"].as_u64()
        ),
        (Some(2), Some(3))
    );
    let human = printed(&victim, &["mesh-status"]);
    assert!(human.contains("gap       evil seq 2..3 missing"), "{human}");
    // Nothing big was copied into quarantine.
    for e in std::fs::read_dir(victim.join("state/event_mesh/quarantine"))
        .unwrap()
        .flatten()
    {
        assert!(e.metadata().unwrap().len() <= 64 * 1024);
    }
    // A later import does not read those files again.
    let v = sync(&victim);
    assert_eq!(v["import"]["quarantined"], 0);
    assert_eq!(v["import"]["scanned_files"], 0);
}

#[test]
fn seed_era_one_file_per_event_layout_is_imported() {
    let env = TestEnv::with_remote();
    let a = env.node("a");
    let lines: Vec<Value> = foreign_lines(&env, "seed", 2, "s")
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let work = Work::clone(&env.url(), &env.path().join("work"));
    let d = work.dir.join("event_mesh/outbox/seed");
    std::fs::create_dir_all(&d).unwrap();
    for ev in &lines {
        let id = ev["event_id"].as_str().unwrap();
        std::fs::write(
            d.join(format!("{id}.json")),
            serde_json::to_string_pretty(ev).unwrap(),
        )
        .unwrap();
    }
    // A file whose name is not its event.
    let wrong = format!("evt_{}", "0".repeat(32));
    std::fs::write(
        d.join(format!("{wrong}.json")),
        serde_json::to_string(&lines[0]).unwrap(),
    )
    .unwrap();
    work.commit_push("seed-era files");
    let v = sync(&a);
    assert_eq!(v["import"]["imported_events"], 2, "{v}");
    assert_eq!(v["import"]["quarantined"], 1);
    assert_eq!(v["import"]["rejected"][0]["reason"], "name_mismatch");
}

#[test]
fn large_exports_are_split_into_files_under_one_megabyte() {
    let env = TestEnv::with_remote();
    let [a, b] = env.nodes(["a", "b"]);
    let filler = "lorem ipsum dolor sit amet ".repeat(2000);
    let mut input = String::new();
    for i in 0..60 {
        input.push_str(&format!(
            "{{\"topic\":\"monitoring\",\"event_type\":\"big.note\",\"payload\":{{\"i\":{i},\"text\":\"{filler}\"}}}}\n"
        ));
    }
    let mut c = gm(&a);
    c.args(["--json", "mesh-publish", "--stdin"]);
    assert_eq!(
        parse_json(&common::run_with_stdin(c, input.as_bytes()))["published"],
        60
    );
    let v = sync(&a);
    let batches = v["export"]["batches"].as_array().unwrap();
    assert!(batches.len() >= 4, "{v}");
    for f in batches {
        let size = git(
            env.remote(),
            &["cat-file", "-s", &format!("main:{}", f.as_str().unwrap())],
        );
        assert!(
            size.trim().parse::<u64>().unwrap() < 1_000_000,
            "{f} is {size} bytes"
        );
    }
    sync(&b);
    assert_eq!(event_ids(&b, &[]).len(), 60);
}

#[test]
fn an_expired_lease_passes_to_the_next_syncing_node_with_a_new_epoch() {
    let env = TestEnv::with_remote();
    let [a, b] = env.nodes(["a", "b"]);
    for r in [&a, &b] {
        set_config_key(r, "lease_ttl", "\"3s\"");
    }
    let v = sync(&a);
    assert_eq!(v["leader"]["leader_id"], "a");
    assert_eq!(v["leader"]["epoch"], 1);
    // Held and unexpired: b leaves it alone.
    let v = sync(&b);
    assert_eq!(v["leader"]["leader_id"], "a", "{v}");
    std::thread::sleep(Duration::from_millis(3100));
    let v = sync(&b);
    assert_eq!(v["leader"]["leader_id"], "b", "{v}");
    assert_eq!(v["leader"]["epoch"], 2);
    assert_eq!(v["push"]["pushed"], true);
    sync(&a);
    let st = json_ok(&a, &["mesh-status"]);
    assert_eq!(st["leader"]["leader_id"], "b");
    assert_eq!(st["leader"]["epoch"], 2);
}

#[test]
fn a_lost_import_state_reimports_without_duplicating() {
    let env = TestEnv::with_remote();
    let [a, b] = env.nodes(["a", "b"]);
    publish_batch(&a, 12, "x");
    sync(&a);
    assert_eq!(sync(&b)["import"]["imported_events"], 12);
    std::fs::remove_file(b.join("state/event_mesh/import_state.json")).unwrap();
    let v = sync(&b);
    assert_eq!(v["import"]["imported_events"], 0, "{v}");
    assert_eq!(v["import"]["duplicate_events"], 12);
    let ids = event_ids(&b, &[]);
    assert_eq!(ids.len(), 12);
    // New events after the reset still arrive, once.
    publish_batch(&a, 3, "y");
    sync(&a);
    assert_eq!(sync(&b)["import"]["imported_events"], 3);
    assert_eq!(event_ids(&b, &[]).len(), 15);
}
