//! A failed fetch or push says what went wrong: only a remote out of reach is
//! "retry later" (exit 75); a refusing server, a refused credential or a missing
//! repository fails the sync with its kind (exit 1) and git's message.

use crate::common::{
    GitHttpServer, TestEnv, event_ids, gm, install_hook, json_ok, parse_json, publish_batch, run,
    set_config_key,
};
use crate::daemon_support::{Daemon, http_get};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// `mesh-sync` on `root`, with `GITMESH_REMOTE` when given: (exit code, `--json`
/// report, what the human form printed on stderr).
fn sync_against(root: &Path, remote: Option<&str>) -> (i32, Value, String) {
    let env: Vec<(&str, &str)> = remote.map(|r| ("GITMESH_REMOTE", r)).into_iter().collect();
    sync_with(root, &env)
}

/// `mesh-sync` on `root` with extra environment variables, in `--json` and in
/// human form: (exit code, report, what the human form printed on stderr).
fn sync_with(root: &Path, env: &[(&str, &str)]) -> (i32, Value, String) {
    let command = |json: bool| {
        let mut c = gm(root);
        if json {
            c.arg("--json");
        }
        c.arg("mesh-sync").envs(env.iter().copied());
        run(c)
    };
    let out = command(true);
    let human = command(false);
    assert_eq!(
        out.status.code(),
        human.status.code(),
        "both forms end the same"
    );
    (
        out.status.code().unwrap_or(-1),
        parse_json(&out),
        String::from_utf8_lossy(&human.stderr).into_owned(),
    )
}

/// Asserts a sync failed with exit 1, `kind`, and a message holding `says`.
fn assert_failed(got: &(i32, Value, String), kind: &str, says: &str) {
    let (code, v, stderr) = got;
    assert_eq!(
        (*code, v["ok"].as_bool(), v["error"]["kind"].as_str()),
        (1, Some(false), Some(kind)),
        "{v}"
    );
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains(says), "{message}");
    assert!(stderr.contains(says), "stderr: {stderr}");
}

#[test]
fn a_refusing_pre_receive_hook_fails_the_sync_as_rejected() {
    let env = TestEnv::with_remote();
    let a = env.node("a");
    install_hook(
        env.remote(),
        "pre-receive",
        "#!/bin/sh\necho 'push refused: this token may not write here' >&2\nexit 1\n",
    );
    publish_batch(&a, 2, "refused");
    let got = sync_against(&a, None);
    assert_failed(
        &got,
        "rejected",
        "push refused: this token may not write here",
    );
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pre-receive hook declined")
    );
}

#[test]
fn a_repository_the_server_does_not_have_fails_the_sync_as_not_found() {
    let env = TestEnv::served();
    let a = env.node("a");
    let missing = env.url().replace("mesh.git", "missing.git");
    let got = sync_against(&a, Some(&missing));
    assert_failed(&got, "not_found", "repository not exported: /missing.git");
}

#[test]
fn a_closed_port_is_offline_and_exits_75() {
    let env = TestEnv::with_remote();
    let a = env.node("a");
    publish_batch(&a, 2, "offline");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, v, _) = sync_against(&a, Some(&format!("git://127.0.0.1:{port}/mesh.git")));
    assert_eq!(code, 75, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["push"]["offline"], true, "{v}");
    assert_eq!(v["export"]["exported_events"], 2, "local work is done: {v}");
}

#[test]
fn http_401_403_and_404_are_auth_rejected_and_not_found() {
    let env = TestEnv::with_remote();
    let a = env.node("a");
    let server = Server::start(answer);
    let url = |status: u16| format!("http://127.0.0.1:{}/{status}/mesh.git", server.port);
    for (status, kind, says) in [
        (401, "auth", "Authentication failed"),
        (403, "rejected", "returned error: 403"),
        (404, "not_found", "not found"),
    ] {
        let got = sync_against(&a, Some(&url(status)));
        assert_failed(&got, kind, says);
    }
    assert!(server.stop() >= 6, "every sync reached the server");
}

/// A server on 127.0.0.1 that answers each connection with `handler`, one at a
/// time, until it is stopped (or for two minutes at most).
struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<usize>>,
}

