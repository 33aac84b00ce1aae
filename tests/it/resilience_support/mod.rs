//! Shared pieces of the crash, race and convergence tests: a seeded RNG, node
//! configuration with a real lane argv, and readers that check the files a user
//! would check (every log line, every batch file on the remote).

use crate::common::{TestEnv, field, gm, json_ok, publish_event};
pub use crate::common::{git, sync_code};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

/// xorshift64*: small, seeded, reproducible.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is replaced by a constant).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..hi` (hi exclusive, hi > lo).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
    /// True with probability `pct` percent.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.range(0, 100) < pct
    }
}

/// The seed for a test: `GITMESH_SEED` if set, else derived from the clock; printed.
pub fn seed(test: &str) -> u64 {
    let s = std::env::var("GITMESH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("{test}: seed {s} (rerun with GITMESH_SEED={s})");
    s
}

/// An env var as a number, else `default`.
pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Writes a full `mesh.toml`: remote, lease ttl, peers trusted on first use
/// (`[mesh] trust = "open"`, as every node of a test mesh), and two lanes whose
/// start/stop argv append `started|stopped <lane> <command id>` to `lane_record`.
pub fn write_config(root: &Path, node: &str, remote: &Path, lease_ttl: &str, lane_record: &Path) {
    let rec = lane_record.display();
    let mut s = format!(
        "node_id = \"{node}\"\ncapabilities = [\"scheduling\", \"routing\"]\n\n[ledger]\nremote = \"{}\"\nbranch = \"main\"\n\n[sync]\npush_retries = 8\ninterval = \"500ms\"\nlease_ttl = \"{lease_ttl}\"\nlock_wait = \"60s\"\n\n[mesh]\ntrust = \"open\"\n",
        remote.display()
    );
    for (id, rank) in [("lane-a", 1), ("lane-b", 2)] {
        s.push_str(&format!(
            "\n[[lanes]]\nid = \"{id}\"\nscaling_rank = {rank}\n\
start = [\"sh\", \"-c\", \"echo \\\"started $GITMESH_LANE_ID $GITMESH_COMMAND_ID\\\" >> \\\"$0\\\"\", \"{rec}\"]\n\
stop = [\"sh\", \"-c\", \"echo \\\"stopped $GITMESH_LANE_ID $GITMESH_COMMAND_ID\\\" >> \\\"$0\\\"\", \"{rec}\"]\n"
        ));
    }
    std::fs::write(root.join("mesh.toml"), s).unwrap();
}

/// Creates node `name` on the environment's remote with the test configuration.
pub fn node(env: &TestEnv, name: &str, lease_ttl: &str) -> PathBuf {
    let root = env.node(name);
    write_config(&root, name, env.remote(), lease_ttl, &lane_record(&root));
    root
}

/// Where a node's lanes record their start/stop runs.
pub fn lane_record(root: &Path) -> PathBuf {
    root.join("lanes.log")
}

/// Every file of the log in order: sealed segments, then the active file.
fn log_files(root: &Path) -> Vec<PathBuf> {
    let base = root.join("artifacts/event_mesh");
    let mut segs: Vec<PathBuf> = std::fs::read_dir(base.join("segments"))
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
                .collect()
        })
        .unwrap_or_default();
    segs.sort();
    segs.push(base.join("events.ndjson"));
    segs
}

/// What the raw log files hold.
pub struct RawLog {
    /// Every complete line, parsed (panics on a complete line that is not an event).
    pub events: Vec<Value>,
    /// Bytes after the last newline of the active file (a torn tail awaiting repair).
    pub torn_tail: usize,
}

