//! Tree and commit helpers whose cost follows the change, not the tree size.
//!
//! `apply_edits` rewrites only the directories on the paths it edits;
//! `diff_entries`, `changed_entries` and `union` descend only into subtrees whose ids differ.

use git2::{ObjectType, Oid, Repository};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Mode of a regular file entry.
pub const MODE_BLOB: i32 = 0o100644;
/// Mode of an executable file entry.
pub const MODE_EXEC: i32 = 0o100755;
/// Mode of a directory entry.
pub const MODE_TREE: i32 = 0o040000;
/// Mode of a symbolic link entry.
pub const MODE_LINK: i32 = 0o120000;
/// Mode of a submodule (gitlink) entry.
pub const MODE_COMMIT: i32 = 0o160000;

/// One change to a tree: put an object at `path` (slash-separated), or remove what is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// Path relative to the root of the tree.
    pub path: String,
    /// The object id and mode to store, or `None` to remove the entry.
    pub target: Option<(Oid, i32)>,
}

impl Edit {
    /// Stores blob `oid` as a regular file at `path`.
    pub fn blob(path: impl Into<String>, oid: Oid) -> Edit {
        Edit {
            path: path.into(),
            target: Some((oid, MODE_BLOB)),
        }
    }
    /// Stores tree `oid` as the directory `path`.
    pub fn tree(path: impl Into<String>, oid: Oid) -> Edit {
        Edit {
            path: path.into(),
            target: Some((oid, MODE_TREE)),
        }
    }
    /// Removes whatever is at `path`.
    pub fn remove(path: impl Into<String>) -> Edit {
        Edit {
            path: path.into(),
            target: None,
        }
    }
}

enum Node {
    Leaf(Option<(Oid, i32)>),
    Dir(BTreeMap<String, Node>),
}

fn insert(dir: &mut BTreeMap<String, Node>, parts: &[&str], target: Option<(Oid, i32)>) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    if rest.is_empty() {
        dir.insert((*first).to_string(), Node::Leaf(target));
        return;
    }
    let child = dir
        .entry((*first).to_string())
        .or_insert_with(|| Node::Dir(BTreeMap::new()));
    if let Node::Leaf(_) = child {
        *child = Node::Dir(BTreeMap::new());
    }
    if let Node::Dir(sub) = child {
        insert(sub, rest, target);
    }
}

/// Applies `edits` to the tree `base` (or an empty tree) and returns the new root tree id.
///
/// Only the directories on the edited paths are read and rewritten; every
/// other subtree is reused by id. Directories left empty are removed.
pub fn apply_edits(
    repo: &Repository,
    base: Option<Oid>,
    edits: &[Edit],
) -> Result<Oid, git2::Error> {
    let mut root = BTreeMap::new();
    for e in edits {
        let parts: Vec<&str> = e.path.split('/').filter(|p| !p.is_empty()).collect();
        insert(&mut root, &parts, e.target);
    }
    match build(repo, base, &root)? {
        Some(oid) => Ok(oid),
        None => repo.treebuilder(None)?.write(),
    }
}

fn build(
    repo: &Repository,
    base: Option<Oid>,
    dir: &BTreeMap<String, Node>,
) -> Result<Option<Oid>, git2::Error> {
    let base_tree = base.map(|o| repo.find_tree(o)).transpose()?;
    let mut tb = repo.treebuilder(base_tree.as_ref())?;
    for (name, node) in dir {
        match node {
            Node::Leaf(Some((oid, mode))) => {
                tb.insert(name, *oid, *mode)?;
            }
            Node::Leaf(None) => {
                if tb.get(name)?.is_some() {
                    tb.remove(name)?;
                }
            }
            Node::Dir(children) => {
                let existing = tb
                    .get(name)?
                    .filter(|e| e.kind() == Some(ObjectType::Tree))
                    .map(|e| e.id());
                match build(repo, existing, children)? {
                    Some(oid) => {
                        tb.insert(name, oid, MODE_TREE)?;
                    }
                    None => {
                        if tb.get(name)?.is_some() {
                            tb.remove(name)?;
                        }
                    }
                }
            }
        }
    }
    if tb.is_empty() {
        return Ok(None);
    }
    Ok(Some(tb.write()?))
}

