//! Convergence, as a seeded simulation through the real binary: random publishes,
//! random sync orders, partitions (the remote unreachable: exit 75) and restarts
//! (a sync killed mid-way); then heal, and every node syncs until quiet.
//!
//! `GITMESH_CONV_NODES` (default 6, at most 20), `GITMESH_CONV_SEEDS` (default 3),
//! `GITMESH_CONV_STEPS` (default 40); `GITMESH_SEED` fixes the first seed.

use crate::common::{TestEnv, bare_remote, field, publish_event};
use crate::resilience_support::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

struct Sim {
    roots: Vec<PathBuf>,
    partitioned: Vec<bool>,
    missing: PathBuf,
    acked: Vec<String>,
    offline_syncs: u64,
    kills: u64,
    contended: u64,
}

impl Sim {
    fn env(&self, i: usize) -> Vec<(&str, &str)> {
        if self.partitioned[i] {
            vec![("GITMESH_REMOTE", self.missing.to_str().unwrap())]
        } else {
            vec![]
        }
    }

    fn sync(&mut self, i: usize) {
        let out = spawn(&self.roots[i], &["mesh-sync"], None, &self.env(i))
            .wait_with_output()
            .unwrap();
        let code = out.status.code().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if self.partitioned[i] {
            assert_eq!(code, 75, "a partitioned sync must exit 75: {v}");
            assert_eq!(v["push"]["offline"], true, "{v}");
            self.offline_syncs += 1;
        } else {
            assert!(code == 0 || code == 75, "mesh-sync exited {code}: {v}");
            if code == 75 {
                assert_eq!(v["push"]["offline"], false, "the remote is reachable: {v}");
                self.contended += 1;
            }
        }
    }

    fn publish(&mut self, rng: &mut Rng, i: usize, k: u64) {
        let (topic, event_type, payload) = match rng.range(0, 4) {
            0 => (
                "scheduling",
                "lanes.ensure.summary",
                json!({"k": k, "parallel_groups_at_limit": 1, "requested_lane": "all_enabled"}),
            ),
            1 => (
                "scheduling",
                "lanes.start.summary",
                json!({"k": k, "failed_count": 1, "requested_lane": "all_enabled"}),
            ),
            2 => (
                "scheduling",
                "task.enqueued",
                json!({"k": k, "task_id": format!("t{k}"), "routing_options": [{"lane_id": "lane-a", "provider": "p", "model": "m", "score": 0.5}]}),
            ),
            _ => ("monitoring", "heartbeat.changed", json!({"k": k})),
        };
        let v = publish_event(
            &self.roots[i],
            topic,
            event_type,
            &["--payload-json", &payload.to_string()],
        );
        self.acked.push(v["event_id"].as_str().unwrap().to_string());
    }
}

