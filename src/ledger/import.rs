//! `mesh-import`: append peers' new events from the ledger to the local log.
//!
//! Only the files that differ between the last imported ledger commit and the
//! current one are read (a tree diff that skips equal subtrees), so the cost
//! follows the new data, not the history.

use super::LedgerError;
use super::Result;
use super::lock::SyncLock;
use super::quarantine::{Quarantine, Reason, Rejected};
use super::seqs::Gap;
use super::state::{self, ImportState, PartialImport};
use super::trust::{self, Alert, ChainHead, Held, HeldReason, Step};
use super::verify::{self, ImportLimits, KeyCheck, LineResult, Shape};
use crate::event::Envelope;
use crate::git::RepoContext;
use crate::git::tree::{self, MODE_COMMIT, MODE_LINK, MODE_TREE};
use crate::keys::{self, KnownNodes, Pin};
use crate::node::Node;
use crate::store::layout::Layout;
use git2::{Oid, Repository};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
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
    /// Files held back: waiting for missing seqs or for an operator to trust a changed key.
    pub held: Vec<HeldFile>,
    /// Peers whose manifest offers a key that differs from the pinned one.
    pub key_alerts: Vec<String>,
    /// Forks and history rewrites seen so far (kept until acknowledged).
    pub alerts: Vec<Alert>,
}

/// A held file, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct HeldFile {
    /// Path in the ledger repository.
    pub path: String,
    /// Whose outbox.
    pub node_id: String,
    /// The seq it waits to apply (0 when not read yet).
    pub first_seq: u64,
    /// Why it waits.
    pub reason: HeldReason,
}

/// What is known of a peer's signing key for this import.
#[derive(Debug, Clone)]
enum KeyState {
    /// Pinned (or pinned now, on first sight): signatures must verify with it.
    Pinned(Box<ed25519_dalek::VerifyingKey>),
    /// The manifest offers a key that differs from the pinned one.
    Untrusted,
    /// The manifest's key is not a valid ed25519 key.
    Invalid(String),
    /// No key published or pinned.
    Unknown,
}

struct Run<'a> {
    node: &'a Node,
    repo: &'a Repository,
    progress: &'a crate::progress::Progress,
    limits: ImportLimits,
    quarantine: Quarantine,
    state: ImportState,
    report: ImportReport,
    /// Accepted events not yet appended (appended between files, every `APPEND_CHUNK`).
    pending: Vec<Envelope>,
    /// Ids of `pending`: the log's index cannot see them yet.
    in_run: HashSet<String>,
    budget: Option<u64>,
    keys: HashMap<String, KeyState>,
    require_signatures: bool,
    commit: String,
    /// Events accepted although they broke their schema (`accept-and-flag`).
    flagged: Vec<crate::schema::FlaggedEvent>,
}

/// One entry of an outbox diff: added, modified (`before` set) or deleted (`oid` unset).
#[derive(Debug, Clone)]
struct Change {
    path: String,
    oid: Option<Oid>,
    mode: i32,
    before: Option<Oid>,
}

/// Non-directory entries that differ between two trees, deletions included.
/// Equal subtrees are skipped without being read.
fn diff_outbox(
    repo: &Repository,
    old: Option<Oid>,
    new: Option<Oid>,
    prefix: &str,
    out: &mut Vec<Change>,
) -> std::result::Result<(), git2::Error> {
    if old == new {
        return Ok(());
    }
    let entries = |t: Option<Oid>| -> std::result::Result<Vec<(Vec<u8>, Oid, i32)>, git2::Error> {
        match t {
            Some(t) => Ok(repo
                .find_tree(t)?
                .iter()
                .map(|e| (e.name_bytes().to_vec(), e.id(), e.filemode()))
                .collect()),
            None => Ok(Vec::new()),
        }
    };
    let old_entries: HashMap<Vec<u8>, (Oid, i32)> = entries(old)?
        .into_iter()
        .map(|(n, o, m)| (n, (o, m)))
        .collect();
    let new_entries = entries(new)?;
    let join = |name: &[u8]| {
        let name = String::from_utf8_lossy(name);
        if prefix.is_empty() {
            name.into_owned()
        } else {
            format!("{prefix}/{name}")
        }
    };
    let mut seen = HashSet::new();
    for (name, oid, mode) in &new_entries {
        seen.insert(name.clone());
        let before = old_entries.get(name).copied();
        if before == Some((*oid, *mode)) {
            continue;
        }
        let path = join(name);
        let old_tree = before.filter(|(_, m)| *m == MODE_TREE).map(|(o, _)| o);
        let old_file = before.filter(|(_, m)| *m != MODE_TREE).map(|(o, _)| o);
        if *mode == MODE_TREE {
            diff_outbox(repo, old_tree, Some(*oid), &path, out)?;
            if let Some(b) = old_file {
                out.push(Change {
                    path,
                    oid: None,
                    mode: 0,
                    before: Some(b),
                });
            }
        } else {
            if old_tree.is_some() {
                diff_outbox(repo, old_tree, None, &path, out)?;
            }
            out.push(Change {
                path,
                oid: Some(*oid),
                mode: *mode,
                before: old_file,
            });
        }
    }
    for (name, (oid, mode)) in &old_entries {
        if seen.contains(name) {
            continue;
        }
        let path = join(name);
        if *mode == MODE_TREE {
            diff_outbox(repo, Some(*oid), None, &path, out)?;
        } else {
            out.push(Change {
                path,
                oid: None,
                mode: 0,
                before: Some(*oid),
            });
        }
    }
    Ok(())
}

