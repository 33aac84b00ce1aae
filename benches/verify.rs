//! Signature verification on import: events verified per second, and per core.
//!
//! `cargo bench --bench verify` (add `-- --quick` for a smaller run). Compares the
//! one-by-one check (the import's method before batch verification, on up to four
//! threads) with `keys::verify_many` (64-signature batches on every core), each
//! also on one thread. Figures go to BENCHMARKS.md.

use gitmesh::event::Envelope;
use gitmesh::keys::{NodeKey, parse_public, verify, verify_many, verify_threads};
use std::time::Instant;

/// `n` realistic events signed by `key` (payloads like the import benchmark's).
fn events(key: &NodeKey, n: usize) -> Vec<Envelope> {
    (0..n)
        .map(|i| {
            let mut e = Envelope {
                event_id: format!("evt_{i:032x}"),
                timestamp: "2026-01-02T03:04:05.000006Z".into(),
                topic: "monitoring".into(),
                event_type: "bench.tick".into(),
                node_id: "src".into(),
                source: "cli".into(),
                correlation_id: format!("evt_{i:032x}"),
                seq: i as u64 + 1,
                ..Default::default()
            };
            let payload = serde_json::json!({"tag": "bench", "i": i, "host": format!("bench-host-{}", i % 50)});
            if let serde_json::Value::Object(m) = payload {
                e.payload = m;
            }
            e.sig = Some(key.sign(&e).expect("sign"));
            e
        })
        .collect()
}

/// One-by-one checks spread over `threads` scoped threads, as import did before batches.
fn one_by_one(refs: &[&Envelope], public: &ed25519_dalek::VerifyingKey, threads: usize) -> usize {
    let chunk = refs.len().div_ceil(threads.max(1));
    std::thread::scope(|s| {
        let hs: Vec<_> = refs
            .chunks(chunk)
            .map(|c| s.spawn(move || c.iter().filter(|e| verify(e, public).is_ok()).count()))
            .collect();
        hs.into_iter().map(|h| h.join().expect("thread")).sum()
    })
}

fn report(what: &str, n: usize, threads: usize, secs: f64) {
    let rate = n as f64 / secs;
    println!(
        "{what:<44} {threads} thread(s): {rate:>9.0} events/s = {:>8.0} events/s per core",
        rate / threads as f64
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 5_000 } else { 40_000 };
    let key = NodeKey::from_secret([9; 32]);
    let public = parse_public("src", &key.public_hex()).expect("key");
    let evs = events(&key, n);
    let refs: Vec<&Envelope> = evs.iter().collect();
    let cores = verify_threads();
    println!("{n} signed events; {cores} cores available");
    for threads in [1, cores.min(4)] {
        let t = Instant::now();
        let ok = one_by_one(&refs, &public, threads);
        assert_eq!(ok, n);
        report("before: one by one", n, threads, t.elapsed().as_secs_f64());
    }
    for threads in [1, cores] {
        let t = Instant::now();
        let ok = verify_many(&refs, &public, threads)
            .iter()
            .filter(|r| r.is_ok())
            .count();
        assert_eq!(ok, n);
        report(
            "after: batches of 64 (verify_many)",
            n,
            threads,
            t.elapsed().as_secs_f64(),
        );
    }
}
