//! Log-at-scale benchmark: CLI latency and peak RSS over 1k .. 10M events of history.
//!
//! `cargo bench --bench logscale` runs 1,000 / 100,000 / 1,000,000 events;
//! `-- --full` adds 10,000,000 (about 4 GB of log in a temp dir; set
//! `GITMESH_BENCH_DIR` to put it elsewhere). `-- --sizes 1000,50000` picks sizes;
//! `-- --segment-bytes N` seals at N bytes instead of the default; `GITMESH_BENCH_KEEP=1`
//! keeps the generated node roots.
//! History is generated through `LogWriter::append` in big batches (imported
//! events of 50 peers), then every figure is measured on the real binary:
//! wall time from spawn to exit and peak RSS from `wait4`'s rusage.

use gitmesh::dispatch::DispatchCursor;
use gitmesh::event::{Envelope, IdForm, compute_id, format_timestamp};
use gitmesh::ledger::state::{self, ExportState};
use gitmesh::log::EventLog;
use gitmesh::log::sorted::{SortedIndex, encode_with_bits};
use gitmesh::paths::NodePaths;
use serde_json::{Map, Value, json};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NODE: &str = "bench";
const PEERS: usize = 50;
const BATCH: usize = 20_000;

fn gm(root: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gitmesh"));
    c.arg("--root").arg(root);
    clean(&mut c);
    c
}

fn clean(c: &mut Command) {
    // GITMESH_LOG_SEGMENT_BYTES is kept: `--segment-bytes` sets it for the library and the CLI alike.
    for v in [
        "GITMESH_ROOT",
        "GITMESH_NODE_ID",
        "GITMESH_REMOTE",
        "RUST_LOG",
    ] {
        c.env_remove(v);
    }
    c.stdin(Stdio::null()).stdout(Stdio::null());
}

/// Wall time of one run from spawn to exit.
fn timed(mut c: Command) -> Duration {
    let t = Instant::now();
    let status = c.status().expect("run gitmesh");
    let d = t.elapsed();
    assert!(status.success(), "gitmesh failed: {status}");
    d
}

/// Peak RSS in KiB of one run, read by `/usr/bin/time -f %M` (its child starts from a
/// small `time` process, so the figure is gitmesh's own high-water mark).
fn peak_rss(root: &Path, args: &[String], out: &Path) -> u64 {
    let mut c = Command::new("/usr/bin/time");
    c.args(["-f", "%M", "-o"]).arg(out);
    c.arg(env!("CARGO_BIN_EXE_gitmesh")).arg("--root").arg(root);
    c.args(args);
    clean(&mut c);
    timed(c);
    std::fs::read_to_string(out)
        .expect("time output")
        .trim()
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("a KiB figure")
}

struct Figure {
    median: Duration,
    rss_kib: u64,
}

/// Median wall time over `runs` runs, and the highest peak RSS of 3 more runs.
fn repeat(root: &Path, runs: usize, make: impl Fn(usize) -> Vec<String>) -> Figure {
    let mut times: Vec<Duration> = (0..runs)
        .map(|i| {
            let mut c = gm(root);
            c.args(make(i));
            timed(c)
        })
        .collect();
    times.sort();
    let out = root.join("rss.txt");
    let rss_kib = (runs..runs + 3)
        .map(|i| peak_rss(root, &make(i), &out))
        .max()
        .unwrap_or(0);
    Figure {
        median: times[runs / 2],
        rss_kib,
    }
}

/// Appends `n` imported events from 50 peers; returns sample ids spread over the history.
fn generate(root: &Path, n: usize) -> Vec<String> {
    let log = EventLog::new(&NodePaths::new(root), NODE);
    let mut w = log.writer().expect("writer");
    let mut prev: Vec<String> = vec![String::new(); PEERS];
    let mut seq = vec![0u64; PEERS];
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .expect("time")
        .with_timezone(&chrono::Utc);
    let sample_every = (n / 1000).max(1);
    let mut samples = Vec::new();
    let mut i = 0;
    while i < n {
        let k = BATCH.min(n - i);
        let mut batch = Vec::with_capacity(k);
        for j in i..i + k {
            let p = j % PEERS;
            seq[p] += 1;
            let mut payload = Map::new();
            payload.insert("host".into(), Value::String(format!("node-{p}")));
            payload.insert("load".into(), json!(j % 97));
            payload.insert("n".into(), json!(j));
            let mut env = Envelope {
                event_id: String::new(),
                timestamp: format_timestamp(t0 + chrono::Duration::microseconds(j as i64 * 50)),
                topic: "monitoring".into(),
                event_type: "heartbeat.changed".into(),
                node_id: format!("peer-{p:02}"),
                source: "cli".into(),
                causation_id: String::new(),
                correlation_id: String::new(),
                seq: seq[p],
                prev: String::new(),
                payload,
                dedupe_key: None,
                handler: None,
                schema_version: None,
                sig: None,
            };
            env.event_id = compute_id(&env, IdForm::Plain).expect("id");
            env.correlation_id = env.event_id.clone();
            env.prev = std::mem::replace(&mut prev[p], env.event_id.clone());
            if j % sample_every == 0 {
                samples.push(env.event_id.clone());
            }
            batch.push(env);
        }
        w.append(&batch).expect("append");
        i += k;
    }
    samples
}

