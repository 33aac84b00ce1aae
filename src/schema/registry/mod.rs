//! The schema registry: every known schema by (topic, event_type, version), its source,
//! lazy compilation, payload validation and upcasting.
//!
//! `entry` is one schema (parse, compile, validate), `files` finds schema files in a
//! directory or the ledger, `location` writes error locations; this module is the map.

mod entry;
mod files;
mod location;

pub use entry::{DRAFT_2020_12, SchemaEntry, SchemaKey, SchemaSource, check_schema_text};
pub use files::{
    LedgerSchemaFile, MAX_SCHEMA_BYTES, layout_key, ledger_schema_files, parse_version_file,
    scan_dir,
};
pub use location::{json_path, push_property};

use super::SchemaError;
use super::builtin::BUILTINS;
use crate::config::Config;
use crate::event::Envelope;
use crate::paths::NodePaths;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

/// Whether a schema's result for an event was a check or there was no schema to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// A schema exists and the payload satisfies it.
    Valid,
    /// No schema is known for that (topic, event_type, version).
    NoSchema,
}

/// A schema file of the ledger that was not loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Refused {
    /// Where it is (`ledger:<path>`).
    pub location: String,
    /// Why it was refused.
    pub reason: String,
}

impl Refused {
    /// A refusal of the file at `location`, logged as a warning.
    pub fn new(location: String, reason: String) -> Refused {
        tracing::warn!(%location, %reason, "ledger schema refused");
        Refused { location, reason }
    }
}

/// True when `topic`/`event_type` has a built-in schema: the types the built-in
/// handlers (routing, scheduling, scaling, commands) act on. The ledger can neither
/// replace their schemas nor add versions (and so upcasters) to them.
pub fn is_builtin_type(topic: &str, event_type: &str) -> bool {
    BUILTINS
        .iter()
        .any(|b| b.topic == topic && b.event_type == event_type)
}

/// Why a ledger schema for a built-in type is refused.
pub fn builtin_refusal(key: &SchemaKey) -> String {
    format!(
        "{}/{} is a built-in type: its schema ships in the binary and the ledger cannot replace or upcast it",
        key.topic, key.event_type
    )
}

/// Every schema a node knows.
#[derive(Debug, Default)]
pub struct Registry {
    entries: BTreeMap<SchemaKey, SchemaEntry>,
    refused: Vec<Refused>,
}

impl Registry {
    /// A registry of the built-in schemas only.
    pub fn builtin() -> Registry {
        let mut r = Registry::default();
        for b in BUILTINS {
            r.add(
                SchemaKey {
                    topic: b.topic.into(),
                    event_type: b.event_type.into(),
                    version: b.version,
                },
                SchemaSource::Builtin,
                format!("builtin:{}/{}/v{}.json", b.topic, b.event_type, b.version),
                Cow::Borrowed(b.text),
            );
        }
        r
    }

    /// The registry of a node: built-ins, then the ledger's schemas that a publisher
    /// signed (as last verified at import), then the local override directory; later
    /// sources win for the same key.
    pub fn load(paths: &NodePaths, config: &Config) -> Result<Registry, SchemaError> {
        let mut r = Registry::builtin();
        r.load_ledger(paths, config)?;
        r.load_dir(&paths.schemas_local(), SchemaSource::Local)?;
        Ok(r)
    }

    /// Adds (or overrides) one schema.
    pub fn add(
        &mut self,
        key: SchemaKey,
        source: SchemaSource,
        location: String,
        text: Cow<'static, str>,
    ) {
        let overrides = match self.entries.remove(&key) {
            Some(old) => {
                let mut o = old.overrides;
                o.push(old.source);
                o
            }
            None => Vec::new(),
        };
        self.entries.insert(
            key.clone(),
            SchemaEntry::new(key, source, location, overrides, text),
        );
    }

    /// Adds the ledger's schemas as this node last verified them (publisher-signed copies
    /// kept by the import, `crate::schema::verified`), and the refusals of that check.
    fn load_ledger(&mut self, paths: &NodePaths, config: &Config) -> Result<(), SchemaError> {
        let dir = crate::store::layout::Layout::new(&config.ledger.dir).schemas();
        for (key, path) in scan_dir(&paths.schemas_verified(), false)? {
            let location = format!("ledger:{dir}/{}", crate::schema::verified::rel_path(&key));
            if is_builtin_type(&key.topic, &key.event_type) {
                self.refused
                    .push(Refused::new(location, builtin_refusal(&key)));
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|e| crate::fsutil::PathError {
                op: "read",
                path: path.clone(),
                source: e,
            })?;
            let text = String::from_utf8_lossy(&bytes).into_owned();
            self.add(key, SchemaSource::Ledger, location, Cow::Owned(text));
        }
        self.refused
            .extend(crate::schema::verified::load(paths)?.refused);
        Ok(())
    }

