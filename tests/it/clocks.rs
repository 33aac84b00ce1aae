//! Clocks that lie: nodes run under libfaketime (only the skewed node's gitmesh child)
//! against normal peers on one real remote. Assertions are on leaders, epochs, outcomes
//! and status, never on elapsed time.

use crate::common::{TestEnv, gm, json_ok, parse_json, publish_args, run};
use crate::dispatch_actuator::{lanes, lines, saturated};
use crate::dispatch_support::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// libfaketime's preload library, from the package's file list or the usual paths.
fn libfaketime() -> Option<PathBuf> {
    let listed = Command::new("dpkg")
        .args(["-L", "libfaketime"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let known = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
        "/usr/local/lib/faketime/libfaketime.so.1",
    ];
    listed
        .lines()
        .filter(|l| l.ends_with("/libfaketime.so.1"))
        .map(PathBuf::from)
        .chain(known.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}

/// The library, or `None` after saying loudly that the test is skipped.
fn faketime_or_skip(test: &str) -> Option<PathBuf> {
    let lib = libfaketime();
    if lib.is_none() {
        eprintln!(
            "SKIPPED {test}: libfaketime is not installed (apt-get install -y faketime); \
             the clock tests need it"
        );
    }
    lib
}

/// A normal clock and a temporary mesh remote, or `None` (test skipped) without libfaketime.
fn setup(test: &str) -> Option<(Clock, TestEnv)> {
    let lib = faketime_or_skip(test)?;
    Some((Clock { lib, offset: None }, TestEnv::with_remote()))
}

/// A node's clock: normal, or shifted by a libfaketime offset such as "+365d" or "-10m".
#[derive(Clone)]
struct Clock {
    lib: PathBuf,
    offset: Option<&'static str>,
}

impl Clock {
    fn at(&self, offset: &'static str) -> Clock {
        Clock {
            lib: self.lib.clone(),
            offset: Some(offset),
        }
    }

    /// `gitmesh --root ROOT --json ARGS` on this clock.
    fn cmd(&self, root: &Path, args: &[&str]) -> Command {
        let mut c = gm(root);
        if let Some(off) = self.offset {
            c.env("LD_PRELOAD", &self.lib)
                .env("FAKETIME", off)
                .env("FAKETIME_DONT_RESET", "1");
        }
        c.arg("--json").args(args);
        c
    }

    /// Runs `args` and returns the JSON answer, which must be ok.
    fn ok(&self, root: &Path, args: &[&str]) -> serde_json::Value {
        let out = run(self.cmd(root, args));
        let v = parse_json(&out);
        assert!(
            out.status.success() && v["ok"] == true,
            "{args:?} on {} ({:?}): {v}\n{}",
            root.display(),
            self.offset,
            String::from_utf8_lossy(&out.stderr)
        );
        v
    }

    /// Publishes one event (so the manifest, with its heartbeat, is rewritten) and syncs.
    fn round(&self, root: &Path) -> serde_json::Value {
        let publish = publish_args("monitoring", "clock.tick", &["--payload-json", "{}"]);
        self.ok(root, &publish);
        self.ok(root, &["mesh-sync"])
    }
}

fn leader(v: &serde_json::Value) -> (String, u64) {
    (
        v["leader"]["leader_id"].as_str().unwrap_or("").to_string(),
        v["leader"]["epoch"].as_u64().unwrap_or(0),
    )
}

fn peer<'a>(status: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    status["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["node_id"] == id)
        .unwrap_or_else(|| panic!("no peer {id} in {status}"))
}

fn alerts(status: &serde_json::Value) -> String {
    status["clock"]["alerts"].to_string()
}

#[test]
fn a_node_a_year_ahead_loses_leadership_is_not_shown_live_and_learns_its_skew() {
    let Some((normal, env)) = setup("a_node_a_year_ahead_loses_leadership") else {
        return;
    };
    let ahead = normal.at("+365d");
    let [a, c, f] = env.nodes(["a", "c", "f"]);
    // The year-ahead node syncs first and takes the empty lease: nothing tells it yet.
    let v = ahead.round(&f);
    assert_eq!(leader(&v), ("f".to_string(), 1), "{v}");
    // Its expiry lies a year ahead of every other clock: invalid. Once a normal node has
    // measured its own offset (a second heartbeat of each peer), it takes the lease over at
    // the next epoch, and the year-ahead node never gets it back.
    let mut taken = false;
    for _ in 0..3 {
        for (clock, root) in [(&normal, &a), (&normal, &c), (&ahead, &f)] {
            let v = clock.round(root);
            let (who, epoch) = leader(&v);
            if taken || who != "f" {
                taken = true;
                assert_eq!((who.as_str(), epoch), ("a", 2), "{v}");
            } else {
                assert_eq!(epoch, 1, "{v}");
            }
        }
    }
    assert!(taken, "the year-ahead lease was never taken over");
    // Normal nodes: the future heartbeat is not live, and the alert names the node.
    let st = json_ok(&a, &["mesh-status"]);
    let fp = peer(&st, "f");
    assert_eq!(fp["future"], true, "{st}");
    assert_eq!(fp["stale"], true, "{st}");
    assert!(alerts(&st).contains("node f"), "{st}");
    assert_eq!(st["clock"]["offset_sec"], 0, "{st}");
    assert_eq!(st["clock"]["skewed"], false, "{st}");
    // Its events, stamped a year ahead, are held at the normal nodes, not applied.
    assert!(st["held_files"].as_u64().unwrap() >= 1, "{st}");
    let events = json_ok(&a, &["events"]);
    let from_f = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node_id"] == "f");
    assert_eq!(from_f.count(), 0, "{events}");
    let c_events = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node_id"] == "c");
    assert!(c_events.count() >= 2, "{events}");
    // The skewed node knows it is a year ahead and says why it does not lead.
    let st = ahead.ok(&f, &["mesh-status"]);
    assert_eq!(st["clock"]["skewed"], true, "{st}");
    assert!(
        st["clock"]["offset_sec"].as_i64().unwrap() > 364 * 86400,
        "{st}"
    );
    assert!(alerts(&st).contains("ahead of the mesh"), "{st}");
    assert!(alerts(&st).contains("does not take or renew"), "{st}");
    let human = String::from_utf8(
        run({
            let mut c = gm(&a);
            c.arg("mesh-status");
            c
        })
        .stdout,
    )
    .unwrap();
    assert!(
        human.contains("FUTURE") && human.contains("ALERT     clock:"),
        "{human}"
    );
    // Each normal node saw one change of leadership (f at epoch 1, then a at epoch 2).
    assert_eq!(
        json_ok(&c, &["mesh-status"])["clock"]["leadership_changes"],
        1
    );
}

#[test]
fn a_node_ten_minutes_fast_does_not_make_a_second_leader() {
    let Some((normal, env)) = setup("a_node_ten_minutes_fast_does_not_make_a_second_leader") else {
        return;
    };
    let fast = normal.at("+10m");
    let [a, c, f] = env.nodes(["a", "c", "f"]);
    let v = normal.round(&a);
    assert_eq!(leader(&v), ("a".to_string(), 1));
    // By the fast clock a's lease (150 s) expired 450 s ago; by a's clock it has not.
    for _ in 0..3 {
        for (clock, root) in [(&fast, &f), (&normal, &c), (&normal, &a)] {
            let v = clock.round(root);
            assert_eq!(leader(&v), ("a".to_string(), 1), "second leader: {v}");
        }
    }
    let st = fast.ok(&f, &["mesh-status"]);
    assert_eq!(st["clock"]["skewed"], true, "{st}");
    assert!(alerts(&st).contains("ahead of the mesh"), "{st}");
    let st = json_ok(&a, &["mesh-status"]);
    let off = peer(&st, "f")["clock_offset_sec"].as_i64().unwrap();
    assert!((540..=600).contains(&off), "{st}");
    assert!(alerts(&st).contains("node f:"), "{st}");
    assert_eq!(peer(&st, "f")["future"], true, "{st}");
}

#[test]
fn a_node_ten_minutes_slow_is_told_why() {
    let Some((normal, env)) = setup("a_node_ten_minutes_slow_is_told_why") else {
        return;
    };
    let slow = normal.at("-10m");
    let [a, c, s] = env.nodes(["a", "c", "s"]);
    for _ in 0..3 {
        for (clock, root) in [(&normal, &a), (&normal, &c), (&slow, &s)] {
            let v = clock.round(root);
            assert_eq!(leader(&v).0, "a", "{v}");
        }
    }
    let st = slow.ok(&s, &["mesh-status"]);
    assert_eq!(st["clock"]["skewed"], true, "{st}");
    let off = st["clock"]["offset_sec"].as_i64().unwrap();
    assert!((-660..=-540).contains(&off), "{st}");
    assert!(alerts(&st).contains("behind the mesh"), "{st}");
    assert!(alerts(&st).contains("clock_tolerance 60 s"), "{st}");
    let st = json_ok(&c, &["mesh-status"]);
    assert!(alerts(&st).contains("node s: clock"), "{st}");
    assert!(alerts(&st).contains("behind"), "{st}");
}

#[test]
fn failover_after_the_leader_dies_takes_the_ttl_and_at_most_the_tolerance_more() {
    let Some((normal, env)) = setup("failover_after_the_leader_dies") else {
        return;
    };
    let [a, c] = env.nodes(["a", "c"]);
    for _ in 0..2 {
        assert_eq!(leader(&normal.round(&a)), ("a".to_string(), 1));
        assert_eq!(leader(&normal.round(&c)), ("a".to_string(), 1));
    }
    // a dies. c's later syncs are run with its clock moved forward instead of waiting.
    // Within the ttl (150 s) the dead leader's lease stands: no second leader.
    for later in ["+60", "+120"] {
        let v = normal.at(later).round(&c);
        assert_eq!(
            leader(&v),
            ("a".to_string(), 1),
            "taken early at {later}: {v}"
        );
    }
    // By ttl + tolerance (210 s) c holds it at the next epoch, and says so in its log.
    let mut sync = normal.at("+210").cmd(&c, &["mesh-sync"]);
    sync.env("RUST_LOG", "gitmesh=info");
    let out = run(sync);
    let v = parse_json(&out);
    assert_eq!(leader(&v), ("c".to_string(), 2), "{v}");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("leadership changed: a (epoch 1) -> c (epoch 2)"),
        "{log}"
    );
    let st = normal.at("+211").ok(&c, &["mesh-status"]);
    assert_eq!(st["clock"]["leadership_changes"], 1, "{st}");
}

