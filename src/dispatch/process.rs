//! Running an operator-configured argv with a time limit (no shell, payload only in env/stdin).

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How a child process ended.
#[derive(Debug, Clone)]
pub struct ProcessOutcome {
    /// Exit code; `None` when killed by a signal or the time limit.
    pub code: Option<i32>,
    /// Killed because it ran past the time limit.
    pub timed_out: bool,
    /// Everything it printed on stdout.
    pub stdout: Vec<u8>,
    /// The end of what it printed on stderr (at most 4 KiB).
    pub stderr: String,
}

impl ProcessOutcome {
    /// Exited with status 0 within the limit.
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    /// A one-line description of a failure.
    pub fn describe(&self) -> String {
        let tail = self.stderr.trim();
        let tail = if tail.is_empty() {
            String::new()
        } else {
            format!(": {}", tail.lines().last().unwrap_or(tail))
        };
        if self.timed_out {
            format!("timed out{tail}")
        } else {
            match self.code {
                Some(c) => format!("exit status {c}{tail}"),
                None => format!("killed by a signal{tail}"),
            }
        }
    }
}

/// The command for `prog args` with `env` added and the remote's credentials removed:
/// handlers and lane commands are operator-configured, but they need not hold the
/// token that can push to the whole mesh's ledger.
fn command(prog: &str, args: &[String], env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(prog);
    cmd.args(args);
    for var in crate::git::cli::TOKEN_VARS {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd
}

/// Runs `argv` (never through a shell) with extra environment, optional stdin and a time limit.
///
/// The child gets its own process group; on timeout the whole group is killed,
/// so grandchildren cannot keep the pipes open. `Err` only when it cannot start.
pub fn run(
    argv: &[String],
    env: &[(String, String)],
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> std::io::Result<ProcessOutcome> {
    let Some((prog, args)) = argv.split_first() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "empty argv",
        ));
    };
    let mut cmd = command(prog, args, env);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let writer = match (stdin, child.stdin.take()) {
        (Some(bytes), Some(mut pipe)) => {
            let bytes = bytes.to_vec();
            Some(std::thread::spawn(move || {
                // A handler may exit without reading its input; that is not an error here.
                let _ = pipe.write_all(&bytes);
            }))
        }
        _ => None,
    };
    let out_pipe = child.stdout.take();
    let err_pipe = child.stderr.take();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = out_pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = err_pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    });
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let mut sleep = Duration::from_millis(1);
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            kill_group(pid);
            break child.wait()?;
        }
        std::thread::sleep(sleep);
        sleep = (sleep * 2).min(Duration::from_millis(20));
    };
    // Children of the child may still hold the pipes: end them too.
    kill_group(pid);
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stdout = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    let tail = &err[err.len().saturating_sub(4096)..];
    Ok(ProcessOutcome {
        code: status.code(),
        timed_out,
        stdout,
        stderr: String::from_utf8_lossy(tail).into_owned(),
    })
}

fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals the process group we created
        // for this child (its own pid); it touches no memory of ours.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests;
