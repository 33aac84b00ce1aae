//! The dashboard opened in headless Chromium shows the node and its events.
//!
//! Skipped (with a message) when /usr/bin/chromium is missing; `scripts/install-chromium`
//! installs it.

use crate::common::{TestEnv, publish_event};
use crate::daemon_support;
use crate::daemon_support::{Daemon, http_get, poll_until};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";

const FLAGS: [&str; 10] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-extensions",
    "--disable-dev-shm-usage",
];

/// Loads `url` in headless Chromium and returns the DOM after the page's scripts ran.
fn dump_dom(url: &str, profile: &Path) -> String {
    let mut child = Command::new(CHROMIUM)
        .args(FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait chromium").is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("chromium output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn dashboard_in_headless_chromium_shows_the_node_and_its_events() {
    if !Path::new(CHROMIUM).exists() {
        eprintln!(
            "SKIPPED dashboard_in_headless_chromium: {CHROMIUM} is missing (run scripts/install-chromium)"
        );
        return;
    }
    let env = TestEnv::new();
    let root = env.node("dash1");
    let first = publish_event(&root, "monitoring", "heartbeat.changed", &[]);
    // A payload that would end the page's script element if it were embedded unescaped.
    let tricky = publish_event(
        &root,
        "routing",
        "route.requested",
        &["--payload-json", r#"{"note":"</script><b>not markup</b>"}"#],
    );
    let d = Daemon::start(&root, &[]);
    let dom = dump_dom(&format!("http://{}/", d.addr), &env.path().join("profile"));
    assert!(
        dom.contains(r#"id="node-id">dash1<"#),
        "node id not shown:\n{dom}"
    );
    for e in [&first, &tricky] {
        let id = e["event_id"].as_str().unwrap();
        assert!(
            dom.contains(&format!(r#"data-id="{id}""#)),
            "event {id} not in the list:\n{dom}"
        );
    }
    assert!(
        !dom.contains("<b>not markup</b>"),
        "payload text became markup"
    );
}

/// A headless Chromium showing one page, driven over the DevTools protocol.
struct Browser {
    child: std::process::Child,
    ws: Option<TcpStream>,
    next_id: u64,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    fn open(url: &str, profile: &Path) -> Browser {
        let child = Command::new(CHROMIUM)
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("--remote-debugging-address=127.0.0.1")
            .arg("--remote-debugging-port=0")
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        // Owned at once, so the browser is killed even if a wait below fails.
        let mut b = Browser {
            child,
            ws: None,
            next_id: 0,
        };
        let port_file = profile.join("DevToolsActivePort");
        let port: u16 = poll_until("chromium's DevTools port", || {
            std::fs::read_to_string(&port_file)
                .ok()?
                .lines()
                .next()?
                .trim()
                .parse()
                .ok()
        });
        let addr = format!("127.0.0.1:{port}");
        let ws_url = poll_until("the page target", || {
            let (_, body) = http_get(&addr, "/json/list").ok()?;
            let list: serde_json::Value = serde_json::from_str(&body).ok()?;
            list.as_array()?
                .iter()
                .find(|t| {
                    t["type"] == "page" && t["url"].as_str().is_some_and(|u| u.starts_with(url))
                })
                .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(String::from))
        });
        b.ws = Some(ws_connect(
            &addr,
            ws_url.split_once(&addr).map(|x| x.1).unwrap_or("/"),
        ));
        b
    }

    /// Evaluates a JavaScript expression in the page and returns its value.
    fn eval(&mut self, expr: &str) -> serde_json::Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = serde_json::json!({
            "id": id,
            "method": "Runtime.evaluate",
            "params": {"expression": expr, "returnByValue": true}
        });
        let ws = self.ws.as_mut().expect("connected");
        ws_send(ws, msg.to_string().as_bytes());
        loop {
            let text = ws_recv(ws);
            let v: serde_json::Value = serde_json::from_str(&text).expect("CDP JSON");
            if v["id"] == id {
                return v["result"]["result"]["value"].clone();
            }
        }
    }
}

/// Opens a WebSocket (RFC 6455) to `path` on `addr` and reads the 101 answer.
fn ws_connect(addr: &str, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect DevTools");
    s.set_read_timeout(Some(daemon_support::WAIT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("handshake");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

/// Sends one masked text frame.
fn ws_send(s: &mut TcpStream, payload: &[u8]) {
    let mut frame = vec![0x81u8];
    let n = payload.len();
    if n < 126 {
        frame.push(0x80 | n as u8);
    } else if n < 65536 {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        frame.push(0x80 | 127);
        frame.extend_from_slice(&(n as u64).to_be_bytes());
    }
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    s.write_all(&frame).expect("send frame");
}

/// Receives one text message (joining continuation frames, skipping control frames).
fn ws_recv(s: &mut TcpStream) -> String {
    let mut message = Vec::new();
    loop {
        let mut h = [0u8; 2];
        s.read_exact(&mut h).expect("frame header");
        let fin = h[0] & 0x80 != 0;
        let opcode = h[0] & 0x0f;
        let mut len = (h[1] & 0x7f) as u64;
        if len == 126 {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            len = u16::from_be_bytes(b) as u64;
        } else if len == 127 {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).unwrap();
            len = u64::from_be_bytes(b);
        }
        let mut data = vec![0u8; len as usize];
        s.read_exact(&mut data).expect("frame payload");
        match opcode {
            0x0 | 0x1 => {
                message.extend_from_slice(&data);
                if fin {
                    return String::from_utf8(message).expect("text frame");
                }
            }
            0x8 => panic!("DevTools closed the connection"),
            _ => {} // ping/pong/binary: not used by DevTools here
        }
    }
}

#[test]
fn dashboard_in_headless_chromium_updates_live() {
    if !Path::new(CHROMIUM).exists() {
        eprintln!(
            "SKIPPED dashboard_in_headless_chromium_updates_live: {CHROMIUM} is missing (run scripts/install-chromium)"
        );
        return;
    }
    let env = TestEnv::new();
    let root = env.node("live1");
    let d = Daemon::start(&root, &[]);
    let url = format!("http://{}/", d.addr);
    let mut b = Browser::open(&url, &env.path().join("profile"));
    poll_until("the page's live stream is connected", || {
        (b.eval("document.getElementById('conn').textContent") == "connected").then_some(())
    });
    assert_eq!(
        b.eval("document.getElementById('node-id').textContent"),
        "live1"
    );
    assert_eq!(
        b.eval("document.getElementById('health').textContent"),
        "ok"
    );

    // No built-in handler reacts to this type, so exactly one event arrives live.
    let ev = publish_event(&root, "coordination", "note.added", &[]);
    let id = ev["event_id"].as_str().unwrap().to_string();
    poll_until("the new event appears on the page", || {
        let ids = b.eval(
            "[...document.querySelectorAll('#events li')].map(li => li.dataset.id).join(',')",
        );
        ids.as_str()?.contains(&id).then_some(())
    });
    assert_eq!(
        b.eval("document.getElementById('live-count').textContent"),
        "1 live"
    );

    // Clicking it shows its causal trace.
    b.eval(&format!(
        "document.querySelector('#events li[data-id=\"{id}\"]').click()"
    ));
    poll_until("the trace view shows the event", || {
        let t = b.eval("document.getElementById('trace').textContent");
        t.as_str()?.contains(&format!("root {id}")).then_some(())
    });
}
