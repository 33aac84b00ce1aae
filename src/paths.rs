//! Where everything lives inside a node root (docs/files.md).

use std::path::{Path, PathBuf};

/// The files and directories of one node root.
#[derive(Debug, Clone)]
pub struct NodePaths {
    /// The node root itself.
    pub root: PathBuf,
}

impl NodePaths {
    /// Paths under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        NodePaths { root: root.into() }
    }

    /// `mesh.toml`.
    pub fn config(&self) -> PathBuf {
        self.root.join("mesh.toml")
    }
    /// `artifacts/event_mesh/`.
    pub fn artifacts(&self) -> PathBuf {
        self.root.join("artifacts").join("event_mesh")
    }
    /// The append-only event log.
    pub fn events_log(&self) -> PathBuf {
        self.artifacts().join("events.ndjson")
    }
    /// The actuator audit log.
    pub fn commands_log(&self) -> PathBuf {
        self.artifacts().join("commands.ndjson")
    }
    /// `state/event_mesh/`.
    pub fn state(&self) -> PathBuf {
        self.root.join("state").join("event_mesh")
    }
    /// Dispatch resume point.
    pub fn dispatch_cursor(&self) -> PathBuf {
        self.state().join("dispatch_cursor.json")
    }
    /// Ids already dispatched.
    pub fn dispatch_seen(&self) -> PathBuf {
        self.state().join("dispatch_seen.json")
    }
    /// What has been exported.
    pub fn export_seen(&self) -> PathBuf {
        self.state().join("export_seen.json")
    }
    /// Clock offsets measured from peers' heartbeats, and the lease as last seen.
    pub fn clock_state(&self) -> PathBuf {
        self.state().join("clock.json")
    }
    /// Import watermarks.
    pub fn import_state(&self) -> PathBuf {
        self.state().join("import_state.json")
    }
    /// Quarantined input, one file per rejected item with its reason.
    pub fn quarantine(&self) -> PathBuf {
        self.state().join("quarantine")
    }
    /// The quarantine's per-peer index of import records (sizes, order, pruned counts).
    pub fn quarantine_index(&self) -> PathBuf {
        self.state().join("quarantine_index.json")
    }
    /// The last sync attempt and the last success, kept by every process that syncs.
    pub fn sync_state(&self) -> PathBuf {
        self.state().join("sync_state.json")
    }
    /// Events a user handler gave up on.
    pub fn dead_letter(&self) -> PathBuf {
        self.state().join("dead_letter.ndjson")
    }
    /// Held for a whole dispatch pass, so only one runs handlers per node.
    pub fn dispatch_lock(&self) -> PathBuf {
        self.state().join("dispatch.lock")
    }
    /// The actuator's record: applied command ids, epochs seen, lane states.
    pub fn actuator_state(&self) -> PathBuf {
        self.state().join("actuator.json")
    }
    /// User handler circuit breakers.
    pub fn handler_state(&self) -> PathBuf {
        self.state().join("handlers.json")
    }
    /// The node's keys.
    pub fn keys(&self) -> PathBuf {
        self.state().join("keys")
    }
    /// Summary of the log (length, counts, last own seq): derived, rebuilt when stale.
    pub fn log_head(&self) -> PathBuf {
        self.state().join("log_head.json")
    }
    /// Id -> offset index of the log: derived, rebuilt when stale.
    pub fn log_ids(&self) -> PathBuf {
        self.state().join("log_ids.bin")
    }
    /// Marker of a multi-line append in progress (start and end offsets).
    pub fn append_pending(&self) -> PathBuf {
        self.state().join("append.pending")
    }
    /// Held while a sync runs, so only one runs per node.
    pub fn sync_lock(&self) -> PathBuf {
        self.state().join("sync.lock")
    }
    /// Held by a running `gitmesh daemon`; holds its pid and HTTP address.
    pub fn daemon_lock(&self) -> PathBuf {
        self.state().join("daemon.lock")
    }
    /// Local schema override directory (`<topic>/<event_type>/v<N>.json`).
    pub fn schemas_local(&self) -> PathBuf {
        self.state().join("schemas")
    }
    /// Ledger schemas whose publisher signature verified, as last verified (`<topic>/<event_type>/v<N>.json`).
    pub fn schemas_verified(&self) -> PathBuf {
        self.state().join("schemas_verified")
    }
    /// What the last check of the ledger's schemas found (`schemas_verified.json`).
    pub fn schemas_verified_state(&self) -> PathBuf {
        self.state().join("schemas_verified.json")
    }
    /// Schemas staged by `gitmesh schema publish` for the next export into the ledger.
    pub fn schema_outbox(&self) -> PathBuf {
        self.state().join("schema_outbox")
    }
    /// Count of imported events accepted although they broke their schema.
    pub fn schema_flagged(&self) -> PathBuf {
        self.state().join("schema_flagged.json")
    }
    /// The ledger: a git repository of the shared remote.
    pub fn ledger_repo(&self) -> PathBuf {
        self.root.join("state").join("github_coordination")
    }
    /// Own batch files archived by compaction whose removal has not reached the remote yet.
    pub fn compact_pending(&self) -> PathBuf {
        self.state().join("compact_pending.json")
    }
    /// The embedded bare remote created by `mesh-init` without `--remote`.
    pub fn embedded_remote(&self) -> PathBuf {
        self.root.join("state").join("embedded_remote.git")
    }
}

impl AsRef<Path> for NodePaths {
    fn as_ref(&self) -> &Path {
        &self.root
    }
}
