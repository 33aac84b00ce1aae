//! Quarantine of rejected ledger input: one record per bad file (its bytes, capped,
//! beside a `.reason` file listing every bad line), counted per peer in an index and
//! pruned oldest first past the peer's caps (`[import] quarantine_max_files`,
//! `quarantine_max_bytes`). The same blob at many paths is one record.

use crate::fsutil::{IoContext, PathError, write_atomic};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

/// At most this much of a rejected item is kept (the reason names its blob for the rest).
pub const KEEP_BYTES: usize = 64 * 1024;

/// Why an item of a peer's outbox was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A symbolic link where a file belongs.
    Symlink,
    /// A submodule or other entry that is not a regular file.
    NotAFile,
    /// A path that is not `<node>/<dir>/<seq>.ndjson` or `<node>/<event_id>.json`.
    UnexpectedPath,
    /// An outbox directory that is not a valid node id.
    BadNodeDir,
    /// A file larger than the import cap.
    FileTooLarge,
    /// A file that is not UTF-8.
    NotUtf8,
    /// A line longer than the import cap.
    LineTooLong,
    /// A line or file that is not JSON.
    InvalidJson,
    /// JSON that is not an event envelope, or an envelope field that breaks a rule.
    InvalidEvent,
    /// An id that does not match the event's content.
    IdMismatch,
    /// A payload number not written in the form its id and signature cover (I-JSON).
    NonCanonical,
    /// An event whose `node_id` is not the outbox it was found in.
    WrongNode,
    /// A one-event file whose name is not its event id.
    NameMismatch,
    /// A payload that breaks its event type's schema (import policy `quarantine`).
    SchemaViolation,
    /// A JSON object with the same key twice (parsers disagree on which one wins).
    DuplicateKey,
    /// A signature that does not verify with the node's pinned key.
    BadSignature,
    /// No signature where one is required (a keyed node, or `require_signatures`).
    Unsigned,
    /// A signed event of a node whose key is unknown while `require_signatures` is on.
    NoKey,
    /// The node's manifest offers a key that differs from the pinned one (held until trusted).
    UntrustedKey,
    /// A different event with a seq (or prev) this node already accepted from that peer.
    Fork,
    /// A batch that existed at the last imported commit was modified or deleted.
    HistoryRewrite,
    /// A key rotation statement that is malformed, not signed by both keys, or not
    /// signed by the key trusted for its node (forged or replayed).
    BadRotation,
}

impl Reason {
    /// The snake_case code written to `.reason` files and reports.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Symlink => "symlink",
            Reason::NotAFile => "not_a_file",
            Reason::UnexpectedPath => "unexpected_path",
            Reason::BadNodeDir => "bad_node_dir",
            Reason::FileTooLarge => "file_too_large",
            Reason::NotUtf8 => "not_utf8",
            Reason::LineTooLong => "line_too_long",
            Reason::InvalidJson => "invalid_json",
            Reason::InvalidEvent => "invalid_event",
            Reason::IdMismatch => "id_mismatch",
            Reason::NonCanonical => "non_canonical",
            Reason::WrongNode => "wrong_node",
            Reason::NameMismatch => "name_mismatch",
            Reason::SchemaViolation => "schema_violation",
            Reason::DuplicateKey => "duplicate_key",
            Reason::BadSignature => "bad_signature",
            Reason::Unsigned => "unsigned",
            Reason::NoKey => "no_key",
            Reason::UntrustedKey => "untrusted_key",
            Reason::Fork => "fork",
            Reason::HistoryRewrite => "history_rewrite",
            Reason::BadRotation => "bad_rotation",
        }
    }
}

/// One rejected item, as reported by import.
#[derive(Debug, Clone, Serialize)]
pub struct Rejected {
    /// Path in the ledger repository.
    pub path: String,
    /// 1-based line within the file, when one line was rejected.
    pub line: Option<usize>,
    /// Why.
    pub reason: Reason,
    /// Details (the validation message).
    pub detail: String,
    /// File name under the quarantine directory (the file's one record).
    pub file: String,
}

/// One bad item of a file, listed in the file's record.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// 1-based line, or `None` for the whole file.
    pub line: Option<usize>,
    /// Why.
    pub reason: Reason,
    /// Details (the validation message).
    pub detail: String,
}

