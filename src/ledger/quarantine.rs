//! Quarantine of rejected ledger input: the item (capped) beside a `.reason` file.

use crate::fsutil::{PathError, write_atomic};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
    /// File name under the quarantine directory.
    pub file: String,
}

/// The quarantine directory of a node.
#[derive(Debug, Clone)]
pub struct Quarantine {
    dir: PathBuf,
}

/// A file name made of `[A-Za-z0-9._-]` from a ledger path (and line), unique per input.
pub fn file_name(ledger_path: &str, line: Option<usize>) -> String {
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
    let tag = blake3::hash(format!("{ledger_path}\n{line:?}").as_bytes()).to_hex();
    match line {
        Some(n) => format!("import-{flat}-line{n}-{}", &tag[..8]),
        None => format!("import-{flat}-{}", &tag[..8]),
    }
}

impl Quarantine {
    /// The quarantine under `dir`.
    pub fn new(dir: PathBuf) -> Quarantine {
        Quarantine { dir }
    }

    /// Stores (the first `KEEP_BYTES` of) `content` with its reason; returns the file name.
    pub fn put(
        &self,
        ledger_path: &str,
        line: Option<usize>,
        content: &[u8],
        reason: Reason,
        detail: &str,
        source: &str,
    ) -> Result<Rejected, PathError> {
        let name = file_name(ledger_path, line);
        let kept = &content[..content.len().min(KEEP_BYTES)];
        write_atomic(&self.dir.join(&name), kept, false)?;
        let mut text = format!("{}: {detail}\nfile: {ledger_path}\n", reason.code());
        if let Some(n) = line {
            text.push_str(&format!("line: {n}\n"));
        }
        text.push_str(&format!("source: {source}\nsize: {} bytes", content.len()));
        if kept.len() < content.len() {
            text.push_str(&format!(" (first {} kept)", kept.len()));
        }
        text.push('\n');
        write_atomic(
            &self.dir.join(format!("{name}.reason")),
            text.as_bytes(),
            true,
        )?;
        Ok(Rejected {
            path: ledger_path.to_string(),
            line,
            reason,
            detail: detail.to_string(),
            file: name,
        })
    }
}

#[cfg(test)]
mod tests;
