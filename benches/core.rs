//! Node-core benchmarks: batch publish, single publish latency, log scan.
//!
//! `cargo bench --bench core` (add `-- --quick` for a smaller run). Figures go to BENCHMARKS.md.

use gitmesh::log::EventLog;
use gitmesh::paths::NodePaths;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// CPU seconds (user + system) used so far by this process and by its reaped children.
fn cpu() -> (f64, f64) {
    fn get(who: i32) -> f64 {
        // SAFETY: getrusage fills the struct we pass; both arguments are valid.
        let mut r: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut r) };
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        t(r.ru_utime) + t(r.ru_stime)
    }
    (get(libc::RUSAGE_SELF), get(libc::RUSAGE_CHILDREN))
}

fn gm(root: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gitmesh"));
    c.arg("--root").arg(root);
    c.env_remove("GITMESH_ROOT")
        .env_remove("GITMESH_NODE_ID")
        .env_remove("GITMESH_REMOTE");
    c
}

fn ok(mut c: Command) {
    let out = c.stdout(Stdio::null()).output().expect("run gitmesh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn batch_input(n: usize, offset: usize) -> String {
    let mut s = String::with_capacity(n * 110);
    for i in 0..n {
        s.push_str(&format!(
            "{{\"topic\":\"load\",\"event_type\":\"sample.recorded\",\"payload\":{{\"seq\":{},\"host\":\"node-{}\",\"load\":0.{}}}}}\n",
            offset + i,
            i % 50,
            i % 97
        ));
    }
    s
}

fn publish_stdin(root: &Path, input: &str) -> Duration {
    let t = Instant::now();
    let mut c = gm(root);
    c.args(["mesh-publish", "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let mut child = c.spawn().expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    assert!(child.wait().expect("wait").success());
    t.elapsed()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("bench");
    let mut c = gm(&root);
    c.args(["mesh-init", "--node-id", "bench"]);
    ok(c);

    // 1. Batch publish through the CLI, 100,000 events in one --stdin batch.
    let n = if quick { 20_000 } else { 100_000 };
    let input = batch_input(n, 0);
    let c0 = cpu().1;
    let d = publish_stdin(&root, &input);
    let c = cpu().1 - c0;
    println!(
        "batch publish (--stdin): {n} events in {:.3} s wall = {:.0} events/s; {:.3} s CPU = {:.0} events per CPU-second",
        d.as_secs_f64(),
        n as f64 / d.as_secs_f64(),
        c,
        n as f64 / c
    );

    // 2. Single-event CLI publish latency, end to end (process start to exit, fsync included).
    let runs = if quick { 50 } else { 200 };
    let mut lat = Vec::with_capacity(runs);
    let c0 = cpu().1;
    for i in 0..runs {
        let payload = format!("{{\"task_id\":\"t-{i}\"}}");
        let t = Instant::now();
        let mut c = gm(&root);
        c.args([
            "mesh-publish",
            "--topic",
            "scheduling",
            "--event-type",
            "task.enqueued",
            "--payload-json",
            &payload,
        ]);
        ok(c);
        lat.push(t.elapsed());
    }
    let cpu_each = (cpu().1 - c0) / runs as f64 * 1000.0;
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "single publish latency over {runs} runs (log of {n} events): median {:.2} ms, p90 {:.2} ms, max {:.2} ms wall; {cpu_each:.2} ms CPU each",
        ms(lat[runs / 2]),
        ms(lat[runs * 9 / 10]),
        ms(lat[runs - 1])
    );

    // 3. Scan of a 1,000,000-event log (parse every line).
    let total = if quick { 200_000 } else { 1_000_000 };
    let mut have = n + runs;
    while have < total {
        let k = (total - have).min(100_000);
        publish_stdin(&root, &batch_input(k, have));
        have += k;
    }
    let paths = NodePaths::new(&root);
    let log = EventLog::new(&paths, "bench");
    let head = log.head().expect("head");
    let t = Instant::now();
    let c0 = cpu().0;
    let mut count = 0u64;
    for item in log.scan(0, head.log_len).expect("scan") {
        let (_, env) = item.expect("read");
        if env.is_ok() {
            count += 1;
        }
    }
    let d = t.elapsed();
    let c = cpu().0 - c0;
    println!(
        "scan: {count} events ({} MB) in {:.3} s wall = {:.0} events/s; {c:.3} s CPU = {:.0} events per CPU-second",
        head.log_len / 1_000_000,
        d.as_secs_f64(),
        count as f64 / d.as_secs_f64(),
        count as f64 / c
    );

    // 4. A dispatch pass over the whole log (no handler matches these events), so the
    //    status below measures a node that keeps up rather than the cost of counting lag.
    let t = Instant::now();
    let mut c = gm(&root);
    c.args(["mesh-dispatch"]);
    ok(c);
    println!(
        "`gitmesh mesh-dispatch` over {count} events: {:.2} s",
        t.elapsed().as_secs_f64()
    );

    // 5. Read-side commands on the big log.
    for args in [&["mesh-status"][..], &["events", "--limit", "20"][..]] {
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            let mut c = gm(&root);
            c.args(args);
            ok(c);
            best = best.min(t.elapsed());
        }
        println!(
            "`gitmesh {}` on {count} events: best of 5 {:.2} ms",
            args.join(" "),
            ms(best)
        );
    }
}
