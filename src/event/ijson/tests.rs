use super::*;
use serde_json::json;

fn num(text: &str) -> Number {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Number(n)) => n,
        other => panic!("{text}: {other:?}"),
    }
}

#[test]
fn safe_integers_and_canonical_fractions_pass() {
    for ok in [
        "0",
        "-1",
        "9007199254740991",
        "-9007199254740991",
        "1.5",
        "1e-7",
        "0.1",
    ] {
        assert_eq!(number_problem(&num(ok)), None, "{ok}");
    }
}

#[test]
fn integers_beyond_two_to_the_53_are_refused() {
    for bad in [
        "9007199254740992",
        "9007199254740993",
        "-9007199254740993",
        "18446744073709551615",
    ] {
        let why = number_problem(&num(bad)).unwrap_or_default();
        assert!(why.contains("2^53"), "{bad}: {why}");
    }
    let why = number_problem(&num("1e20")).unwrap_or_default();
    assert!(why.contains("2^53"), "{why}");
}

#[test]
fn non_canonical_spellings_are_refused_with_the_canonical_one() {
    let why = number_problem(&num("2.0")).unwrap_or_default();
    assert!(why.contains("writes it 2"), "{why}");
    assert!(number_problem(&num("1e21")).is_some());
    assert!(number_problem(&num("-0.0")).is_some());
}

#[test]
fn stored_form_sorts_keys_and_turns_integral_fractions_into_integers() {
    let Value::Object(m) = json!({"b": {"z": 2.0, "a": -0.0}, "a": [1.0, 1.5, {"y": 1, "x": 3}]})
    else {
        unreachable!()
    };
    let got = serde_json::to_string(&canonical_payload(m)).unwrap_or_default();
    assert_eq!(got, r#"{"a":[1,1.5,{"x":3,"y":1}],"b":{"a":0,"z":2}}"#);
}

#[test]
fn stored_form_leaves_unsafe_numbers_for_the_check_to_refuse() {
    let Value::Object(m) = json!({"big": 1e20, "huge": 9007199254740993u64}) else {
        unreachable!()
    };
    let out = canonical_payload(m);
    for v in out.values() {
        let Value::Number(n) = v else { unreachable!() };
        assert!(number_problem(n).is_some(), "{n}");
    }
}

#[test]
fn stored_form_bytes_equal_the_canonical_bytes() {
    let Value::Object(m) = json!({"é": 1, "e": 2.0, "z": [0.5, {"b": null, "a": true}]}) else {
        unreachable!()
    };
    let stored = serde_json::to_vec(&canonical_payload(m.clone())).unwrap_or_default();
    let canon = crate::event::canonical_json(&Value::Object(m)).unwrap_or_default();
    assert_eq!(stored, canon);
}
