//! The state of one import run and its bookkeeping: chain heads, quarantine, pending appends.

use super::pinning::KeyState;
use super::{APPEND_CHUNK, ImportReport};
use crate::event::Envelope;
use crate::ledger::Result;
use crate::ledger::quarantine::{self, Caps, Item, KEEP_BYTES, Quarantine, Reason};
use crate::ledger::state::{ImportState, PartialImport};
use crate::ledger::trust::ChainHead;
use crate::ledger::verify::ImportLimits;
use crate::log::LogWriter;
use crate::node::Node;
use crate::store::layout::Layout;
use git2::{Oid, Repository};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;

/// Everything one import carries from file to file.
pub(super) struct Run<'a> {
    pub(super) node: &'a Node,
    pub(super) repo: &'a Repository,
    pub(super) progress: &'a crate::progress::Progress,
    pub(super) limits: ImportLimits,
    pub(super) quarantine: Quarantine,
    pub(super) state: ImportState,
    pub(super) report: ImportReport,
    /// Accepted events not yet appended (appended between files, every `APPEND_CHUNK`).
    pub(super) pending: Vec<Envelope>,
    /// Ids of `pending`: the log's index cannot see them yet.
    pub(super) in_run: HashSet<String>,
    pub(super) budget: Option<u64>,
    pub(super) keys: HashMap<String, KeyState>,
    pub(super) require_signatures: bool,
    pub(super) commit: String,
    /// Events accepted although they broke their schema (`accept-and-flag`).
    pub(super) flagged: Vec<crate::schema::FlaggedEvent>,
    /// The roster this node trusts, if any.
    pub(super) roster: Option<crate::ledger::roster::Roster>,
    /// Why peers' files were held or their keys refused by the roster (for the report).
    pub(super) unauthorized: std::collections::BTreeSet<String>,
    /// Per peer (quarantine bucket), the outbox files and bytes this import read.
    pub(super) reads: HashMap<String, ReadCount>,
    /// Objects this import read or quarantined, per peer: the same object at another
    /// path is counted, not read again.
    pub(super) seen: HashSet<(String, Oid)>,
}

/// What one import read of one peer's outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct ReadCount {
    pub(super) files: u64,
    pub(super) bytes: u64,
}

/// Per-peer read bounds of one import (`[import] max_files_per_peer`, `max_bytes_per_peer`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct ReadCaps {
    pub(super) files: u64,
    pub(super) bytes: u64,
}

/// Whether a peer that read `done` this import must leave its next file for the next
/// sync. Its first file is always read, so every import moves on.
pub(super) fn over_read_cap(done: ReadCount, caps: ReadCaps) -> bool {
    done.files > 0 && (done.files >= caps.files || done.bytes >= caps.bytes)
}

/// Whether, resuming a leg that finished its first `skip` files except those `deferred`
/// (peer -> index of its first left file), file `i` of `peer` is to be visited.
pub(super) fn visit(i: u64, skip: u64, peer: &str, deferred: &BTreeMap<String, u64>) -> bool {
    i >= skip || deferred.get(peer).is_some_and(|from| i >= *from)
}

/// The commit `id` names, if this repository has it.
fn known_commit(repo: &Repository, id: &str) -> Option<Oid> {
    let oid = Oid::from_str(id).ok()?;
    repo.find_commit(oid).ok().map(|c| c.id())
}

impl<'a> Run<'a> {
    /// A run over `repo` for `node`, resuming from `state`.
    pub(super) fn new(
        node: &'a Node,
        repo: &'a Repository,
        progress: &'a crate::progress::Progress,
        state: ImportState,
        max_events: Option<u64>,
    ) -> Run<'a> {
        Run {
            node,
            repo,
            progress,
            limits: ImportLimits::new(node.config.payload_limits()),
            quarantine: Quarantine::new(
                node.paths.quarantine(),
                node.paths.quarantine_index(),
                Caps {
                    max_files: node.config.import.quarantine_max_files,
                    max_bytes: node.config.import.quarantine_max_bytes,
                },
            ),
            state,
            report: ImportReport {
                node_id: node.id().to_string(),
                complete: true,
                ..ImportReport::default()
            },
            pending: Vec::new(),
            in_run: HashSet::new(),
            budget: max_events,
            keys: HashMap::new(),
            require_signatures: node.config.require_signatures,
            commit: String::new(),
            flagged: Vec::new(),
            roster: None,
            unauthorized: Default::default(),
            reads: HashMap::new(),
            seen: HashSet::new(),
        }
    }
}