impl Server {
    fn start(mut handler: impl FnMut(&mut TcpStream) + Send + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut served = 0;
            let deadline = Instant::now() + Duration::from_secs(120);
            while !flag.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        conn.set_nonblocking(false).unwrap();
                        conn.set_read_timeout(Some(Duration::from_secs(10)))
                            .unwrap();
                        handler(&mut conn);
                        served += 1;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            served
        });
        Server {
            port,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the server and returns how many connections it answered.
    fn stop(mut self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().map_or(0, |t| t.join().unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers a request to `/STATUS/...` with that status (a 401 asks for basic
/// auth), as a git host refusing a client does.
fn answer(conn: &mut TcpStream) {
    let Some((head, _)) = read_head(conn) else {
        return;
    };
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    let (status, extra) = match path.split('/').nth(1) {
        Some("401") => (
            "401 Unauthorized",
            "WWW-Authenticate: Basic realm=\"git\"\r\n",
        ),
        Some("403") => ("403 Forbidden", ""),
        _ => ("404 Not Found", ""),
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn a_smart_http_server_refusing_a_token_fails_the_sync_with_its_kind() {
    let env = TestEnv::new();
    let server = GitHttpServer::mesh(
        env.path(),
        WRITER,
        &["--read-token", READER, "--anonymous-read"],
    );
    let url = server.url("mesh.git");
    let ca = server.ca();
    let ca = ca.to_str().unwrap();
    let a = env.path().join("a");
    let v = init_with_token(&a, &url, WRITER, ca);
    assert_eq!(
        v["ledger"]["pushed"], true,
        "the server takes a good token: {v}"
    );

    publish_batch(&a, 2, "read-only");
    // The token may read but not write: the fetch works, the push gets a 403.
    let got = sync_with(&a, &[("GITMESH_GIT_TOKEN", READER), ("GIT_SSL_CAINFO", ca)]);
    assert_failed(&got, "rejected", "returned error: 403");
    assert!(
        got.1["error"]["message"].as_str().unwrap().contains("push"),
        "{}",
        got.1
    );
    // No token: anonymous reads work, the push asks for credentials.
    let got = sync_with(&a, &[("GIT_SSL_CAINFO", ca)]);
    assert_failed(&got, "auth", "Authentication failed");
    // A revoked token is refused on the first request.
    let got = sync_with(
        &a,
        &[
            ("GITMESH_GIT_TOKEN", "revoked-token"),
            ("GIT_SSL_CAINFO", ca),
        ],
    );
    assert_failed(&got, "auth", "Authentication failed");
    let printed = format!("{} {}", got.1, got.2);
    assert!(
        !printed.contains("revoked-token"),
        "the token was printed: {printed}"
    );

    // With write access again, everything kept locally is delivered.
    let (code, v, _) = sync_with(&a, &[("GITMESH_GIT_TOKEN", WRITER), ("GIT_SSL_CAINFO", ca)]);
    assert_eq!((code, &v["push"]["pushed"]), (0, &Value::Bool(true)), "{v}");
    // A second node, whose token may only read, sees all of it.
    let b = env.path().join("b");
    let v = init_with_token(&b, &url, READER, ca);
    assert_eq!(
        v["error"]["kind"], "rejected",
        "b may not push its manifest: {v}"
    );
    // Its sync imports before it pushes: it fails, and still receives.
    let got = sync_with(&b, &[("GITMESH_GIT_TOKEN", READER), ("GIT_SSL_CAINFO", ca)]);
    assert_failed(&got, "rejected", "returned error: 403");
    assert_eq!(event_ids(&b, &[]).len(), 2, "a's events reached b");
}

/// `mesh-init --json` of the node named after `root`'s last component on the https
/// `url` of a loopback server (named as the token's host), sending `token` and
/// trusting the server's certificate `ca`; returns the report.
fn init_with_token(root: &Path, url: &str, token: &str, ca: &str) -> Value {
    let name = root.file_name().unwrap().to_str().unwrap();
    let mut init = gm(root);
    init.args([
        "--json",
        "mesh-init",
        "--node-id",
        name,
        "--remote",
        url,
        "--trust",
        "open",
    ])
    .args(["--token-host", "127.0.0.1"])
    .env("GITMESH_GIT_TOKEN", token)
    .env("GIT_SSL_CAINFO", ca);
    parse_json(&run(init))
}

/// A token that may read and write through the test server.
const WRITER: &str = "writer-token";
/// A token that may only read through the test server.
const READER: &str = "reader-token";

/// The request head as text, and the body bytes read past it.
fn read_head(conn: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..i]).into_owned();
            return Some((head, data[i + 4..].to_vec()));
        }
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
}

/// A server on 127.0.0.1 that accepts every connection and never says a word: each
/// connection is held open until the server stops.
fn silent_server() -> Server {
    let mut held = Vec::new();
    Server::start(move |conn| {
        if let Ok(c) = conn.try_clone() {
            held.push(c);
        }
    })
}

/// Live processes (zombies excluded) whose command line names `repo`: the git
/// children gitmesh runs as `git -C REPO ...`.
fn processes_in(repo: &Path) -> Vec<u32> {
    let needle = repo.to_str().unwrap().as_bytes();
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                let state = s.rsplit(')').next().unwrap_or("").trim_start();
                state.starts_with('Z') || state.starts_with('X')
            })
            .unwrap_or(true);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if pid != me && !zombie && cmdline.windows(needle.len()).any(|w| w == needle) {
            found.push(pid);
        }
    }
    found
}

