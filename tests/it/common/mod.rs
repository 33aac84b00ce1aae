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

/// Runs `gitmesh --root ROOT ARGS...` and returns what it printed for a person.
pub fn printed(root: &Path, args: &[&str]) -> String {
    let mut c = gm(root);
    c.args(args);
    String::from_utf8(run(c).stdout).unwrap()
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

/// The arguments of `mesh-publish --topic TOPIC --event-type TYPE EXTRA...`.
pub fn publish_args<'a>(topic: &'a str, event_type: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["mesh-publish", "--topic", topic, "--event-type", event_type];
    args.extend_from_slice(extra);
    args
}

/// Publishes one event with [`publish_args`]; returns its envelope.
pub fn publish_event(
    root: &Path,
    topic: &str,
    event_type: &str,
    extra: &[&str],
) -> serde_json::Value {
    json_ok(root, &publish_args(topic, event_type, extra))["event"].clone()
}

/// `gitmesh --json ARGS` that must fail; returns (exit code, JSON or null).
pub fn json_err(root: &Path, args: &[&str]) -> (i32, serde_json::Value) {
    let mut c = gm(root);
    c.arg("--json").args(args);
    let out = run(c);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert!(
        !out.status.success(),
        "gitmesh {args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    (out.status.code().unwrap_or(-1), v)
}

/// The `schema list` row of `event_type`.
pub fn schema_row(root: &Path, event_type: &str) -> serde_json::Value {
    let listed = json_ok(root, &["schema", "list"]);
    let row = listed["schemas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["event_type"] == event_type);
    row.unwrap_or_else(|| panic!("{event_type} not listed: {listed}"))
        .clone()
}

/// Initialises a node root in `dir/name` with an optional remote; returns the root.
/// Like [`TestEnv::node`], the node trusts peers on first use (`--trust open`).
pub fn init_node(dir: &Path, name: &str, remote: Option<&str>) -> PathBuf {
    let root = dir.join(name);
    let mut args = vec!["mesh-init", "--node-id", name, "--trust", "open"];
    if let Some(r) = remote {
        args.push("--remote");
        args.push(r);
    }
    json_ok(&root, &args);
    root
}

/// Creates an empty bare repository to serve as a shared remote.
pub fn bare_remote(dir: &Path, name: &str) -> PathBuf {
    git(
        dir,
        &["init", "--quiet", "--bare", "--initial-branch=main", name],
    );
    dir.join(name)
}

/// Runs `git -C DIR ARGS...` with a fixed identity and no system config; returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    git_with(dir, args, &[], None)
}

/// [`git`] with extra environment variables and bytes on stdin (plumbing commands).
pub fn git_with(dir: &Path, args: &[&str], env: &[(&str, &Path)], input: Option<&[u8]>) -> String {
    let mut c = Command::new("git");
    c.arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "gitmesh-test")
        .env("GIT_AUTHOR_EMAIL", "test@gitmesh.invalid")
        .env("GIT_COMMITTER_NAME", "gitmesh-test")
        .env("GIT_COMMITTER_EMAIL", "test@gitmesh.invalid")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("spawn git");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        if let Some(i) = input {
            stdin.write_all(i).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every event line of `node`'s outbox on `remote`'s `main`, with the file it stands in.
pub fn outbox_events(remote: &Path, node: &str) -> Vec<(String, serde_json::Value)> {
    let outbox = format!("event_mesh/outbox/{node}");
    let files = git(remote, &["ls-tree", "-r", "--name-only", "main", &outbox]);
    let mut out = Vec::new();
    for f in files.lines() {
        for line in git(remote, &["show", &format!("main:{f}")]).lines() {
            out.push((f.to_string(), serde_json::from_str(line).unwrap()));
        }
    }
    out
}

/// `mesh-sync --json` that must succeed (exit 0); returns the sync report.
pub fn sync(root: &Path) -> serde_json::Value {
    json_ok(root, &["mesh-sync"])
}

/// Asserts that the JSON object `v` has every one of `keys`.
pub fn assert_has_fields(v: &serde_json::Value, keys: &[&str]) {
    for k in keys {
        assert!(v.get(k).is_some(), "{k} missing in {v}");
    }
}

/// Syncs `from`, then `to`, checking that `to` imported `expected` events of it;
/// returns `to`'s sync report.
pub fn deliver(from: &Path, to: &Path, expected: u64) -> serde_json::Value {
    sync(from);
    let v = sync(to);
    assert_eq!(v["import"]["imported_events"], expected, "{v}");
    v
}

/// `mesh-sync --json` that may also exit 75 (contended or offline: retry later);
/// returns the exit code.
pub fn sync_code(root: &Path) -> i32 {
    let mut c = gm(root);
    c.args(["--json", "mesh-sync"]);
    let out = run(c);
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 75,
        "mesh-sync on {} exited {code}: {}",
        root.display(),
        String::from_utf8_lossy(&out.stdout)
    );
    code
}

/// The ids of the events `gitmesh events ARGS...` lists, in its order.
pub fn event_ids(root: &Path, args: &[&str]) -> Vec<String> {
    let mut a = vec!["events"];
    a.extend_from_slice(args);
    field(json_ok(root, &a)["events"].as_array().unwrap(), "event_id")
        .into_iter()
        .map(String::from)
        .collect()
}

/// The string `name` of every JSON object in `items`.
pub fn field<'a>(
    items: impl IntoIterator<Item = &'a serde_json::Value>,
    name: &str,
) -> Vec<&'a str> {
    items
        .into_iter()
        .map(|e| e[name].as_str().unwrap())
        .collect()
}

