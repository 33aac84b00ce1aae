//! Attacks on what a node stores and owns, written with plain `git` by anyone with push
//! access (or signed by an enrolled peer gone bad), each beside a control proving the
//! legitimate path still works. The catalogue is docs/security.md.

use crate::common::mesh::*;
use crate::common::{TestEnv, git, json_ok, printed, publish_event, set_config_key, sync};
use crate::daemon_support::{Daemon, parse_prometheus};
use serde_json::Value;
use std::path::Path;

/// The stored payload text of event `id` in `root`'s log (key order as stored).
fn stored_payload(root: &Path, id: &str) -> Option<String> {
    let log = String::from_utf8(log_bytes(root)).unwrap();
    log.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["event_id"] == id)
        .map(|v| v["payload"].to_string())
}

/// The one batch file of `node` on the remote.
fn only_batch(remote: &Path, node: &str) -> String {
    let files = git(
        remote,
        &[
            "ls-tree",
            "-r",
            "--name-only",
            "main",
            &format!("event_mesh/outbox/{node}"),
        ],
    );
    let batches: Vec<&str> = files.lines().filter(|f| f.ends_with(".ndjson")).collect();
    assert_eq!(batches.len(), 1, "{files}");
    batches[0].to_string()
}

#[test]
fn a_rewritten_number_never_imports_under_the_signed_id() {
    let env = TestEnv::with_remote();
    let [p, control, victim] = env.nodes(["p", "control", "victim"]);
    // Published with keys out of order and `2.0`: stored sorted and as `2`.
    publish_event(
        &p,
        "monitoring",
        "test.tick",
        &["--payload-json", r#"{"tag":"a","n":1}"#],
    );
    publish_event(
        &p,
        "monitoring",
        "test.tick",
        &["--payload-json", r#"{"tag":"b","n":2.0}"#],
    );
    let [e1, e2] = [&own_events(&p, "p")[0], &own_events(&p, "p")[1]].map(|e| e.event_id.clone());
    assert_eq!(stored_payload(&p, &e1).unwrap(), r#"{"n":1,"tag":"a"}"#);
    assert_eq!(stored_payload(&p, &e2).unwrap(), r#"{"n":2,"tag":"b"}"#);
    sync(&p);
    // Control: the genuine batch imports, byte for byte.
    let v = sync(&control);
    assert_eq!(v["import"]["imported_events"], 2, "{v}");
    for id in [&e1, &e2] {
        assert_eq!(stored_payload(&control, id), stored_payload(&p, id));
    }

    // The attacker rewrites the pushed lines: keys reordered in the first, `2.0` in the second.
    let work = Work::clone(&env.url(), &env.path().join("work"));
    let batch = only_batch(env.remote(), "p");
    let text = std::fs::read_to_string(work.dir.join(&batch)).unwrap();
    let forged = text
        .replace(
            r#""payload":{"n":1,"tag":"a"}"#,
            r#""payload":{"tag":"a","n":1}"#,
        )
        .replace(
            r#""payload":{"n":2,"tag":"b"}"#,
            r#""payload":{"n":2.0,"tag":"b"}"#,
        );
    assert_ne!(forged, text);
    work.push_files(&[(&batch, forged.as_bytes())], "rewrite numbers");

    let v = sync(&victim);
    assert_eq!(reasons(&v["import"]), ["non_canonical"], "{v}");
    let detail = v["import"]["rejected"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("$.n") && detail.contains("2.0"), "{detail}");
    // The reordered line carries the same signed content: it is stored in the one form.
    assert_eq!(v["import"]["imported_events"], 1, "{v}");
    assert_eq!(stored_payload(&victim, &e1), stored_payload(&p, &e1));
    assert_eq!(stored_payload(&victim, &e2), None);
}

#[test]
fn publish_refuses_numbers_that_do_not_round_trip() {
    let env = TestEnv::new();
    let p = env.node("p");
    for (payload, path) in [
        (r#"{"big":9007199254740992}"#, "$.big"),
        (r#"{"a":[1,-9007199254740993]}"#, "$.a[1]"),
        (r#"{"x":{"f":1e21}}"#, "$.x.f"),
        (r#"{"n":1e300}"#, "$.n"),
    ] {
        let (_code, v) = crate::common::json_err(
            &p,
            &crate::common::publish_args("monitoring", "test.tick", &["--payload-json", payload]),
        );
        let text = v.to_string();
        assert!(
            text.contains("invalid_payload") && text.contains(path),
            "{payload}: {v}"
        );
    }
    // Control: the largest safe integer and a plain fraction publish.
    publish_event(
        &p,
        "monitoring",
        "test.tick",
        &["--payload-json", r#"{"big":9007199254740991,"f":0.5}"#],
    );
}

/// Events of `root` of `topic` as `events --json` lists them (views upcast), or `--raw`.
fn listed(root: &Path, topic: &str, raw: bool) -> Vec<Value> {
    let mut args = vec!["events", "--topic", topic];
    if raw {
        args.push("--raw");
    }
    json_ok(root, &args)["events"].as_array().unwrap().clone()
}

#[test]
fn a_ledger_schema_cannot_redefine_or_upcast_a_builtin_type() {
    let env = TestEnv::with_remote();
    let [p, victim] = env.nodes(["p", "victim"]);
    // The attacker plants a schema no payload satisfies and an upcaster for a scaling type,
    // and a schema blob of 16 MiB that compresses to a few KiB.
    let work = Work::clone(&env.url(), &env.path().join("work"));
    let dir = "event_mesh/schemas/scaling/decision.requested";
    let upcaster = r#"{"type":"object","x-gitmesh-upcast":{"from":1,"steps":[{"rename":{"from":"lanes_count","to":"forged"}}]}}"#;
    let huge = format!("{{\"description\":\"{}\"}}", " ".repeat(16 << 20));
    work.push_files(
        &[
            (&format!("{dir}/v1.json"), br#"{"not":{}}"#),
            (&format!("{dir}/v2.json"), upcaster.as_bytes()),
            (
                "event_mesh/schemas/monitoring/big.one/v1.json",
                huge.as_bytes(),
            ),
        ],
        "plant schemas",
    );
    // The genuine path: a user type's v2 with an upcaster, published by p.
    let src = env.path().join("schemas-src");
    crate::schema_evolution::write(
        &src.join("monitoring/host.seen/v2.json"),
        crate::schema_evolution::V2,
    );
    json_ok(&p, &["schema", "publish", src.to_str().unwrap()]);
    publish_event(
        &p,
        "scaling",
        "decision.requested",
        &[
            "--payload-json",
            r#"{"lanes_count":3,"target_node":"nobody"}"#,
        ],
    );
    let host = crate::schema_evolution::publish_host(&p, serde_json::json!({"host": "h1"}), None);
    sync(&p);

    let v = sync(&victim);
    assert_eq!(v["import"]["imported_events"], 2, "{v}");
    assert!(reasons(&v["import"]).is_empty(), "{v}");
    let list = json_ok(&victim, &["schema", "list"]);
    let refused = list["refused"].as_array().unwrap();
    let why = |file: &str| {
        refused
            .iter()
            .find(|r| r["location"].as_str().unwrap().ends_with(file))
            .map(|r| r["reason"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{file} not refused: {list}"))
    };
    assert!(why("decision.requested/v1.json").contains("built-in type"));
    assert!(why("decision.requested/v2.json").contains("built-in type"));
    assert!(
        why("big.one/v1.json").contains("the cap is 1048576"),
        "{list}"
    );
    let row = crate::common::schema_row(&victim, "decision.requested");
    assert_eq!(row["source"], "builtin", "{row}");
    // The signed scaling event is seen as it was signed: no upcast, no quarantine.
    let seen = listed(&victim, "scaling", false);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["payload"]["lanes_count"], 3, "{seen:?}");
    assert!(seen[0].get("schema_version").is_none(), "{seen:?}");

    // Control: the genuine user-type update applies (the view upcasts through it).
    let row = crate::common::schema_row(&victim, "host.seen");
    assert_eq!(row["source"], "ledger", "{row}");
    let seen = listed(&victim, "monitoring", false);
    let e = seen
        .iter()
        .find(|e| e["event_id"] == host["event_id"])
        .unwrap();
    assert_eq!(e["payload"]["hostname"], "h1", "{e}");
    assert_eq!(e["schema_version"], 2, "{e}");
}

#[test]
fn schema_publish_refuses_a_builtin_type() {
    let env = TestEnv::new();
    let p = env.node("p");
    let src = env.path().join("schemas-src");
    crate::schema_evolution::write(
        &src.join("scaling/command.requested/v2.json"),
        r#"{"type":"object"}"#,
    );
    let (_, v) = crate::common::json_err(&p, &["schema", "publish", src.to_str().unwrap()]);
    assert!(v.to_string().contains("built-in type"), "{v}");
}

/// Nodes `p` and `victim` on one remote, `p` having published and pushed `n` events.
fn two_nodes_p_synced(n: usize) -> (TestEnv, std::path::PathBuf, std::path::PathBuf) {
    let env = TestEnv::with_remote();
    let [p, victim] = env.nodes(["p", "victim"]);
    publish(&p, n, "p");
    sync(&p);
    (env, p, victim)
}

/// The bytes of `rel` on the remote's `main`, if present.
fn remote_file(remote: &Path, rel: &str) -> Option<String> {
    let listed = git(remote, &["ls-tree", "--name-only", "main", rel]);
    (!listed.trim().is_empty()).then(|| git(remote, &["show", &format!("main:{rel}")]))
}

#[test]
fn junk_at_a_nodes_paths_never_blocks_or_replaces_its_batches() {
    let (env, p, victim) = two_nodes_p_synced(2);
    let first = only_batch(env.remote(), "p");
    let genuine = remote_file(env.remote(), &first).unwrap();
    let day = first.split('/').nth(3).unwrap().to_string();
    // The attacker plants files where p's next batch would go (old and new name forms)
    // and rewrites p's pushed batch.
    let work = Work::clone(&env.url(), &env.path().join("work"));
    let old_name = format!("event_mesh/outbox/p/{day}/000000000003.ndjson");
    let new_name = format!("event_mesh/outbox/p/{day}/000000000003.0123456789abcdef.ndjson");
    work.push_files(
        &[
            (&old_name, b"{\"junk\":1}\n"),
            (&new_name, b"{\"junk\":2}\n"),
            (&first, b"{\"junk\":3}\n"),
        ],
        "plant junk at p's paths",
    );

    // p restores its own batch, reports it, and writes its next batch under a new name.
    publish(&p, 1, "next");
    let v = sync(&p);
    assert_eq!(v["push"]["conflicts"], serde_json::json!([first]), "{v}");
    assert_eq!(remote_file(env.remote(), &first).unwrap(), genuine);
    let written = v["export"]["batches"][0].as_str().unwrap().to_string();
    assert!(written != old_name && written != new_name, "{written}");

    // Control: a peer imports all three genuine events in order; the junk is quarantined.
    let v = sync(&victim);
    assert_eq!(v["import"]["imported_events"], 3, "{v}");
    assert_eq!(
        reasons(&v["import"]),
        ["invalid_event", "invalid_event"],
        "{v}"
    );
    assert!(v["import"]["gaps"].as_array().unwrap().is_empty(), "{v}");
    assert!(v["import"]["held"].as_array().unwrap().is_empty(), "{v}");
}

#[test]
fn an_edited_manifest_is_ignored_by_peers_and_restored_by_its_node() {
    let (env, p, victim) = two_nodes_p_synced(2);
    sync(&victim);
    let rel = "event_mesh/nodes/p.json";
    let genuine = remote_file(env.remote(), rel).unwrap();
    let mut m: Value = serde_json::from_str(&genuine).unwrap();
    assert!(m["sig"].is_string(), "manifests are signed: {m}");
    m["exported_through_seq"] = Value::from(1000);
    let work = Work::clone(&env.url(), &env.path().join("work"));
    work.push_files(&[(rel, m.to_string().as_bytes())], "edit p's manifest");

    // A peer ignores it with an alert and still imports p's genuine events.
    publish(&p, 1, "before-restore");
    let v = sync(&victim);
    let alerts = v["import"]["manifest_alerts"].to_string();
    assert!(alerts.contains("manifest of p ignored"), "{v}");

    // p is not fooled into a stale-root refusal: it reports the change and restores it.
    let v = sync(&p);
    assert!(v["export"]["foreign_manifest"].is_string(), "{v}");
    let restored: Value = serde_json::from_str(&remote_file(env.remote(), rel).unwrap()).unwrap();
    assert_eq!(restored["exported_through_seq"], 3, "{restored}");
    // Control: the restored manifest is accepted and p's events flow.
    publish(&p, 1, "after");
    let v = sync(&p);
    assert!(v["export"].get("foreign_manifest").is_none(), "{v}");
    let v = sync(&victim);
    assert_eq!(v["import"]["imported_events"], 2, "{v}");
    assert!(v["import"].get("manifest_alerts").is_none(), "{v}");
}

#[test]
fn a_tree_nested_4000_levels_is_one_quarantine_record() {
    let (env, p, victim) = two_nodes_p_synced(1);
    let work = Work::clone(&env.url(), &env.path().join("work"));
    work.refresh();
    // Build a/a/a/... 4,000 levels deep with a file at the bottom, then commit it under p's outbox.
    let repo = git2::Repository::open(&work.dir).unwrap();
    let blob = repo.blob(b"{}\n").unwrap();
    let mut tb = repo.treebuilder(None).unwrap();
    tb.insert("x.ndjson", blob, 0o100644).unwrap();
    let mut t = tb.write().unwrap();
    for _ in 0..4000 {
        let mut tb = repo.treebuilder(None).unwrap();
        tb.insert("a", t, 0o040000).unwrap();
        t = tb.write().unwrap();
    }
    // `git read-tree` refuses such depth, so the commit is built with libgit2:
    // event_mesh/outbox/p/deep/<4,000 levels>.
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    let base = head.tree().unwrap();
    let dirs = ["event_mesh", "outbox", "p", "deep"];
    let mut sub = t;
    for i in (0..dirs.len()).rev() {
        let parent = dirs[..i].join("/");
        let existing = if i == 0 {
            Some(base.clone())
        } else {
            base.get_path(Path::new(&parent))
                .ok()
                .and_then(|e| repo.find_tree(e.id()).ok())
        };
        let mut tb = repo.treebuilder(existing.as_ref()).unwrap();
        tb.insert(dirs[i], sub, 0o040000).unwrap();
        sub = tb.write().unwrap();
    }
    let root = repo.find_tree(sub).unwrap();
    let who = git2::Signature::now("attacker", "a@example.com").unwrap();
    repo.commit(Some("HEAD"), &who, &who, "deep tree", &root, &[&head])
        .unwrap();
    // Recent git refuses such trees itself (a fetch fails); older git fetches them, so
    // the nodes' clones are set to accept them, to exercise gitmesh's own walk.
    for r in [
        env.remote().to_path_buf(),
        p.join("state/github_coordination"),
        victim.join("state/github_coordination"),
    ] {
        git(&r, &["config", "core.maxTreeDepth", "100000"]);
    }
    git(
        &work.dir,
        &[
            "-c",
            "core.maxTreeDepth=100000",
            "push",
            "--quiet",
            "origin",
            "HEAD:main",
        ],
    );

    publish(&p, 1, "after");
    sync(&p);
    let v = sync(&victim);
    assert_eq!(v["import"]["imported_events"], 2, "{v}");
    assert_eq!(reasons(&v["import"]), ["unexpected_path"], "{v}");
    let detail = v["import"]["rejected"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("deeper than"), "{detail}");
}

/// Plants `files` (path under p's outbox, bytes) in one commit with plain git.
fn plant(work: &Work, files: impl IntoIterator<Item = (String, Vec<u8>)>, msg: &str) {
    work.refresh();
    for (rel, bytes) in files {
        let p = work.dir.join("event_mesh/outbox/p").join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    work.commit_push(msg);
}

/// The victim's quarantine use for peer `peer`, from `mesh-status --json`.
fn quarantine_of(root: &Path, peer: &str) -> Value {
    let st = json_ok(root, &["mesh-status"]);
    st["quarantine"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["peer"] == peer)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Files (records and their reasons) in the victim's quarantine directory.
fn quarantine_files(root: &Path) -> usize {
    std::fs::read_dir(root.join("state/event_mesh/quarantine"))
        .unwrap()
        .count()
}

#[test]
fn one_blob_at_5000_paths_is_read_once_and_stored_once() {
    let (env, p, victim) = two_nodes_p_synced(1);
    let work = Work::clone(&env.url(), &env.path().join("work"));
    // One small blob at 2,500 batch-shaped paths and 2,500 junk paths of p's outbox.
    let blob = b"{\"junk\":1}\n".to_vec();
    let files = (0..5000).map(|i| {
        let rel = if i % 2 == 0 {
            format!("2020-01-01/{i:012}.ndjson")
        } else {
            format!("junk/{i}.txt")
        };
        (rel, blob.clone())
    });
    plant(&work, files, "one blob at 5000 paths");
    publish(&p, 1, "after");
    sync(&p);

    let v = sync(&victim);
    let imp = &v["import"];
    // Control: both genuine events import, in order, nothing held.
    assert_eq!(imp["imported_events"], 2, "{imp}");
    assert!(imp["held"].as_array().unwrap().is_empty(), "{imp}");
    let seqs: Vec<u64> = own_events(&victim, "p").iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2]);
    // The blob was read once and stored once; the other 4,999 paths were counted.
    assert_eq!(imp["quarantined"], 1, "{imp}");
    assert_eq!(imp["repeated_paths"], 4999, "{imp}");
    assert!(imp["scanned_files"].as_u64().unwrap() <= 3, "{imp}");
    assert_eq!(quarantine_files(&victim), 2);
    let q = quarantine_of(&victim, "p");
    assert_eq!(
        (q["files"].as_u64(), q["repeats"].as_u64()),
        (Some(1), Some(4999)),
        "{q}"
    );
    // The next sync reads none of them again.
    let v = sync(&victim);
    assert_eq!(v["import"]["scanned_files"], 0, "{v}");
    assert_eq!(quarantine_files(&victim), 2);
}

#[test]
fn a_flooded_outbox_is_read_in_bounded_steps_and_its_quarantine_is_capped() {
    let env = TestEnv::with_remote();
    let [p, q, victim] = env.nodes(["p", "q", "victim"]);
    set_config_key(&victim, "max_files_per_peer", "20");
    set_config_key(&victim, "quarantine_max_files", "10");
    publish(&p, 1, "p");
    sync(&p);
    // 60 different junk files, sorted before p's day directories.
    let work = Work::clone(&env.url(), &env.path().join("work"));
    let files = (0..60).map(|i| (format!("0junk/{i}.txt"), format!("junk {i}\n").into_bytes()));
    plant(&work, files, "60 junk files");
    publish(&p, 2, "p2");
    sync(&p);
    publish(&q, 1, "q");
    sync(&q);

    // The first sync reads 20 of p's files and leaves the rest; q is not held up.
    let v = sync(&victim);
    let imp = &v["import"];
    assert_eq!(imp["complete"], false, "{imp}");
    assert_eq!(imp["deferred"]["p"], 42, "{imp}");
    assert_eq!(imp["imported_events"], 1, "q's event: {imp}");
    assert_eq!(own_events(&victim, "q").len(), 1);
    assert!(own_events(&victim, "p").is_empty());
    let mut syncs = 1;
    while sync(&victim)["import"]["complete"] != true {
        syncs += 1;
        assert!(syncs < 10, "the import never completed");
    }
    assert_eq!(
        syncs + 1,
        4,
        "20 files per sync: 20 + 20 + 20 + the two batches"
    );
    // Nothing was lost: p's three events, in order.
    let seqs: Vec<u64> = own_events(&victim, "p").iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    // The quarantine holds p's 10 newest records; 50 were pruned and counted.
    let u = quarantine_of(&victim, "p");
    assert_eq!(
        (u["files"].as_u64(), u["pruned"].as_u64()),
        (Some(10), Some(50)),
        "{u}"
    );
    assert_eq!(quarantine_files(&victim), 20);
    let human = printed(&victim, &["mesh-status"]);
    assert!(
        human.contains("10 records") && human.contains("50 pruned"),
        "{human}"
    );
    // The daemon shows the same in /status and /metrics.
    let d = Daemon::start(&victim, &[]);
    let st = d.get_json("/status");
    let p_use = st["quarantine"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["peer"] == "p");
    assert_eq!(p_use.unwrap()["pruned"], 50, "{st}");
    let text = d.get("/metrics");
    let m = parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let p_label = [("peer", "p")];
    assert_eq!(
        m.value("gitmesh_quarantine_files", &p_label),
        Some(10.0),
        "{text}"
    );
    assert_eq!(
        m.value("gitmesh_quarantine_pruned_total", &p_label),
        Some(50.0)
    );
    assert!(m.value("gitmesh_quarantine_bytes", &p_label).unwrap() > 0.0);
}
