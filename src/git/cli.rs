//! Running the system `git` binary for fetch and push, so ssh config, credential
//! helpers and `http.extraheader` work exactly as they do for the user's own git.

use super::GitError;
use base64::Engine as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// Result of a successful `git` run.
#[derive(Debug)]
pub struct GitOutput {
    /// What git printed on stdout.
    pub stdout: String,
    /// What git printed on stderr.
    pub stderr: String,
}

/// Environment variables that carry the remote's credentials, in order of preference:
/// passed to git per command, redacted from output, never given to handlers or lanes.
pub const TOKEN_VARS: [&str; 2] = ["GITMESH_GIT_TOKEN", "GITHUB_TOKEN"];

/// Removes credentials from text before it is logged or shown.
pub fn redact(text: &str) -> String {
    let mut out = text.to_string();
    for var in TOKEN_VARS {
        if let Ok(tok) = std::env::var(var)
            && tok.len() >= 4
        {
            out = out.replace(&tok, "***");
        }
    }
    crate::config::redact_urls(&out)
}

/// Makes a git child die with gitmesh, so a killed sync leaves no git running on.
///
/// Without it, git outlives a SIGKILLed gitmesh, may die later of SIGPIPE while it
/// holds a ref lock, and nobody can tell an abandoned lock from a busy one. With
/// it, whoever holds the node's sync lock knows every ref lock it finds is stale.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: between fork and exec the closure calls only async-signal-safe
    // functions (prctl, getppid, _exit) and touches no shared state.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

/// A request `git` makes to the remote, counted for the fleet's request budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteOp {
    /// `git fetch`.
    Fetch,
    /// `git push`.
    Push,
    /// `git ls-remote` (one ref advertisement).
    LsRemote,
}

impl RemoteOp {
    /// Every kind, in the order of [`remote_requests`].
    pub const ALL: [RemoteOp; 3] = [RemoteOp::Fetch, RemoteOp::Push, RemoteOp::LsRemote];

    /// Label in metrics.
    pub fn label(self) -> &'static str {
        match self {
            RemoteOp::Fetch => "fetch",
            RemoteOp::Push => "push",
            RemoteOp::LsRemote => "ls_remote",
        }
    }

    /// The remote request a `git` argument list makes, if any (pure): the first
    /// argument that is not an option or an option's value names the command.
    pub fn of(args: &[&str]) -> Option<RemoteOp> {
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match *a {
                "-c" | "-C" => {
                    it.next();
                }
                a if a.starts_with('-') => {}
                "fetch" => return Some(RemoteOp::Fetch),
                "push" => return Some(RemoteOp::Push),
                "ls-remote" => return Some(RemoteOp::LsRemote),
                _ => return None,
            }
        }
        None
    }
}

static REMOTE_REQUESTS: [std::sync::atomic::AtomicU64; 3] = [
    std::sync::atomic::AtomicU64::new(0),
    std::sync::atomic::AtomicU64::new(0),
    std::sync::atomic::AtomicU64::new(0),
];

/// Remote requests this process has started, by kind (in [`RemoteOp::ALL`] order).
pub fn remote_requests() -> [u64; 3] {
    REMOTE_REQUESTS
        .each_ref()
        .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
}