/// One test's world: a temporary directory, optionally a shared bare remote (served
/// by `git daemon` on request), and the nodes initialised on it.
pub struct TestEnv {
    // Declared first so the server stops before its directory is removed.
    daemon: Option<GitDaemon>,
    remote: Option<PathBuf>,
    dir: tempfile::TempDir,
}

impl TestEnv {
    /// A temporary directory and no remote: nodes use their embedded one.
    pub fn new() -> TestEnv {
        TestEnv {
            daemon: None,
            remote: None,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A bare remote `mesh.git` that nodes share over the file protocol.
    pub fn with_remote() -> TestEnv {
        let mut env = TestEnv::new();
        env.remote = Some(exported_bare_remote(env.path(), "mesh.git"));
        env
    }

    /// The remote served by `git daemon` on 127.0.0.1: nodes use its `git://` URL.
    pub fn served() -> TestEnv {
        let mut env = TestEnv::new();
        let served = env.path().join("served");
        std::fs::create_dir_all(&served).unwrap();
        env.remote = Some(exported_bare_remote(&served, "mesh.git"));
        env.daemon = Some(GitDaemon::start(&served));
        env
    }

    /// The temporary directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The bare remote's directory.
    pub fn remote(&self) -> &Path {
        self.remote.as_deref().expect("a TestEnv with a remote")
    }

    /// The URL nodes are given for the remote.
    pub fn url(&self) -> String {
        match &self.daemon {
            Some(d) => d.url("mesh.git"),
            None => self.remote().to_str().unwrap().to_string(),
        }
    }

    /// `mesh-init`s node `name` in the directory, on the remote if there is one.
    pub fn node(&self, name: &str) -> PathBuf {
        self.node_with(name, &[])
    }

    /// [`TestEnv::node`] with extra `mesh-init` arguments.
    ///
    /// Nodes of a test mesh trust peers on first use (`--trust open`): the first node
    /// still creates the signed roster and is its admin, but peers need no enrollment.
    /// Pass `--trust roster` in `extra` for a node that trusts only the roster.
    pub fn node_with(&self, name: &str, extra: &[&str]) -> PathBuf {
        let root = self.path().join(name);
        let url = self.remote.as_ref().map(|_| self.url());
        let mut args = vec!["mesh-init", "--node-id", name];
        if let Some(u) = &url {
            args.extend(["--remote", u.as_str()]);
        }
        if !extra.contains(&"--trust") {
            args.extend(["--trust", "open"]);
        }
        args.extend_from_slice(extra);
        json_ok(&root, &args);
        root
    }

    /// Several nodes at once, each as [`TestEnv::node`].
    pub fn nodes<const N: usize>(&self, names: [&str; N]) -> [PathBuf; N] {
        names.map(|n| self.node(n))
    }
}

/// Installs an executable hook `name` (e.g. `pre-receive`) in a bare repository.
pub fn install_hook(repo: &Path, name: &str, script: &str) {
    let hook = repo.join("hooks").join(name);
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::fs::write(&hook, script).unwrap();
    let mut perms = std::fs::metadata(&hook).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&hook, perms).unwrap();
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
    let (_, v) = publish_stdin(root, input.as_bytes());
    assert_eq!(v["published"], n, "{v}");
}

/// Runs `mesh-publish --stdin --json` with `input`; returns the exit code and the JSON printed.
pub fn publish_stdin(root: &Path, input: &[u8]) -> (Option<i32>, serde_json::Value) {
    let mut c = gm(root);
    c.args(["--json", "mesh-publish", "--stdin"]);
    let out = run_with_stdin(c, input);
    (out.status.code(), parse_json(&out))
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

/// `scripts/git-http-server` on 127.0.0.1: git smart HTTP behind basic auth, over
/// https with a self-signed certificate (or plain http), killed by pid on drop.
pub struct GitHttpServer {
    child: Child,
    port: u16,
    https: bool,
    state: PathBuf,
}

impl GitHttpServer {
    /// Serves the bare repositories under `base` to the password `token`; `extra`
    /// are more flags of the script (`--read-token T`, `--anonymous-read`, `--plain`).
    pub fn start(base: &Path, state: &Path, token: &str, extra: &[&str]) -> GitHttpServer {
        std::fs::create_dir_all(state).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/git-http-server");
        let child = Command::new("python3")
            .arg(script)
            .arg("--root")
            .arg(base)
            .arg("--state")
            .arg(state)
            .args(["--token", token, "--max-seconds", "300"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start scripts/git-http-server");
        let mut server = GitHttpServer {
            child,
            port: 0,
            https: !extra.contains(&"--plain"),
            state: state.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.port == 0 {
            if let Ok(p) = std::fs::read_to_string(state.join("port")) {
                server.port = p.trim().parse().unwrap();
                break;
            }
            assert!(
                server.child.try_wait().unwrap().is_none(),
                "git-http-server exited early"
            );
            assert!(Instant::now() < deadline, "git-http-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// A fresh bare `mesh.git` under `dir/http`, served with [`GitHttpServer::start`]
    /// (state in `dir/server`).
    pub fn mesh(dir: &Path, token: &str, extra: &[&str]) -> GitHttpServer {
        let served = dir.join("http");
        std::fs::create_dir_all(&served).unwrap();
        bare_remote(&served, "mesh.git");
        GitHttpServer::start(&served, &dir.join("server"), token, extra)
    }

    /// The URL of a repository under the served directory.
    pub fn url(&self, repo: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/{repo}", self.port)
    }

    /// The certificate git must trust (`GIT_SSL_CAINFO`).
    pub fn ca(&self) -> PathBuf {
        self.state.join("ca.pem")
    }

    /// One line per request served so far: `METHOD PATH auth=none|empty|good|read|bad`.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.state.join("requests.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// When `lease` (a lease file, or the `leader` object of status or sync output) runs out.
pub fn lease_expiry(lease: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    gitmesh::event::parse_timestamp(lease["lease_expires_at"].as_str().unwrap()).unwrap()
}

/// Sleeps until the wall-clock instant `at` (at most 10 s, so a bad stamp cannot
/// hang a test); returns at once when it has passed.
pub fn sleep_until_wall(at: chrono::DateTime<chrono::Utc>) {
    if let Ok(wait) = (at - chrono::Utc::now()).to_std() {
        std::thread::sleep(wait.min(Duration::from_secs(10)));
    }
}
