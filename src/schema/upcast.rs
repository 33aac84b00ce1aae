//! Declarative upcasters: how a payload of version N-1 becomes one of version N.
//!
//! A schema file `v<N>.json` may carry, next to its JSON Schema keywords,
//!
//! ```json
//! "x-gitmesh-upcast": {"from": 1, "steps": [
//!   {"rename": {"from": "host", "to": "hostname"}},
//!   {"default": {"path": "region", "value": "eu"}},
//!   {"move": {"from": "cpu", "to": "metrics.cpu"}},
//!   {"map": {"path": "state", "values": {"up": "running"}}},
//!   {"remove": {"path": "legacy"}}
//! ]}
//! ```
//!
//! Steps run in order on a copy of the payload. Every step is total: a
//! missing source is a no-op, an existing target is never overwritten, and a
//! path that runs into a non-object value leaves the payload unchanged, so an
//! upcast can never fail or lose data that the step did not name.

use serde::Deserialize;
use serde_json::{Map, Value};

/// The schema keyword that declares an upcaster.
pub const KEYWORD: &str = "x-gitmesh-upcast";

/// A dotted path into nested objects of a payload (`metrics.cpu`).
pub type FieldPath = Vec<String>;

/// One transformation of an upcaster.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Renames the field at `from` to `to` within the same object.
    Rename {
        /// The field's path.
        from: FieldPath,
        /// Its new name (one key, no dots).
        to: String,
    },
    /// Moves the value at `from` to the path `to`, creating objects on the way.
    Move {
        /// Source path.
        from: FieldPath,
        /// Target path.
        to: FieldPath,
    },
    /// Sets `path` to `value` when it is absent.
    Default {
        /// The field's path.
        path: FieldPath,
        /// Its value when absent.
        value: Value,
    },
    /// Replaces the value at `path` by `values[v]` (matched as a string, or a
    /// non-string's compact JSON text such as `true` or `1`).
    Map {
        /// The field's path.
        path: FieldPath,
        /// Old value -> new value.
        values: Map<String, Value>,
    },
    /// Deletes the field at `path`.
    Remove {
        /// The field's path.
        path: FieldPath,
    },
}

