//! Signed events, pinned keys, in-sequence import (gaps, forks), history rewrites and
//! recovery of a node root restored from an older copy.

use crate::common::mesh::*;
use crate::common::{
    TestEnv, deliver, git, json_err, json_ok, outbox_events, printed, publish_args, sync,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

fn status(root: &Path) -> Value {
    json_ok(root, &["mesh-status"])
}

#[test]
fn exported_events_are_signed_and_peers_pin_the_key() {
    let env = TestEnv::with_remote();
    let a = env.path().join("a");
    let init = json_ok(
        &a,
        &[
            "mesh-init",
            "--node-id",
            "a",
            "--remote",
            &env.url(),
            "--trust",
            "open",
        ],
    );
    let public = init["public_key"].as_str().unwrap().to_string();
    assert_eq!(public.len(), 64);
    // The private key is mode 0600 and appears in no output.
    let key_file = a.join("state/event_mesh/keys/node.ed25519");
    let secret = std::fs::read_to_string(&key_file).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(!init.to_string().contains(secret.trim()));
    let manifest: Value = serde_json::from_str(&git(
        env.remote(),
        &["show", "main:event_mesh/nodes/a.json"],
    ))
    .unwrap();
    assert_eq!(manifest["public_key"], public.as_str());

    let b = env.node("b");
    publish(&a, 3, "x");
    sync(&a);
    let v = sync(&b);
    assert_eq!(v["import"]["imported_events"], 3, "{v}");
    // Imported copies keep the signature.
    let imported: Vec<Value> =
        std::fs::read_to_string(b.join("artifacts/event_mesh/events.ndjson"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|e: &Value| e["node_id"] == "a")
            .collect();
    assert_eq!(imported.len(), 3);
    assert!(
        imported
            .iter()
            .all(|e| e["sig"].as_str().is_some_and(|s| s.len() == 128))
    );
    let known: Value = serde_json::from_str(
        &std::fs::read_to_string(b.join("state/event_mesh/known_nodes.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(known["nodes"]["a"]["public_key"], public.as_str());
    let list = json_ok(&b, &["nodes", "list"]);
    assert_eq!(list["nodes"][0]["node_id"], "a");
    assert_eq!(list["key_alerts"], serde_json::json!([]));
    assert!(!status(&b).to_string().contains(secret.trim()));
}

#[test]
fn a_changed_key_is_held_until_an_operator_trusts_it() {
    let env = TestEnv::with_remote();
    // b comes first and is the roster's admin; a is trusted on first use (open mode).
    let b = env.node("b");
    let a = env.node("a");
    publish(&a, 1, "before");
    deliver(&a, &b, 1);
    // The key of a is replaced (a reinstalled machine, or an impostor).
    std::fs::remove_file(a.join("state/event_mesh/keys/node.ed25519")).unwrap();
    let (_, refused) = json_err(&a, &["mesh-init", "--node-id", "a"]);
    assert_eq!(refused["error"]["kind"], "foreign_key", "{refused}");
    let new_key = json_ok(&a, &["mesh-init", "--node-id", "a", "--replace-lost-key"])["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    publish(&a, 2, "after");
    sync(&a);
    let before = log_bytes(&b);
    let v = sync(&b);
    assert_eq!(v["import"]["imported_events"], 0, "{v}");
    assert_eq!(v["import"]["held"][0]["reason"], "untrusted_key", "{v}");
    assert_eq!(log_bytes(&b), before);
    let st = status(&b);
    assert_eq!(st["key_alerts"], serde_json::json!(["a"]));
    let human = printed(&b, &["mesh-status"]);
    assert!(
        human.contains("ALERT     a: manifest key changed"),
        "{human}"
    );
    // Still held on the next sync.
    assert_eq!(sync(&b)["import"]["imported_events"], 0);
    let (_, err) = json_err(&b, &["nodes", "trust", "nobody"]);
    assert_eq!(err["error"]["kind"], "not_found");
    let t = json_ok(&b, &["nodes", "trust", "a"]);
    assert_eq!(t["public_key"], new_key.as_str());
    let v = sync(&b);
    assert_eq!(v["import"]["imported_events"], 2, "{v}");
    assert_eq!(status(&b)["key_alerts"], serde_json::json!([]));
    assert_eq!(status(&b)["held_files"], 0);
}

#[test]
fn require_signatures_rejects_unsigned_events_of_any_node() {
    let env = TestEnv::with_remote();
    let v_root = env.node("victim");
    let cfg = v_root.join("mesh.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("require_signatures = false"), "{text}");
    std::fs::write(
        &cfg,
        text.replace("require_signatures = false", "require_signatures = true"),
    )
    .unwrap();
    // A node with no manifest in this mesh (no key known): its events are unsigned.
    let q = env.path().join("q-src");
    json_ok(&q, &["mesh-init", "--node-id", "q"]);
    publish(&q, 1, "q");
    let ev = &own_events(&q, "q")[0];
    let work = Work::clone(&env.url(), &env.path().join("work"));
    let unsigned = format!("{}\n", ev.to_json_line());
    let signed = signed_line(ev, &key_of(&q));
    work.push_batch("q/2026-01-01", 1, &unsigned, "unsigned");
    let v = sync(&v_root);
    assert_eq!(reasons(&v["import"]), ["unsigned"], "{v}");
    work.push_batch("q/2026-01-02", 1, &signed, "signed, no key published");
    let v = sync(&v_root);
    assert_eq!(reasons(&v["import"]), ["no_key"], "{v}");
    assert_eq!(status(&v_root)["imported_event_count"], 0);
}

/// A peer's events handed to the ledger out of order arrive later in order.
#[test]
fn a_batch_behind_a_gap_waits_and_is_applied_when_the_gap_fills() {
    let env = TestEnv::with_remote();
    let [v_root, p] = env.nodes(["victim", "p"]);
    publish(&p, 6, "p");
    let key = key_of(&p);
    let evs = own_events(&p, "p");
    let lines = |r: std::ops::Range<usize>| -> String {
        evs[r].iter().map(|e| signed_line(e, &key)).collect()
    };
    let work = Work::clone(&env.url(), &env.path().join("work"));
    work.push_batch("p/2026-01-01", 4, &lines(3..6), "seq 4..6 first");
    let v = sync(&v_root);
    assert_eq!(v["import"]["imported_events"], 0, "{v}");
    assert_eq!(v["import"]["held"][0]["first_seq"], 4);
    let st = status(&v_root);
    assert_eq!(
        (
            st["gaps"][0]["from_seq"].as_u64(),
            st["gaps"][0]["to_seq"].as_u64()
        ),
        (Some(1), Some(3))
    );
    // A sync with nothing new keeps it held, neither skipped nor lost.
    assert_eq!(sync(&v_root)["import"]["imported_events"], 0);
    assert_eq!(status(&v_root)["held_files"], 1);
    work.push_batch("p/2026-01-01", 2, &lines(1..3), "seq 2..3");
    assert_eq!(sync(&v_root)["import"]["imported_events"], 0);
    work.push_batch("p/2026-01-01", 1, &lines(0..1), "seq 1");
    let v = sync(&v_root);
    assert_eq!(v["import"]["imported_events"], 6, "{v}");
    let seqs: Vec<u64> = own_events(&v_root, "p").iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6], "appended in seq order");
    let st = status(&v_root);
    assert_eq!(st["gaps"], serde_json::json!([]));
    assert_eq!(st["held_files"], 0);
}

#[test]
fn a_fork_is_quarantined_and_raises_an_alert_naming_the_node() {
    let env = TestEnv::with_remote();
    let [v_root, p] = env.nodes(["victim", "p"]);
    publish(&p, 2, "p");
    deliver(&p, &v_root, 2);
    // A second history of p (same key: a cloned machine) with a different seq 2.
    let clone = env.path().join("p-clone");
    json_ok(&clone, &["mesh-init", "--node-id", "p"]);
    std::fs::copy(
        p.join("state/event_mesh/keys/node.ed25519"),
        clone.join("state/event_mesh/keys/node.ed25519"),
    )
    .unwrap();
    let first = own_events(&p, "p")[0].clone();
    let mut other = first.clone();
    other.payload.insert("tag".into(), "fork".into());
    other.seq = 2;
    other.prev = first.event_id.clone();
    other.timestamp = "2026-01-01T00:00:00.000000Z".into();
    other.event_id = gitmesh::event::compute_id(&other, other.id_form()).unwrap();
    other.correlation_id = other.event_id.clone();
    let line = signed_line(&other, &key_of(&p));
    let work = Work::clone(&env.url(), &env.path().join("work"));
    let before = log_bytes(&v_root);
    work.push_batch("p/2026-01-01", 2, &line, "forked seq 2");
    let v = sync(&v_root);
    assert_eq!(reasons(&v["import"]), ["fork"], "{v}");
    assert_eq!(log_bytes(&v_root), before);
    let st = status(&v_root);
    assert_eq!(st["fork_alerts"][0]["node_id"], "p", "{st}");
    assert_eq!(st["fork_alerts"][0]["seq"], 2);
    let human = printed(&v_root, &["mesh-status"]);
    assert!(human.contains("ALERT     fork p:"), "{human}");
    assert_eq!(json_ok(&v_root, &["nodes", "ack", "p"])["cleared"], 1);
    assert_eq!(status(&v_root)["fork_alerts"], serde_json::json!([]));
}

#[test]
fn a_rewritten_or_deleted_batch_is_reported_and_never_applied() {
    let env = TestEnv::with_remote();
    let [v_root, p] = env.nodes(["victim", "p"]);
    publish(&p, 2, "one");
    sync(&p);
    publish(&p, 2, "two");
    deliver(&p, &v_root, 4);
    let before = log_bytes(&v_root);
    let work = Work::clone(&env.url(), &env.path().join("work"));
    let files: Vec<String> = git(&work.dir, &["ls-files", "event_mesh/outbox/p"])
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(files.len(), 2);
    // Rewrite the first batch (drop a line) and delete the second.
    let first = work.dir.join(&files[0]);
    let text = std::fs::read_to_string(&first).unwrap();
    std::fs::write(&first, format!("{}\n", text.lines().next().unwrap())).unwrap();
    std::fs::remove_file(work.dir.join(&files[1])).unwrap();
    work.commit_push("rewrite p's history");
    let v = sync(&v_root);
    let mut r = reasons(&v["import"]);
    r.sort();
    assert_eq!(r, ["history_rewrite", "history_rewrite"], "{v}");
    assert_eq!(log_bytes(&v_root), before, "nothing applied to the log");
    let st = status(&v_root);
    let alerts: Vec<(&str, &str)> = st["rewrite_alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["node_id"].as_str().unwrap(), a["path"].as_str().unwrap()))
        .collect();
    assert_eq!(alerts.len(), 2, "{st}");
    assert!(alerts.iter().all(|(n, _)| *n == "p"));
}

fn copy_dir(from: &Path, to: &Path) {
    let out = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every (seq -> event id) of node `a` in a ledger, asserting no seq appears twice.
fn ledger_seqs(remote: &Path, node: &str) -> BTreeMap<u64, String> {
    let mut out = BTreeMap::new();
    for (_, e) in outbox_events(remote, node) {
        let prev = out.insert(
            e["seq"].as_u64().unwrap(),
            e["event_id"].as_str().unwrap().to_string(),
        );
        assert!(prev.is_none(), "seq {} published twice", e["seq"]);
    }
    out
}

#[test]
fn a_root_restored_from_an_old_copy_never_reuses_a_seq() {
    let env = TestEnv::with_remote();
    let [a, b] = env.nodes(["a", "b"]);
    publish(&a, 2, "one");
    sync(&a);
    publish(&a, 1, "two");
    sync(&a);
    let backup = env.path().join("a-backup");
    copy_dir(&a, &backup);
    publish(&a, 2, "three");
    sync(&a);
    sync(&b);
    // Restore the old copy in place (as a CI cache restore does), then publish and sync.
    std::fs::remove_dir_all(&a).unwrap();
    copy_dir(&backup, &a);
    publish(&a, 1, "after-restore");
    let v = sync(&a);
    assert_eq!(v["export"]["exported_events"], 1, "{v}");
    let seqs = ledger_seqs(env.remote(), "a");
    assert_eq!(seqs.keys().copied().collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    // The local log holds every own event once, in seq order, chained by prev.
    let own = own_events(&a, "a");
    assert_eq!(
        own.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    for w in own.windows(2) {
        assert_eq!(w[1].prev, w[0].event_id);
    }
    let local: BTreeMap<u64, String> = own.iter().map(|e| (e.seq, e.event_id.clone())).collect();
    assert_eq!(local, seqs);
    // The peer imports the new event with no fork and no gap.
    let v = sync(&b);
    assert_eq!(v["import"]["imported_events"], 1, "{v}");
    let st = status(&b);
    assert_eq!(st["fork_alerts"], serde_json::json!([]));
    assert_eq!(st["gaps"], serde_json::json!([]));
    assert_eq!(own_events(&b, "a").len(), 6);

    // A second restore followed directly by a sync recovers as well.
    std::fs::remove_dir_all(&a).unwrap();
    copy_dir(&backup, &a);
    let v = sync(&a);
    assert_eq!(v["export"]["exported_events"], 0, "{v}");
    assert_eq!(own_events(&a, "a").len(), 6);
    assert_eq!(status(&a)["last_seq"], 6);
    publish(&a, 1, "later");
    sync(&a);
    assert_eq!(ledger_seqs(env.remote(), "a").len(), 7);
}

/// Node `a` with seqs 1..3 in the ledger, restored in place from a copy that holds seq 1 only.
fn restored_root(env: &TestEnv) -> std::path::PathBuf {
    let a = env.node("a");
    publish(&a, 1, "one");
    sync(&a);
    let backup = env.path().join("a-backup");
    copy_dir(&a, &backup);
    publish(&a, 2, "two");
    sync(&a);
    std::fs::remove_dir_all(&a).unwrap();
    copy_dir(&backup, &a);
    a
}

#[test]
fn a_restored_root_refuses_to_publish_while_it_cannot_recover() {
    let env = TestEnv::with_remote();
    let a = restored_root(&env);
    // The remote is gone for now: publishing could reuse seq 2, so it is refused.
    let away = env.path().join("mesh.git.away");
    std::fs::rename(env.remote(), &away).unwrap();
    let before = log_bytes(&a);
    let (code, v) = json_err(&a, &publish_args("monitoring", "x.y", &[]));
    assert_eq!(
        (code, v["error"]["kind"].as_str()),
        (1, Some("stale_node")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("copied or restored"),
        "{v}"
    );
    assert_eq!(log_bytes(&a), before);
    // Back online: the publish recovers seqs 2..3 first and takes seq 4.
    std::fs::rename(&away, env.remote()).unwrap();
    let ev = json_ok(&a, &publish_args("monitoring", "x.y", &[]));
    assert_eq!(ev["event"]["seq"], 4, "{ev}");
    sync(&a);
    assert_eq!(ledger_seqs(env.remote(), "a").len(), 4);
}

#[test]
fn library_publish_and_dispatch_recover_a_restored_root_first() {
    let env = TestEnv::with_remote();
    let a = restored_root(&env);
    // A program linking the library (the daemon does) gets the same guard as the CLI.
    let node = gitmesh::Node::open(&a).unwrap();
    let opts = gitmesh::dispatch::DispatchOptions { max_events: None };
    gitmesh::ops::append::dispatch(&node, &opts).unwrap();
    assert_eq!(own_events(&a, "a").len(), 3, "recovered before dispatching");
    let draft = gitmesh::Draft {
        topic: "monitoring".into(),
        event_type: "x.y".into(),
        ..Default::default()
    };
    let published = gitmesh::ops::append::publish(&node, &[draft]).unwrap();
    assert_eq!(published[0].event.seq, 4);
}