/// Reads the log files directly; every newline-terminated line must be an event.
pub fn raw_log(root: &Path) -> RawLog {
    let mut events = Vec::new();
    let mut torn_tail = 0;
    let files = log_files(root);
    for (i, f) in files.iter().enumerate() {
        let bytes = std::fs::read(f).unwrap_or_default();
        let last = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        for line in bytes[..last]
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
        {
            let v: Value = serde_json::from_slice(line).unwrap_or_else(|e| {
                panic!(
                    "{}: a complete line is not JSON ({e}): {}",
                    f.display(),
                    String::from_utf8_lossy(line)
                )
            });
            assert!(
                v["event_id"].is_string(),
                "{}: not an event: {v}",
                f.display()
            );
            events.push(v);
        }
        if i + 1 == files.len() {
            torn_tail = bytes.len() - last;
        } else {
            assert_eq!(
                last,
                bytes.len(),
                "{}: sealed segment ends mid-line",
                f.display()
            );
        }
    }
    RawLog { events, torn_tail }
}

/// Checks one node's log: unique ids, and its own events form the seq/prev chain 1..n.
pub fn check_log(root: &Path, node: &str) -> Vec<Value> {
    let log = raw_log(root);
    let mut ids = HashSet::new();
    for e in &log.events {
        assert!(
            ids.insert(e["event_id"].as_str().unwrap().to_string()),
            "{node}: event twice in the log: {e}"
        );
    }
    check_chains(node, &log.events);
    log.events
}

/// Every origin's events, in seq order, are 1..n with each `prev` the previous id.
pub fn check_chains(label: &str, events: &[Value]) {
    let mut by_node: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for e in events {
        by_node
            .entry(e["node_id"].as_str().unwrap().to_string())
            .or_default()
            .push(e);
    }
    for (n, mut evs) in by_node {
        evs.sort_by_key(|e| e["seq"].as_u64().unwrap());
        let mut prev = String::new();
        for (i, e) in evs.iter().enumerate() {
            assert_eq!(
                e["seq"].as_u64().unwrap(),
                i as u64 + 1,
                "{label}: seq of {n}: {e}"
            );
            assert_eq!(
                e["prev"].as_str().unwrap(),
                prev,
                "{label}: prev chain of {n}: {e}"
            );
            prev = e["event_id"].as_str().unwrap().to_string();
        }
    }
}

/// The ids of a node's events (through the log files).
pub fn id_set(root: &Path) -> BTreeSet<String> {
    field(&raw_log(root).events, "event_id")
        .into_iter()
        .map(String::from)
        .collect()
}

/// Checks the remote: linear history, and every batch file in its tree parses fully,
/// belongs to its node, is named by its first seq and holds consecutive seqs.
/// Returns (batch files, events in them).
pub fn check_remote(remote: &Path) -> (usize, usize) {
    let merges = git(remote, &["rev-list", "--merges", "main"]);
    assert!(
        merges.trim().is_empty(),
        "merge commits on the remote: {merges}"
    );
    let files = git(remote, &["ls-tree", "-r", "--name-only", "main"]);
    let (mut batches, mut events) = (0, 0);
    for path in files
        .lines()
        .filter(|p| p.ends_with(".ndjson") && p.contains("/outbox/"))
    {
        let body = git(remote, &["cat-file", "-p", &format!("main:{path}")]);
        assert!(
            body.ends_with('\n'),
            "{path}: batch does not end with a newline"
        );
        let node = path.split('/').nth(2).unwrap();
        let first: u64 = path
            .rsplit('/')
            .next()
            .and_then(gitmesh::ledger::export::batch_first_seq)
            .unwrap();
        for (i, line) in body.lines().enumerate() {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{path} line {}: partial or broken ({e})", i + 1));
            assert_eq!(v["node_id"], node, "{path}: foreign event");
            assert_eq!(
                v["seq"].as_u64().unwrap(),
                first + i as u64,
                "{path}: seqs not consecutive"
            );
            events += 1;
        }
        batches += 1;
    }
    (batches, events)
}

