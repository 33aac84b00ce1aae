//! Ledger growth: compaction into monthly archives, and joining an old mesh from a date.

use crate::common::{TestEnv, event_ids, field, git, json_ok, publish_batch, set_config_key, sync};
use crate::daemon_support::{Daemon, parse_prometheus, poll_until};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn ids(root: &Path) -> BTreeSet<String> {
    ids_of(root, &[])
}

/// Event ids listed by an `events` query.
fn ids_of(root: &Path, query: &[&str]) -> BTreeSet<String> {
    event_ids(root, query).into_iter().collect()
}

fn files(remote: &Path, rev: &str) -> Vec<String> {
    git(remote, &["ls-tree", "-r", "--name-only", rev])
        .lines()
        .map(str::to_string)
        .collect()
}

fn batches_of(files: &[String], node: &str) -> (usize, usize) {
    let prefix = format!("event_mesh/outbox/{node}/");
    let own: Vec<&String> = files.iter().filter(|f| f.starts_with(&prefix)).collect();
    let archives = own.iter().filter(|f| f.contains("/archive-")).count();
    (own.len() - archives, archives)
}

fn compaction(mode: &str) {
    let env = TestEnv::with_remote();
    let rev = if mode == "per-node-refs" {
        "gitmesh/a"
    } else {
        "main"
    };
    let [a, b, c] = ["a", "b", "c"].map(|n| env.node_with(n, &["--ledger-mode", mode]));
    for round in 0..3 {
        publish_batch(&a, 5, &format!("r{round}"));
        sync(&a);
    }
    sync(&b);
    sync(&a);
    // c has imported nothing of a: it holds every batch back.
    let r = json_ok(&a, &["ledger", "compact"]);
    assert_eq!(r["archived_batches"], 0, "{r}");
    assert_eq!(r["held_back_by"][0][0], "c", "{r}");
    sync(&c);
    sync(&a);
    publish_batch(&a, 4, "late");
    sync(&a);
    sync(&c);
    sync(&a);
    // b has not imported the last batch: only the first three are archived.
    let r = json_ok(&a, &["ledger", "compact"]);
    assert_eq!(r["archived_batches"], 3, "{r}");
    assert_eq!(r["watermark"], 15, "{r}");
    assert_eq!(r["remaining_batches"], 1, "{r}");
    let v = sync(&a);
    assert_eq!(v["push"]["pushed"], true, "{v}");
    let (batches, archives) = batches_of(&files(env.remote(), rev), "a");
    assert_eq!(
        (batches, archives),
        (1, 1),
        "the lagging node's batch stays"
    );
    // Every node still converges, including b which had not imported the last batch.
    for r in [&b, &c, &a, &b, &c] {
        sync(r);
    }
    let all = ids(&a);
    assert_eq!(all.len(), 19);
    assert_eq!(ids(&b), all);
    assert_eq!(ids(&c), all);
    // A node joining after compaction gets everything, from the archive and the batch.
    let d = env.node_with("d", &["--ledger-mode", mode]);
    let v = sync(&d);
    assert_eq!(v["import"]["imported_events"], 19, "{v}");
    assert_eq!(ids(&d), all);
    // Peers that already hold the archived events skip the archive unread.
    publish_batch(&a, 2, "more");
    sync(&a);
    let v = sync(&b);
    assert_eq!(v["import"]["imported_events"], 2, "{v}");
    assert_eq!(v["import"]["duplicate_events"], 0, "{v}");
    // Batches rolled into an archive are gone by design: no peer calls it a rewrite.
    for n in [&b, &c, &d] {
        let st = json_ok(n, &["mesh-status"]);
        assert_eq!(st["rewrite_alerts"], serde_json::json!([]), "{st}");
        assert_eq!(st["quarantined"], 0, "{st}");
    }
    // A peer stale beyond the retention is reported and no longer waited for.
    set_config_key(&a, "retention", "\"1s\"");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let r = json_ok(&a, &["ledger", "compact"]);
    let stale = field(r["stale_peers"].as_array().unwrap(), "node_id");
    assert!(!stale.is_empty(), "{r}");
    assert_eq!(r["remaining_batches"], 0, "{r}");
    sync(&a);
    let (batches, archives) = batches_of(&files(env.remote(), rev), "a");
    assert_eq!(batches, 0);
    assert!(archives >= 2);
    let e = env.node_with("e", &["--ledger-mode", mode]);
    sync(&e);
    assert_eq!(ids(&e), ids(&a));
}

#[test]
fn compaction_keeps_unimported_batches_and_new_nodes_get_everything() {
    compaction("shared-branch");
}

#[test]
fn compaction_in_per_node_ref_mode() {
    compaction("per-node-refs");
}

