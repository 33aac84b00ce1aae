//! Helpers shared by the integration tests: temp node roots and running the real binary.

pub mod mesh;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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

/// Runs a command with `input` on its stdin and returns its output.
pub fn run_with_stdin(mut c: Command, input: &[u8]) -> Output {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("run gitmesh");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
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

/// Sets `key = value` in a node's `mesh.toml`; the key must already be there.
pub fn set_config_key(root: &Path, key: &str, value: &str) {
    let path = root.join("mesh.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let prefix = format!("{key} = ");
    assert!(text.contains(&prefix), "{key} not in mesh.toml:\n{text}");
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with(&prefix) {
                format!("{key} = {value}")
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
}

/// Publishes `n` `test.tick` events tagged `tag` in one `mesh-publish --stdin` batch.
pub fn publish_batch(root: &Path, n: usize, tag: &str) {
    let mut input = String::new();
    for i in 0..n {
        input.push_str(&format!(
            "{{\"topic\":\"monitoring\",\"event_type\":\"test.tick\",\"payload\":{{\"tag\":\"{tag}\",\"i\":{i}}}}}\n"
        ));
    }
    let mut c = gm(root);
    c.args(["--json", "mesh-publish", "--stdin"]);
    let v = parse_json(&run_with_stdin(c, input.as_bytes()));
    assert_eq!(v["published"], n, "{v}");
}

/// A bare repository that `git daemon` is allowed to serve.
pub fn exported_bare_remote(dir: &Path, name: &str) -> PathBuf {
    let p = bare_remote(dir, name);
    std::fs::write(p.join("git-daemon-export-ok"), "").unwrap();
    p
}

/// A `git daemon` serving one directory on 127.0.0.1, killed by pid on drop.
pub struct GitDaemon {
    child: Child,
    port: u16,
}

impl GitDaemon {
    /// Starts the daemon on a free loopback port and waits until it accepts connections.
    pub fn start(base: &Path) -> GitDaemon {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // The daemon binary itself, so killing the child kills the server (`git daemon`
        // would leave its `git-daemon` child running).
        let exec_path = Command::new("git").arg("--exec-path").output().unwrap();
        let exec_path = String::from_utf8_lossy(&exec_path.stdout)
            .trim()
            .to_string();
        let child = Command::new(Path::new(&exec_path).join("git-daemon"))
            .arg("--reuseaddr")
            .arg("--export-all")
            .arg("--enable=receive-pack")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start git daemon");
        let d = GitDaemon { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "git daemon did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    /// The `git://` URL of a repository under the served directory.
    pub fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
