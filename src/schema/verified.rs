//! The ledger's schemas as this node last verified them: a copy of each schema whose
//! publisher signature verified (`state/event_mesh/schemas_verified/`), and a record of
//! the last check (`schemas_verified.json`) with the files it refused. The registry reads
//! these, never the ledger directly, so a file that stops verifying leaves the last
//! verified copy in use.

use super::registry::{Refused, SchemaKey};
use crate::fsutil::{PathError, read_json, write_atomic, write_json};
use crate::paths::NodePaths;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most schema files of the ledger checked in one pass (the rest are refused as too many).
pub const MAX_LEDGER_SCHEMAS: usize = 10_000;

/// One verified schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adopted {
    /// The publisher that signed it.
    pub signer: String,
    /// BLAKE3 of its canonical JSON (as signed).
    pub schema_blake3: String,
    /// The ledger commit it was verified at.
    pub commit: String,
}

/// `schemas_verified.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedState {
    /// What the last check saw (schema tree, roster, trust mode, pins); an equal one skips the check.
    #[serde(default)]
    pub fingerprint: String,
    /// Verified schemas by path relative to `<dir>/schemas/`.
    #[serde(default)]
    pub adopted: BTreeMap<String, Adopted>,
    /// Ledger schema files the last check refused, with why.
    #[serde(default)]
    pub refused: Vec<Refused>,
}

/// The path of `key` relative to `<dir>/schemas/` (and to the verified copies).
pub fn rel_path(key: &SchemaKey) -> String {
    format!("{}/{}/v{}.json", key.topic, key.event_type, key.version)
}

/// The record of the last check (empty when none was made).
pub fn load(paths: &NodePaths) -> Result<VerifiedState, PathError> {
    Ok(read_json(&paths.schemas_verified_state())?.unwrap_or_default())
}

/// Saves the record of a check.
pub fn save(paths: &NodePaths, st: &VerifiedState) -> Result<(), PathError> {
    write_json(&paths.schemas_verified_state(), st)
}

/// Keeps the verified copy of the schema at `key`.
pub fn store(paths: &NodePaths, key: &SchemaKey, text: &[u8]) -> Result<(), PathError> {
    let file = paths.schemas_verified().join(rel_path(key));
    write_atomic(&file, text, true)
}
