//! `gitmesh doctor`: checks what a node needs (git, its configuration, the remote
//! for reading and writing, its key against the ledger, its clock, free disk) and
//! says how to fix each failure. The decisions are pure functions; `doctor` runs them.

use crate::config::Config;
use crate::git::{GitError, RemoteFailure, cli};
use crate::paths::NodePaths;
use serde::Serialize;
use std::path::Path;

/// The oldest git gitmesh runs with (per-command config through `GIT_CONFIG_COUNT`).
pub const MIN_GIT: (u32, u32) = (2, 31);

/// Free space below which the disk check fails.
pub const MIN_FREE_BYTES: u64 = 256 << 20;

/// How far ahead of this machine's clock the remote's newest commit may be.
pub const MAX_CLOCK_AHEAD_SECS: i64 = 300;

/// One check and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable name: `git`, `config`, `remote_read`, `remote_push`, `key`, `clock`, `disk`.
    pub name: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// What to do, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Every check's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    /// True when every check passed.
    pub ok: bool,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

/// The (major, minor) of `git --version` output (pure).
pub fn parse_git_version(text: &str) -> Option<(u32, u32)> {
    let v = text.trim().strip_prefix("git version ")?;
    let mut parts = v.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// The fix for a remote failure of this kind (pure).
pub fn remote_fix(failure: Option<RemoteFailure>, writing: bool) -> &'static str {
    match failure {
        Some(RemoteFailure::Unreachable) => {
            "the remote is out of reach: check the network, DNS, the URL's host and port, and the server"
        }
        Some(RemoteFailure::Timeout) => {
            "the remote accepted the connection but did not answer within [sync] remote_timeout: \
             check the server and any proxy on the way, or raise remote_timeout for a slow link"
        }
        Some(RemoteFailure::Auth) => {
            "give git a working credential: a credential helper or ssh key for this user, or \
             GITMESH_GIT_TOKEN (sent only over https to github.com or [ledger] token_host)"
        }
        Some(RemoteFailure::Rejected) if writing => {
            "the credential may read but not write: give it write access to the ledger branch \
             (contents: write on GitHub), or lift the rule or hook that refuses the push"
        }
        Some(RemoteFailure::Rejected) => "the server refused the credential: check its access",
        Some(RemoteFailure::NotFound) => {
            "check [ledger] remote (or GITMESH_REMOTE), and that the credential can see the repository"
        }
        _ => "read git's message above; run the same git command in state/github_coordination",
    }
}

/// The disk check's decision (pure).
pub fn disk_check(free: u64, total: u64) -> Check {
    let detail = format!("{} MiB free of {} MiB", free >> 20, total >> 20);
    if free < MIN_FREE_BYTES {
        Check::fail(
            "disk",
            detail,
            format!(
                "free space on the node root's file system (at least {} MiB)",
                MIN_FREE_BYTES >> 20
            ),
        )
    } else {
        Check::pass("disk", detail)
    }
}

/// The clock check's decision (pure): `ahead` is how many seconds the remote's newest
/// commit is ahead of this machine's clock (`None`: no commit to compare with).
pub fn clock_check(ahead: Option<i64>) -> Check {
    match ahead {
        None => Check::pass("clock", "no ledger commit to compare with yet"),
        Some(s) if s > MAX_CLOCK_AHEAD_SECS => Check::fail(
            "clock",
            format!("the remote's newest commit is {s} s ahead of this machine's clock"),
            "this clock is behind: synchronise it (chrony, systemd-timesyncd or ntpd); leases and \
             staleness are judged by it",
        ),
        Some(s) => Check::pass(
            "clock",
            format!("the remote's newest commit is {s} s from this machine's clock"),
        ),
    }
}

/// Runs every check on the node root at `root`.
pub fn doctor(root: &Path) -> DoctorReport {
    let mut checks = vec![git_check()];
    let paths = NodePaths::new(root);
    match Config::load(&paths.config()) {
        Ok(cfg) => {
            checks.push(Check::pass(
                "config",
                format!("{} is valid", paths.config().display()),
            ));
            checks.extend(node_checks(root, &paths, &cfg));
        }
        Err(e) => checks.push(Check::fail(
            "config",
            e.to_string(),
            "fix mesh.toml as the message says (docs/configuration.md), or run `gitmesh mesh-init`",
        )),
    }
    checks.push(disk(root));
    DoctorReport {
        ok: checks.iter().all(|c| c.ok),
        checks,
    }
}

fn git_check() -> Check {
    let out = std::process::Command::new("git")
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output();
    let fix = format!("install git {}.{} or newer", MIN_GIT.0, MIN_GIT.1);
    match out {
        Err(e) => Check::fail("git", format!("could not run git: {e}"), fix),
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout).trim().to_string();
            match parse_git_version(&text) {
                Some(v) if v >= MIN_GIT => Check::pass("git", text),
                Some(_) => Check::fail("git", format!("{text} is too old"), fix),
                None => Check::fail("git", format!("unexpected `git --version`: {text:?}"), fix),
            }
        }
    }
}

fn git_failure(name: &'static str, e: &GitError, writing: bool) -> Check {
    Check::fail(name, e.to_string(), remote_fix(e.remote_failure(), writing))
}

