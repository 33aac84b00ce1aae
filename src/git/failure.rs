//! What a failed `git fetch` or `git push` means, read from the messages git prints.
//!
//! Only a remote that cannot be reached is worth retrying later; a refused
//! credential, a server that says no or a repository that does not exist stays
//! that way until someone fixes it, so it must not look like a network blip.

/// Why git could not fetch from or push to the remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteFailure {
    /// The remote could not be reached (DNS, refused, reset, timeout, a server error): retry later.
    Unreachable,
    /// The remote took longer than `[sync] remote_timeout` to answer (it accepted the
    /// connection and stalled, or trickled bytes); git was killed: retry later.
    Timeout,
    /// The remote did not accept who we are (HTTP 401, an ssh key it refused, a host key that did not verify).
    Auth,
    /// The remote knew who we are and refused (HTTP 403, a declining hook, a protected branch).
    Rejected,
    /// The remote says the repository does not exist (or, for `git daemon`, is not exported).
    NotFound,
    /// Any other failure of git.
    Other,
}

impl RemoteFailure {
    /// Stable kind for `--json` output, logs and metrics.
    pub fn kind(self) -> &'static str {
        match self {
            RemoteFailure::Unreachable => "offline",
            RemoteFailure::Timeout => "timeout",
            RemoteFailure::Auth => "auth",
            RemoteFailure::Rejected => "rejected",
            RemoteFailure::NotFound => "not_found",
            RemoteFailure::Other => "git",
        }
    }
}

/// Phrases of git, ssh and curl when the remote did not accept the credentials.
const AUTH: &[&str] = &[
    "authentication failed",
    "invalid username or password",
    "could not read username",
    "could not read password",
    "terminal prompts disabled",
    "returned error: 401",
    // ssh: `git@host: Permission denied (publickey).`
    "permission denied (",
    "host key verification failed",
];

/// Phrases of a server that understood the request and refused it.
const REFUSED: &[&str] = &[
    // `! [remote rejected] main -> main (pre-receive hook declined)`, `(hook declined)`,
    // `(protected branch hook declined)`.
    "hook declined",
    "protected branch",
    "returned error: 403",
];

/// Phrases of a server saying the repository is not there.
const NOT_FOUND: &[&str] = &[
    // GitHub over ssh (`ERROR: Repository not found.`) and over https (`remote: Repository not found.`).
    "repository not found",
    // `git daemon` says the same for a missing repository and one it does not export.
    "access denied or repository not exported",
];

/// Phrases git prints when the remote cannot be reached, or drops the connection midway.
const UNREACHABLE: &[&str] = &[
    "could not read from remote repository",
    // A local or mounted path that is absent: a share not mounted yet, or a
    // repository not created yet (a node may be initialised before its remote).
    "does not appear to be a git repository",
    "could not resolve host",
    "connection refused",
    "connection timed out",
    "unable to access",
    "failed to connect",
    "network is unreachable",
    "no such file or directory",
    "the remote end hung up unexpectedly",
    "could not connect",
    // A server at its connection limit (git daemon's --max-connections, a proxy)
    // drops or resets connections mid-transfer: retry later, like offline.
    "connection reset by peer",
    "broken pipe",
    "early eof",
    "unexpected disconnect while reading sideband packet",
];

/// Phrases of `git push` meaning another writer got there first.
const LOST_RACE: &[&str] = &[
    "[rejected]",
    "non-fast-forward",
    "fetch first",
    "stale info",
    "failed to update ref",
    "cannot lock ref",
    "incorrect old value",
    "is at ",
];

/// Whether `git push` output reports a lost race rather than a hard failure.
pub fn lost_race(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    LOST_RACE.iter().any(|p| t.contains(p))
}

/// What a failed fetch or push means, from what git printed on stderr.
///
/// The more specific meanings are looked for first: ssh prints `Permission
/// denied (publickey)` and then the generic `Could not read from remote
/// repository`, curl says `unable to access` for a 403 as for a refused
/// connection.
pub fn classify(stderr: &str) -> RemoteFailure {
    let t = stderr.to_ascii_lowercase();
    let has = |phrases: &[&str]| phrases.iter().any(|p| t.contains(p));
    if has(AUTH) {
        RemoteFailure::Auth
    } else if has(REFUSED)
        // GitHub: `remote: Permission to o/r.git denied to bot.`
        || (t.contains("permission to ") && t.contains(" denied to "))
        // Any other reason a server gives for refusing a ref, except a lost race.
        || (t.contains("[remote rejected]") && !lost_race(&t))
    {
        RemoteFailure::Rejected
    } else if has(NOT_FOUND) || (t.contains("fatal: repository '") && t.contains("' not found")) {
        RemoteFailure::NotFound
    } else if has(UNREACHABLE) {
        RemoteFailure::Unreachable
    } else {
        RemoteFailure::Other
    }
}

#[cfg(test)]
mod tests;
