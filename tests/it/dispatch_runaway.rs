//! Handlers that cannot hurt the node: detached children, output floods, follow-up
//! caps, causation cycles (CLI and daemon) and the scrubbed environment.

use crate::common::{TestEnv, gm, json_ok, run};
use crate::daemon_support::{Daemon, parse_prometheus, poll_until};
use crate::dispatch_support::*;
use serde_json::json;
use std::path::Path;

/// Writes `script` to `name` in the test directory and returns its path.
fn script(env: &TestEnv, name: &str, body: &str) -> std::path::PathBuf {
    let p = env.path().join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// Whether `pid` is a live process (a zombie waiting for its reaper counts as ended).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

/// Reads a pid a handler wrote, waiting (bounded) for it to appear.
fn pid_in(path: &Path) -> u32 {
    poll_until("the handler wrote its grandchild's pid", || {
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    })
}

/// Pending dead letters of a node.
fn dead_letters(root: &Path) -> Vec<serde_json::Value> {
    json_ok(root, &["dead-letter", "list"])["dead_letters"]
        .as_array()
        .unwrap()
        .clone()
}

const DETACH: &str = r#"#!/bin/sh
# A grandchild that leaves the process group and holds stdout and stderr open.
setsid sh -c 'echo $$ > "$0"; exec sleep 100000' "$1" &
while [ ! -s "$1" ]; do sleep 0.01; done
case "$2" in
  hang) exec sleep 100000 ;;
  *) echo '{"topic":"ops","event_type":"job.noted"}' ;;
esac
"#;

#[test]
fn a_detached_grandchild_cannot_hold_dispatch_and_is_ended() {
    let env = TestEnv::new();
    let n1 = env.node("n1");
    let s = script(&env, "detach.sh", DETACH);
    let quick = env.path().join("quick.pid");
    let hung = env.path().join("hung.pid");
    write_config(
        &n1,
        "n1",
        &format!(
            "[[handlers]]\nname = \"quick\"\nmatch = \"ops.quick.*\"\nrun = [\"sh\", \"{s}\", \"{q}\", \"exit\"]\ntimeout = \"20s\"\nretries = 0\n\n\
             [[handlers]]\nname = \"hang\"\nmatch = \"ops.hang.*\"\nrun = [\"sh\", \"{s}\", \"{h}\", \"hang\"]\ntimeout = \"1s\"\nretries = 0\n",
            s = s.display(),
            q = quick.display(),
            h = hung.display()
        ),
    );
    // The handler exits at once but leaves a detached process holding its pipes.
    publish(&n1, "ops", "quick.go", json!({}));
    let r = dispatch(&n1);
    assert_eq!(r["followup_events"], 1, "{r}");
    let pid = pid_in(&quick);
    assert!(!alive(pid), "the detached grandchild {pid} was ended");

    // The handler runs past its timeout with the same grandchild.
    publish(&n1, "ops", "hang.go", json!({}));
    let r = dispatch(&n1);
    assert_eq!(r["dead_lettered"], 1, "{r}");
    let pid = pid_in(&hung);
    assert!(!alive(pid), "the detached grandchild {pid} was ended");
    let dl = dead_letters(&n1);
    assert_eq!(dl.len(), 1);
    assert_eq!(dl[0]["reason"], "failed");
    assert!(
        dl[0]["error"].as_str().unwrap().contains("timed out"),
        "{dl:?}"
    );
}

