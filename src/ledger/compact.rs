//! `gitmesh ledger compact`: roll this node's batches that every live peer has
//! imported into monthly archive files, so the ledger head tree stays small.
//!
//! A node compacts only its own outbox (it writes nothing else), so compaction
//! never conflicts with anyone. Archives are batch-shaped files under
//! `outbox/<node>/archive-<YYYY-MM>/<first seq>-<last seq>.ndjson`, each under
//! 1 MB, holding the exact lines of the batches they replace: import reads them
//! like any batch, so a node joining later still gets every event.

use super::Result;
use super::export::MAX_BATCH_BYTES;
use super::lock::SyncLock;
use super::{LedgerError, Manifest, refs};
use crate::git::RepoContext;
use crate::git::remote::local_ref;
use crate::git::tree::{self, Edit, MODE_TREE};
use crate::node::Node;
use crate::store::layout::Layout;
use git2::{Oid, Repository};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Prefix of archive directories inside a node's outbox.
pub const ARCHIVE_PREFIX: &str = "archive-";

/// A peer left out of the watermark because it was not seen within the retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StalePeer {
    /// The peer.
    pub node_id: String,
    /// Its last heartbeat ("" when unknown).
    pub last_seen: String,
}

/// What a compaction did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CompactReport {
    /// This node.
    pub node_id: String,
    /// Own events through this seq are imported by every live peer.
    pub watermark: u64,
    /// Live peers holding the watermark lowest: (node, seq imported through).
    pub held_back_by: Vec<(String, u64)>,
    /// Peers stale longer than `[ledger] retention`, ignored for the watermark.
    pub stale_peers: Vec<StalePeer>,
    /// Batch files rolled into archives.
    pub archived_batches: u64,
    /// Archive files written.
    pub archive_files: Vec<String>,
    /// Batch files left in the outbox.
    pub remaining_batches: u64,
    /// The local ledger commit made (pushed by the next sync).
    pub commit: Option<String>,
}

/// The seq through which every live peer has imported `me`'s events, the peers at that
/// minimum, and the peers ignored as stale. `None` watermark: no live peer at all.
pub fn watermark(
    me: &str,
    manifests: &[Manifest],
    now: chrono::DateTime<chrono::Utc>,
    retention: Duration,
) -> (Option<u64>, Vec<(String, u64)>, Vec<StalePeer>) {
    let mut live: Vec<(String, u64)> = Vec::new();
    let mut stale = Vec::new();
    for m in manifests.iter().filter(|m| m.node_id != me) {
        let fresh = crate::event::parse_timestamp(&m.last_seen)
            .is_some_and(|t| (now - t).to_std().map_or(true, |age| age <= retention));
        if fresh {
            live.push((
                m.node_id.clone(),
                m.imported_through.get(me).copied().unwrap_or(0),
            ));
        } else {
            stale.push(StalePeer {
                node_id: m.node_id.clone(),
                last_seen: m.last_seen.clone(),
            });
        }
    }
    let min = live.iter().map(|(_, s)| *s).min();
    let held = live.into_iter().filter(|(_, s)| Some(*s) == min).collect();
    (min, held, stale)
}

/// One own batch file in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFile {
    /// Its directory (`YYYY-MM-DD` or `YYYY-MM-DD.<n>`).
    pub dir: String,
    /// Its file name.
    pub name: String,
    /// Seq of its first event (from the name).
    pub first_seq: u64,
}

/// The batches (sorted by first seq) whose every event is at or below `through`,
/// given that the node has exported through `exported`. A batch's last seq is the
/// next batch's first seq minus one (the last batch ends at `exported`).
pub fn archivable(batches: &[BatchFile], exported: u64, through: u64) -> usize {
    let mut n = 0;
    for (i, _) in batches.iter().enumerate() {
        let last = batches
            .get(i + 1)
            .map_or(exported, |b| b.first_seq.saturating_sub(1));
        if last > through {
            break;
        }
        n = i + 1;
    }
    n
}

/// Seq range of an archive file name `<first>-<last>.ndjson`.
pub fn archive_range(name: &str) -> Option<(u64, u64)> {
    let (a, b) = name.strip_suffix(".ndjson")?.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Whether import can skip an outbox file (`<node>/<dir>/<name>`): a batch or archive
/// dated before `since` (`YYYY-MM-DD`), or an archive whose events were all imported.
pub fn skip_on_import(rel: &str, since: Option<&str>, imported_through: u64) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    let [_, dir, name] = parts.as_slice() else {
        return false;
    };
    if let Some(month) = dir.strip_prefix(ARCHIVE_PREFIX) {
        if archive_range(name).is_some_and(|(_, last)| last <= imported_through) {
            return true;
        }
        return since.is_some_and(|s| month.len() == 7 && month < s.get(..7).unwrap_or(""));
    }
    let day = dir.get(..10).unwrap_or("");
    since.is_some_and(|s| day.len() == 10 && day.as_bytes()[4] == b'-' && day < s)
}

