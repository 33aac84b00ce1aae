//! Held files: set aside while they cannot progress, read again once they can.

use super::pinning::KeyState;
use super::run::Run;
use crate::git::RepoContext;
use crate::git::tree;
use crate::ledger::Result;
use crate::ledger::trust::{Held, HeldReason};
use crate::log::LogWriter;
use git2::Oid;
use std::collections::BTreeMap;

/// The held files that can progress now, in the order to read them (by node, then
/// first seq): a gap whose missing seqs have arrived (`chain_seq` is the peer's
/// accepted seq), a key that is no longer `untrusted`, or a file from the future whose
/// first event is next in the chain (read again to see whether its time has come).
pub(super) fn ready_to_retry(
    held: &BTreeMap<String, Held>,
    chain_seq: impl Fn(&str) -> u64,
    untrusted: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut ready: Vec<(&String, &Held)> = held
        .iter()
        .filter(|(_, h)| match h.reason {
            HeldReason::Gap => h.first_seq <= chain_seq(&h.node_id) + 1,
            HeldReason::UntrustedKey | HeldReason::NotOnRoster => !untrusted(&h.node_id),
            HeldReason::Future => h.first_seq <= chain_seq(&h.node_id) + 1,
        })
        .collect();
    ready.sort_by(|a, b| (&a.1.node_id, a.1.first_seq).cmp(&(&b.1.node_id, b.1.first_seq)));
    ready.into_iter().map(|(path, _)| path.clone()).collect()
}

impl Run<'_> {
    /// Sets ledger file `full` aside until it can progress.
    pub(super) fn hold(&mut self, full: &str, node: &str, first_seq: u64, reason: HeldReason) {
        tracing::info!(
            file = full,
            node,
            first_seq,
            ?reason,
            "ledger file held back"
        );
        self.state.held.insert(
            full.to_string(),
            Held {
                node_id: node.to_string(),
                first_seq,
                reason,
            },
        );
    }

    /// Reads held files again once they can progress: a gap whose missing seqs have
    /// arrived, or a key an operator has trusted. Bounded by the number of held files.
    pub(super) fn retry_held(&mut self, writer: &mut LogWriter<'_>, head: Oid) -> Result<()> {
        let root = tree::tree_of(self.repo, Some(head)).in_repo(&self.node.paths.ledger_repo())?;
        let source = format!("ledger commit {head} (held file retried)");
        self.commit = head.to_string();
        // A file still from the future after one reading is not read again in this pass.
        let mut tried = std::collections::HashSet::new();
        for _ in 0..=self.state.held.len() {
            let mut ready = ready_to_retry(
                &self.state.held,
                |node| self.chain_head(node).seq,
                |node| {
                    matches!(self.keys.get(node), Some(KeyState::Untrusted))
                        || self.unauthorized_reason(node).is_some()
                },
            );
            ready.retain(|f| {
                let future = self
                    .state
                    .held
                    .get(f)
                    .is_some_and(|h| h.reason == HeldReason::Future);
                !(future && tried.contains(f))
            });
            if ready.is_empty() {
                break;
            }
            for full in ready {
                tried.insert(full.clone());
                let entry = tree::entry_at(self.repo, root, &full)
                    .in_repo(&self.node.paths.ledger_repo())?;
                let rel = full
                    .split_once("/outbox/")
                    .map_or(full.as_str(), |(_, r)| r);
                let shape = crate::ledger::verify::classify(rel);
                match entry {
                    Some((oid, mode)) if mode == tree::MODE_BLOB || mode == tree::MODE_EXEC => {
                        self.file(writer, &full, &shape, oid, &source, false)?;
                    }
                    _ => {
                        self.state.held.remove(&full);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
