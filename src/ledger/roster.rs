//! The signed mesh roster (`<dir>/roster/<version>.json`, docs/roster.md): which nodes
//! belong to the mesh, their keys and their roles.
//!
//! Each version is signed by an admin of the version before it (threshold 1) and
//! names the BLAKE3 hash of that version, so a reader that trusts version N can
//! check N+1 alone. The checks are pure ([`verify_genesis`], [`verify_update`],
//! [`standing`]); the node keeps the last version it trusted under `state/`, so a
//! ledger rolled back to an older roster is refused.

use crate::config::TrustMode;
use crate::fsutil::{PathError, read_json, write_json};
use crate::keys::{self, NodeKey};
use crate::paths::NodePaths;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Largest roster file read from the ledger (checked from the object header).
pub const MAX_ROSTER_BYTES: usize = 1 << 20;
/// Most nodes a roster may list.
pub const MAX_NODES: usize = 10_000;
/// Most roster versions adopted in one pass (the rest wait for the next one).
pub const MAX_VERSIONS_PER_PASS: u64 = 1000;
/// Default mesh-wide cap on a lease's length, in seconds.
pub const DEFAULT_MAX_LEASE_TTL_SEC: u64 = 3600;

/// What a node may do in the mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Signs new roster versions.
    Admin,
    /// May take the leader lease (and so issue scaling commands).
    Leader,
    /// May publish schemas and upcasters.
    Schema,
    /// May publish events.
    Member,
}

impl Role {
    /// The string form used in files and flags.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Leader => "leader",
            Role::Schema => "schema",
            Role::Member => "member",
        }
    }

    /// Parses a role name (`admin`, `leader`, `schema`, `member`).
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "leader" => Some(Role::Leader),
            "schema" => Some(Role::Schema),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

/// One node on the roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterNode {
    /// Hex ed25519 public key (as in manifests).
    pub public_key: String,
    /// Its roles.
    pub roles: BTreeSet<Role>,
    /// A retired node keeps its entry but is trusted for nothing.
    #[serde(default)]
    pub retired: bool,
}

/// One signed version of the roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roster {
    /// 1 for the first version, then +1 each change.
    pub version: u64,
    /// BLAKE3 (hex) of the previous version's file content in canonical form; `""` for version 1.
    pub prev: String,
    /// When this version was signed (RFC 3339 UTC; informative).
    pub issued_at: String,
    /// Mesh-wide cap on a lease's length in seconds.
    pub max_lease_ttl_sec: u64,
    /// The nodes, by id.
    pub nodes: BTreeMap<String, RosterNode>,
    /// The admin who signed this version (an admin of the previous version).
    pub signed_by: String,
    /// Hex ed25519 signature over the canonical JSON of this version without `sig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

/// Why a roster version is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosterRefusal {
    /// Not parseable as a roster.
    #[error("not a roster: {0}")]
    Malformed(String),
    /// Larger than [`MAX_ROSTER_BYTES`] or listing more than [`MAX_NODES`] nodes.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The version does not follow the trusted one.
    #[error("version {found} does not follow the trusted version {trusted}")]
    NotNext {
        /// The trusted version.
        trusted: u64,
        /// The version found.
        found: u64,
    },
    /// `prev` does not name the trusted version.
    #[error("prev {found:?} is not the hash of trusted version {trusted} ({expected})")]
    PrevMismatch {
        /// The trusted version.
        trusted: u64,
        /// Its hash.
        expected: String,
        /// What `prev` says.
        found: String,
    },
    /// The signer is not an active admin of the trusted version (or of itself, for version 1).
    #[error("signed by {signer:?}, who is not an admin of the trusted roster")]
    SignerNotAdmin {
        /// The claimed signer.
        signer: String,
    },
    /// The signature does not verify with the signer's key in the trusted version.
    #[error("signature of {signer:?} does not verify")]
    BadSignature {
        /// The claimed signer.
        signer: String,
    },
    /// The version would leave the mesh without an active admin.
    #[error("no active admin left")]
    NoAdmin,
    /// A listed key is not a valid ed25519 key.
    #[error("node {node:?}: public key is not a valid ed25519 key")]
    BadKey {
        /// The node.
        node: String,
    },
    /// A listed node id is not a valid node id.
    #[error("node id {node:?}: {reason}")]
    BadNodeId {
        /// The node id.
        node: String,
        /// Why.
        reason: String,
    },
    /// `max_lease_ttl_sec` is 0 or more than a day.
    #[error("max_lease_ttl_sec {0} is outside 1..=86400")]
    BadTtl(u64),
}

