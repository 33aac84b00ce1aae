use super::*;

fn at(s: i64) -> chrono::DateTime<chrono::Utc> {
    crate::event::parse_timestamp("2026-11-23T12:00:00Z").unwrap() + chrono::Duration::seconds(s)
}

#[test]
fn breaker_opens_after_k_failures_and_half_opens_after_cooldown() {
    let mut b = Breaker::default();
    let cd = Duration::from_secs(60);
    b.failure(3, cd, at(0));
    b.failure(3, cd, at(1));
    assert_eq!(b.gate(at(2)), Gate::Closed);
    b.failure(3, cd, at(2));
    assert_eq!(b.gate(at(3)), Gate::Open);
    assert_eq!(b.gate(at(62)), Gate::HalfOpen);
    // A failed trial re-opens at once.
    b.failure(3, cd, at(62));
    assert_eq!(b.gate(at(63)), Gate::Open);
    assert_eq!(b.gate(at(123)), Gate::HalfOpen);
    b.success();
    assert_eq!(b.gate(at(124)), Gate::Closed);
    assert_eq!(b.consecutive_failures, 0);
}

#[test]
fn backoff_doubles_and_is_capped() {
    let base = Duration::from_millis(10);
    assert_eq!(backoff(base, 0), Duration::from_millis(10));
    assert_eq!(backoff(base, 3), Duration::from_millis(80));
    assert_eq!(backoff(base, 40), Duration::from_secs(60));
}

#[test]
fn output_lines_become_follow_ups() {
    let limits = crate::event::PayloadLimits::default();
    let out = parse_output(
        "notify",
        b"{\"topic\":\"ops\",\"event_type\":\"route.noted\",\"payload\":{\"n\":1}}\n\n{\"topic\":\"ops\",\"event_type\":\"x\"}\n",
        &limits,
        2,
    )
    .unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].handler, "handler:notify");
    assert_eq!(out[0].payload["n"], 1);
    let rejected: [(&[u8], &str); 3] = [
        (
            b"{\"topic\":\"Bad Topic\",\"event_type\":\"x\"}\n",
            "line 1",
        ),
        (b"ok\nnot json\n", "line 1"),
        (
            b"{\"topic\":\"a\",\"event_type\":\"b\",\"extra\":1}",
            "extra",
        ),
    ];
    for (output, why) in rejected {
        let e = parse_output("h", output, &limits, 10).unwrap_err();
        assert!(e.to_string().contains(why), "{e}");
    }
}

#[test]
fn follow_ups_past_the_cap_refuse_the_whole_output() {
    let limits = crate::event::PayloadLimits::default();
    let line = "{\"topic\":\"ops\",\"event_type\":\"x\"}\n";
    assert_eq!(
        parse_output("h", line.repeat(3).as_bytes(), &limits, 3)
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        parse_output("h", line.repeat(4).as_bytes(), &limits, 3),
        Err(OutputError::TooMany(3))
    );
    assert_eq!(
        DeadLetterReason::TooManyFollowups.to_string(),
        "too_many_followups"
    );
    assert_eq!(
        DeadLetterReason::OutputTooLarge.to_string(),
        "output_too_large"
    );
}

#[test]
fn dead_letter_lines_keep_their_strings() {
    let dead = r#"{"kind":"dead_letter","timestamp":"2026-11-23T12:00:00.000000Z","handler":"h","event_id":"evt_1","reason":"circuit_open","error":"open","attempts":0}"#;
    let d: DeadLetter = serde_json::from_str(dead).unwrap();
    assert_eq!(d.kind, DeadLetterKind::DeadLetter);
    assert_eq!(d.reason, DeadLetterReason::CircuitOpen);
    assert_eq!(serde_json::to_string(&d).unwrap(), dead);
    let resolved = r#"{"kind":"resolved","timestamp":"2026-11-23T12:00:01.000000Z","handler":"h","event_id":"evt_1","attempts":0}"#;
    let r: DeadLetter = serde_json::from_str(resolved).unwrap();
    assert_eq!(r.kind, DeadLetterKind::Resolved);
    assert!(r.reason.is_unset());
    assert_eq!(serde_json::to_string(&r).unwrap(), resolved);
    assert_eq!(DeadLetterReason::Failed.to_string(), "failed");
    assert_eq!(
        serde_json::to_value(DeadLetterReason::Failed).unwrap(),
        "failed"
    );
}

#[test]
fn the_breaker_admits_a_probe_when_half_open_and_nothing_when_open() {
    assert_eq!(admit(Gate::Closed, false, 2), Admission::Attempts(3));
    assert_eq!(admit(Gate::HalfOpen, false, 2), Admission::Attempts(1));
    assert_eq!(admit(Gate::Open, false, 2), Admission::Skip);
    // The operator's retry overrides an open breaker with the full retries.
    assert_eq!(admit(Gate::Open, true, 2), Admission::Attempts(3));
    assert_eq!(admit(Gate::HalfOpen, true, 0), Admission::Attempts(1));
}
