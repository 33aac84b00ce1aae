//! Running an operator-configured argv with a time limit (no shell, payload only in env/stdin),
//! a scrubbed environment, bounded output, and an end for everything it started.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Default cap on the bytes read from each of a child's stdout and stderr (1 MiB).
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 1024 * 1024;

/// How long the pipes are still read after the child has ended: output a
/// grandchild keeps writing after that is dropped, so a detached process that
/// holds the pipes cannot keep the caller waiting.
pub const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// Variables a child inherits from gitmesh's own environment; everything else
/// (the remote's token above all) is left out unless the handler names it.
pub const INHERITED_VARS: [&str; 11] = [
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ",
    "TMPDIR",
];

/// The variable that marks every process of one run, so the ones that left the
/// process group (`setsid`, double fork) can still be found and ended.
pub const RUN_ID_VAR: &str = "GITMESH_RUN_ID";

/// Bytes of stderr kept for the failure message (its end).
const STDERR_TAIL: usize = 4096;

/// When the processes a child left behind are ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leftovers {
    /// Always: a handler's work ends with its run.
    End,
    /// Only on a timeout or an output overflow: a lane's start may leave its
    /// service running on purpose.
    EndOnFailure,
}

/// The bounds of one run.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time limit; then the child and everything it started is killed.
    pub timeout: Duration,
    /// Most bytes read from each of stdout and stderr; more ends the run as an overflow.
    pub max_output: u64,
    /// Names of further variables passed from gitmesh's environment, as configured.
    pub pass_env: Vec<String>,
    /// What happens to processes the child started.
    pub leftovers: Leftovers,
}

impl Limits {
    /// The default bounds with `timeout`: 1 MiB per stream, no extra variables.
    pub fn new(timeout: Duration, leftovers: Leftovers) -> Limits {
        Limits {
            timeout,
            max_output: DEFAULT_MAX_OUTPUT_BYTES,
            pass_env: Vec::new(),
            leftovers,
        }
    }
}

/// How a child process ended.
#[derive(Debug, Clone)]
pub struct ProcessOutcome {
    /// Exit code; `None` when killed by a signal or the time limit.
    pub code: Option<i32>,
    /// Killed because it ran past the time limit.
    pub timed_out: bool,
    /// What it printed on stdout (at most the configured cap).
    pub stdout: Vec<u8>,
    /// The end of what it printed on stderr (at most 4 KiB).
    pub stderr: String,
    /// The stream (`stdout` or `stderr`) that went past the cap; the run was
    /// ended there and the rest discarded.
    pub overflow: Option<(&'static str, u64)>,
}

impl ProcessOutcome {
    /// Exited with status 0 within the limits.
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out && self.overflow.is_none()
    }

    /// A one-line description of a failure.
    pub fn describe(&self) -> String {
        let tail = self.stderr.trim();
        let tail = if tail.is_empty() {
            String::new()
        } else {
            format!(": {}", tail.lines().last().unwrap_or(tail))
        };
        if let Some((stream, cap)) = self.overflow {
            format!("{stream} went past {cap} bytes; the rest was discarded and the run ended")
        } else if self.timed_out {
            format!("timed out{tail}")
        } else {
            match self.code {
                Some(c) => format!("exit status {c}{tail}"),
                None => format!("killed by a signal{tail}"),
            }
        }
    }
}

