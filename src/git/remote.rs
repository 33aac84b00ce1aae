//! Fetch and push of one branch through the system `git` binary.

use super::{GitError, RemoteFailure, RepoContext, cli};
use git2::Oid;
use std::path::Path;
use std::time::Duration;

/// The remote-tracking ref of `branch` in a ledger repository.
pub fn tracking_ref(branch: &str) -> String {
    format!("refs/remotes/origin/{branch}")
}

/// The local branch ref.
pub fn local_ref(branch: &str) -> String {
    format!("refs/heads/{branch}")
}

/// Fetches `branch` from `origin` into its remote-tracking ref and returns the remote head;
/// one git run takes at most `timeout` (`[sync] remote_timeout`).
///
/// `Ok(None)` means the remote holds no such branch yet (a new, empty mesh).
///
/// A fetch that finds the tracking ref locked by another git process (typically
/// the fetch or push of a sync that was killed: its git child runs on and
/// finishes) waits for it and tries again, for about ten seconds at most.
pub fn fetch(repo: &Path, branch: &str, timeout: Duration) -> Result<Option<Oid>, GitError> {
    let spec = format!("+{}:{}", local_ref(branch), tracking_ref(branch));
    let mut wait = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    loop {
        match cli::run(
            repo,
            &["fetch", "--quiet", "--no-tags", "origin", &spec],
            timeout,
        ) {
            Ok(_) => break,
            Err(GitError::Command { stderr, .. })
                if stderr
                    .to_ascii_lowercase()
                    .contains("couldn't find remote ref") =>
            {
                return Ok(None);
            }
            Err(GitError::Command { ref stderr, .. })
                if ref_locked(stderr) && waited < FETCH_LOCK_WAIT =>
            {
                std::thread::sleep(wait);
                waited += wait;
                wait = (wait * 2).min(Duration::from_secs(1));
            }
            Err(e) => return Err(e),
        }
    }
    let r = git2::Repository::open_bare(repo).in_repo(repo)?;
    super::tree::ref_target(&r, &tracking_ref(branch)).in_repo(repo)
}

/// How long a fetch waits for a ref another git process holds locked.
const FETCH_LOCK_WAIT: Duration = Duration::from_secs(10);

/// Whether git failed because another git process holds a local ref lock.
pub fn ref_locked(stderr: &str) -> bool {
    let t = stderr.to_ascii_lowercase();
    t.contains("cannot lock ref") || (t.contains("unable to create") && t.contains(".lock"))
}

/// What a push achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The remote branch now points at the pushed commit.
    Pushed,
    /// The remote refused the update because its branch moved (the compare-and-swap lost).
    Rejected(String),
}

/// Whether `git push` output reports a lost race rather than a hard failure.
pub fn looks_rejected(text: &str) -> bool {
    super::failure::lost_race(text)
}

/// Pushes local `branch` to the same branch of `origin`, never forcing.
///
/// The remote applies the update only if it is a fast-forward of its current
/// head; a lost race comes back as `PushOutcome::Rejected`, any other failure
/// as an error whose `remote_failure()` says what it means (out of reach,
/// refused credentials, refused by the server, missing repository).
pub fn push(repo: &Path, branch: &str, timeout: Duration) -> Result<PushOutcome, GitError> {
    let spec = format!("{0}:{0}", local_ref(branch));
    // Batches are new content: delta search over MB-sized blobs costs more CPU than it saves bytes.
    match cli::run(
        repo,
        &["-c", "pack.window=0", "push", "--quiet", "origin", &spec],
        timeout,
    ) {
        Ok(_) => Ok(PushOutcome::Pushed),
        // A server that refused the push (a hook, a permission) is not a lost race,
        // whatever its message says.
        Err(GitError::Command {
            stderr,
            failure: RemoteFailure::Other,
            ..
        }) if looks_rejected(&stderr) => Ok(PushOutcome::Rejected(stderr)),
        Err(e) => Err(e),
    }
}

/// Most refs a `git ls-remote` answer may list before it is refused as hostile.
pub const MAX_ADVERTISED_REFS: usize = 10_000;

/// The heads of `origin` matching `patterns` (e.g. `refs/heads/main`), as `(ref, oid)`,
/// from one ref advertisement: the cheapest request that tells whether the remote moved.
pub fn ls_remote(
    repo: &Path,
    patterns: &[&str],
    timeout: Duration,
) -> Result<Vec<(String, String)>, GitError> {
    let mut args = vec!["ls-remote", "--heads", "origin"];
    args.extend_from_slice(patterns);
    let out = cli::run(repo, &args, timeout)?;
    parse_ls_remote(&out.stdout).map_err(|why| GitError::Command {
        args: args.join(" "),
        path: repo.to_path_buf(),
        stderr: why,
        failure: RemoteFailure::Other,
    })
}

/// Parses `git ls-remote` output (`<oid>\t<ref>` lines); refuses a malformed line,
/// an oid that is not hex, or more than [`MAX_ADVERTISED_REFS`] refs.
pub fn parse_ls_remote(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut refs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        if refs.len() == MAX_ADVERTISED_REFS {
            return Err(format!(
                "ls-remote lists more than {MAX_ADVERTISED_REFS} refs"
            ));
        }
        let (oid, name) = line
            .split_once('\t')
            .ok_or_else(|| format!("ls-remote line {}: no tab", n + 1))?;
        let hex = matches!(oid.len(), 40 | 64) && oid.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex || !name.starts_with("refs/") || name.len() > 1024 {
            return Err(format!("ls-remote line {}: not `<oid>\\t<ref>`", n + 1));
        }
        refs.push((name.to_string(), oid.to_ascii_lowercase()));
    }
    Ok(refs)
}

#[cfg(test)]
mod tests;
