//! Applying one file's checked events to the peer's chain.
//!
//! [`decide`] is the whole decision, free of I/O: given the chain head, what
//! the log already holds and the schema verdicts, it lists what to quarantine,
//! append, flag and count, in file order, and how the file ends (done, fork,
//! or held for a gap). [`Run::apply`] gathers those inputs and carries it out.

use super::file::Item;
use super::pinning::KeyState;
use super::run::Run;
use super::signatures::{SigVerdict, check_signatures};
use crate::event::Envelope;
use crate::ledger::quarantine::{Item as Bad, KEEP_BYTES, Reason};
use crate::ledger::trust::{self, Alert, ChainHead, HeldReason, Step};
use crate::ledger::{LedgerError, Result};
use crate::log::LogWriter;
use crate::schema::{FlaggedEvent, ImportVerdict};
use std::borrow::Cow;
use std::collections::HashSet;

/// What the decision reads of the run.
pub(super) struct Context<'c> {
    /// The peer's chain head before this file.
    pub(super) head: ChainHead,
    /// Whether the log, or this run before this file, already holds an event with this id.
    pub(super) held_already: &'c dyn Fn(&str) -> bool,
    /// False when a held file is read again: its bad lines were reported already.
    pub(super) first_sight: bool,
    /// This node's clock.
    pub(super) now: chrono::DateTime<chrono::Utc>,
    /// `[sync] clock_tolerance`.
    pub(super) tolerance: chrono::Duration,
}

/// One thing to do for a file, in file order.
#[derive(Debug)]
pub(super) enum Action<'a> {
    /// Quarantine these bytes (a line, or an event as a JSON line) of the file.
    Reject {
        line: Option<usize>,
        bytes: Cow<'a, [u8]>,
        reason: Reason,
        detail: String,
    },
    /// The event continues the peer's chain: it becomes the chain head.
    Advance(ChainHead),
    /// Append the event to the log.
    Append(Box<Envelope>),
    /// Record that an appended event broke its schema (`accept-and-flag`).
    Flag(FlaggedEvent),
    /// Count a valid event the log already holds.
    Duplicate,
}

/// How a file ends once its actions are done.
#[derive(Debug, PartialEq)]
pub(super) enum End {
    /// Every event was applied or set aside: the file is no longer held.
    Done,
    /// The event with `seq` conflicts with the chain: quarantine the file whole and alert.
    Fork { seq: u64, detail: String },
    /// The event with seq `first_seq` does not follow the chain yet: hold the file and
    /// remember `seqs` (it and the later ones), so the missing range is reported as a gap.
    Wait { first_seq: u64, seqs: Vec<u64> },
    /// The event with seq `first_seq` would continue the chain but is stamped beyond the
    /// tolerance in this node's future: hold the file (it and every later event wait).
    Future { first_seq: u64 },
}

/// The decision for one file.
#[derive(Debug)]
pub(super) struct Decision<'a> {
    /// What to do, in file order.
    pub(super) actions: Vec<Action<'a>>,
    /// How the file ends.
    pub(super) end: End,
}

/// Decides every item of a file of `node` from its check outcome, its signature
/// verdict and, for an event that continues the chain, `judge`'s schema verdict.
///
/// The chain moves on for an event that breaks its schema too, so a schema
/// violation never blocks the peer's later events; a quarantined event is just
/// not appended. Schemas judge the stored payload, never an upcast copy.
pub(super) fn decide<'a, E>(
    cx: &Context<'_>,
    node: &str,
    items: Vec<Item<'a>>,
    sigs: Vec<SigVerdict>,
    mut judge: impl FnMut(&Envelope) -> std::result::Result<ImportVerdict, E>,
) -> std::result::Result<Decision<'a>, E> {
    let mut actions = Vec::new();
    let mut head = cx.head.clone();
    // Appended by this file: the caller's `held_already` cannot see them.
    let mut appended: HashSet<String> = HashSet::new();
    let mut items = items.into_iter().zip(sigs);
    while let Some(((line, bytes, outcome), sig)) = items.next() {
        let env = match outcome {
            Ok(env) => env,
            Err((reason, detail)) => {
                if cx.first_sight {
                    actions.push(Action::Reject {
                        line,
                        bytes: Cow::Borrowed(bytes),
                        reason,
                        detail,
                    });
                }
                continue;
            }
        };
        if let Err((reason, detail)) = sig {
            if cx.first_sight {
                actions.push(Action::Reject {
                    line,
                    bytes: Cow::Owned(env.to_json_line().into_bytes()),
                    reason,
                    detail,
                });
            }
            continue;
        }
        let already = appended.contains(&env.event_id) || (cx.held_already)(&env.event_id);
        match trust::step(&head, env.seq, &env.prev, &env.event_id, already) {
            Step::Accept
                if crate::event::parse_timestamp(&env.timestamp)
                    .is_some_and(|t| crate::ledger::clock::in_future(t, cx.now, cx.tolerance)) =>
            {
                let end = End::Future { first_seq: env.seq };
                return Ok(Decision { actions, end });
            }
            Step::Accept => {
                head = ChainHead {
                    seq: env.seq,
                    event_id: env.event_id.clone(),
                };
                actions.push(Action::Advance(head.clone()));
                match judge(&env)? {
                    ImportVerdict::Accept => {
                        appended.insert(env.event_id.clone());
                        actions.push(Action::Append(Box::new(env)));
                    }
                    ImportVerdict::Flag(e) => {
                        actions.push(Action::Flag(FlaggedEvent {
                            event_id: env.event_id.clone(),
                            reason: e.to_string(),
                        }));
                        appended.insert(env.event_id.clone());
                        actions.push(Action::Append(Box::new(env)));
                    }
                    ImportVerdict::Quarantine(e) => actions.push(Action::Reject {
                        line,
                        bytes: Cow::Owned(env.to_json_line().into_bytes()),
                        reason: Reason::SchemaViolation,
                        detail: e.to_string(),
                    }),
                }
            }
            Step::Known => {
                head = ChainHead {
                    seq: env.seq,
                    event_id: env.event_id.clone(),
                };
                actions.push(Action::Advance(head.clone()));
                if cx.first_sight {
                    actions.push(Action::Duplicate);
                }
            }
            Step::Duplicate => {
                if cx.first_sight {
                    actions.push(Action::Duplicate);
                }
            }
            Step::Fork(detail) => {
                let end = End::Fork {
                    seq: env.seq,
                    detail: format!("node {node}: {detail}"),
                };
                return Ok(Decision { actions, end });
            }
            Step::Wait => {
                // Bad lines further on are reported now, at first sight.
                let mut seqs = vec![env.seq];
                for ((line, bytes, rest), _) in items.by_ref() {
                    match rest {
                        Ok(e) => seqs.push(e.seq),
                        Err((reason, detail)) if cx.first_sight => actions.push(Action::Reject {
                            line,
                            bytes: Cow::Borrowed(bytes),
                            reason,
                            detail,
                        }),
                        Err(_) => {}
                    }
                }
                let end = End::Wait {
                    first_seq: env.seq,
                    seqs,
                };
                return Ok(Decision { actions, end });
            }
        }
    }
    Ok(Decision {
        actions,
        end: End::Done,
    })
}

