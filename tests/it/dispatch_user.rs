//! User handlers: follow-ups from stdout, retries, dead letters, circuit breaker, replay.

use crate::common::{TestEnv, gm, json_ok, run};
use crate::dispatch_support::*;
use serde_json::json;
use std::path::Path;

const GOOD: &str = r#"#!/bin/sh
echo "$GITMESH_EVENT_ID" >> "$ATTEMPTS"
read -r line
echo '{"topic":"ops","event_type":"job.noted","payload":{"handled_by":"'"$GITMESH_HANDLER"'"}}'
echo '{"topic":"ops","event_type":"job.audited"}'
"#;

const FLAKY: &str = r#"#!/bin/sh
echo "$GITMESH_EVENT_ID" >> "$ATTEMPTS"
read -r line
case "$line" in *'"fail":true'*) echo "boom: cannot notify" >&2; exit 7;; esac
echo '{"topic":"ops","event_type":"job.noted","payload":{"handled_by":"'"$GITMESH_HANDLER"'"}}'
echo '{"topic":"ops","event_type":"job.audited"}'
"#;

fn setup(
    env: &TestEnv,
    script: &str,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let n1 = env.node("n1");
    let dir = env.path();
    let script_path = dir.join("handler.sh");
    std::fs::write(&script_path, script).unwrap();
    let attempts = dir.join("attempts.log");
    // The script learns where to count attempts from its own argv.
    let wrapper = format!(
        "[[handlers]]\nname = \"notify\"\nmatch = \"ops.job.*\"\nrun = [\"sh\", \"-c\", \"ATTEMPTS=\\\"$0\\\" exec sh \\\"$1\\\"\", \"{}\", \"{}\"]\ntimeout = \"5s\"\nretries = 2\nbackoff = \"10ms\"\nbreaker_threshold = 2\nbreaker_cooldown = \"1h\"\n\n[[handlers]]\nname = \"slowpoke\"\nmatch = \"ops.slow.*\"\nrun = [\"sleep\", \"5\"]\ntimeout = \"200ms\"\nretries = 0\n",
        attempts.display(),
        script_path.display()
    );
    write_config(&n1, "n1", &wrapper);
    (n1, script_path, attempts)
}

fn attempts_for(attempts: &Path, id: &str) -> usize {
    std::fs::read_to_string(attempts)
        .unwrap_or_default()
        .lines()
        .filter(|l| *l == id)
        .count()
}

#[test]
fn a_user_handler_emits_follow_ups_from_its_stdout() {
    let env = TestEnv::new();
    let (n1, _, attempts) = setup(&env, GOOD);
    let ev = publish(&n1, "ops", "job.done", json!({"job": 1}));
    let r = dispatch(&n1);
    assert_eq!(r["followup_events"], 2);
    let id = ev["event_id"].as_str().unwrap();
    let noted = of_type(&n1, "job.noted");
    assert_eq!(noted.len(), 1);
    assert_eq!(noted[0]["causation_id"], id);
    assert_eq!(noted[0]["correlation_id"], id);
    assert_eq!(noted[0]["source"], "mesh-dispatch");
    assert_eq!(noted[0]["handler"], "handler:notify");
    assert_eq!(noted[0]["payload"]["handled_by"], "notify");
    assert_eq!(of_type(&n1, "job.audited").len(), 1);
    // Its own follow-ups match its pattern but are not fed back to it.
    assert_eq!(attempts_for(&attempts, id), 1);
    assert_eq!(
        std::fs::read_to_string(&attempts).unwrap().lines().count(),
        1
    );
    dispatch(&n1);
    assert_eq!(of_type(&n1, "job.noted").len(), 1);
}

