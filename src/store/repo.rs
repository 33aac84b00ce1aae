//! The node's clone of the shared repository (`state/github_coordination`).

use crate::config::{Config, LedgerMode};
use crate::git::GitError;
use crate::git::{RepoContext, open_or_init_bare};
use crate::paths::NodePaths;

/// The local ref holding the merged view in per-node mode (never pushed).
pub const VIEW_REF: &str = "refs/gitmesh/view";
/// Whether the config selects per-node refs.
pub fn per_node(cfg: &Config) -> bool {
    cfg.ledger.mode == LedgerMode::PerNodeRefs
}

/// Opens the node's ledger repository.
pub fn open(paths: &NodePaths) -> Result<git2::Repository, GitError> {
    open_at(&paths.ledger_repo())
}

/// Opens the bare ledger repository at `path` (errors name the path).
pub fn open_at(path: &std::path::Path) -> Result<git2::Repository, GitError> {
    git2::Repository::open_bare(path).in_repo(path)
}

/// The URL (or path) of the shared repository for this node.
pub fn remote_url(cfg: &Config, paths: &NodePaths) -> String {
    match &cfg.ledger.remote {
        Some(url) => url.clone(),
        None => absolute(&paths.embedded_remote()).display().to_string(),
    }
}

/// [`remote_url`] with any user part replaced by `***`, for reports and logs.
pub fn display_url(cfg: &Config, paths: &NodePaths) -> String {
    crate::config::redact_url(&remote_url(cfg, paths))
}

fn absolute(p: &std::path::Path) -> std::path::PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// What `ensure` found or made.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RepoSetup {
    /// The embedded bare remote was created now.
    pub created_embedded_remote: bool,
    /// The ledger repository was created now.
    pub created_ledger_repo: bool,
}

/// Creates the ledger repository (and the embedded remote when none is configured)
/// and points its `origin` at the shared repository.
pub fn ensure(cfg: &Config, paths: &NodePaths) -> Result<RepoSetup, GitError> {
    let mut setup = RepoSetup::default();
    if cfg.ledger.remote.is_none() {
        let (_, created) = open_or_init_bare(&paths.embedded_remote())?;
        setup.created_embedded_remote = created;
    }
    let path = paths.ledger_repo();
    let (repo, created) = open_or_init_bare(&path)?;
    setup.created_ledger_repo = created;
    let url = remote_url(cfg, paths);
    match repo.find_remote("origin") {
        Ok(r) if r.url().ok() == Some(url.as_str()) => {}
        Ok(_) => repo.remote_set_url("origin", &url).in_repo(&path)?,
        Err(_) => {
            repo.remote("origin", &url).in_repo(&path)?;
        }
    }
    // The token policy of `git::cli` reads the extra host from the repository's config.
    let mut git_cfg = repo.config().in_repo(&path)?;
    let key = crate::git::cli::TOKEN_HOST_KEY;
    let recorded = git_cfg
        .open_level(git2::ConfigLevel::Local)
        .and_then(|c| c.get_string(key))
        .ok();
    if recorded != cfg.ledger.token_host {
        match &cfg.ledger.token_host {
            Some(host) => git_cfg.set_str(key, host).in_repo(&path)?,
            None => git_cfg.remove(key).in_repo(&path)?,
        }
    }
    Ok(setup)
}

/// The ref holding this node's newest view of the ledger: the local branch, else the remote-tracking one.
pub fn view_ref(cfg: &Config, paths: &NodePaths) -> Option<String> {
    newest_ref(cfg, paths, false)
}

/// The ref holding the newest copy of peers' manifests: the merged view in per-node
/// mode, else the fetched head. The local branch is rebuilt on that head only when a
/// sync composes its commit, so during a sync it still holds the previous sync's peers.
pub fn peers_ref(cfg: &Config, paths: &NodePaths) -> Option<String> {
    newest_ref(cfg, paths, true)
}

/// The per-node view, else the first existing of the local and the remote-tracking branch.
fn newest_ref(cfg: &Config, paths: &NodePaths, fetched_first: bool) -> Option<String> {
    let repo = open(paths).ok()?;
    if per_node(cfg) && repo.find_reference(VIEW_REF).is_ok() {
        return Some(VIEW_REF.to_string());
    }
    let local = format!("refs/heads/{}", cfg.ledger.branch);
    let remote = format!("refs/remotes/origin/{}", cfg.ledger.branch);
    let order = if fetched_first {
        [remote, local]
    } else {
        [local, remote]
    };
    order.into_iter().find(|r| repo.find_reference(r).is_ok())
}

/// Largest file [`read_file`] loads (its size is read from the object header first).
pub const MAX_READ_BYTES: u64 = 1024 * 1024;

/// Reads one file of the ledger at `refname`; `None` when the repo, ref or file is
/// absent, or the entry is not a blob of at most [`MAX_READ_BYTES`] (logged).
pub fn read_file(
    paths: &NodePaths,
    refname: &str,
    file: &str,
) -> Result<Option<Vec<u8>>, GitError> {
    let path = paths.ledger_repo();
    let Ok(repo) = open_at(&path) else {
        return Ok(None);
    };
    let Ok(reference) = repo.find_reference(refname) else {
        return Ok(None);
    };
    let tree = reference.peel_to_tree().in_repo(&path)?;
    let Ok(entry) = tree.get_path(std::path::Path::new(file)) else {
        return Ok(None);
    };
    match crate::git::tree::blob_capped(&repo, entry.id(), MAX_READ_BYTES).in_repo(&path)? {
        crate::git::tree::Capped::Blob(blob) => Ok(Some(blob.content().to_vec())),
        _ => {
            tracing::warn!(file, "not a file of at most 1 MiB in the ledger; ignored");
            Ok(None)
        }
    }
}