/// The ids of `items` the log already holds: one pass over its id index for the whole file.
fn ids_in_log(writer: &mut LogWriter<'_>, items: &[Item<'_>]) -> Result<HashSet<String>> {
    let ids: Vec<&str> = items
        .iter()
        .filter_map(|(_, _, outcome)| outcome.as_ref().ok().map(|e| e.event_id.as_str()))
        .collect();
    Ok(writer
        .lookup_many(&ids)?
        .into_iter()
        .zip(&ids)
        .filter_map(|(offset, id)| offset.map(|_| id.to_string()))
        .collect())
}

impl Run<'_> {
    /// Checks signatures and the chain, and appends the events that continue it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply(
        &mut self,
        writer: &mut LogWriter<'_>,
        full: &str,
        node: &str,
        oid: git2::Oid,
        content: &[u8],
        items: Vec<Item<'_>>,
        source: &str,
        first_sight: bool,
    ) -> Result<()> {
        let key = self.keys.get(node).cloned().unwrap_or(KeyState::Unknown);
        let sigs = check_signatures(&items, &key, node, self.require_signatures);
        // Appending only between files keeps `in_run` to the unflushed events: the
        // lookup below finds everything flushed, and a 10M-event join stays small.
        self.flush_if_full(writer)?;
        let in_log = ids_in_log(writer, &items)?;
        let this = self.node;
        let policy = this.config.schemas.import_policy;
        let in_run = &self.in_run;
        let cx = Context {
            head: self.chain_head(node),
            held_already: &|id| in_run.contains(id) || in_log.contains(id),
            first_sight,
            now: chrono::Utc::now(),
            tolerance: chrono::Duration::from_std(this.config.sync.clock_tolerance.0)
                .unwrap_or(chrono::Duration::MAX),
        };
        let decision = decide(&cx, node, items, sigs, |env| {
            Ok::<_, LedgerError>(crate::schema::import_verdict(this.schemas()?, env, policy))
        })?;
        // Every bad line of the file goes into one record (with the whole file on a fork).
        let mut bad = Vec::new();
        let mut bad_bytes = Vec::new();
        for action in decision.actions {
            match action {
                Action::Reject {
                    line,
                    bytes,
                    reason,
                    detail,
                } => {
                    if bad_bytes.len() < KEEP_BYTES {
                        bad_bytes.extend_from_slice(&bytes);
                        bad_bytes.push(b'\n');
                    }
                    bad.push(Bad {
                        line,
                        reason,
                        detail,
                    });
                }
                Action::Advance(head) => self.advance(node, head),
                Action::Append(env) => self.accept(*env),
                Action::Flag(f) => self.flagged.push(f),
                Action::Duplicate => self.report.duplicate_events += 1,
            }
        }
        let id = oid.to_string();
        if let End::Fork { detail, .. } = &decision.end {
            bad.insert(
                0,
                Bad {
                    line: None,
                    reason: Reason::Fork,
                    detail: detail.clone(),
                },
            );
            bad_bytes = content.to_vec();
        }
        self.reject_items(node, full, &id, &bad_bytes, bad, source)?;
        match decision.end {
            End::Done => {
                self.state.held.remove(full);
            }
            End::Fork { seq, detail } => {
                self.state.held.remove(full);
                let alert = Alert {
                    kind: Reason::Fork,
                    node_id: node.to_string(),
                    path: full.to_string(),
                    seq: Some(seq),
                    detail,
                    commit: self.commit.clone(),
                };
                trust::raise(&mut self.state.alerts, alert);
            }
            End::Future { first_seq } => {
                self.hold(full, node, first_seq, HeldReason::Future);
            }
            End::Wait { first_seq, seqs } => {
                let ranges = self.state.peers.entry(node.to_string()).or_default();
                for s in seqs {
                    ranges.insert(s);
                }
                self.hold(full, node, first_seq, HeldReason::Gap);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
