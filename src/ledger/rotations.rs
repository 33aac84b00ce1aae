//! Key rotation statements in the ledger (`<dir>/keys/<node>/`): reading them, bounded,
//! and writing this node's own. The rules are pure, in `keys::rotation`.

use crate::git::tree;
use crate::keys::rotation::{MAX_STATEMENT_BYTES, MAX_STATEMENTS_PER_NODE, Rotation};
use crate::store::layout::Layout;
use git2::{Oid, Repository};

/// Most node directories read under `<dir>/keys` (as many as a roster may list).
pub const MAX_NODE_DIRS: usize = crate::ledger::roster::MAX_NODES;

/// One statement file as found in a tree.
#[derive(Debug, Clone)]
pub struct StatementFile {
    /// Its path in the repository.
    pub path: String,
    /// Its object (a blob, or what stands where one belongs).
    pub oid: Oid,
    /// The node whose directory holds it.
    pub node: String,
    /// The statement, or why it cannot be one (unread when too large or not a file).
    pub parsed: Result<Rotation, String>,
}

/// What following the statements depends on: the `<dir>/keys` subtree, the roster, the
/// pins and the keys manifests publish (`roster` is the roster's hash). An unchanged one means the last follow still holds,
/// so an import skips reading and verifying the statements again.
pub fn fingerprint(
    keys_tree: Option<Oid>,
    roster: Option<&str>,
    known: &crate::keys::KnownNodes,
    published: &std::collections::HashMap<String, Option<String>>,
) -> String {
    let published: std::collections::BTreeMap<_, _> = published.iter().collect();
    let mut h = blake3::Hasher::new();
    h.update(&serde_json::to_vec(&known.nodes).unwrap_or_default());
    h.update(b"\0");
    h.update(&serde_json::to_vec(&published).unwrap_or_default());
    format!(
        "keys={} roster={} inputs={}",
        keys_tree.map_or_else(|| "none".into(), |o| o.to_string()),
        roster.unwrap_or("none"),
        h.finalize().to_hex(),
    )
}

/// The statement files of every node under `<dir>/keys` in tree `root`, by directory
/// order; at most [`MAX_NODE_DIRS`] directories and [`MAX_STATEMENTS_PER_NODE`] files each
/// (files past that are reported as refused, unread).
pub fn read_all(
    repo: &Repository,
    root: Option<Oid>,
    layout: &Layout,
) -> Result<Vec<StatementFile>, git2::Error> {
    let mut out = Vec::new();
    let Some(dir) = tree::subtree_at(repo, root, &layout.keys_dir())? else {
        return Ok(out);
    };
    for e in repo.find_tree(dir)?.iter().take(MAX_NODE_DIRS) {
        let Ok(node) = e.name() else { continue };
        if e.filemode() != tree::MODE_TREE || crate::event::validate_node_id(node).is_err() {
            continue;
        }
        read_dir(repo, e.id(), layout, node, &mut out)?;
    }
    Ok(out)
}

/// The statement files of `node` in tree `root`.
pub fn read_node(
    repo: &Repository,
    root: Option<Oid>,
    layout: &Layout,
    node: &str,
) -> Result<Vec<StatementFile>, git2::Error> {
    let mut out = Vec::new();
    if let Some(dir) = tree::subtree_at(repo, root, &layout.rotations(node))? {
        read_dir(repo, dir, layout, node, &mut out)?;
    }
    Ok(out)
}

fn read_dir(
    repo: &Repository,
    dir: Oid,
    layout: &Layout,
    node: &str,
    out: &mut Vec<StatementFile>,
) -> Result<(), git2::Error> {
    for (i, f) in repo.find_tree(dir)?.iter().enumerate() {
        let name = String::from_utf8_lossy(f.name_bytes()).into_owned();
        let path = format!("{}/{name}", layout.rotations(node));
        let parsed = if i >= MAX_STATEMENTS_PER_NODE {
            Err(format!(
                "more than {MAX_STATEMENTS_PER_NODE} statements for node {node}; not read"
            ))
        } else if f.filemode() != tree::MODE_BLOB {
            Err("not a regular file".to_string())
        } else {
            match tree::blob_capped(repo, f.id(), MAX_STATEMENT_BYTES as u64)? {
                tree::Capped::Blob(b) => parse_named(node, &name, b.content()),
                tree::Capped::TooLarge(n) => {
                    Err(format!("{n} bytes; the cap is {MAX_STATEMENT_BYTES}"))
                }
                tree::Capped::NotBlob => Err("not a regular file".to_string()),
            }
        };
        out.push(StatementFile {
            path,
            oid: f.id(),
            node: node.to_string(),
            parsed,
        });
    }
    Ok(())
}

/// A statement whose file name is the one its content gives (so one rotation has one path).
fn parse_named(node: &str, name: &str, bytes: &[u8]) -> Result<Rotation, String> {
    let r = Rotation::parse(node, bytes).map_err(|e| e.to_string())?;
    if r.file_name() != name {
        return Err(format!(
            "file name {name:?} is not the statement's own ({:?})",
            r.file_name()
        ));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KnownNode, KnownNodes};
    use std::collections::HashMap;

    #[test]
    fn the_fingerprint_moves_with_every_input_and_only_then() {
        let tree = Some(Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap());
        let mut known = KnownNodes::default();
        let mut published = HashMap::new();
        published.insert("b".to_string(), Some("aa".repeat(32)));
        let base = fingerprint(tree, Some("r1"), &known, &published);
        assert_eq!(base, fingerprint(tree, Some("r1"), &known, &published));
        assert_ne!(base, fingerprint(None, Some("r1"), &known, &published));
        assert_ne!(base, fingerprint(tree, Some("r2"), &known, &published));
        assert_ne!(base, fingerprint(tree, None, &known, &published));
        let mut other = published.clone();
        other.insert("c".to_string(), None);
        assert_ne!(base, fingerprint(tree, Some("r1"), &known, &other));
        known.nodes.insert(
            "b".to_string(),
            KnownNode {
                public_key: "aa".repeat(32),
                pinned_at: "2026-01-01T00:00:00Z".to_string(),
                offered_key: None,
                history: Vec::new(),
            },
        );
        assert_ne!(base, fingerprint(tree, Some("r1"), &known, &published));
    }
}
