//! What a sync puts into and takes out of the ledger: batch files and their
//! layout, size limits, staged schemas, older layouts, and quarantined peer input.

use crate::common;
use crate::common::mesh::Work;
use crate::common::{
    TestEnv, event_ids, field, git, gm, json_ok, parse_json, printed, publish_batch, sync,
};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

#[test]
fn max_events_splits_export_and_import_and_both_resume() {
    let env = TestEnv::with_remote();
    let [a, b] = env.nodes(["a", "b"]);
    publish_batch(&a, 25, "x");
    let v = json_ok(&a, &["mesh-export", "--max-events", "10"]);
    assert_eq!(v["exported_events"], 10);
    assert_eq!(v["complete"], false);
    let v = json_ok(&a, &["mesh-export"]);
    assert_eq!(v["exported_events"], 15);
    assert_eq!(v["exported_through_seq"], 25);
    assert_eq!(json_ok(&a, &["mesh-export"])["exported_events"], 0);
    sync(&a);
    json_ok(&b, &["mesh-sync", "--no-push", "--max-events", "0"]);
    let v = json_ok(&b, &["mesh-import", "--max-events", "5"]);
    assert_eq!(v["imported_events"], 10, "whole batch files are imported");
    assert_eq!(v["complete"], false);
    let v = json_ok(&b, &["mesh-import"]);
    assert_eq!(v["imported_events"], 15);
    assert_eq!(v["complete"], true);
    assert_eq!(json_ok(&b, &["mesh-import"])["imported_events"], 0);
    assert_eq!(event_ids(&b, &[]).len(), 25);
}

#[test]
fn staged_schemas_are_carried_into_the_ledger() {
    let env = TestEnv::with_remote();
    let a = env.node("a");
    let staged = a.join("state/event_mesh/schema_outbox/monitoring/test.tick");
    std::fs::create_dir_all(&staged).unwrap();
    std::fs::write(staged.join("v1.json"), "{\"type\":\"object\"}\n").unwrap();
    let v = sync(&a);
    assert_eq!(v["export"]["schemas"][0], "monitoring/test.tick/v1.json");
    let shown = git(
        env.remote(),
        &[
            "show",
            "main:event_mesh/schemas/monitoring/test.tick/v1.json",
        ],
    );
    assert_eq!(shown.trim(), "{\"type\":\"object\"}");
    assert!(
        !staged.join("v1.json").exists(),
        "pushed files leave the staging area"
    );
}

/// Exported batches land in day directories with 12-digit names and stay the same bytes as the log.
#[test]
fn batches_follow_the_documented_layout() {
    let env = TestEnv::with_remote();
    let a = env.node("a");
    publish_batch(&a, 3, "x");
    sync(&a);
    let files = git(
        env.remote(),
        &[
            "ls-tree",
            "-r",
            "--name-only",
            "main",
            "event_mesh/outbox/a",
        ],
    );
    let lines: Vec<&str> = files.lines().collect();
    assert_eq!(lines.len(), 1, "{files}");
    let name = lines[0];
    let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    // `<seq>.<first 16 hex digits of the BLAKE3 hash of the file>.ndjson`.
    let body = git(env.remote(), &["show", &format!("main:{name}")]);
    let hash = blake3::hash(body.as_bytes()).to_hex();
    assert_eq!(
        name,
        format!(
            "event_mesh/outbox/a/{day}/000000000001.{}.ndjson",
            &hash[..16]
        )
    );
    // The batch holds the log's events, each signed at export time.
    let batch = git(env.remote(), &["show", &format!("main:{name}")]);
    let log = std::fs::read_to_string(a.join("artifacts/event_mesh/events.ndjson")).unwrap();
    let unsigned: Vec<Value> = batch
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            let sig = v.as_object_mut().unwrap().remove("sig").unwrap();
            assert_eq!(sig.as_str().unwrap().len(), 128, "hex ed25519 signature");
            v
        })
        .collect();
    let logged: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(unsigned, logged);
    let manifest: Value = serde_json::from_str(&git(
        env.remote(),
        &["show", "main:event_mesh/nodes/a.json"],
    ))
    .unwrap();
    assert_eq!(manifest["exported_through_seq"], 3);
    assert_eq!(manifest["node_id"], "a");
}

