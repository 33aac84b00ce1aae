//! Key rotation statements (docs/roster.md, "Rotating a node's key"): a node's move from
//! one signing key to the next, signed by both, and the pure rules by which a peer
//! follows a node's keys from the key it pinned.
//!
//! A statement lives at `<dir>/keys/<node>/<from_seq:012>-<new key prefix>.json`. The
//! old key's signature proves the node (not a forger) asked for the change; the new
//! key's signature proves the node holds the new secret. Events with a seq below
//! `from_seq` stay verifiable with the old key, so a node joining later checks the
//! whole history.

use super::{NodeKey, parse_public, verify_bytes};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

/// The value of `kind`: keeps a statement's signature from meaning anything else.
pub const KIND: &str = "gitmesh.key_rotation.v1";
/// Largest statement file read from the ledger.
pub const MAX_STATEMENT_BYTES: usize = 4096;
/// Most statements read per node (more are refused: a node rotates rarely).
pub const MAX_STATEMENTS_PER_NODE: usize = 64;

/// One signed rotation statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// Always [`KIND`].
    pub kind: String,
    /// The node whose key changes.
    pub node_id: String,
    /// Hex of the key that signed the node's events so far.
    pub old_public_key: String,
    /// Hex of the key that signs from `from_seq` on.
    pub new_public_key: String,
    /// The first seq the new key signs; lower seqs stay under the old key.
    pub from_seq: u64,
    /// When the rotation was made (RFC 3339 UTC; informative).
    pub rotated_at: String,
    /// Signature by the old key over the canonical JSON without the two signatures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_sig: Option<String>,
    /// Signature by the new key over the same bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_sig: Option<String>,
}

/// Why a statement is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotationRefusal {
    /// Not a statement: too large, not JSON, unknown fields, duplicate keys.
    #[error("not a key rotation statement: {0}")]
    Malformed(String),
    /// It speaks for another node than the directory it sits in.
    #[error("statement for node {found:?} found under node {expected:?}")]
    WrongNode {
        /// The directory's node.
        expected: String,
        /// The statement's `node_id`.
        found: String,
    },
    /// A key is not a valid ed25519 key, or both keys are the same.
    #[error("{0}")]
    BadKey(String),
    /// `from_seq` is 0.
    #[error("from_seq must be at least 1")]
    BadSeq,
    /// The old key's signature is missing or does not verify.
    #[error("not signed by the old key {0} it names")]
    OldSignature(String),
    /// The new key's signature is missing or does not verify.
    #[error("not signed by the new key {0} it names")]
    NewSignature(String),
    /// The old key is not the key this node trusts for the node now.
    #[error(
        "signed away from key {claimed}, but the key trusted for node {node:?} is {trusted}: \
         not a rotation by the node (forged or replayed); the key does not change"
    )]
    NotPinnedKey {
        /// The node.
        node: String,
        /// The key it names as old.
        claimed: String,
        /// The key trusted now.
        trusted: String,
    },
    /// It starts below the seq the trusted key took over at (a replay of an old rotation).
    #[error("from_seq {from_seq} is below {floor}, where the trusted key took over")]
    SeqBehind {
        /// Its `from_seq`.
        from_seq: u64,
        /// Where the current key started.
        floor: u64,
    },
}

impl Rotation {
    /// A statement moving `node` from `old` to `new` from `from_seq` on, signed by both.
    pub fn new(node: &str, old: &NodeKey, new: &NodeKey, from_seq: u64, now: &str) -> Rotation {
        let mut r = Rotation {
            kind: KIND.to_string(),
            node_id: node.to_string(),
            old_public_key: old.public_hex(),
            new_public_key: new.public_hex(),
            from_seq,
            rotated_at: now.to_string(),
            old_sig: None,
            new_sig: None,
        };
        let msg = r.signing_bytes();
        r.old_sig = Some(old.sign_bytes(&msg));
        r.new_sig = Some(new.sign_bytes(&msg));
        r
    }

