//! Pure rules for accepting a peer's events in sequence: chain heads, held files, alerts.

use super::quarantine::Reason;
use serde::{Deserialize, Serialize};

/// The last event of a peer accepted in sequence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// Its seq (0 before the first).
    pub seq: u64,
    /// Its id ("" before the first; also "" for a head carried over from an import
    /// state written before chains were checked, whose next `prev` is then not checked).
    pub event_id: String,
}

/// A ledger file held back, re-read by later imports until it can be applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// The peer whose outbox holds it.
    pub node_id: String,
    /// Seq of the first event that could not be applied yet.
    pub first_seq: u64,
    /// Why: `fork` is never held; `untrusted_key` waits for `nodes trust`, anything else for a gap.
    pub reason: HeldReason,
}

/// Why a file is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeldReason {
    /// Earlier seqs of the peer have not arrived yet.
    Gap,
    /// The peer's manifest shows a key that differs from the pinned one.
    UntrustedKey,
    /// The next event is stamped more than `[sync] clock_tolerance` in this node's
    /// future: read again at every sync, applied once the stamp is no longer ahead.
    Future,
    /// The mesh roster does not list the peer (or lists it retired, or without the member role).
    NotOnRoster,
}

/// A fork or a rewritten history, kept until an operator acknowledges it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// `fork` or `history_rewrite`.
    pub kind: Reason,
    /// The peer concerned.
    pub node_id: String,
    /// The ledger path that showed it.
    pub path: String,
    /// The seq in conflict, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// What was seen.
    pub detail: String,
    /// The ledger commit it was seen in.
    pub commit: String,
}

/// What to do with a valid event of a peer, given the peer's chain head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The next event of the chain: append it.
    Accept,
    /// Already accepted (same id): skip.
    Duplicate,
    /// The next event of the chain, already in the log (e.g. the import state was
    /// lost): move the chain head on without appending it again.
    Known,
    /// Conflicts with the accepted chain.
    Fork(String),
    /// Later than the next expected seq: wait for the missing ones.
    Wait,
}

/// Decides one event: `seq`/`prev`/`id` are the event's, `held_already` says the log
/// (or this run) already holds an event with this id.
pub fn step(head: &ChainHead, seq: u64, prev: &str, id: &str, held_already: bool) -> Step {
    if seq <= head.seq {
        if held_already {
            Step::Duplicate
        } else {
            Step::Fork(format!(
                "seq {seq} is already taken by another event of this node (event {id} differs)"
            ))
        }
    } else if seq == head.seq + 1 {
        let legacy = head.seq > 0 && head.event_id.is_empty();
        if prev == head.event_id || legacy {
            if held_already {
                Step::Known
            } else {
                Step::Accept
            }
        } else {
            Step::Fork(format!(
                "seq {seq} names prev {prev:?} but the accepted seq {} is {:?}",
                head.seq, head.event_id
            ))
        }
    } else {
        Step::Wait
    }
}

/// Adds an alert unless the same kind, node and path is already listed; true when added.
pub fn raise(alerts: &mut Vec<Alert>, alert: Alert) -> bool {
    let known = alerts
        .iter()
        .any(|a| a.kind == alert.kind && a.node_id == alert.node_id && a.path == alert.path);
    if !known {
        alerts.push(alert);
    }
    !known
}

#[cfg(test)]
mod tests;