/// Own batch files under `outbox` (archives excluded), sorted by first seq.
fn own_batches(
    repo: &Repository,
    outbox: Option<Oid>,
) -> std::result::Result<Vec<BatchFile>, git2::Error> {
    let mut out = Vec::new();
    let Some(outbox) = outbox else {
        return Ok(out);
    };
    for day in repo.find_tree(outbox)?.iter() {
        let Ok(dir) = day.name() else { continue };
        if day.filemode() != MODE_TREE || dir.starts_with(ARCHIVE_PREFIX) {
            continue;
        }
        for f in repo.find_tree(day.id())?.iter() {
            let Ok(name) = f.name() else { continue };
            let Some(first_seq) = super::export::batch_first_seq(name) else {
                continue;
            };
            out.push(BatchFile {
                dir: dir.to_string(),
                name: name.to_string(),
                first_seq,
            });
        }
    }
    out.sort_by_key(|b| b.first_seq);
    Ok(out)
}

/// How many batch files this node's outbox holds on its own branch (archives excluded).
pub fn count_batches(node: &Node) -> Result<u64> {
    let path = node.paths.ledger_repo();
    let repo = crate::store::repo::open_at(&path)?;
    let layout = Layout::new(&node.config.ledger.dir);
    let base = refs::own_base(&repo, &node.config).in_repo(&path)?;
    let t = tree::tree_of(&repo, base).in_repo(&path)?;
    let outbox = tree::subtree_at(&repo, t, &layout.outbox(node.id())).in_repo(&path)?;
    Ok(own_batches(&repo, outbox).in_repo(&path)?.len() as u64)
}

/// Pending removals of archived batches (relative to the node's outbox).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Pending {
    removed: Vec<String>,
}

/// Consecutive batch lines of one month waiting to become one archive file.
#[derive(Default)]
struct ArchiveChunk {
    bytes: Vec<u8>,
    month: String,
    first: u64,
    last: u64,
}

impl ArchiveChunk {
    /// Writes the pending lines as one archive blob under `outbox_path` and empties the
    /// chunk, recording the tree edit and the archive's name; an empty chunk writes nothing.
    fn flush(
        &mut self,
        repo: &Repository,
        outbox_path: &str,
        edits: &mut Vec<Edit>,
        files: &mut Vec<String>,
    ) -> std::result::Result<(), git2::Error> {
        if self.bytes.is_empty() {
            return Ok(());
        }
        let (month, first, last) = (&self.month, self.first, self.last);
        let file = format!("{outbox_path}/{ARCHIVE_PREFIX}{month}/{first:012}-{last:012}.ndjson");
        edits.push(Edit::blob(file.clone(), repo.blob(&self.bytes)?));
        files.push(file);
        self.bytes.clear();
        Ok(())
    }
}

/// Compacts this node's outbox into a local commit (the next sync pushes it).
pub fn compact(node: &Node, lock: &SyncLock) -> Result<CompactReport> {
    compact_at_least(node, lock, 1)
}

/// The fewest archivable batches that make an automatic compaction write archives:
/// half the threshold, so a peer that lags by more than a threshold's worth of
/// batches but keeps advancing does not make every sync write another tiny archive.
pub fn auto_min_archivable(threshold: u64) -> usize {
    usize::try_from(threshold / 2).unwrap_or(usize::MAX).max(1)
}