impl Roster {
    /// The bytes a signature covers: RFC 8785 JSON of the version without `sig`.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut unsigned = self.clone();
        unsigned.sig = None;
        // A struct of strings, integers and maps always canonicalizes.
        serde_json_canonicalizer::to_vec(&unsigned).unwrap_or_default()
    }

    /// BLAKE3 (hex) of the canonical JSON of the whole version, signature included.
    pub fn hash(&self) -> String {
        let bytes = serde_json_canonicalizer::to_vec(self).unwrap_or_default();
        blake3::hash(&bytes).to_hex().to_string()
    }

    /// Version 1: `node` with `public_key` as admin, leader, schema publisher and member.
    pub fn genesis(node: &str, key: &NodeKey, now: &str) -> Roster {
        let mut nodes = BTreeMap::new();
        nodes.insert(
            node.to_string(),
            RosterNode {
                public_key: key.public_hex(),
                roles: [Role::Admin, Role::Leader, Role::Schema, Role::Member].into(),
                retired: false,
            },
        );
        let mut r = Roster {
            version: 1,
            prev: String::new(),
            issued_at: now.to_string(),
            max_lease_ttl_sec: DEFAULT_MAX_LEASE_TTL_SEC,
            nodes,
            signed_by: node.to_string(),
            sig: None,
        };
        r.sign(node, key);
        r
    }

    /// The next version, unsigned: same nodes, `version + 1`, `prev` = this version's hash.
    pub fn successor(&self, now: &str) -> Option<Roster> {
        Some(Roster {
            version: self.version.checked_add(1)?,
            prev: self.hash(),
            issued_at: now.to_string(),
            max_lease_ttl_sec: self.max_lease_ttl_sec,
            nodes: self.nodes.clone(),
            signed_by: String::new(),
            sig: None,
        })
    }

    /// Signs this version as `signer`.
    pub fn sign(&mut self, signer: &str, key: &NodeKey) {
        self.signed_by = signer.to_string();
        self.sig = None;
        self.sig = Some(key.sign_bytes(&self.signing_bytes()));
    }

    /// Whether `node` is on the roster, not retired, with `role`.
    pub fn has_role(&self, node: &str, role: Role) -> bool {
        self.nodes
            .get(node)
            .is_some_and(|n| !n.retired && n.roles.contains(&role))
    }

    /// The pretty JSON file content of this version.
    pub fn to_file(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Parses a roster file (size and duplicate keys checked).
    pub fn parse(bytes: &[u8]) -> Result<Roster, RosterRefusal> {
        if bytes.len() > MAX_ROSTER_BYTES {
            return Err(RosterRefusal::TooLarge(format!(
                "{} bytes; the cap is {MAX_ROSTER_BYTES}",
                bytes.len()
            )));
        }
        crate::event::strict::find_duplicate_key(bytes).map_err(RosterRefusal::Malformed)?;
        serde_json::from_slice(bytes).map_err(|e| RosterRefusal::Malformed(e.to_string()))
    }
}

/// Checks what any version must satisfy on its own: ids, keys, size, an admin left.
fn check_body(r: &Roster) -> Result<(), RosterRefusal> {
    if r.nodes.len() > MAX_NODES {
        return Err(RosterRefusal::TooLarge(format!(
            "{} nodes; the cap is {MAX_NODES}",
            r.nodes.len()
        )));
    }
    if r.max_lease_ttl_sec == 0 || r.max_lease_ttl_sec > 86_400 {
        return Err(RosterRefusal::BadTtl(r.max_lease_ttl_sec));
    }
    for (id, n) in &r.nodes {
        crate::event::validate_node_id(id).map_err(|e| RosterRefusal::BadNodeId {
            node: id.clone(),
            reason: e.to_string(),
        })?;
        keys::parse_public(id, &n.public_key)
            .map_err(|_| RosterRefusal::BadKey { node: id.clone() })?;
    }
    if !r.nodes.keys().any(|id| r.has_role(id, Role::Admin)) {
        return Err(RosterRefusal::NoAdmin);
    }
    Ok(())
}

