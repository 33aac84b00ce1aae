//! Recovery of a node's own events from its outbox in the ledger, for a node root
//! restored from an older copy (a backup, or a CI cache): it must never reuse a seq.
//!
//! Two checks run: at every export and sync, the ledger's `exported_through_seq` of
//! this node is compared with the local log (two manifest reads); and before a
//! publish or dispatch appends own events, the identity of the node root's state
//! directory (device and inode, which a copy or restore changes) is compared with the
//! one recorded, so a restored root fetches and recovers before it appends anything.
//! The directory's birth time is compared too: a file system may hand a restored
//! directory the inode number its deleted original had.

use super::LedgerError;
use super::Result;
use super::lock::SyncLock;
use super::state::{self, ExportState};
use super::verify::{self, ImportLimits};
use crate::event::Envelope;
use crate::git::RepoContext;
use crate::git::remote::{self, local_ref, tracking_ref};
use crate::git::tree;
use crate::node::Node;
use crate::paths::NodePaths;
use crate::store::layout::Layout;
use git2::{Oid, Repository};
use serde::{Deserialize, Serialize};

/// Removes the lost-key marker, if there is one.
fn remove_marker(path: &std::path::Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(crate::fsutil::PathError {
            op: "remove",
            path: path.to_path_buf(),
            source: e,
        }
        .into()),
    }
}

/// What a recovery did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecoverReport {
    /// Own events found in the ledger and appended to the local log.
    pub recovered_events: u64,
    /// The highest own seq the ledger's manifest shows.
    pub ledger_seq: u64,
}

/// Recorded identity of the node root (`state/event_mesh/root_identity.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootIdentity {
    /// Device of the state directory.
    pub dev: u64,
    /// Inode of the state directory.
    pub ino: u64,
    /// Birth time of the state directory in nanoseconds since the epoch (0: unknown).
    #[serde(default)]
    pub born_ns: u64,
}

impl RootIdentity {
    /// Whether `now` is the same directory as this recorded identity.
    ///
    /// An unknown birth time on either side (a file recorded before birth times
    /// were, or a file system without them) falls back to device and inode.
    pub fn same_root(&self, now: &RootIdentity) -> bool {
        self.dev == now.dev
            && self.ino == now.ino
            && (self.born_ns == 0 || now.born_ns == 0 || self.born_ns == now.born_ns)
    }
}

fn identity_path(paths: &NodePaths) -> std::path::PathBuf {
    paths.state().join("root_identity.json")
}

/// Written when the ledger showed this node's events under another key than the root's
/// (`LedgerError::ForeignKey`): while it exists, nothing appends to the root.
fn foreign_key_path(paths: &NodePaths) -> std::path::PathBuf {
    paths.state().join("foreign_key.json")
}

/// Written by `mesh-init --replace-lost-key`: the root's key may replace the one key
/// the ledger holds for this node (recorded here once seen).
fn replace_key_path(paths: &NodePaths) -> std::path::PathBuf {
    paths.state().join("replace_key.json")
}

/// What `replace_key.json` records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplaceKey {
    /// The lost key this root's key replaces; `None` until the ledger was read.
    pub replaced_key: Option<String>,
}

/// Lets this root's key replace the node's lost key (`mesh-init --replace-lost-key`):
/// clears the lost-key block; peers then hold the node's new events until an operator
/// trusts the new key (`gitmesh nodes trust`).
pub fn allow_key_replacement(paths: &NodePaths) -> Result<()> {
    state::save(&replace_key_path(paths), &ReplaceKey::default())?;
    remove_marker(&foreign_key_path(paths))
}

/// What `foreign_key.json` records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignKey {
    /// The highest own seq the ledger holds.
    pub ledger_seq: u64,
    /// The public key the ledger's manifest holds for this node.
    pub ledger_key: String,
    /// The public key of the root's signing key when it was found.
    pub local_key: String,
}

impl ForeignKey {
    fn error(self, node: &str) -> LedgerError {
        LedgerError::ForeignKey {
            node: node.to_string(),
            ledger_seq: self.ledger_seq,
            ledger_key: self.ledger_key,
            local_key: self.local_key,
        }
    }
}

