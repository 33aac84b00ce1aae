//! Paths inside the shared repository (docs/ledger.md, "Where things live").

/// Where the ledger directory sits inside the repository (`event_mesh` by default).
#[derive(Debug, Clone)]
pub struct Layout {
    /// The ledger directory, relative to the repository root.
    pub dir: String,
}

impl Layout {
    /// Layout rooted at `dir`.
    pub fn new(dir: &str) -> Layout {
        Layout {
            dir: dir.trim_matches('/').to_string(),
        }
    }
    /// `<dir>/nodes`.
    pub fn nodes_dir(&self) -> String {
        format!("{}/nodes", self.dir)
    }
    /// `<dir>/nodes/<node>.json`.
    pub fn manifest(&self, node: &str) -> String {
        format!("{}/nodes/{node}.json", self.dir)
    }
    /// `<dir>/outbox`.
    pub fn outbox_root(&self) -> String {
        format!("{}/outbox", self.dir)
    }
    /// `<dir>/outbox/<node>`.
    pub fn outbox(&self, node: &str) -> String {
        format!("{}/outbox/{node}", self.dir)
    }
    /// `<dir>/outbox/<node>/<YYYY-MM-DD>/<first seq, zero-padded>.ndjson`.
    pub fn batch(&self, node: &str, day: &str, first_seq: u64) -> String {
        format!("{}/outbox/{node}/{day}/{first_seq:012}.ndjson", self.dir)
    }
    /// `<dir>/schemas`: `<topic>/<event_type>/v<N>.json` schema files.
    pub fn schemas(&self) -> String {
        format!("{}/schemas", self.dir)
    }
    /// `<dir>/leases/leader.json`.
    pub fn lease(&self) -> String {
        format!("{}/leases/leader.json", self.dir)
    }
    /// `<dir>/roster`: one signed file per roster version.
    pub fn roster_dir(&self) -> String {
        format!("{}/roster", self.dir)
    }
    /// `<dir>/roster/<version, zero-padded>.json`.
    pub fn roster(&self, version: u64) -> String {
        format!("{}/roster/{version:012}.json", self.dir)
    }
    /// `<dir>/keys`: key rotation statements, one directory per node.
    pub fn keys_dir(&self) -> String {
        format!("{}/keys", self.dir)
    }
    /// `<dir>/keys/<node>`: the rotation statements of one node (its own files).
    pub fn rotations(&self, node: &str) -> String {
        format!("{}/keys/{node}", self.dir)
    }
}
