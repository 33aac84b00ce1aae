//! Operations that append own events: publish and dispatch. Each first checks that
//! the node root was not copied or restored since its identity was recorded (and
//! recovers its own events from the ledger if it was), so no seq is ever reused,
//! whoever calls them: the CLI, the daemon or a program linking the library.

use super::error::Result;
use crate::dispatch::{DispatchOptions, DispatchReport};
use crate::node::{Draft, Node, Published};

/// Publishes drafts as one all-or-nothing append, after the restored-root check.
pub fn publish(node: &Node, drafts: &[Draft]) -> Result<Vec<Published>> {
    crate::ledger::recover::guard(node)?;
    Ok(node.publish(drafts)?)
}

/// Publishes NDJSON drafts from `input` as one all-or-nothing batch in bounded
/// memory (`Node::publish_stream`), after the restored-root check.
pub fn publish_stream(
    node: &Node,
    input: &mut dyn std::io::BufRead,
    source: Option<&str>,
) -> Result<crate::node::StreamPublished> {
    crate::ledger::recover::guard(node)?;
    Ok(node.publish_stream(input, source)?)
}

/// Runs one dispatch pass, after the restored-root check.
pub fn dispatch(node: &Node, opts: &DispatchOptions) -> Result<DispatchReport> {
    crate::ledger::recover::guard(node)?;
    Ok(crate::dispatch::run(node, opts)?)
}
