//! Node signing keys (ed25519) and trust-on-first-use pinning of peers' keys.

use crate::event::{Envelope, EventError};
use crate::fsutil::{IoContext, PathError, read_json, write_json};
use crate::paths::NodePaths;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

mod batch;
pub use batch::{VERIFY_BATCH, verify_many, verify_threads};

/// Errors about keys and signatures.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file could not be read or written.
    #[error(transparent)]
    Io(#[from] PathError),
    /// The private key file is not a hex ed25519 secret key.
    #[error("{path}: not an ed25519 private key (64 hex digits expected)")]
    BadKeyFile {
        /// The key file.
        path: PathBuf,
    },
    /// `GITMESH_SIGNING_KEY` is set but is not a hex ed25519 secret key (its value is never shown).
    #[error("{SIGNING_KEY_VAR}: not an ed25519 private key (64 hex digits expected)")]
    BadKeyVar,
    /// The key file named in `mesh.toml` (`[identity] key_file`) does not exist.
    #[error(
        "{path}: the key file named by [identity] key_file does not exist; restore the node's key there \
         (or remove key_file to use the key in the node root)"
    )]
    MissingKeyFile {
        /// The key file.
        path: PathBuf,
    },
    /// The private key file is readable by others.
    #[error(
        "{path}: private key is readable by group or others (mode {mode:o}); run `chmod 600` on it"
    )]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A public key is not 64 hex digits of a valid point.
    #[error("public key {key:?} of node {node} is not a valid ed25519 key")]
    BadPublicKey {
        /// The node offering it.
        node: String,
        /// The key as published.
        key: String,
    },
    /// One of this node's own rotation statements cannot be read.
    #[error("{path}: not a key rotation statement: {reason}")]
    BadRotation {
        /// The statement file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The signature does not verify.
    #[error("event {event_id}: signature does not verify with node {node}'s key")]
    BadSignature {
        /// The event.
        event_id: String,
        /// Its node.
        node: String,
    },
    /// The event could not be canonicalized for signing.
    #[error(transparent)]
    Event(#[from] EventError),
}

/// This node's signing key.
pub struct NodeKey {
    signing: SigningKey,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        write!(f, "NodeKey(public {})", self.public_hex())
    }
}

/// Where the private key lives when no secret supplies it.
pub fn key_path(paths: &NodePaths) -> PathBuf {
    paths.keys().join("node.ed25519")
}

/// Environment variable holding the node's secret key (64 hex digits), e.g. from a CI
/// secret; it wins over `[identity] key_file` and the key file in the node root.
pub const SIGNING_KEY_VAR: &str = "GITMESH_SIGNING_KEY";

/// Where a node's signing key came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KeySource {
    /// The `GITMESH_SIGNING_KEY` environment variable.
    Env,
    /// The file named by `[identity] key_file`.
    File {
        /// The file.
        path: PathBuf,
    },
    /// The node root's own key file (`state/event_mesh/keys/node.ed25519`).
    Root {
        /// The file.
        path: PathBuf,
    },
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Env => write!(f, "${SIGNING_KEY_VAR}"),
            KeySource::File { path } => write!(f, "{} ([identity] key_file)", path.display()),
            KeySource::Root { path } => write!(f, "{}", path.display()),
        }
    }
}

impl NodeKey {
    /// Loads the node's key, creating it (mode 0600) when absent; the bool says whether it was created.
    pub fn load_or_create(paths: &NodePaths) -> Result<(NodeKey, bool), KeyError> {
        let path = key_path(paths);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok((Self::parse(&path, &text)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((Self::create(&path)?, true)),
            Err(e) => Err(PathError {
                op: "read",
                path,
                source: e,
            }
            .into()),
        }
    }

    /// Loads the node's key; `None` when the node has none.
    pub fn load(paths: &NodePaths) -> Result<Option<NodeKey>, KeyError> {
        let path = key_path(paths);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(Self::parse(&path, &text)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(PathError {
                op: "read",
                path,
                source: e,
            }
            .into()),
        }
    }

    /// The node's key from the first source that has one: `GITMESH_SIGNING_KEY`, then
    /// `key_file` (`[identity] key_file`, which must exist when named), then the node
    /// root's key file. `None` when none has a key. The secret is never put in an error.
    pub fn resolve(
        paths: &NodePaths,
        key_file: Option<&std::path::Path>,
    ) -> Result<Option<(NodeKey, KeySource)>, KeyError> {
        if let Ok(text) = std::env::var(SIGNING_KEY_VAR)
            && !text.trim().is_empty()
        {
            let key = Self::from_hex(&text).ok_or(KeyError::BadKeyVar)?;
            // A secret this node rotated away from never signs again: the new key
            // was stored where the node reads it next (docs/operations.md).
            if !rotation::local::rotated_away(paths, &key.public_hex())? {
                return Ok(Some((key, KeySource::Env)));
            }
            tracing::warn!(
                "{SIGNING_KEY_VAR} holds a key this node rotated away from; using the new key \
                 stored in the node (update the secret: `gitmesh keys export --secret`)"
            );
        }
        if let Some(path) = key_file {
            return match std::fs::read_to_string(path) {
                Ok(text) => Ok(Some((
                    Self::parse(path, &text)?,
                    KeySource::File {
                        path: path.to_path_buf(),
                    },
                ))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Err(KeyError::MissingKeyFile {
                        path: path.to_path_buf(),
                    })
                }
                Err(e) => Err(PathError {
                    op: "read",
                    path: path.to_path_buf(),
                    source: e,
                }
                .into()),
            };
        }
        let path = key_path(paths);
        Ok(Self::load(paths)?.map(|k| (k, KeySource::Root { path })))
    }

    /// Like [`NodeKey::resolve`], creating the node root's key file when no source has a key.
    pub fn resolve_or_create(
        paths: &NodePaths,
        key_file: Option<&std::path::Path>,
    ) -> Result<(NodeKey, KeySource, bool), KeyError> {
        if let Some((key, source)) = Self::resolve(paths, key_file)? {
            return Ok((key, source, false));
        }
        let (key, created) = Self::load_or_create(paths)?;
        Ok((
            key,
            KeySource::Root {
                path: key_path(paths),
            },
            created,
        ))
    }

    /// A key from 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Option<NodeKey> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).ok()?;
        Some(NodeKey {
            signing: SigningKey::from_bytes(&bytes),
        })
    }

