//! `gitmesh schema publish`: validate a directory of schema files and stage them for the ledger.

use super::SchemaError;
use super::registry::{Registry, SchemaKey, SchemaSource, check_schema_text, scan_dir};
use super::sign::{SchemaSig, sig_file_name};
use crate::fsutil::{IoContext, write_atomic};
use crate::keys::NodeKey;
use crate::paths::NodePaths;
use serde::Serialize;
use std::path::Path;

/// One schema file staged by [`publish_dir`].
#[derive(Debug, Clone, Serialize)]
pub struct Staged {
    /// Its key.
    #[serde(flatten)]
    pub key: SchemaKey,
    /// The file it was read from.
    pub file: String,
    /// The version it upcasts from, when it declares an upcaster.
    pub upcast_from: Option<u32>,
    /// The source whose schema for the same key it replaces on this node, if any.
    pub replaces: Option<SchemaSource>,
    /// Whether its text equals the schema this node already used for the key.
    pub unchanged: bool,
}

/// Checks every `<topic>/<event_type>/v<N>.json` under `dir` and, only when all are valid,
/// writes each with its publisher signature (`v<N>.sig.json`, signed as `signer` with
/// `node_key`) into the schema outbox (committed into the ledger by the next export), and the
/// schema into the local override directory (used by this node at once).
pub fn publish_dir(
    paths: &NodePaths,
    registry: &Registry,
    dir: &Path,
    signer: &str,
    node_key: &NodeKey,
) -> Result<Vec<Staged>, SchemaError> {
    if !dir.is_dir() {
        return Err(SchemaError::Layout {
            path: dir.display().to_string(),
            reason: "not a directory of <topic>/<event_type>/v<N>.json files".into(),
        });
    }
    let files = scan_dir(dir, true)?;
    if files.is_empty() {
        return Err(SchemaError::Layout {
            path: dir.display().to_string(),
            reason: "no <topic>/<event_type>/v<N>.json files found".into(),
        });
    }
    let mut checked = Vec::with_capacity(files.len());
    for (key, file) in files {
        if super::registry::is_builtin_type(&key.topic, &key.event_type) {
            return Err(SchemaError::Layout {
                path: file.display().to_string(),
                reason: format!(
                    "{}/{} is a built-in type: peers refuse a ledger schema for it",
                    key.topic, key.event_type
                ),
            });
        }
        let text = std::fs::read_to_string(&file).ctx("read", &file)?;
        let bad = |reason| SchemaError::BadSchema {
            location: file.display().to_string(),
            reason,
        };
        let upcast = check_schema_text(&text, Some(key.version)).map_err(bad)?;
        let sig = SchemaSig::create(&key, text.as_bytes(), signer, node_key).map_err(bad)?;
        let existing = registry.get(&key.topic, &key.event_type, key.version);
        let staged = Staged {
            upcast_from: upcast.map(|u| u.from),
            replaces: existing.map(|e| e.source),
            unchanged: existing.is_some_and(|e| e.text() == text),
            file: file.display().to_string(),
            key,
        };
        checked.push((staged, text, sig));
    }
    let mut out = Vec::with_capacity(checked.len());
    for (staged, text, sig) in checked {
        let at = Path::new(&staged.key.topic).join(&staged.key.event_type);
        let rel = at.join(format!("v{}.json", staged.key.version));
        // The signature first: an outbox schema is never exported without it.
        write_atomic(
            &paths
                .schema_outbox()
                .join(&at)
                .join(sig_file_name(staged.key.version)),
            &sig.to_file(),
            true,
        )?;
        write_atomic(&paths.schema_outbox().join(&rel), text.as_bytes(), true)?;
        write_atomic(&paths.schemas_local().join(&rel), text.as_bytes(), true)?;
        out.push(staged);
    }
    Ok(out)
}

/// The files staged in the schema outbox, as (path relative to `<dir>/schemas/`, bytes).
///
/// The ledger export commits each to `<dir>/schemas/<path>` and, once the push that carries
/// them has succeeded, calls [`remove_staged`] with the same paths; a failed push loses nothing.
pub fn outbox_files(paths: &NodePaths) -> Result<Vec<(String, Vec<u8>)>, SchemaError> {
    let mut out = Vec::new();
    for (key, file) in scan_dir(&paths.schema_outbox(), false)? {
        let bytes = std::fs::read(&file).ctx("read", &file)?;
        out.push((
            format!("{}/{}/v{}.json", key.topic, key.event_type, key.version),
            bytes,
        ));
    }
    Ok(out)
}

/// Removes staged files (paths as returned by [`outbox_files`]) after they reached the ledger.
///
/// A file staged again while the export ran is kept when its bytes differ from `pushed`.
pub fn remove_staged(paths: &NodePaths, pushed: &[(String, Vec<u8>)]) -> Result<(), SchemaError> {
    let outbox = paths.schema_outbox();
    for (rel, bytes) in pushed {
        let file = outbox.join(rel);
        match std::fs::read(&file) {
            Ok(now) if &now == bytes => std::fs::remove_file(&file).ctx("remove", &file)?,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(crate::fsutil::PathError {
                    op: "read",
                    path: file,
                    source: e,
                }
                .into());
            }
        }
    }
    Ok(())
}