/// Runs `git -C repo args...` with no prompts; fails with stderr on a non-zero exit.
pub fn run(repo: &Path, args: &[&str]) -> Result<GitOutput, GitError> {
    if let Some(op) = RemoteOp::of(args) {
        let i = RemoteOp::ALL.iter().position(|o| *o == op).unwrap_or(0);
        REMOTE_REQUESTS[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(repo);
    if let Some(header) = token_header(repo) {
        // Passed per invocation through the environment-backed config, never written to disk.
        cmd.env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "http.extraheader")
            .env("GIT_CONFIG_VALUE_0", header);
    }
    cmd.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    die_with_parent(&mut cmd);
    let out = cmd.output().map_err(GitError::Spawn)?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = redact(String::from_utf8_lossy(&out.stderr).trim());
    if out.status.success() {
        Ok(GitOutput { stdout, stderr })
    } else {
        Err(GitError::Command {
            args: args.join(" "),
            path: repo.to_path_buf(),
            failure: super::failure::classify(&stderr),
            stderr,
        })
    }
}

/// The host the token variable goes to without configuration: a GitHub token is for GitHub.
pub const TOKEN_DEFAULT_HOST: &str = "github.com";

/// Key in the ledger repository's git config naming one more host the token may go to
/// (written from `[ledger] token_host` whenever the repository is set up).
pub const TOKEN_HOST_KEY: &str = "gitmesh.tokenhost";

/// Whether the token variable goes to a remote, and why not (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    /// https to the token's host, and no credential helper: send it.
    Send,
    /// The remote is not an `https://` URL: a token would cross the network in clear
    /// text (or mean nothing to ssh and local paths).
    NotHttps,
    /// The remote is on another host than the one the token is for.
    OtherHost,
    /// A credential helper is configured for the URL: git's own credentials win.
    Helper,
}

/// The host of an URL, lowercased, without user part or port.
pub fn url_host(url: &str) -> Option<String> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split_once(']').map_or(v6, |(h, _)| h)
    } else {
        host_port.split(':').next().unwrap_or(host_port)
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Decides whether the token variable may be sent to `url` (pure): only over https,
/// only to github.com or `extra_host`, and never over a configured credential helper.
pub fn token_use(url: &str, extra_host: Option<&str>, helper_configured: bool) -> TokenUse {
    if !url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    {
        return TokenUse::NotHttps;
    }
    let host = url_host(url);
    let allowed = |h: &str| {
        let h = h.trim().trim_start_matches('[').trim_end_matches(']');
        host.as_deref()
            .is_some_and(|host| host.eq_ignore_ascii_case(h))
    };
    if !(allowed(TOKEN_DEFAULT_HOST) || extra_host.is_some_and(allowed)) {
        return TokenUse::OtherHost;
    }
    if helper_configured {
        return TokenUse::Helper;
    }
    TokenUse::Send
}

/// The token from `GITMESH_GIT_TOKEN` or `GITHUB_TOKEN`, if one is set.
pub fn token() -> Option<String> {
    TOKEN_VARS
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|t| !t.is_empty()))
}

/// What the token policy decides for the `origin` of `repo`; `None` when no token is set
/// or the repository has no `origin`.
pub fn token_use_for(repo: &Path) -> Option<TokenUse> {
    token()?;
    let cfg = git2::Repository::open_bare(repo).ok()?.config().ok()?;
    let url = cfg.get_string("remote.origin.url").ok()?;
    let extra = cfg.get_string(TOKEN_HOST_KEY).ok();
    // Decide on scheme and host first: the helper lookup runs a git process.
    let first = token_use(&url, extra.as_deref(), false);
    if first != TokenUse::Send {
        return Some(first);
    }
    Some(token_use(
        &url,
        extra.as_deref(),
        helper_configured(repo, &url),
    ))
}

/// Whether git has a credential helper for `url` (system, global or repository config).
fn helper_configured(repo: &Path, url: &str) -> bool {
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(repo)
        .args(["config", "--get-urlmatch", "credential.helper", url])
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    die_with_parent(&mut cmd);
    cmd.output()
        .is_ok_and(|o| o.status.success() && !String::from_utf8_lossy(&o.stdout).trim().is_empty())
}

/// An `Authorization` header from the token variable, when the policy lets it go to
/// `repo`'s `origin` (see [`token_use`]).
fn token_header(repo: &Path) -> Option<String> {
    match token_use_for(repo)? {
        TokenUse::Send => {}
        other => {
            tracing::debug!(reason = ?other, "token variable not sent to this remote");
            return None;
        }
    }
    let token = token()?;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
    Some(format!("Authorization: basic {basic}"))
}

#[cfg(test)]
mod tests;