    /// Ledger schema files that were not loaded, with why.
    pub fn refused(&self) -> &[Refused] {
        &self.refused
    }

    /// Adds every `<topic>/<event_type>/v<N>.json` under `dir` (absent dir: nothing).
    pub fn load_dir(&mut self, dir: &Path, source: SchemaSource) -> Result<(), SchemaError> {
        for (key, path) in scan_dir(dir, false)? {
            let text = std::fs::read_to_string(&path).map_err(|e| crate::fsutil::PathError {
                op: "read",
                path: path.clone(),
                source: e,
            })?;
            self.add(key, source, path.display().to_string(), Cow::Owned(text));
        }
        Ok(())
    }

    /// Every schema, ordered by topic, event type and version.
    pub fn entries(&self) -> impl Iterator<Item = &SchemaEntry> {
        self.entries.values()
    }

    /// The schema of one version.
    pub fn get(&self, topic: &str, event_type: &str, version: u32) -> Option<&SchemaEntry> {
        self.entries.get(&SchemaKey {
            topic: topic.into(),
            event_type: event_type.into(),
            version,
        })
    }

    /// The newest version known for a type.
    pub fn newest(&self, topic: &str, event_type: &str) -> Option<&SchemaEntry> {
        let lo = SchemaKey {
            topic: topic.into(),
            event_type: event_type.into(),
            version: 0,
        };
        let hi = SchemaKey {
            version: u32::MAX,
            ..lo.clone()
        };
        self.entries.range(lo..=hi).next_back().map(|(_, e)| e)
    }

    /// Validates a payload against the schema of its version (absent = 1).
    pub fn check(
        &self,
        topic: &str,
        event_type: &str,
        version: Option<u32>,
        payload: &Map<String, Value>,
    ) -> Result<Checked, SchemaError> {
        match self.get(topic, event_type, version.unwrap_or(1)) {
            Some(entry) => entry.validate(payload).map(|()| Checked::Valid),
            None => Ok(Checked::NoSchema),
        }
    }

    /// The publish rule: validate when a schema exists; without one, refuse only when `strict`.
    pub fn check_publish(
        &self,
        topic: &str,
        event_type: &str,
        version: Option<u32>,
        payload: &Map<String, Value>,
        strict: bool,
    ) -> Result<(), SchemaError> {
        match self.check(topic, event_type, version, payload)? {
            Checked::NoSchema if strict => Err(SchemaError::Unknown {
                key: Box::new(SchemaKey {
                    topic: topic.into(),
                    event_type: event_type.into(),
                    version: version.unwrap_or(1),
                }),
            }),
            _ => Ok(()),
        }
    }

    /// Validates a stored or imported envelope's payload against the schema of its version;
    /// types and versions this node has no schema for pass.
    pub fn check_envelope(&self, env: &Envelope) -> Result<(), SchemaError> {
        self.check(
            &env.topic,
            &env.event_type,
            env.schema_version,
            &env.payload,
        )
        .map(|_| ())
    }

    /// The event upcast to the newest version this node can reach through upcasters
    /// (v1 -> v2 -> v3 ...). The copy keeps `event_id` and every other field and has
    /// `schema_version` set to the reached version; the stored event is never changed.
    /// An event already at the newest version, or whose next version has no upcaster,
    /// is returned as it is.
    pub fn upcast<'a>(&self, env: &'a Envelope) -> Cow<'a, Envelope> {
        let current = env.schema_version.unwrap_or(1);
        let Some(newest) = self.newest(&env.topic, &env.event_type) else {
            return Cow::Borrowed(env);
        };
        if newest.key.version <= current {
            return Cow::Borrowed(env);
        }
        let mut payload: Option<Map<String, Value>> = None;
        let mut reached = current;
        for v in current + 1..=newest.key.version {
            let Some(entry) = self.get(&env.topic, &env.event_type, v) else {
                break;
            };
            let upcaster = match entry.upcaster() {
                Ok(Some(u)) if u.from == reached => u,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(event_id = %env.event_id, "not upcasting past v{reached}: {e}");
                    break;
                }
            };
            upcaster.apply(payload.get_or_insert_with(|| env.payload.clone()));
            reached = v;
        }
        match payload {
            Some(p) => {
                let mut out = env.clone();
                out.payload = p;
                out.schema_version = Some(reached);
                Cow::Owned(out)
            }
            None => Cow::Borrowed(env),
        }
    }
}

#[cfg(test)]
mod tests;
