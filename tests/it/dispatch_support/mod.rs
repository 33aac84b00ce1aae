//! Fixtures for the dispatch tests: ledger files written with git plumbing, log helpers.

use crate::common::{git, git_with, publish_event};
use std::path::Path;

/// Commits `files` (path in repo -> content) on top of `refs/heads/main` of the node's ledger repo.
pub fn commit_ledger_files(root: &Path, files: &[(&str, String)]) {
    let repo = root.join("state").join("github_coordination");
    let index = root.join("state").join("test-ledger-index");
    let _ = std::fs::remove_file(&index);
    // Plumbing on a private index, so the node's own index is never touched.
    let g = |args: &[&str], input: Option<&[u8]>| {
        git_with(&repo, args, &[("GIT_INDEX_FILE", &index)], input)
            .trim()
            .to_string()
    };
    let parent = git(
        &repo,
        &["for-each-ref", "--format=%(objectname)", "refs/heads/main"],
    )
    .trim()
    .to_string();
    if !parent.is_empty() {
        g(&["read-tree", &parent], None);
    }
    for (path, content) in files {
        let blob = g(&["hash-object", "-w", "--stdin"], Some(content.as_bytes()));
        g(
            &[
                "update-index",
                "--add",
                "--cacheinfo",
                &format!("100644,{blob},{path}"),
            ],
            None,
        );
    }
    let tree = g(&["write-tree"], None);
    let mut args = vec!["commit-tree", tree.as_str(), "-m", "test fixture"];
    if !parent.is_empty() {
        args.push("-p");
        args.push(parent.as_str());
    }
    let commit = g(&args, None);
    // As if fetched: the view and the remote-tracking ref (where the lease is read) agree.
    for r in ["refs/heads/main", "refs/remotes/origin/main"] {
        g(&["update-ref", r, &commit], None);
    }
    let _ = std::fs::remove_file(&index);
}

/// Writes the leader lease into the node's ledger view, signed with the key of the
/// node root named `leader` beside `root` (as [`crate::common::TestEnv`] lays them out);
/// unsigned when there is no such root.
pub fn write_lease(root: &Path, leader: &str, epoch: u64, expires_in_secs: i64) {
    let now = chrono::Utc::now();
    let expires = now + chrono::Duration::seconds(expires_in_secs);
    let mut lease = gitmesh::ledger::lease::Lease {
        leader_id: leader.to_string(),
        epoch,
        lease_expires_at: gitmesh::event::format_timestamp(expires),
        ttl_sec: 120,
        // Taken at most one ttl before its expiry, as a real holder's clock would have it.
        taken_at: gitmesh::event::format_timestamp(
            now.min(expires)
                .max(expires - chrono::Duration::seconds(120)),
        ),
        sig: None,
    };
    let leader_root = root.parent().unwrap().join(leader);
    let paths = gitmesh::paths::NodePaths::new(&leader_root);
    if let Ok(Some(key)) = gitmesh::keys::NodeKey::load(&paths) {
        lease.sign(&key);
        // The reader knows the leader's key, as if it had imported its manifest.
        let reader = gitmesh::paths::NodePaths::new(root);
        if leader_root != root {
            let mut known = gitmesh::keys::KnownNodes::load(&reader).unwrap();
            known.observe(leader, &key.public_hex(), "2026-01-01T00:00:00.000000Z");
            known.save(&reader).unwrap();
        }
    }
    commit_ledger_files(
        root,
        &[(
            "event_mesh/leases/leader.json",
            serde_json::to_string(&lease).unwrap(),
        )],
    );
}

/// Writes a peer manifest into the node's ledger view.
pub fn write_manifest(root: &Path, node: &str, caps: &[&str], seen_secs_ago: i64) {
    let seen = chrono::Utc::now() - chrono::Duration::seconds(seen_secs_ago);
    let m = serde_json::json!({
        "node_id": node,
        "capabilities": caps,
        "last_seen": gitmesh::event::format_timestamp(seen),
    });
    commit_ledger_files(
        root,
        &[(&format!("event_mesh/nodes/{node}.json"), m.to_string())],
    );
}

/// All events in a node's log.
pub fn events(root: &Path) -> Vec<serde_json::Value> {
    let v = crate::common::json_ok(root, &["events"]);
    v["events"].as_array().unwrap().clone()
}

/// Events of one type in a node's log.
pub fn of_type(root: &Path, event_type: &str) -> Vec<serde_json::Value> {
    events(root)
        .into_iter()
        .filter(|e| e["event_type"] == event_type)
        .collect()
}

/// Publishes one event and returns its envelope.
pub fn publish(
    root: &Path,
    topic: &str,
    event_type: &str,
    payload: serde_json::Value,
) -> serde_json::Value {
    publish_event(
        root,
        topic,
        event_type,
        &["--payload-json", &payload.to_string()],
    )
}

/// Publishes a `scheduling` `task.enqueued` event with `payload`; returns its envelope.
pub fn enqueue_task(root: &Path, payload: serde_json::Value) -> serde_json::Value {
    publish(root, "scheduling", "task.enqueued", payload)
}

/// Publishes a `routing` `route.requested` event with `payload`; returns its envelope.
pub fn request_route(root: &Path, payload: serde_json::Value) -> serde_json::Value {
    publish(root, "routing", "route.requested", payload)
}

/// Runs `mesh-dispatch --json` and returns its report.
pub fn dispatch(root: &Path) -> serde_json::Value {
    crate::common::json_ok(root, &["mesh-dispatch"])
}

/// Appends a foreign event to a node's log as import does (through the library).
pub fn import_event(root: &Path, node_id: &str, env: &serde_json::Value) {
    let env: gitmesh::Envelope = serde_json::from_value(env.clone()).unwrap();
    let paths = gitmesh::paths::NodePaths::new(root);
    let log = gitmesh::log::EventLog::new(&paths, node_id);
    let mut w = log.writer().unwrap();
    assert!(!w.contains(&env.event_id).unwrap());
    w.append(&[env]).unwrap();
}

/// Replaces `mesh.toml` with `node_id = NODE` followed by `body`, trusting peers on
/// first use (`[mesh] trust = "open"`, as every node of a test mesh).
pub fn write_config(root: &Path, node: &str, body: &str) {
    std::fs::write(
        root.join("mesh.toml"),
        format!("node_id = \"{node}\"\n{body}\n\n[mesh]\ntrust = \"open\"\n"),
    )
    .unwrap();
}

/// The lines of `commands.ndjson`.
pub fn command_lines(root: &Path) -> Vec<serde_json::Value> {
    let p = root.join("artifacts/event_mesh/commands.ndjson");
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
