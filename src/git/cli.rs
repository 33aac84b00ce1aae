//! Running the system `git` binary for fetch and push, so ssh config, credential
//! helpers and `http.extraheader` work exactly as they do for the user's own git.

use super::GitError;
use base64::Engine as _;
use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

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

/// Most bytes of stdout a remote request may print: a ref advertisement of
/// [`super::remote::MAX_ADVERTISED_REFS`] refs of 1 KiB names (plus the oid, a tab
/// and a newline each), and 1 MiB of margin. More is a hostile or broken remote.
pub const STDOUT_CAP: usize = super::remote::MAX_ADVERTISED_REFS * (1024 + 66) + (1 << 20);

/// Bytes of stderr kept for the error message; the rest is read, counted and dropped.
pub const STDERR_KEEP: usize = 64 * 1024;

/// The bounds of one child run by [`run_bounded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time from spawn; then the child's process group is killed.
    pub timeout: Duration,
    /// Most bytes of stdout read; one more kills the process group.
    pub stdout_cap: usize,
    /// Bytes of stderr kept; the rest is drained so the child never blocks on it.
    pub stderr_keep: usize,
}

impl Limits {
    /// The bounds of a remote request with `timeout` ([`STDOUT_CAP`], [`STDERR_KEEP`]).
    pub fn remote(timeout: Duration) -> Limits {
        Limits {
            timeout,
            stdout_cap: STDOUT_CAP,
            stderr_keep: STDERR_KEEP,
        }
    }
}

/// How a bounded child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It exited (or was killed by someone else) within the limits.
    Exited(ExitStatus),
    /// The deadline passed first; its process group was killed.
    TimedOut,
    /// It printed more than the stdout cap; its process group was killed.
    StdoutOver,
}

/// What [`run_bounded`] saw of a child.
#[derive(Debug)]
pub struct Bounded {
    /// How it ended.
    pub ending: Ending,
    /// Its stdout (complete when it exited; empty when it was killed).
    pub stdout: Vec<u8>,
    /// The first [`Limits::stderr_keep`] bytes of its stderr (empty when it was killed).
    pub stderr: Vec<u8>,
    /// Bytes of stderr read past the kept ones.
    pub stderr_dropped: u64,
}

/// Appends what fits of `chunk` to `kept` under `cap` (pure); returns the bytes left over.
pub fn keep_within(kept: &mut Vec<u8>, chunk: &[u8], cap: usize) -> usize {
    let room = cap.saturating_sub(kept.len()).min(chunk.len());
    kept.extend_from_slice(&chunk[..room]);
    chunk.len() - room
}

/// Events of the threads watching one child.
enum Watch {
    /// Stdout reached its end.
    OutDone,
    /// Stdout went past its cap.
    OutOver,
    /// Stderr reached its end.
    ErrDone,
    /// The child was reaped.
    Exited(std::io::Result<ExitStatus>),
}

/// Reads `pipe` to its end, keeping at most `cap` bytes; `over` says whether more came.
fn read_capped(mut pipe: impl Read, cap: usize) -> (Vec<u8>, u64) {
    let mut kept = Vec::new();
    let mut dropped = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => dropped += keep_within(&mut kept, &buf[..n], cap) as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A read error ends the stream like its end: the exit status still tells.
            Err(_) => break,
        }
    }
    (kept, dropped)
}

