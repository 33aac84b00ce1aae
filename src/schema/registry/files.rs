//! Where schema files are found: the `<topic>/<event_type>/v<N>.json` layout, in a
//! directory and in the ledger's tree at the node's view.

use super::SchemaKey;
use crate::config::Config;
use crate::git::tree::Capped;
use crate::paths::NodePaths;
use crate::schema::SchemaError;
use crate::store::{layout::Layout, repo};
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

/// Largest schema file read from the ledger; its size is read from the object
/// header, so a larger one is never loaded.
pub const MAX_SCHEMA_BYTES: u64 = 1024 * 1024;

/// Every schema file in the ledger's `<dir>/schemas` at the node's view, as
/// (key, location, text); other files there are skipped with a warning, and a
/// file over [`MAX_SCHEMA_BYTES`] or not a file is refused into `refused`.
pub(super) fn ledger_schemas(
    paths: &NodePaths,
    config: &Config,
    refused: &mut Vec<super::Refused>,
) -> Result<Vec<(SchemaKey, String, String)>, SchemaError> {
    let mut out = Vec::new();
    let Some(refname) = repo::view_ref(config, paths) else {
        return Ok(out);
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
        return Ok(out);
    };
    let Ok(root) = repo.find_tree(entry.id()) else {
        return Ok(out);
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
                let blob = match crate::git::tree::blob_capped(&repo, file.id(), MAX_SCHEMA_BYTES)
                    .map_err(git)?
                {
                    Capped::Blob(b) => b,
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
                let text = String::from_utf8_lossy(blob.content()).into_owned();
                out.push((key, location, text));
            }
        }
    }
    Ok(out)
}