/// The command for `prog args` with a scrubbed environment: the inherited
/// allow-list, the variables `pass_env` names, then `env`. Handlers and lane
/// commands are operator-configured, but they need not hold the token that can
/// push to the whole mesh's ledger, nor anything else of gitmesh's environment.
fn command(prog: &str, args: &[String], env: &[(String, String)], pass_env: &[String]) -> Command {
    let mut cmd = Command::new(prog);
    cmd.args(args);
    cmd.env_clear();
    let names = INHERITED_VARS
        .iter()
        .copied()
        .chain(pass_env.iter().map(String::as_str));
    for name in names {
        if let Some(v) = std::env::var_os(name) {
            cmd.env(name, v);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd
}

/// Runs `argv` (never through a shell) with extra environment, optional stdin and a time limit,
/// with the default bounds of [`Limits::new`] and leftovers ended only on failure.
pub fn run(
    argv: &[String],
    env: &[(String, String)],
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> std::io::Result<ProcessOutcome> {
    run_with(
        argv,
        env,
        stdin,
        &Limits::new(timeout, Leftovers::EndOnFailure),
    )
}

/// Runs `argv` within `limits`. `Err` only when it cannot start.
///
/// The child gets its own process group and a run id in its environment. On
/// timeout or overflow the group is killed and so is every process carrying the
/// run id (grandchildren that left the group); the pipes are read without
/// blocking and given up [`DRAIN_GRACE`] after the child ended, so a process
/// that escaped everything still cannot hold the caller.
pub fn run_with(
    argv: &[String],
    env: &[(String, String)],
    stdin: Option<&[u8]>,
    limits: &Limits,
) -> std::io::Result<ProcessOutcome> {
    let Some((prog, args)) = argv.split_first() else {
        return Err(std::io::Error::new(ErrorKind::InvalidInput, "empty argv"));
    };
    let run_id = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
    let mut cmd = command(prog, args, env, &limits.pass_env);
    cmd.env(RUN_ID_VAR, &run_id);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let mut child = cmd.spawn()?;
    let mut io = Pipes::take(&mut child, stdin)?;
    let pid = child.id();
    let deadline = Instant::now() + limits.timeout;
    let mut timed_out = false;
    let mut status: Option<ExitStatus> = None;
    let mut drain_until: Option<Instant> = None;
    loop {
        if status.is_none()
            && let Some(st) = child.try_wait()?
        {
            status = Some(st);
            // Children of the child may still hold the pipes: end them too.
            kill_group(pid);
            if limits.leftovers == Leftovers::End {
                end_run(&run_id);
            }
            drain_until = Some(Instant::now() + DRAIN_GRACE);
        }
        let now = Instant::now();
        if status.is_none() && (now >= deadline || io.overflow(limits.max_output).is_some()) {
            timed_out = io.overflow(limits.max_output).is_none();
            kill_group(pid);
            end_run(&run_id);
            status = Some(child.wait()?);
            drain_until = Some(Instant::now() + DRAIN_GRACE);
            continue;
        }
        if status.is_some() && io.closed() {
            break;
        }
        if drain_until.is_some_and(|d| now >= d) {
            break;
        }
        let wait = match drain_until {
            Some(d) => d.saturating_duration_since(now),
            None => deadline.saturating_duration_since(now),
        }
        .min(Duration::from_millis(20));
        io.pump(wait, limits.max_output)?;
    }
    if io.overflow(limits.max_output).is_some() {
        // Overflowed while draining after the exit: ends like an overflow before it.
        end_run(&run_id);
    }
    let overflow = io.overflow(limits.max_output);
    let code = status.and_then(|s| s.code());
    Ok(ProcessOutcome {
        code,
        timed_out,
        stderr: String::from_utf8_lossy(&io.err_tail).into_owned(),
        stdout: io.out,
        overflow,
    })
}

/// The child's pipes, read and written without blocking.
struct Pipes {
    stdin: Option<(std::process::ChildStdin, Vec<u8>, usize)>,
    out_pipe: Option<std::process::ChildStdout>,
    err_pipe: Option<std::process::ChildStderr>,
    out: Vec<u8>,
    out_seen: u64,
    err_tail: Vec<u8>,
    err_seen: u64,
}

impl Pipes {
    fn take(child: &mut Child, input: Option<&[u8]>) -> std::io::Result<Pipes> {
        let stdin = match (input, child.stdin.take()) {
            (Some(bytes), Some(pipe)) => {
                set_nonblocking(pipe.as_raw_fd())?;
                Some((pipe, bytes.to_vec(), 0))
            }
            _ => None,
        };
        let out_pipe = child.stdout.take();
        let err_pipe = child.stderr.take();
        if let Some(p) = &out_pipe {
            set_nonblocking(p.as_raw_fd())?;
        }
        if let Some(p) = &err_pipe {
            set_nonblocking(p.as_raw_fd())?;
        }
        Ok(Pipes {
            stdin,
            out_pipe,
            err_pipe,
            out: Vec::new(),
            out_seen: 0,
            err_tail: Vec::new(),
            err_seen: 0,
        })
    }

    fn closed(&self) -> bool {
        self.out_pipe.is_none() && self.err_pipe.is_none()
    }

    fn overflow(&self, cap: u64) -> Option<(&'static str, u64)> {
        if self.out_seen > cap {
            Some(("stdout", cap))
        } else if self.err_seen > cap {
            Some(("stderr", cap))
        } else {
            None
        }
    }

    /// Waits up to `wait` for any pipe to be ready, then moves what it can.
    fn pump(&mut self, wait: Duration, cap: u64) -> std::io::Result<()> {
        let mut fds = Vec::with_capacity(3);
        if let Some(p) = &self.out_pipe {
            fds.push(libc::pollfd {
                fd: p.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        if let Some(p) = &self.err_pipe {
            fds.push(libc::pollfd {
                fd: p.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        if let Some((p, _, _)) = &self.stdin {
            fds.push(libc::pollfd {
                fd: p.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            });
        }
        if fds.is_empty() {
            std::thread::sleep(wait);
            return Ok(());
        }
        let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfd
        // structs for the duration of the call; poll(2) only writes their `revents`.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return if e.kind() == ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            };
        }
        let mut buf = vec![0u8; 64 * 1024];
        if let Some(p) = self.out_pipe.as_mut() {
            match read_some(p, &mut buf) {
                Some(0) => self.out_pipe = None,
                Some(k) => {
                    self.out_seen += k as u64;
                    let room = cap.saturating_sub(self.out.len() as u64) as usize;
                    self.out.extend_from_slice(&buf[..k.min(room)]);
                }
                None => {}
            }
        }
        if let Some(p) = self.err_pipe.as_mut() {
            match read_some(p, &mut buf) {
                Some(0) => self.err_pipe = None,
                Some(k) => {
                    self.err_seen += k as u64;
                    self.err_tail.extend_from_slice(&buf[..k]);
                    if self.err_tail.len() > STDERR_TAIL {
                        let cut = self.err_tail.len() - STDERR_TAIL;
                        self.err_tail.drain(..cut);
                    }
                }
                None => {}
            }
        }
        if let Some((p, bytes, done)) = self.stdin.as_mut() {
            match p.write(&bytes[*done..]) {
                Ok(k) => *done += k,
                Err(e)
                    if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {}
                // A handler may exit without reading its input; that is not an error here.
                Err(_) => *done = bytes.len(),
            }
            if *done >= bytes.len() {
                self.stdin = None;
            }
        }
        Ok(())
    }
}

/// One non-blocking read: `Some(0)` at end of file (or a read error, which ends
/// the stream too), `Some(n)` bytes read, `None` when nothing is there yet.
fn read_some(p: &mut impl Read, buf: &mut [u8]) -> Option<usize> {
    match p.read(buf) {
        Ok(n) => Some(n),
        Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => None,
        Err(_) => Some(0),
    }
}

fn set_nonblocking(fd: std::os::fd::RawFd) -> std::io::Result<()> {
    // SAFETY: fcntl(2) on a descriptor this process owns (a pipe end held by a
    // std handle that outlives the call); it only changes the descriptor's flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
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

/// Whether an environment block (`/proc/PID/environ`) holds `needle` as a whole entry.
pub fn environ_has(environ: &[u8], needle: &[u8]) -> bool {
    environ.split(|b| *b == 0).any(|entry| entry == needle)
}

/// Kills every process that carries this run's id in its environment: the
/// grandchildren that left the process group. Repeated a few times, as a process
/// may fork while it is being looked for. Linux only (`/proc`); elsewhere the
/// process group kill is the whole defence.
fn end_run(run_id: &str) {
    let needle = format!("{RUN_ID_VAR}={run_id}").into_bytes();
    let me = std::process::id();
    for _ in 0..5 {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return;
        };
        let mut found = 0;
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if pid == me {
                continue;
            }
            let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
                continue;
            };
            if environ_has(&environ, &needle)
                && let Ok(p) = i32::try_from(pid)
            {
                // SAFETY: kill(2) on a process that carries this run's id; no memory is touched.
                unsafe {
                    libc::kill(p, libc::SIGKILL);
                }
                found += 1;
            }
        }
        if found == 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