/// The log lines of `n` events of node `name`, published on a root outside the mesh.
fn foreign_lines(env: &TestEnv, name: &str, n: usize, tag: &str) -> Vec<String> {
    let root = env.path().join(format!("{name}-src"));
    json_ok(&root, &["mesh-init", "--node-id", name]);
    publish_batch(&root, n, tag);
    std::fs::read_to_string(root.join("artifacts/event_mesh/events.ndjson"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Quarantine reasons by file name in a node root.
fn quarantine_reasons(root: &Path) -> HashMap<String, String> {
    let dir = root.join("state/event_mesh/quarantine");
    let mut out = HashMap::new();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(item) = name.strip_suffix(".reason") {
            let text = std::fs::read_to_string(e.path()).unwrap();
            let code = text.split(':').next().unwrap().to_string();
            out.insert(item.to_string(), code);
        }
    }
    out
}

#[test]
fn bad_peers_are_quarantined_and_the_import_goes_on() {
    let env = TestEnv::with_remote();
    let victim = env.node("victim");
    // Real events of two other nodes, crafted into a hostile outbox by hand.
    let evil_lines = foreign_lines(&env, "evil", 4, "e");
    let other_line = foreign_lines(&env, "other", 1, "o").remove(0);

    let work = Work::clone(&env.url(), &env.path().join("work"));
    let d = work.dir.join("event_mesh/outbox/evil/2026-01-01");
    std::fs::create_dir_all(&d).unwrap();
    // seq 1 valid, then a truncated line.
    let truncated = &evil_lines[1][..evil_lines[1].len() / 2];
    std::fs::write(
        d.join("000000000001.ndjson"),
        format!("{}\n{truncated}\n", evil_lines[0]),
    )
    .unwrap();
    // seq 2 with its payload changed: the id no longer matches.
    let tampered = evil_lines[1].replace("\"tag\":\"e\"", "\"tag\":\"forged\"");
    assert_ne!(tampered, evil_lines[1]);
    std::fs::write(d.join("000000000002.ndjson"), format!("{tampered}\n")).unwrap();
    // seq 4 valid, with a gap at 3; then another node's event in evil's outbox.
    std::fs::write(
        d.join("000000000004.ndjson"),
        format!("{}\n{other_line}\n", evil_lines[3]),
    )
    .unwrap();
    // A 10 MB line.
    std::fs::write(d.join("000000000005.ndjson"), "x".repeat(10 << 20) + "\n").unwrap();
    // A symlink.
    std::os::unix::fs::symlink("/etc/passwd", d.join("000000000006.ndjson")).unwrap();
    // Not UTF-8.
    std::fs::write(
        d.join("000000000007.ndjson"),
        b"{\"event_id\":\"\xff\xfe\"}\n",
    )
    .unwrap();
    work.commit_push("hostile peer");

    let v = sync(&victim);
    // seq 1 is imported; seq 4 waits behind the missing 2..3 (held, not skipped).
    assert_eq!(v["import"]["imported_events"], 1, "{v}");
    assert_eq!(v["import"]["held"][0]["first_seq"], 4, "{v}");
    assert_eq!(v["import"]["quarantined"], 6, "{v}");
    assert_eq!(v["import"]["scanned_files"], 6, "{v}");
    let mut codes = field(v["import"]["rejected"].as_array().unwrap(), "reason");
    codes.sort();
    assert_eq!(
        codes,
        [
            "file_too_large",
            "id_mismatch",
            "invalid_json",
            "not_utf8",
            "symlink",
            "wrong_node"
        ]
    );
    let on_disk: BTreeSet<String> = quarantine_reasons(&victim).into_values().collect();
    assert_eq!(on_disk.len(), 6, "{on_disk:?}");
    let st = json_ok(&victim, &["mesh-status"]);
    assert_eq!(st["quarantined"], 6);
    assert_eq!(st["imported_event_count"], 1);
    assert_eq!(st["held_files"], 1);
    assert_eq!(st["gaps"][0]["node_id"], "evil");
    assert_eq!(
        (
            st["gaps"][0]["from_seq"].as_u64(),
            st["gaps"][0]["to_seq"].as_u64()
        ),
        (Some(2), Some(3))
    );
    let human = printed(&victim, &["mesh-status"]);
    assert!(human.contains("gap       evil seq 2..3 missing"), "{human}");
    // Nothing big was copied into quarantine.
    for e in std::fs::read_dir(victim.join("state/event_mesh/quarantine"))
        .unwrap()
        .flatten()
    {
        assert!(e.metadata().unwrap().len() <= 64 * 1024);
    }
    // A later import does not read those files again.
    let v = sync(&victim);
    assert_eq!(v["import"]["quarantined"], 0);
    assert_eq!(v["import"]["scanned_files"], 0);
}

#[test]
fn seed_era_one_file_per_event_layout_is_imported() {
    let env = TestEnv::with_remote();
    let a = env.node("a");
    let lines: Vec<Value> = foreign_lines(&env, "seed", 2, "s")
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let work = Work::clone(&env.url(), &env.path().join("work"));
    let d = work.dir.join("event_mesh/outbox/seed");
    std::fs::create_dir_all(&d).unwrap();
    for ev in &lines {
        let id = ev["event_id"].as_str().unwrap();
        std::fs::write(
            d.join(format!("{id}.json")),
            serde_json::to_string_pretty(ev).unwrap(),
        )
        .unwrap();
    }
    // A file whose name is not its event.
    let wrong = format!("evt_{}", "0".repeat(32));
    std::fs::write(
        d.join(format!("{wrong}.json")),
        serde_json::to_string(&lines[0]).unwrap(),
    )
    .unwrap();
    work.commit_push("seed-era files");
    let v = sync(&a);
    assert_eq!(v["import"]["imported_events"], 2, "{v}");
    assert_eq!(v["import"]["quarantined"], 1);
    assert_eq!(v["import"]["rejected"][0]["reason"], "name_mismatch");
}

#[test]
fn large_exports_are_split_into_files_under_one_megabyte() {
    let env = TestEnv::with_remote();
    let [a, b] = env.nodes(["a", "b"]);
    let filler = "lorem ipsum dolor sit amet ".repeat(2000);
    let mut input = String::new();
    for i in 0..60 {
        input.push_str(&format!(
            "{{\"topic\":\"monitoring\",\"event_type\":\"big.note\",\"payload\":{{\"i\":{i},\"text\":\"{filler}\"}}}}\n"
        ));
    }
    let mut c = gm(&a);
    c.args(["--json", "mesh-publish", "--stdin"]);
    assert_eq!(
        parse_json(&common::run_with_stdin(c, input.as_bytes()))["published"],
        60
    );
    let v = sync(&a);
    let batches = v["export"]["batches"].as_array().unwrap();
    assert!(batches.len() >= 4, "{v}");
    for f in batches {
        let size = git(
            env.remote(),
            &["cat-file", "-s", &format!("main:{}", f.as_str().unwrap())],
        );
        assert!(
            size.trim().parse::<u64>().unwrap() < 1_000_000,
            "{f} is {size} bytes"
        );
    }
    sync(&b);
    assert_eq!(event_ids(&b, &[]).len(), 60);
}