#[test]
fn a_command_stamped_a_year_ahead_is_never_applied() {
    let Some(lib) = faketime_or_skip("a_command_stamped_a_year_ahead_is_never_applied") else {
        return;
    };
    let ahead = Clock {
        lib,
        offset: Some("+365d"),
    };
    let env = TestEnv::new();
    let n1 = env.node("n1");
    let n2 = env.node("n2");
    let record = env.path().join("n2-lanes.log");
    write_config(&n2, "n2", &lanes(&record, ""));
    // n1 leads by its own (year-ahead) clock.
    write_lease(&n1, "n1", 3, 365 * 86400 + 120);
    write_lease(&n2, "n1", 3, 120);
    publish(&n2, "scheduling", "lanes.ensure.summary", saturated());
    dispatch(&n2);
    let made = of_type(&n2, "decision.made");
    import_event(&n1, "n1", &made[0]);
    ahead.ok(&n1, &["mesh-dispatch"]);
    ahead.ok(&n1, &["mesh-dispatch"]);
    let cmds = of_type(&n1, "command.requested");
    assert_eq!(cmds.len(), 1);
    import_event(&n2, "n2", &cmds[0]);
    dispatch(&n2);
    dispatch(&n2);
    assert!(
        lines(&record).is_empty(),
        "a lane ran: {:?}",
        lines(&record)
    );
    let rejected = of_type(&n2, "command.rejected");
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["payload"]["outcome"], "rejected_future");
    assert!(of_type(&n2, "command.applied").is_empty());
}
