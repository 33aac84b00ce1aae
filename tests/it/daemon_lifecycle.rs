//! Daemon lifecycle against the real binary: one per root, clean stops, reloads.

use crate::common;
use crate::common::{TestEnv, field, publish_event};
use crate::daemon_support::{Daemon, Sse, parse_prometheus, poll_until};
use std::collections::HashSet;
use std::time::Duration;

#[test]
fn a_daemon_with_an_invalid_mesh_toml_exits_2_so_systemd_stops_restarting_it() {
    let env = TestEnv::new();
    let root = env.node("cfg1");
    common::set_config_key(&root, "interval", "\"500000000000y\"");
    let mut c = common::gm(&root);
    c.args(["--json", "daemon"]);
    let out = common::run(c);
    assert_eq!(out.status.code(), Some(2));
    let v = common::parse_json(&out);
    assert_eq!(v["error"]["kind"], "config");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("mesh.toml") && msg.contains("10 years"),
        "{msg}"
    );
}

#[test]
fn a_second_daemon_on_the_same_root_is_refused() {
    let env = TestEnv::new();
    let root = env.node("lk1");
    let first = Daemon::start(&root, &[]);
    let mut c = common::gm(&root);
    c.args(["--json", "daemon"]);
    let out = common::run(c);
    assert_eq!(out.status.code(), Some(1));
    let v = common::parse_json(&out);
    assert_eq!(v["error"]["kind"], "busy");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("already running"), "{msg}");
    assert!(
        msg.contains(&first.child.id().to_string()),
        "names the holder's pid: {msg}"
    );
    // The first one is unaffected.
    assert_eq!(first.get_json("/status")["ok"], true);
}

#[test]
fn sigterm_exits_zero_promptly_and_loses_nothing() {
    let env = TestEnv::new();
    let root = env.node("tm1");
    let d = Daemon::start(&root, &["--interval", "1s"]);
    // An open event stream must not hold the stop up.
    let _stream = Sse::open(&d.addr);
    // Publishes by hand while the daemon runs: they take their own locks.
    let writer_root = root.clone();
    let writer = std::thread::spawn(move || {
        (0..30)
            .map(|i| {
                publish_event(
                    &writer_root,
                    "monitoring",
                    "lane.start_failed",
                    &["--payload-json", &format!(r#"{{"i":{i}}}"#)],
                )["event_id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect::<Vec<_>>()
    });
    poll_until("some events appended", || {
        let m = parse_prometheus(&d.get("/metrics")).ok()?;
        (m.value("gitmesh_log_events", &[("topic", "monitoring")])? >= 5.0).then_some(())
    });
    d.signal("TERM");
    let t = std::time::Instant::now();
    let (st, out, err) = d.wait_exit(Duration::from_secs(35));
    eprintln!("exited {:?} after SIGTERM", t.elapsed());
    assert_eq!(st.code(), Some(0), "stderr:\n{err}");
    assert!(out.contains("stopped (SIGTERM)"), "{out}");
    let published = writer.join().unwrap();

    let events = common::json_ok(&root, &["events"]);
    let ids = field(events["events"].as_array().unwrap(), "event_id");
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no duplicates in the log");
    for id in &published {
        assert!(
            unique.contains(id.as_str()),
            "{id} was acknowledged but is missing"
        );
    }
    // The lock was released: a new daemon starts on the same root.
    let again = Daemon::start(&root, &[]);
    again.signal("INT");
    let (st, out, _) = again.wait_exit(Duration::from_secs(35));
    assert_eq!(st.code(), Some(0));
    assert!(out.contains("stopped (SIGINT)"), "{out}");
}

#[test]
fn sighup_reloads_mesh_toml_and_keeps_the_old_one_when_invalid() {
    let env = TestEnv::new();
    let root = env.node("hp1");
    let d = Daemon::start(&root, &[]);
    let config = root.join("mesh.toml");
    let good = std::fs::read_to_string(&config).unwrap();
    let metric = |name: &str| {
        parse_prometheus(&d.get("/metrics"))
            .unwrap()
            .value(name, &[])
            .unwrap()
    };

    std::fs::write(&config, format!("{good}\nbogus_key = 1\n")).unwrap();
    d.signal("HUP");
    poll_until("the invalid file is rejected", || {
        (metric("gitmesh_config_reload_failures_total") == 1.0).then_some(())
    });
    assert_eq!(
        d.get_json("/status")["node_id"],
        "hp1",
        "still serving with the old config"
    );

    std::fs::write(&config, good.replace("[sync]", "[sync]\n# tuned\n")).unwrap();
    d.signal("HUP");
    poll_until("the valid file is loaded", || {
        (metric("gitmesh_config_reloads_total") == 1.0).then_some(())
    });
    d.signal("TERM");
    let (st, _, err) = d.wait_exit(Duration::from_secs(35));
    assert_eq!(st.code(), Some(0), "{err}");
    assert!(
        err.contains("mesh.toml rejected"),
        "the rejection is logged:\n{err}"
    );
}