/// A file-like entry that is new or different in the newer tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// Path relative to the trees compared (slash-separated).
    pub path: String,
    /// Object id of the entry.
    pub oid: Oid,
    /// Entry mode (blob, executable, symlink, submodule).
    pub mode: i32,
}

/// Entries (other than directories) of `new` that are absent or different in `old`.
///
/// Subtrees with equal ids are skipped without being read, so the cost is
/// proportional to the directories that changed. Removals are not reported.
pub fn changed_entries(
    repo: &Repository,
    old: Option<Oid>,
    new: Option<Oid>,
) -> Result<Vec<Changed>, git2::Error> {
    Ok(diff_entries(repo, old, new)?
        .into_iter()
        .filter_map(|c| {
            c.oid.map(|oid| Changed {
                path: c.path,
                oid,
                mode: c.mode,
            })
        })
        .collect())
}

/// An entry (other than a directory) that differs between two trees: added,
/// modified (`before` set) or deleted (`oid` unset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeChange {
    /// Path relative to the trees compared (slash-separated).
    pub path: String,
    /// Object id in the newer tree (`None`: deleted).
    pub oid: Option<Oid>,
    /// Mode in the newer tree (0 when deleted).
    pub mode: i32,
    /// Object id of the file the older tree held at this path, if any.
    pub before: Option<Oid>,
}

/// Deepest directory level [`diff_entries`] and [`union`] walk. A directory nested
/// deeper is not read: the diff reports it as one entry with mode [`MODE_TREE`], and
/// the union keeps its own side, so a hostile tree nested thousands of levels deep
/// costs one entry. Both walks keep their own stack on the heap, so the limit bounds
/// work, not the thread's stack.
pub const MAX_TREE_DEPTH: usize = 32;

/// Entries (other than directories) that differ between two trees, deletions included:
/// the newer tree's changes in tree order, then what only the older tree held.
///
/// Subtrees with equal ids are skipped without being read, so the cost is
/// proportional to the directories that changed, not to the size of the trees.
/// The walk stops at [`MAX_TREE_DEPTH`] levels.
pub fn diff_entries(
    repo: &Repository,
    old: Option<Oid>,
    new: Option<Oid>,
) -> Result<Vec<TreeChange>, git2::Error> {
    let mut out = Vec::new();
    // Work items run in LIFO order: a directory's frame is pushed back under its
    // child, so the child's entries come out where recursion would have put them.
    let mut stack = vec![Work::Diff {
        old,
        new,
        prefix: String::new(),
        depth: 0,
    }];
    while let Some(w) = stack.pop() {
        match w {
            Work::Emit(c) => out.push(c),
            Work::Diff {
                old,
                new,
                prefix,
                depth,
            } => {
                if old == new {
                    continue;
                }
                if depth >= MAX_TREE_DEPTH {
                    // Not walked: the new side is reported as one directory entry; a deep
                    // old side was reported when it was new.
                    if let Some(t) = new {
                        out.push(TreeChange {
                            path: prefix,
                            oid: Some(t),
                            mode: MODE_TREE,
                            before: None,
                        });
                    }
                    continue;
                }
                let frame = Frame::open(repo, old, new, prefix, depth)?;
                frame.step(&mut stack, &mut out);
            }
            Work::Resume(frame) => frame.step(&mut stack, &mut out),
        }
    }
    Ok(out)
}

/// One pending piece of [`diff_entries`]' walk.
enum Work {
    /// Compare two directories (either may be absent) at `prefix`.
    Diff {
        old: Option<Oid>,
        new: Option<Oid>,
        prefix: String,
        depth: usize,
    },
    /// Go on with a directory after a child directory was walked.
    Resume(Box<Frame>),
    /// Report a change once the directory walked before it is done.
    Emit(TreeChange),
}