    /// The bytes both signatures cover: RFC 8785 JSON without `old_sig` and `new_sig`.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut unsigned = self.clone();
        unsigned.old_sig = None;
        unsigned.new_sig = None;
        // Strings and an integer always canonicalize.
        serde_json_canonicalizer::to_vec(&unsigned).unwrap_or_default()
    }

    /// The file content: canonical JSON and a newline.
    pub fn to_file(&self) -> Vec<u8> {
        let mut v = serde_json_canonicalizer::to_vec(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// The file name inside `<dir>/keys/<node>/`.
    pub fn file_name(&self) -> String {
        let prefix: String = self.new_public_key.chars().take(16).collect();
        format!("{:012}-{prefix}.json", self.from_seq)
    }

    /// Parses a statement file of node `node` (size, duplicate keys, fields checked).
    pub fn parse(node: &str, bytes: &[u8]) -> Result<Rotation, RotationRefusal> {
        let r = Self::parse_any(bytes)?;
        if r.node_id != node {
            return Err(RotationRefusal::WrongNode {
                expected: node.to_string(),
                found: r.node_id,
            });
        }
        Ok(r)
    }

    /// Parses a statement of whichever node it names (this node's own files).
    pub fn parse_any(bytes: &[u8]) -> Result<Rotation, RotationRefusal> {
        if bytes.len() > MAX_STATEMENT_BYTES {
            return Err(RotationRefusal::Malformed(format!(
                "{} bytes; the cap is {MAX_STATEMENT_BYTES}",
                bytes.len()
            )));
        }
        crate::event::strict::find_duplicate_key(bytes).map_err(RotationRefusal::Malformed)?;
        let r: Rotation =
            serde_json::from_slice(bytes).map_err(|e| RotationRefusal::Malformed(e.to_string()))?;
        if r.kind != KIND {
            return Err(RotationRefusal::Malformed(format!(
                "kind {:?} is not {KIND:?}",
                r.kind
            )));
        }
        Ok(r)
    }

    /// Checks the statement on its own (pure): valid distinct keys, a seq, and both
    /// signatures over the same bytes.
    pub fn verify(&self) -> Result<(), RotationRefusal> {
        let bad = |e: super::KeyError| RotationRefusal::BadKey(e.to_string());
        let old = parse_public(&self.node_id, &self.old_public_key).map_err(bad)?;
        let new = parse_public(&self.node_id, &self.new_public_key).map_err(bad)?;
        if self.old_public_key == self.new_public_key {
            return Err(RotationRefusal::BadKey(
                "the old and the new key are the same".into(),
            ));
        }
        if self.from_seq == 0 {
            return Err(RotationRefusal::BadSeq);
        }
        let msg = self.signing_bytes();
        let signed = |sig: &Option<String>, key: &VerifyingKey| {
            sig.as_deref().is_some_and(|s| verify_bytes(&msg, s, key))
        };
        if !signed(&self.old_sig, &old) {
            return Err(RotationRefusal::OldSignature(self.old_public_key.clone()));
        }
        if !signed(&self.new_sig, &new) {
            return Err(RotationRefusal::NewSignature(self.new_public_key.clone()));
        }
        Ok(())
    }
}

/// A key a node signed with before a rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastKey {
    /// Hex of the key.
    pub public_key: String,
    /// The first seq it no longer signs (the `from_seq` of the rotation away from it).
    pub before_seq: u64,
}

/// A node's keys over its history (hex): earlier keys, oldest first, then the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHistory {
    /// Keys rotated away from, oldest first, with ascending `before_seq`.
    pub past: Vec<PastKey>,
    /// The key that signs from the last `before_seq` on.
    pub current: String,
}

impl KeyHistory {
    /// A node that never rotated.
    pub fn single(current: &str) -> KeyHistory {
        KeyHistory {
            past: Vec::new(),
            current: current.to_string(),
        }
    }

    /// The seq from which the current key signs (1 when it always did).
    pub fn current_from(&self) -> u64 {
        self.past.last().map_or(1, |p| p.before_seq)
    }

    /// Whether `r` is a rotation this history already went through.
    pub fn contains(&self, r: &Rotation) -> bool {
        self.past.iter().enumerate().any(|(i, p)| {
            let next = self
                .past
                .get(i + 1)
                .map_or(self.current.as_str(), |n| n.public_key.as_str());
            p.public_key == r.old_public_key
                && p.before_seq == r.from_seq
                && next == r.new_public_key
        })
    }

    /// Whether `key` signed any part of this history.
    pub fn knows(&self, key: &str) -> bool {
        self.current == key || self.past.iter().any(|p| p.public_key == key)
    }
}

