//! `mesh-publish --stdin` in bounded memory: still all or nothing.

use crate::common::{TestEnv, json_ok, publish_batch, publish_stdin};

/// Events in a node's log (head count).
fn event_count(root: &std::path::Path) -> u64 {
    json_ok(root, &["mesh-status"])["event_count"]
        .as_u64()
        .unwrap_or_else(|| panic!("no event_count in mesh-status"))
}

#[test]
fn a_bad_line_at_the_end_of_a_large_batch_writes_nothing() {
    let env = TestEnv::new();
    let n1 = env.node("n1");
    publish_batch(&n1, 3, "before");
    let before = event_count(&n1);
    let mut input = String::new();
    for i in 0..30_000 {
        input.push_str(&format!(
            "{{\"topic\":\"monitoring\",\"event_type\":\"test.tick\",\"payload\":{{\"i\":{i}}}}}\n"
        ));
    }
    input.push_str("{\"topic\":\"Bad Topic\",\"event_type\":\"x\"}\n");
    let (code, v) = publish_stdin(&n1, input.as_bytes());
    assert_ne!(code, Some(0), "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("line 30001:"), "{v}");
    assert_eq!(event_count(&n1), before);
    // The node goes on: the same batch without the bad line is published whole.
    let good = input.rsplit_once("{\"topic\":\"Bad").unwrap().0;
    let (_, v) = publish_stdin(&n1, good.as_bytes());
    assert_eq!(v["published"], 30_000, "{v}");
    assert_eq!(event_count(&n1), before + 30_000);
    // Own seqs continue without a gap over the rolled-back attempt.
    let last = json_ok(&n1, &["events", "--limit", "1"])["events"][0].clone();
    assert_eq!(last["seq"], before + 30_000);
}

#[test]
fn keyed_duplicates_in_a_streamed_batch_are_counted_once() {
    let env = TestEnv::new();
    let n1 = env.node("n1");
    let line = "{\"topic\":\"monitoring\",\"event_type\":\"test.tick\",\"dedupe_key\":\"k1\"}\n";
    let (_, v) = publish_stdin(&n1, line.repeat(3).as_bytes());
    assert_eq!(v["published"], 1, "{v}");
    assert_eq!(v["duplicates"], 2, "{v}");
    let (_, v) = publish_stdin(&n1, line.as_bytes());
    assert_eq!(v["published"], 0, "{v}");
    assert_eq!(v["duplicates"], 1, "{v}");
}