#[test]
fn sync_compacts_by_itself_past_the_threshold() {
    let env = TestEnv::with_remote();
    let a = env.node("a");
    set_config_key(&a, "compact_after_files", "3");
    for round in 0..2 {
        publish_batch(&a, 2, &format!("r{round}"));
        let v = sync(&a);
        assert!(v.get("compact").is_none(), "{v}");
    }
    publish_batch(&a, 2, "r2");
    let v = sync(&a);
    assert_eq!(v["compact"]["archived_batches"], 3, "{v}");
    assert_eq!(batches_of(&files(env.remote(), "main"), "a"), (0, 1));
}

/// Nodes a and b on one fresh remote; a compacts by itself past `threshold` batches.
fn pair(threshold: &str) -> (TestEnv, PathBuf, PathBuf) {
    let env = TestEnv::with_remote();
    let [a, b] = env.nodes(["a", "b"]);
    set_config_key(&a, "compact_after_files", threshold);
    (env, a, b)
}

#[test]
fn automatic_compaction_waits_until_half_the_threshold_is_archivable() {
    let (env, a, b) = pair("4");
    publish_batch(&a, 2, "r0");
    sync(&a);
    sync(&b); // b holds the watermark at a's first batch
    for round in 1..4 {
        publish_batch(&a, 2, &format!("r{round}"));
        sync(&a);
    }
    // Four batches reach the threshold, but only one is archivable: no tiny archive.
    let v = sync(&a);
    assert_eq!(v["compact"]["archived_batches"], 0, "{v}");
    assert_eq!(v["compact"]["held_back_by"][0][0], "b", "{v}");
    assert_eq!(batches_of(&files(env.remote(), "main"), "a"), (4, 0));
    let vb = sync(&b);
    let v = sync(&a);
    assert_eq!(v["compact"]["archived_batches"], 4, "{v} {vb}");
    assert_eq!(batches_of(&files(env.remote(), "main"), "a"), (0, 1));
}

#[test]
fn the_daemon_compacts_past_the_threshold_and_a_late_joiner_gets_everything() {
    let (env, a, b) = pair("3");
    let d = Daemon::start(&a, &["--interval", "300ms"]);
    let rounds = 6;
    for round in 0..rounds {
        publish_batch(&a, 2, &format!("d{round}"));
        poll_until("the daemon exports the batch", || {
            (json_ok(&a, &["mesh-status"])["pending_export"] == 0).then_some(())
        });
        // The live peer imports, so the watermark follows a's exports.
        sync(&b);
    }
    let archives = poll_until("an archive of a's batches on the remote", || {
        let (_, archives) = batches_of(&files(env.remote(), "main"), "a");
        (archives > 0).then_some(archives)
    });
    assert!(archives >= 1);
    // Every batch the daemon exported is either still in the outbox or was archived.
    let compacted = poll_until("the daemon counts what it compacted", || {
        let m = parse_prometheus(&d.get("/metrics")).unwrap();
        let (batches, _) = batches_of(&files(env.remote(), "main"), "a");
        let n = m.value("gitmesh_compacted_batches_total", &[])?;
        (n as usize + batches == rounds).then_some(n)
    });
    assert!(compacted >= 2.0, "{compacted}");
    drop(d);
    // b's last sync in the loop may have run between the daemon's export and its push.
    sync(&b);
    let c = env.node("c");
    sync(&c);
    let own_a = ids_of(&a, &["--node", "a"]);
    assert_eq!(own_a.len(), rounds * 2);
    assert!(ids(&c).is_superset(&own_a), "c misses archived events");
    assert!(ids(&b).is_superset(&own_a), "b misses events");
}

#[test]
fn a_node_joining_from_a_date_fetches_shallow_and_skips_older_batches() {
    let env = TestEnv::with_remote();
    let a = env.node("a");
    for round in 0..3 {
        publish_batch(&a, 3, &format!("r{round}"));
        sync(&a);
    }
    let today = chrono::Utc::now().date_naive();
    let tomorrow = (today + chrono::Days::new(1)).to_string();
    let future = env.node_with("f", &["--since", &tomorrow]);
    let v = sync(&future);
    assert_eq!(v["import"]["imported_events"], 0, "{v}");
    let today = today.to_string();
    let d = env.node_with("d", &["--since", &today]);
    let shallow = git(
        &d.join("state/github_coordination"),
        &["rev-parse", "--is-shallow-repository"],
    );
    assert_eq!(shallow.trim(), "true");
    let v = sync(&d);
    assert_eq!(v["import"]["imported_events"], 9, "{v}");
    // Incremental tree diffs and pushes keep working on the shallow clone.
    publish_batch(&a, 4, "after");
    sync(&a);
    publish_batch(&d, 1, "from-d");
    let v = sync(&d);
    assert_eq!(v["import"]["imported_events"], 4, "{v}");
    assert_eq!(v["push"]["pushed"], true, "{v}");
    sync(&a);
    assert_eq!(ids(&a), ids(&d));
    let toml = std::fs::read_to_string(d.join("mesh.toml")).unwrap();
    assert!(toml.contains(&format!("since = \"{today}\"")), "{toml}");
}