/// Seq ranges of the archives each node added in one diff (see `ledger compact`).
#[derive(Debug, Default)]
struct Archived {
    ranges: HashMap<String, Vec<(u64, u64)>>,
}

impl Archived {
    fn from_changes(changes: &[Change]) -> Archived {
        let mut a = Archived::default();
        for c in changes.iter().filter(|c| c.oid.is_some()) {
            let parts: Vec<&str> = c.path.split('/').collect();
            if let [node, dir, name] = parts.as_slice()
                && dir.starts_with(super::compact::ARCHIVE_PREFIX)
                && let Some(range) = super::compact::archive_range(name)
            {
                a.ranges.entry(node.to_string()).or_default().push(range);
            }
        }
        a
    }

    /// Whether the deleted batch `<node>/<day>/<first seq>.ndjson` starts inside an added archive.
    fn covers(&self, node: &str, rel: &str) -> bool {
        let first = rel
            .rsplit('/')
            .next()
            .and_then(|f| f.strip_suffix(".ndjson"))
            .and_then(|f| f.parse::<u64>().ok());
        match (first, self.ranges.get(node)) {
            (Some(seq), Some(ranges)) => ranges.iter().any(|(a, b)| (*a..=*b).contains(&seq)),
            _ => false,
        }
    }
}

/// Public keys published in the manifests of the tree of `commit`, by node.
fn manifest_keys(
    repo: &Repository,
    layout: &Layout,
    commit: Oid,
) -> std::result::Result<HashMap<String, Option<String>>, git2::Error> {
    let mut out = HashMap::new();
    let root = tree::tree_of(repo, Some(commit))?;
    let Some(dir) = tree::subtree_at(repo, root, &layout.nodes_dir())? else {
        return Ok(out);
    };
    for e in repo.find_tree(dir)?.iter() {
        let Some(node) = e.name().ok().and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        if e.filemode() != tree::MODE_BLOB && e.filemode() != tree::MODE_EXEC {
            continue;
        }
        let Ok(blob) = repo.find_blob(e.id()) else {
            continue;
        };
        if blob.size() > verify::MAX_LINE_BYTES {
            continue;
        }
        if let Ok(m) = serde_json::from_slice::<super::Manifest>(blob.content())
            && m.node_id == node
        {
            out.insert(node.to_string(), m.public_key);
        }
    }
    Ok(out)
}

/// Imports what is new in peers' outboxes up to the ledger head this node last fetched.
pub fn import(node: &Node, lock: &SyncLock, max_events: Option<u64>) -> Result<ImportReport> {
    import_with(node, lock, max_events, &crate::progress::Progress::hidden())
}

