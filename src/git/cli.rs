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
    // user:password@host in URLs: only an `@` before the path ends the credentials.
    let mut result = String::with_capacity(out.len());
    for word in out.split_inclusive(char::is_whitespace) {
        let userinfo = word.find("://").and_then(|scheme| {
            let authority = &word[scheme + 3..];
            let end = authority.find(['/', '\'', '"']).unwrap_or(authority.len());
            authority[..end]
                .rfind('@')
                .map(|at| (scheme + 3, scheme + 3 + at))
        });
        match userinfo {
            Some((start, at)) => {
                result.push_str(&word[..start]);
                result.push_str("***");
                result.push_str(&word[at..]);
            }
            None => result.push_str(word),
        }
    }
    result
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

/// Runs `git -C repo args...` with no prompts; fails with stderr on a non-zero exit.
pub fn run(repo: &Path, args: &[&str]) -> Result<GitOutput, GitError> {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(repo);
    if let Some(header) = token_header() {
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

/// An `Authorization` header for https remotes from `GITMESH_GIT_TOKEN` or `GITHUB_TOKEN`.
fn token_header() -> Option<String> {
    let token = TOKEN_VARS
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|t| !t.is_empty()))?;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
    Some(format!("Authorization: basic {basic}"))
}

#[cfg(test)]
mod tests;