/// Where a record of outbox path `rel` (relative to the outbox root) is counted: its
/// directory when that is a node id, else one bucket shared by every malformed name.
pub fn bucket(rel: &str) -> &str {
    let first = rel.split('/').next().unwrap_or("");
    if crate::event::validate_node_id(first).is_ok() {
        first
    } else {
        INVALID_BUCKET
    }
}

/// The bucket of outbox directories that are not node ids.
pub const INVALID_BUCKET: &str = "(invalid)";

/// Per-peer bounds of the quarantine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Caps {
    /// Records kept per peer.
    pub max_files: u64,
    /// Bytes (kept content plus reason text) per peer.
    pub max_bytes: u64,
}

/// One record in the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// File name under the quarantine directory.
    pub file: String,
    /// Bytes on disk: the kept content and its `.reason`.
    pub bytes: u64,
    /// The git object the record holds (the same object elsewhere is not stored again).
    pub blob: String,
    /// Further paths found holding the same object, counted here instead of stored.
    #[serde(default)]
    pub repeats: u64,
}

/// One peer's records, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerRecords {
    /// The records on disk.
    #[serde(default)]
    pub records: VecDeque<Record>,
    /// Records removed so far to stay within the caps.
    #[serde(default)]
    pub pruned: u64,
}

/// The quarantine index: every import record by peer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Index {
    /// Records by peer (see [`bucket`]).
    #[serde(default)]
    pub peers: BTreeMap<String, PeerRecords>,
}

/// A peer's use of the quarantine, for status and metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PeerUsage {
    /// The peer (an outbox directory, or [`INVALID_BUCKET`]).
    pub peer: String,
    /// Records kept.
    pub files: u64,
    /// Bytes kept.
    pub bytes: u64,
    /// Records removed to stay within the caps.
    pub pruned: u64,
    /// Paths that held an already quarantined object (counted, not stored).
    pub repeats: u64,
}

impl Index {
    /// Every peer's usage, in peer order.
    pub fn usage(&self) -> Vec<PeerUsage> {
        self.peers
            .iter()
            .map(|(peer, p)| PeerUsage {
                peer: peer.clone(),
                files: p.records.len() as u64,
                bytes: p.records.iter().map(|r| r.bytes).sum(),
                pruned: p.pruned,
                repeats: p.records.iter().map(|r| r.repeats).sum(),
            })
            .collect()
    }
}

/// How many of the oldest `records` must go for the rest to fit `caps`.
pub fn to_prune(records: &VecDeque<Record>, caps: Caps) -> usize {
    let mut files = records.len() as u64;
    let mut bytes: u64 = records.iter().map(|r| r.bytes).sum();
    let mut n = 0;
    for r in records {
        if files <= caps.max_files && bytes <= caps.max_bytes {
            break;
        }
        files -= 1;
        bytes -= r.bytes;
        n += 1;
    }
    n
}

/// Largest index file read; a larger one is set aside with a warning.
pub const INDEX_MAX_BYTES: u64 = 64 << 20;

/// The index at `path`: empty when absent; an unreadable, oversized or invalid index
/// is reported with a warning and started afresh (older records are then uncounted).
pub fn load_index(path: &Path) -> Index {
    let too_big = std::fs::metadata(path).is_ok_and(|m| m.len() > INDEX_MAX_BYTES);
    if too_big {
        tracing::warn!(path = %path.display(), max = INDEX_MAX_BYTES, "quarantine index too large; starting a new one");
        return Index::default();
    }
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), error = %e, "quarantine index unreadable; starting a new one");
            Index::default()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Index::default(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "quarantine index unreadable; starting a new one");
            Index::default()
        }
    }
}

/// At most this many bad lines are listed in one `.reason` file (the rest are counted).
pub const LISTED_ITEMS: usize = 100;

/// The quarantine directory of a node, with its per-peer index.
#[derive(Debug)]
pub struct Quarantine {
    dir: PathBuf,
    index_path: PathBuf,
    caps: Caps,
    index: Option<Index>,
    dirty: bool,
}

/// A file name made of `[A-Za-z0-9._-]` from a ledger path and the object it held,
/// unique per (path, object).
pub fn file_name(ledger_path: &str, blob: &str) -> String {
    let mut flat: String = ledger_path
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '.'
            }
        })
        .collect();
    if flat.len() > 120 {
        let cut = flat.len() - 120;
        flat = flat[cut..].to_string();
    }
    let tag = blake3::hash(format!("{ledger_path}\n{blob}").as_bytes()).to_hex();
    format!("import-{flat}-{}", &tag[..8])
}