fn run_sim(seed: u64, nodes: usize, steps: usize, env: &TestEnv) -> String {
    let mut rng = Rng::new(seed);
    let roots: Vec<PathBuf> = (1..=nodes)
        .map(|i| node(env, &format!("c{i:02}"), "10m"))
        .collect();
    let mut sim = Sim {
        partitioned: vec![false; nodes],
        missing: env.path().join("unreachable.git"),
        roots,
        acked: Vec::new(),
        offline_syncs: 0,
        kills: 0,
        contended: 0,
    };
    let mut k = 0;
    let mut partitions = 0;
    for _ in 0..steps {
        let i = rng.range(0, nodes as u64) as usize;
        match rng.range(0, 10) {
            0..=3 => {
                for _ in 0..rng.range(1, 4) {
                    k += 1;
                    sim.publish(&mut rng, i, k);
                }
            }
            4..=5 => sim.sync(i),
            6 => {
                // Several nodes sync at once, in a random order.
                let mut picked: Vec<usize> = (0..nodes).filter(|_| rng.chance(40)).collect();
                picked.sort_by_key(|_| rng.next());
                let children: Vec<_> = picked
                    .iter()
                    .map(|&j| (j, spawn(&sim.roots[j], &["mesh-sync"], None, &sim.env(j))))
                    .collect();
                for (j, c) in children {
                    let code = c.wait_with_output().unwrap().status.code().unwrap();
                    assert!(code == 0 || code == 75, "node {j}: exit {code}");
                }
            }
            7 => {
                // Partition or heal one node.
                if !sim.partitioned[i] {
                    partitions += 1;
                }
                sim.partitioned[i] = !sim.partitioned[i];
            }
            _ => {
                // A restart: the node's sync is killed mid-way.
                let mut c = spawn(&sim.roots[i], &["mesh-sync"], None, &sim.env(i));
                std::thread::sleep(Duration::from_millis(rng.range(0, 250)));
                if c.try_wait().unwrap().is_none() {
                    c.kill().unwrap();
                    sim.kills += 1;
                }
                c.wait().unwrap();
            }
        }
    }
    // Heal every partition; then every node syncs twice, in a random order each round.
    sim.partitioned = vec![false; nodes];
    let before_heal: Vec<BTreeSet<String>> = sim.roots.iter().map(|r| id_set(r)).collect();
    let everything_before: BTreeSet<String> = before_heal.iter().flatten().cloned().collect();
    for _ in 0..2 {
        let mut order: Vec<usize> = (0..nodes).collect();
        order.sort_by_key(|_| rng.next());
        for j in order {
            sim.sync(j);
        }
    }
    // After two syncs each, every event that existed anywhere at the heal is everywhere.
    for (j, r) in sim.roots.iter().enumerate() {
        let have = id_set(r);
        let missing: Vec<_> = everything_before.difference(&have).collect();
        assert!(
            missing.is_empty(),
            "seed {seed}: node {j} lacks {} pre-heal events after two syncs: {missing:?}",
            missing.len()
        );
    }
    // Follow-ups made from events imported during those rounds (a leader's command,
    // the target's outcome) travel one hop per round: sync until nothing changes.
    let mut rounds = 2;
    loop {
        let first = id_set(&sim.roots[0]);
        if sim.roots.iter().all(|r| id_set(r) == first) {
            break;
        }
        rounds += 1;
        assert!(
            rounds <= 8,
            "seed {seed}: no convergence after {rounds} rounds"
        );
        for j in 0..nodes {
            sim.sync(j);
        }
    }
    let all = check_log(&sim.roots[0], "c01");
    check_chains("converged", &all);
    let ids: BTreeSet<String> = field(&all, "event_id")
        .into_iter()
        .map(String::from)
        .collect();
    for a in &sim.acked {
        assert!(ids.contains(a), "seed {seed}: acknowledged {a} lost");
    }
    let d0 = derived(&sim.roots[0]);
    for (j, r) in sim.roots.iter().enumerate() {
        check_log(r, &format!("c{:02}", j + 1));
        assert_eq!(
            derived(r),
            d0,
            "seed {seed}: node {j} derived state differs"
        );
        assert_eq!(status(r)["dispatch_lag"], 0);
    }
    let (followups, applied) = check_effects(&all, &sim.roots);
    check_remote(env.remote());
    let count = |t: &str| d0.get(t).map_or(0, |s| s.len());
    format!(
        "seed {seed}: {nodes} nodes, {steps} steps, {} publishes acked, {partitions} partitions ({} offline syncs), \
{} syncs killed, {} contended; converged {} events in {rounds} rounds after heal ({} decisions, {} routes, \
{} commands, {applied} applied, {followups} follow-ups)",
        sim.acked.len(),
        sim.offline_syncs,
        sim.kills,
        sim.contended,
        all.len(),
        count("decision.made"),
        count("route.selected"),
        count("command.requested"),
    )
}

#[test]
fn nodes_converge_after_partitions_restarts_and_random_sync_orders() {
    let first = seed("convergence");
    let nodes = env_num("GITMESH_CONV_NODES", 6).clamp(2, 20) as usize;
    let seeds = env_num("GITMESH_CONV_SEEDS", 3);
    let steps = env_num("GITMESH_CONV_STEPS", 40) as usize;
    let mut rng = Rng::new(first);
    for _ in 0..seeds {
        let s = rng.next();
        let line = run_sim(s, nodes, steps, &TestEnv::with_remote());
        eprintln!("convergence: {line}");
    }
}

#[test]
fn sync_follows_a_remote_changed_after_init() {
    let env = TestEnv::with_remote();
    let root = node(&env, "o1", "10m");
    heartbeat(&root, "{}");
    // GITMESH_REMOTE pointing nowhere: the sync does its local work and exits 75.
    let missing = env.path().join("gone.git");
    let out = spawn(
        &root,
        &["mesh-sync"],
        None,
        &[("GITMESH_REMOTE", missing.to_str().unwrap())],
    )
    .wait_with_output()
    .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(75), "{v}");
    assert_eq!(v["push"]["offline"], true);
    assert_eq!(
        git(env.remote(), &["rev-list", "--count", "main"]).trim(),
        "1",
        "only init's manifest"
    );
    // A second remote configured in mesh.toml receives the next sync.
    let other = bare_remote(env.path(), "other.git");
    write_config(&root, "o1", &other, "10m", &lane_record(&root));
    assert_eq!(sync_code(&root), 0);
    let (_, events) = check_remote(&other);
    assert_eq!(
        events, 2,
        "the heartbeat and its tick reached the new remote"
    );
}
