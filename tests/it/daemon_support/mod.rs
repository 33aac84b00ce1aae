//! Helpers for the daemon tests: a `gitmesh daemon` child process and a tiny HTTP client.

use crate::common;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Generous bound for anything the tests wait for (a loaded 2-core machine).
pub const WAIT: Duration = Duration::from_secs(15);

/// A running `gitmesh daemon`, killed by its pid when dropped.
pub struct Daemon {
    pub child: Child,
    pub addr: String,
}

impl Daemon {
    /// Starts `gitmesh --root ROOT daemon --listen 127.0.0.1:0 EXTRA...` and waits for its address.
    pub fn start(root: &Path, extra: &[&str]) -> Daemon {
        let mut c = common::gm(root);
        c.args(["daemon", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "gitmesh=debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = c.spawn().expect("spawn gitmesh daemon");
        let mut d = Daemon {
            child,
            addr: String::new(),
        };
        let lock = root.join("state/event_mesh/daemon.lock");
        let start = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&lock)
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
                && v["pid"] == d.child.id()
                && let Some(a) = v["listen"].as_str()
            {
                d.addr = a.to_string();
                break;
            }
            if let Ok(Some(st)) = d.child.try_wait() {
                panic!("daemon exited early with {st}: {}", d.stderr_now());
            }
            assert!(start.elapsed() < WAIT, "daemon did not publish its address");
            std::thread::sleep(Duration::from_millis(20));
        }
        // The HTTP server answers once the log was counted.
        poll_until("daemon answers /status", || {
            http_get(&d.addr, "/status").ok().filter(|(c, _)| *c == 200)
        });
        d
    }

    /// Sends a signal by name (`TERM`, `INT`, `HUP`) to the daemon's pid.
    pub fn signal(&self, name: &str) {
        let st = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -{name} failed");
    }

    /// Waits (bounded) for the daemon to exit; returns its status, stdout and stderr.
    pub fn wait_exit(mut self, bound: Duration) -> (ExitStatus, String, String) {
        let start = Instant::now();
        let st = loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                break st;
            }
            assert!(
                start.elapsed() < bound,
                "daemon did not exit within {bound:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut out = String::new();
        let mut err = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (st, out, err)
    }

    fn stderr_now(&mut self) -> String {
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        err
    }

    /// GET `path`, asserting 200; returns the body.
    pub fn get(&self, path: &str) -> String {
        let (code, body) = http_get(&self.addr, path).expect("HTTP GET");
        assert_eq!(code, 200, "GET {path}: {body}");
        body
    }

    /// A sample of `/metrics` (0 when absent).
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let text = self.get("/metrics");
        parse_prometheus(&text)
            .expect("valid exposition")
            .value(name, labels)
            .unwrap_or(0.0)
    }

    /// GET `path` as JSON.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        serde_json::from_str(&self.get(path)).expect("JSON body")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `f` every 20 ms until it returns `Some`, for at most [`WAIT`].
pub fn poll_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < WAIT, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A one-shot HTTP/1.1 GET with `Connection: close`; returns status code and body.
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    http_request(addr, "GET", path, &[])
}

/// A one-shot HTTP/1.1 request without a body and with `extra` header lines;
/// returns status code and body.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    extra: &[&str],
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(WAIT))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if method != "GET" {
        head.push_str("Content-Length: 0\r\n");
    }
    for h in extra {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    let mut reader = BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let lower = head.to_ascii_lowercase();
    // Some servers keep the connection open: read exactly Content-Length when given.
    let length = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let mut raw = Vec::new();
    match length {
        Some(n) => {
            raw.resize(n, 0);
            reader.read_exact(&mut raw)?;
        }
        None => {
            reader.read_to_end(&mut raw)?;
        }
    }
    let body = String::from_utf8_lossy(&raw).into_owned();
    let body = if lower.contains("transfer-encoding: chunked") {
        dechunk(&body)
    } else {
        body
    };
    Ok((code, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// An open `/events/stream` connection.
pub struct Sse {
    reader: BufReader<TcpStream>,
}

impl Sse {
    /// Connects and reads the response head.
    pub fn open(addr: &str) -> Sse {
        Sse::open_at(addr, "/events/stream", &[])
    }

    /// Connects to `path` (a query string included) with extra request headers.
    pub fn open_at(addr: &str, path: &str, headers: &[(&str, &str)]) -> Sse {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let extra: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{extra}\r\n"
        )
        .expect("write");
        let mut reader = BufReader::new(s);
        let mut line = String::new();
        let start = Instant::now();
        let mut head = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) => panic!("stream closed before headers"),
                Ok(_) => {
                    head.push_str(&line);
                    if line == "\r\n" {
                        break;
                    }
                }
                Err(_) => assert!(start.elapsed() < WAIT, "no stream headers"),
            }
        }
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            head.to_ascii_lowercase().contains("text/event-stream"),
            "{head}"
        );
        Sse { reader }
    }

    /// Reads `data:` payloads until `pred` accepts one (bounded by [`WAIT`]).
    pub fn wait_for(&mut self, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let start = Instant::now();
        let mut line = String::new();
        loop {
            assert!(
                start.elapsed() < WAIT,
                "event did not arrive on /events/stream"
            );
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) => panic!("stream closed"),
                Ok(_) => {
                    // Chunked framing lines (sizes, blanks) are not `data:` lines.
                    if let Some(json) = line.trim_end().strip_prefix("data: ")
                        && let Ok(v) = serde_json::from_str::<serde_json::Value>(json)
                        && pred(&v)
                    {
                        return v;
                    }
                }
                Err(_) => continue,
            }
        }
    }
}