/// Asserts that no process names `repo` any more, waiting up to 5 s for the last to be reaped.
fn assert_none_left_in(repo: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_in(repo);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes still running in {}: {left:?}",
            repo.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_remote_that_accepts_and_never_answers_is_killed_at_remote_timeout_and_is_offline() {
    let env = TestEnv::with_remote();
    let a = env.node("a");
    publish_batch(&a, 2, "stalled");
    set_config_key(&a, "remote_timeout", "\"5s\"");
    let server = silent_server();
    let url = format!("git://127.0.0.1:{}/mesh.git", server.port);
    let repo = a.join("state/github_coordination");

    let mut c = gm(&a);
    c.args(["--json", "mesh-sync"])
        .env("GITMESH_REMOTE", &url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = c.spawn().unwrap();
    let mut saw_git = false;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        saw_git |= !processes_in(&repo).is_empty();
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mesh-sync still running after 60 s on a silent remote");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = started.elapsed();
    let out = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(saw_git, "the sync's git child was seen while it waited");
    assert!(took >= Duration::from_secs(5), "{took:?}");
    assert_eq!(status.code(), Some(75), "{v}");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["push"]["offline"], true, "{v}");
    assert_eq!(v["push"]["error_kind"], "timeout", "{v}");
    let error = v["push"]["error"].as_str().unwrap();
    assert!(
        error.contains("gave no answer within 5 s ([sync] remote_timeout); killed"),
        "{error}"
    );
    assert!(error.contains("git fetch"), "{error}");
    assert_eq!(v["export"]["exported_events"], 2, "local work is done: {v}");
    assert_none_left_in(&repo);
    assert!(server.stop() >= 1, "git connected to the silent server");

    // The attempt is recorded with its kind for mesh-status and /healthz.
    let s = json_ok(&a, &["mesh-status"]);
    assert_eq!(s["sync"]["last_attempt"]["outcome"], "offline", "{s}");
    assert_eq!(s["sync"]["last_attempt"]["kind"], "timeout", "{s}");
}

#[test]
fn a_daemon_on_a_silent_remote_keeps_answering_and_shows_the_timeout() {
    let env = TestEnv::with_remote();
    let a = env.node("a");
    let server = silent_server();
    let url = format!("git://127.0.0.1:{}/mesh.git", server.port);
    set_config_key(&a, "remote", &format!("\"{url}\""));
    set_config_key(&a, "remote_timeout", "\"5s\"");
    let repo = a.join("state/github_coordination");
    let d = Daemon::start(&a, &["--interval", "1s"]);

    // Every request is answered at once while syncs hang on the remote, until one
    // sync has been cut by the timeout and recorded.
    let started = Instant::now();
    let mut saw_git = false;
    let last = loop {
        let asked = Instant::now();
        let s = d.get_json("/status");
        assert!(
            asked.elapsed() < Duration::from_secs(3),
            "/status took {:?}",
            asked.elapsed()
        );
        saw_git |= !processes_in(&repo).is_empty();
        if s["sync"]["last_attempt"]["kind"] == "timeout" {
            break s["sync"]["last_attempt"].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no timed-out sync recorded within 60 s: {s}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(saw_git, "the daemon's git child was seen while it waited");
    assert_eq!(last["outcome"], "offline", "{last}");
    let message = last["message"].as_str().unwrap();
    assert!(message.contains("[sync] remote_timeout"), "{message}");
    let (code, _) = http_get(&d.addr, "/healthz").unwrap();
    assert!(code == 200 || code == 503, "/healthz answered {code}");
    let offline: f64 = ["sync", "pull", "push", "poll"]
        .iter()
        .map(|p| d.metric(&format!("gitmesh_{p}_runs_total"), &[("result", "offline")]))
        .sum();
    assert!(offline >= 1.0, "the timed-out pass counts as offline");

    // It stops on request even with a request to the remote in flight.
    d.signal("TERM");
    let (st, _, _) = d.wait_exit(Duration::from_secs(30));
    assert!(st.success(), "{st}");
    assert_none_left_in(&repo);
}
