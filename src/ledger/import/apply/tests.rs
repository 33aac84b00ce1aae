use super::*;
use crate::log::testutil::env;
use crate::schema::SchemaError;
use std::convert::Infallible;

/// Events 1..=n of `node`, each naming the one before as `prev`.
fn chain(node: &str, n: u64) -> Vec<Envelope> {
    let mut out: Vec<Envelope> = Vec::new();
    for seq in 1..=n {
        let prev = out.last().map_or(String::new(), |e| e.event_id.clone());
        out.push(env(node, seq, &prev, seq));
    }
    out
}

fn items(events: &[Envelope]) -> Vec<Item<'static>> {
    events
        .iter()
        .map(|e| (None, &b""[..], Ok(e.clone())))
        .collect()
}

fn bad_line(line: usize, bytes: &'static [u8]) -> Item<'static> {
    (
        Some(line),
        bytes,
        Err((Reason::InvalidJson, "not JSON".into())),
    )
}

fn ok_sigs(items: &[Item<'_>]) -> Vec<SigVerdict> {
    vec![Ok(()); items.len()]
}

fn head_at(e: &Envelope) -> ChainHead {
    ChainHead {
        seq: e.seq,
        event_id: e.event_id.clone(),
    }
}

fn nothing_held(_: &str) -> bool {
    false
}

fn accept_all(_: &Envelope) -> Result<ImportVerdict, Infallible> {
    Ok(ImportVerdict::Accept)
}

fn context(head: ChainHead, held: &dyn Fn(&str) -> bool, first_sight: bool) -> Context<'_> {
    Context {
        head,
        held_already: held,
        first_sight,
        now: crate::event::parse_timestamp("2026-11-24T00:00:00Z").unwrap(),
        tolerance: chrono::Duration::seconds(60),
    }
}

#[test]
fn an_event_from_the_future_holds_the_file_from_it_on() {
    let evs = chain("p", 3);
    let mut cx = context(ChainHead::default(), &nothing_held, true);
    // Event 1 is stamped at .000001, event 2 at .000002: a clock between them with no
    // tolerance sees event 2 in its future.
    cx.now = crate::event::parse_timestamp(&evs[0].timestamp).unwrap();
    cx.tolerance = chrono::Duration::zero();
    let d = decide_plain(&cx, items(&evs));
    assert_eq!(words(&d), ["advance 1", "append 1"]);
    assert_eq!(d.end, End::Future { first_seq: 2 });
    // Once the clock reaches it, the same file applies whole.
    cx.now = crate::event::parse_timestamp(&evs[2].timestamp).unwrap();
    let d = decide_plain(&cx, items(&evs));
    assert_eq!(d.end, End::Done);
}

/// Decides `items` with valid signatures and no schema objections.
fn decide_plain<'a>(cx: &Context<'_>, items: Vec<Item<'a>>) -> Decision<'a> {
    let sigs = ok_sigs(&items);
    decide(cx, "p", items, sigs, accept_all).unwrap()
}

/// The actions as short words, to compare whole decisions at a glance.
fn words(d: &Decision<'_>) -> Vec<String> {
    d.actions
        .iter()
        .map(|a| match a {
            Action::Reject { line, reason, .. } => format!("reject {line:?} {}", reason.code()),
            Action::Advance(h) => format!("advance {}", h.seq),
            Action::Append(e) => format!("append {}", e.seq),
            Action::Flag(f) => format!("flag {}", f.event_id),
            Action::Duplicate => "duplicate".into(),
        })
        .collect()
}

#[test]
fn events_continuing_the_chain_are_appended_in_order_and_bad_lines_quarantined() {
    let evs = chain("p", 3);
    let mut its = items(&evs);
    its.insert(1, bad_line(2, b"{oops"));
    let d = decide_plain(&context(ChainHead::default(), &nothing_held, true), its);
    assert_eq!(
        words(&d),
        [
            "advance 1",
            "append 1",
            "reject Some(2) invalid_json",
            "advance 2",
            "append 2",
            "advance 3",
            "append 3"
        ]
    );
    assert_eq!(d.end, End::Done);
}

#[test]
fn events_the_log_holds_move_the_chain_on_and_count_as_duplicates_once() {
    let evs = chain("p", 3);
    let in_log = |id: &str| id == evs[0].event_id || id == evs[1].event_id;
    let cx = context(head_at(&evs[0]), &in_log, true);
    let d = decide_plain(&cx, items(&evs));
    // seq 1 is behind the head and held: a duplicate; seq 2 is next and held: known.
    assert_eq!(
        words(&d),
        [
            "duplicate",
            "advance 2",
            "duplicate",
            "advance 3",
            "append 3"
        ]
    );
    // Read again (a held file): nothing is counted or reported twice.
    let cx = context(head_at(&evs[0]), &in_log, false);
    let d = decide_plain(&cx, items(&evs));
    assert_eq!(words(&d), ["advance 2", "advance 3", "append 3"]);
}

#[test]
fn a_repeated_line_in_one_file_is_a_duplicate_not_a_fork() {
    let evs = chain("p", 1);
    let twice = items(&[evs[0].clone(), evs[0].clone()]);
    let d = decide_plain(&context(ChainHead::default(), &nothing_held, true), twice);
    assert_eq!(words(&d), ["advance 1", "append 1", "duplicate"]);
    assert_eq!(d.end, End::Done);
}

#[test]
fn a_missing_seq_holds_the_file_with_every_later_seq_and_reports_later_bad_lines() {
    let evs = chain("p", 4);
    let with_bad_line = || {
        let mut its = items(&evs[2..]);
        its.push(bad_line(9, b"x"));
        its
    };
    let d = decide_plain(
        &context(ChainHead::default(), &nothing_held, true),
        with_bad_line(),
    );
    assert_eq!(words(&d), ["reject Some(9) invalid_json"]);
    assert_eq!(
        d.end,
        End::Wait {
            first_seq: 3,
            seqs: vec![3, 4]
        }
    );
    // On a retry the bad line was reported already.
    let d = decide_plain(
        &context(ChainHead::default(), &nothing_held, false),
        with_bad_line(),
    );
    assert!(d.actions.is_empty(), "{:?}", words(&d));
}

#[test]
fn another_event_at_a_taken_seq_is_a_fork_and_stops_the_file() {
    let evs = chain("p", 2);
    let rival = env("p", 2, &evs[0].event_id, 99);
    let its = items(&[rival, evs[1].clone()]);
    let d = decide_plain(&context(head_at(&evs[1]), &nothing_held, true), its);
    assert!(d.actions.is_empty(), "{:?}", words(&d));
    match d.end {
        End::Fork { seq, detail } => {
            assert_eq!(seq, 2);
            assert!(
                detail.starts_with("node p: seq 2 is already taken"),
                "{detail}"
            );
        }
        other => panic!("expected a fork, got {other:?}"),
    }
}

#[test]
fn a_bad_signature_quarantines_the_event_as_a_line_and_leaves_the_chain() {
    let evs = chain("p", 2);
    let sigs = vec![Err((Reason::BadSignature, "forged".into())), Ok(())];
    let cx = context(ChainHead::default(), &nothing_held, true);
    let d = decide(&cx, "p", items(&evs), sigs, accept_all).unwrap();
    // seq 2 cannot follow a chain that never took seq 1.
    assert_eq!(words(&d), ["reject None bad_signature"]);
    assert_eq!(
        d.end,
        End::Wait {
            first_seq: 2,
            seqs: vec![2]
        }
    );
    match &d.actions[0] {
        Action::Reject { bytes, .. } => assert_eq!(&bytes[..], evs[0].to_json_line().as_bytes()),
        other => panic!("expected a reject, got {other:?}"),
    }
}

#[test]
fn schema_verdicts_decide_append_flag_or_quarantine_but_the_chain_moves_on() {
    let evs = chain("p", 3);
    let bad = || SchemaError::BadSchema {
        location: "t/e/v1.json".into(),
        reason: "no".into(),
    };
    let mut n = 0;
    let judge = |_: &Envelope| {
        n += 1;
        Ok::<_, Infallible>(match n {
            1 => ImportVerdict::Accept,
            2 => ImportVerdict::Flag(bad()),
            _ => ImportVerdict::Quarantine(bad()),
        })
    };
    let cx = context(ChainHead::default(), &nothing_held, true);
    let its = items(&evs);
    let sigs = ok_sigs(&its);
    let d = decide(&cx, "p", its, sigs, judge).unwrap();
    assert_eq!(
        words(&d),
        [
            "advance 1".to_string(),
            "append 1".into(),
            "advance 2".into(),
            format!("flag {}", evs[1].event_id),
            "append 2".into(),
            "advance 3".into(),
            "reject None schema_violation".into(),
        ]
    );
}

#[test]
fn a_judge_error_is_returned() {
    let evs = chain("p", 1);
    let cx = context(ChainHead::default(), &nothing_held, true);
    let its = items(&evs);
    let sigs = ok_sigs(&its);
    let r = decide(&cx, "p", its, sigs, |_| Err("schemas unreadable"));
    assert_eq!(r.unwrap_err(), "schemas unreadable");
}