/// [`import`], advancing `progress` by one per ledger file read.
pub fn import_with(
    node: &Node,
    _lock: &SyncLock,
    max_events: Option<u64>,
    progress: &crate::progress::Progress,
) -> Result<ImportReport> {
    let path = node.paths.ledger_repo();
    let repo = Repository::open_bare(&path)
        .in_repo(&path)
        .map_err(LedgerError::from)?;
    let layout = Layout::new(&node.config.ledger.dir);
    let mut run = Run {
        node,
        repo: &repo,
        progress,
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
        keys: HashMap::new(),
        require_signatures: node.config.require_signatures,
        commit: String::new(),
        flagged: Vec::new(),
    };
    let head = super::refs::import_source(&repo, &node.config)
        .in_repo(&path)
        .map_err(LedgerError::from)?;
    let mut known = KnownNodes::load(&node.paths)?;
    let mut writer = node.log.writer()?;
    if let Some(head) = head {
        let published = manifest_keys(&repo, &layout, head)
            .in_repo(&path)
            .map_err(LedgerError::from)?;
        let pinned_before = known.clone();
        run.keys = key_states(node.id(), &published, &mut known);
        if known != pinned_before {
            known.save(&node.paths)?;
        }
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
        if run.report.complete {
            run.retry_held(&mut writer, head)?;
        }
        run.flush(&mut writer)?;
        run.report.ledger_commit = head.to_string();
    }
    drop(writer);
    crate::schema::record_flagged(&node.paths, &run.flagged)?;
    state::save(&node.paths.import_state(), &run.state)?;
    run.report.gaps = run.state.gaps();
    run.report.held = run
        .state
        .held
        .iter()
        .map(|(path, h)| HeldFile {
            path: path.clone(),
            node_id: h.node_id.clone(),
            first_seq: h.first_seq,
            reason: h.reason,
        })
        .collect();
    run.report.key_alerts = known.alerts();
    run.report.alerts = run.state.alerts.clone();
    Ok(run.report)
}

/// Below this many events a file's signatures are checked on one thread.
const PARALLEL_VERIFY_MIN: usize = 256;

/// The signature verdict for every item (Ok for items that are already rejected),
/// computed on up to four threads: verification is the costly part of an import.
fn check_signatures(
    items: &[Item<'_>],
    key: &KeyState,
    node: &str,
    require: bool,
) -> Vec<std::result::Result<(), (Reason, String)>> {
    let one = |item: &Item<'_>| {
        let Ok(env) = &item.2 else { return Ok(()) };
        match key {
            KeyState::Pinned(k) => verify::check_signature(env, KeyCheck::Pinned(k)),
            KeyState::Invalid(e) => Err((
                Reason::BadSignature,
                format!("node {node} publishes an unusable key: {e}"),
            )),
            KeyState::Unknown | KeyState::Untrusted => {
                verify::check_signature(env, KeyCheck::Unknown { require })
            }
        }
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4);
    if threads < 2 || items.len() < PARALLEL_VERIFY_MIN || !matches!(key, KeyState::Pinned(_)) {
        return items.iter().map(one).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(move || c.iter().map(one).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(v) => v,
                Err(p) => std::panic::resume_unwind(p),
            })
            .collect()
    })
}

/// Pins keys seen for the first time and classifies every peer's key (pure but for `known`).
fn key_states(
    me: &str,
    published: &HashMap<String, Option<String>>,
    known: &mut KnownNodes,
) -> HashMap<String, KeyState> {
    let now = crate::event::now_timestamp();
    let mut out = HashMap::new();
    for (node, key) in published {
        if node == me {
            continue;
        }
        let Some(key) = key else { continue };
        if let Err(e) = keys::parse_public(node, key) {
            if known.trusted_key(node).is_none() {
                out.insert(node.clone(), KeyState::Invalid(e.to_string()));
            }
            continue;
        }
        if let Pin::Changed { .. } = known.observe(node, key, &now) {
            out.insert(node.clone(), KeyState::Untrusted);
        }
    }
    for (node, k) in &known.nodes {
        if out.contains_key(node) {
            continue;
        }
        match keys::parse_public(node, &k.public_key) {
            Ok(v) => out.insert(node.clone(), KeyState::Pinned(Box::new(v))),
            Err(e) => out.insert(node.clone(), KeyState::Invalid(e.to_string())),
        };
    }
    out
}

fn known_commit(repo: &Repository, id: &str) -> Option<Oid> {
    let oid = Oid::from_str(id).ok()?;
    repo.find_commit(oid).ok().map(|c| c.id())
}

/// One checked item of a file: its line (None for a whole one-event file), bytes and outcome.
type Item<'a> = (
    Option<usize>,
    &'a [u8],
    std::result::Result<Envelope, (Reason, String)>,
);

