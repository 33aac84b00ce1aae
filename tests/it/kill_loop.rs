//! SIGKILL at random moments: publish (single and batch), dispatch, export, import and
//! sync on three nodes sharing one remote, then the invariants and a clean repair.
//!
//! `GITMESH_KILLS` sets the number of kills (default 200); `GITMESH_SEED` replays a run.

use crate::common::{TestEnv, publish_args};
use crate::resilience_support::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::process::Child;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Publish,
    Batch,
    Dispatch,
    Export,
    Import,
    Sync,
}

const OPS: [Op; 6] = [
    Op::Publish,
    Op::Batch,
    Op::Dispatch,
    Op::Export,
    Op::Import,
    Op::Sync,
];

struct Running {
    child: Child,
    node: usize,
    op: Op,
    /// Markers of the events it publishes (one, or the batch).
    markers: Vec<String>,
    batch: Option<u64>,
    kill_at: Instant,
}

/// A payload that drives the mesh: lane summaries become decisions and (at the
/// leader) commands that run the lanes' argv; tasks become routes.
fn payload(rng: &mut Rng, marker: &str) -> (String, String, Value) {
    match rng.range(0, 4) {
        0 => (
            "scheduling".into(),
            "lanes.ensure.summary".into(),
            json!({"marker": marker, "started_count": 0, "restarted_count": 0, "parallel_groups_at_limit": 1, "requested_lane": "all_enabled"}),
        ),
        1 => (
            "scheduling".into(),
            "lanes.start.summary".into(),
            json!({"marker": marker, "failed_count": 1, "requested_lane": "all_enabled"}),
        ),
        2 => (
            "scheduling".into(),
            "task.enqueued".into(),
            json!({"marker": marker, "task_id": marker, "routing_options": [{"lane_id": "lane-a", "provider": "p", "model": "m", "score": 0.5}]}),
        ),
        _ => (
            "monitoring".into(),
            "heartbeat.changed".into(),
            json!({"marker": marker}),
        ),
    }
}

