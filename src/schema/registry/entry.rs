//! One schema: its key and source, and its text parsed, checked against draft
//! 2020-12 and compiled on first use; payload validation against it.

use super::location::{json_path, json_path_of_pointer, push_property};
use crate::schema::SchemaError;
use crate::schema::upcast::Upcaster;
use serde::Serialize;
use serde_json::{Map, Value};
use std::borrow::Cow;
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
    /// An entry not yet parsed or compiled.
    pub(super) fn new(
        key: SchemaKey,
        source: SchemaSource,
        location: String,
        overrides: Vec<SchemaSource>,
        text: Cow<'static, str>,
    ) -> SchemaEntry {
        SchemaEntry {
            key,
            source,
            location,
            overrides,
            text,
            doc: OnceLock::new(),
            validator: OnceLock::new(),
        }
    }

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

    /// The compiled validator, compiled on first use.
    pub(super) fn validator(&self) -> Result<&jsonschema::Validator, SchemaError> {
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
            .get(crate::schema::upcast::KEYWORD)
            .and_then(|b| b.get("from"))
            .and_then(Value::as_u64)
            .and_then(|f| u32::try_from(f).ok())
            .map_or(1, |f| f.saturating_add(1))
    });
    let doc = parse_doc(text, v)?;
    compile(&doc.schema)?;
    Ok(doc.upcast)
}