impl Run<'_> {
    fn git_err(&self) -> impl Fn(git2::Error) -> LedgerError + '_ {
        let path = self.node.paths.ledger_repo();
        move |e: git2::Error| {
            LedgerError::from(crate::git::GitError::Repo {
                path: path.clone(),
                source: e,
            })
        }
    }

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
        let g = self.git_err();
        let root = layout.outbox_root();
        let old =
            tree::subtree_at(repo, tree::tree_of(repo, from).map_err(&g)?, &root).map_err(&g)?;
        let new = tree::subtree_at(repo, tree::tree_of(repo, Some(to)).map_err(&g)?, &root)
            .map_err(&g)?;
        let mut changed = Vec::new();
        diff_outbox(repo, old, new, "", &mut changed).map_err(&g)?;
        drop(g);
        let source = format!("ledger commit {to}");
        self.commit = to.to_string();
        let archived = Archived::from_changes(&changed);
        self.progress
            .set_total(self.progress.position() + (changed.len() as u64).saturating_sub(skip));
        for (i, c) in changed.iter().enumerate().skip(skip as usize) {
            self.progress.inc(1);
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
            if let (Some(before), Shape::Batch { node } | Shape::Single { node, .. }) =
                (c.before, &shape)
            {
                // A batch its node rolled into an archive (`ledger compact`) is gone
                // by design; anything else deleted or changed is a rewrite.
                if c.oid.is_none() && archived.covers(node, &c.path) {
                    continue;
                }
                self.rewrite(&full, node, before, c.oid, &source)?;
                continue;
            }
            let Some(oid) = c.oid else { continue };
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
                let bytes = self.head_bytes(oid);
                self.reject(&full, None, &bytes, *reason, detail, &source)?;
                continue;
            }
            if c.mode == MODE_LINK {
                let bytes = self.head_bytes(oid);
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
                    oid.to_string().as_bytes(),
                    Reason::NotAFile,
                    "a submodule entry",
                    &source,
                )?;
                continue;
            }
            self.file(writer, &full, &shape, oid, &source, true)?;
        }
        Ok(None)
    }

    /// A peer's batch that existed at the last imported commit was modified or deleted.
    fn rewrite(
        &mut self,
        full: &str,
        node: &str,
        before: Oid,
        now: Option<Oid>,
        source: &str,
    ) -> Result<()> {
        let detail = match now {
            Some(o) => format!("batch {full} of node {node} was rewritten (blob {before} -> {o})"),
            None => format!("batch {full} of node {node} was deleted (blob {before})"),
        };
        let bytes = now.map(|o| self.head_bytes(o)).unwrap_or_default();
        self.reject(full, None, &bytes, Reason::HistoryRewrite, &detail, source)?;
        self.state.held.remove(full);
        trust::raise(
            &mut self.state.alerts,
            Alert {
                kind: Reason::HistoryRewrite,
                node_id: node.to_string(),
                path: full.to_string(),
                seq: None,
                detail,
                commit: self.commit.clone(),
            },
        );
        Ok(())
    }

    /// Reads and applies one outbox file (size and encoding checked first).
    /// `first_sight` is false when a held file is read again: its bad lines were reported already.
    fn file(
        &mut self,
        writer: &mut crate::log::LogWriter<'_>,
        full: &str,
        shape: &Shape,
        oid: Oid,
        source: &str,
        first_sight: bool,
    ) -> Result<()> {
        let node = match shape {
            Shape::Batch { node } | Shape::Single { node, .. } => node.clone(),
            Shape::Bad(..) => return Ok(()),
        };
        if matches!(self.keys.get(&node), Some(KeyState::Untrusted)) {
            self.hold(full, &node, 0, HeldReason::UntrustedKey);
            return Ok(());
        }
        let repo = self.repo;
        let g = self.git_err();
        let odb = repo.odb().map_err(&g)?;
        let (size, _) = odb.read_header(oid).map_err(&g)?;
        if size as u64 > self.limits.max_file_bytes {
            drop(g);
            let bytes = self.head_bytes(oid);
            let detail = format!("{size} bytes; the cap is {}", self.limits.max_file_bytes);
            return self.reject(full, None, &bytes, Reason::FileTooLarge, &detail, source);
        }
        let blob = repo.find_blob(oid).map_err(&g)?;
        drop(g);
        let content = blob.content();
        if let Err(e) = std::str::from_utf8(content) {
            let detail = format!("invalid UTF-8 at byte {}", e.valid_up_to());
            return self.reject(full, None, content, Reason::NotUtf8, &detail, source);
        }
        let items: Vec<Item<'_>> = match shape {
            Shape::Batch { node } => verify::check_batch(node, content, &self.limits)
                .into_iter()
                .map(|r| match r {
                    LineResult::Event(env) => (None, &b""[..], Ok(*env)),
                    LineResult::Rejected {
                        line,
                        bytes,
                        reason,
                        detail,
                    } => (Some(line), bytes, Err((reason, detail))),
                })
                .collect(),
            Shape::Single { node, event_id } => vec![(
                None,
                content,
                verify::check_single(node, event_id, content, &self.limits),
            )],
            Shape::Bad(..) => Vec::new(),
        };
        self.apply(writer, full, &node, content, items, source, first_sight)
    }

    /// Checks signatures and the chain, and appends the events that continue it.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        writer: &mut crate::log::LogWriter<'_>,
        full: &str,
        node: &str,
        content: &[u8],
        items: Vec<Item<'_>>,
        source: &str,
        first_sight: bool,
    ) -> Result<()> {
        let key = self.keys.get(node).cloned().unwrap_or(KeyState::Unknown);
        let sigs = check_signatures(&items, &key, node, self.require_signatures);
        // Appending only between files keeps `in_run` to the unflushed events: the
        // lookup below finds everything flushed, and a 10M-event join stays small.
        if self.pending.len() >= APPEND_CHUNK {
            self.flush(writer)?;
        }
        // One pass over the log's id index for the whole file, not one per event.
        let ids: Vec<&str> = items
            .iter()
            .filter_map(|(_, _, outcome)| outcome.as_ref().ok().map(|e| e.event_id.as_str()))
            .collect();
        let in_log: HashSet<String> = writer
            .lookup_many(&ids)?
            .into_iter()
            .zip(&ids)
            .filter_map(|(offset, id)| offset.map(|_| id.to_string()))
            .collect();
        let mut items = items.into_iter().zip(sigs);
        while let Some(((line, bytes, outcome), sig)) = items.next() {
            let env = match outcome {
                Ok(env) => env,
                Err((reason, detail)) => {
                    if first_sight {
                        self.reject(full, line, bytes, reason, &detail, source)?;
                    }
                    continue;
                }
            };
            if let Err((reason, detail)) = sig {
                if first_sight {
                    let raw = env.to_json_line();
                    self.reject(full, line, raw.as_bytes(), reason, &detail, source)?;
                }
                continue;
            }
            let head = self.chain_head(node);
            let already = self.in_run.contains(&env.event_id) || in_log.contains(&env.event_id);
            match trust::step(&head, env.seq, &env.prev, &env.event_id, already) {
                Step::Accept => {
                    self.advance(node, &env);
                    // The chain moves on either way, so a schema violation never blocks
                    // the peer's later events; a quarantined event is just not appended.
                    // Schemas judge the stored payload, never an upcast copy.
                    let policy = self.node.config.schemas.import_policy;
                    match crate::schema::import_verdict(self.node.schemas()?, &env, policy) {
                        crate::schema::ImportVerdict::Accept => self.accept(env)?,
                        crate::schema::ImportVerdict::Flag(e) => {
                            self.flagged.push(crate::schema::FlaggedEvent {
                                event_id: env.event_id.clone(),
                                reason: e.to_string(),
                            });
                            self.accept(env)?;
                        }
                        crate::schema::ImportVerdict::Quarantine(e) => {
                            let raw = env.to_json_line();
                            let detail = e.to_string();
                            self.reject(
                                full,
                                line,
                                raw.as_bytes(),
                                Reason::SchemaViolation,
                                &detail,
                                source,
                            )?;
                        }
                    }
                }
                Step::Known => {
                    self.advance(node, &env);
                    if first_sight {
                        self.report.duplicate_events += 1;
                    }
                }
                Step::Duplicate => {
                    if first_sight {
                        self.report.duplicate_events += 1;
                    }
                }
                Step::Fork(detail) => {
                    let detail = format!("node {node}: {detail}");
                    self.reject(full, None, content, Reason::Fork, &detail, source)?;
                    self.state.held.remove(full);
                    trust::raise(
                        &mut self.state.alerts,
                        Alert {
                            kind: Reason::Fork,
                            node_id: node.to_string(),
                            path: full.to_string(),
                            seq: Some(env.seq),
                            detail,
                            commit: self.commit.clone(),
                        },
                    );
                    return Ok(());
                }
                Step::Wait => {
                    // Remember which later seqs exist, so the missing range is reported as a gap.
                    // Bad lines further on are reported now, at first sight.
                    let mut seqs = vec![env.seq];
                    for ((line, bytes, rest), _) in items.by_ref() {
                        match rest {
                            Ok(e) => seqs.push(e.seq),
                            Err((reason, detail)) if first_sight => {
                                self.reject(full, line, bytes, reason, &detail, source)?
                            }
                            Err(_) => {}
                        }
                    }
                    let ranges = self.state.peers.entry(node.to_string()).or_default();
                    for s in seqs {
                        ranges.insert(s);
                    }
                    self.hold(full, node, env.seq, HeldReason::Gap);
                    return Ok(());
                }
            }
        }
        self.state.held.remove(full);
        Ok(())
    }

    /// The peer's chain head; an import state from before chains were checked
    /// yields its contiguous seq with no id (the next `prev` is then trusted).
    fn chain_head(&self, node: &str) -> ChainHead {
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

    fn hold(&mut self, full: &str, node: &str, first_seq: u64, reason: HeldReason) {
        tracing::info!(
            file = full,
            node,
            first_seq,
            ?reason,
            "ledger file held back"
        );
        self.state.held.insert(
            full.to_string(),
            Held {
                node_id: node.to_string(),
                first_seq,
                reason,
            },
        );
    }

    /// Reads held files again once they can progress: a gap whose missing seqs have
    /// arrived, or a key an operator has trusted. Bounded by the number of held files.
    fn retry_held(&mut self, writer: &mut crate::log::LogWriter<'_>, head: Oid) -> Result<()> {
        let root = tree::tree_of(self.repo, Some(head)).map_err(self.git_err())?;
        let source = format!("ledger commit {head} (held file retried)");
        self.commit = head.to_string();
        for _ in 0..=self.state.held.len() {
            let mut ready: Vec<(String, String, u64)> = self
                .state
                .held
                .iter()
                .filter(|(_, h)| match h.reason {
                    HeldReason::Gap => h.first_seq <= self.chain_head(&h.node_id).seq + 1,
                    HeldReason::UntrustedKey => {
                        !matches!(self.keys.get(&h.node_id), Some(KeyState::Untrusted))
                    }
                })
                .map(|(p, h)| (p.clone(), h.node_id.clone(), h.first_seq))
                .collect();
            if ready.is_empty() {
                break;
            }
            ready.sort_by(|a, b| (&a.1, a.2).cmp(&(&b.1, b.2)));
            for (full, _, _) in ready {
                let entry = tree::entry_at(self.repo, root, &full).map_err(self.git_err())?;
                let rel = full
                    .split_once("/outbox/")
                    .map_or(full.as_str(), |(_, r)| r);
                let shape = verify::classify(rel);
                match entry {
                    Some((oid, mode)) if mode == tree::MODE_BLOB || mode == tree::MODE_EXEC => {
                        self.file(writer, &full, &shape, oid, &source, false)?;
                    }
                    _ => {
                        self.state.held.remove(&full);
                    }
                }
            }
        }
        Ok(())
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

    /// Records `env` as the peer's newest accepted event.
    fn advance(&mut self, node: &str, env: &Envelope) {
        self.state
            .peers
            .entry(node.to_string())
            .or_default()
            .insert(env.seq);
        self.state.heads.insert(
            node.to_string(),
            ChainHead {
                seq: env.seq,
                event_id: env.event_id.clone(),
            },
        );
    }

    fn accept(&mut self, env: Envelope) -> Result<()> {
        self.in_run.insert(env.event_id.clone());
        self.pending.push(env);
        self.report.imported_events += 1;
        Ok(())
    }

    /// Appends the pending events; from then on the log's index answers for them.
    fn flush(&mut self, writer: &mut crate::log::LogWriter<'_>) -> Result<()> {
        if !self.pending.is_empty() {
            writer.append(&self.pending)?;
            self.pending.clear();
            self.in_run.clear();
        }
        Ok(())
    }
}