#[test]
fn failures_retry_then_dead_letter_open_the_breaker_and_are_replayed() {
    let env = TestEnv::new();
    let (n1, script, attempts) = setup(&env, FLAKY);
    let bad1 = publish(&n1, "ops", "job.done", json!({"fail": true, "n": 1}));
    let r = dispatch(&n1);
    assert_eq!(r["dead_lettered"], 1);
    let bad1_id = bad1["event_id"].as_str().unwrap();
    // One run and two retries.
    assert_eq!(attempts_for(&attempts, bad1_id), 3);
    let dl = json_ok(&n1, &["dead-letter", "list"]);
    let list = dl["dead_letters"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["event_id"], bad1_id);
    assert_eq!(list[0]["handler"], "notify");
    assert_eq!(list[0]["reason"], "failed");
    assert_eq!(list[0]["attempts"], 3);
    let err = list[0]["error"].as_str().unwrap();
    assert!(
        err.contains("exit status 7") && err.contains("boom"),
        "{err}"
    );

    // A second failure in a row opens the breaker; the next event is skipped, not lost.
    let bad2 = publish(&n1, "ops", "job.done", json!({"fail": true, "n": 2}));
    let good = publish(&n1, "ops", "job.done", json!({"n": 3}));
    dispatch(&n1);
    let good_id = good["event_id"].as_str().unwrap();
    assert_eq!(attempts_for(&attempts, good_id), 0);
    let list = json_ok(&n1, &["dead-letter", "list"])["dead_letters"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(list.len(), 3);
    let skipped = list.iter().find(|d| d["event_id"] == good_id).unwrap();
    assert_eq!(skipped["reason"], "circuit_open");
    let breakers: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(n1.join("state/event_mesh/handlers.json")).unwrap(),
    )
    .unwrap();
    assert!(
        breakers["handlers"]["notify"]["open_until"].is_string(),
        "{breakers}"
    );
    assert!(of_type(&n1, "job.noted").is_empty());

    // The operator fixes the handler and replays: every dead letter resolves.
    std::fs::write(&script, GOOD).unwrap();
    let r = json_ok(&n1, &["dead-letter", "retry", "--handler", "notify"]);
    assert_eq!(r["retried"], 3);
    assert_eq!(r["resolved"], 3);
    assert_eq!(r["followup_events"], 6);
    assert!(
        json_ok(&n1, &["dead-letter", "list"])["dead_letters"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let noted = of_type(&n1, "job.noted");
    assert_eq!(noted.len(), 3);
    for id in [bad1_id, bad2["event_id"].as_str().unwrap(), good_id] {
        assert!(
            noted.iter().any(|e| e["causation_id"] == id),
            "no follow-up of {id}"
        );
    }
    // The breaker closed again: new events run normally.
    let next = publish(&n1, "ops", "job.done", json!({"n": 4}));
    dispatch(&n1);
    assert_eq!(
        attempts_for(&attempts, next["event_id"].as_str().unwrap()),
        1
    );
    assert_eq!(of_type(&n1, "job.noted").len(), 4);
    let mut c = gm(&n1);
    c.args(["dead-letter", "list"]);
    let out = run(c);
    assert!(String::from_utf8_lossy(&out.stdout).contains("no dead letters"));
}

#[test]
fn a_handler_past_its_timeout_is_killed_and_dead_lettered() {
    let env = TestEnv::new();
    let (n1, _, _) = setup(&env, GOOD);
    let ev = publish(&n1, "ops", "slow.job", json!({}));
    let t = std::time::Instant::now();
    let r = dispatch(&n1);
    assert!(t.elapsed() < std::time::Duration::from_secs(4));
    assert_eq!(r["dead_lettered"], 1);
    let list = json_ok(&n1, &["dead-letter", "list"])["dead_letters"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(list[0]["event_id"], ev["event_id"]);
    assert!(list[0]["error"].as_str().unwrap().contains("timed out"));
}

#[test]
fn an_open_breaker_lets_one_trial_through_after_its_cooldown() {
    let env = TestEnv::new();
    let n1 = env.node("n1");
    let script = env.path().join("h.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 1\n").unwrap();
    write_config(
        &n1,
        "n1",
        &format!(
            "[[handlers]]\nname = \"h\"\nmatch = \"ops.**\"\nrun = [\"sh\", \"{}\"]\nretries = 0\nbreaker_threshold = 1\nbreaker_cooldown = \"2s\"\n",
            script.display()
        ),
    );
    publish(&n1, "ops", "a", json!({"n": 1}));
    assert_eq!(dispatch(&n1)["dead_lettered"], 1);
    // Open: skipped (dead-lettered as circuit_open) without running.
    let skipped = publish(&n1, "ops", "a", json!({"n": 2}));
    std::fs::write(
        &script,
        "#!/bin/sh\necho '{\"topic\":\"ops\",\"event_type\":\"done\"}'\n",
    )
    .unwrap();
    dispatch(&n1);
    let list = json_ok(&n1, &["dead-letter", "list"])["dead_letters"]
        .as_array()
        .unwrap()
        .clone();
    let s = list
        .iter()
        .find(|d| d["event_id"] == skipped["event_id"])
        .unwrap();
    assert_eq!(s["reason"], "circuit_open");
    assert!(of_type(&n1, "done").is_empty());
    // After the cool-down one trial runs; it succeeds and closes the breaker.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let trial = publish(&n1, "ops", "a", json!({"n": 3}));
    dispatch(&n1);
    let done = of_type(&n1, "done");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["causation_id"], trial["event_id"]);
    publish(&n1, "ops", "a", json!({"n": 4}));
    dispatch(&n1);
    assert_eq!(of_type(&n1, "done").len(), 2);
}

#[test]
fn two_passes_at_once_run_each_handler_once_per_event() {
    let env = TestEnv::new();
    let slow_good = GOOD.replace("read -r line\n", "read -r line\nsleep 0.1\n");
    let (n1, _, attempts) = setup(&env, &slow_good);
    let ids: Vec<String> = (0..5)
        .map(|i| {
            publish(&n1, "ops", "job.done", json!({"i": i}))["event_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let spawn = || {
        let mut c = gm(&n1);
        c.args(["--json", "mesh-dispatch"])
            .stdout(std::process::Stdio::piped());
        c.spawn().unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
    }
    for id in &ids {
        assert_eq!(attempts_for(&attempts, id), 1, "{id}");
    }
    assert_eq!(of_type(&n1, "job.noted").len(), 5);
}

#[test]
fn handlers_never_see_the_remote_token() {
    let env = TestEnv::new();
    let n1 = env.node("n1");
    let seen = env.path().join("handler-env.txt");
    write_config(
        &n1,
        "n1",
        &format!(
            "[[handlers]]\nname = \"peek\"\nmatch = \"ops.job.*\"\nrun = [\"sh\", \"-c\", \"env > \\\"$0\\\"\", \"{}\"]\ntimeout = \"5s\"\n",
            seen.display()
        ),
    );
    publish(&n1, "ops", "job.done", json!({"job": 1}));
    let mut c = gm(&n1);
    c.args(["mesh-dispatch", "--json"])
        .env("GITHUB_TOKEN", "ghs_secret_one")
        .env("GITMESH_GIT_TOKEN", "glpat_secret_two");
    assert!(run(c).status.success());
    let text = std::fs::read_to_string(&seen).expect("the handler ran");
    assert!(text.contains("GITMESH_HANDLER=peek"), "{text}");
    assert!(
        !text.contains("secret"),
        "a token reached the handler: {text}"
    );
}