#[test]
fn an_output_flood_is_cut_at_the_cap_and_dead_lettered() {
    let env = TestEnv::new();
    let n1 = env.node("n1");
    write_config(
        &n1,
        "n1",
        "[[handlers]]\nname = \"flood\"\nmatch = \"ops.flood.*\"\nrun = [\"yes\", \"{}\"]\ntimeout = \"60s\"\nretries = 3\nmax_output_bytes = 65536\n\n\
         [[handlers]]\nname = \"errflood\"\nmatch = \"ops.errflood.*\"\nrun = [\"sh\", \"-c\", \"yes >&2\"]\ntimeout = \"60s\"\nretries = 0\nmax_output_bytes = 4096\n",
    );
    publish(&n1, "ops", "flood.go", json!({}));
    publish(&n1, "ops", "errflood.go", json!({}));
    let r = dispatch(&n1);
    assert_eq!(r["dead_lettered"], 2, "{r}");
    assert_eq!(r["followup_events"], 0, "{r}");
    let dl = dead_letters(&n1);
    let by = |h: &str| dl.iter().find(|d| d["handler"] == h).unwrap().clone();
    let flood = by("flood");
    assert_eq!(flood["reason"], "output_too_large");
    // A flood is not retried: one attempt, not four.
    assert_eq!(flood["attempts"], 1);
    assert!(
        flood["error"]
            .as_str()
            .unwrap()
            .contains("stdout went past 65536 bytes"),
        "{flood}"
    );
    let err = by("errflood");
    assert_eq!(err["reason"], "output_too_large");
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("stderr went past 4096 bytes"),
        "{err}"
    );
}

/// A shell script printing `line` `n` times; returns its path.
fn printer(env: &TestEnv, name: &str, line: &str, n: usize) -> std::path::PathBuf {
    script(
        env,
        name,
        &format!(
            "#!/bin/sh\ncat > /dev/null\n{}",
            format!("echo '{line}'\n").repeat(n)
        ),
    )
}

#[test]
fn follow_ups_past_the_cap_append_nothing() {
    let env = TestEnv::new();
    let n1 = env.node("n1");
    let line = r#"{"topic":"ops","event_type":"job.noted"}"#;
    let many = printer(&env, "many.sh", line, 4);
    let few = printer(&env, "few.sh", line, 3);
    write_config(
        &n1,
        "n1",
        &format!(
            "[[handlers]]\nname = \"many\"\nmatch = \"ops.many.*\"\nrun = [\"sh\", \"{}\"]\nretries = 0\nmax_followups = 3\n\n\
             [[handlers]]\nname = \"few\"\nmatch = \"ops.few.*\"\nrun = [\"sh\", \"{}\"]\nretries = 0\nmax_followups = 3\n",
            many.display(),
            few.display()
        ),
    );
    publish(&n1, "ops", "many.go", json!({}));
    publish(&n1, "ops", "few.go", json!({}));
    let r = dispatch(&n1);
    assert_eq!(r["dead_lettered"], 1, "{r}");
    // Three identical lines derive one id: the control handler's follow-up is appended once.
    assert_eq!(of_type(&n1, "job.noted").len(), 1);
    let dl = dead_letters(&n1);
    assert_eq!(dl.len(), 1);
    assert_eq!(dl[0]["handler"], "many");
    assert_eq!(dl[0]["reason"], "too_many_followups");
}

