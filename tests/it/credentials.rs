//! Credentials handled as git handles them: a remote URL holding a password is
//! refused without being echoed, and the token variable goes only over https, only
//! to the token's host, and never over a configured credential helper.

use crate::common::{GitHttpServer, TestEnv, gm, json_err, parse_json, run};
use serde_json::Value;
use std::path::Path;

const TOKEN: &str = "good-token-1234";

/// A loopback server (https unless `plain`) on a fresh bare `mesh.git`.
fn serve(env: &TestEnv, plain: bool) -> GitHttpServer {
    let flags: &[&str] = if plain { &["--plain"] } else { &[] };
    GitHttpServer::mesh(env.path(), TOKEN, flags)
}

/// `mesh-init --json` of node `name` on `url`, with extra flags and environment.
fn init(root: &Path, url: &str, flags: &[&str], env: &[(&str, &Path)], token: &str) -> Value {
    let name = root.file_name().unwrap().to_str().unwrap();
    let mut c = gm(root);
    c.args(["--json", "mesh-init", "--node-id", name, "--remote", url])
        .args(flags)
        .env("GITMESH_GIT_TOKEN", token)
        .envs(env.iter().copied());
    parse_json(&run(c))
}

#[test]
fn a_remote_url_with_a_password_is_refused_without_echoing_it() {
    let env = TestEnv::new();
    let root = env.path().join("a");
    for url in [
        "https://bot:s3cret@127.0.0.1:9/mesh.git",
        "https://s3cret@github.com/o/mesh.git",
    ] {
        let (code, v) = json_err(&root, &["mesh-init", "--node-id", "a", "--remote", url]);
        let text = v.to_string();
        assert_eq!(code, 2, "{v}");
        assert!(!text.contains("s3cret"), "the secret was printed: {text}");
        assert!(text.contains("credential helper"), "{text}");
    }
    // A mesh.toml edited to hold one is refused on load, by every command.
    let root = TestEnv::new();
    let a = root.node("a");
    let cfg = a.join("mesh.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replace(
        "[ledger]",
        "[ledger]\nremote = \"https://bot:s3cret@127.0.0.1:9/mesh.git\"",
    );
    std::fs::write(&cfg, text).unwrap();
    for args in [&["mesh-status"][..], &["mesh-sync"]] {
        let (code, v) = json_err(&a, args);
        assert_eq!(v["error"]["kind"], "config", "{v}");
        assert!(code != 0 && !v.to_string().contains("s3cret"), "{v}");
    }
}

#[test]
fn the_token_is_never_sent_over_plain_http() {
    let env = TestEnv::new();
    let server = serve(&env, true);
    let a = env.path().join("a");
    let v = init(
        &a,
        &server.url("mesh.git"),
        &["--token-host", "127.0.0.1"],
        &[],
        TOKEN,
    );
    assert_eq!(v["error"]["kind"], "auth", "{v}");
    let requests = server.requests();
    assert!(!requests.is_empty(), "the server was asked");
    assert!(
        requests.iter().all(|r| !r.ends_with("auth=good")),
        "the token crossed plain http: {requests:?}"
    );
}

#[test]
fn the_token_goes_over_https_only_to_the_named_host() {
    let env = TestEnv::new();
    let server = serve(&env, false);
    let ca = server.ca();
    let cainfo: &[(&str, &Path)] = &[("GIT_SSL_CAINFO", &ca)];
    // 127.0.0.1 is not github.com: without `token_host` the token stays home.
    let a = env.path().join("a");
    let v = init(&a, &server.url("mesh.git"), &[], cainfo, TOKEN);
    assert_eq!(v["error"]["kind"], "auth", "{v}");
    let requests = server.requests();
    assert!(
        requests.iter().all(|r| !r.ends_with("auth=good")),
        "the token went to another host: {requests:?}"
    );
    // Naming the host lets it go.
    let v = init(
        &a,
        &server.url("mesh.git"),
        &["--token-host", "127.0.0.1"],
        cainfo,
        TOKEN,
    );
    assert_eq!(v["ledger"]["pushed"], true, "{v}");
    assert!(server.requests().iter().any(|r| r.ends_with("auth=good")));
}

#[test]
fn a_configured_credential_helper_wins_over_the_token_variable() {
    let env = TestEnv::new();
    let server = serve(&env, false);
    let ca = server.ca();
    let global = env.path().join("gitconfig");
    std::fs::write(
        &global,
        format!(
            "[credential]\n\thelper = \"!f() {{ echo username=bot; echo password={TOKEN}; }}; f\"\n"
        ),
    )
    .unwrap();
    let a = env.path().join("a");
    let v = init(
        &a,
        &server.url("mesh.git"),
        &["--token-host", "127.0.0.1"],
        &[("GIT_SSL_CAINFO", &ca), ("GIT_CONFIG_GLOBAL", &global)],
        "stale-token-9999",
    );
    assert_eq!(
        v["ledger"]["pushed"], true,
        "the helper's credential works: {v}"
    );
    let requests = server.requests();
    assert!(
        requests.iter().all(|r| !r.ends_with("auth=bad")),
        "the variable's token was sent over the helper: {requests:?}"
    );
}