    /// A fresh random key (not stored anywhere yet).
    pub fn generate() -> NodeKey {
        let secret: [u8; 32] = rand::random();
        NodeKey {
            signing: SigningKey::from_bytes(&secret),
        }
    }

    /// The secret key as 64 hex digits: only for `keys export --secret`, never for a log.
    pub fn secret_hex(&self) -> String {
        hex::encode(self.signing.to_bytes())
    }

    /// Writes the secret to `path` (mode 0600, atomically, fsynced), replacing what is there.
    pub fn store(&self, path: &std::path::Path) -> Result<(), KeyError> {
        write_secret(path, &self.secret_hex())
    }

    fn parse(path: &std::path::Path, text: &str) -> Result<NodeKey, KeyError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .ctx("stat", path)?
                .permissions()
                .mode()
                & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::Permissions {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| KeyError::BadKeyFile {
            path: path.to_path_buf(),
        })?;
        Ok(NodeKey {
            signing: SigningKey::from_bytes(&bytes),
        })
    }

    fn create(path: &std::path::Path) -> Result<NodeKey, KeyError> {
        let key = Self::generate();
        key.store(path)?;
        Ok(key)
    }

    /// Hex of the public key, as published in the manifest.
    pub fn public_hex(&self) -> String {
        hex::encode(self.signing.verifying_key().as_bytes())
    }

    /// A key from its 32 secret bytes (deterministic keys for checks and tests).
    pub fn from_secret(secret: [u8; 32]) -> NodeKey {
        NodeKey {
            signing: SigningKey::from_bytes(&secret),
        }
    }

    /// Signs `msg` as it is and returns the hex signature (roster versions, leases, manifests).
    pub fn sign_bytes(&self, msg: &[u8]) -> String {
        hex::encode(self.signing.sign(msg).to_bytes())
    }

    /// Signs the canonical envelope (without `sig`) and returns the hex signature.
    pub fn sign(&self, env: &Envelope) -> Result<String, KeyError> {
        let msg = signing_bytes(env)?;
        Ok(hex::encode(self.signing.sign(&msg).to_bytes()))
    }
}

/// Writes a secret key file: its directory mode 0700, the file 0600, atomically and fsynced.
fn write_secret(path: &std::path::Path, secret_hex: &str) -> Result<(), KeyError> {
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    // A directory made here is private; an existing one (say /etc/gitmesh) is left as it is.
    if !dir.is_dir() {
        std::fs::create_dir_all(dir).ctx("create directory", dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .ctx("chmod", dir)?;
        }
    }
    let tmp = dir.join(".node.ed25519.tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).ctx("create", &tmp)?;
        f.write_all(secret_hex.as_bytes()).ctx("write", &tmp)?;
        f.sync_all().ctx("fsync", &tmp)?;
    }
    std::fs::rename(&tmp, path).ctx("rename", path)?;
    crate::fsutil::sync_dir(dir)?;
    Ok(())
}

/// The bytes a signature covers: RFC 8785 JSON of the envelope without `sig`.
pub fn signing_bytes(env: &Envelope) -> Result<Vec<u8>, EventError> {
    let mut unsigned = env.clone();
    unsigned.sig = None;
    serde_json_canonicalizer::to_vec(&unsigned).map_err(|e| EventError::Canonical(e.to_string()))
}

/// Parses a hex public key.
pub fn parse_public(node: &str, hex_key: &str) -> Result<VerifyingKey, KeyError> {
    let bad = || KeyError::BadPublicKey {
        node: node.to_string(),
        key: hex_key.to_string(),
    };
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_key, &mut bytes).map_err(|_| bad())?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| bad())
}

