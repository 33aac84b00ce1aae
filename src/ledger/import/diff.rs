//! The tree diff an import reads: outbox entries that differ between two ledger trees.

use crate::git::tree::MODE_TREE;
use git2::{Oid, Repository};
use std::collections::{HashMap, HashSet};

/// One entry of an outbox diff: added, modified (`before` set) or deleted (`oid` unset).
#[derive(Debug, Clone)]
pub(super) struct Change {
    /// Path below the outbox root.
    pub(super) path: String,
    /// The entry now (`None`: deleted).
    pub(super) oid: Option<Oid>,
    /// Its mode now (0 when deleted).
    pub(super) mode: i32,
    /// The file before, when there was one.
    pub(super) before: Option<Oid>,
}

/// Non-directory entries that differ between two trees, deletions included.
/// Equal subtrees are skipped without being read.
pub(super) fn diff_outbox(
    repo: &Repository,
    old: Option<Oid>,
    new: Option<Oid>,
    prefix: &str,
    out: &mut Vec<Change>,
) -> Result<(), git2::Error> {
    if old == new {
        return Ok(());
    }
    let entries = |t: Option<Oid>| -> Result<Vec<(Vec<u8>, Oid, i32)>, git2::Error> {
        match t {
            Some(t) => Ok(repo
                .find_tree(t)?
                .iter()
                .map(|e| (e.name_bytes().to_vec(), e.id(), e.filemode()))
                .collect()),
            None => Ok(Vec::new()),
        }
    };
    let old_entries: HashMap<Vec<u8>, (Oid, i32)> = entries(old)?
        .into_iter()
        .map(|(n, o, m)| (n, (o, m)))
        .collect();
    let new_entries = entries(new)?;
    let join = |name: &[u8]| {
        let name = String::from_utf8_lossy(name);
        if prefix.is_empty() {
            name.into_owned()
        } else {
            format!("{prefix}/{name}")
        }
    };
    let mut seen = HashSet::new();
    for (name, oid, mode) in &new_entries {
        seen.insert(name.clone());
        let before = old_entries.get(name).copied();
        if before == Some((*oid, *mode)) {
            continue;
        }
        let path = join(name);
        let old_tree = before.filter(|(_, m)| *m == MODE_TREE).map(|(o, _)| o);
        let old_file = before.filter(|(_, m)| *m != MODE_TREE).map(|(o, _)| o);
        if *mode == MODE_TREE {
            diff_outbox(repo, old_tree, Some(*oid), &path, out)?;
            if let Some(b) = old_file {
                out.push(Change {
                    path,
                    oid: None,
                    mode: 0,
                    before: Some(b),
                });
            }
        } else {
            if old_tree.is_some() {
                diff_outbox(repo, old_tree, None, &path, out)?;
            }
            out.push(Change {
                path,
                oid: Some(*oid),
                mode: *mode,
                before: old_file,
            });
        }
    }
    for (name, (oid, mode)) in &old_entries {
        if seen.contains(name) {
            continue;
        }
        let path = join(name);
        if *mode == MODE_TREE {
            diff_outbox(repo, Some(*oid), None, &path, out)?;
        } else {
            out.push(Change {
                path,
                oid: None,
                mode: 0,
                before: Some(*oid),
            });
        }
    }
    Ok(())
}
