//! Several nodes exchanging events through one real git remote: a bare repository
//! over the file protocol and `git daemon` on 127.0.0.1.

use crate::common;
use crate::common::{
    TestEnv, deliver, event_ids, git, gm, init_node, json_ok, outbox_events, parse_json,
    publish_batch, run, set_config_key, sync,
};
use std::collections::BTreeSet;
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
        let mut seqs = Vec::new();
        for (f, v) in outbox_events(remote, n) {
            assert_eq!(v["node_id"], *n, "{f} holds another node's event");
            seqs.push(v["seq"].as_u64().unwrap());
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
        // Each node's files are on its own ref only; the shared branch holds the lease
        // and the mesh roster.
        let refs = git(remote_path, &["for-each-ref", "--format=%(refname)"]);
        for n in names {
            assert!(refs.contains(&format!("refs/heads/gitmesh/{n}")), "{refs}");
        }
        let shared = git(remote_path, &["ls-tree", "-r", "--name-only", "main"]);
        let shared: Vec<&str> = shared.lines().collect();
        assert_eq!(
            shared,
            [
                "event_mesh/leases/leader.json",
                "event_mesh/roster/000000000001.json"
            ],
            "{shared:?}"
        );
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
fn an_expired_lease_passes_to_the_next_syncing_node_with_a_new_epoch() {
    let env = TestEnv::with_remote();
    let [a, b] = env.nodes(["a", "b"]);
    for r in [&a, &b] {
        set_config_key(r, "interval", "\"1s\"");
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
    deliver(&a, &b, 12);
    std::fs::remove_file(b.join("state/event_mesh/import_state.json")).unwrap();
    let v = sync(&b);
    assert_eq!(v["import"]["imported_events"], 0, "{v}");
    assert_eq!(v["import"]["duplicate_events"], 12);
    let ids = event_ids(&b, &[]);
    assert_eq!(ids.len(), 12);
    // New events after the reset still arrive, once.
    publish_batch(&a, 3, "y");
    deliver(&a, &b, 3);
    assert_eq!(event_ids(&b, &[]).len(), 15);
}
