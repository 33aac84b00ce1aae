//! `gitmesh doctor` checks a node's needs against real git servers and says how to
//! fix each failure; it exits 1 when any check fails.

use crate::common::{GitHttpServer, TestEnv, gm, parse_json, run};
use serde_json::Value;
use std::path::Path;

/// `gitmesh --json doctor` with extra environment: (exit code, the check named `name`).
fn doctor(root: &Path, env: &[(&str, &Path)]) -> (i32, Value) {
    let mut c = gm(root);
    c.args(["--json", "doctor"]).envs(env.iter().copied());
    let out = run(c);
    (out.status.code().unwrap_or(-1), parse_json(&out))
}

/// The check named `name` of a doctor report.
fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {report}"))
}

#[test]
fn a_token_that_may_only_read_fails_the_push_check_with_its_fix() {
    let env = TestEnv::new();
    let server = GitHttpServer::mesh(
        env.path(),
        "writer-token",
        &["--read-token", "reader-token"],
    );
    let ca = server.ca();
    let a = env.path().join("a");
    let mut init = gm(&a);
    init.args(["--json", "mesh-init", "--node-id", "a", "--remote"])
        .arg(server.url("mesh.git"))
        .args(["--token-host", "127.0.0.1"])
        .env("GITMESH_GIT_TOKEN", "writer-token")
        .env("GIT_SSL_CAINFO", &ca);
    assert_eq!(parse_json(&run(init))["ledger"]["pushed"], true);

    let writer = Path::new("writer-token");
    let (code, v) = doctor(
        &a,
        &[("GIT_SSL_CAINFO", &ca), ("GITMESH_GIT_TOKEN", writer)],
    );
    assert_eq!((code, &v["ok"]), (0, &Value::Bool(true)), "{v}");
    for name in [
        "git",
        "config",
        "remote_read",
        "remote_push",
        "key",
        "clock",
        "disk",
    ] {
        assert_eq!(check(&v, name)["ok"], true, "{name}: {v}");
    }

    let reader = Path::new("reader-token");
    let (code, v) = doctor(
        &a,
        &[("GIT_SSL_CAINFO", &ca), ("GITMESH_GIT_TOKEN", reader)],
    );
    assert_eq!((code, &v["ok"]), (1, &Value::Bool(false)), "{v}");
    assert_eq!(check(&v, "remote_read")["ok"], true, "{v}");
    let push = check(&v, "remote_push");
    assert_eq!(push["ok"], false, "{v}");
    assert!(
        push["fix"].as_str().unwrap().contains("write access"),
        "{push}"
    );
    assert!(
        !v.to_string().contains("reader-token"),
        "the token was printed: {v}"
    );

    // Without any credential the read fails too, with the credential fix.
    let (code, v) = doctor(&a, &[("GIT_SSL_CAINFO", &ca)]);
    assert_eq!(code, 1);
    let read = check(&v, "remote_read");
    assert!(
        read["fix"].as_str().unwrap().contains("credential"),
        "{read}"
    );
}

#[test]
fn a_broken_config_and_a_lost_key_are_named_with_their_fixes() {
    let env = TestEnv::with_remote();
    let a = env.node("a");
    crate::common::sync(&a);
    let (code, v) = doctor(&a, &[]);
    assert_eq!(code, 0, "{v}");

    // The key is replaced: the ledger holds another one for this node.
    let key = a.join("state/event_mesh/keys/node.ed25519");
    let saved = std::fs::read(&key).unwrap();
    std::fs::remove_file(&key).unwrap();
    let mut c = gm(&a);
    c.args(["--json", "doctor"])
        .env("GITMESH_SIGNING_KEY", "11".repeat(32));
    let out = run(c);
    let v = parse_json(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    let k = check(&v, "key");
    assert_eq!(k["ok"], false, "{v}");
    assert!(
        k["fix"].as_str().unwrap().contains("GITMESH_SIGNING_KEY"),
        "{k}"
    );
    assert!(
        !v.to_string().contains(&"11".repeat(32)),
        "the secret was printed"
    );
    std::fs::write(&key, saved).unwrap();

    std::fs::write(a.join("mesh.toml"), "node_id = \"a\"\nbogus = 1\n").unwrap();
    let (code, v) = doctor(&a, &[]);
    assert_eq!(code, 1, "{v}");
    let cfg = check(&v, "config");
    assert!(cfg["detail"].as_str().unwrap().contains("bogus"), "{cfg}");
    assert!(cfg["fix"].as_str().unwrap().contains("mesh.toml"), "{cfg}");
    assert_eq!(check(&v, "git")["ok"], true);
}
