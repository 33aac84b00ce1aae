//! A clone of the shared remote to write hostile ledger commits with, and signing helpers.

use crate::common::{git, publish_event};
use gitmesh::Envelope;
use gitmesh::keys::NodeKey;
use gitmesh::paths::NodePaths;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A working clone of the remote, to commit anything (as an attacker with push access could).
pub struct Work {
    /// The clone.
    pub dir: PathBuf,
}

impl Work {
    /// Clones `url` into `dir`.
    pub fn clone(url: &str, dir: &Path) -> Work {
        git(
            dir.parent().unwrap(),
            &["clone", "--quiet", url, dir.to_str().unwrap()],
        );
        Work {
            dir: dir.to_path_buf(),
        }
    }

    /// Fetches the remote head and resets to it.
    pub fn refresh(&self) {
        git(&self.dir, &["fetch", "--quiet", "origin"]);
        git(&self.dir, &["reset", "--quiet", "--hard", "origin/main"]);
    }

    /// Writes files (path relative to the repository root), commits them and pushes.
    pub fn push_files(&self, files: &[(&str, &[u8])], msg: &str) {
        self.refresh();
        for (rel, bytes) in files {
            let p = self.dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        self.commit_push(msg);
    }

    /// Pushes one batch file, `text`, at `event_mesh/outbox/<dir>/<first_seq>.ndjson`
    /// (`dir` is `<node>/<YYYY-MM-DD>`, the seq zero-padded as the exporter names it).
    pub fn push_batch(&self, dir: &str, first_seq: u64, text: &str, msg: &str) {
        let rel = format!("event_mesh/outbox/{dir}/{first_seq:012}.ndjson");
        self.push_files(&[(&rel, text.as_bytes())], msg);
    }

    /// Commits everything in the clone and pushes it.
    pub fn commit_push(&self, msg: &str) {
        git(&self.dir, &["add", "-A"]);
        git(
            &self.dir,
            &["commit", "--quiet", "--allow-empty", "-m", msg],
        );
        git(&self.dir, &["push", "--quiet", "origin", "HEAD:main"]);
    }
}

/// The node's own events from its log (unsigned, as logged).
pub fn own_events(root: &Path, node: &str) -> Vec<Envelope> {
    std::fs::read_to_string(root.join("artifacts/event_mesh/events.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Envelope>(l).unwrap())
        .filter(|e| e.node_id == node)
        .collect()
}

/// The node's signing key.
pub fn key_of(root: &Path) -> NodeKey {
    NodeKey::load(&NodePaths::new(root)).unwrap().unwrap()
}

/// The envelope signed with `key`, as one batch line with its newline.
pub fn signed_line(env: &Envelope, key: &NodeKey) -> String {
    let mut e = env.clone();
    e.sig = None;
    e.sig = Some(key.sign(&e).unwrap());
    format!("{}\n", e.to_json_line())
}

/// Publishes `n` events with payload tag `tag`.
pub fn publish(root: &Path, n: usize, tag: &str) {
    for i in 0..n {
        let payload = format!("{{\"tag\":\"{tag}\",\"i\":{i}}}");
        publish_event(
            root,
            "monitoring",
            "test.tick",
            &["--payload-json", &payload],
        );
    }
}

/// The bytes of a node's log.
pub fn log_bytes(root: &Path) -> Vec<u8> {
    std::fs::read(root.join("artifacts/event_mesh/events.ndjson")).unwrap()
}

/// Reason codes of the items an import rejected.
pub fn reasons(v: &Value) -> Vec<String> {
    v["rejected"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["reason"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The signature file `v<N>.sig.json` for the schema `text` at `topic/event_type/v<version>`,
/// signed as `signer` with `key` (what `gitmesh schema publish` writes beside it).
pub fn schema_sig(
    topic: &str,
    event_type: &str,
    version: u32,
    text: &[u8],
    signer: &str,
    key: &NodeKey,
) -> Vec<u8> {
    let k = gitmesh::schema::SchemaKey {
        topic: topic.into(),
        event_type: event_type.into(),
        version,
    };
    gitmesh::schema::sign::SchemaSig::create(&k, text, signer, key)
        .unwrap()
        .to_file()
}
