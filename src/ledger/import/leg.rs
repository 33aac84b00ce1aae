//! One leg of an import: the outbox files changed between two commits, each skipped,
//! rejected, flagged as a rewrite, or read.
//!
//! [`triage`] decides what happens to one changed entry, free of I/O; [`Run::leg`]
//! walks the diff and carries the verdicts out.

use super::archive::Archived;
use super::run::{Run, over_read_cap, visit};
use crate::git::RepoContext;
use crate::git::tree::{self, MODE_COMMIT, MODE_LINK, MODE_TREE, TreeChange};
use crate::ledger::Result;
use crate::ledger::compact;
use crate::ledger::quarantine::{self, KEEP_BYTES, Reason};
use crate::ledger::trust::{self, Alert};
use crate::ledger::verify::{self, Shape};
use crate::log::LogWriter;
use crate::store::layout::Layout;
use git2::Oid;
use std::collections::BTreeMap;

/// What one changed outbox entry calls for.
#[derive(Debug, PartialEq)]
pub(super) enum Triage {
    /// Nothing: this node's own outbox, a deletion of something never read, a batch
    /// rolled into an archive by compaction, or a file older than what is needed.
    Skip,
    /// A peer's file that existed before was modified (`now` set) or deleted.
    Rewrite {
        node: String,
        before: Oid,
        now: Option<Oid>,
    },
    /// Quarantine it unread, keeping `oid`'s first bytes, or for a submodule entry
    /// (`id_only`, the commit is not in this repository) its id.
    Reject {
        oid: Oid,
        id_only: bool,
        reason: Reason,
        detail: String,
    },
    /// Read and apply the file.
    Read(Oid),
}

/// The verdict for change `c`, classified as `shape`, in the import of node `me`.
///
/// `archived` lists the archives added in the same diff; `since` is the
/// configured history start, and `imported_through(node)` the node's seq up to
/// which every event has been imported.
pub(super) fn triage(
    c: &TreeChange,
    shape: &Shape,
    me: &str,
    archived: &Archived,
    since: Option<&str>,
    imported_through: impl Fn(&str) -> u64,
) -> Triage {
    if let Shape::Batch { node } | Shape::Single { node, .. } = shape
        && node == me
    {
        return Triage::Skip;
    }
    if let (Some(before), Shape::Batch { node } | Shape::Single { node, .. }) = (c.before, shape) {
        // A batch its node rolled into an archive (`ledger compact`) is gone
        // by design; anything else deleted or changed is a rewrite.
        if c.oid.is_none() && archived.covers(node, &c.path) {
            return Triage::Skip;
        }
        return Triage::Rewrite {
            node: node.clone(),
            before,
            now: c.oid,
        };
    }
    let Some(oid) = c.oid else {
        return Triage::Skip;
    };
    if let Shape::Batch { node } = shape
        && compact::skip_on_import(&c.path, since, imported_through(node))
    {
        return Triage::Skip;
    }
    let reject = |reason, detail: &str, id_only| Triage::Reject {
        oid,
        id_only,
        reason,
        detail: detail.to_string(),
    };
    if c.mode == MODE_TREE {
        let detail = format!(
            "a directory nested deeper than {} levels; not walked",
            tree::MAX_TREE_DEPTH
        );
        return reject(Reason::UnexpectedPath, &detail, true);
    }
    match shape {
        Shape::Bad(reason, detail) => reject(*reason, detail, false),
        _ if c.mode == MODE_LINK => reject(Reason::Symlink, "symbolic links are not read", false),
        _ if c.mode == MODE_COMMIT => reject(Reason::NotAFile, "a submodule entry", true),
        _ => Triage::Read(oid),
    }
}

/// Where a leg stopped short: files done in tree order, and per peer the index of the
/// first file it left for the next sync (the peer had reached its read caps).
pub(super) type Stop = (u64, BTreeMap<String, u64>);

