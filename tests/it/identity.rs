//! A node identity that outlives its machine: the signing key from a secret, never
//! printed; a root lost entirely and re-created with the same key recovers its own
//! events and continues its seq; without its key it stops and appends nothing.

use crate::common::{TestEnv, event_ids, gm, parse_json, publish_batch, run, run_with_stdin};
use serde_json::Value;
use std::path::Path;

const SECRET: &str = "4f1d2c3b4a5968778695a4b3c2d1e0f0a0112233445566778899aabbccddeeff";

/// `gitmesh --json ARGS` on `root` with extra environment: (exit code, report).
fn gm_json(root: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let mut c = gm(root);
    c.arg("--json").args(args).envs(env.iter().copied());
    let out = run(c);
    (out.status.code().unwrap_or(-1), parse_json(&out))
}

/// `mesh-init` of node `name` on the env's remote, with extra environment.
fn init(env: &TestEnv, root: &Path, name: &str, vars: &[(&str, &str)]) -> (i32, Value) {
    let url = env.url();
    gm_json(
        root,
        &["mesh-init", "--node-id", name, "--remote", &url],
        vars,
    )
}

/// The own seqs of `node` in `root`'s log, in log order.
fn own_seqs(root: &Path, node: &str) -> Vec<u64> {
    let mut c = gm(root);
    c.args(["events", "--json", "--limit", "1000"]);
    let v = parse_json(&run(c));
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node_id"] == node)
        .map(|e| e["seq"].as_u64().unwrap())
        .collect()
}

/// Publishes one `test.tick` on `root` with extra environment: (exit code, report).
fn publish_one(root: &Path, env: &[(&str, &str)]) -> (i32, Value) {
    let args = ["mesh-publish", "--topic", "monitoring", "--event-type"];
    gm_json(root, &[&args[..], &["test.tick"]].concat(), env)
}

#[test]
fn a_lost_root_with_its_key_recovers_its_events_and_continues_its_seq() {
    let env = TestEnv::with_remote();
    let a = env.path().join("a");
    let key = [("GITMESH_SIGNING_KEY", SECRET)];
    let (code, v) = init(&env, &a, "a", &key);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["key_source"]["kind"], "env", "{v}");
    assert!(
        !v.to_string().contains(SECRET),
        "the secret was printed: {v}"
    );
    assert!(
        !a.join("state/event_mesh/keys/node.ed25519").exists(),
        "a secret key is not copied into the root"
    );
    let mut c = gm(&a);
    c.args(["--json", "mesh-publish", "--stdin"]).envs(key);
    let input = (0..3)
        .map(|i| format!("{{\"topic\":\"monitoring\",\"event_type\":\"test.tick\",\"payload\":{{\"i\":{i}}}}}\n"))
        .collect::<String>();
    assert_eq!(
        parse_json(&run_with_stdin(c, input.as_bytes()))["published"],
        3
    );
    assert_eq!(gm_json(&a, &["mesh-sync"], &key).0, 0);

    // The machine is gone, and its root with it.
    std::fs::remove_dir_all(&a).unwrap();
    let (code, v) = init(&env, &a, "a", &key);
    assert_eq!(code, 0, "a re-created root with its key initialises: {v}");
    assert_eq!(own_seqs(&a, "a"), vec![1, 2, 3], "its events came back");
    let (code, v) = publish_one(&a, &key);
    assert_eq!((code, &v["event"]["seq"]), (0, &Value::from(4)), "{v}");
    let (code, v) = gm_json(&a, &["mesh-sync"], &key);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["export"]["exported_through_seq"], 4, "{v}");

    // A peer sees one chain, with no alert.
    let b = env.node("b");
    crate::common::sync(&b);
    assert_eq!(event_ids(&b, &["--node", "a"]).len(), 4);
    let list = crate::common::json_ok(&b, &["nodes", "list"]);
    assert_eq!(list["key_alerts"], serde_json::json!([]), "{list}");
    assert_eq!(list["alerts"], serde_json::json!([]), "{list}");
}