/// The `.reason` text of a record.
fn reason_text(
    ledger_path: &str,
    blob: &str,
    items: &[Item],
    source: &str,
    size: usize,
    kept: usize,
) -> String {
    let mut text = match items.first() {
        Some(i) => format!("{}: {}\n", i.reason.code(), i.detail),
        None => "unknown: no reason given\n".to_string(),
    };
    text.push_str(&format!("file: {ledger_path}\nobject: {blob}\n"));
    if let [Item { line: Some(n), .. }] = items {
        text.push_str(&format!("line: {n}\n"));
    }
    text.push_str(&format!("source: {source}\nsize: {size} bytes"));
    if kept < size {
        text.push_str(&format!(" (first {kept} kept)"));
    }
    text.push('\n');
    if items.len() > 1 {
        text.push_str(&format!("items: {}\n", items.len()));
        for i in items.iter().take(LISTED_ITEMS) {
            let at = i.line.map_or("file".to_string(), |n| format!("line {n}"));
            let detail: String = i.detail.chars().take(200).collect();
            text.push_str(&format!("{at}: {}: {detail}\n", i.reason.code()));
        }
        if items.len() > LISTED_ITEMS {
            text.push_str(&format!("... and {} more\n", items.len() - LISTED_ITEMS));
        }
    }
    text
}

impl Quarantine {
    /// The quarantine under `dir`, indexed in `index_path`, each peer held to `caps`.
    pub fn new(dir: PathBuf, index_path: PathBuf, caps: Caps) -> Quarantine {
        Quarantine {
            dir,
            index_path,
            caps,
            index: None,
            dirty: false,
        }
    }

    fn index(&mut self) -> &mut Index {
        let path = &self.index_path;
        self.index.get_or_insert_with(|| load_index(path))
    }

    /// The record of `peer` that holds object `blob`, if any; counts one more path for it.
    pub fn repeat(&mut self, peer: &str, blob: &str) -> Option<String> {
        let rec = self
            .index()
            .peers
            .get_mut(peer)?
            .records
            .iter_mut()
            .find(|r| r.blob == blob)?;
        rec.repeats += 1;
        let file = rec.file.clone();
        self.dirty = true;
        Some(file)
    }

    /// Stores one record for ledger file `ledger_path` (object `blob`) of `peer`: the
    /// first `KEEP_BYTES` of `content` and a `.reason` listing `items`; then removes the
    /// peer's oldest records past its caps. Returns the record's file name.
    pub fn put(
        &mut self,
        peer: &str,
        ledger_path: &str,
        blob: &str,
        content: &[u8],
        items: &[Item],
        source: &str,
    ) -> Result<String, PathError> {
        let name = file_name(ledger_path, blob);
        let kept = &content[..content.len().min(KEEP_BYTES)];
        write_atomic(&self.dir.join(&name), kept, false)?;
        let text = reason_text(ledger_path, blob, items, source, content.len(), kept.len());
        write_atomic(
            &self.dir.join(format!("{name}.reason")),
            text.as_bytes(),
            true,
        )?;
        let caps = self.caps;
        let entry = self.index().peers.entry(peer.to_string()).or_default();
        // Written again (a held file re-read): one record, not two.
        entry.records.retain(|r| r.file != name);
        entry.records.push_back(Record {
            file: name.clone(),
            bytes: (kept.len() + text.len()) as u64,
            blob: blob.to_string(),
            repeats: 0,
        });
        let n = to_prune(&entry.records, caps);
        let gone: Vec<Record> = entry.records.drain(..n).collect();
        entry.pruned += n as u64;
        self.dirty = true;
        for r in gone {
            for f in [r.file.clone(), format!("{}.reason", r.file)] {
                let p = self.dir.join(f);
                match std::fs::remove_file(&p) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        Err::<(), _>(e).ctx("remove", &p)?
                    }
                    _ => {}
                }
            }
        }
        Ok(name)
    }

    /// Writes the index if this run changed it.
    pub fn save(&mut self) -> Result<(), PathError> {
        if !self.dirty {
            return Ok(());
        }
        if let Some(index) = &self.index {
            let bytes = serde_json::to_vec(index).map_err(|e| PathError {
                op: "encode",
                path: self.index_path.clone(),
                source: std::io::Error::other(e),
            })?;
            write_atomic(&self.index_path, &bytes, true)?;
        }
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
