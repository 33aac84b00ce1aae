//! `gitmesh roster`: show the signed mesh roster and sign new versions of it.

use super::Output;
use gitmesh::ledger::roster::{Role, Roster};
use gitmesh::ops::roster::{self, Change};
use gitmesh::{Error, Node};
use serde_json::json;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

/// `gitmesh roster ...`.
#[derive(Debug, clap::Subcommand)]
pub enum RosterCommand {
    /// Show the roster version this node trusts and versions waiting to be pushed.
    Show,
    /// Add a node with its public key and roles (admin only).
    Enroll {
        /// The node id.
        node: String,
        /// Its ed25519 public key, 64 hex digits (`public_key` of its mesh-init)
        #[arg(long, value_name = "HEX")]
        key: String,
        /// A role: admin, leader, schema or member (repeatable) [default: member]
        #[arg(long = "role", value_name = "ROLE", value_parser = parse_role)]
        roles: Vec<Role>,
    },
    /// Replace a node's roles (admin only).
    Roles {
        /// The node id.
        node: String,
        /// The roles: admin, leader, schema, member (at least one)
        #[arg(required = true, value_parser = parse_role)]
        roles: Vec<Role>,
    },
    /// Retire a node: trusted for nothing, no longer reported stale (admin only).
    Retire {
        /// The node id.
        node: String,
    },
    /// Give a node the key it rotated to, from its signed statement (admin only).
    Rekey {
        /// The node id.
        node: String,
        /// The new key, 64 hex digits [default: the end of the node's verified rotation statements]
        #[arg(long, value_name = "HEX")]
        key: Option<String>,
    },
    /// Replace an admin's public key; the version is signed with the current key (admin only).
    RotateAdmin {
        /// The new ed25519 public key, 64 hex digits
        #[arg(long, value_name = "HEX")]
        key: String,
        /// The admin whose key changes [default: this node]
        #[arg(long, value_name = "NODE")]
        node: Option<String>,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| "expected admin, leader, schema or member".into())
}

pub fn run(root: &Path, c: RosterCommand) -> Result<Output, Error> {
    let node = Node::open(root)?;
    let change = match c {
        RosterCommand::Show => return show(&node),
        RosterCommand::Enroll { node, key, roles } => Change::Enroll {
            node,
            key,
            roles: if roles.is_empty() {
                [Role::Member].into()
            } else {
                roles.into_iter().collect::<BTreeSet<_>>()
            },
        },
        RosterCommand::Roles { node, roles } => Change::Roles {
            node,
            roles: roles.into_iter().collect(),
        },
        RosterCommand::Retire { node } => Change::Retire { node },
        RosterCommand::Rekey { node: who, key } => {
            let key = match key {
                Some(k) => k,
                None => roster::rotated_key(&node, &who)?,
            };
            Change::Rekey { node: who, key }
        }
        RosterCommand::RotateAdmin { key, node: who } => Change::RotateAdmin {
            node: who.unwrap_or_else(|| node.id().to_string()),
            key,
        },
    };
    staged(roster::change(&node, change)?)
}

/// Reports a version just signed and staged.
pub fn staged(r: Roster) -> Result<Output, Error> {
    let human = format!(
        "roster version {} signed by {} and staged; the next mesh-sync publishes it\n",
        r.version, r.signed_by
    );
    Ok(Output::new(
        json!({"version": r.version, "signed_by": r.signed_by, "staged": true, "roster": r}),
        human,
    ))
}

fn show(node: &Node) -> Result<Output, Error> {
    let v = roster::show(node)?;
    let mut h = String::new();
    let _ = writeln!(h, "trust mode: {:?}", v.trust);
    match &v.trusted {
        None => h.push_str("no mesh roster trusted yet\n"),
        Some(r) => {
            let _ = writeln!(
                h,
                "roster version {} (signed by {}, max lease ttl {}s)",
                r.version, r.signed_by, r.max_lease_ttl_sec
            );
            for (id, n) in &r.nodes {
                let roles: Vec<&str> = n.roles.iter().map(|r| r.as_str()).collect();
                let _ = writeln!(
                    h,
                    "  {id}  {}  key {}{}",
                    roles.join(","),
                    n.public_key,
                    if n.retired { "  RETIRED" } else { "" }
                );
            }
        }
    }
    for s in &v.staged {
        let _ = writeln!(
            h,
            "staged: version {} (pushed by the next mesh-sync)",
            s.version
        );
    }
    Ok(Output::new(&v, h))
}
