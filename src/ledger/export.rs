//! `mesh-export`: the node's own new events as immutable batch files, plus its manifest.
//!
//! The log is read from a saved byte offset, so the cost follows the new events;
//! batches are written into the ledger repository with git2 by rewriting only
//! the directories they land in.

use super::Result;
use super::lock::SyncLock;
use super::state::{self, ExportState, ImportState};
use super::{LedgerError, Manifest};
use crate::git::RepoContext;
use crate::git::remote::{local_ref, tracking_ref};
use crate::git::tree::{self, Edit};
use crate::node::Node;
use crate::store::layout::Layout;
use git2::Repository;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;

/// A batch file stays under this many bytes (GitHub recommends files under 1 MB).
pub const MAX_BATCH_BYTES: usize = 1_000_000;
/// No ledger directory written by export holds more than this many entries.
pub const MAX_DIR_ENTRIES: usize = 3000;

/// The file name of a batch: its first seq (12 digits) and the first 16 hex digits
/// of the BLAKE3 hash of its bytes, `<seq>.<hash>.ndjson`. Nobody can pre-empt the
/// name by planting a file there before the batch exists: another content has
/// another name.
pub fn batch_file_name(first_seq: u64, bytes: &[u8]) -> String {
    let hash = blake3::hash(bytes).to_hex();
    format!("{first_seq:012}.{}.ndjson", &hash[..16])
}

/// The first seq a batch file name claims: `<seq>.<hash>.ndjson`, or the older
/// `<seq>.ndjson`, which is still read.
pub fn batch_first_seq(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".ndjson")?;
    let seq = match stem.split_once('.') {
        Some((seq, hash))
            if hash.len() == 16
                && hash
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            seq
        }
        Some(_) => return None,
        None => stem,
    };
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    seq.parse().ok()
}

/// What an export did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportReport {
    /// This node.
    pub node_id: String,
    /// Own events written to the ledger now.
    pub exported_events: u64,
    /// Every own event through this seq is in the ledger.
    pub exported_through_seq: u64,
    /// Batch files written (paths in the ledger repository).
    pub batches: Vec<String>,
    /// The manifest was rewritten.
    pub manifest_updated: bool,
    /// Schema files carried into the ledger.
    pub schemas: Vec<String>,
    /// Why a copy of this node's manifest was ignored and overwritten: someone else
    /// changed it (an alert).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub foreign_manifest: Option<String>,
    /// The local ledger commit made, if anything changed.
    pub commit: Option<String>,
    /// False when `--max-events` left own events for the next export.
    pub complete: bool,
}

/// One own event to export: its seq, UTC day and serialized line.
#[derive(Debug, Clone)]
pub struct Line {
    /// The event's seq.
    pub seq: u64,
    /// `YYYY-MM-DD` of its timestamp.
    pub day: String,
    /// The exact bytes of its log line (no newline).
    pub bytes: Vec<u8>,
}

/// One planned batch file: the directory under the node's outbox and its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// `<YYYY-MM-DD>` or, once that holds `MAX_DIR_ENTRIES` files, `<YYYY-MM-DD>.<n>`.
    pub dir: String,
    /// Seq of its first event (the file name).
    pub first_seq: u64,
    /// Index range into the lines.
    pub lines: std::ops::Range<usize>,
}

/// Splits lines (in seq order) into batches: a new file at each new day, before a file
/// would reach `max_bytes`, and in the next `<day>.<n>` directory once one is full.
/// `existing(dir)` tells how many entries a directory already holds.
pub fn plan_batches(
    lines: &[Line],
    max_bytes: usize,
    max_entries: usize,
    mut existing: impl FnMut(&str) -> usize,
) -> Vec<Batch> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<Batch> = Vec::new();
    let mut size = 0usize;
    for (i, line) in lines.iter().enumerate() {
        let len = line.bytes.len() + 1;
        let extend = match out.last() {
            Some(b) => {
                let same_day = lines[b.lines.start].day == line.day;
                same_day && size + len <= max_bytes
            }
            None => false,
        };
        if extend {
            if let Some(b) = out.last_mut() {
                b.lines.end = i + 1;
            }
            size += len;
            continue;
        }
        let mut n = 0;
        let dir = loop {
            let dir = if n == 0 {
                line.day.clone()
            } else {
                format!("{}.{n}", line.day)
            };
            let count = *counts.entry(dir.clone()).or_insert_with(|| existing(&dir));
            if count < max_entries {
                break dir;
            }
            n += 1;
        };
        *counts.entry(dir.clone()).or_insert(0) += 1;
        out.push(Batch {
            dir,
            first_seq: line.seq,
            lines: i..i + 1,
        });
        size = len;
    }
    out
}

