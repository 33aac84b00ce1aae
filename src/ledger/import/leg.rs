//! One leg of an import: the outbox files changed between two commits, each skipped,
//! rejected, flagged as a rewrite, or read.

use super::archive::Archived;
use super::run::Run;
use crate::git::tree::{self, MODE_COMMIT, MODE_LINK};
use crate::ledger::Result;
use crate::ledger::compact;
use crate::ledger::quarantine::Reason;
use crate::ledger::trust::{self, Alert};
use crate::ledger::verify::{self, Shape};
use crate::log::LogWriter;
use crate::store::layout::Layout;
use git2::Oid;

impl Run<'_> {
    /// Imports the outbox files changed between `from` and `to`, skipping the first `skip`.
    /// Returns `Some(files done)` when the event budget ran out first.
    pub(super) fn leg(
        &mut self,
        writer: &mut LogWriter<'_>,
        layout: &Layout,
        from: Option<Oid>,
        to: Oid,
        skip: u64,
    ) -> Result<Option<u64>> {
        let repo = self.repo;
        let g = self.git_err();
        let root = layout.outbox_root();
        let old =
            tree::subtree_at(repo, tree::tree_of(repo, from).map_err(&g)?, &root).map_err(&g)?;
        let new = tree::subtree_at(repo, tree::tree_of(repo, Some(to)).map_err(&g)?, &root)
            .map_err(&g)?;
        let changed = tree::diff_entries(repo, old, new).map_err(&g)?;
        drop(g);
        let source = format!("ledger commit {to}");
        self.commit = to.to_string();
        let archived = Archived::from_changes(&changed);
        self.progress
            .set_total(self.progress.position() + (changed.len() as u64).saturating_sub(skip));
        for (i, c) in changed.iter().enumerate().skip(skip as usize) {
            self.progress.inc(1);
            if let Some(b) = self.budget
                && self.report.imported_events >= b
            {
                return Ok(Some(i as u64));
            }
            let full = format!("{root}/{}", c.path);
            let shape = verify::classify(&c.path);
            if let Shape::Batch { node } | Shape::Single { node, .. } = &shape
                && node == self.node.id()
            {
                continue;
            }
            if let (Some(before), Shape::Batch { node } | Shape::Single { node, .. }) =
                (c.before, &shape)
            {
                // A batch its node rolled into an archive (`ledger compact`) is gone
                // by design; anything else deleted or changed is a rewrite.
                if c.oid.is_none() && archived.covers(node, &c.path) {
                    continue;
                }
                self.rewrite(&full, node, before, c.oid, &source)?;
                continue;
            }
            let Some(oid) = c.oid else { continue };
            if let Shape::Batch { node } = &shape
                && compact::skip_on_import(
                    &c.path,
                    self.node.config.ledger.since.as_deref(),
                    self.state
                        .peers
                        .get(node)
                        .map_or(0, |r| r.contiguous_through()),
                )
            {
                continue;
            }
            self.report.scanned_files += 1;
            if let Shape::Bad(reason, detail) = &shape {
                let bytes = self.head_bytes(oid);
                self.reject(&full, None, &bytes, *reason, detail, &source)?;
                continue;
            }
            if c.mode == MODE_LINK {
                let bytes = self.head_bytes(oid);
                self.reject(
                    &full,
                    None,
                    &bytes,
                    Reason::Symlink,
                    "symbolic links are not read",
                    &source,
                )?;
                continue;
            }
            if c.mode == MODE_COMMIT {
                self.reject(
                    &full,
                    None,
                    oid.to_string().as_bytes(),
                    Reason::NotAFile,
                    "a submodule entry",
                    &source,
                )?;
                continue;
            }
            self.file(writer, &full, &shape, oid, &source, true)?;
        }
        Ok(None)
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
        self.reject(full, None, &bytes, Reason::HistoryRewrite, &detail, source)?;
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