/// A directory pair being compared: both entry lists and how far the walk got.
struct Frame {
    prefix: String,
    depth: usize,
    old_list: Vec<(Vec<u8>, Oid, i32)>,
    old_entries: HashMap<Vec<u8>, (Oid, i32)>,
    new_list: Vec<(Vec<u8>, Oid, i32)>,
    seen: HashSet<Vec<u8>>,
    /// Next entry of `new_list`, then (past its end) of `old_list`.
    next: usize,
}

impl Frame {
    fn open(
        repo: &Repository,
        old: Option<Oid>,
        new: Option<Oid>,
        prefix: String,
        depth: usize,
    ) -> Result<Frame, git2::Error> {
        let old_list = entries_of(repo, old)?;
        let old_entries = old_list
            .iter()
            .map(|(n, o, m)| (n.clone(), (*o, *m)))
            .collect();
        Ok(Frame {
            prefix,
            depth,
            old_list,
            old_entries,
            new_list: entries_of(repo, new)?,
            seen: HashSet::new(),
            next: 0,
        })
    }

    fn join(&self, name: &[u8]) -> String {
        let name = String::from_utf8_lossy(name);
        if self.prefix.is_empty() {
            name.into_owned()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    /// Walks entries until one needs a subdirectory walked first; then pushes itself
    /// back, the change to report after that subdirectory, and the subdirectory.
    fn step(mut self, stack: &mut Vec<Work>, out: &mut Vec<TreeChange>) {
        let depth = self.depth + 1;
        while self.next < self.new_list.len() {
            let (name, oid, mode) = self.new_list[self.next].clone();
            self.next += 1;
            self.seen.insert(name.clone());
            let before = self.old_entries.get(&name).copied();
            if before == Some((oid, mode)) {
                continue;
            }
            let path = self.join(&name);
            let old_tree = before.filter(|(_, m)| *m == MODE_TREE).map(|(o, _)| o);
            let old_file = before.filter(|(_, m)| *m != MODE_TREE).map(|(o, _)| o);
            if mode == MODE_TREE {
                let after = old_file.map(|b| TreeChange {
                    path: path.clone(),
                    oid: None,
                    mode: 0,
                    before: Some(b),
                });
                let child = Work::Diff {
                    old: old_tree,
                    new: Some(oid),
                    prefix: path,
                    depth,
                };
                return self.descend(stack, after, child);
            }
            let change = TreeChange {
                path: path.clone(),
                oid: Some(oid),
                mode,
                before: old_file,
            };
            if old_tree.is_some() {
                let child = Work::Diff {
                    old: old_tree,
                    new: None,
                    prefix: path,
                    depth,
                };
                return self.descend(stack, Some(change), child);
            }
            out.push(change);
        }
        while self.next - self.new_list.len() < self.old_list.len() {
            let (name, oid, mode) = self.old_list[self.next - self.new_list.len()].clone();
            self.next += 1;
            if self.seen.contains(&name) {
                continue;
            }
            let path = self.join(&name);
            if mode == MODE_TREE {
                let child = Work::Diff {
                    old: Some(oid),
                    new: None,
                    prefix: path,
                    depth,
                };
                return self.descend(stack, None, child);
            }
            out.push(TreeChange {
                path,
                oid: None,
                mode: 0,
                before: Some(oid),
            });
        }
    }

    fn descend(self, stack: &mut Vec<Work>, after: Option<TreeChange>, child: Work) {
        stack.push(Work::Resume(Box::new(self)));
        if let Some(c) = after {
            stack.push(Work::Emit(c));
        }
        stack.push(child);
    }
}

/// A tree's entries as (name, id, mode), in tree order; none for `None`.
fn entries_of(
    repo: &Repository,
    tree: Option<Oid>,
) -> Result<Vec<(Vec<u8>, Oid, i32)>, git2::Error> {
    match tree {
        Some(t) => Ok(repo
            .find_tree(t)?
            .iter()
            .map(|e| (e.name_bytes().to_vec(), e.id(), e.filemode()))
            .collect()),
        None => Ok(Vec::new()),
    }
}

/// Merges two trees: every entry of `keep`, plus the entries of `add` it lacks.
///
/// Where both hold different files at one path, `keep` wins and the path is
/// pushed to `conflicts`. Equal subtrees are reused without being read. Below
/// [`MAX_TREE_DEPTH`] levels `keep`'s directory is kept whole and its path is a
/// conflict. The walk keeps its own stack, so no tree's depth reaches the thread's.
pub fn union(
    repo: &Repository,
    keep: Option<Oid>,
    add: Option<Oid>,
    conflicts: &mut Vec<String>,
) -> Result<Option<Oid>, git2::Error> {
    let (keep, add) = match (keep, add) {
        (k, None) => return Ok(k),
        (None, a) => return Ok(a),
        (Some(k), Some(a)) if k == a => return Ok(Some(k)),
        (Some(k), Some(a)) => (k, a),
    };
    // Each frame merges one directory pair; a child's result is inserted into its
    // parent's builder when the child's frame is done.
    let mut stack = vec![UnionFrame::open(repo, keep, add, String::new(), 0)?];
    loop {
        let Some(top) = stack.last_mut() else {
            return Ok(Some(keep));
        };
        match top.next_child(conflicts)? {
            Some((k, a, path)) => {
                let depth = top.depth + 1;
                if depth >= MAX_TREE_DEPTH {
                    conflicts.push(path);
                    continue;
                }
                stack.push(UnionFrame::open(repo, k, a, path, depth)?);
            }
            None => {
                let Some(done) = stack.pop() else {
                    return Ok(Some(keep));
                };
                let merged = done.finish()?;
                match stack.last_mut() {
                    Some(parent) => parent.child_done(done.keep, merged)?,
                    None => return Ok(Some(merged)),
                }
            }
        }
    }
}

/// One directory pair of [`union`]: `keep`'s builder and how far through `add` it got.
struct UnionFrame<'r> {
    keep: Oid,
    keep_tree: git2::Tree<'r>,
    add_tree: git2::Tree<'r>,
    tb: git2::TreeBuilder<'r>,
    changed: bool,
    next: usize,
    prefix: String,
    depth: usize,
    /// Name of the child directory being merged.
    waiting: Option<Vec<u8>>,
}

impl<'r> UnionFrame<'r> {
    fn open(
        repo: &'r Repository,
        keep: Oid,
        add: Oid,
        prefix: String,
        depth: usize,
    ) -> Result<UnionFrame<'r>, git2::Error> {
        let keep_tree = repo.find_tree(keep)?;
        let add_tree = repo.find_tree(add)?;
        let tb = repo.treebuilder(Some(&keep_tree))?;
        Ok(UnionFrame {
            keep,
            keep_tree,
            add_tree,
            tb,
            changed: false,
            next: 0,
            prefix,
            depth,
            waiting: None,
        })
    }