/// Two handlers that answer each other: `ops.ping` -> `ops.pong` -> `ops.ping` ...
fn ping_pong(env: &TestEnv, root: &Path, node: &str, dispatch_section: &str) {
    let ping = printer(env, "ping.sh", r#"{"topic":"ops","event_type":"pong"}"#, 1);
    let pong = printer(env, "pong.sh", r#"{"topic":"ops","event_type":"ping"}"#, 1);
    write_config(
        root,
        node,
        &format!(
            "{dispatch_section}\n\n[[handlers]]\nname = \"ping\"\nmatch = \"ops.ping\"\nrun = [\"sh\", \"{}\"]\nretries = 0\n\n\
             [[handlers]]\nname = \"pong\"\nmatch = \"ops.pong\"\nrun = [\"sh\", \"{}\"]\nretries = 0\n",
            ping.display(),
            pong.display()
        ),
    );
}

#[test]
fn a_handler_cycle_stops_at_the_hop_limit_and_is_reported() {
    let env = TestEnv::new();
    let n1 = env.node("n1");
    ping_pong(&env, &n1, "n1", "[dispatch]\nmax_hops = 6");
    let root = publish(&n1, "ops", "ping", json!({}));
    let r = dispatch(&n1);
    assert_eq!(r["hop_limited"], 1, "{r}");
    // The root and six hops below it; the sixth goes to no handler.
    let chain = of_type(&n1, "ping").len() + of_type(&n1, "pong").len();
    assert_eq!(chain, 7);
    let stops = of_type(&n1, "dispatch.hop_limit_reached");
    assert_eq!(stops.len(), 1);
    let p = &stops[0]["payload"];
    assert_eq!(p["hops"], 6);
    assert_eq!(p["max_hops"], 6);
    assert_eq!(p["correlation_id"], root["event_id"]);
    assert_eq!(p["chain"].as_array().unwrap().len(), 6);
    assert_eq!(p["chain"][5], root["event_id"]);
    assert_eq!(p["handlers"], json!(["ping"]));
    assert_eq!(stops[0]["causation_id"], p["stopped_event_id"]);
    // Nothing more to do: the cycle stays stopped.
    let again = dispatch(&n1);
    assert_eq!(again["followup_events"], 0, "{again}");
}

#[test]
fn a_handler_cycle_in_the_daemon_stops_and_syncs_go_on() {
    let env = TestEnv::new();
    let n1 = env.node("n1");
    ping_pong(
        &env,
        &n1,
        "n1",
        "[dispatch]\nmax_hops = 40\ndaemon_pass_events = 5",
    );
    let d = Daemon::start(&n1, &["--interval", "1s"]);
    publish(&n1, "ops", "ping", json!({}));
    poll_until("the cycle is stopped at the hop limit", || {
        (!of_type(&n1, "dispatch.hop_limit_reached").is_empty()).then_some(())
    });
    let syncs = |d: &Daemon| {
        parse_prometheus(&d.get("/metrics"))
            .unwrap()
            .sum("gitmesh_sync_runs_total")
    };
    let before = syncs(&d);
    poll_until("a sync after the cycle", || {
        (syncs(&d) > before).then_some(())
    });
    assert_eq!(of_type(&n1, "ping").len() + of_type(&n1, "pong").len(), 41);
    drop(d);
}

#[test]
fn handlers_get_a_scrubbed_environment() {
    let env = TestEnv::new();
    let n1 = env.node("n1");
    let out = env.path().join("env.txt");
    write_config(
        &n1,
        "n1",
        &format!(
            "[[handlers]]\nname = \"envdump\"\nmatch = \"ops.env.*\"\nrun = [\"sh\", \"-c\", \"env > \\\"$0\\\"\", \"{}\"]\nretries = 0\nenv = [\"ALLOWED_ONE\"]\n",
            out.display()
        ),
    );
    publish(&n1, "ops", "env.dump", json!({}));
    let mut c = gm(&n1);
    c.args(["--json", "mesh-dispatch"])
        .env("GITMESH_GIT_TOKEN", "tok-secret-1")
        .env("GITHUB_TOKEN", "tok-secret-2")
        .env("UNLISTED_VAR", "nope")
        .env("ALLOWED_ONE", "yes-please");
    assert!(run(c).status.success());
    let seen = std::fs::read_to_string(&out).unwrap();
    let vars: Vec<&str> = seen.lines().collect();
    assert!(vars.contains(&"ALLOWED_ONE=yes-please"), "{seen}");
    assert!(
        vars.iter().any(|v| v.starts_with("GITMESH_EVENT_ID=evt_")),
        "{seen}"
    );
    assert!(vars.iter().any(|v| v.starts_with("PATH=")), "{seen}");
    for hidden in [
        "GITMESH_GIT_TOKEN",
        "GITHUB_TOKEN",
        "UNLISTED_VAR",
        "GIT_AUTHOR_NAME",
    ] {
        assert!(
            !vars.iter().any(|v| v.starts_with(&format!("{hidden}="))),
            "{hidden} leaked: {seen}"
        );
    }
    assert!(!seen.contains("tok-secret"), "{seen}");
}
