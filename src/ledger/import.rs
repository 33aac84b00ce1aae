//! `mesh-import`: append peers' new events from the ledger to the local log.
//!
//! Only the files that differ between the last imported ledger commit and the
//! current one are read (a tree diff that skips equal subtrees), so the cost
//! follows the new data, not the history.

use super::LedgerError;
use super::layout::Layout;
use super::lock::SyncLock;
use super::quarantine::{Quarantine, Reason, Rejected};
use super::seqs::Gap;
use super::verify::{self, ImportLimits, LineResult, Shape};
use crate::error::Result;
use crate::event::Envelope;
use crate::git::RepoContext;
use crate::git::remote::{local_ref, tracking_ref};
use crate::git::tree::{self, MODE_COMMIT, MODE_LINK};
use crate::node::Node;
use crate::state::{self, ImportState, PartialImport};
use git2::{Oid, Repository};
use serde::Serialize;
use std::collections::HashSet;
use std::io::Read;

/// Events are appended to the log in chunks of this many (one write and fsync each).
const APPEND_CHUNK: usize = 5000;

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// This node.
    pub node_id: String,
    /// New events appended to the log.
    pub imported_events: u64,
    /// Valid events the log already held.
    pub duplicate_events: u64,
    /// Files or lines quarantined by this import.
    pub quarantined: u64,
    /// Peer outbox files read.
    pub scanned_files: u64,
    /// The ledger commit imported up to ("" when the ledger is empty).
    pub ledger_commit: String,
    /// False when `--max-events` stopped the import early (the next one resumes).
    pub complete: bool,
    /// What was quarantined, with reasons.
    pub rejected: Vec<Rejected>,
    /// Missing seq ranges of peers.
    pub gaps: Vec<Gap>,
}

/// The ledger commit import reads: the fetched remote head, else the local branch.
pub fn source_commit(
    repo: &Repository,
    branch: &str,
) -> std::result::Result<Option<Oid>, git2::Error> {
    match tree::ref_target(repo, &tracking_ref(branch))? {
        Some(oid) => Ok(Some(oid)),
        None => tree::ref_target(repo, &local_ref(branch)),
    }
}

struct Run<'a> {
    node: &'a Node,
    repo: &'a Repository,
    limits: ImportLimits,
    quarantine: Quarantine,
    state: ImportState,
    report: ImportReport,
    pending: Vec<Envelope>,
    in_run: HashSet<String>,
    budget: Option<u64>,
}

/// Imports what is new in peers' outboxes up to the ledger head this node last fetched.
pub fn import(node: &Node, _lock: &SyncLock, max_events: Option<u64>) -> Result<ImportReport> {
    let path = node.paths.ledger_repo();
    let repo = Repository::open_bare(&path)
        .in_repo(&path)
        .map_err(LedgerError::from)?;
    let layout = Layout::new(&node.config.ledger.dir);
    let mut run = Run {
        node,
        repo: &repo,
        limits: ImportLimits::new(node.config.payload_limits()),
        quarantine: Quarantine::new(node.paths.quarantine()),
        state: state::load(&node.paths.import_state())?,
        report: ImportReport {
            node_id: node.id().to_string(),
            complete: true,
            ..ImportReport::default()
        },
        pending: Vec::new(),
        in_run: HashSet::new(),
        budget: max_events,
    };
    let head = super::refs::import_source(&repo, &node.config)
        .in_repo(&path)
        .map_err(LedgerError::from)?;
    let mut writer = node.log.writer()?;
    if let Some(head) = head {
        // At most two legs: finish an interrupted target, then go on to the head.
        for _ in 0..2 {
            let from = known_commit(&repo, &run.state.commit);
            let (target, skip) = match &run.state.partial {
                Some(p) => match Oid::from_str(&p.target) {
                    Ok(t) if repo.find_commit(t).is_ok() => (t, p.done_files),
                    _ => (head, 0),
                },
                None => (head, 0),
            };
            if from == Some(target) {
                run.state.partial = None;
                break;
            }
            let done = run.leg(&mut writer, &layout, from, target, skip)?;
            match done {
                None => {
                    run.state.commit = target.to_string();
                    run.state.partial = None;
                    if target == head {
                        break;
                    }
                }
                Some(done_files) => {
                    run.state.partial = Some(PartialImport {
                        target: target.to_string(),
                        done_files,
                    });
                    run.report.complete = false;
                    break;
                }
            }
        }
        run.flush(&mut writer)?;
        run.report.ledger_commit = head.to_string();
    }
    drop(writer);
    state::save(&node.paths.import_state(), &run.state)?;
    run.report.gaps = run.state.gaps();
    Ok(run.report)
}

fn known_commit(repo: &Repository, id: &str) -> Option<Oid> {
    let oid = Oid::from_str(id).ok()?;
    repo.find_commit(oid).ok().map(|c| c.id())
}