/// The upcaster a schema version declares: from `from` (its previous version) by `steps`.
#[derive(Debug, Clone, PartialEq)]
pub struct Upcaster {
    /// The version it reads: always the schema's own version minus one.
    pub from: u32,
    /// What it does, in order.
    pub steps: Vec<Step>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpcaster {
    from: u32,
    steps: Vec<RawStep>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum RawStep {
    Rename {
        from: String,
        to: String,
    },
    Move {
        from: String,
        to: String,
    },
    Default {
        path: String,
        value: Value,
    },
    Map {
        path: String,
        values: Map<String, Value>,
    },
    Remove {
        path: String,
    },
}

/// Parses a dotted field path: non-empty segments separated by `.`.
pub fn parse_path(s: &str) -> Result<FieldPath, String> {
    if s.is_empty() {
        return Err("a path must not be empty".into());
    }
    let parts: FieldPath = s.split('.').map(str::to_string).collect();
    if parts.iter().any(String::is_empty) {
        return Err(format!("path {s:?} has an empty segment"));
    }
    Ok(parts)
}

impl Upcaster {
    /// Reads the upcaster of schema `version` from its document; `Ok(None)` when it has none.
    pub fn from_schema(schema: &Value, version: u32) -> Result<Option<Upcaster>, String> {
        let Some(block) = schema.get(KEYWORD) else {
            return Ok(None);
        };
        let raw: RawUpcaster =
            serde_json::from_value(block.clone()).map_err(|e| format!("{KEYWORD}: {e}"))?;
        if version < 2 || raw.from != version - 1 {
            return Err(format!(
                "{KEYWORD}: \"from\" is {} but an upcaster in v{version} must read v{}",
                raw.from,
                version.saturating_sub(1)
            ));
        }
        let mut steps = Vec::with_capacity(raw.steps.len());
        for (i, s) in raw.steps.into_iter().enumerate() {
            let at = |e: String| format!("{KEYWORD}: steps[{i}]: {e}");
            steps.push(match s {
                RawStep::Rename { from, to } => {
                    if to.is_empty() || to.contains('.') {
                        return Err(at(format!(
                            "rename \"to\" must be one key without dots, got {to:?} (use move to change objects)"
                        )));
                    }
                    Step::Rename {
                        from: parse_path(&from).map_err(at)?,
                        to,
                    }
                }
                RawStep::Move { from, to } => {
                    let (from, to) = (parse_path(&from).map_err(at)?, parse_path(&to).map_err(at)?);
                    if to.starts_with(&from) || from.starts_with(&to) {
                        return Err(at(format!(
                            "move from {:?} to {:?}: one path is inside the other",
                            from.join("."),
                            to.join(".")
                        )));
                    }
                    Step::Move { from, to }
                }
                RawStep::Default { path, value } => Step::Default {
                    path: parse_path(&path).map_err(at)?,
                    value,
                },
                RawStep::Map { path, values } => Step::Map {
                    path: parse_path(&path).map_err(at)?,
                    values,
                },
                RawStep::Remove { path } => Step::Remove {
                    path: parse_path(&path).map_err(at)?,
                },
            });
        }
        Ok(Some(Upcaster {
            from: raw.from,
            steps,
        }))
    }

    /// Applies every step to `payload` in order.
    pub fn apply(&self, payload: &mut Map<String, Value>) {
        for step in &self.steps {
            step.apply(payload);
        }
    }
}

impl Step {
    /// Applies this step to `payload` (never fails; see the module docs).
    pub fn apply(&self, payload: &mut Map<String, Value>) {
        match self {
            Step::Rename { from, to } => {
                let (last, parents) = split(from);
                if let Some(obj) = object_at(payload, parents)
                    && !obj.contains_key(to)
                    && let Some(v) = obj.remove(last)
                {
                    obj.insert(to.clone(), v);
                }
            }
            Step::Move { from, to } => {
                if get(payload, from).is_none() || get(payload, to).is_some() {
                    return;
                }
                let (to_last, to_parents) = split(to);
                // Check that the target can be made before taking the value out.
                if !can_make(payload, to_parents) {
                    return;
                }
                let (last, parents) = split(from);
                let Some(v) = object_at(payload, parents).and_then(|o| o.remove(last)) else {
                    return;
                };
                if let Some(obj) = make_objects(payload, to_parents) {
                    obj.insert(to_last.to_string(), v);
                }
            }
            Step::Default { path, value } => {
                let (last, parents) = split(path);
                if get(payload, path).is_none()
                    && can_make(payload, parents)
                    && let Some(obj) = make_objects(payload, parents)
                {
                    obj.insert(last.to_string(), value.clone());
                }
            }
            Step::Map { path, values } => {
                let (last, parents) = split(path);
                if let Some(obj) = object_at(payload, parents)
                    && let Some(v) = obj.get_mut(last)
                {
                    let key = match &*v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    if let Some(new) = values.get(&key) {
                        *v = new.clone();
                    }
                }
            }
            Step::Remove { path } => {
                let (last, parents) = split(path);
                if let Some(obj) = object_at(payload, parents) {
                    obj.remove(last);
                }
            }
        }
    }
}

fn split(path: &[String]) -> (&str, &[String]) {
    match path.split_last() {
        Some((last, parents)) => (last.as_str(), parents),
        None => ("", &[]),
    }
}

fn get<'a>(payload: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (last, parents) = split(path);
    let mut obj = payload;
    for p in parents {
        obj = obj.get(p)?.as_object()?;
    }
    obj.get(last)
}

fn object_at<'a>(
    payload: &'a mut Map<String, Value>,
    parents: &[String],
) -> Option<&'a mut Map<String, Value>> {
    let mut obj = payload;
    for p in parents {
        obj = obj.get_mut(p)?.as_object_mut()?;
    }
    Some(obj)
}

/// Whether every existing segment of `parents` is an object (absent ones can be created).
fn can_make(payload: &Map<String, Value>, parents: &[String]) -> bool {
    let mut obj = payload;
    for p in parents {
        match obj.get(p) {
            None => return true,
            Some(Value::Object(o)) => obj = o,
            Some(_) => return false,
        }
    }
    true
}

fn make_objects<'a>(
    payload: &'a mut Map<String, Value>,
    parents: &[String],
) -> Option<&'a mut Map<String, Value>> {
    let mut obj = payload;
    for p in parents {
        obj = obj
            .entry(p.clone())
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()?;
    }
    Some(obj)
}

#[cfg(test)]
mod tests;
