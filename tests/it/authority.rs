//! Authority: the signed mesh roster, signed and verified leases, and commands accepted
//! only from the verified leader. The attacker writes the ledger with plain `git` (or
//! signs as an enrolled peer gone bad); each attack is paired with the legitimate path.

use crate::common;
use crate::common::mesh::Work;
use crate::common::{TestEnv, json_err, json_ok, publish_event, set_config_key, sync};
use gitmesh::keys::NodeKey;
use gitmesh::ledger::lease::Lease;
use gitmesh::ledger::roster::{Role, Roster};
use gitmesh::paths::NodePaths;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const LEASE: &str = "event_mesh/leases/leader.json";

/// A node that trusts only the roster.
fn strict(env: &TestEnv, name: &str) -> PathBuf {
    env.node_with(name, &["--trust", "roster"])
}

fn key_of(root: &Path) -> NodeKey {
    NodeKey::load(&NodePaths::new(root)).unwrap().unwrap()
}

fn public(root: &Path) -> String {
    key_of(root).public_hex()
}

/// `roster enroll` of `node` (its root `peer`) by the admin `admin`, then published.
fn enroll(admin: &Path, node: &str, peer: &Path, roles: &[&str]) -> Value {
    let key = public(peer);
    let mut args = vec!["roster", "enroll", node, "--key", key.as_str()];
    for r in roles {
        args.extend(["--role", r]);
    }
    let v = json_ok(admin, &args);
    sync(admin);
    v
}

fn status(root: &Path) -> Value {
    json_ok(root, &["mesh-status"])
}

fn remote_file(env: &TestEnv, work: &str, rel: &str) -> String {
    let w = Work::clone(&env.url(), &env.path().join(work));
    std::fs::read_to_string(w.dir.join(rel)).unwrap()
}

fn has_event(root: &Path, event_id: &str) -> bool {
    json_ok(root, &["events"]).to_string().contains(event_id)
}