#[test]
fn a_lost_root_without_its_key_stops_and_appends_nothing() {
    let env = TestEnv::with_remote();
    let a = env.node("a");
    publish_batch(&a, 2, "before");
    crate::common::sync(&a);
    let old_key = std::fs::read_to_string(a.join("state/event_mesh/keys/node.ed25519")).unwrap();
    std::fs::remove_dir_all(&a).unwrap();

    // A new root makes a new key: the ledger speaks for `a` with the old one.
    let (code, v) = init(&env, &a, "a", &[]);
    assert_eq!(
        (code, v["error"]["kind"].as_str()),
        (1, Some("foreign_key")),
        "{v}"
    );
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("GITMESH_SIGNING_KEY") && message.contains("--node-id"),
        "{message}"
    );
    for args in [
        &[
            "mesh-publish",
            "--topic",
            "monitoring",
            "--event-type",
            "test.tick",
        ][..],
        &["mesh-sync"],
        &["mesh-dispatch"],
    ] {
        let (code, v) = gm_json(&a, args, &[]);
        assert_eq!(
            (code, v["error"]["kind"].as_str()),
            (1, Some("foreign_key")),
            "{args:?}: {v}"
        );
    }
    assert_eq!(own_seqs(&a, "a"), Vec::<u64>::new(), "nothing was appended");
    let (_, v) = gm_json(&a, &["keys", "show"], &[]);
    assert_eq!(v["matches_ledger"], false, "{v}");

    // With the key back, the same root recovers and goes on.
    let key = [("GITMESH_SIGNING_KEY", old_key.trim())];
    let (code, v) = init(&env, &a, "a", &key);
    assert_eq!(code, 0, "{v}");
    assert_eq!(own_seqs(&a, "a"), vec![1, 2]);
    let (code, v) = publish_one(&a, &key);
    assert_eq!((code, &v["event"]["seq"]), (0, &Value::from(3)), "{v}");
    let (_, v) = gm_json(&a, &["keys", "show"], &key);
    assert_eq!(
        (v["matches_ledger"].as_bool(), v["source"]["kind"].as_str()),
        (Some(true), Some("env")),
        "{v}"
    );
}

#[test]
fn the_key_comes_from_a_file_and_is_exported_only_on_request() {
    let env = TestEnv::with_remote();
    let secret_file = env.path().join("node.key");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let mut perms = std::fs::metadata(&secret_file).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&secret_file, perms).unwrap();
    let a = env.path().join("a");
    let url = env.url();
    let file = secret_file.to_str().unwrap();
    let (code, v) = gm_json(
        &a,
        &[
            "mesh-init",
            "--node-id",
            "a",
            "--remote",
            &url,
            "--key-file",
            file,
        ],
        &[],
    );
    assert_eq!(
        (code, v["key_source"]["kind"].as_str()),
        (0, Some("file")),
        "{v}"
    );
    let (_, show) = gm_json(&a, &["keys", "show"], &[]);
    let (_, public) = gm_json(&a, &["keys", "export"], &[]);
    assert_eq!(show["public_key"], public["public_key"]);
    for v in [&v, &show, &public] {
        assert!(
            !v.to_string().contains(SECRET),
            "the secret was printed: {v}"
        );
    }
    // Asked for, it goes to a pipe.
    let (code, v) = gm_json(&a, &["keys", "export", "--secret"], &[]);
    assert_eq!((code, v["secret_key"].as_str()), (0, Some(SECRET)), "{v}");
    // A bad secret is refused without being echoed.
    let (code, v) = gm_json(
        &a,
        &["keys", "show"],
        &[("GITMESH_SIGNING_KEY", "not-a-key-s3cret")],
    );
    assert_eq!((code, v["error"]["kind"].as_str()), (1, Some("key")), "{v}");
    assert!(!v.to_string().contains("s3cret"), "{v}");
}
