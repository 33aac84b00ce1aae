//! Peers' key rotations for one import: statements that verify against the key trusted
//! for their node move its pin (no key-change alert); the rest are quarantined with an
//! alert, and the pin stays.

use super::run::Run;
use crate::keys::KnownNodes;
use crate::keys::rotation::{self, KeyHistory, Rotation};
use crate::ledger::Result;
use crate::ledger::quarantine::Reason;
use crate::ledger::rotations::StatementFile;
use crate::ledger::state::MAX_REFUSED_ROTATIONS;
use crate::ledger::trust::{self, Alert};
use std::collections::{BTreeMap, HashMap};

impl Run<'_> {
    /// Follows every peer's rotation statements in `files` from the keys in `known`
    /// (for a node not pinned yet, from the start of the chain that ends at the key its
    /// signed manifest publishes, or the roster lists), updating `known`.
    pub(super) fn follow_rotations(
        &mut self,
        files: Vec<StatementFile>,
        published: &HashMap<String, Option<String>>,
        known: &mut KnownNodes,
    ) -> Result<()> {
        let me = self.node.id().to_string();
        let mut by_node: BTreeMap<String, Vec<StatementFile>> = BTreeMap::new();
        for f in files {
            if f.node != me {
                by_node.entry(f.node.clone()).or_default().push(f);
            }
        }
        let now = crate::event::now_timestamp();
        for (node, files) in by_node {
            let mut good: Vec<(usize, Rotation)> = Vec::new();
            for (i, f) in files.iter().enumerate() {
                match &f.parsed {
                    Ok(r) => good.push((i, r.clone())),
                    Err(why) => self.refuse_rotation(f, why)?,
                }
            }
            let statements: Vec<Rotation> = good.iter().map(|(_, r)| r.clone()).collect();
            let start = match known.history(&node) {
                Some(h) => h,
                None => {
                    let listed = self
                        .roster
                        .as_ref()
                        .and_then(|r| r.nodes.get(&node))
                        .map(|n| n.public_key.clone());
                    let Some(latest) = listed.or_else(|| published.get(&node).cloned().flatten())
                    else {
                        continue;
                    };
                    KeyHistory::single(rotation::origin(&latest, &statements))
                }
            };
            let followed = rotation::follow(&node, &start, &statements);
            for (i, why) in &followed.refused {
                let f = &files[good[*i].0];
                self.refuse_rotation(f, &why.to_string())?;
            }
            if !followed.applied.is_empty() {
                tracing::info!(node = %node, key = %followed.history.current,
                    from_seq = followed.history.current_from(), "peer key rotation accepted");
                known.follow(&node, followed.history, &now);
            }
        }
        Ok(())
    }

    /// Quarantines a refused statement and raises an alert, once per file content.
    fn refuse_rotation(&mut self, f: &StatementFile, why: &str) -> Result<()> {
        let seen = format!("{}@{}", f.path, f.oid);
        if self.state.refused_rotations.contains(&seen) {
            return Ok(());
        }
        if self.state.refused_rotations.len() < MAX_REFUSED_ROTATIONS {
            self.state.refused_rotations.insert(seen);
        }
        let bytes = self.head_bytes(f.oid);
        let detail = format!("key rotation statement of node {}: {why}", f.node);
        let source = format!("ledger commit {}", self.commit);
        self.reject(
            &f.node,
            &f.path,
            &f.oid.to_string(),
            &bytes,
            Reason::BadRotation,
            &detail,
            &source,
        )?;
        trust::raise(
            &mut self.state.alerts,
            Alert {
                kind: Reason::BadRotation,
                node_id: f.node.clone(),
                path: f.path.clone(),
                seq: None,
                detail,
                commit: self.commit.clone(),
            },
        );
        Ok(())
    }
}
