//! Where in a document a problem is, written as a JSONPath (`$.a.b[0]`).

use serde_json::Value;

/// Renders a jsonschema instance location as `$.a.b[0]`.
pub fn json_path(loc: &jsonschema::paths::Location) -> String {
    let mut out = String::from("$");
    for seg in loc.segments() {
        match seg {
            jsonschema::paths::LocationSegment::Property(p) => push_property(&mut out, &p),
            jsonschema::paths::LocationSegment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Renders a JSON pointer (`/a/b/0`) as `$.a.b.0`-style path, decoding `~1` and `~0`.
pub(super) fn json_path_of_pointer(p: &str) -> String {
    let mut out = String::from("$");
    for seg in p.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            push_property(&mut out, &seg);
        }
    }
    out
}

/// Appends `.name`, or `["name"]` when the name is not a plain identifier.
pub fn push_property(out: &mut String, name: &str) {
    let plain = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if plain {
        out.push('.');
        out.push_str(name);
    } else {
        out.push('[');
        out.push_str(&Value::String(name.to_string()).to_string());
        out.push(']');
    }
}