/// Checks `r`'s signature with the key `signer_of` gives for its `signed_by` (an admin).
fn check_signature(r: &Roster, signer_of: &Roster) -> Result<(), RosterRefusal> {
    let signer = &r.signed_by;
    if !signer_of.has_role(signer, Role::Admin) {
        return Err(RosterRefusal::SignerNotAdmin {
            signer: signer.clone(),
        });
    }
    let bad = || RosterRefusal::BadSignature {
        signer: signer.clone(),
    };
    let key = signer_of
        .nodes
        .get(signer)
        .and_then(|n| keys::parse_public(signer, &n.public_key).ok())
        .ok_or_else(bad)?;
    let sig = r.sig.as_deref().ok_or_else(bad)?;
    if keys::verify_bytes(&r.signing_bytes(), sig, &key) {
        Ok(())
    } else {
        Err(bad())
    }
}

/// Checks a first version seen with nothing trusted yet: version 1, self-signed by one of its admins.
pub fn verify_genesis(r: &Roster) -> Result<(), RosterRefusal> {
    if r.version != 1 || !r.prev.is_empty() {
        return Err(RosterRefusal::NotNext {
            trusted: 0,
            found: r.version,
        });
    }
    check_body(r)?;
    check_signature(r, r)
}

/// Checks `next` against the trusted version `prev`: version + 1, `prev` hash,
/// signed by an active admin of `prev` with the key `prev` lists (so a rotated
/// admin key is signed by the old one).
pub fn verify_update(prev: &Roster, next: &Roster) -> Result<(), RosterRefusal> {
    if prev.version.checked_add(1) != Some(next.version) {
        return Err(RosterRefusal::NotNext {
            trusted: prev.version,
            found: next.version,
        });
    }
    let expected = prev.hash();
    if next.prev != expected {
        return Err(RosterRefusal::PrevMismatch {
            trusted: prev.version,
            expected,
            found: next.prev.clone(),
        });
    }
    check_body(next)?;
    check_signature(next, prev)
}

/// What the trusted roster (and the trust mode) says of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Trusted with this key (from the roster, or pinned in open mode).
    Trusted(Box<VerifyingKey>),
    /// Not on the roster (roster mode).
    NotOnRoster,
    /// On the roster but retired.
    Retired,
    /// On the roster without the role asked for.
    MissingRole(Role),
    /// No roster entry applies and no key is pinned (open mode or no roster yet).
    Unknown,
}

impl Standing {
    /// Why a node is not trusted, for messages; `None` when it is.
    pub fn refusal(&self, node: &str) -> Option<String> {
        match self {
            Standing::Trusted(_) => None,
            Standing::NotOnRoster => Some(format!("node {node:?} is not on the mesh roster")),
            Standing::Retired => Some(format!("node {node:?} is retired on the mesh roster")),
            Standing::MissingRole(r) => Some(format!(
                "node {node:?} does not have the {} role on the mesh roster",
                r.as_str()
            )),
            Standing::Unknown => Some(format!("node {node:?} has no known key")),
        }
    }
}

/// Decides how far `node` is trusted (pure): a roster entry wins; a node absent from
/// the roster is refused in roster mode and falls back to its `pinned` key otherwise.
pub fn standing(
    roster: Option<&Roster>,
    mode: TrustMode,
    node: &str,
    role: Option<Role>,
    pinned: Option<&str>,
) -> Standing {
    if let Some(r) = roster {
        match r.nodes.get(node) {
            Some(n) if n.retired => return Standing::Retired,
            Some(n) => {
                if let Some(role) = role
                    && !n.roles.contains(&role)
                {
                    return Standing::MissingRole(role);
                }
                return match keys::parse_public(node, &n.public_key) {
                    Ok(k) => Standing::Trusted(Box::new(k)),
                    Err(_) => Standing::Unknown,
                };
            }
            None if mode == TrustMode::Roster => return Standing::NotOnRoster,
            None => {}
        }
    }
    match pinned.and_then(|p| keys::parse_public(node, p).ok()) {
        Some(k) => Standing::Trusted(Box::new(k)),
        None => Standing::Unknown,
    }
}

