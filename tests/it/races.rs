//! Races: concurrent publishers with a daemon and hand-run syncs on one root,
//! twenty nodes pushing at once, two nodes racing for the lease at its expiry.

use crate::common;
use crate::common::TestEnv;
use crate::common::field;
use crate::common::publish_event;
use crate::resilience_support::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn eight_publishers_a_daemon_and_hand_run_syncs_on_one_root() {
    let env = TestEnv::with_remote();
    let root = node(&env, "r1", "2m");
    let mut daemon = common::gm(&root);
    daemon
        .args(["daemon", "--interval", "1s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut daemon = daemon.spawn().unwrap();
    let per = 25;
    let publishers: Vec<_> = (0..8)
        .map(|p| {
            let root = root.clone();
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                for i in 0..per {
                    let payload = format!(r#"{{"marker":"p{p}-{i}"}}"#);
                    ids.push(heartbeat(&root, &payload));
                }
                ids
            })
        })
        .collect();
    let syncer = {
        let root = root.clone();
        std::thread::spawn(move || {
            let mut codes = Vec::new();
            for _ in 0..6 {
                let mut c = common::gm(&root);
                c.args(["--json", "mesh-sync"]);
                let out = c.output().unwrap();
                let v = common::parse_json(&out);
                // Only contention (75) or success; a concurrent daemon pass waits on the lock.
                let code = out.status.code().unwrap();
                assert!(code == 0 || code == 75, "mesh-sync: {v}");
                codes.push(code);
            }
            codes
        })
    };
    let mut acked = Vec::new();
    for p in publishers {
        acked.extend(p.join().unwrap());
    }
    let codes = syncer.join().unwrap();
    assert!(daemon.try_wait().unwrap().is_none(), "the daemon died");
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    sync_code(&root);
    sync_code(&root);
    let events = check_log(&root, "r1");
    let ids: BTreeSet<String> = field(&events, "event_id")
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(acked.len(), 8 * per);
    for id in &acked {
        assert!(ids.contains(id), "acknowledged {id} lost");
    }
    // Each heartbeat has exactly one tick, from the daemon or a hand-run sync.
    let ticks = events
        .iter()
        .filter(|e| e["event_type"] == "tick.requested")
        .count();
    assert_eq!(ticks, acked.len());
    let (_, on_remote) = check_remote(env.remote());
    assert_eq!(
        on_remote,
        events.len(),
        "the remote holds every own event once"
    );
    eprintln!(
        "races: 8 publishers x {per} + daemon + {} hand-run syncs (exit codes {codes:?}): {} events, chain 1..{} intact",
        codes.len(),
        events.len(),
        events.len()
    );
}

#[test]
fn twenty_nodes_pushing_at_once_converge_within_three_rounds() {
    let env = TestEnv::with_remote();
    let roots: Vec<PathBuf> = (1..=20)
        .map(|i| node(&env, &format!("n{i:02}"), "2m"))
        .collect();
    let mut published = BTreeSet::new();
    for (i, r) in roots.iter().enumerate() {
        published.insert(heartbeat(r, &format!(r#"{{"n":{i}}}"#)));
    }
    let mut rounds = 0;
    let mut pushes_per_round = Vec::new();
    loop {
        rounds += 1;
        assert!(rounds <= 3, "not converged after 3 rounds");
        let children: Vec<_> = roots
            .iter()
            .map(|r| spawn(r, &["mesh-sync"], None, &[]))
            .collect();
        let mut pushed = 0;
        for c in children {
            let out = c.wait_with_output().unwrap();
            let code = out.status.code().unwrap();
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert!(code == 0 || code == 75, "mesh-sync exited {code}: {v}");
            if v["push"]["pushed"] == true {
                pushed += 1;
            }
        }
        pushes_per_round.push(pushed);
        let first = id_set(&roots[0]);
        if roots.iter().all(|r| id_set(r) == first) && published.is_subset(&first) {
            break;
        }
    }
    let all = check_log(&roots[0], "n01");
    for (i, r) in roots.iter().enumerate() {
        check_log(r, &format!("n{:02}", i + 1));
    }
    check_chains("converged", &all);
    let (_, on_remote) = check_remote(env.remote());
    assert_eq!(on_remote, all.len());
    eprintln!(
        "races: 20 nodes synced at once: converged in {rounds} rounds (pushes per round {pushes_per_round:?}), {} events on each node, linear history",
        all.len()
    );
}

/// One version of the lease file in the remote's history.
#[derive(Debug)]
struct LeaseVersion {
    leader: String,
    epoch: u64,
    expires: chrono::DateTime<chrono::Utc>,
    ttl: i64,
}

fn lease_history(remote: &std::path::Path) -> Vec<LeaseVersion> {
    let revs = git(
        remote,
        &[
            "rev-list",
            "--reverse",
            "main",
            "--",
            "event_mesh/leases/leader.json",
        ],
    );
    revs.lines()
        .map(|c| {
            let text = git(
                remote,
                &[
                    "cat-file",
                    "-p",
                    &format!("{c}:event_mesh/leases/leader.json"),
                ],
            );
            let v: Value = serde_json::from_str(&text).unwrap();
            LeaseVersion {
                leader: v["leader_id"].as_str().unwrap().to_string(),
                epoch: v["epoch"].as_u64().unwrap(),
                expires: common::lease_expiry(&v),
                ttl: v["ttl_sec"].as_i64().unwrap(),
            }
        })
        .collect()
}

#[test]
fn two_nodes_racing_for_the_lease_at_its_expiry_get_one_leader_per_epoch() {
    let seed = seed("lease_race");
    let mut rng = Rng::new(seed);
    let env = TestEnv::with_remote();
    let roots = [node(&env, "a", "2s"), node(&env, "b", "2s")];
    // Per epoch, the nodes whose own successful sync said they held it, and until when.
    let mut believed: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    let mut syncs = 0;
    for round in 0..env_num("GITMESH_LEASE_ROUNDS", 6) {
        // Both sync at once, at the edge of the lease: after a renewal round, just
        // before it runs out (a renewal racing its expiry); after that, just after
        // (a take racing the holder). Aiming at the edge, not pausing at random,
        // makes every other round a chance for a new epoch however slow the machine.
        if let Some(last) = lease_history(env.remote()).last() {
            let offset_ms = if round % 2 == 0 {
                -(rng.range(50, 500) as i64)
            } else {
                rng.range(0, 600) as i64
            };
            common::sleep_until_wall(last.expires + chrono::Duration::milliseconds(offset_ms));
        }
        let children: Vec<_> = roots
            .iter()
            .map(|r| spawn(r, &["mesh-sync"], None, &[]))
            .collect();
        for (i, c) in children.into_iter().enumerate() {
            let out = c.wait_with_output().unwrap();
            let code = out.status.code().unwrap();
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert!(code == 0 || code == 75, "mesh-sync exited {code}: {v}");
            syncs += 1;
            let me = if i == 0 { "a" } else { "b" };
            if code == 0 && v["leader"]["leader_id"] == me {
                believed
                    .entry(v["leader"]["epoch"].as_u64().unwrap())
                    .or_default()
                    .insert(me.to_string());
            }
        }
        // Each node's view (what its dispatch acts on) right after the syncs.
        for (i, r) in roots.iter().enumerate() {
            let st = status(r);
            let me = if i == 0 { "a" } else { "b" };
            if st["leader"]["leader_id"] == me
                && common::lease_expiry(&st["leader"]) > chrono::Utc::now()
            {
                believed
                    .entry(st["leader"]["epoch"].as_u64().unwrap())
                    .or_default()
                    .insert(me.to_string());
            }
        }
    }
    for (epoch, holders) in &believed {
        assert_eq!(
            holders.len(),
            1,
            "epoch {epoch} believed held by {holders:?}"
        );
    }
    let history = lease_history(env.remote());
    let mut leader_of: BTreeMap<u64, String> = BTreeMap::new();
    for w in history.windows(2) {
        assert!(w[1].epoch >= w[0].epoch, "epoch went back: {w:?}");
        if w[1].epoch == w[0].epoch {
            assert_eq!(w[1].leader, w[0].leader, "same epoch, two leaders: {w:?}");
        } else {
            // A new epoch is taken only once the previous lease has run out
            // (taken at expires - ttl; one second of timestamp slack).
            let taken = w[1].expires - chrono::Duration::seconds(w[1].ttl);
            assert!(
                taken + chrono::Duration::seconds(1) >= w[0].expires,
                "epoch {} taken at {taken} before epoch {} expired at {}",
                w[1].epoch,
                w[0].epoch,
                w[0].expires
            );
        }
    }
    for v in &history {
        let l = leader_of.entry(v.epoch).or_insert_with(|| v.leader.clone());
        assert_eq!(*l, v.leader, "epoch {} has two leaders", v.epoch);
    }
    let epochs = leader_of.len();
    assert!(
        epochs >= 3,
        "only {epochs} epochs in the run; the lease never changed hands enough"
    );
    eprintln!(
        "races: lease race seed {seed}: {syncs} syncs, {} lease versions, {epochs} epochs, one leader each: {leader_of:?}",
        history.len()
    );
}

#[test]
fn a_partitioned_node_never_acts_on_a_lease_it_could_not_push() {
    let env = TestEnv::with_remote();
    let a = node(&env, "a", "2s");
    let b = node(&env, "b", "2s");
    assert_eq!(sync_code(&a), 0);
    assert_eq!(sync_code(&b), 0);
    assert_eq!(status(&b)["leader"]["leader_id"], "a");
    // The lease runs out while b is cut off from the remote.
    std::thread::sleep(Duration::from_millis(2500));
    let missing = env.path().join("gone.git");
    let off = [("GITMESH_REMOTE", missing.to_str().unwrap())];
    let out = spawn(&b, &["mesh-sync"], None, &off)
        .wait_with_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75));
    // Meanwhile a, which reaches the remote, takes the next epoch.
    assert_eq!(sync_code(&a), 0);
    let a_lease = status(&a)["leader"].clone();
    assert_eq!(a_lease["leader_id"], "a", "{a_lease}");
    // b's own unpushed claim is not a lease: b issues no command for its scale-up.
    publish_event(
        &b,
        "scheduling",
        "lanes.ensure.summary",
        &[
            "--payload-json",
            r#"{"started_count":0,"restarted_count":0,"parallel_groups_at_limit":1,"requested_lane":"all_enabled"}"#,
        ],
    );
    let out = spawn(&b, &["mesh-sync"], None, &off)
        .wait_with_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75));
    let b_leader = &status(&b)["leader"];
    assert_ne!(
        b_leader["leader_id"], "b",
        "b believes it leads: {b_leader}"
    );
    let cmds: Vec<Value> = raw_log(&b)
        .events
        .into_iter()
        .filter(|e| e["event_type"] == "command.requested")
        .collect();
    assert!(
        cmds.is_empty(),
        "a partitioned node issued commands: {cmds:?}"
    );
    // Only a lease holder turns a decision into a command (docs/dispatch.md), so the
    // healed round needs a to hold the lease throughout, however slow the machine:
    // once its 2 s lease has run out, a takes the next one for 30 s.
    common::set_config_key(&a, "lease_ttl", "\"30s\"");
    common::sleep_until_wall(common::lease_expiry(&a_lease) + chrono::Duration::milliseconds(100));
    assert_eq!(sync_code(&a), 0);
    let long = status(&a)["leader"].clone();
    assert_eq!(long["leader_id"], "a", "{long}");
    assert_eq!(
        long["epoch"],
        a_lease["epoch"].as_u64().unwrap() + 1,
        "{long}"
    );
    // Healed, b syncs and the leader (a) issues the one command for b's decision.
    assert_eq!(sync_code(&b), 0);
    assert_eq!(sync_code(&a), 0);
    assert_eq!(sync_code(&b), 0);
    let cmds: Vec<Value> = raw_log(&b)
        .events
        .into_iter()
        .filter(|e| e["event_type"] == "command.requested")
        .collect();
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    assert_eq!(cmds[0]["node_id"], "a");
}