/// The key conflict recorded for this root, if any (see [`recover_own`]).
pub fn foreign_key(paths: &NodePaths) -> Result<Option<ForeignKey>> {
    Ok(crate::fsutil::read_json(&foreign_key_path(paths))?)
}

/// Decides whether this root's key may speak for the node the ledger knows (pure):
/// a manifest that names another key than `local` is a lost key.
pub fn check_key(manifest_key: Option<&str>, local: &str, ledger_seq: u64) -> Option<ForeignKey> {
    match manifest_key {
        Some(k) if k != local => Some(ForeignKey {
            ledger_seq,
            ledger_key: k.to_string(),
            local_key: local.to_string(),
        }),
        _ => None,
    }
}

/// The current identity of the node root.
pub fn current_identity(paths: &NodePaths) -> Result<RootIdentity> {
    let dir = paths.state();
    let meta = std::fs::metadata(&dir).map_err(|e| crate::fsutil::PathError {
        op: "stat",
        path: dir.clone(),
        source: e,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let born_ns = meta
            .created()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Ok(RootIdentity {
            dev: meta.dev(),
            ino: meta.ino(),
            born_ns,
        })
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Ok(RootIdentity::default())
    }
}

/// Records the node root's identity as the one that is known to be current.
pub fn mark_identity(paths: &NodePaths) -> Result<()> {
    let now = current_identity(paths)?;
    let recorded: Option<RootIdentity> = crate::fsutil::read_json(&identity_path(paths))?;
    if recorded.as_ref() != Some(&now) {
        state::save(&identity_path(paths), &now)?;
    }
    Ok(())
}

/// Before appending own events: if the root was copied or restored since its identity was
/// recorded, fetch and recover its own events first. `None` when nothing had to be done.
pub fn guard(node: &Node) -> Result<Option<RecoverReport>> {
    // A root that lost its key appends nothing until `mesh-init` with the key clears it.
    if let Some(f) = foreign_key(&node.paths)? {
        return Err(f.error(node.id()));
    }
    let path = identity_path(&node.paths);
    let now = current_identity(&node.paths)?;
    let recorded: Option<RootIdentity> = crate::fsutil::read_json(&path)?;
    match recorded {
        Some(r) if r.same_root(&now) => {
            if r != now {
                // Same root, recorded before its birth time was: record it now.
                state::save(&path, &now)?;
            }
            return Ok(None);
        }
        None => {
            state::save(&path, &now)?;
            return Ok(None);
        }
        Some(_) => {}
    }
    tracing::warn!("node root was copied or restored; recovering own events from the ledger");
    let lock = SyncLock::acquire(&node.paths, node.config.sync.lock_wait.0)?;
    let repo = node.paths.ledger_repo();
    let fetched = if super::refs::per_node(&node.config) {
        super::refs::fetch_all(
            &repo,
            &node.config.ledger.branch,
            true,
            None,
            node.config.sync.remote_timeout.0,
        )
        .map(|_| ())
    } else {
        remote::fetch(
            &repo,
            &node.config.ledger.branch,
            node.config.sync.remote_timeout.0,
        )
        .map(|_| ())
    };
    if let Err(e) = fetched {
        return Err(if e.is_unreachable() {
            LedgerError::RestoredOffline {
                detail: format!(
                    "{} has another device/inode than recorded",
                    node.paths.state().display()
                ),
                source: e,
            }
        } else {
            LedgerError::Git(e)
        });
    }
    let report = recover_own(node, &lock)?;
    state::save(&path, &now)?;
    Ok(Some(report))
}

/// Batch files of `outbox` in tree `root`, as (first seq, blob), sorted by seq.
fn own_batches(
    repo: &Repository,
    root: Option<Oid>,
    outbox: &str,
) -> std::result::Result<Vec<(u64, Oid)>, git2::Error> {
    let mut out = Vec::new();
    let Some(dir) = tree::subtree_at(repo, root, outbox)? else {
        return Ok(out);
    };
    for day in repo.find_tree(dir)?.iter() {
        if day.filemode() != tree::MODE_TREE {
            continue;
        }
        for f in repo.find_tree(day.id())?.iter() {
            let seq = f.name().ok().and_then(super::export::batch_first_seq);
            if let Some(seq) = seq
                && f.filemode() == tree::MODE_BLOB
            {
                out.push((seq, f.id()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Appends own events the ledger holds beyond the local log's last own seq, and moves
/// the export state past them. Errors with `own_fork` when the ledger's chain does not
/// continue the local one.
pub fn recover_own(node: &Node, _lock: &SyncLock) -> Result<RecoverReport> {
    let path = node.paths.ledger_repo();
    let repo = crate::store::repo::open_at(&path)?;
    let layout = Layout::new(&node.config.ledger.dir);
    let me = node.id();
    // In per-node-refs mode the node's own files live on its own ref.
    let branch = &super::refs::own_branch(&node.config);
    let mut best: Option<(u64, Option<Oid>, Option<String>)> = None;
    for r in [tracking_ref(branch), local_ref(branch)] {
        let root =
            tree::tree_of(&repo, tree::ref_target(&repo, &r).in_repo(&path)?).in_repo(&path)?;
        if let Some(m) = super::manifest::at(&repo, root, &layout.manifest(me))
            && best
                .as_ref()
                .is_none_or(|(s, _, _)| m.exported_through_seq > *s)
        {
            best = Some((m.exported_through_seq, root, m.public_key));
        }
    }
    let key = node
        .signing_key()
        .map_err(LedgerError::from)?
        .map(|(k, _)| k);
    let marker = foreign_key_path(&node.paths);
    let Some((ledger_seq, root, ledger_key)) = best else {
        remove_marker(&marker)?;
        return Ok(RecoverReport::default());
    };
    // The node's rotations, from its root and from the ledger (a re-created root has
    // only the latter): a key reached from the ledger's key through them is its own.
    let mut rotations = crate::keys::rotation::local::load_own(&node.paths)?;
    rotations.extend(
        super::rotations::read_node(&repo, root, &layout, me)
            .in_repo(&path)?
            .into_iter()
            .filter_map(|f| f.parsed.ok()),
    );
    let rotations = &rotations[..rotations
        .len()
        .min(crate::keys::rotation::MAX_STATEMENTS_PER_NODE * 2)];
    let rotated_to = |from: &str| {
        crate::keys::rotation::follow(
            me,
            &crate::keys::rotation::KeyHistory::single(from),
            rotations,
        )
        .history
    };
    // The ledger speaks for this node with another key: this root lost the node's key.
    if let Some(k) = &key
        && let Some(f) = check_key(ledger_key.as_deref(), &k.public_hex(), ledger_seq)
        && rotated_to(&f.ledger_key).current != f.local_key
    {
        let replace_path = replace_key_path(&node.paths);
        let replace: Option<ReplaceKey> = crate::fsutil::read_json(&replace_path)?;
        match replace {
            // The operator gave up the old key: this one key is replaced, once.
            Some(r)
                if r.replaced_key
                    .as_ref()
                    .is_none_or(|old| *old == f.ledger_key) =>
            {
                if r.replaced_key.is_none() {
                    let accepted = ReplaceKey {
                        replaced_key: Some(f.ledger_key.clone()),
                    };
                    state::save(&replace_path, &accepted)?;
                    tracing::warn!(old_key = %f.ledger_key, new_key = %f.local_key,
                        "node key replaced: peers hold its new events until `gitmesh nodes trust`");
                }
            }
            _ => {
                state::save(&marker, &f)?;
                return Err(f.error(me));
            }
        }
    }
    remove_marker(&marker)?;
    let mut report = RecoverReport {
        recovered_events: 0,
        ledger_seq,
    };
    if node.log.head()?.own_seq >= ledger_seq {
        return Ok(report);
    }
    let mut writer = node.log.writer()?;
    let head = writer.head().clone();
    if head.own_seq >= ledger_seq {
        return Ok(report);
    }
    let batches = own_batches(&repo, root, &layout.outbox(me)).in_repo(&path)?;
    let start = batches
        .iter()
        .rposition(|(s, _)| *s <= head.own_seq.max(1))
        .unwrap_or(0);
    // Own events in the ledger are signed by the key its manifest publishes (the root's
    // own key, or the one it replaced with `mesh-init --replace-lost-key`).
    let latest = match (&ledger_key, &key) {
        (Some(k), _) => Some(k.clone()),
        (None, Some(k)) => Some(k.public_hex()),
        (None, None) => None,
    };
    // Older events stay signed by the keys the node rotated away from.
    let public = match latest {
        Some(k) => {
            let first = crate::keys::rotation::origin(&k, rotations).to_string();
            let h = rotated_to(&first);
            Some(crate::keys::rotation::KeyChain::from_history(me, &h).map_err(LedgerError::from)?)
        }
        None => None,
    };
    let limits = ImportLimits::new(node.config.payload_limits());
    let mut chain = OwnChain::new(head.own_seq, &head.own_prev);
    let mut recovered: Vec<Envelope> = Vec::new();
    'files: for (_, oid) in &batches[start..] {
        let tree::Capped::Blob(blob) =
            tree::blob_capped(&repo, *oid, limits.max_file_bytes).in_repo(&path)?
        else {
            continue;
        };
        for r in verify::check_batch(me, blob.content(), &limits) {
            let verify::LineResult::Event(env) = r else {
                continue;
            };
            if let Some(p) = &public
                && crate::keys::verify(&env, p.for_seq(env.seq)).is_err()
            {
                tracing::warn!(event = %env.event_id, "own outbox holds an event not signed by this node's key; not recovered");
                continue;
            }
            match chain.next(env.seq, &env.event_id, &env.prev) {
                Next::Skip => continue,
                Next::Stop => break 'files,
                Next::Fork {
                    seq,
                    ledger_id,
                    local_id,
                } => {
                    return Err(LedgerError::OwnFork {
                        seq,
                        ledger_id,
                        local_id,
                    });
                }
                Next::Take => recovered.push(*env),
            }
        }
    }
    if recovered.is_empty() {
        return Ok(report);
    }
    writer.append(&recovered)?;
    let end = writer.head().log_len;
    drop(writer);
    let mut st: ExportState = state::load(&node.paths.export_seen())?;
    st.exported_through_seq = st.exported_through_seq.max(chain.through());
    st.scan_offset = end;
    state::save(&node.paths.export_seen(), &st)?;
    report.recovered_events = recovered.len() as u64;
    tracing::warn!(
        recovered = report.recovered_events,
        through_seq = chain.through(),
        "recovered own events from the ledger"
    );
    Ok(report)
}

/// What recovery does with the next own event it finds in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Already in the local log.
    Skip,
    /// A seq is missing before it: recovery ends here.
    Stop,
    /// The next seq, chained to the local head: append it.
    Take,
    /// The ledger's chain and the local one differ at `seq`.
    Fork {
        /// The seq both hold.
        seq: u64,
        /// The id the ledger holds at it.
        ledger_id: String,
        /// The id the local log holds at it.
        local_id: String,
    },
}

/// The local chain of own events, extended by recovered ones (pure: no I/O).
#[derive(Debug, Clone)]
pub struct OwnChain {
    head_seq: u64,
    head_id: String,
    expected: u64,
    prev: String,
}

impl OwnChain {
    /// The chain ending at the local log's last own event (`own_seq`, id `own_prev`).
    pub fn new(own_seq: u64, own_prev: &str) -> OwnChain {
        OwnChain {
            head_seq: own_seq,
            head_id: own_prev.to_string(),
            expected: own_seq + 1,
            prev: own_prev.to_string(),
        }
    }

    /// Decides about the ledger's own event `seq` (id `id`, chained to `prev`); a taken
    /// event becomes the new end of the chain.
    pub fn next(&mut self, seq: u64, id: &str, prev: &str) -> Next {
        if seq + 1 == self.expected && self.head_seq > 0 && id != self.head_id {
            return Next::Fork {
                seq,
                ledger_id: id.to_string(),
                local_id: self.head_id.clone(),
            };
        }
        if seq < self.expected {
            return Next::Skip;
        }
        if seq > self.expected {
            return Next::Stop;
        }
        if prev != self.prev {
            return Next::Fork {
                seq: seq - 1,
                ledger_id: prev.to_string(),
                local_id: self.prev.clone(),
            };
        }
        self.prev = id.to_string();
        self.expected += 1;
        Next::Take
    }

    /// The last seq of the chain.
    pub fn through(&self) -> u64 {
        self.expected - 1
    }
}

#[cfg(test)]
mod tests;
