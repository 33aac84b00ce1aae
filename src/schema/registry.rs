//! The schema registry: every known schema by (topic, event_type, version), its source,
//! lazy compilation, payload validation and upcasting.

use super::SchemaError;
use super::builtin::BUILTINS;
use super::upcast::Upcaster;
use crate::config::Config;
use crate::event::Envelope;
use crate::paths::NodePaths;
use crate::store::{layout::Layout, repo};
use serde::Serialize;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

/// The `$schema` URI of draft 2020-12, the only draft gitmesh accepts.
pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// Which event a schema describes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SchemaKey {
    /// Topic.
    pub topic: String,
    /// Event type.
    pub event_type: String,
    /// Payload schema version (1-based).
    pub version: u32,
}

impl std::fmt::Display for SchemaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} v{}", self.topic, self.event_type, self.version)
    }
}

/// Where a schema came from; later sources override earlier ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaSource {
    /// Shipped in the binary.
    Builtin,
    /// The ledger's `<dir>/schemas/` at the node's view.
    Ledger,
    /// The node's `state/event_mesh/schemas/` override directory.
    Local,
}

/// A parsed schema document and its upcaster.
#[derive(Debug)]
struct Doc {
    schema: Value,
    upcast: Option<Upcaster>,
}

/// One schema as the registry holds it: text now, parsed and compiled on first use.
pub struct SchemaEntry {
    /// Its key.
    pub key: SchemaKey,
    /// Its source.
    pub source: SchemaSource,
    /// File path, ledger path or built-in name, for messages.
    pub location: String,
    /// Sources it overrides for the same key.
    pub overrides: Vec<SchemaSource>,
    text: Cow<'static, str>,
    doc: OnceLock<Result<Doc, String>>,
    validator: OnceLock<Result<jsonschema::Validator, String>>,
}

impl std::fmt::Debug for SchemaEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaEntry")
            .field("key", &self.key)
            .field("source", &self.source)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl SchemaEntry {
    fn bad(&self, reason: impl Into<String>) -> SchemaError {
        SchemaError::BadSchema {
            location: self.location.clone(),
            reason: reason.into(),
        }
    }

    fn doc(&self) -> Result<&Doc, SchemaError> {
        self.doc
            .get_or_init(|| parse_doc(&self.text, self.key.version))
            .as_ref()
            .map_err(|e| self.bad(e.clone()))
    }

    /// The file's text as loaded.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The schema document.
    pub fn schema(&self) -> Result<&Value, SchemaError> {
        Ok(&self.doc()?.schema)
    }

    /// The upcaster from the previous version, when the schema declares one.
    pub fn upcaster(&self) -> Result<Option<&Upcaster>, SchemaError> {
        Ok(self.doc()?.upcast.as_ref())
    }

    /// Parses and compiles the schema, reporting why it cannot be used.
    pub fn verify(&self) -> Result<(), SchemaError> {
        self.validator().map(|_| ())
    }

    fn validator(&self) -> Result<&jsonschema::Validator, SchemaError> {
        let doc = self.doc()?;
        self.validator
            .get_or_init(|| compile(&doc.schema))
            .as_ref()
            .map_err(|e| self.bad(e.clone()))
    }

    /// Validates a payload; the error names the first failing value's path and rule.
    pub fn validate(&self, payload: &Map<String, Value>) -> Result<(), SchemaError> {
        let validator = self.validator()?;
        let instance = Value::Object(payload.clone());
        let mut errors = validator.iter_errors(&instance);
        let Some(first) = errors.next() else {
            return Ok(());
        };
        let others = errors.count();
        let mut path = json_path(first.instance_path());
        if let jsonschema::error::ValidationErrorKind::Required { property } = first.kind()
            && let Some(name) = property.as_str()
        {
            push_property(&mut path, name);
        }
        Err(SchemaError::Violation {
            key: Box::new(self.key.clone()),
            path,
            rule: first.kind().keyword().to_string(),
            message: first.to_string(),
            others,
        })
    }
}

/// Parses a schema file's text: JSON, the 2020-12 draft, and a well-formed upcaster.
fn parse_doc(text: &str, version: u32) -> Result<Doc, String> {
    let schema: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if !schema.is_object() && !schema.is_boolean() {
        return Err("a schema must be a JSON object (or true/false)".into());
    }
    if let Some(s) = schema.get("$schema")
        && s.as_str().map(|s| s.trim_end_matches('#')) != Some(DRAFT_2020_12)
    {
        return Err(format!(
            "\"$schema\" is {s}; gitmesh schemas use draft 2020-12 ({DRAFT_2020_12}) or omit it"
        ));
    }
    let upcast = Upcaster::from_schema(&schema, version)?;
    Ok(Doc { schema, upcast })
}

/// Compiles a document as draft 2020-12 (which checks it against the meta-schema first).
fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::draft202012::new(schema).map_err(|e| match e.kind() {
        jsonschema::error::ValidationErrorKind::Referencing(_) => format!("does not compile: {e}"),
        _ => format!(
            "not a valid draft 2020-12 schema at {}: {e}",
            pointer_or_root(e.instance_path().as_str())
        ),
    })
}

fn pointer_or_root(p: &str) -> String {
    if p.is_empty() {
        "the root".into()
    } else {
        format!("schema {}", json_path_of_pointer(p))
    }
}

