use super::*;
use serde_json::json;

fn same(v: Value) {
    let mut out = Vec::new();
    write(&v, &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        String::from_utf8(crate::event::canonical_json(&v).unwrap()).unwrap(),
        "{v}"
    );
}

#[test]
fn matches_the_reference_canonicalizer() {
    same(json!(null));
    same(json!({"b": 1, "a": [true, false, null], "c": {"z": "x", "y": 2}}));
    same(
        json!({"n": [0, -1, 1.0, 0.5, -0.0, 1e21, 1e-7, 123456789012345678u64, -9007199254740993i64, 9007199254740992u64, 1.2345678901234567, 1e300]}),
    );
    same(json!({"s": "quote \" backslash \\ nl \n tab \t bell \u{7} del \u{7f} é 😀 \u{2028}"}));
    same(json!({"\u{e9}": 1, "z": 2, "\u{1f600}": 3, "\u{ff61}": 4, "A": 5, "a": 6, "": 7}));
    same(json!([[], {}, [{}], {"a": []}]));
}