fn node_checks(root: &Path, paths: &NodePaths, cfg: &Config) -> Vec<Check> {
    let mut checks = Vec::new();
    if let Err(e) = crate::store::repo::ensure(cfg, paths) {
        checks.push(git_failure("remote_read", &e, false));
        return checks;
    }
    let repo = paths.ledger_repo();
    let branch = &cfg.ledger.branch;
    let url = crate::store::repo::display_url(cfg, paths);
    let head = crate::git::remote::local_ref(branch);
    match crate::git::remote::ls_remote(&repo, &[&head], cfg.sync.remote_timeout.0) {
        Ok(refs) if refs.is_empty() => checks.push(Check::pass(
            "remote_read",
            format!("{url} is readable; it has no branch {branch} yet (the first sync creates it)"),
        )),
        Ok(_) => checks.push(Check::pass(
            "remote_read",
            format!("{url} is readable, branch {branch}"),
        )),
        Err(e) => checks.push(git_failure("remote_read", &e, false)),
    }
    let local = crate::git::remote::local_ref(branch);
    let has_local =
        git2::Repository::open_bare(&repo).is_ok_and(|r| r.find_reference(&local).is_ok());
    if has_local {
        let spec = format!("{local}:{local}");
        match cli::run(
            &repo,
            &["push", "--dry-run", "--quiet", "origin", &spec],
            cfg.sync.remote_timeout.0,
        ) {
            Ok(_) => checks.push(Check::pass("remote_push", "a dry-run push was accepted")),
            // A branch that moved on is a lost race, not a missing permission.
            Err(GitError::Command {
                ref stderr,
                failure: RemoteFailure::Other,
                ..
            }) if crate::git::remote::looks_rejected(stderr) => checks.push(Check::pass(
                "remote_push",
                "the server took the dry-run push (the branch has moved on: the next sync rebuilds)",
            )),
            Err(e) => checks.push(git_failure("remote_push", &e, true)),
        }
    } else {
        checks.push(Check::fail(
            "remote_push",
            format!("no local branch {branch} to try a push with"),
            "run `gitmesh mesh-init` (it commits this node's manifest)",
        ));
    }
    checks.push(key_check(root));
    checks.push(clock(&repo, branch));
    checks
}

fn key_check(root: &Path) -> Check {
    let node = match crate::node::Node::open(root) {
        Ok(n) => n,
        Err(e) => return Check::fail("key", e.to_string(), "run `gitmesh mesh-init`"),
    };
    match super::identity::show(&node) {
        Err(e) => Check::fail(
            "key",
            e.to_string(),
            "give the node its key: GITMESH_SIGNING_KEY, [identity] key_file, or run `gitmesh mesh-init`",
        ),
        Ok(r) if r.matches_ledger == Some(false) || r.lost_key.is_some() => Check::fail(
            "key",
            format!(
                "this root's key {} is not the key the ledger holds for {} ({})",
                r.public_key,
                r.node_id,
                r.ledger_key
                    .as_deref()
                    .unwrap_or("recorded at the last sync")
            ),
            "restore the node's key (GITMESH_SIGNING_KEY, [identity] key_file, or a backup of \
             state/event_mesh/keys/node.ed25519) and run `gitmesh mesh-init`",
        ),
        Ok(r) => Check::pass(
            "key",
            match r.matches_ledger {
                Some(_) => format!("key {} (from {}) is the ledger's", r.public_key, r.source),
                None => format!(
                    "key {} (from {}); the ledger has no manifest of this node yet",
                    r.public_key, r.source
                ),
            },
        ),
    }
}

fn clock(repo: &Path, branch: &str) -> Check {
    let ahead = git2::Repository::open_bare(repo).ok().and_then(|r| {
        let commit =
            crate::git::tree::ref_target(&r, &crate::git::remote::tracking_ref(branch)).ok()??;
        let time = r.find_commit(commit).ok()?.committer().when().seconds();
        Some(time - chrono::Utc::now().timestamp())
    });
    clock_check(ahead)
}

fn disk(root: &Path) -> Check {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let dir = if root.exists() { root } else { Path::new(".") };
        let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
            return Check::fail(
                "disk",
                "the root's path holds a NUL byte",
                "use another --root",
            );
        };
        let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: `c` is a valid NUL-terminated path and `st` is written by statvfs
        // before it is read, only when it returns 0.
        let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
        if rc != 0 {
            return Check::fail(
                "disk",
                format!(
                    "statvfs {}: {}",
                    dir.display(),
                    std::io::Error::last_os_error()
                ),
                "check that the node root exists and is readable",
            );
        }
        // SAFETY: statvfs returned 0, so it filled `st`.
        let st = unsafe { st.assume_init() };
        // The field types are u64 on Linux but narrower elsewhere.
        #[allow(clippy::unnecessary_cast)]
        let (frsize, avail, blocks) = (st.f_frsize as u64, st.f_bavail as u64, st.f_blocks as u64);
        disk_check(avail.saturating_mul(frsize), blocks.saturating_mul(frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = root;
        Check::pass("disk", "not checked on this platform")
    }
}

#[cfg(test)]
mod tests;
