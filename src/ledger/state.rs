//! Small per-node ledger state files (import and export progress), each replaced atomically.

use crate::fsutil::{PathError, read_json, write_json};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// `export_seen.json`: how far the node's own events have been exported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExportState {
    /// Every own event with a seq up to this one is in the ledger.
    pub exported_through_seq: u64,
    /// Byte offset in the log from which to look for the next own event to export.
    #[serde(default)]
    pub scan_offset: u64,
}

/// Reads a state file, or its default when it does not exist yet.
pub fn load<T: Default + for<'de> Deserialize<'de>>(path: &Path) -> Result<T, PathError> {
    Ok(read_json(path)?.unwrap_or_default())
}

/// Replaces a state file atomically and durably.
pub fn save<T: Serialize>(path: &Path, value: &T) -> Result<(), PathError> {
    write_json(path, value)
}

/// `import_state.json`: how far the ledger has been imported, and what each peer's seqs look like.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportState {
    /// The last ledger commit whose outboxes were fully imported ("" before the first import).
    #[serde(default)]
    pub commit: String,
    /// An import stopped by `--max-events` part-way to `target`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<PartialImport>,
    /// Events of other nodes in the log when this state was saved; when the log still
    /// holds exactly that many, a peer event with an unseen seq cannot be in it.
    #[serde(default)]
    pub foreign_events: u64,
    /// Per peer, the seqs seen so far.
    #[serde(default)]
    pub peers: std::collections::BTreeMap<String, super::seqs::SeqRanges>,
    /// Per peer, the last event accepted in sequence (the chain head).
    #[serde(default)]
    pub heads: std::collections::BTreeMap<String, super::trust::ChainHead>,
    /// Ledger files held back (waiting for a missing seq or an operator's trust), by path.
    #[serde(default)]
    pub held: std::collections::BTreeMap<String, super::trust::Held>,
    /// Forks and history rewrites seen, for `mesh-status`.
    #[serde(default)]
    pub alerts: Vec<super::trust::Alert>,
    /// Refused key rotation statements already quarantined (`path@blob`), so each is
    /// reported once; at most [`MAX_REFUSED_ROTATIONS`].
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub refused_rotations: std::collections::BTreeSet<String>,
    /// What the last follow of key rotation statements depended on
    /// (`rotations::fingerprint`); equal inputs are not read again.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rotations_followed: String,
}

/// Most refused rotation statements remembered (beyond it, one may be reported again).
pub const MAX_REFUSED_ROTATIONS: usize = 4096;

/// Resume point of an import cut short by its event budget.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartialImport {
    /// The ledger commit being imported.
    pub target: String,
    /// How many changed files (in tree order) of `commit..target` are done.
    pub done_files: u64,
    /// Per peer, the index of the first of its files before `done_files` left for a
    /// later import because the peer had reached its read caps.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub deferred: std::collections::BTreeMap<String, u64>,
}

impl ImportState {
    /// Every peer's missing seq ranges.
    pub fn gaps(&self) -> Vec<super::seqs::Gap> {
        self.peers.iter().flat_map(|(n, r)| r.gaps(n)).collect()
    }

    /// Per peer, the seq through which every event has been imported (the chain head).
    pub fn imported_through(&self) -> std::collections::BTreeMap<String, u64> {
        self.peers
            .keys()
            .map(|n| (n.clone(), self.heads.get(n).map_or(0, |h| h.seq)))
            .collect()
    }
}