/// [`compact`], writing nothing unless at least `min` batches can be archived.
fn compact_at_least(node: &Node, _lock: &SyncLock, min: usize) -> Result<CompactReport> {
    let path = node.paths.ledger_repo();
    let repo = crate::store::repo::open_at(&path)?;
    let layout = Layout::new(&node.config.ledger.dir);
    let me = node.id();
    let branch = refs::own_branch(&node.config);
    let base = refs::own_base(&repo, &node.config).in_repo(&path)?;
    let base_tree = tree::tree_of(&repo, base).in_repo(&path)?;
    let mut report = CompactReport {
        node_id: me.to_string(),
        ..CompactReport::default()
    };
    // Peers' manifests as last fetched; this node's own from the tree being compacted.
    let manifests = match crate::store::repo::peers_ref(&node.config, &node.paths) {
        Some(r) => super::manifest::read_all(&path, &r, &layout)?,
        None => Vec::new(),
    };
    let exported = super::manifest::at(&repo, base_tree, &layout.manifest(me))
        .map_or(0, |m| m.exported_through_seq);
    let (wm, held, stale) = watermark(
        me,
        &manifests,
        chrono::Utc::now(),
        node.config.ledger.retention.0,
    );
    for s in &stale {
        tracing::warn!(peer = %s.node_id, last_seen = %s.last_seen, "peer stale beyond the retention; compaction no longer waits for it");
    }
    let through = wm.unwrap_or(exported).min(exported);
    report.watermark = through;
    report.held_back_by = held;
    report.stale_peers = stale;

    let outbox_path = layout.outbox(me);
    let outbox = tree::subtree_at(&repo, base_tree, &outbox_path).in_repo(&path)?;
    let batches = own_batches(&repo, outbox).in_repo(&path)?;
    let n = archivable(&batches, exported, through);
    report.remaining_batches = batches.len() as u64;
    if n < min.max(1) {
        return Ok(report);
    }
    report.remaining_batches -= n as u64;
    let mut edits = Vec::new();
    let mut removed = Vec::new();
    // Group consecutive batches by month; chunk each group under the batch size cap.
    let mut chunk = ArchiveChunk::default();
    for (i, b) in batches[..n].iter().enumerate() {
        let rel = format!("{}/{}", b.dir, b.name);
        let Some((oid, _)) = tree::entry_at(&repo, outbox, &rel).in_repo(&path)? else {
            continue;
        };
        let tree::Capped::Blob(blob) =
            tree::blob_capped(&repo, oid, super::verify::MAX_FILE_BYTES).in_repo(&path)?
        else {
            continue;
        };
        let content = blob.content();
        let last = batches
            .get(i + 1)
            .map_or(exported, |nb| nb.first_seq.saturating_sub(1));
        let month = b.dir.get(..7).unwrap_or("unknown").to_string();
        if !chunk.bytes.is_empty()
            && (month != chunk.month || chunk.bytes.len() + content.len() >= MAX_BATCH_BYTES)
        {
            chunk
                .flush(&repo, &outbox_path, &mut edits, &mut report.archive_files)
                .in_repo(&path)?;
        }
        if chunk.bytes.is_empty() {
            chunk.month = month;
            chunk.first = b.first_seq;
        }
        chunk.bytes.extend_from_slice(content);
        if !content.ends_with(b"\n") {
            chunk.bytes.push(b'\n');
        }
        chunk.last = last;
        edits.push(Edit::remove(format!("{outbox_path}/{rel}")));
        removed.push(rel);
    }
    chunk
        .flush(&repo, &outbox_path, &mut edits, &mut report.archive_files)
        .in_repo(&path)?;
    report.archived_batches = removed.len() as u64;

    let new_tree = tree::apply_edits(&repo, base_tree, &edits).in_repo(&path)?;
    let msg = format!(
        "gitmesh {me}: compact {} batches into {} archive files",
        removed.len(),
        report.archive_files.len()
    );
    let commit = tree::commit(&repo, new_tree, base, me, &msg).in_repo(&path)?;
    let mut pending: Pending = super::state::load(&node.paths.compact_pending())?;
    pending.removed.extend(removed);
    super::state::save(&node.paths.compact_pending(), &pending)?;
    tree::set_ref(&repo, &local_ref(&branch), commit, &msg).in_repo(&path)?;
    report.commit = Some(commit.to_string());
    Ok(report)
}

/// Removes archived batches from the node's merged outbox tree `merged` (the union
/// of the remote's and the local copy would otherwise bring them back); forgets the
/// pending list once the remote's outbox `theirs` no longer holds any of them.
pub fn apply_pending(
    repo: &Repository,
    node: &Node,
    theirs: Option<Oid>,
    merged: Option<Oid>,
) -> std::result::Result<Option<Oid>, LedgerError> {
    let file = node.paths.compact_pending();
    let pending: Pending = super::state::load(&file)?;
    if pending.removed.is_empty() {
        return Ok(merged);
    }
    let repo_path = node.paths.ledger_repo();
    let mut still_remote = false;
    for rel in &pending.removed {
        still_remote |= tree::entry_at(repo, theirs, rel)
            .in_repo(&repo_path)?
            .is_some();
    }
    if !still_remote {
        std::fs::remove_file(&file).map_err(|e| crate::fsutil::PathError {
            op: "remove",
            path: file.clone(),
            source: e,
        })?;
    }
    let edits: Vec<Edit> = pending.removed.iter().map(Edit::remove).collect();
    let Some(m) = merged else { return Ok(None) };
    Ok(Some(
        tree::apply_edits(repo, Some(m), &edits).in_repo(&repo_path)?,
    ))
}

/// Compacts when the node's outbox holds at least `[ledger] compact_after_files` batches.
pub fn maybe_compact(node: &Node, lock: &SyncLock) -> Result<Option<CompactReport>> {
    let threshold = node.config.ledger.compact_after_files;
    if threshold == 0 || count_batches(node)? < threshold {
        return Ok(None);
    }
    compact_at_least(node, lock, auto_min_archivable(threshold)).map(Some)
}

#[cfg(test)]
mod tests;