impl Run<'_> {
    /// Imports the outbox files changed between `from` and `to`: the files from index
    /// `skip` on, and before it those each peer in `deferred` left. Returns where it
    /// stopped when the event budget ran out or a peer reached its read caps.
    pub(super) fn leg(
        &mut self,
        writer: &mut LogWriter<'_>,
        layout: &Layout,
        from: Option<Oid>,
        to: Oid,
        skip: u64,
        deferred: &BTreeMap<String, u64>,
    ) -> Result<Option<Stop>> {
        let repo = self.repo;
        let g = self.node.paths.ledger_repo();
        let root = layout.outbox_root();
        let old =
            tree::subtree_at(repo, tree::tree_of(repo, from).in_repo(&g)?, &root).in_repo(&g)?;
        let new = tree::subtree_at(repo, tree::tree_of(repo, Some(to)).in_repo(&g)?, &root)
            .in_repo(&g)?;
        let changed = tree::diff_entries(repo, old, new).in_repo(&g)?;
        let source = format!("ledger commit {to}");
        self.commit = to.to_string();
        let archived = Archived::from_changes(&changed);
        self.progress
            .set_total(self.progress.position() + (changed.len() as u64).saturating_sub(skip));
        let caps = self.read_caps();
        let mut left: BTreeMap<String, u64> = BTreeMap::new();
        let start = deferred.values().copied().min().unwrap_or(skip).min(skip);
        for (i, c) in changed.iter().enumerate().skip(start as usize) {
            let i = i as u64;
            let peer = quarantine::bucket(&c.path).to_string();
            if !visit(i, skip, &peer, deferred) {
                continue;
            }
            if i >= skip {
                self.progress.inc(1);
            }
            if let Some(b) = self.budget
                && self.report.imported_events >= b
            {
                // Files before `skip` not visited yet stay left for their peers.
                for (p, from) in deferred {
                    let at = (*from).max(i);
                    if at < skip {
                        left.entry(p.clone())
                            .and_modify(|v| *v = (*v).min(at))
                            .or_insert(at);
                    }
                }
                return Ok(Some((i.max(skip), left)));
            }
            let full = format!("{root}/{}", c.path);
            let shape = verify::classify(&c.path);
            let peers = &self.state.peers;
            let verdict = triage(
                c,
                &shape,
                self.node.id(),
                &archived,
                self.node.config.ledger.since.as_deref(),
                |node| peers.get(node).map_or(0, |r| r.contiguous_through()),
            );
            if let Triage::Reject { oid, .. } | Triage::Read(oid) = &verdict {
                let oid = *oid;
                // The same object at another path: counted on its record, never re-read.
                let key = (peer.clone(), oid);
                // Bad paths are also matched against earlier imports' records; a
                // well-formed path is matched within this import only.
                let id = oid.to_string();
                let repeat = if self.seen.contains(&key) {
                    self.quarantine.repeat(&peer, &id);
                    true
                } else {
                    matches!(verdict, Triage::Reject { .. })
                        && self.quarantine.repeat(&peer, &id).is_some()
                };
                if repeat {
                    self.report.repeated_paths += 1;
                    continue;
                }
                let done = self.reads.get(&peer).copied().unwrap_or_default();
                if over_read_cap(done, caps) {
                    left.entry(peer.clone()).or_insert(i);
                    *self.report.deferred.entry(peer).or_default() += 1;
                    continue;
                }
                let size = match &verdict {
                    Triage::Reject { id_only: true, .. } => 0,
                    _ => {
                        let (size, _) = repo.odb().in_repo(&g)?.read_header(oid).in_repo(&g)?;
                        let size = size as u64;
                        if matches!(verdict, Triage::Reject { .. }) {
                            size.min(KEEP_BYTES as u64)
                        } else {
                            size.min(self.limits.max_file_bytes)
                        }
                    }
                };
                let r = self.reads.entry(peer.clone()).or_default();
                r.files += 1;
                r.bytes += size;
                self.seen.insert(key);
            }
            match verdict {
                Triage::Skip => {}
                Triage::Rewrite { node, before, now } => {
                    self.rewrite(&full, &node, before, now, &source)?
                }
                Triage::Reject {
                    oid,
                    id_only,
                    reason,
                    detail,
                } => {
                    self.report.scanned_files += 1;
                    let bytes = if id_only {
                        oid.to_string().into_bytes()
                    } else {
                        self.head_bytes(oid)
                    };
                    let id = oid.to_string();
                    self.reject(&peer, &full, &id, &bytes, reason, &detail, &source)?;
                }
                Triage::Read(oid) => {
                    self.report.scanned_files += 1;
                    self.file(writer, &full, &shape, oid, &source, true)?;
                }
            }
        }
        if left.is_empty() {
            Ok(None)
        } else {
            Ok(Some((changed.len() as u64, left)))
        }
    }

    /// A peer's batch that existed at the last imported commit was modified or deleted.
    fn rewrite(
        &mut self,
        full: &str,
        node: &str,
        before: Oid,
        now: Option<Oid>,
        source: &str,
    ) -> Result<()> {
        let detail = match now {
            Some(o) => format!("batch {full} of node {node} was rewritten (blob {before} -> {o})"),
            None => format!("batch {full} of node {node} was deleted (blob {before})"),
        };
        let bytes = now.map(|o| self.head_bytes(o)).unwrap_or_default();
        let id = now.unwrap_or(before).to_string();
        self.reject(
            node,
            full,
            &id,
            &bytes,
            Reason::HistoryRewrite,
            &detail,
            source,
        )?;
        self.state.held.remove(full);
        trust::raise(
            &mut self.state.alerts,
            Alert {
                kind: Reason::HistoryRewrite,
                node_id: node.to_string(),
                path: full.to_string(),
                seq: None,
                detail,
                commit: self.commit.clone(),
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests;