#[test]
fn a_planted_roster_is_refused_and_an_admin_enroll_lets_the_peer_in() {
    let env = TestEnv::with_remote();
    let a = strict(&env, "a");
    let v = status(&a);
    assert_eq!(v["roster_version"], 1, "{v}");
    let b = strict(&env, "b");
    // b joins: it trusts the roster it found, but it is not on it.
    assert_eq!(status(&b)["roster_version"], 1);
    let ev = publish_event(&b, "monitoring", "heartbeat.changed", &[])["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    sync(&b);
    let s = sync(&a);
    assert_eq!(s["import"]["imported_events"], 0, "{s}");
    assert_eq!(s["import"]["held"][0]["reason"], "not_on_roster", "{s}");
    assert!(
        s["import"]["unauthorized"]
            .to_string()
            .contains("not on the mesh roster"),
        "{s}"
    );

    // Attack: b signs a version 2 that makes itself admin and pushes it with git.
    let v1: Roster = serde_json::from_str(&remote_file(
        &env,
        "w1",
        "event_mesh/roster/000000000001.json",
    ))
    .unwrap();
    let mut forged = v1.successor("2026-01-01T00:00:00.000000Z").unwrap();
    forged.nodes.insert(
        "b".into(),
        gitmesh::ledger::roster::RosterNode {
            public_key: public(&b),
            roles: [Role::Admin, Role::Leader, Role::Member].into(),
            retired: false,
        },
    );
    forged.sign("b", &key_of(&b));
    let w = Work::clone(&env.url(), &env.path().join("attacker"));
    w.push_files(
        &[("event_mesh/roster/000000000002.json", &forged.to_file())],
        "roster v2",
    );
    let s = sync(&a);
    assert_eq!(s["import"]["imported_events"], 0, "{s}");
    let st = status(&a);
    assert_eq!(st["roster_version"], 1, "{st}");
    let alerts = st["authority_alerts"].to_string();
    assert!(alerts.contains("not an admin"), "{alerts}");
    sync(&b);
    assert_eq!(status(&b)["roster_version"], 1);

    // A peer cannot sign a roster change either.
    let (code, err) = json_err(&b, &["roster", "retire", "a"]);
    assert_eq!(code, 2, "{err}");

    // Control: the admin enrolls b; its version replaces the junk; b's events flow.
    let v = enroll(&a, "b", &b, &["member"]);
    assert_eq!(v["version"], 2, "{v}");
    assert_eq!(status(&a)["roster_version"], 2);
    sync(&b);
    assert_eq!(status(&b)["roster_version"], 2);
    let s = sync(&a);
    assert!(s["import"]["imported_events"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(s["import"]["held"], json!([]), "{s}");
    assert!(has_event(&a, &ev));
    let shown = json_ok(&a, &["roster", "show"]);
    assert_eq!(shown["trusted"]["nodes"]["b"]["roles"], json!(["member"]));

    // Retiring b: status stops calling it stale, and its new events are held again.
    let r = json_ok(&a, &["nodes", "retire", "b"]);
    assert_eq!(r["version"], 3);
    sync(&a);
    let peers = status(&a)["peers"].clone();
    let pb = peers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["node_id"] == "b")
        .unwrap()
        .clone();
    assert_eq!(pb["retired"], true, "{pb}");
    assert_eq!(pb["stale"], false, "{pb}");
    publish_event(
        &b,
        "monitoring",
        "heartbeat.changed",
        &["--dedupe-key", "after"],
    );
    sync(&b);
    let s = sync(&a);
    assert_eq!(s["import"]["imported_events"], 0, "{s}");
    assert!(
        s["import"]["unauthorized"].to_string().contains("retired"),
        "{s}"
    );
}

/// Signs `lease` with `key` and pushes it with plain git.
fn push_lease(w: &Work, mut lease: Lease, key: Option<&NodeKey>) {
    if let Some(k) = key {
        lease.sign(k);
    }
    w.push_files(
        &[(LEASE, serde_json::to_string(&lease).unwrap().as_bytes())],
        "lease",
    );
}

fn lease(leader: &str, epoch: u64, expires: &str) -> Lease {
    Lease {
        leader_id: leader.into(),
        epoch,
        lease_expires_at: expires.into(),
        ttl_sec: 60,
        taken_at: gitmesh::event::now_timestamp(),
        sig: None,
    }
}

#[test]
fn forged_leases_are_ignored_and_the_next_honest_node_takes_the_next_epoch() {
    let env = TestEnv::with_remote();
    let a = strict(&env, "a");
    set_config_key(&a, "interval", "\"500ms\"");
    set_config_key(&a, "lease_ttl", "\"2s\"");
    let b = strict(&env, "b");
    enroll(&a, "b", &b, &["member", "leader"]);
    let s = sync(&a);
    assert_eq!(s["leader"]["leader_id"], "a", "{s}");
    assert_eq!(s["leader"]["epoch"], 1, "{s}");
    sync(&b);
    assert_eq!(status(&b)["leader"]["epoch"], 1);

    // An enrolled leader gone bad signs epoch u64::MAX; an unknown node claims it until 9999.
    // a's own 2 s lease may lapse and be retaken on a slow machine meanwhile; what
    // must never happen is a forged lease becoming the trusted one.
    let honest = |st: &Value| {
        let l = &st["leader"];
        let who = l["leader_id"].as_str().unwrap_or_default().to_string();
        assert!(who == "a" || who == "b", "{st}");
        (who, l["epoch"].as_u64().unwrap())
    };
    let w = Work::clone(&env.url(), &env.path().join("attacker"));
    let soon = gitmesh::event::format_timestamp(chrono::Utc::now() + chrono::Duration::seconds(30));
    push_lease(&w, lease("b", u64::MAX, &soon), Some(&key_of(&b)));
    sync(&a);
    let st = status(&a);
    let (_, trusted) = honest(&st);
    assert!(trusted <= 2, "{st}");
    assert!(
        st["authority_alerts"]
            .to_string()
            .contains("epoch_out_of_range"),
        "{st}"
    );
    let next = trusted + 1;
    push_lease(
        &w,
        lease("mallory", next, "9999-12-31T23:59:59.000000Z"),
        None,
    );
    sync(&b);
    let seen = std::time::Instant::now();
    let st = status(&b);
    let (_, now_trusted) = honest(&st);
    assert!(now_trusted == trusted || now_trusted == next, "{st}");
    assert!(
        st["authority_alerts"]
            .to_string()
            .contains("taker_not_eligible"),
        "{st}"
    );

    // Control: once the verified lease runs out, the next honest taker writes the
    // next epoch over the junk. b, not the holder, calls it expired after it has
    // seen the lease file unchanged for the ttl (the junk push changed it).
    common::sleep_until_wall(
        common::lease_expiry(&st["leader"]) + chrono::Duration::milliseconds(500),
    );
    let unchanged = std::time::Duration::from_millis(2500);
    std::thread::sleep(unchanged.saturating_sub(seen.elapsed()));
    let s = sync(&b);
    let taken = now_trusted + 1;
    assert_eq!(s["leader"]["leader_id"], "b", "{s}");
    assert_eq!(s["leader"]["epoch"], taken, "{s}");
    let on_remote: Lease = serde_json::from_str(&remote_file(&env, "w2", LEASE)).unwrap();
    assert_eq!(
        (on_remote.leader_id.as_str(), on_remote.epoch),
        ("b", taken)
    );
    assert!(on_remote.sig.is_some());
    sync(&a);
    assert_eq!(status(&a)["leader"]["epoch"], taken);
}

/// Lane `lane-a` whose start argv appends a line to `record`.
fn with_lane(root: &Path, record: &Path) {
    let cfg = root.join("mesh.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        "\n[[lanes]]\nid = \"lane-a\"\nscaling_rank = 1\n\
start = [\"sh\", \"-c\", \"echo \\\"started $GITMESH_COMMAND_ID\\\" >> \\\"$0\\\"\", \"{r}\"]\n\
stop = [\"sh\", \"-c\", \"echo \\\"stopped $GITMESH_COMMAND_ID\\\" >> \\\"$0\\\"\", \"{r}\"]\n",
        r = record.display()
    ));
    std::fs::write(cfg, text).unwrap();
}

fn command(root: &Path, id: &str, epoch: u64, leader: &str, target: &str) {
    let payload = json!({"command_id": id, "action": "scale_up", "target_lane": "lane-a",
        "leader_epoch": epoch, "leader_id": leader, "target_node": target});
    publish_event(
        root,
        "scaling",
        "command.requested",
        &["--payload-json", &payload.to_string()],
    );
}

fn outcome(root: &Path, id: &str) -> String {
    let text = std::fs::read_to_string(root.join("artifacts/event_mesh/commands.ndjson"))
        .unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["command_id"] == id)
        .map(|l| l["outcome"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn a_command_from_a_non_leader_peer_is_refused_and_the_leaders_command_runs() {
    let env = TestEnv::with_remote();
    let a = strict(&env, "a");
    let [b, c] = [strict(&env, "b"), strict(&env, "c")];
    enroll(&a, "b", &b, &["member"]);
    enroll(&a, "c", &c, &["member"]);
    let s = sync(&a);
    assert_eq!(s["leader"]["epoch"], 1, "{s}");
    let record = env.path().join("b-lanes.log");
    with_lane(&b, &record);
    sync(&b);

    // c, an enrolled member, publishes commands naming the leader: one at the leader's
    // epoch, one at the largest epoch a payload can carry (2^53 - 1; publish refuses
    // u64::MAX as a number that does not round-trip), which would fence the real
    // leader out if applied.
    command(&c, "cmd_forged", 1, "a", "b");
    command(&c, "cmd_poison", (1u64 << 53) - 1, "a", "b");
    sync(&c);
    sync(&b);
    assert_eq!(outcome(&b, "cmd_forged"), "rejected_not_leader_signed");
    assert_eq!(outcome(&b, "cmd_poison"), "rejected_unverified_epoch");
    assert!(!record.exists());

    // Control: the leader's own command runs.
    command(&a, "cmd_real", 1, "a", "b");
    sync(&a);
    sync(&b);
    assert_eq!(outcome(&b, "cmd_real"), "applied");
    let lines = std::fs::read_to_string(&record).unwrap();
    assert_eq!(lines.trim(), "started cmd_real");
}
