//! `gitmesh keys`: this node's signing key (show it, export it, rotate it).

use super::Output;
use gitmesh::ops::identity;
use gitmesh::{Error, Node};
use serde_json::json;
use std::io::IsTerminal as _;
use std::path::Path;

/// `gitmesh keys ...`.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Show the public key, where the secret comes from, and whether the ledger knows this key.
    Show,
    /// Print the public key; with --secret, the secret key (to a file or pipe, never a terminal).
    Export {
        /// Print the secret key (64 hex digits), e.g. to store it as a CI secret
        #[arg(long)]
        secret: bool,
    },
    /// Replace the signing key; the old key signs the change (published by the next sync).
    Rotate,
}

pub fn run(root: &Path, c: KeysCommand) -> Result<Output, Error> {
    let node = Node::open(root)?;
    match c {
        KeysCommand::Show => {
            let r = identity::show(&node)?;
            let mut h = format!(
                "node {}\npublic key {}\nsecret from {}\n",
                r.node_id, r.public_key, r.source
            );
            match (&r.ledger_key, r.matches_ledger) {
                (Some(_), Some(true)) => h.push_str("the ledger knows this key\n"),
                (Some(k), _) => h.push_str(&format!(
                    "MISMATCH: the ledger holds this node's events (through seq {}) under key {k}\n",
                    r.ledger_seq
                )),
                (None, _) => h.push_str("the ledger has no manifest of this node yet\n"),
            }
            Ok(Output::new(r, h))
        }
        KeysCommand::Export { secret: false } => {
            let (key, _) = identity::key(&node)?;
            let public = key.public_hex();
            Ok(Output::new(
                json!({"node_id": node.id(), "public_key": public}),
                format!("{public}\n"),
            ))
        }
        KeysCommand::Rotate => {
            let r = identity::rotate(&node)?;
            let mut h = format!(
                "node {}: key rotated\nold key {}\nnew key {} (signs from seq {})\nnew key stored in {}\n\
                 statement {} is published by the next mesh-sync\n",
                r.node_id,
                r.old_public_key,
                r.new_public_key,
                r.from_seq,
                r.stored_at.display(),
                r.statement
            );
            if r.secret_must_be_updated {
                h.push_str(&format!(
                    "\nUPDATE THE SECRET: the old key came from {var}, which gitmesh cannot change.\n\
                     This node now refuses the old secret and signs with the key stored above.\n\
                     Store the new key as the secret, e.g.\n  \
                     gitmesh keys export --secret | gh secret set {var}\n\
                     (or `gitmesh keys export --secret > new.key` and paste it into your secret store).\n",
                    var = gitmesh::keys::SIGNING_KEY_VAR
                ));
            }
            if let Some(v) = r.roster_version_staged {
                h.push_str(&format!(
                    "roster version {v} with the new key, signed by the old key, is staged for the next mesh-sync\n"
                ));
            }
            if r.roster_rekey_needed {
                h.push_str(&format!(
                    "this node is on the mesh roster: peers hold its new events until an admin runs \
                     `gitmesh roster rekey {}` and syncs\n",
                    r.node_id
                ));
            }
            Ok(Output::new(r, h))
        }
        KeysCommand::Export { secret: true } => {
            if std::io::stdout().is_terminal() {
                return Err(Error::usage(
                    "refusing to print the secret key to a terminal: redirect it, e.g. \
                     `gitmesh keys export --secret > node.key` or `| gh secret set GITMESH_SIGNING_KEY`",
                ));
            }
            let (key, _) = identity::key(&node)?;
            let secret = key.secret_hex();
            Ok(Output::new(
                json!({"node_id": node.id(), "public_key": key.public_hex(), "secret_key": secret}),
                format!("{secret}\n"),
            ))
        }
    }
}