impl Run<'_> {
    /// Imports up to `head`: at most two legs, finishing an interrupted target first.
    pub(super) fn legs(
        &mut self,
        writer: &mut LogWriter<'_>,
        layout: &Layout,
        head: Oid,
    ) -> Result<()> {
        let repo = self.repo;
        for _ in 0..2 {
            let from = known_commit(repo, &self.state.commit);
            let (target, skip, deferred) = match &self.state.partial {
                Some(p) => match Oid::from_str(&p.target) {
                    Ok(t) if repo.find_commit(t).is_ok() => (t, p.done_files, p.deferred.clone()),
                    _ => (head, 0, BTreeMap::new()),
                },
                None => (head, 0, BTreeMap::new()),
            };
            if from == Some(target) {
                self.state.partial = None;
                break;
            }
            let done = self.leg(writer, layout, from, target, skip, &deferred)?;
            match done {
                None => {
                    self.state.commit = target.to_string();
                    self.state.partial = None;
                    if target == head {
                        break;
                    }
                }
                Some((done_files, deferred)) => {
                    self.state.partial = Some(PartialImport {
                        target: target.to_string(),
                        done_files,
                        deferred,
                    });
                    self.report.complete = false;
                    break;
                }
            }
        }
        Ok(())
    }

    /// The peer's chain head; an import state from before chains were checked
    /// yields its contiguous seq with no id (the next `prev` is then trusted).
    pub(super) fn chain_head(&self, node: &str) -> ChainHead {
        match self.state.heads.get(node) {
            Some(h) => h.clone(),
            None => ChainHead {
                seq: self
                    .state
                    .peers
                    .get(node)
                    .map_or(0, |r| r.contiguous_through()),
                event_id: String::new(),
            },
        }
    }

    /// The first bytes of a blob, read as a stream so a huge blob is never loaded.
    pub(super) fn head_bytes(&self, oid: Oid) -> Vec<u8> {
        let mut out = Vec::new();
        if let Ok(odb) = self.repo.odb()
            && let Ok((reader, _, _)) = odb.reader(oid)
        {
            let _ = reader.take(KEEP_BYTES as u64).read_to_end(&mut out);
        }
        out
    }

    /// The per-peer read caps of this node.
    pub(super) fn read_caps(&self) -> ReadCaps {
        ReadCaps {
            files: self.node.config.import.max_files_per_peer,
            bytes: self.node.config.import.max_bytes_per_peer,
        }
    }

    /// Quarantines ledger file `path` (object `oid`) of `peer` as one record: `bytes`
    /// (the file's head, or its bad lines) and every bad item; reports each item.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn reject_items(
        &mut self,
        peer: &str,
        path: &str,
        oid: &str,
        bytes: &[u8],
        items: Vec<Item>,
        source: &str,
    ) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        for i in items.iter().take(quarantine::LISTED_ITEMS) {
            tracing::warn!(
                file = path,
                line = ?i.line,
                reason = i.reason.code(),
                detail = %i.detail,
                "quarantined ledger input"
            );
        }
        let file = self
            .quarantine
            .put(peer, path, oid, bytes, &items, source)?;
        self.report.quarantined += 1;
        for i in items {
            self.report.rejected.push(quarantine::Rejected {
                path: path.to_string(),
                line: i.line,
                reason: i.reason,
                detail: i.detail,
                file: file.clone(),
            });
        }
        Ok(())
    }

    /// Quarantines the whole ledger file `path` (object `oid`) of `peer` for one reason.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn reject(
        &mut self,
        peer: &str,
        path: &str,
        oid: &str,
        bytes: &[u8],
        reason: Reason,
        detail: &str,
        source: &str,
    ) -> Result<()> {
        let item = Item {
            line: None,
            reason,
            detail: detail.to_string(),
        };
        self.reject_items(peer, path, oid, bytes, vec![item], source)
    }

    /// Why the trusted roster does not let `node` publish (`None`: it may, or there is no roster).
    pub(super) fn unauthorized_reason(&self, node: &str) -> Option<String> {
        use crate::ledger::roster::{Role, Standing, standing};
        let r = self.roster.as_ref()?;
        let s = standing(
            Some(r),
            self.node.config.mesh.trust,
            node,
            Some(Role::Member),
            None,
        );
        match s {
            Standing::Trusted(_) | Standing::Unknown => None,
            other => other.refusal(node),
        }
    }

    /// Records `head` as the peer's newest accepted event.
    pub(super) fn advance(&mut self, node: &str, head: ChainHead) {
        self.state
            .peers
            .entry(node.to_string())
            .or_default()
            .insert(head.seq);
        self.state.heads.insert(node.to_string(), head);
    }

    /// Queues `env` for the next append.
    pub(super) fn accept(&mut self, env: Envelope) {
        self.in_run.insert(env.event_id.clone());
        self.pending.push(env);
        self.report.imported_events += 1;
    }

    /// Appends the pending events once `APPEND_CHUNK` of them have gathered.
    pub(super) fn flush_if_full(&mut self, writer: &mut LogWriter<'_>) -> Result<()> {
        if self.pending.len() >= APPEND_CHUNK {
            self.flush(writer)?;
        }
        Ok(())
    }

    /// Appends the pending events; from then on the log's index answers for them.
    pub(super) fn flush(&mut self, writer: &mut LogWriter<'_>) -> Result<()> {
        if !self.pending.is_empty() {
            writer.append(&self.pending)?;
            self.pending.clear();
            self.in_run.clear();
        }
        Ok(())
    }
}
