//! Where schema files are found: the `<topic>/<event_type>/v<N>.json` layout, in a
//! directory and in the ledger's tree at the node's view.

use super::SchemaKey;
use crate::git::tree::Capped;
use crate::schema::SchemaError;
use crate::schema::sign::{MAX_SIG_BYTES, is_sig_file_name, sig_file_name};
use crate::schema::verified::MAX_LEDGER_SCHEMAS;
use std::path::Path;

/// Parses a schema file name `v<N>.json` (N >= 1, no leading zero).
pub fn parse_version_file(name: &str) -> Option<u32> {
    let n = name.strip_prefix('v')?.strip_suffix(".json")?;
    if n.starts_with('0') || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok().filter(|v| *v >= 1)
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

/// Lists `<topic>/<event_type>/v<N>.json` files under `dir`. Signature files
/// (`v<N>.sig.json`) are skipped, so a copy of the ledger's schema directory can be
/// published again. With `strict`, any other entry (except dot files) is an error naming
/// it; otherwise it is skipped with a warning.
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
                if f.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(is_sig_file_name)
                {
                    continue;
                }
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

/// Largest schema file read from the ledger; its size is read from the object
/// header, so a larger one is never loaded.
pub const MAX_SCHEMA_BYTES: u64 = 1024 * 1024;

/// One schema file found in the ledger, with its signature file.
#[derive(Debug, Clone)]
pub struct LedgerSchemaFile {
    /// Its key.
    pub key: SchemaKey,
    /// Where it is (`ledger:<dir>/schemas/<topic>/<event_type>/v<N>.json`).
    pub location: String,
    /// Its bytes (at most [`MAX_SCHEMA_BYTES`]).
    pub text: Vec<u8>,
    /// `v<N>.sig.json` beside it: `None` when absent, `Err(why)` when it is over
    /// [`MAX_SIG_BYTES`] (read from the object header) or not a file.
    pub sig: Option<Result<Vec<u8>, String>>,
}

/// Every schema file under the ledger's schema tree `root` (the tree at `dir`), with its
/// signature file; other files are skipped (signature files silently, the rest with a
/// warning), and a file over [`MAX_SCHEMA_BYTES`], not a file, or past
/// [`MAX_LEDGER_SCHEMAS`] is refused into `refused`.
pub fn ledger_schema_files(
    repo: &git2::Repository,
    root: &git2::Tree<'_>,
    dir: &str,
    refused: &mut Vec<super::Refused>,
) -> Result<Vec<LedgerSchemaFile>, git2::Error> {
    let mut out = Vec::new();
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
                if is_sig_file_name(name) {
                    continue;
                }
                let location = format!("ledger:{dir}/{t}/{e}/{name}");
                let Some(key) = layout_key(t, e, name) else {
                    tracing::warn!(%location, "ignoring a file that is not <topic>/<event_type>/v<N>.json");
                    continue;
                };
                if out.len() >= MAX_LEDGER_SCHEMAS {
                    refused.push(super::Refused::new(
                        location,
                        format!("more than {MAX_LEDGER_SCHEMAS} schema files in the ledger"),
                    ));
                    continue;
                }
                let text = match crate::git::tree::blob_capped(repo, file.id(), MAX_SCHEMA_BYTES)? {
                    Capped::Blob(b) => b.content().to_vec(),
                    Capped::TooLarge(size) => {
                        refused.push(super::Refused::new(
                            location,
                            format!("{size} bytes; the cap is {MAX_SCHEMA_BYTES}"),
                        ));
                        continue;
                    }
                    Capped::NotBlob => {
                        refused.push(super::Refused::new(location, "not a file".into()));
                        continue;
                    }
                };
                let sig = match etree.get_name(&sig_file_name(key.version)) {
                    None => None,
                    Some(s) => Some(
                        match crate::git::tree::blob_capped(repo, s.id(), MAX_SIG_BYTES)? {
                            Capped::Blob(b) => Ok(b.content().to_vec()),
                            Capped::TooLarge(size) => {
                                Err(format!("{size} bytes; the cap is {MAX_SIG_BYTES}"))
                            }
                            Capped::NotBlob => Err("not a file".into()),
                        },
                    ),
                };
                out.push(LedgerSchemaFile {
                    key,
                    location,
                    text,
                    sig,
                });
            }
        }
    }
    Ok(out)
}
