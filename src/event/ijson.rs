//! I-JSON (RFC 7493) numbers and the one stored form of a payload.
//!
//! An id and a signature cover the RFC 8785 form of an event, in which `2` and
//! `2.0` are the same number and an integer beyond 2^53 is rounded to a double.
//! So that the bytes a node stores are the bytes that were signed, a stored
//! payload holds only numbers whose written form is their canonical form, and
//! its object keys are in canonical order.

use serde_json::{Map, Number, Value};

/// Largest integer magnitude every JSON reader holds exactly: 2^53 − 1.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Why `n` cannot be stored as written, or `None` when its text is canonical.
///
/// Integers must lie within ±(2^53 − 1); a fraction or exponent form must be
/// written exactly as RFC 8785 writes it (`1.5`, `1e-7`), which excludes
/// integral values written with a fraction (`2.0`), magnitudes of 1e21 and
/// more, and anything non-finite.
pub fn number_problem(n: &Number) -> Option<String> {
    if let Some(u) = n.as_u64() {
        return (u > MAX_SAFE_INTEGER).then(|| beyond(&u.to_string()));
    }
    if let Some(i) = n.as_i64() {
        return (i.unsigned_abs() > MAX_SAFE_INTEGER).then(|| beyond(&i.to_string()));
    }
    let Some(f) = n.as_f64().filter(|f| f.is_finite()) else {
        return Some(format!("{n} is not a finite number"));
    };
    if f.fract() == 0.0 && f.abs() > MAX_SAFE_INTEGER as f64 {
        return Some(beyond(&n.to_string()));
    }
    let written = n.to_string();
    match super::canonical_json(&Value::Number(n.clone())) {
        Ok(c) if c == written.as_bytes() => None,
        Ok(c) => Some(format!(
            "{written} is not in canonical form (RFC 8785 writes it {}); \
             its signed bytes would differ from its stored bytes",
            String::from_utf8_lossy(&c)
        )),
        Err(e) => Some(format!("{written} has no canonical form: {e}")),
    }
}

fn beyond(text: &str) -> String {
    format!(
        "integer {text} is beyond ±(2^53 − 1) and does not survive a round trip \
         through a double (I-JSON, RFC 7493); send it as a string"
    )
}

/// The stored form of a payload: object keys in RFC 8785 order at every level,
/// and integral numbers written with a fraction (`2.0`, `-0.0`) that lie within
/// ±(2^53 − 1) turned into integers. Other numbers are left as they are, for
/// the payload check to refuse.
pub fn canonical_payload(map: Map<String, Value>) -> Map<String, Value> {
    let mut items: Vec<(String, Value)> = map.into_iter().collect();
    if items.iter().all(|(k, _)| k.is_ascii()) {
        items.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    } else {
        items.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    }
    items
        .into_iter()
        .map(|(k, v)| (k, canonical_value(v)))
        .collect()
}

fn canonical_value(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(canonical_payload(m)),
        Value::Array(a) => Value::Array(a.into_iter().map(canonical_value).collect()),
        Value::Number(n) => Value::Number(integral(&n).unwrap_or(n)),
        other => other,
    }
}

fn integral(n: &Number) -> Option<Number> {
    if n.is_i64() || n.is_u64() {
        return None;
    }
    let f = n.as_f64()?;
    if f.is_finite() && f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER as f64 {
        // Exact: an integral double within ±(2^53 − 1) is an i64.
        Some(Number::from(f as i64))
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