fn dir_bytes(dir: &Path, ext: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == ext))
                .map(|e| e.metadata().map_or(0, |m| m.len()))
                .sum()
        })
        .unwrap_or(0)
}

/// Library lookups: the first one of a writer (ms), then sampled ids (hits
/// across all segments, second pass) and 1,000 misses (µs each).
fn lookups(log: &EventLog, samples: &[String]) -> (Duration, f64, f64) {
    let mut w = log.writer().expect("writer");
    let t = Instant::now();
    w.lookup("evt_ffffffffffffffffffffffffffffffff")
        .expect("lookup");
    let first = t.elapsed();
    // The first pass builds the active segment's map; the second is the steady state.
    for id in samples {
        assert!(w.lookup(id).expect("lookup").is_some(), "lost {id}");
    }
    let t = Instant::now();
    for id in samples {
        assert!(w.lookup(id).expect("lookup").is_some(), "lost {id}");
    }
    let hit_us = t.elapsed().as_secs_f64() * 1e6 / samples.len() as f64;
    let misses = 1000;
    let ids: Vec<String> = (0..misses)
        .map(|i| {
            let h = blake3::hash(format!("miss{i}").as_bytes()).to_hex();
            format!("evt_{}", &h[..32])
        })
        .collect();
    let t = Instant::now();
    for id in &ids {
        assert!(w.lookup(id).expect("lookup").is_none());
    }
    let miss_us = t.elapsed().as_secs_f64() * 1e6 / misses as f64;
    (first, hit_us, miss_us)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn publish(i: usize, key: Option<&str>) -> Vec<String> {
    let mut v: Vec<String> = [
        "mesh-publish",
        "--topic",
        "scheduling",
        "--event-type",
        "task.enqueued",
        "--payload-json",
    ]
    .map(String::from)
    .to_vec();
    v.push(format!("{{\"task_id\":\"t-{i}\"}}"));
    if let Some(k) = key {
        v.push("--dedupe-key".into());
        v.push(k.into());
    }
    v
}

fn bench_size(base: &Path, n: usize) {
    let root = base.join(format!("h{n}"));
    let mut c = gm(&root);
    c.args(["mesh-init", "--node-id", NODE]);
    timed(c);
    // A keyed event at the very start of the history, for the dedupe hit.
    let mut c = gm(&root);
    c.args(publish(0, Some("old-key")));
    timed(c);
    let t = Instant::now();
    let samples = generate(&root, n);
    let gen_s = t.elapsed().as_secs_f64();
    // A caught-up node: dispatch and export are at the head (status reads the lag from there).
    let paths = NodePaths::new(&root);
    let log = EventLog::new(&paths, NODE);
    let head = log.head().expect("head");
    state::save(
        &paths.dispatch_cursor(),
        &DispatchCursor {
            offset: head.log_len,
            processed_events: head.event_count,
        },
    )
    .expect("cursor");
    state::save(&paths.export_seen(), &ExportState::default()).expect("export state");

    let single = repeat(&root, 50, |i| publish(i, None));
    let keyed_miss = repeat(&root, 50, |i| publish(i, Some(&format!("new-key-{i}"))));
    let keyed_hit = repeat(&root, 50, |i| publish(i, Some("old-key")));
    let status = repeat(&root, 11, |_| vec!["mesh-status".into()]);
    let events = repeat(&root, 11, |_| {
        ["events", "--limit", "20"].map(String::from).to_vec()
    });

    let (first, hit_us, miss_us) = lookups(&log, &samples);

    let segs = log.sealed_segments().expect("segments");
    let seg_dir = &log.layout().dir;
    let log_bytes = log.head().expect("head").log_len;
    let idx = dir_bytes(seg_dir, "idx") + std::fs::metadata(paths.log_ids()).map_or(0, |m| m.len());
    println!(
        "| {n} | {:.0} | {} | {:.1} | {:.1} | {:.2} ({:.1}) | {:.2} ({:.1}) | {:.2} ({:.1}) | {:.2} ({:.1}) | {:.2} ({:.1}) | {:.1} / {:.1} / {:.1} |",
        n as f64 / gen_s,
        segs.len(),
        log_bytes as f64 / 1e6,
        idx as f64 / 1e6,
        ms(single.median),
        mib(single.rss_kib),
        ms(keyed_miss.median),
        mib(keyed_miss.rss_kib),
        ms(keyed_hit.median),
        mib(keyed_hit.rss_kib),
        ms(status.median),
        mib(status.rss_kib),
        ms(events.median),
        mib(events.rss_kib),
        first.as_secs_f64() * 1000.0,
        hit_us,
        miss_us,
    );
    if std::env::var_os("GITMESH_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&root);
    }
}

/// Lookups in one sealed-segment index of `count` ids, with the fan-out and without it.
fn bench_fanout(base: &Path, count: u64) {
    let ids: Vec<[u8; 16]> = (0..count)
        .map(|i| {
            *blake3::hash(&i.to_le_bytes())
                .as_bytes()
                .first_chunk()
                .expect("16")
        })
        .collect();
    let records: Vec<([u8; 16], u64)> = ids
        .iter()
        .enumerate()
        .map(|(i, k)| (*k, i as u64))
        .collect();
    for bits in [16, 0] {
        let path = base.join(format!("fanout-{bits}.idx"));
        std::fs::write(&path, encode_with_bits(records.clone(), 0, count, bits)).expect("write");
        let idx = SortedIndex::open(&path, 0, count)
            .expect("open")
            .expect("valid");
        let probes = 200_000u64;
        let t = Instant::now();
        for i in 0..probes {
            let k = &ids[(i * 7919 % count) as usize];
            assert!(idx.get(k).expect("get").is_some());
        }
        let hit = t.elapsed().as_secs_f64() * 1e9 / probes as f64;
        let t = Instant::now();
        for i in 0..probes {
            let k = *blake3::hash(&(count + i).to_le_bytes())
                .as_bytes()
                .first_chunk()
                .expect("16");
            assert!(idx.get(&k).expect("get").is_none());
        }
        let miss = t.elapsed().as_secs_f64() * 1e9 / probes as f64;
        println!(
            "| {count} | {bits} | {:.0} | {:.0} | {:.2} |",
            hit,
            miss,
            std::fs::metadata(&path).map_or(0, |m| m.len()) as f64 / 1e6
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--full");
    let mut sizes = vec![1_000, 100_000, 1_000_000];
    if full {
        sizes.push(10_000_000);
    }
    if let Some(i) = args.iter().position(|a| a == "--sizes")
        && let Some(list) = args.get(i + 1)
    {
        sizes = list
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
    }
    if let Some(i) = args.iter().position(|a| a == "--segment-bytes")
        && let Some(n) = args.get(i + 1)
    {
        // SAFETY: set before any thread is started.
        unsafe { std::env::set_var(gitmesh::log::SEGMENT_BYTES_ENV, n) };
    } else {
        // SAFETY: set before any thread is started.
        unsafe { std::env::remove_var(gitmesh::log::SEGMENT_BYTES_ENV) };
    }
    if let Some(i) = args.iter().position(|a| a == "--lookups")
        && let Some(root) = args.get(i + 1)
    {
        // Only the library lookups, on a node root kept by an earlier run.
        let log = EventLog::new(&NodePaths::new(root), NODE);
        let head = log.head().expect("head");
        let samples: Vec<String> = log
            .scan(0, head.log_len)
            .expect("scan")
            .step_by((head.event_count as usize / 1000).max(1))
            .filter_map(|r| r.ok().and_then(|(_, e)| e.ok()).map(|e| e.event_id))
            .collect();
        for _ in 0..3 {
            let (first, hit, miss) = lookups(&log, &samples);
            println!(
                "lookups on {} events: first {:.2} ms, hit {hit:.1} us, miss {miss:.1} us",
                head.event_count,
                ms(first)
            );
        }
        return;
    }
    let tmp;
    let base = match std::env::var_os("GITMESH_BENCH_DIR") {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir().expect("tempdir");
            tmp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&base).expect("bench dir");
    println!(
        "log at scale: {} cores, segment size {} MiB",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        gitmesh::log::segment_bytes_from_env() >> 20
    );
    println!(
        "| events | generate (ev/s) | sealed segments | log MB | index MB | publish ms (RSS MiB) | keyed publish, new key ms (RSS) | keyed publish, repeat ms (RSS) | mesh-status ms (RSS) | events --limit 20 ms (RSS) | library lookup: first ms / hit us / miss us |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for n in sizes {
        bench_size(&base, n);
    }
    println!();
    println!("| ids in segment | fan-out bits | hit ns | miss ns | idx MB |");
    println!("|---|---|---|---|---|");
    bench_fanout(&base, 600_000);
}
