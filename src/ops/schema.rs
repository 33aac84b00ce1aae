//! `gitmesh schema publish`: check a directory of schemas, sign them as this node (a
//! schema publisher) and stage them for the next sync.

use super::error::{OpsError, Result};
use crate::ledger::LedgerError;
use crate::ledger::{roster, schema_trust};
use crate::node::Node;
use crate::schema::SchemaError;
use crate::schema::stage::{self, Staged};
use std::path::Path;

/// Signs and stages every schema under `dir`; refused when peers would not accept this
/// node's signature (no key, or not a schema publisher on the trusted roster).
pub fn publish(node: &Node, dir: &Path) -> Result<Vec<Staged>> {
    let me = node.id();
    let not_publisher = |reason: String| {
        OpsError::from(SchemaError::NotPublisher {
            node: me.to_string(),
            reason,
        })
    };
    let Some((key, _)) = node.signing_key().map_err(LedgerError::from)? else {
        return Err(not_publisher(
            "this node root has no signing key to sign them with (run `gitmesh mesh-init` to create one, or set GITMESH_SIGNING_KEY)".into(),
        ));
    };
    let trusted = roster::load_trusted(&node.paths)?;
    schema_trust::may_publish(
        trusted.as_ref(),
        node.config.mesh.trust,
        me,
        &key.public_hex(),
    )
    .map_err(not_publisher)?;
    Ok(stage::publish_dir(
        &node.paths,
        node.schemas()?,
        dir,
        me,
        &key,
    )?)
}
