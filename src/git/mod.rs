//! Git access: `git2` for local object work, the system `git` binary for the network.

pub mod cli;
pub mod failure;
pub mod remote;
pub mod tree;

pub use failure::RemoteFailure;

use std::path::{Path, PathBuf};

/// Bytes of a pack libgit2 maps per window, and in all. Its 64-bit defaults (1 GiB
/// and 8 GiB) let a first import of a large ledger map the whole pack, which counts
/// in the process's RSS and in a systemd unit's memory limit.
const MWINDOW_SIZE: usize = 16 << 20;
const MWINDOW_MAPPED_LIMIT: usize = 64 << 20;

/// Caps how much of the ledger's packs libgit2 keeps mapped at once (64 MiB).
///
/// # Safety
///
/// Changes libgit2's process-wide settings without synchronization: call it
/// before any thread is started, first thing in `main`.
pub unsafe fn limit_mapped_packs() {
    // SAFETY: the caller guarantees no other thread exists yet.
    let set = unsafe {
        git2::opts::set_mwindow_size(MWINDOW_SIZE)
            .and_then(|()| git2::opts::set_mwindow_mapped_limit(MWINDOW_MAPPED_LIMIT))
    };
    // The defaults still work, only with more memory mapped.
    if let Err(e) = set {
        tracing::debug!(error = %e, "libgit2 pack window limits not set");
    }
}

/// Errors of git operations, with the repository they happened in.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// A libgit2 operation failed.
    #[error("git repository {path}: {source}")]
    Repo {
        /// The repository.
        path: PathBuf,
        #[source]
        /// What libgit2 reported.
        source: git2::Error,
    },
    /// The `git` binary could not be started.
    #[error("could not run `git` ({0}): is git installed and on PATH?")]
    Spawn(std::io::Error),
    /// A `git` command failed; `stderr` is what it printed (credentials redacted).
    #[error("`git {args}` failed in {path}: {stderr}")]
    Command {
        /// The git arguments run.
        args: String,
        /// The repository it ran in.
        path: PathBuf,
        /// What git printed on stderr.
        stderr: String,
        /// What the failure means for the remote: out of reach, refused, missing, ...
        failure: RemoteFailure,
    },
    /// A remote request ran past `[sync] remote_timeout`; git and everything it
    /// started were killed. Counts as an unreachable remote: the next sync retries.
    #[error(
        "`git {args}` in {path} gave no answer within {} ([sync] remote_timeout); killed",
        seconds(*after)
    )]
    Timeout {
        /// The git arguments run.
        args: String,
        /// The repository it ran in.
        path: PathBuf,
        /// The time limit it ran past.
        after: std::time::Duration,
    },
    /// A remote request printed more than its stdout cap (a hostile or broken
    /// remote); git and everything it started were killed.
    #[error(
        "`git {args}` in {path} printed more than {cap} bytes on stdout (a hostile or broken remote); killed"
    )]
    Oversized {
        /// The git arguments run.
        args: String,
        /// The repository it ran in.
        path: PathBuf,
        /// The cap, in bytes.
        cap: usize,
    },
    /// A push was refused because the remote moved on (the compare-and-swap lost).
    #[error("push to {remote} was rejected: the branch moved (non-fast-forward)")]
    Rejected {
        /// The remote pushed to.
        remote: String,
    },
}

impl GitError {
    /// Whether the failure means the remote is out of reach (sync exits 75).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self.remote_failure(),
            Some(RemoteFailure::Unreachable | RemoteFailure::Timeout)
        )
    }

    /// What a failed `git` run means for the remote; `None` for failures that ran no `git`.
    pub fn remote_failure(&self) -> Option<RemoteFailure> {
        match self {
            GitError::Command { failure, .. } => Some(*failure),
            GitError::Timeout { .. } => Some(RemoteFailure::Timeout),
            GitError::Oversized { .. } => Some(RemoteFailure::Other),
            _ => None,
        }
    }
}

/// A time limit as operators set it: whole seconds as `120 s`, anything finer as humantime does.
fn seconds(d: std::time::Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        humantime::format_duration(d).to_string()
    }
}

/// Attaches the repository path to a libgit2 result.
pub trait RepoContext<T> {
    /// Wraps the error with the repository path.
    fn in_repo(self, path: &Path) -> Result<T, GitError>;
}

impl<T> RepoContext<T> for Result<T, git2::Error> {
    fn in_repo(self, path: &Path) -> Result<T, GitError> {
        self.map_err(|source| GitError::Repo {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Opens a repository, or creates it bare when it does not exist.
pub fn open_or_init_bare(path: &Path) -> Result<(git2::Repository, bool), GitError> {
    match git2::Repository::open_bare(path) {
        Ok(repo) => Ok((repo, false)),
        Err(_) => {
            let mut opts = git2::RepositoryInitOptions::new();
            opts.bare(true).initial_head("main").mkpath(true);
            let repo = git2::Repository::init_opts(path, &opts).in_repo(path)?;
            Ok((repo, true))
        }
    }
}
