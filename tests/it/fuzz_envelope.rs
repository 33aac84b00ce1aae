//! A deterministic, seeded mutation fuzzer for the importer's per-line and per-file checks
//! (envelope parsing, duplicate keys, validation, id recomputation, node and signature
//! checks). cargo-fuzz needs a nightly toolchain; this runs on stable in `cargo test`.
//!
//! `GITMESH_FUZZ_ITERS` overrides the number of mutated lines (default 20,000) and
//! `GITMESH_FUZZ_SEED` the seed. Asserts: nothing panics; every input is either
//! accepted, and then re-checks as a valid envelope of the right node signed by its
//! key, or rejected with a reason and a message.

use gitmesh::Envelope;
use gitmesh::event::{PayloadLimits, compute_id, validate_envelope};
use gitmesh::keys::{self, NodeKey};
use gitmesh::ledger::quarantine::Reason;
use gitmesh::ledger::verify::{self, ImportLimits, KeyCheck, LineResult};
use gitmesh::paths::NodePaths;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// splitmix64: small, fast, and the same on every platform and crate version.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seed_events(key: &NodeKey) -> Vec<String> {
    let payloads = [
        json!({}),
        json!({"task_id": "t-1", "priority": 2}),
        json!({"routing_options": [{"id": "a", "score": 0.5, "healthy": true}], "n": -1.5e-7}),
        json!({"nested": {"a": [1, 2, {"b": null}]}, "text": "caf\u{e9} \u{1F600} \"q\" \\"}),
    ];
    let mut out = Vec::new();
    let mut prev = String::new();
    for (i, p) in payloads.iter().enumerate() {
        let Value::Object(payload) = p.clone() else {
            unreachable!()
        };
        let mut e = Envelope {
            event_id: String::new(),
            timestamp: format!("2026-11-23T10:00:0{i}.000000Z"),
            topic: "scheduling".into(),
            event_type: "task.enqueued".into(),
            node_id: "p".into(),
            source: "cli".into(),
            causation_id: String::new(),
            correlation_id: String::new(),
            seq: i as u64 + 1,
            prev: prev.clone(),
            payload,
            dedupe_key: (i == 2).then(|| "k-2".to_string()),
            handler: None,
            schema_version: None,
            sig: None,
        };
        e.event_id = compute_id(&e, e.id_form()).unwrap();
        e.correlation_id = e.event_id.clone();
        e.sig = Some(key.sign(&e).unwrap());
        prev = e.event_id.clone();
        out.push(e.to_json_line());
    }
    out
}

const INTERESTING: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b",",
    b":",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"\0",
    b"\xff",
    b"\xc3",
    b"null",
    b"true",
    b"-0",
    b"1e999",
    b"18446744073709551616",
    b"-1",
    b"0.5",
    b"\"seq\":1,",
    b"\"sig\":\"\",",
    b"\"node_id\":\"q\",",
    b"\"topic\":\"x\",",
    b"\n",
    b"\r",
    b" ",
    b"\xe2\x80\xae",
];

fn mutate(rng: &mut Rng, seeds: &[String], input: &mut Vec<u8>) {
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = input.len();
        match rng.below(10) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next() as u8;
            }
            2 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(16)).min(len);
                input.drain(a..b);
            }
            3 => {
                let i = rng.below(len + 1);
                let tok = INTERESTING[rng.below(INTERESTING.len())];
                input.splice(i..i, tok.iter().copied());
            }
            4 if len > 0 => input.truncate(rng.below(len)),
            5 => {
                // Splice a piece of another seed in.
                let other = seeds[rng.below(seeds.len())].as_bytes();
                let a = rng.below(other.len());
                let b = (a + rng.below(64)).min(other.len());
                let i = rng.below(len + 1);
                input.splice(i..i, other[a..b].iter().copied());
            }
            6 => {
                // Structured: change one field of the JSON object to another value.
                if let Ok(Value::Object(mut m)) = serde_json::from_slice::<Value>(input) {
                    let keys: Vec<String> = m.keys().cloned().collect();
                    let k = keys[rng.below(keys.len())].clone();
                    let v = match rng.below(6) {
                        0 => Value::Null,
                        1 => json!(rng.next()),
                        2 => json!("evt_00000000000000000000000000000000"),
                        3 => json!([1, 2]),
                        4 => json!({"password": "x"}),
                        _ => json!(-1),
                    };
                    m.insert(k, v);
                    *input = serde_json::to_vec(&Value::Object(m)).unwrap();
                }
            }
            7 => {
                // Structured: duplicate a key with another value.
                if let Some(pos) = input.iter().position(|b| *b == b'{') {
                    let dup = b"\"topic\":\"routing\",";
                    input.splice(pos + 1..pos + 1, dup.iter().copied());
                }
            }
            8 => {
                // Deep nesting around the payload.
                let depth = 1 + rng.below(200);
                if let Ok(Value::Object(mut m)) = serde_json::from_slice::<Value>(input) {
                    let mut v = json!(1);
                    for _ in 0..depth {
                        let mut o = Map::new();
                        o.insert("d".into(), v);
                        v = Value::Object(o);
                    }
                    m.insert("payload".into(), v);
                    *input = serde_json::to_vec(&Value::Object(m)).unwrap();
                }
            }
            _ => {
                // Remove a field.
                if let Ok(Value::Object(mut m)) = serde_json::from_slice::<Value>(input) {
                    let keys: Vec<String> = m.keys().cloned().collect();
                    m.remove(&keys[rng.below(keys.len())]);
                    *input = serde_json::to_vec(&Value::Object(m)).unwrap();
                }
            }
        }
    }
}