#[test]
fn sigkill_at_random_moments_keeps_every_invariant() {
    let seed = seed("kill_loop");
    let target = env_num("GITMESH_KILLS", 200);
    let mut rng = Rng::new(seed);
    let env = TestEnv::with_remote();
    let names = ["k1", "k2", "k3"];
    let roots: Vec<_> = names.iter().map(|n| node(&env, n, "10m")).collect();
    // Small segments, so kills also land around seals.
    let seg_env = [("GITMESH_LOG_SEGMENT_BYTES", "65536")];
    // k1 becomes leader, so commands are issued from the start.
    sync_code(&roots[0]);

    let started = Instant::now();
    let mut acked: Vec<(usize, String)> = Vec::new();
    let mut batches: HashMap<u64, usize> = HashMap::new();
    let mut kills: BTreeMap<String, u64> = BTreeMap::new();
    let mut total_kills = 0u64;
    let mut finished = 0u64;
    let mut torn_seen = 0u64;
    let mut next_marker = 0u64;
    let mut next_batch = 0u64;
    let mut rounds = 0u64;
    // One scale-up decision no kill can take away: on a slow machine the kills may
    // leave too few random ones for any command to reach a lane.
    let pinned = json!({"marker": "m0", "started_count": 0, "restarted_count": 0, "parallel_groups_at_limit": 1, "requested_lane": "all_enabled"});
    let out = spawn(
        &roots[1],
        &publish_args(
            "scheduling",
            "lanes.ensure.summary",
            &["--payload-json", &pinned.to_string()],
        ),
        None,
        &seg_env,
    )
    .wait_with_output()
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    acked.push((1, "m0".to_string()));
    while total_kills < target {
        rounds += 1;
        assert!(
            rounds < target * 10,
            "too few kills landed: {total_kills} in {rounds} rounds"
        );
        // One to three processes at once, on random nodes.
        let mut running: Vec<Running> = Vec::new();
        for _ in 0..rng.range(1, 4) {
            let node = rng.range(0, 3) as usize;
            let op = OPS[rng.range(0, OPS.len() as u64) as usize];
            // Typical run times differ: a sync runs git, a publish does not.
            let max_ms = match op {
                Op::Sync => 400,
                Op::Export | Op::Import => 120,
                _ => 40,
            };
            let kill_at = Instant::now() + Duration::from_millis(rng.range(0, max_ms));
            let (child, markers, batch) = match op {
                Op::Publish => {
                    next_marker += 1;
                    let m = format!("m{next_marker}");
                    let (t, e, p) = payload(&mut rng, &m);
                    let c = spawn(
                        &roots[node],
                        &publish_args(&t, &e, &["--payload-json", &p.to_string()]),
                        None,
                        &seg_env,
                    );
                    (c, vec![m], None)
                }
                Op::Batch => {
                    next_batch += 1;
                    let n = rng.range(2, 9) as usize;
                    let mut text = String::new();
                    let mut ms = Vec::new();
                    for _ in 0..n {
                        next_marker += 1;
                        let m = format!("m{next_marker}");
                        let (t, e, mut p) = payload(&mut rng, &m);
                        p["batch"] = json!(next_batch);
                        text.push_str(
                            &json!({"topic": t, "event_type": e, "payload": p}).to_string(),
                        );
                        text.push('\n');
                        ms.push(m);
                    }
                    batches.insert(next_batch, n);
                    let c = spawn(
                        &roots[node],
                        &["mesh-publish", "--stdin"],
                        Some(&text),
                        &seg_env,
                    );
                    (c, ms, Some(next_batch))
                }
                Op::Dispatch => (
                    spawn(&roots[node], &["mesh-dispatch"], None, &seg_env),
                    vec![],
                    None,
                ),
                Op::Export => (
                    spawn(&roots[node], &["mesh-export"], None, &seg_env),
                    vec![],
                    None,
                ),
                Op::Import => (
                    spawn(&roots[node], &["mesh-import"], None, &seg_env),
                    vec![],
                    None,
                ),
                Op::Sync => (
                    spawn(&roots[node], &["mesh-sync"], None, &seg_env),
                    vec![],
                    None,
                ),
            };
            running.push(Running {
                child,
                node,
                op,
                markers,
                batch,
                kill_at,
            });
        }
        running.sort_by_key(|r| r.kill_at);
        for mut r in running {
            let now = Instant::now();
            if r.kill_at > now {
                std::thread::sleep(r.kill_at - now);
            }
            if r.child.try_wait().unwrap().is_none() {
                r.child.kill().unwrap();
                r.child.wait().unwrap();
                total_kills += 1;
                *kills.entry(format!("{:?}", r.op)).or_default() += 1;
                // Whatever the kill left, the complete lines are events.
                if raw_log(&roots[r.node]).torn_tail > 0 {
                    torn_seen += 1;
                }
                continue;
            }
            let out = r.child.wait_with_output().unwrap();
            finished += 1;
            let code = out.status.code().unwrap_or(-1);
            let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            match r.op {
                Op::Publish | Op::Batch => {
                    assert_eq!(code, 0, "{:?} failed: {v}", r.op);
                    assert_eq!(v["ok"], true);
                    if let Some(b) = r.batch {
                        assert_eq!(v["published"], batches[&b] as u64, "{v}");
                    }
                    acked.extend(r.markers.iter().map(|m| (r.node, m.clone())));
                }
                Op::Sync => assert!(code == 0 || code == 75, "mesh-sync exited {code}: {v}"),
                _ => assert_eq!(code, 0, "{:?} exited {code}: {v}", r.op),
            }
        }
        // The remote only ever holds whole batches.
        if rounds.is_multiple_of(25) {
            check_remote(env.remote());
        }
    }
    let kill_secs = started.elapsed().as_secs_f64();

    // Repair: clean syncs until every node holds the same events.
    let rounds_to_converge = converge(&roots, 5);
    // One more round, so follow-ups of the last imports are produced and spread.
    for _ in 0..2 {
        for r in &roots {
            sync_code(r);
        }
    }
    let rounds_to_converge = rounds_to_converge + converge(&roots, 5);

    let (batch_files, remote_events) = check_remote(env.remote());
    let mut all = Vec::new();
    for (i, r) in roots.iter().enumerate() {
        let log = raw_log(r);
        assert_eq!(
            log.torn_tail, 0,
            "{}: the log does not end with a newline after repair",
            names[i]
        );
        all = check_log(r, names[i]);
        assert_eq!(status(r)["dispatch_lag"], 0, "{}", names[i]);
    }
    // Every acknowledged publish is in every log exactly once; batches are whole.
    let mut by_marker: HashMap<String, (usize, Option<u64>)> = HashMap::new();
    for e in &all {
        if let Some(m) = e["payload"]["marker"].as_str()
            && e["source"] != "mesh-dispatch"
        {
            let c = by_marker.entry(m.to_string()).or_insert((0, None));
            c.0 += 1;
            c.1 = e["payload"]["batch"].as_u64();
        }
    }
    for (node, m) in &acked {
        let c = by_marker.get(m).map_or(0, |c| c.0);
        assert_eq!(
            c, 1,
            "acknowledged publish {m} (node {}) is in the log {c} times",
            names[*node]
        );
    }
    assert!(
        by_marker.values().all(|c| c.0 == 1),
        "an event published twice"
    );
    let mut per_batch: HashMap<u64, usize> = HashMap::new();
    for (_, b) in by_marker.values() {
        if let Some(b) = b {
            *per_batch.entry(*b).or_default() += 1;
        }
    }
    for (b, n) in &per_batch {
        assert_eq!(*n, batches[b], "batch {b} is partly in the log");
    }
    let (followups, applied) = check_effects(&all, &roots);
    let own_total = all
        .iter()
        .filter(|e| e["source"] != "mesh-dispatch")
        .count();
    assert!(
        applied > 0,
        "no lane command was applied; the test proves nothing about effects"
    );
    eprintln!(
        "kill_loop: seed {seed}: {total_kills} kills survived {kills:?} in {kill_secs:.1}s, {finished} runs finished, \
{torn_seen} torn tails seen and repaired, {} acknowledged publishes ({own_total} published events kept), \
{} batches ({} whole), {followups} follow-ups, {applied} lane commands applied, {batch_files} batch files / \
{remote_events} events on the remote, converged in {rounds_to_converge} rounds, {} events on each of 3 nodes",
        acked.len(),
        batches.len(),
        per_batch.len(),
        all.len()
    );
}

#[test]
fn a_ref_lock_left_by_a_killed_sync_does_not_wedge_the_node() {
    let env = TestEnv::with_remote();
    let root = node(&env, "w1", "10m");
    heartbeat(&root, "{}");
    // What a process killed between creating the lock and renaming it leaves.
    let heads = root.join("state/github_coordination/refs/heads");
    std::fs::create_dir_all(&heads).unwrap();
    std::fs::write(heads.join("main.lock"), "").unwrap();
    assert_eq!(sync_code(&root), 0);
    assert!(!heads.join("main.lock").exists());
    let (_, events) = check_remote(env.remote());
    assert_eq!(events, 2, "the heartbeat and its tick were pushed");
}