/// What following a node's statements from its trusted keys gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Followed {
    /// The history after every statement that applies.
    pub history: KeyHistory,
    /// Indexes of the statements applied now, in the order applied.
    pub applied: Vec<usize>,
    /// Indexes of the statements refused, with why (already applied ones are neither).
    pub refused: Vec<(usize, RotationRefusal)>,
}

/// Follows `statements` of `node` from the trusted `history` (pure): a statement applies
/// when it verifies on its own, its old key is the current key, and it starts no lower
/// than the current key did. Applied statements may chain (each one's new key is the
/// next one's old key), in any file order. A statement already in the history is
/// skipped; every other one is refused with its reason, and the history stays.
pub fn follow(node: &str, history: &KeyHistory, statements: &[Rotation]) -> Followed {
    let mut h = history.clone();
    let mut applied = Vec::new();
    let mut checked: Vec<Option<Result<(), RotationRefusal>>> = vec![None; statements.len()];
    for (i, s) in statements.iter().enumerate() {
        if h.contains(s) {
            checked[i] = Some(Ok(()));
        }
    }
    // Each round applies at most one statement, so the rounds are bounded by their count.
    for _ in 0..statements.len() {
        let next = statements.iter().enumerate().find(|(i, s)| {
            checked[*i].is_none()
                && s.old_public_key == h.current
                && s.from_seq >= h.current_from()
                && s.verify().is_ok()
        });
        let Some((i, s)) = next else { break };
        h.past.push(PastKey {
            public_key: s.old_public_key.clone(),
            before_seq: s.from_seq,
        });
        h.current = s.new_public_key.clone();
        checked[i] = Some(Ok(()));
        applied.push(i);
    }
    let refused = statements
        .iter()
        .enumerate()
        .filter(|(i, _)| checked[*i].is_none())
        .map(|(i, s)| {
            let why = match s.verify() {
                Err(e) => e,
                Ok(()) if s.old_public_key != h.current => RotationRefusal::NotPinnedKey {
                    node: node.to_string(),
                    claimed: s.old_public_key.clone(),
                    trusted: h.current.clone(),
                },
                Ok(()) => RotationRefusal::SeqBehind {
                    from_seq: s.from_seq,
                    floor: h.current_from(),
                },
            };
            (i, why)
        })
        .collect();
    Followed {
        history: h,
        applied,
        refused,
    }
}

/// The key a node's history starts from when nothing is pinned yet (pure): walks back
/// from `latest` (the key its signed manifest or the roster names) through statements
/// that verify and end at it. Trust on first use then covers the whole chain.
pub fn origin<'a>(latest: &'a str, statements: &'a [Rotation]) -> &'a str {
    let mut key = latest;
    for _ in 0..statements.len() {
        let back = statements
            .iter()
            .find(|s| s.new_public_key == key && s.verify().is_ok());
        match back {
            Some(s) => key = &s.old_public_key,
            None => break,
        }
    }
    key
}

/// Verifying keys of a history, chosen per event seq.
#[derive(Debug, Clone)]
pub struct KeyChain {
    past: Vec<(u64, VerifyingKey)>,
    current: VerifyingKey,
}

impl KeyChain {
    /// One key for every seq.
    pub fn single(key: VerifyingKey) -> KeyChain {
        KeyChain {
            past: Vec::new(),
            current: key,
        }
    }

    /// The verifying keys of `h`; an error names the first key that is not valid.
    pub fn from_history(node: &str, h: &KeyHistory) -> Result<KeyChain, super::KeyError> {
        let mut past = Vec::with_capacity(h.past.len());
        for p in &h.past {
            past.push((p.before_seq, parse_public(node, &p.public_key)?));
        }
        Ok(KeyChain {
            past,
            current: parse_public(node, &h.current)?,
        })
    }

    /// The key that signs the event with `seq`.
    pub fn for_seq(&self, seq: u64) -> &VerifyingKey {
        self.past
            .iter()
            .find(|(before, _)| seq < *before)
            .map_or(&self.current, |(_, k)| k)
    }

    /// The key that signs from now on.
    pub fn current(&self) -> &VerifyingKey {
        &self.current
    }
}

pub mod local;

#[cfg(test)]
mod tests;