/// Checks a schema file as `gitmesh schema check` does: JSON, draft 2020-12 meta-schema,
/// compilation, and the upcaster (whose `from` must be `version - 1` when the version is known).
pub fn check_schema_text(text: &str, version: Option<u32>) -> Result<Option<Upcaster>, String> {
    let schema: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let v = version.unwrap_or_else(|| {
        // Without a versioned file name, judge the upcaster by the version it claims to follow.
        schema
            .get(super::upcast::KEYWORD)
            .and_then(|b| b.get("from"))
            .and_then(Value::as_u64)
            .and_then(|f| u32::try_from(f).ok())
            .map_or(1, |f| f.saturating_add(1))
    });
    let doc = parse_doc(text, v)?;
    compile(&doc.schema)?;
    Ok(doc.upcast)
}

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
fn json_path_of_pointer(p: &str) -> String {
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

/// Parses a schema file name `v<N>.json` (N >= 1, no leading zero).
pub fn parse_version_file(name: &str) -> Option<u32> {
    let n = name.strip_prefix('v')?.strip_suffix(".json")?;
    if n.starts_with('0') || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok().filter(|v| *v >= 1)
}

/// Whether a schema's result for an event was a check or there was no schema to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// A schema exists and the payload satisfies it.
    Valid,
    /// No schema is known for that (topic, event_type, version).
    NoSchema,
}

/// Every schema a node knows.
#[derive(Debug, Default)]
pub struct Registry {
    entries: BTreeMap<SchemaKey, SchemaEntry>,
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

    /// The registry of a node: built-ins, then the ledger view's `<dir>/schemas`, then the
    /// local override directory; later sources win for the same key.
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
            SchemaEntry {
                key,
                source,
                location,
                overrides,
                text,
                doc: OnceLock::new(),
                validator: OnceLock::new(),
            },
        );
    }

    fn load_ledger(&mut self, paths: &NodePaths, config: &Config) -> Result<(), SchemaError> {
        let Some(refname) = repo::view_ref(config, paths) else {
            return Ok(());
        };
        let repo_path = paths.ledger_repo();
        let git = |e: git2::Error| SchemaError::Ledger {
            path: repo_path.display().to_string(),
            reason: e.message().to_string(),
        };
        let repo = git2::Repository::open_bare(&repo_path).map_err(git)?;
        let tree = repo
            .find_reference(&refname)
            .and_then(|r| r.peel_to_tree())
            .map_err(git)?;
        let dir = Layout::new(&config.ledger.dir).schemas();
        let Ok(entry) = tree.get_path(Path::new(&dir)) else {
            return Ok(());
        };
        let Ok(root) = repo.find_tree(entry.id()) else {
            return Ok(());
        };
        for topic in root.iter() {
            let (Ok(t), Ok(ttree)) = (topic.name(), repo.find_tree(topic.id())) else {
                continue;
            };
            for et in ttree.iter() {
                let (Ok(e), Ok(etree)) = (et.name(), repo.find_tree(et.id())) else {
                    continue;
                };
                for file in etree.iter() {
                    let Ok(name) = file.name() else { continue };
                    let location = format!("ledger:{dir}/{t}/{e}/{name}");
                    let Some(key) = layout_key(t, e, name) else {
                        tracing::warn!(%location, "ignoring a file that is not <topic>/<event_type>/v<N>.json");
                        continue;
                    };
                    let blob = repo.find_blob(file.id()).map_err(git)?;
                    let text = String::from_utf8_lossy(blob.content()).into_owned();
                    self.add(key, SchemaSource::Ledger, location, Cow::Owned(text));
                }
            }
        }
        Ok(())
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

/// The key of a file at `<topic>/<event_type>/<name>`, when the names are valid.
pub fn layout_key(topic: &str, event_type: &str, name: &str) -> Option<SchemaKey> {
    use crate::event::{validate_event_type, validate_topic};
    if validate_topic(topic).is_err()
        || validate_event_type(event_type).is_err()
        || event_type.starts_with('.')
    {
        return None;
    }
    Some(SchemaKey {
        topic: topic.into(),
        event_type: event_type.into(),
        version: parse_version_file(name)?,
    })
}

/// Lists `<topic>/<event_type>/v<N>.json` files under `dir`. With `strict`, any other
/// entry (except dot files) is an error naming it; otherwise it is skipped with a warning.
pub fn scan_dir(
    dir: &Path,
    strict: bool,
) -> Result<Vec<(SchemaKey, std::path::PathBuf)>, SchemaError> {
    let mut out = Vec::new();
    let list = |d: &Path| -> Result<Vec<std::path::PathBuf>, SchemaError> {
        let rd = match std::fs::read_dir(d) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && d == dir => {
                return Ok(Vec::new());
            }
            Err(e) => {
                return Err(crate::fsutil::PathError {
                    op: "read directory",
                    path: d.to_path_buf(),
                    source: e,
                }
                .into());
            }
        };
        let mut v: Vec<_> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                !p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
            })
            .collect();
        v.sort();
        Ok(v)
    };
    let reject = |p: &Path, why: &str| -> Result<(), SchemaError> {
        if strict {
            Err(SchemaError::Layout {
                path: p.display().to_string(),
                reason: why.into(),
            })
        } else {
            tracing::warn!(path = %p.display(), "ignoring: {why}");
            Ok(())
        }
    };
    for t in list(dir)? {
        if !t.is_dir() {
            reject(&t, "expected a <topic> directory")?;
            continue;
        }
        for e in list(&t)? {
            if !e.is_dir() {
                reject(&e, "expected an <event_type> directory")?;
                continue;
            }
            for f in list(&e)? {
                let name = |p: &Path| {
                    p.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                };
                match layout_key(&name(&t), &name(&e), &name(&f)) {
                    Some(key) if f.is_file() => out.push((key, f)),
                    _ => reject(
                        &f,
                        "expected <topic>/<event_type>/v<N>.json with a valid topic and event type and N >= 1",
                    )?,
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
