//! In-process cost of schema work on the publish path: `cargo bench --bench schema_check`.
//!
//! Prints medians of: building the built-in registry, the first check in a process
//! (it builds the draft 2020-12 meta-schema validator once), compiling one schema after
//! that, validating a payload with a compiled schema, and upcasting through two versions.

use gitmesh::schema::{Registry, SchemaKey, SchemaSource};
use serde_json::{Map, Value, json};
use std::borrow::Cow;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn main() {
    let payload =
        obj(json!({"task_id": "t-1", "routing_options": [{"score": 1, "healthy": true}]}));

    let t = Instant::now();
    let reg = Registry::builtin();
    reg.check("scheduling", "task.enqueued", None, &payload)
        .unwrap();
    println!(
        "first check in a process (meta-schema + compile + validate): {:?}",
        t.elapsed()
    );

    let build: Vec<_> = (0..200)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(Registry::builtin());
            t.elapsed()
        })
        .collect();
    println!(
        "build built-in registry:            median {:?}",
        median(build)
    );

    let compile: Vec<_> = (0..200)
        .map(|_| {
            let r = Registry::builtin();
            let t = Instant::now();
            r.check("scheduling", "task.enqueued", None, &payload)
                .unwrap();
            t.elapsed()
        })
        .collect();
    println!(
        "compile one schema + validate:      median {:?}",
        median(compile)
    );

    let hot: Vec<_> = (0..10_000)
        .map(|_| {
            let t = Instant::now();
            reg.check("scheduling", "task.enqueued", None, &payload)
                .unwrap();
            t.elapsed()
        })
        .collect();
    println!(
        "validate with a compiled schema:    median {:?}",
        median(hot)
    );

    let mut reg = Registry::builtin();
    for (v, block) in [
        (
            2,
            json!({"from": 1, "steps": [{"rename": {"from": "host", "to": "hostname"}}, {"move": {"from": "cpu", "to": "metrics.cpu"}}]}),
        ),
        (
            3,
            json!({"from": 2, "steps": [{"default": {"path": "region", "value": "eu"}}]}),
        ),
    ] {
        reg.add(
            SchemaKey {
                topic: "monitoring".into(),
                event_type: "host.seen".into(),
                version: v,
            },
            SchemaSource::Local,
            format!("bench v{v}"),
            Cow::Owned(json!({"x-gitmesh-upcast": block}).to_string()),
        );
    }
    let env = gitmesh::Envelope {
        event_id: "evt_00000000000000000000000000000000".into(),
        timestamp: "2026-01-01T00:00:00.000000Z".into(),
        topic: "monitoring".into(),
        event_type: "host.seen".into(),
        node_id: "n1".into(),
        source: "cli".into(),
        causation_id: String::new(),
        correlation_id: String::new(),
        seq: 1,
        prev: String::new(),
        payload: obj(json!({"host": "a", "cpu": 0.5, "state": "up"})),
        dedupe_key: None,
        handler: None,
        schema_version: None,
        sig: None,
    };
    let up: Vec<_> = (0..10_000)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(reg.upcast(&env));
            t.elapsed()
        })
        .collect();
    println!(
        "upcast v1 -> v3 (3 steps):          median {:?}",
        median(up)
    );
}