/// A child `gitmesh --json ARGS` on a root, stdout captured.
pub fn spawn(root: &Path, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Child {
    let mut c = gm(root);
    c.arg("--json")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    if stdin.is_some() {
        c.stdin(Stdio::piped());
    }
    let mut child = c.spawn().unwrap();
    if let Some(s) = stdin {
        use std::io::Write;
        let mut i = child.stdin.take().unwrap();
        // A write error means the child was killed already: that is the test.
        let _ = i.write_all(s.as_bytes());
    }
    child
}

/// Syncs every node in rounds until all hold the same ids (at most `max` rounds);
/// returns the number of rounds taken.
pub fn converge(roots: &[PathBuf], max: usize) -> usize {
    for round in 1..=max {
        for r in roots {
            sync_code(r);
        }
        let first = id_set(&roots[0]);
        if roots.iter().all(|r| id_set(r) == first) {
            return round;
        }
    }
    let sets: Vec<usize> = roots.iter().map(|r| id_set(r).len()).collect();
    panic!("no convergence after {max} rounds: event counts {sets:?}");
}

/// Derived state a user compares between nodes: per event type of
/// decisions, selections and commands, the set of ids.
pub fn derived(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in raw_log(root).events {
        let t = e["event_type"].as_str().unwrap();
        if matches!(
            t,
            "route.selected"
                | "route.blocked"
                | "decision.made"
                | "command.requested"
                | "command.applied"
                | "command.rejected"
        ) {
            m.entry(t.to_string())
                .or_default()
                .insert(e["event_id"].as_str().unwrap().to_string());
        }
    }
    m
}

/// Checks the mesh-wide derived invariants over one node's (converged) event set:
/// every follow-up is produced once per (cause, type, handler), and `commands.ndjson`
/// and the lane records of every node apply a command id at most once.
/// Returns (follow-ups, applied commands).
pub fn check_effects(events: &[Value], roots: &[PathBuf]) -> (usize, usize) {
    let mut per_cause: HashMap<(String, String, String), usize> = HashMap::new();
    let mut followups = 0;
    for e in events.iter().filter(|e| e["source"] == "mesh-dispatch") {
        let t = e["event_type"].as_str().unwrap().to_string();
        // A second leader may re-issue a decision as its own command; the actuator
        // rejects the copy by command id, checked below.
        if t == "command.requested" {
            continue;
        }
        let k = (
            e["causation_id"].as_str().unwrap().to_string(),
            t,
            e["handler"].as_str().unwrap_or("").to_string(),
        );
        *per_cause.entry(k).or_default() += 1;
        followups += 1;
    }
    for (k, n) in &per_cause {
        assert_eq!(*n, 1, "follow-up duplicated: {k:?}");
    }
    let mut applied = 0;
    for r in roots {
        let p = r.join("artifacts/event_mesh/commands.ndjson");
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{}: torn audit line",
            p.display()
        );
        let mut seen_ev = HashSet::new();
        let mut ran = HashSet::new();
        for line in text.lines() {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: bad line ({e}): {line}", p.display()));
            assert!(
                seen_ev.insert(v["event_id"].as_str().unwrap().to_string()),
                "{}: command event audited twice: {line}",
                p.display()
            );
            if matches!(v["outcome"].as_str(), Some("applied" | "interrupted")) {
                assert!(
                    ran.insert(v["command_id"].as_str().unwrap().to_string()),
                    "{}: command applied twice: {line}",
                    p.display()
                );
                applied += 1;
            }
        }
        let lanes = std::fs::read_to_string(lane_record(r)).unwrap_or_default();
        let mut runs = HashSet::new();
        for line in lanes.lines() {
            let cmd = line.rsplit(' ').next().unwrap().to_string();
            assert!(
                runs.insert(cmd),
                "{}: lane argv ran twice for one command: {line}",
                r.display()
            );
        }
    }
    (followups, applied)
}

/// Publishes a `heartbeat.changed` event with `payload`; returns its id.
pub fn heartbeat(root: &Path, payload: &str) -> String {
    let v = publish_event(
        root,
        "monitoring",
        "heartbeat.changed",
        &["--payload-json", payload],
    );
    v["event_id"].as_str().unwrap().to_string()
}

/// `mesh-status --json` of a node.
pub fn status(root: &Path) -> Value {
    json_ok(root, &["mesh-status"])
}