    /// Merges entries until a pair of differing subdirectories needs its own frame:
    /// returns their ids and path, or `None` when this directory is done.
    fn next_child(
        &mut self,
        conflicts: &mut Vec<String>,
    ) -> Result<Option<(Oid, Oid, String)>, git2::Error> {
        while let Some(e) = self.add_tree.get(self.next) {
            self.next += 1;
            let name = String::from_utf8_lossy(e.name_bytes()).into_owned();
            let path = if self.prefix.is_empty() {
                name
            } else {
                format!("{}/{name}", self.prefix)
            };
            let mine = self
                .keep_tree
                .get_name_bytes(e.name_bytes())
                .map(|k| (k.id(), k.filemode()));
            match mine {
                None => {
                    self.tb.insert(e.name_bytes(), e.id(), e.filemode())?;
                    self.changed = true;
                }
                Some(m) if m == (e.id(), e.filemode()) => {}
                Some((k, MODE_TREE)) if e.filemode() == MODE_TREE => {
                    self.waiting = Some(e.name_bytes().to_vec());
                    return Ok(Some((k, e.id(), path)));
                }
                Some(_) => conflicts.push(path),
            }
        }
        Ok(None)
    }

    /// Takes the merged id of the child directory (whose `keep` side was `k`).
    fn child_done(&mut self, k: Oid, merged: Oid) -> Result<(), git2::Error> {
        if let Some(name) = self.waiting.take()
            && merged != k
        {
            self.tb.insert(name, merged, MODE_TREE)?;
            self.changed = true;
        }
        Ok(())
    }