impl Run<'_> {
    /// Imports the outbox files changed between `from` and `to`, skipping the first `skip`.
    /// Returns `Some(files done)` when the event budget ran out first.
    fn leg(
        &mut self,
        writer: &mut crate::log::LogWriter<'_>,
        layout: &Layout,
        from: Option<Oid>,
        to: Oid,
        skip: u64,
    ) -> Result<Option<u64>> {
        let repo = self.repo;
        let path = self.node.paths.ledger_repo();
        let g = |e: git2::Error| {
            LedgerError::from(crate::git::GitError::Repo {
                path: path.clone(),
                source: e,
            })
        };
        let root = layout.outbox_root();
        let old =
            tree::subtree_at(repo, tree::tree_of(repo, from).map_err(g)?, &root).map_err(g)?;
        let new =
            tree::subtree_at(repo, tree::tree_of(repo, Some(to)).map_err(g)?, &root).map_err(g)?;
        let changed = tree::changed_entries(repo, old, new).map_err(g)?;
        let source = format!("ledger commit {to}");
        for (i, c) in changed.iter().enumerate().skip(skip as usize) {
            if let Some(b) = self.budget
                && self.report.imported_events >= b
            {
                return Ok(Some(i as u64));
            }
            let full = format!("{root}/{}", c.path);
            let shape = verify::classify(&c.path);
            if let Shape::Batch { node } | Shape::Single { node, .. } = &shape
                && node == self.node.id()
            {
                continue;
            }
            if let Shape::Batch { node } = &shape
                && super::compact::skip_on_import(
                    &c.path,
                    self.node.config.ledger.since.as_deref(),
                    self.state
                        .peers
                        .get(node)
                        .map_or(0, |r| r.contiguous_through()),
                )
            {
                continue;
            }
            self.report.scanned_files += 1;
            if let Shape::Bad(reason, detail) = &shape {
                let bytes = self.head_bytes(c.oid);
                self.reject(&full, None, &bytes, *reason, detail, &source)?;
                continue;
            }
            if c.mode == MODE_LINK {
                let bytes = self.head_bytes(c.oid);
                self.reject(
                    &full,
                    None,
                    &bytes,
                    Reason::Symlink,
                    "symbolic links are not read",
                    &source,
                )?;
                continue;
            }
            if c.mode == MODE_COMMIT {
                self.reject(
                    &full,
                    None,
                    c.oid.to_string().as_bytes(),
                    Reason::NotAFile,
                    "a submodule entry",
                    &source,
                )?;
                continue;
            }
            let odb = repo.odb().map_err(g)?;
            let (size, _) = odb.read_header(c.oid).map_err(g)?;
            if size as u64 > self.limits.max_file_bytes {
                let bytes = self.head_bytes(c.oid);
                let detail = format!("{size} bytes; the cap is {}", self.limits.max_file_bytes);
                self.reject(&full, None, &bytes, Reason::FileTooLarge, &detail, &source)?;
                continue;
            }
            let blob = repo.find_blob(c.oid).map_err(g)?;
            let content = blob.content();
            if let Err(e) = std::str::from_utf8(content) {
                let detail = format!("invalid UTF-8 at byte {}", e.valid_up_to());
                self.reject(&full, None, content, Reason::NotUtf8, &detail, &source)?;
                continue;
            }
            match &shape {
                Shape::Batch { node } => {
                    for r in verify::check_batch(node, content, &self.limits) {
                        match r {
                            LineResult::Event(env) => self.accept(writer, *env)?,
                            LineResult::Rejected {
                                line,
                                bytes,
                                reason,
                                detail,
                            } => self.reject(&full, Some(line), bytes, reason, &detail, &source)?,
                        }
                    }
                }
                Shape::Single { node, event_id } => {
                    match verify::check_single(node, event_id, content, &self.limits) {
                        Ok(env) => self.accept(writer, env)?,
                        Err((reason, detail)) => {
                            self.reject(&full, None, content, reason, &detail, &source)?
                        }
                    }
                }
                Shape::Bad(..) => {}
            }
        }
        Ok(None)
    }

    /// The first bytes of a blob, read as a stream so a huge blob is never loaded.
    fn head_bytes(&self, oid: Oid) -> Vec<u8> {
        let mut out = Vec::new();
        if let Ok(odb) = self.repo.odb()
            && let Ok((reader, _, _)) = odb.reader(oid)
        {
            let _ = reader
                .take(super::quarantine::KEEP_BYTES as u64)
                .read_to_end(&mut out);
        }
        out
    }

    fn reject(
        &mut self,
        path: &str,
        line: Option<usize>,
        bytes: &[u8],
        reason: Reason,
        detail: &str,
        source: &str,
    ) -> Result<()> {
        tracing::warn!(
            file = path,
            ?line,
            reason = reason.code(),
            detail,
            "quarantined ledger input"
        );
        let r = self
            .quarantine
            .put(path, line, bytes, reason, detail, source)?;
        self.report.quarantined += 1;
        self.report.rejected.push(r);
        Ok(())
    }

    fn accept(&mut self, writer: &mut crate::log::LogWriter<'_>, env: Envelope) -> Result<()> {
        self.state
            .peers
            .entry(env.node_id.clone())
            .or_default()
            .insert(env.seq);
        if self.in_run.contains(&env.event_id) || writer.contains(&env.event_id)? {
            self.report.duplicate_events += 1;
            return Ok(());
        }
        self.in_run.insert(env.event_id.clone());
        self.pending.push(env);
        self.report.imported_events += 1;
        if self.pending.len() >= APPEND_CHUNK {
            self.flush(writer)?;
        }
        Ok(())
    }

    fn flush(&mut self, writer: &mut crate::log::LogWriter<'_>) -> Result<()> {
        if !self.pending.is_empty() {
            writer.append(&self.pending)?;
            self.pending.clear();
        }
        Ok(())
    }
}
