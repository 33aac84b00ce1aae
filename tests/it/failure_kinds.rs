//! A failed fetch or push says what went wrong: only a remote out of reach is
//! "retry later" (exit 75); a refusing server, a refused credential or a missing
//! repository fails the sync with its kind (exit 1) and git's message.

use crate::common::{TestEnv, gm, parse_json, publish_batch, run};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// `mesh-sync` on `root`, with `GITMESH_REMOTE` when given: (exit code, `--json`
/// report, what the human form printed on stderr).
fn sync_against(root: &Path, remote: Option<&str>) -> (i32, Value, String) {
    let command = |json: bool| {
        let mut c = gm(root);
        if json {
            c.arg("--json");
        }
        c.arg("mesh-sync");
        if let Some(r) = remote {
            c.env("GITMESH_REMOTE", r);
        }
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
    let hook = env.remote().join("hooks").join("pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho 'push refused: this token may not write here' >&2\nexit 1\n",
    )
    .unwrap();
    let mut perms = std::fs::metadata(&hook).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&hook, perms).unwrap();
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
    let server = StatusServer::start();
    let url = |status: u16| {
        format!(
            "http://bot:s3cret@127.0.0.1:{}/{status}/mesh.git",
            server.port
        )
    };
    for (status, kind, says) in [
        (401, "auth", "Authentication failed"),
        (403, "rejected", "returned error: 403"),
        (404, "not_found", "not found"),
    ] {
        let got = sync_against(&a, Some(&url(status)));
        assert_failed(&got, kind, says);
        let printed = format!("{} {}", got.1, got.2);
        assert!(
            !printed.contains("s3cret"),
            "a credential was printed: {printed}"
        );
    }
    assert!(server.stop() >= 6, "every sync reached the server");
}

/// An HTTP server on 127.0.0.1 that answers every request to `/STATUS/...` with
/// that status (a 401 asks for basic auth), as a git host refusing a client does.
struct StatusServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<usize>>,
}

impl StatusServer {
    fn start() -> StatusServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let served = Arc::new(AtomicUsize::new(0));
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !flag.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        conn.set_nonblocking(false).unwrap();
                        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        answer(&mut conn);
                        served.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            served.load(Ordering::SeqCst)
        });
        StatusServer {
            port,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the server and returns how many requests it answered.
    fn stop(mut self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for StatusServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request head and answers with the status its path starts with.
fn answer(conn: &mut std::net::TcpStream) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
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