/// The manifest to write, or `None` when the ledger's copy only differs by an heartbeat
/// younger than `heartbeat` (so a sync with nothing new pushes nothing).
pub fn manifest_update(
    old: Option<&Manifest>,
    desired: Manifest,
    now: chrono::DateTime<chrono::Utc>,
    heartbeat: Duration,
) -> Option<Manifest> {
    let old = old?;
    let same = Manifest {
        last_seen: old.last_seen.clone(),
        sig: old.sig.clone(),
        ..desired.clone()
    } == *old;
    let fresh = crate::event::parse_timestamp(&old.last_seen)
        .is_some_and(|t| (now - t).to_std().is_ok_and(|age| age < heartbeat));
    if same && fresh { None } else { Some(desired) }
}

/// Staged schema files (`state/event_mesh/schema_outbox/<rel>`) as (relative path, bytes).
pub fn staged_schemas(node: &Node) -> Result<Vec<(String, Vec<u8>)>> {
    let root = node.paths.schema_outbox();
    let mut out = Vec::new();
    let mut stack = vec![(root.clone(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let Some(entries) = crate::fsutil::read_dir_opt(&dir)? else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ok_name = !name.starts_with('.')
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            let Ok(ft) = entry.file_type() else { continue };
            if !ok_name || ft.is_symlink() {
                tracing::warn!(file = %entry.path().display(), "staged schema file skipped (hidden, odd name or symlink)");
                continue;
            }
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if ft.is_dir() {
                stack.push((entry.path(), child));
            } else if ft.is_file() {
                let bytes = std::fs::read(entry.path()).map_err(|e| crate::fsutil::PathError {
                    op: "read",
                    path: entry.path(),
                    source: e,
                })?;
                if bytes.len() >= MAX_BATCH_BYTES {
                    tracing::warn!(file = %entry.path().display(), "staged schema file over 1 MB skipped");
                    continue;
                }
                out.push((child, bytes));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Edits placing staged schema files under `<dir>/schemas/`.
pub fn schema_edits(
    repo: &Repository,
    layout: &Layout,
    staged: &[(String, Vec<u8>)],
) -> std::result::Result<Vec<Edit>, git2::Error> {
    staged
        .iter()
        .map(|(rel, bytes)| {
            Ok(Edit::blob(
                format!("{}/schemas/{rel}", layout.dir),
                repo.blob(bytes)?,
            ))
        })
        .collect()
}

/// Exports own events not yet in the ledger (at most `max_events`) into a local ledger commit.
pub fn export(node: &Node, lock: &SyncLock, max_events: Option<u64>) -> Result<ExportReport> {
    // An interrupted key rotation is finished before anything is signed.
    crate::keys::rotation::local::finish(&node.paths, node.key_file().as_deref())
        .map_err(LedgerError::from)?;
    super::recover::recover_own(node, lock)?;
    let path = node.paths.ledger_repo();
    let repo = crate::store::repo::open_at(&path)?;
    let layout = Layout::new(&node.config.ledger.dir);
    let me = node.id();
    let branch = &super::refs::own_branch(&node.config);
    let base = super::refs::own_base(&repo, &node.config).in_repo(&path)?;
    let remote = tree::ref_target(&repo, &tracking_ref(branch)).in_repo(&path)?;
    let base_tree = tree::tree_of(&repo, base).in_repo(&path)?;
    let remote_tree = tree::tree_of(&repo, remote).in_repo(&path)?;
    let manifest_path = layout.manifest(me);
    let key = node
        .signing_key()
        .map_err(LedgerError::from)?
        .map(|(k, _)| k);
    let public = key.as_ref().map(|k| k.public_hex());
    let rotations =
        crate::keys::rotation::local::load_own(&node.paths).map_err(LedgerError::from)?;
    // A node owns its manifest: with a key, only a copy it signed itself (with this key
    // or one it rotated away from) counts; any other is someone else's change, reported
    // and overwritten by this export.
    let own = |m: Option<Manifest>, report: &mut Option<String>| match (&public, m) {
        (Some(k), Some(m))
            if !m.signed_by(k) && !rotations.iter().any(|r| m.signed_by(&r.old_public_key)) =>
        {
            let why = match m.check_signature() {
                super::manifest::Signed::Valid => "signed by another key".to_string(),
                super::manifest::Signed::Keyless => "publishes no key".to_string(),
                super::manifest::Signed::Invalid(why) => why,
            };
            tracing::warn!(file = %manifest_path, %why, "own manifest changed by someone else; ignored and restored");
            *report = Some(why);
            None
        }
        (_, m) => m,
    };
    let mut foreign = None;
    let mut old_manifest = super::manifest::at(&repo, base_tree, &manifest_path);
    // One this node wrote before manifests were signed is trusted once and re-signed below.
    let unsigned_before = old_manifest.as_ref().is_some_and(|m| m.sig.is_none());
    if !unsigned_before {
        old_manifest = own(old_manifest, &mut foreign);
    }
    let remote_manifest = own(
        super::manifest::at(&repo, remote_tree, &manifest_path),
        &mut foreign,
    );
    let ledger_seq = [old_manifest.as_ref(), remote_manifest.as_ref()]
        .into_iter()
        .flatten()
        .map(|m| m.exported_through_seq)
        .max()
        .unwrap_or(0);

    let saved: ExportState = state::load(&node.paths.export_seen())?;
    let head = node.log.head()?;
    let Some(mut st) = resume_point(&saved, ledger_seq, head.own_seq, head.log_len) else {
        return Err(LedgerError::StaleNode {
            node: me.to_string(),
            ledger_seq,
            local_seq: head.own_seq,
        });
    };
    let (lines, next_offset, complete) =
        collect(node, &st, head.log_len, max_events, key.as_ref())?;

    let outbox = layout.outbox(me);
    let own_tree = tree::subtree_at(&repo, base_tree, &outbox).in_repo(&path)?;
    let batches = plan_batches(&lines, MAX_BATCH_BYTES, MAX_DIR_ENTRIES, |dir| {
        tree::subtree_at(&repo, own_tree, dir)
            .ok()
            .flatten()
            .and_then(|t| repo.find_tree(t).ok())
            .map_or(0, |t| t.len())
    });
    let mut report = ExportReport {
        node_id: me.to_string(),
        complete,
        ..ExportReport::default()
    };
    let mut edits = Vec::with_capacity(batches.len() + 2);
    for b in &batches {
        let bytes = batch_bytes(&lines[b.lines.clone()]);
        let file = format!(
            "{outbox}/{}/{}",
            b.dir,
            batch_file_name(b.first_seq, &bytes)
        );
        edits.push(Edit::blob(file.clone(), repo.blob(&bytes).in_repo(&path)?));
        report.batches.push(file);
    }
    if let Some(last) = lines.last() {
        st.exported_through_seq = last.seq;
    }
    report.exported_events = lines.len() as u64;
    report.exported_through_seq = st.exported_through_seq;

    let imports: ImportState = state::load(&node.paths.import_state())?;
    let now = chrono::Utc::now();
    let desired = Manifest {
        node_id: me.to_string(),
        capabilities: node.config.capabilities.clone(),
        labels: node.config.labels.clone(),
        public_key: public
            .clone()
            .or_else(|| old_manifest.as_ref().and_then(|m| m.public_key.clone())),
        version: env!("CARGO_PKG_VERSION").to_string(),
        last_seen: crate::event::format_timestamp(now),
        exported_through_seq: st.exported_through_seq,
        imported_through: imports.imported_through(),
        sig: None,
    };
    let heartbeat = node.config.sync.stale_after.0 / 3;
    let update = match &old_manifest {
        Some(_) if unsigned_before && key.is_some() => Some(desired),
        Some(old) if foreign.is_none() => manifest_update(Some(old), desired, now, heartbeat),
        _ => Some(desired),
    };
    report.foreign_manifest = foreign;
    if let Some(m) = update {
        let m = match &key {
            Some(k) => m.signed(k),
            None => m,
        };
        let mut bytes = serde_json::to_vec_pretty(&m).map_err(|e| LedgerError::BadFile {
            path: manifest_path.clone(),
            reason: format!("cannot serialize the manifest: {e}"),
        })?;
        bytes.push(b'\n');
        edits.push(Edit::blob(manifest_path, repo.blob(&bytes).in_repo(&path)?));
        report.manifest_updated = true;
    }
    // This node's rotation statements: every export writes any the ledger lacks.
    for r in &rotations {
        let file = format!("{}/{}", layout.rotations(me), r.file_name());
        let blob = repo.blob(&r.to_file()).in_repo(&path)?;
        let there = tree::entry_at(&repo, base_tree, &file).in_repo(&path)?;
        if there.map(|(o, _)| o) != Some(blob) {
            edits.push(Edit::blob(file, blob));
        }
    }
    let staged = staged_schemas(node)?;
    edits.extend(schema_edits(&repo, &layout, &staged).in_repo(&path)?);
    report.schemas = staged.into_iter().map(|(rel, _)| rel).collect();

    if !edits.is_empty() {
        let new_tree = tree::apply_edits(&repo, base_tree, &edits).in_repo(&path)?;
        if Some(new_tree) != base_tree {
            let msg = match (lines.first(), lines.last()) {
                (Some(a), Some(b)) => format!("gitmesh {me}: export seq {}..{}", a.seq, b.seq),
                _ => format!("gitmesh {me}: manifest"),
            };
            let commit = tree::commit(&repo, new_tree, base, me, &msg).in_repo(&path)?;
            tree::set_ref(&repo, &local_ref(branch), commit, &msg).in_repo(&path)?;
            report.commit = Some(commit.to_string());
        }
    }
    st.scan_offset = next_offset;
    state::save(&node.paths.export_seen(), &st)?;
    Ok(report)
}

/// Where an export resumes: the saved state, moved past what the ledger already holds of
/// this node's events, with a scan offset beyond the log's end reset to its start (the
/// log was rebuilt). `None` when the ledger holds more own events than the log: a root
/// restored from an older copy, which must not export (it would reuse seqs).
pub fn resume_point(
    saved: &ExportState,
    ledger_seq: u64,
    own_seq: u64,
    log_len: u64,
) -> Option<ExportState> {
    let mut st = saved.clone();
    if ledger_seq > st.exported_through_seq {
        if own_seq < ledger_seq {
            return None;
        }
        st.exported_through_seq = ledger_seq;
    }
    if st.scan_offset > log_len {
        st.scan_offset = 0;
    }
    Some(st)
}

/// The content of one batch file: its signed lines, each ending in a newline.
fn batch_bytes(lines: &[Line]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(lines.iter().map(|l| l.bytes.len() + 1).sum());
    for l in lines {
        bytes.extend_from_slice(&l.bytes);
        bytes.push(b'\n');
    }
    bytes
}

/// Own events after `st.exported_through_seq`, read from `st.scan_offset`, signed with
/// `key` when the node has one; returns them, the offset to resume from, and whether
/// everything up to `end` was taken.
fn collect(
    node: &Node,
    st: &ExportState,
    end: u64,
    max: Option<u64>,
    key: Option<&crate::keys::NodeKey>,
) -> Result<(Vec<Line>, u64, bool)> {
    let me = node.id();
    let mut lines = Vec::new();
    let mut scan = node.log.scan(st.scan_offset, end)?;
    let mut expected = st.exported_through_seq + 1;
    if max == Some(0) {
        return Ok((lines, st.scan_offset, false));
    }
    while let Some((_, raw)) = scan.next_raw()? {
        let Ok(env) = crate::event::Envelope::from_json_line(raw) else {
            continue;
        };
        if env.node_id != me || env.seq < expected {
            continue;
        }
        if env.seq != expected {
            return Err(LedgerError::SeqGap {
                node: me.to_string(),
                expected,
                found: env.seq,
            });
        }
        expected += 1;
        lines.push(Line {
            seq: env.seq,
            day: env.timestamp.get(..10).unwrap_or("unknown").to_string(),
            bytes: raw.to_vec(),
        });
        if max.is_some_and(|m| lines.len() as u64 >= m) {
            let offset = scan.offset();
            sign_lines(&mut lines, key)?;
            return Ok((lines, offset, false));
        }
    }
    let offset = scan.offset();
    sign_lines(&mut lines, key)?;
    Ok((lines, offset, true))
}

/// Adds `sig` to every unsigned line, on up to four threads (signing is export's main cost).
fn sign_lines(lines: &mut [Line], key: Option<&crate::keys::NodeKey>) -> Result<()> {
    let Some(key) = key else { return Ok(()) };
    let sign = |chunk: &mut [Line]| -> std::result::Result<(), LedgerError> {
        for l in chunk {
            let Ok(mut env) = crate::event::Envelope::from_json_line(&l.bytes) else {
                continue;
            };
            if env.sig.is_none() {
                env.sig = Some(key.sign(&env)?);
                l.bytes = env.to_json_line().into_bytes();
            }
        }
        Ok(())
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4);
    if threads < 2 || lines.len() < 256 {
        return sign(lines);
    }
    let chunk = lines.len().div_ceil(threads);
    let results: Vec<std::result::Result<(), LedgerError>> = std::thread::scope(|s| {
        let handles: Vec<_> = lines
            .chunks_mut(chunk)
            .map(|c| s.spawn(move || sign(c)))
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(p) => std::panic::resume_unwind(p),
            })
            .collect()
    });
    for r in results {
        r?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
