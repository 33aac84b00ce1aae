//! The dashboard opened in headless Chromium shows the node and its events.
//!
//! Skipped (with a message) when /usr/bin/chromium is missing; `scripts/install-chromium`
//! installs it.

mod common;
mod daemon_support;

use daemon_support::{Daemon, publish};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Loads `url` in headless Chromium and returns the DOM after the page's scripts ran.
fn dump_dom(url: &str, profile: &Path) -> String {
    let mut child = Command::new(CHROMIUM)
        .args([
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
        ])
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
    let dir = tempfile::tempdir().unwrap();
    let root = common::init_node(dir.path(), "dash1", None);
    let first = publish(&root, "monitoring", "heartbeat.changed", &[]);
    // A payload that would end the page's script element if it were embedded unescaped.
    let tricky = publish(
        &root,
        "routing",
        "route.requested",
        &["--payload-json", r#"{"note":"</script><b>not markup</b>"}"#],
    );
    let d = Daemon::start(&root, &[]);
    let dom = dump_dom(&format!("http://{}/", d.addr), &dir.path().join("profile"));
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
