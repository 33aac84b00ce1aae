//! Helpers shared by the integration tests: temp node roots and running the real binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The built `gitmesh` binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gitmesh"))
}

/// A `gitmesh --root ROOT` command with a clean environment for gitmesh variables.
pub fn gm(root: &Path) -> Command {
    let mut c = Command::new(bin());
    c.arg("--root").arg(root);
    for v in [
        "GITMESH_ROOT",
        "GITMESH_NODE_ID",
        "GITMESH_REMOTE",
        "GITMESH_GIT_TOKEN",
        "GITHUB_TOKEN",
        "RUST_LOG",
    ] {
        c.env_remove(v);
    }
    c.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "gitmesh-test")
        .env("GIT_AUTHOR_EMAIL", "test@gitmesh.invalid")
        .env("GIT_COMMITTER_NAME", "gitmesh-test")
        .env("GIT_COMMITTER_EMAIL", "test@gitmesh.invalid");
    c.stdin(Stdio::null());
    c
}

/// Runs a command and returns its output.
pub fn run(mut c: Command) -> Output {
    c.output().expect("run gitmesh")
}

/// Runs `gitmesh --root ROOT --json ARGS...`, asserts exit 0, and returns the JSON object.
pub fn json_ok(root: &Path, args: &[&str]) -> serde_json::Value {
    let mut c = gm(root);
    c.arg("--json").args(args);
    let out = run(c);
    let v = parse_json(&out);
    assert!(
        out.status.success() && v["ok"] == true,
        "gitmesh {args:?} failed: status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    v
}

/// Parses the single JSON object a `--json` run printed.
pub fn parse_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}):\n{}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Initialises a node root in `dir/name` with an optional remote; returns the root.
pub fn init_node(dir: &Path, name: &str, remote: Option<&str>) -> PathBuf {
    let root = dir.join(name);
    let mut args = vec!["mesh-init", "--node-id", name];
    if let Some(r) = remote {
        args.push("--remote");
        args.push(r);
    }
    json_ok(&root, &args);
    root
}

/// Creates an empty bare repository to serve as a shared remote.
pub fn bare_remote(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let st = Command::new("git")
        .args(["init", "--quiet", "--bare", "--initial-branch=main"])
        .arg(&path)
        .status()
        .expect("git init");
    assert!(st.success());
    path
}
