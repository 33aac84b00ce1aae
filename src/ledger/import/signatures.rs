//! Signature checks of one file's events, spread over a few threads for large files.

use super::file::Item;
use super::pinning::KeyState;
use crate::ledger::quarantine::Reason;
use crate::ledger::verify::{self, KeyCheck};

/// Below this many events a file's signatures are checked on one thread.
const PARALLEL_VERIFY_MIN: usize = 256;

/// A signature verdict: fine, or the reason and detail to quarantine the event with.
pub(super) type SigVerdict = Result<(), (Reason, String)>;

/// The signature verdict for every item (Ok for items that are already rejected),
/// computed on up to four threads: verification is the costly part of an import.
pub(super) fn check_signatures(
    items: &[Item<'_>],
    key: &KeyState,
    node: &str,
    require: bool,
) -> Vec<SigVerdict> {
    let one = |item: &Item<'_>| {
        let Ok(env) = &item.2 else { return Ok(()) };
        match key {
            KeyState::Pinned(k) => {
                verify::check_signature(env, KeyCheck::Pinned(k.for_seq(env.seq)))
            }
            KeyState::Invalid(e) => Err((
                Reason::BadSignature,
                format!("node {node} publishes an unusable key: {e}"),
            )),
            KeyState::Unknown | KeyState::Untrusted => {
                verify::check_signature(env, KeyCheck::Unknown { require })
            }
        }
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4);
    if threads < 2 || items.len() < PARALLEL_VERIFY_MIN || !matches!(key, KeyState::Pinned(_)) {
        return items.iter().map(one).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(move || c.iter().map(one).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(v) => v,
                Err(p) => std::panic::resume_unwind(p),
            })
            .collect()
    })
}
