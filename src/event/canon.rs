//! A fast RFC 8785 (JCS) writer for id preimages and other hashed values.
//!
//! Strings are escaped exactly as JCS requires (serde_json's escaping is the
//! same), object keys are sorted by UTF-16 code units, integers up to 2^53 are
//! written as digits, and any other number is formatted by the reference
//! canonicalizer, so the bytes are identical to `event::canonical_json`.

use serde_json::{Number, Value};

const SAFE_INT: u64 = 1 << 53;

/// Appends the canonical JSON of `v` to `out`.
pub fn write(v: &Value, out: &mut Vec<u8>) -> Result<(), crate::event::EventError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => number(n, out)?,
        Value::String(s) => string(s, out),
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(x, out)?;
            }
            out.push(b']');
        }
        Value::Object(m) => object(m.iter(), out)?,
    }
    Ok(())
}

/// Appends a canonical object from its entries (sorted here).
pub fn object<'a>(
    entries: impl Iterator<Item = (&'a String, &'a Value)>,
    out: &mut Vec<u8>,
) -> Result<(), crate::event::EventError> {
    let mut items: Vec<(&String, &Value)> = entries.collect();
    if items.iter().all(|(k, _)| k.is_ascii()) {
        items.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    } else {
        items.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    }
    out.push(b'{');
    for (i, (k, v)) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(k, out);
        out.push(b':');
        write(v, out)?;
    }
    out.push(b'}');
    Ok(())
}

/// Appends a JSON string with JCS escaping.
pub fn string(s: &str, out: &mut Vec<u8>) {
    // serde_json escapes exactly `"`, `\` and control characters, with the short
    // forms \b \f \n \r \t and lowercase \u00xx otherwise: the JCS rules.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn number(n: &Number, out: &mut Vec<u8>) -> Result<(), crate::event::EventError> {
    if let Some(u) = n.as_u64()
        && u <= SAFE_INT
    {
        out.extend_from_slice(u.to_string().as_bytes());
    } else if let Some(i) = n.as_i64()
        && i.unsigned_abs() <= SAFE_INT
    {
        out.extend_from_slice(i.to_string().as_bytes());
    } else {
        out.extend_from_slice(&crate::event::canonical_json(&Value::Number(n.clone()))?);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
