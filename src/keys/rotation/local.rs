//! This node's own rotations in its root: the pending new key, the statements it
//! signed (published by every export), and rolling an interrupted rotation forward.
//!
//! Order of a rotation, each step durable before the next: (1) the new key to
//! `keys/next.ed25519`; (2) the statement to `keys/rotations/`; (3) the new key to
//! where the node's key comes from; (4) `next.ed25519` removed. A crash after (1)
//! leaves an unused key ([`finish`] drops it); after (2) or (3), [`finish`] completes
//! the switch before anything is signed, so the node never signs a seq the published
//! statement gives to the new key with the old one.

use super::Rotation;
use crate::keys::{KeyError, KeySource, NodeKey, key_path};
use crate::paths::NodePaths;
use std::path::{Path, PathBuf};

/// `keys/rotations/`: the statements this node signed.
pub fn own_dir(paths: &NodePaths) -> PathBuf {
    paths.keys().join("rotations")
}

/// `keys/next.ed25519`: the new key while a rotation is under way.
pub fn next_key_path(paths: &NodePaths) -> PathBuf {
    paths.keys().join("next.ed25519")
}

/// The statements this node signed, oldest `from_seq` first (empty when none).
pub fn load_own(paths: &NodePaths) -> Result<Vec<Rotation>, KeyError> {
    let dir = own_dir(paths);
    let Some(entries) = crate::fsutil::read_dir_opt(&dir)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(|source| crate::fsutil::PathError {
            op: "read directory",
            path: dir.clone(),
            source,
        })?;
        let path = e.path();
        if path.extension().is_none_or(|x| x != "json")
            || e.file_name().to_string_lossy().starts_with('.')
        {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|source| crate::fsutil::PathError {
            op: "read",
            path: path.clone(),
            source,
        })?;
        let r = Rotation::parse_any(&bytes).map_err(|e| KeyError::BadRotation {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        out.push(r);
    }
    out.sort_by_key(|r| r.from_seq);
    Ok(out)
}

/// Writes `r` to `keys/rotations/` durably; returns its path.
pub fn save_own(paths: &NodePaths, r: &Rotation) -> Result<PathBuf, KeyError> {
    let path = own_dir(paths).join(r.file_name());
    crate::fsutil::write_atomic(&path, &r.to_file(), true)?;
    Ok(path)
}

/// Where a rotation stores the new key for a node whose key comes from `source`: the
/// same file, or for the environment secret (which gitmesh cannot change) the file the
/// node reads when the secret no longer holds its key: `key_file`, else the root's.
pub fn target(source: &KeySource, paths: &NodePaths, key_file: Option<&Path>) -> PathBuf {
    match source {
        KeySource::File { path } | KeySource::Root { path } => path.clone(),
        KeySource::Env => key_file.map_or_else(|| key_path(paths), Path::to_path_buf),
    }
}

/// Checks that a key can be written at `path` (its directory accepts a new file), so a
/// rotation is refused before it is decided rather than left to finish later.
pub fn check_writable(path: &Path) -> Result<(), KeyError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    if !dir.is_dir() {
        // `NodeKey::store` creates a missing directory; its parent must accept it.
        return Ok(());
    }
    let probe = dir.join(format!(".gitmesh-rotate-probe.{}", std::process::id()));
    std::fs::File::create(&probe).map_err(|source| crate::fsutil::PathError {
        op: "create",
        path: probe.clone(),
        source,
    })?;
    std::fs::remove_file(&probe).map_err(|source| crate::fsutil::PathError {
        op: "remove",
        path: probe,
        source,
    })?;
    Ok(())
}

/// Whether this node rotated away from `public` (an old secret must not sign again).
pub fn rotated_away(paths: &NodePaths, public: &str) -> Result<bool, KeyError> {
    Ok(load_own(paths)?.iter().any(|r| r.old_public_key == public))
}

/// Rolls an interrupted rotation forward (or drops a new key no statement names);
/// returns true when it switched the key. Call it before anything is signed.
pub fn finish(paths: &NodePaths, key_file: Option<&Path>) -> Result<bool, KeyError> {
    let path = next_key_path(paths);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(crate::fsutil::PathError {
                op: "read",
                path,
                source,
            }
            .into());
        }
    };
    let next =
        NodeKey::from_hex(&text).ok_or_else(|| KeyError::BadKeyFile { path: path.clone() })?;
    // The statement is the durable decision: once one names the new key, the new key
    // must be the one that signs, wherever the node reads its key from.
    let named = load_own(paths)?
        .iter()
        .any(|r| r.new_public_key == next.public_hex());
    let current = NodeKey::resolve(paths, key_file)?;
    let mut switched = false;
    if named
        && current
            .as_ref()
            .is_none_or(|(k, _)| k.public_hex() != next.public_hex())
    {
        let source = current.map_or(KeySource::Env, |(_, s)| s);
        let to = target(&source, paths, key_file);
        next.store(&to)?;
        tracing::warn!(file = %to.display(), "finished an interrupted key rotation: the new key is stored");
        switched = true;
    }
    std::fs::remove_file(&path).map_err(|source| crate::fsutil::PathError {
        op: "remove",
        path: path.clone(),
        source,
    })?;
    if let Some(dir) = path.parent() {
        crate::fsutil::sync_dir(dir)?;
    }
    Ok(switched)
}
