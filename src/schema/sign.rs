//! Publisher signatures on schema files (docs/schemas.md, "Signed schemas").
//!
//! Beside each ledger schema `v<N>.json` sits `v<N>.sig.json`: the signer's node id and its
//! ed25519 signature over the canonical JSON of the signature record, which names the
//! schema's key and the BLAKE3 hash of the schema document in RFC 8785 canonical form. The
//! upcaster lives in the schema document, so one signature covers both. [`verify`] is the
//! pure decision; who counts as a publisher is the caller's (the roster's) answer.

use super::registry::SchemaKey;
use crate::keys::{self, NodeKey};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

/// The `format` every signature record carries (a new layout gets a new name).
pub const SIG_FORMAT: &str = "gitmesh-schema-sig/1";
/// Largest signature file read from the ledger (checked from the object header).
pub const MAX_SIG_BYTES: u64 = 4096;

/// The signature file name of version `version`: `v<N>.sig.json`.
pub fn sig_file_name(version: u32) -> String {
    format!("v{version}.sig.json")
}

/// True for a name shaped like a signature file (`v<N>.sig.json`), which is not a schema.
pub fn is_sig_file_name(name: &str) -> bool {
    name.strip_suffix(".sig.json")
        .and_then(|v| super::registry::parse_version_file(&format!("{v}.json")))
        .is_some()
}

/// One signature record, `v<N>.sig.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaSig {
    /// Always [`SIG_FORMAT`].
    pub format: String,
    /// The schema's topic.
    pub topic: String,
    /// The schema's event type.
    pub event_type: String,
    /// The schema's version.
    pub version: u32,
    /// BLAKE3 (hex) of the schema document in canonical JSON.
    pub schema_blake3: String,
    /// The node that signed.
    pub signed_by: String,
    /// Hex ed25519 signature over the canonical JSON of this record without `sig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

/// Why a schema file from the ledger is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigRefusal {
    /// No `v<N>.sig.json` beside the schema.
    #[error(
        "unsigned: no publisher signature beside it (a node with the schema role signs it with `gitmesh schema publish`)"
    )]
    Unsigned,
    /// The signature file is larger than [`MAX_SIG_BYTES`].
    #[error("signature file of {0} bytes; the cap is {MAX_SIG_BYTES}")]
    TooLarge(u64),
    /// The signature file was not read: over [`MAX_SIG_BYTES`] by its object header, or not a file.
    #[error("signature file not read: {0}")]
    Unread(String),
    /// The signature file is not a signature record.
    #[error("signature file is malformed: {0}")]
    Malformed(String),
    /// The schema document itself cannot be hashed (not JSON, duplicate keys).
    #[error("schema is not canonical JSON: {0}")]
    BadSchema(String),
    /// The record signs another schema key.
    #[error("the signature of {signer:?} is for {signed}, not for this file")]
    WrongTarget {
        /// Who signed.
        signer: String,
        /// The key the record names.
        signed: String,
    },
    /// The schema's bytes are not the ones signed.
    #[error("the schema is not the one {signer:?} signed (its hash differs)")]
    DigestMismatch {
        /// Who signed.
        signer: String,
    },
    /// The signer may not publish schemas.
    #[error("signed by {signer:?}, who may not publish schemas (schema role): {reason}")]
    NotPublisher {
        /// Who signed.
        signer: String,
        /// What the roster (or the pins) say of it.
        reason: String,
    },
    /// The signature does not verify with the signer's key.
    #[error("the signature of {signer:?} does not verify with its key")]
    BadSignature {
        /// Who signed.
        signer: String,
    },
}

/// BLAKE3 (hex) of a schema document in canonical JSON (duplicate keys refused).
pub fn digest(text: &[u8]) -> Result<String, String> {
    crate::event::strict::find_duplicate_key(text)?;
    let doc: serde_json::Value = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    let canon = serde_json_canonicalizer::to_vec(&doc).map_err(|e| e.to_string())?;
    Ok(blake3::hash(&canon).to_hex().to_string())
}

impl SchemaSig {
    /// Signs the schema `text` of `key` as `signer` with `key_pair`.
    pub fn create(
        key: &SchemaKey,
        text: &[u8],
        signer: &str,
        key_pair: &NodeKey,
    ) -> Result<SchemaSig, String> {
        let mut s = SchemaSig {
            format: SIG_FORMAT.into(),
            topic: key.topic.clone(),
            event_type: key.event_type.clone(),
            version: key.version,
            schema_blake3: digest(text)?,
            signed_by: signer.into(),
            sig: None,
        };
        s.sig = Some(key_pair.sign_bytes(&s.signing_bytes()));
        Ok(s)
    }

    /// The bytes the signature covers: RFC 8785 JSON of the record without `sig`.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut unsigned = self.clone();
        unsigned.sig = None;
        // Strings and an integer always canonicalize.
        serde_json_canonicalizer::to_vec(&unsigned).unwrap_or_default()
    }

    /// The file content of this record.
    pub fn to_file(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Parses a signature file (size, duplicate keys and fields checked).
    pub fn parse(bytes: &[u8]) -> Result<SchemaSig, SigRefusal> {
        if bytes.len() as u64 > MAX_SIG_BYTES {
            return Err(SigRefusal::TooLarge(bytes.len() as u64));
        }
        crate::event::strict::find_duplicate_key(bytes).map_err(SigRefusal::Malformed)?;
        let s: SchemaSig =
            serde_json::from_slice(bytes).map_err(|e| SigRefusal::Malformed(e.to_string()))?;
        if s.format != SIG_FORMAT {
            return Err(SigRefusal::Malformed(format!(
                "format {:?}, expected {SIG_FORMAT:?}",
                s.format
            )));
        }
        Ok(s)
    }
}

/// Decides whether the schema `text` at `key` is trusted (pure). `sig` is the signature
/// file's bytes (`None`: absent); `publisher` gives the key of a node allowed to publish
/// schemas, or why it is not. Returns the signer.
pub fn verify(
    key: &SchemaKey,
    text: &[u8],
    sig: Option<&[u8]>,
    publisher: impl Fn(&str) -> Result<VerifyingKey, String>,
) -> Result<String, SigRefusal> {
    let s = SchemaSig::parse(sig.ok_or(SigRefusal::Unsigned)?)?;
    let signer = s.signed_by.clone();
    if s.topic != key.topic || s.event_type != key.event_type || s.version != key.version {
        return Err(SigRefusal::WrongTarget {
            signer,
            signed: format!("{}/{} v{}", s.topic, s.event_type, s.version),
        });
    }
    let public = publisher(&signer).map_err(|reason| SigRefusal::NotPublisher {
        signer: signer.clone(),
        reason,
    })?;
    let sig_hex = s.sig.as_deref().ok_or_else(|| SigRefusal::BadSignature {
        signer: signer.clone(),
    })?;
    if !keys::verify_bytes(&s.signing_bytes(), sig_hex, &public) {
        return Err(SigRefusal::BadSignature { signer });
    }
    if digest(text).map_err(SigRefusal::BadSchema)? != s.schema_blake3 {
        return Err(SigRefusal::DigestMismatch { signer });
    }
    Ok(signer)
}

#[cfg(test)]
mod tests;