/// The importer's checks of one line of node `p`'s outbox, signature included.
fn check_line(
    line: &[u8],
    limits: &ImportLimits,
    key: &ed25519_dalek::VerifyingKey,
) -> Result<Envelope, (Reason, String)> {
    if std::str::from_utf8(line).is_err() {
        return Err((Reason::NotUtf8, "invalid UTF-8".into()));
    }
    if line.len() > limits.max_line_bytes {
        return Err((Reason::LineTooLong, "too long".into()));
    }
    let env = verify::check_event("p", line, limits)?;
    verify::check_signature(&env, KeyCheck::Pinned(key))?;
    Ok(env)
}

fn assert_accepted_is_valid(env: &Envelope, key: &ed25519_dalek::VerifyingKey) {
    assert_eq!(env.node_id, "p");
    validate_envelope(env, &PayloadLimits::default()).unwrap();
    assert_eq!(compute_id(env, env.id_form()).unwrap(), env.event_id);
    keys::verify(env, key).unwrap();
}

#[test]
fn mutated_envelopes_and_batches_never_panic_and_are_accepted_only_when_valid() {
    let iters: usize = std::env::var("GITMESH_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::var("GITMESH_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x0067_6974_6d65_7368);
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = NodeKey::load_or_create(&NodePaths::new(dir.path())).unwrap();
    let public = keys::parse_public("p", &key.public_hex()).unwrap();
    let seeds = seed_events(&key);
    let limits = ImportLimits::new(PayloadLimits::default());
    let mut rng = Rng(seed);
    let mut outcomes: BTreeMap<&'static str, u64> = BTreeMap::new();
    for _ in 0..iters {
        let mut input = seeds[rng.below(seeds.len())].as_bytes().to_vec();
        mutate(&mut rng, &seeds, &mut input);
        match check_line(&input, &limits, &public) {
            Ok(env) => {
                assert_accepted_is_valid(&env, &public);
                *outcomes.entry("accepted").or_default() += 1;
            }
            Err((reason, detail)) => {
                assert!(!detail.is_empty(), "{reason:?} without a message");
                *outcomes.entry(reason.code()).or_default() += 1;
            }
        }
    }
    // Whole batch files: several lines, mutated as a file.
    let batches = iters / 10;
    let mut lines_seen = 0u64;
    for _ in 0..batches {
        let mut file: Vec<u8> = Vec::new();
        for s in &seeds[..1 + rng.below(seeds.len())] {
            file.extend_from_slice(s.as_bytes());
            file.push(b'\n');
        }
        mutate(&mut rng, &seeds, &mut file);
        if std::str::from_utf8(&file).is_err() {
            *outcomes.entry("batch_not_utf8").or_default() += 1;
            continue;
        }
        for r in verify::check_batch("p", &file, &limits) {
            lines_seen += 1;
            match r {
                LineResult::Event(env) => {
                    validate_envelope(&env, &PayloadLimits::default()).unwrap();
                    assert_eq!(compute_id(&env, env.id_form()).unwrap(), env.event_id);
                    *outcomes.entry("batch_line_valid").or_default() += 1;
                }
                LineResult::Rejected { line, detail, .. } => {
                    assert!(line >= 1 && !detail.is_empty());
                    *outcomes.entry("batch_line_rejected").or_default() += 1;
                }
            }
        }
    }
    eprintln!(
        "fuzz: seed {seed:#x}, {iters} lines + {batches} batch files ({lines_seen} lines): {outcomes:?}"
    );
    // The mutators reach both sides and most reasons.
    assert!(outcomes.get("accepted").copied().unwrap_or(0) > 0);
    for reason in [
        "invalid_json",
        "invalid_event",
        "id_mismatch",
        "duplicate_key",
        "bad_signature",
        "not_utf8",
        "wrong_node",
    ] {
        assert!(
            outcomes.contains_key(reason),
            "{reason} never produced: {outcomes:?}"
        );
    }
}