/// Sends SIGKILL to the process group `pid` leads.
fn kill_group(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals the process group made for this
        // child (its own pid, which is not reaped yet, so not reused); no memory is touched.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// Starts a watching thread: a small stack, as it only moves bytes between a pipe
/// and a buffer on the heap, and costs less to map on every request.
fn watcher<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<T>> {
    std::thread::Builder::new()
        .name("git-watch".into())
        .stack_size(64 * 1024)
        .spawn(f)
}

/// Runs `cmd` in its own process group with a deadline and capped output.
///
/// Stdout and stderr are read on threads (so neither pipe can fill and block the
/// child), the child is reaped on a third, and this thread waits on their events
/// with the deadline: a child that exits in time costs no polling. On the deadline,
/// or on stdout past its cap, the whole group (git and its helpers, `ssh`,
/// `git-remote-http`) is killed with SIGKILL and the child reaped before returning.
/// `Err` only when it cannot start.
pub fn run_bounded(mut cmd: Command, limits: &Limits) -> std::io::Result<Bounded> {
    use std::os::unix::process::CommandExt;
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    die_with_parent(&mut cmd);
    let deadline = Instant::now() + limits.timeout;
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().map(|pipe| {
        let (tx, cap) = (tx.clone(), limits.stdout_cap);
        watcher(move || {
            // One byte past the cap is enough to know it is over.
            let (kept, over) = read_capped(pipe.take(cap as u64 + 1), cap);
            let _ = tx.send(if over > 0 {
                Watch::OutOver
            } else {
                Watch::OutDone
            });
            kept
        })
    });
    let err = child.stderr.take().map(|pipe| {
        let (tx, keep) = (tx.clone(), limits.stderr_keep);
        watcher(move || {
            let got = read_capped(pipe, keep);
            let _ = tx.send(Watch::ErrDone);
            got
        })
    });
    let (out, err) = match (out.transpose(), err.transpose()) {
        (Ok(out), Ok(err)) => (out, err),
        (Err(e), _) | (_, Err(e)) => {
            // No thread to watch it: end the child now rather than leave it unbounded.
            kill_group(pid);
            let _ = child.wait();
            return Err(e);
        }
    };
    let waiter = {
        let tx = tx.clone();
        watcher(move || {
            let _ = tx.send(Watch::Exited(child.wait()));
        })
    };
    let waiter = match waiter {
        Ok(w) => w,
        Err(e) => {
            kill_group(pid);
            // The child went down with the closure unreaped: reap it here.
            if let Ok(p) = libc::pid_t::try_from(pid) {
                // SAFETY: waitpid(2) on our own child, which nothing else has reaped.
                unsafe {
                    libc::waitpid(p, std::ptr::null_mut(), 0);
                }
            }
            return Err(e);
        }
    };
    drop(tx);
    let (mut out_done, mut err_done) = (out.is_none(), err.is_none());
    let mut status = None;
    let killed = loop {
        if out_done
            && err_done
            && let Some(st) = status
        {
            break Ending::Exited(st);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Watch::OutDone) => out_done = true,
            Ok(Watch::ErrDone) => err_done = true,
            Ok(Watch::Exited(Ok(st))) => status = Some(st),
            Ok(Watch::Exited(Err(e))) => {
                kill_group(pid);
                return Err(e);
            }
            Ok(Watch::OutOver) => break Ending::StdoutOver,
            Err(_) => break Ending::TimedOut,
        }
    };
    if let Ending::Exited(st) = killed {
        let _ = waiter.join();
        let stdout = out.and_then(|h| h.join().ok()).unwrap_or_default();
        let (stderr, stderr_dropped) = err.and_then(|h| h.join().ok()).unwrap_or_default();
        return Ok(Bounded {
            ending: Ending::Exited(st),
            stdout,
            stderr,
            stderr_dropped,
        });
    }
    kill_group(pid);
    // The waiter returns once the child is reaped; the readers end when the last
    // process of the killed group closes its pipe ends, and are not waited for.
    let _ = waiter.join();
    Ok(Bounded {
        ending: killed,
        stdout: Vec::new(),
        stderr: Vec::new(),
        stderr_dropped: 0,
    })
}

/// The `git -C repo args...` command with no prompts, and the token header when the
/// policy lets it go to the remote.
fn git_command(repo: &Path, args: &[&str]) -> Command {
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
    cmd
}

/// Runs `git -C repo args...` for a remote request (fetch, push, ls-remote) within
/// `timeout` and the output caps of [`Limits::remote`]; fails with stderr on a
/// non-zero exit, with [`GitError::Timeout`] or [`GitError::Oversized`] when killed.
///
/// The timeout is an argument, not a key in the repository's git config: every
/// caller already holds the node's configuration, a reloaded `mesh.toml` applies
/// to the next request without rewriting the repository, and no request pays a
/// config read for it.
pub fn run(repo: &Path, args: &[&str], timeout: Duration) -> Result<GitOutput, GitError> {
    if let Some(op) = RemoteOp::of(args) {
        let i = RemoteOp::ALL.iter().position(|o| *o == op).unwrap_or(0);
        REMOTE_REQUESTS[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let limits = Limits::remote(timeout);
    let got = run_bounded(git_command(repo, args), &limits).map_err(GitError::Spawn)?;
    let status = match got.ending {
        Ending::Exited(status) => status,
        Ending::TimedOut => {
            return Err(GitError::Timeout {
                args: redact(&args.join(" ")),
                path: repo.to_path_buf(),
                after: timeout,
            });
        }
        Ending::StdoutOver => {
            return Err(GitError::Oversized {
                args: redact(&args.join(" ")),
                path: repo.to_path_buf(),
                cap: limits.stdout_cap,
            });
        }
    };
    let stdout = String::from_utf8_lossy(&got.stdout).into_owned();
    let mut stderr = redact(String::from_utf8_lossy(&got.stderr).trim());
    if got.stderr_dropped > 0 {
        stderr.push_str(&format!(
            " ({} more bytes of stderr dropped)",
            got.stderr_dropped
        ));
    }
    if status.success() {
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