impl Sse {
    /// The next message with data (bounded by [`WAIT`]): its `event:` name, `id:` and `data:`.
    pub fn next_message(&mut self) -> SseMessage {
        let start = Instant::now();
        let mut msg = SseMessage::default();
        let mut line = String::new();
        loop {
            assert!(start.elapsed() < WAIT, "no message on the stream");
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) => panic!("stream closed"),
                Ok(_) => {
                    let l = line.trim_end();
                    if let Some(v) = l.strip_prefix("id: ") {
                        msg.id = Some(v.to_string());
                    } else if let Some(v) = l.strip_prefix("event: ") {
                        msg.event = Some(v.to_string());
                    } else if let Some(v) = l.strip_prefix("data: ") {
                        msg.data = v.to_string();
                    } else if l.is_empty() && !msg.data.is_empty() {
                        return msg;
                    }
                }
                Err(_) => continue,
            }
        }
    }

    /// Whether no message with data arrives within `d`.
    pub fn quiet_for(&mut self, d: Duration) -> bool {
        let start = Instant::now();
        let mut line = String::new();
        while start.elapsed() < d {
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) => return true,
                Ok(_) if line.starts_with("data: ") => return false,
                _ => continue,
            }
        }
        true
    }
}

/// One server-sent event.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SseMessage {
    /// Its `event:` name (`None` for a plain message).
    pub event: Option<String>,
    /// Its `id:`.
    pub id: Option<String>,
    /// Its `data:`.
    pub data: String,
}

/// Publishes a `task.enqueued` event for `task_id`; returns its envelope.
pub fn enqueue(root: &Path, task_id: &str) -> serde_json::Value {
    let payload = format!(r#"{{"task_id":"{task_id}"}}"#);
    common::publish_event(
        root,
        "scheduling",
        "task.enqueued",
        &["--payload-json", &payload],
    )
}

/// One sample: metric name, labels, value.
pub type Sample = (String, Vec<(String, String)>, f64);

/// A parsed Prometheus text exposition: family types and samples.
#[derive(Debug, Default)]
pub struct Exposition {
    pub types: std::collections::HashMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// The value of the sample `name` whose labels include all of `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|s| s.2)
    }

    /// Sum of all samples of `name`.
    pub fn sum(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.0 == name)
            .map(|s| s.2)
            .sum()
    }
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses Prometheus text format 0.0.4 strictly enough to catch malformed output.
pub fn parse_prometheus(text: &str) -> Result<Exposition, String> {
    let mut e = Exposition::default();
    let mut helped = std::collections::HashSet::new();
    if !text.ends_with('\n') {
        return Err("exposition must end with a newline".into());
    }
    for (i, line) in text.lines().enumerate() {
        let at = |m: &str| format!("line {}: {m}: {line:?}", i + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kw = parts.next().unwrap_or("");
            let name = parts.next().ok_or_else(|| at("comment without a name"))?;
            if !valid_name(name) {
                return Err(at("bad metric name"));
            }
            match kw {
                "HELP" if !helped.insert(name.to_string()) => {
                    return Err(at("second HELP for a family"));
                }
                "TYPE" => {
                    let t = parts.next().ok_or_else(|| at("TYPE without a type"))?;
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&t) {
                        return Err(at("unknown type"));
                    }
                    if e.types.insert(name.to_string(), t.to_string()).is_some() {
                        return Err(at("second TYPE for a family"));
                    }
                }
                _ => {}
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').ok_or_else(|| at("no value"))?;
        let value: f64 = match value {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| at("value is not a number"))?,
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), Vec::new()),
            Some((n, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .ok_or_else(|| at("unclosed labels"))?;
                (n.to_string(), parse_labels(body).map_err(|m| at(&m))?)
            }
        };
        if !valid_name(&name) {
            return Err(at("bad metric name"));
        }
        // A histogram's or summary's samples carry a suffix to the family's name.
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| name.strip_suffix(suffix))
            .find(|f| {
                matches!(
                    e.types.get(*f).map(String::as_str),
                    Some("histogram" | "summary")
                )
            })
            .unwrap_or(&name);
        if !e.types.contains_key(family) {
            return Err(at("sample before its TYPE line"));
        }
        e.samples.push((name, labels, value));
    }
    Ok(e)
}

fn parse_labels(body: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = body.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if !valid_name(&key) {
            return Err(format!("bad label name {key:?}"));
        }
        if chars.next() != Some('"') {
            return Err("label value must be quoted".into());
        }
        let mut val = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('n') => val.push('\n'),
                    Some(c @ ('\\' | '"')) => val.push(c),
                    _ => return Err("bad escape in label value".into()),
                },
                Some('"') => break,
                Some(c) => val.push(c),
                None => return Err("unterminated label value".into()),
            }
        }
        out.push((key, val));
        match chars.next() {
            None => break,
            Some(',') => continue,
            Some(c) => return Err(format!("unexpected {c:?} after a label")),
        }
    }
    Ok(out)
}
