//! `gitmesh keys rotate`: a node moves to a new key with a statement signed by the old
//! and the new key; peers follow it without a key-change alert, keep verifying its
//! older events with the old key, and refuse a forged statement (and what the forger
//! signs). In roster mode the roster must name the new key first.

use crate::common::mesh::*;
use crate::common::{TestEnv, json_ok, sync};
use gitmesh::keys::NodeKey;
use gitmesh::keys::rotation::Rotation;
use serde_json::Value;
use std::path::Path;

/// The seqs of `node`'s events in `root`'s log, in log order.
fn seqs_of(root: &Path, node: &str) -> Vec<u64> {
    own_events(root, node).iter().map(|e| e.seq).collect()
}

/// The reason codes of an import report's alerts.
fn alert_kinds(import: &Value) -> Vec<String> {
    import["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn open_mode_peers_follow_a_rotation_and_refuse_a_forged_one() {
    let env = TestEnv::with_remote();
    // b is first (the roster's admin); a is trusted on first use, as is c later.
    let b = env.node("b");
    let a = env.node("a");
    publish(&a, 2, "old");
    deliver_all(&a, &b, 2);
    // One more event under the old key that b has not fetched yet.
    publish(&a, 1, "old-unseen");
    sync(&a);
    let old_key = key_of(&a).public_hex();

    let r = json_ok(&a, &["keys", "rotate"]);
    assert_eq!(r["from_seq"], 4, "{r}");
    assert_eq!(r["old_public_key"], old_key.as_str(), "{r}");
    assert_eq!(r["secret_must_be_updated"], false, "{r}");
    let new_key = r["new_public_key"].as_str().unwrap().to_string();
    assert_ne!(new_key, old_key);
    assert_eq!(
        key_of(&a).public_hex(),
        new_key,
        "the node now signs with the new key"
    );
    assert!(
        !r.to_string().contains(&key_of(&a).secret_hex()),
        "no secret printed"
    );
    assert!(
        !a.join("state/event_mesh/keys/next.ed25519").exists(),
        "the pending key is gone once the switch is done"
    );

    publish(&a, 2, "new");
    let v = sync(&a);
    assert_eq!(v["export"]["foreign_manifest"], Value::Null, "{v}");
    assert_eq!(json_ok(&a, &["keys", "show"])["matches_ledger"], true);

    let v = sync(&b);
    assert_eq!(v["import"]["imported_events"], 3, "old and new events: {v}");
    assert_eq!(v["import"]["key_alerts"], serde_json::json!([]), "{v}");
    assert_eq!(v["import"]["rejected"], serde_json::json!([]), "{v}");
    assert_eq!(seqs_of(&b, "a"), [1, 2, 3, 4, 5]);
    let known: Value = serde_json::from_str(
        &std::fs::read_to_string(b.join("state/event_mesh/known_nodes.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(known["nodes"]["a"]["public_key"], new_key.as_str());
    assert_eq!(
        known["nodes"]["a"]["history"][0]["public_key"],
        old_key.as_str()
    );
    assert_eq!(known["nodes"]["a"]["history"][0]["before_seq"], 4);
    assert_eq!(
        json_ok(&b, &["mesh-status"])["key_alerts"],
        serde_json::json!([])
    );

    // A node joining afterwards verifies the whole history.
    let c = env.node("c");
    let v = sync(&c);
    assert_eq!(v["import"]["key_alerts"], serde_json::json!([]), "{v}");
    assert_eq!(v["import"]["rejected"], serde_json::json!([]), "{v}");
    assert_eq!(seqs_of(&c, "a"), [1, 2, 3, 4, 5], "{v}");

    // A forger with push access plants a statement claiming a's key, signed by its own,
    // and an event of a signed by the forged new key.
    let forger = NodeKey::from_secret([7; 32]);
    let forged_new = NodeKey::from_secret([8; 32]);
    let mut forged = Rotation::new("a", &forger, &forged_new, 6, "2026-12-01T00:00:00.000000Z");
    forged.old_public_key = new_key.clone();
    publish(&a, 1, "genuine-6");
    let six = own_events(&a, "a").pop().unwrap();
    assert_eq!(six.seq, 6);
    let work = Work::clone(&env.url(), &env.path().join("work"));
    let day = &six.timestamp[..10];
    let stmt_path = format!("event_mesh/keys/a/{}", forged.file_name());
    let batch_path = format!("event_mesh/outbox/a/{day}/000000000006.ndjson");
    let line = signed_line(&six, &forged_new);
    work.push_files(
        &[
            (stmt_path.as_str(), &forged.to_file()),
            (batch_path.as_str(), line.as_bytes()),
        ],
        "forged rotation",
    );
    let v = sync(&b);
    assert_eq!(v["import"]["imported_events"], 0, "{v}");
    let reasons = reasons(&v["import"]);
    assert!(reasons.contains(&"bad_rotation".to_string()), "{v}");
    assert!(reasons.contains(&"bad_signature".to_string()), "{v}");
    assert!(
        alert_kinds(&v["import"]).contains(&"bad_rotation".to_string()),
        "{v}"
    );
    let st = json_ok(&b, &["mesh-status"]);
    assert_eq!(st["rotation_alerts"][0]["node_id"], "a", "{st}");
    let known: Value = serde_json::from_str(
        &std::fs::read_to_string(b.join("state/event_mesh/known_nodes.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        known["nodes"]["a"]["public_key"],
        new_key.as_str(),
        "the pin stays"
    );
    assert_eq!(seqs_of(&b, "a"), [1, 2, 3, 4, 5]);
    // Reported once, not at every sync.
    assert_eq!(sync(&b)["import"]["quarantined"], 0);

    // a's own seq 6, signed with its real new key, still arrives.
    sync(&a);
    let v = sync(&b);
    assert_eq!(v["import"]["imported_events"], 1, "{v}");
    assert_eq!(seqs_of(&b, "a"), [1, 2, 3, 4, 5, 6]);
}

/// Syncs `from`, then `to`, checking that `to` imported `expected` events.
fn deliver_all(from: &Path, to: &Path, expected: u64) {
    crate::common::deliver(from, to, expected);
}

#[test]
fn a_secret_from_the_environment_is_replaced_by_a_stored_key_and_never_signs_again() {
    let env = TestEnv::with_remote();
    let b = env.node("b");
    let a = env.path().join("a");
    let secret = "4f1d2c3b4a5968778695a4b3c2d1e0f0a0112233445566778899aabbccddeeff";
    let vars = [("GITMESH_SIGNING_KEY", secret)];
    let mut c = crate::common::gm(&a);
    c.args([
        "--json",
        "mesh-init",
        "--node-id",
        "a",
        "--remote",
        &env.url(),
        "--trust",
        "open",
    ])
    .envs(vars);
    assert!(crate::common::run(c).status.success());
    let with_secret = |args: &[&str]| {
        let mut c = crate::common::gm(&a);
        c.arg("--json").args(args).envs(vars);
        let out = crate::common::run(c);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            crate::common::parse_json(&out),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    with_secret(&[
        "mesh-publish",
        "--topic",
        "monitoring",
        "--event-type",
        "test.tick",
    ]);
    with_secret(&["mesh-sync"]);
    let old_key = NodeKey::from_hex(secret).unwrap().public_hex();
    let mut h = crate::common::gm(&a);
    h.args(["keys", "rotate"]).envs(vars);
    let human = String::from_utf8(crate::common::run(h).stdout).unwrap();
    assert!(human.contains("UPDATE THE SECRET"), "{human}");
    assert!(human.contains("keys export --secret"), "{human}");
    assert!(!human.contains(secret), "{human}");
    // With the old secret still set, the node signs with the stored new key.
    let (shown, _) = with_secret(&["keys", "show"]);
    assert_eq!(shown["source"]["kind"], "root", "{shown}");
    assert_ne!(shown["public_key"], old_key.as_str());
    // `keys export --secret` gives the value to store as the new secret.
    let mut e = crate::common::gm(&a);
    e.args(["keys", "export", "--secret"]).envs(vars);
    let exported = String::from_utf8(crate::common::run(e).stdout).unwrap();
    let stored = NodeKey::from_hex(&exported).unwrap();
    assert_eq!(stored.public_hex(), shown["public_key"].as_str().unwrap());
    with_secret(&[
        "mesh-publish",
        "--topic",
        "monitoring",
        "--event-type",
        "test.tick",
    ]);
    with_secret(&["mesh-sync"]);
    let v = sync(&b);
    assert_eq!(v["import"]["imported_events"], 2, "{v}");
    assert_eq!(v["import"]["key_alerts"], serde_json::json!([]), "{v}");
    // Once the secret holds the new key, it is used again.
    let mut c = crate::common::gm(&a);
    c.args(["--json", "keys", "show"])
        .env("GITMESH_SIGNING_KEY", exported.trim());
    let shown = crate::common::parse_json(&crate::common::run(c));
    assert_eq!(shown["source"]["kind"], "env", "{shown}");
    assert_eq!(shown["matches_ledger"], true, "{shown}");
}

#[test]
fn roster_mode_a_members_rotation_takes_effect_once_an_admin_rekeys_it() {
    let env = TestEnv::with_remote();
    let adm = env.node_with("adm", &["--trust", "roster"]);
    let m = env.node_with("m", &["--trust", "roster"]);
    let p = env.node_with("p", &["--trust", "roster"]);
    let m_key = key_of(&m).public_hex();
    json_ok(&adm, &["roster", "enroll", "m", "--key", &m_key]);
    sync(&adm);
    publish(&m, 2, "old");
    sync(&m);
    let v = sync(&p);
    assert_eq!(v["import"]["imported_events"], 2, "{v}");
    publish(&m, 1, "old-unseen");
    sync(&m);

    let r = json_ok(&m, &["keys", "rotate"]);
    assert_eq!(r["roster_rekey_needed"], true, "{r}");
    assert_eq!(r["roster_version_staged"], Value::Null, "{r}");
    publish(&m, 2, "new");
    sync(&m);
    // Held, not lost, until the roster names the new key.
    let v = sync(&p);
    assert_eq!(v["import"]["imported_events"], 0, "{v}");
    assert!(
        v["import"]["held"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["node_id"] == "m"),
        "{v}"
    );
    assert_eq!(v["import"]["rejected"], serde_json::json!([]), "{v}");

    sync(&adm);
    let staged = json_ok(&adm, &["roster", "rekey", "m"]);
    assert_eq!(
        staged["roster"]["nodes"]["m"]["public_key"], r["new_public_key"],
        "{staged}"
    );
    sync(&adm);
    let v = sync(&p);
    assert_eq!(v["import"]["imported_events"], 3, "{v}");
    assert_eq!(v["import"]["held"], serde_json::json!([]), "{v}");
    assert_eq!(seqs_of(&p, "m"), [1, 2, 3, 4, 5]);
}

#[test]
fn roster_mode_an_admins_rotation_stages_a_roster_version_signed_by_the_old_key() {
    let env = TestEnv::with_remote();
    let adm = env.node_with("adm", &["--trust", "roster"]);
    let p = env.node_with("p", &["--trust", "roster"]);
    publish(&adm, 2, "old");
    sync(&adm);
    assert_eq!(sync(&p)["import"]["imported_events"], 2);

    let r = json_ok(&adm, &["keys", "rotate"]);
    assert_eq!(r["roster_version_staged"], 2, "{r}");
    let new_key = r["new_public_key"].as_str().unwrap().to_string();
    publish(&adm, 1, "new");
    sync(&adm);
    let v = sync(&p);
    assert_eq!(v["import"]["imported_events"], 1, "{v}");
    assert_eq!(v["import"]["held"], serde_json::json!([]), "{v}");
    let shown = json_ok(&p, &["roster", "show"]);
    assert_eq!(shown["trusted"]["version"], 2, "{shown}");
    assert_eq!(
        shown["trusted"]["nodes"]["adm"]["public_key"],
        new_key.as_str()
    );
    // The admin signs the next roster version with its new key.
    json_ok(
        &adm,
        &[
            "roster",
            "enroll",
            "q",
            "--key",
            &NodeKey::from_secret([3; 32]).public_hex(),
        ],
    );
    sync(&adm);
    sync(&p);
    assert_eq!(json_ok(&p, &["roster", "show"])["trusted"]["version"], 3);
}

#[test]
fn a_rotation_interrupted_after_any_step_leaves_a_node_that_signs_and_peers_that_verify() {
    let env = TestEnv::with_remote();
    let b = env.node("b");
    let a = env.node("a");
    publish(&a, 1, "before");
    deliver_all(&a, &b, 1);
    let keys = a.join("state/event_mesh/keys");
    let old = key_of(&a);
    let store = |k: &NodeKey, path: &Path| k.store(path).unwrap();

    // Killed after step 1: a new key is pending, nothing names it. It is dropped.
    let unused = NodeKey::from_secret([5; 32]);
    store(&unused, &keys.join("next.ed25519"));
    publish(&a, 1, "after-step-1");
    deliver_all(&a, &b, 1);
    assert!(!keys.join("next.ed25519").exists());
    assert_eq!(
        key_of(&a).public_hex(),
        old.public_hex(),
        "the key did not change"
    );

    // Killed after step 2: the statement is written, the key not yet switched. The next
    // sync finishes the switch before it signs, and peers follow.
    let new = NodeKey::from_secret([6; 32]);
    store(&new, &keys.join("next.ed25519"));
    let st = Rotation::new("a", &old, &new, 3, "2026-12-01T00:00:00.000000Z");
    std::fs::create_dir_all(keys.join("rotations")).unwrap();
    std::fs::write(keys.join("rotations").join(st.file_name()), st.to_file()).unwrap();
    publish(&a, 1, "after-step-2");
    let v = sync(&a);
    assert_eq!(v["export"]["foreign_manifest"], Value::Null, "{v}");
    assert_eq!(
        key_of(&a).public_hex(),
        new.public_hex(),
        "the switch was finished"
    );
    assert!(!keys.join("next.ed25519").exists());
    let v = sync(&b);
    assert_eq!(v["import"]["imported_events"], 1, "{v}");
    assert_eq!(v["import"]["key_alerts"], serde_json::json!([]), "{v}");
    assert_eq!(v["import"]["rejected"], serde_json::json!([]), "{v}");
    assert_eq!(seqs_of(&b, "a"), [1, 2, 3]);
}

#[test]
fn a_key_from_a_key_file_is_rotated_in_that_file() {
    let env = TestEnv::with_remote();
    let b = env.node("b");
    let dir = env.path().join("secrets");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("a.key");
    NodeKey::from_secret([4; 32]).store(&file).unwrap();
    let a = env.path().join("a");
    let f = file.to_str().unwrap();
    let url = env.url();
    let init = [
        "mesh-init",
        "--node-id",
        "a",
        "--remote",
        &url,
        "--trust",
        "open",
    ];
    json_ok(&a, &[&init[..], &["--key-file", f]].concat());
    publish(&a, 1, "old");
    deliver_all(&a, &b, 1);

    let r = json_ok(&a, &["keys", "rotate"]);
    assert_eq!(r["old_source"]["kind"], "file", "{r}");
    assert_eq!(r["stored_at"], f, "{r}");
    let in_file = NodeKey::from_hex(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(in_file.public_hex(), r["new_public_key"].as_str().unwrap());
    assert!(!a.join("state/event_mesh/keys/node.ed25519").exists());
    publish(&a, 1, "new");
    let v = crate::common::deliver(&a, &b, 1);
    assert_eq!(v["import"]["key_alerts"], serde_json::json!([]), "{v}");
}

#[test]
fn sigkill_during_keys_rotate_never_breaks_signing_or_verification() {
    let env = TestEnv::with_remote();
    let b = env.node("b");
    let a = env.node("a");
    let mut published = 0u64;
    // Kill moments spread over the command's run (a debug build takes tens of ms).
    for (round, delay_ms) in [0u64, 2, 4, 7, 10, 15, 20, 30, 45, 80]
        .into_iter()
        .enumerate()
    {
        publish(&a, 1, &format!("round-{round}"));
        published += 1;
        let mut c = crate::common::gm(&a);
        c.args(["--json", "keys", "rotate"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = c.spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        child.wait().unwrap();

        let v = sync(&a);
        assert_eq!(
            v["export"]["foreign_manifest"],
            Value::Null,
            "round {round}: {v}"
        );
        assert!(
            !a.join("state/event_mesh/keys/next.ed25519").exists(),
            "round {round}: a pending key outlived the next sync"
        );
        assert_eq!(
            json_ok(&a, &["keys", "show"])["matches_ledger"],
            true,
            "round {round}"
        );
        let v = sync(&b);
        assert_eq!(
            v["import"]["rejected"],
            serde_json::json!([]),
            "round {round}: {v}"
        );
        assert_eq!(
            v["import"]["key_alerts"],
            serde_json::json!([]),
            "round {round}: {v}"
        );
        assert_eq!(
            v["import"]["held"],
            serde_json::json!([]),
            "round {round}: {v}"
        );
        assert_eq!(
            seqs_of(&b, "a"),
            (1..=published).collect::<Vec<_>>(),
            "round {round}"
        );
    }
    let decided =
        std::fs::read_dir(a.join("state/event_mesh/keys/rotations")).map_or(0, |d| d.count());
    eprintln!("rotations decided before their kill or completed: {decided} of 10");
    // A node joining afterwards verifies every event under whichever key signed it.
    let c = env.node("c");
    let v = sync(&c);
    assert_eq!(v["import"]["rejected"], serde_json::json!([]), "{v}");
    assert_eq!(seqs_of(&c, "a"), (1..=published).collect::<Vec<_>>(), "{v}");
}
