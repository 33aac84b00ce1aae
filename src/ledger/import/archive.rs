//! Deletions by design: batches a node rolled into an archive added in the same diff.

use crate::git::tree::TreeChange;
use crate::ledger::compact;
use std::collections::HashMap;

/// Seq ranges of the archives each node added in one diff (see `ledger compact`).
#[derive(Debug, Default)]
pub(super) struct Archived {
    ranges: HashMap<String, Vec<(u64, u64)>>,
}

impl Archived {
    /// The archives added by `changes`, by node.
    pub(super) fn from_changes(changes: &[TreeChange]) -> Archived {
        let mut a = Archived::default();
        for c in changes.iter().filter(|c| c.oid.is_some()) {
            let parts: Vec<&str> = c.path.split('/').collect();
            if let [node, dir, name] = parts.as_slice()
                && dir.starts_with(compact::ARCHIVE_PREFIX)
                && let Some(range) = compact::archive_range(name)
            {
                a.ranges.entry(node.to_string()).or_default().push(range);
            }
        }
        a
    }

    /// Whether the deleted batch `<node>/<day>/<first seq>[.<hash>].ndjson` starts inside an added archive.
    pub(super) fn covers(&self, node: &str, rel: &str) -> bool {
        let first = rel
            .rsplit('/')
            .next()
            .and_then(crate::ledger::export::batch_first_seq);
        match (first, self.ranges.get(node)) {
            (Some(seq), Some(ranges)) => ranges.iter().any(|(a, b)| (*a..=*b).contains(&seq)),
            _ => false,
        }
    }
}