    fn finish(&self) -> Result<Oid, git2::Error> {
        if !self.changed {
            return Ok(self.keep);
        }
        self.tb.write()
    }
}

/// Id of the entry at `path` inside tree `root`, if any.
pub fn entry_at(
    repo: &Repository,
    root: Option<Oid>,
    path: &str,
) -> Result<Option<(Oid, i32)>, git2::Error> {
    let Some(root) = root else { return Ok(None) };
    let tree = repo.find_tree(root)?;
    match tree.get_path(std::path::Path::new(path)) {
        Ok(e) => Ok(Some((e.id(), e.filemode()))),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Id of the directory at `path` inside tree `root`, if there is one.
pub fn subtree_at(
    repo: &Repository,
    root: Option<Oid>,
    path: &str,
) -> Result<Option<Oid>, git2::Error> {
    Ok(entry_at(repo, root, path)?
        .filter(|(_, m)| *m == MODE_TREE)
        .map(|(o, _)| o))
}

/// Tree id of a commit.
pub fn tree_of(repo: &Repository, commit: Option<Oid>) -> Result<Option<Oid>, git2::Error> {
    commit
        .map(|c| repo.find_commit(c).map(|c| c.tree_id()))
        .transpose()
}

/// Writes a commit of `tree` on `parent` (no ref is moved) signed as `node`.
pub fn commit(
    repo: &Repository,
    tree: Oid,
    parent: Option<Oid>,
    node: &str,
    message: &str,
) -> Result<Oid, git2::Error> {
    let sig = git2::Signature::now(
        &format!("gitmesh {node}"),
        &format!("{node}@gitmesh.invalid"),
    )?;
    let tree = repo.find_tree(tree)?;
    let parent = parent.map(|p| repo.find_commit(p)).transpose()?;
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    repo.commit(None, &sig, &sig, message, &tree, &parents)
}

/// Where a ref points, if it exists.
pub fn ref_target(repo: &Repository, name: &str) -> Result<Option<Oid>, git2::Error> {
    match repo.find_reference(name) {
        Ok(r) => Ok(r.target()),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Points `name` at `oid`, creating or moving it.
pub fn set_ref(repo: &Repository, name: &str, oid: Oid, log: &str) -> Result<(), git2::Error> {
    repo.reference(name, oid, true, log)?;
    Ok(())
}

#[cfg(test)]
mod tests;

/// A blob read only after its object header was checked (see [`blob_capped`]).
pub enum Capped<'r> {
    /// The blob, at most the cap.
    Blob(git2::Blob<'r>),
    /// A blob of this many bytes, over the cap: nothing of it was loaded.
    TooLarge(u64),
    /// Not a blob at all (a tree, commit or tag where a file belongs).
    NotBlob,
}

/// Reads blob `oid` only when its object header says it is a blob of at most `max`
/// bytes. The header gives the size without inflating the object, so a small,
/// highly compressible object that would expand to gigabytes is never loaded.
pub fn blob_capped(repo: &Repository, oid: Oid, max: u64) -> Result<Capped<'_>, git2::Error> {
    let (size, kind) = repo.odb()?.read_header(oid)?;
    if kind != ObjectType::Blob {
        return Ok(Capped::NotBlob);
    }
    if size as u64 > max {
        return Ok(Capped::TooLarge(size as u64));
    }
    Ok(Capped::Blob(repo.find_blob(oid)?))
}
