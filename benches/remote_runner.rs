//! The cost of bounding a remote request: `git ls-remote` against a local bare
//! repository run with `Command::output()` (unbounded, with the same parent-death hook) and with
//! `git::cli::run_bounded` (process group, reader threads, deadline), alternated.
//!
//! `cargo bench --bench remote_runner` (`-- N` for N pairs, default 200). Figures go to BENCHMARKS.md.

use gitmesh::git::cli::{Ending, Limits, run_bounded};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("run git");
    assert!(st.success(), "git {args:?}");
}

fn ls_remote(repo: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("-C")
        .arg(repo)
        .args(["ls-remote", "--heads", "origin"])
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    c
}

/// What gitmesh did before the bound: `output()` with the same `PR_SET_PDEATHSIG`
/// hook (a `pre_exec` closure, so std forks rather than using `posix_spawn`).
fn with_parent_death(mut c: Command) -> Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure calls only prctl, which is async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c
}

fn summary(name: &str, mut t: Vec<Duration>) {
    t.sort();
    let mean = t.iter().sum::<Duration>() / t.len() as u32;
    let p = |q: f64| t[((t.len() - 1) as f64 * q) as usize];
    println!(
        "{name:<10} n={} mean={:.2} ms p50={:.2} ms p90={:.2} ms",
        t.len(),
        mean.as_secs_f64() * 1e3,
        p(0.5).as_secs_f64() * 1e3,
        p(0.9).as_secs_f64() * 1e3
    );
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().expect("tempdir");
    let remote = dir.path().join("remote.git");
    let work = dir.path().join("work");
    let local = dir.path().join("local.git");
    git(
        dir.path(),
        &["init", "-q", "--bare", remote.to_str().unwrap()],
    );
    git(
        dir.path(),
        &["init", "-q", "-b", "main", work.to_str().unwrap()],
    );
    git(
        &work,
        &[
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@b",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
    );
    git(&work, &["push", "-q", remote.to_str().unwrap(), "main"]);
    git(
        dir.path(),
        &["init", "-q", "--bare", local.to_str().unwrap()],
    );
    git(
        &local,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    let limits = Limits::remote(Duration::from_secs(120));
    let (mut plain, mut bounded) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let t = Instant::now();
        let out = with_parent_death(ls_remote(&local))
            .output()
            .expect("run git");
        plain.push(t.elapsed());
        assert!(out.status.success() && !out.stdout.is_empty());
        let t = Instant::now();
        let got = run_bounded(ls_remote(&local), &limits).expect("run git");
        bounded.push(t.elapsed());
        assert!(matches!(got.ending, Ending::Exited(s) if s.success()) && !got.stdout.is_empty());
    }
    summary("output()", plain);
    summary("bounded", bounded);
}