/// The node's trusted roster file (`state/roster.json`).
pub fn trusted_path(paths: &NodePaths) -> PathBuf {
    paths.state().join("roster.json")
}

/// The roster versions signed here and waiting for the next sync to push them.
pub fn staged_path(paths: &NodePaths) -> PathBuf {
    paths.state().join("roster_staged.json")
}

/// The last roster version this node trusted, if any.
pub fn load_trusted(paths: &NodePaths) -> Result<Option<Roster>, PathError> {
    read_json(&trusted_path(paths))
}

/// The staged roster versions, oldest first (empty when none).
pub fn load_staged(paths: &NodePaths) -> Result<Vec<Roster>, PathError> {
    Ok(read_json(&staged_path(paths))?.unwrap_or_default())
}

/// Stages `r` after the versions already staged, for the next sync to push.
pub fn stage(paths: &NodePaths, r: &Roster) -> Result<(), PathError> {
    let mut all = load_staged(paths)?;
    all.push(r.clone());
    write_json(&staged_path(paths), &all)
}

/// Keeps only the staged versions above `version` (the ledger holds the rest, or
/// another version took their place and the later ones no longer chain).
pub fn clear_staged_through(paths: &NodePaths, version: u64) -> Result<(), PathError> {
    let all = load_staged(paths)?;
    let keep: Vec<Roster> = all
        .iter()
        .filter(|r| r.version > version)
        .cloned()
        .collect();
    if keep.len() == all.len() {
        return Ok(());
    }
    write_json(&staged_path(paths), &keep)
}

/// The roster the next version is based on: the newest staged one, else the trusted one.
pub fn newest(paths: &NodePaths) -> Result<Option<Roster>, PathError> {
    Ok(match load_staged(paths)?.pop() {
        Some(r) => Some(r),
        None => load_trusted(paths)?,
    })
}

/// One refused roster version or lease, kept for `mesh-status` until a newer one replaces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorityAlert {
    /// `roster` or `lease`.
    pub kind: String,
    /// The ledger path of the refused file.
    pub path: String,
    /// The ledger commit it was read from.
    pub commit: String,
    /// Why it was refused.
    pub detail: String,
    /// When it was first seen.
    pub seen_at: String,
}

/// Most authority alerts kept (oldest dropped).
pub const MAX_ALERTS: usize = 50;

/// `state/authority_alerts.json`: refused roster versions and leases.
pub fn alerts_path(paths: &NodePaths) -> PathBuf {
    paths.state().join("authority_alerts.json")
}

/// The kept authority alerts.
pub fn load_alerts(paths: &NodePaths) -> Result<Vec<AuthorityAlert>, PathError> {
    Ok(read_json(&alerts_path(paths))?.unwrap_or_default())
}

/// Records an alert (once per path, commit and detail; the newest [`MAX_ALERTS`] kept).
pub fn raise(
    paths: &NodePaths,
    kind: &str,
    path: &str,
    commit: &str,
    detail: &str,
) -> Result<(), PathError> {
    tracing::warn!(kind, file = path, commit, detail, "refused ledger input");
    let mut all = load_alerts(paths)?;
    if all
        .iter()
        .any(|a| a.kind == kind && a.path == path && a.detail == detail)
    {
        return Ok(());
    }
    all.push(AuthorityAlert {
        kind: kind.to_string(),
        path: path.to_string(),
        commit: commit.to_string(),
        detail: detail.to_string(),
        seen_at: crate::event::now_timestamp(),
    });
    let excess = all.len().saturating_sub(MAX_ALERTS);
    all.drain(..excess);
    write_json(&alerts_path(paths), &all)
}

mod ledger_io;
pub use ledger_io::{observe, read_bounded};

#[cfg(test)]
mod tests;