/// Checks an event's signature against a node's public key.
pub fn verify(env: &Envelope, public: &VerifyingKey) -> Result<(), KeyError> {
    let (msg, sig) = batch::prepare(env)?;
    public
        .verify(&msg, &sig)
        .map_err(|_| KeyError::BadSignature {
            event_id: env.event_id.clone(),
            node: env.node_id.clone(),
        })
}

/// Whether `sig_hex` is a valid signature of `msg` by `public` (rosters and leases).
pub fn verify_bytes(msg: &[u8], sig_hex: &str, public: &VerifyingKey) -> bool {
    let mut sig = [0u8; 64];
    if hex::decode_to_slice(sig_hex, &mut sig).is_err() {
        return false;
    }
    public.verify(msg, &Signature::from_bytes(&sig)).is_ok()
}

/// One pinned peer in `known_nodes.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownNode {
    /// The pinned (trusted) public key.
    pub public_key: String,
    /// When it was pinned.
    pub pinned_at: String,
    /// A different key the manifest now shows, not trusted until an operator accepts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_key: Option<String>,
    /// Keys the node rotated away from (verified statements), oldest first: its events
    /// below each `before_seq` stay verifiable with them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<rotation::PastKey>,
}

/// `known_nodes.json`: node id -> pinned key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownNodes {
    /// Pinned peers.
    pub nodes: BTreeMap<String, KnownNode>,
}

/// What to do with a key seen in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// First sight: pin it.
    New,
    /// Same as the pinned key.
    Trusted,
    /// Differs from the pinned key: keep the old one, raise an alert.
    Changed {
        /// The pinned key.
        pinned: String,
    },
}

impl KnownNodes {
    /// Loads the file (empty when absent).
    pub fn load(paths: &NodePaths) -> Result<KnownNodes, PathError> {
        Ok(read_json(&paths.state().join("known_nodes.json"))?.unwrap_or_default())
    }

    /// Saves the file atomically.
    pub fn save(&self, paths: &NodePaths) -> Result<(), PathError> {
        write_json(&paths.state().join("known_nodes.json"), self)
    }

    /// Classifies a manifest key against the pins (pure).
    pub fn classify(&self, node: &str, key: &str) -> Pin {
        match self.nodes.get(node) {
            None => Pin::New,
            Some(k) if k.public_key == key => Pin::Trusted,
            Some(k) => Pin::Changed {
                pinned: k.public_key.clone(),
            },
        }
    }

    /// Records a manifest key: pins a new one, notes a changed one as offered. Returns the decision.
    pub fn observe(&mut self, node: &str, key: &str, now: &str) -> Pin {
        let pin = self.classify(node, key);
        match &pin {
            Pin::New => {
                self.nodes.insert(
                    node.to_string(),
                    KnownNode {
                        public_key: key.to_string(),
                        pinned_at: now.to_string(),
                        offered_key: None,
                        history: Vec::new(),
                    },
                );
            }
            Pin::Trusted => {
                if let Some(k) = self.nodes.get_mut(node) {
                    k.offered_key = None;
                }
            }
            Pin::Changed { .. } => {
                if let Some(k) = self.nodes.get_mut(node) {
                    k.offered_key = Some(key.to_string());
                }
            }
        }
        pin
    }

    /// Operator acceptance of a node's offered key; false when nothing was offered.
    pub fn trust_offered(&mut self, node: &str, now: &str) -> bool {
        match self.nodes.get_mut(node) {
            Some(k) => match k.offered_key.take() {
                Some(new) => {
                    k.public_key = new;
                    k.pinned_at = now.to_string();
                    true
                }
                None => false,
            },
            None => false,
        }
    }

    /// The node's pinned key with the keys it rotated away from, if pinned.
    pub fn history(&self, node: &str) -> Option<rotation::KeyHistory> {
        self.nodes.get(node).map(|k| rotation::KeyHistory {
            past: k.history.clone(),
            current: k.public_key.clone(),
        })
    }

    /// Pins `h` for `node` after verified rotations: its current key becomes the pin (an
    /// offer of that key is settled), its earlier keys the history.
    pub fn follow(&mut self, node: &str, h: rotation::KeyHistory, now: &str) {
        let entry = self
            .nodes
            .entry(node.to_string())
            .or_insert_with(|| KnownNode {
                public_key: h.current.clone(),
                pinned_at: now.to_string(),
                offered_key: None,
                history: Vec::new(),
            });
        if entry.public_key != h.current {
            entry.pinned_at = now.to_string();
        }
        if entry.offered_key.as_deref() == Some(h.current.as_str()) {
            entry.offered_key = None;
        }
        entry.public_key = h.current;
        entry.history = h.past;
    }

    /// The key to verify a node's events with, if pinned.
    pub fn trusted_key(&self, node: &str) -> Option<&str> {
        self.nodes.get(node).map(|k| k.public_key.as_str())
    }

    /// Nodes whose manifest offers a key that differs from the pinned one.
    pub fn alerts(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, k)| k.offered_key.is_some())
            .map(|(n, _)| n.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests;

pub mod rotation;
